"""A scripted OpenAI-compatible HTTP server for tests: real sockets, no network, no key.

``ScriptedOpenAIServer`` listens on 127.0.0.1 (an ephemeral port) and answers ``POST
/v1/chat/completions`` from a script: a queue of behaviours consumed one per request, then a default
(a behaviour, or a callable of the request body). Behaviours:

* a string, or ``Reply(content, delay=...)``: a well-formed chat completion;
* ``Status(code, body, headers)``: an HTTP error (500, 429 with ``Retry-After``, 401...);
* ``Raw(body, status, content_type)``: any bytes (truncated JSON, an HTML page, garbage);
* ``Hang(seconds)``: wait, then close the connection without answering (a client timeout);
* ``Disconnect()``: close the connection at once without answering;
* ``Trickle(content, interval)``: a well-formed completion whose body arrives a byte at a time, one
  byte per ``interval`` seconds (a slow proxy: every read succeeds, the whole takes long).

It records every request (path, headers, JSON body), counts them, and tracks the peak number in flight.

Example::

    with ScriptedOpenAIServer(["hello", Status(500), "again"]) as server:
        backend = OpenAICompatible("test-model", server.url, backoff=0.01)
        backend.chat([[{"role": "user", "content": "hi"}]])   # -> ["hello"]
        server.request_count                                   # -> 1

Other tests (LLM-driven agents) reuse it: ``from tests.llm_server import ScriptedOpenAIServer, Reply``
(or ``from llm_server import ...`` with ``tests/`` on the path).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "Behaviour",
    "Disconnect",
    "Hang",
    "Raw",
    "RecordedRequest",
    "Reply",
    "ScriptedOpenAIServer",
    "Status",
    "Trickle",
    "completion_body",
]


@dataclass(frozen=True)
class Reply:
    """A well-formed chat completion whose message is ``content``, sent after ``delay`` seconds."""

    content: str
    delay: float = 0.0
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Status:
    """An HTTP status with a body (JSON-encoded when it is a dict) and headers."""

    code: int
    body: str | dict[str, Any] = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Raw:
    """Arbitrary response bytes (e.g. truncated JSON or an HTML page)."""

    body: str | bytes
    status: int = 200
    content_type: str = "application/json"
    delay: float = 0.0


@dataclass(frozen=True)
class Hang:
    """Say nothing for ``seconds`` (longer than the client's timeout), then drop the connection."""

    seconds: float


@dataclass(frozen=True)
class Disconnect:
    """Drop the connection without a response."""


@dataclass(frozen=True)
class Trickle:
    """A completion of ``content`` sent one byte per ``interval`` seconds (headers at once)."""

    content: str
    interval: float = 0.2


Behaviour = str | Reply | Status | Raw | Hang | Disconnect | Trickle
Script = Callable[[dict[str, Any]], Behaviour]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw_body: bytes
    time: float


def completion_body(content: str, model: str = "test-model", finish_reason: str = "stop") -> dict[str, Any]:
    """An OpenAI chat completion response holding ``content``."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class ScriptedOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 that follows a script.

    Args:
        script: Behaviours consumed one per completion request, in order; or a callable of the
            request's JSON body returning a behaviour (then every request goes to it).
        default: What to do once the queue is empty: a behaviour or a callable of the request body.
            Without one, an exhausted script answers 500 ``script exhausted`` (so a test notices).
        model: The model name echoed in responses.

    Attributes:
        requests: Every request received, in arrival order.
        peak_in_flight: The most completion requests handled at the same time.
    """

    def __init__(
        self,
        script: Sequence[Behaviour] | Script | None = None,
        *,
        default: Behaviour | Script | None = None,
        model: str = "test-model",
    ) -> None:
        if callable(script):
            self._queue: list[Behaviour] = []
            self._default: Behaviour | Script | None = script
        else:
            self._queue = list(script or [])
            self._default = default
        self.model = model
        self.requests: list[RecordedRequest] = []
        self.peak_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> ScriptedOpenAIServer:
        """Bind an ephemeral port on 127.0.0.1 and serve in a daemon thread."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
                return

            def do_GET(self) -> None:  # noqa: N802
                owner._record(self, b"")
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, json.dumps({"object": "list", "data": [{"id": owner.model}]}).encode())
                else:
                    self._send(404, b'{"error": "not found"}')

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = owner._record(self, raw)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "unknown path"}}')
                    return
                with owner._lock:
                    owner._in_flight += 1
                    owner.peak_in_flight = max(owner.peak_in_flight, owner._in_flight)
                try:
                    self._act(owner._next(request.body or {}))
                finally:
                    with owner._lock:
                        owner._in_flight -= 1

            def _send(
                self,
                code: int,
                body: bytes,
                content_type: str = "application/json",
                headers: Mapping[str, str] | None = None,
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def _act(self, b: Behaviour) -> None:
                if isinstance(b, str):
                    b = Reply(b)
                if isinstance(b, (Reply, Status, Raw)) and b.delay:
                    owner._stopping.wait(b.delay)
                if isinstance(b, Reply):
                    body = completion_body(b.content, owner.model, b.finish_reason)
                    self._send(200, json.dumps(body).encode())
                elif isinstance(b, Status):
                    data = json.dumps(b.body) if isinstance(b.body, dict) else b.body
                    self._send(b.code, data.encode(), headers=b.headers)
                elif isinstance(b, Raw):
                    data = b.body.encode() if isinstance(b.body, str) else b.body
                    self._send(b.status, data, content_type=b.content_type)
                elif isinstance(b, Hang):
                    owner._stopping.wait(b.seconds)
                    self.close_connection = True
                elif isinstance(b, Disconnect):
                    self.close_connection = True
                elif isinstance(b, Trickle):
                    data = json.dumps(completion_body(b.content, owner.model)).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.flush()
                    try:
                        for i in range(len(data)):
                            if owner._stopping.wait(b.interval):
                                break
                            self.wfile.write(data[i : i + 1])
                            self.wfile.flush()
                    except OSError:  # the client gave up: what a deadline is for
                        pass
                    self.close_connection = True
                else:
                    raise TypeError(f"unknown behaviour {b!r}")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="scripted-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging handlers are released."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ScriptedOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- script ------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The API root to give a client (``http://127.0.0.1:<port>/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def request_count(self) -> int:
        """Completion requests received so far."""
        with self._lock:
            return sum(1 for r in self.requests if r.method == "POST")

    def push(self, *behaviours: Behaviour) -> None:
        """Append behaviours to the queue."""
        with self._lock:
            self._queue.extend(behaviours)

    def _next(self, body: dict[str, Any]) -> Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
            default = self._default
        if default is None:
            return Status(500, {"error": {"message": "script exhausted"}})
        return default(body) if callable(default) else default

    def _record(self, handler: BaseHTTPRequestHandler, raw: bytes) -> RecordedRequest:
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        req = RecordedRequest(handler.command, handler.path, dict(handler.headers.items()), body, raw, time.time())
        with self._lock:
            self.requests.append(req)
        return req
