"""``OpenAICompatible``: any ``/v1/chat/completions`` server (vLLM, Ollama, llama.cpp server, OpenAI,
Azure OpenAI), with its thread pool, per-request deadlines and the transport retries.

The retries live here and only here: the judge above never retries a transport failure. httpx is
imported in the constructor (``pip install "penguin-gym[llm]"``).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from penguin_gym.error import ConfigError, DependencyNotInstalled, RequestError
from penguin_gym.judges.backends.base import (
    _INSTALL_HINT,
    Conversation,
    ItemReply,
    _chat_from_each,
    _check_conversations,
    _check_sampling,
    _check_seeds,
    _suffix,
    redact_credentials,
)

logger = logging.getLogger(__name__)

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "[::1]"})

#: Request fields of the structured judge modes, per mode: what each server family takes.
STRUCTURED_MODES = ("json_schema", "json_object", "grammar")


class OpenAICompatible:
    """Any server that speaks the OpenAI ``/v1/chat/completions`` API: vLLM, Ollama, llama.cpp server,
    llama-cpp-python, LM Studio, OpenAI, Azure OpenAI.

    Requests run concurrently on a thread pool (``concurrency`` at a time) and every request has a total
    deadline (``timeout``: from sending to the last byte, however slowly the server trickles its body).
    A request that passes its deadline, loses its connection, gets 429 or a 5xx, or gets a body that is
    not a completion (truncated JSON, an HTML error page) is retried ``retries`` times with exponential
    backoff and jitter (a 429's or 503's ``Retry-After`` is honoured, up to ``max_backoff``); other 4xx
    fail at once, and so does a completion stopped by a provider's content filter. One failed request
    never takes the others of a batch with it: ``chat_each`` yields each reply or each request's
    ``RequestError`` as it comes.

    Credentials in the URL (``http://user:KEY@host/v1``) are sent as HTTP basic auth and are never part
    of ``name``, of an error message or of anything written.

    Args:
        model: The model name the server expects (for Azure: the deployment name).
        base_url: The API root, as the OpenAI SDK takes it, e.g. ``"http://localhost:8000/v1"`` (vLLM),
            ``"http://localhost:11434/v1"`` (Ollama); a URL without a path gets ``/v1``. For Azure give
            ``https://<resource>.openai.azure.com`` and ``api_version``.
        api_key_env: The environment variable holding the API key, read here. Missing: an error naming
            it, unless the server is local (localhost) or the URL carries credentials.
        concurrency: Requests in flight at once.
        timeout: Each attempt's total deadline in seconds (connecting, sending, waiting and reading).
        connect_timeout: Seconds to wait for the connection (within the deadline).
        retries: Retries after the first attempt of each request.
        backoff: The first retry's delay in seconds; doubles per retry, with +-50% jitter.
        max_backoff: The longest delay between attempts.
        api_version: Azure OpenAI's ``api-version``: switches to Azure's URL layout and ``api-key`` header.
        max_tokens_field: The request field for the token limit (``"max_completion_tokens"`` for OpenAI's
            reasoning models).
        extra_body: More request fields (``top_p``, ``seed``, ``stop``, a ``grammar``...), sent with every
            request; part of ``name``, so a judgment made under a grammar is never reused without it.
        headers: More HTTP headers (never put a secret here: use ``api_key_env``).
        name: The identity in judge names and caches (default ``"openai:<model>@<base_url>"``); the
            settings that change replies (``extra_body``, a non-default ``max_tokens_field``,
            ``api_version``) are appended to it either way.
    """

    def __init__(
        self,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        api_version: str | None = None,
        max_tokens_field: str = "max_tokens",
        extra_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        try:
            import httpx  # noqa: F401
        except ImportError as e:
            raise DependencyNotInstalled(f"the OpenAI-compatible backend needs httpx: {_INSTALL_HINT}") from e
        if not model:
            raise ConfigError("OpenAICompatible: model is empty; give the model name the server serves")
        if concurrency < 1:
            raise ConfigError(f"OpenAICompatible: concurrency = {concurrency} must be >= 1")
        if retries < 0:
            raise ConfigError(f"OpenAICompatible: retries = {retries} must be >= 0")
        if not (timeout > 0 and connect_timeout > 0):
            raise ConfigError(f"OpenAICompatible: timeouts must be > 0 (got {timeout}, {connect_timeout})")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                "OpenAICompatible: base_url "
                f"{redact_credentials(base_url)!r} must be an http(s) URL, e.g. http://localhost:8000/v1"
            )
        path = parts.path.rstrip("/")
        if api_version is None and not path:
            path = "/v1"
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.base_url = urlunsplit((parts.scheme, host, path, "", ""))
        self._auth = (unquote(parts.username or ""), unquote(parts.password or "")) if parts.username else None
        self.model = model
        self.api_version = api_version
        self.api_key_env = api_key_env
        self.local = (parts.hostname or "").lower() in _LOCAL_HOSTS or (parts.hostname or "").endswith(".localhost")
        key = os.environ.get(api_key_env) if api_key_env else None
        if not key and not self.local and self._auth is None:
            raise ConfigError(
                f"OpenAICompatible: the environment variable {api_key_env!r} holding the API key for "
                f"{self.base_url} is not set; export it (or pass api_key_env='<YOUR_VAR>')"
            )
        self._api_key = key or None
        self.concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_tokens_field = max_tokens_field
        self.extra_body = dict(extra_body or {})
        self._headers = dict(headers or {})
        settings: dict[str, Any] = {}
        if api_version is not None:
            settings["api_version"] = api_version
        if max_tokens_field != "max_tokens":
            settings["max_tokens_field"] = max_tokens_field
        if self.extra_body:
            settings["extra_body"] = self.extra_body
        # The identity: no user info, query string or key; the settings that change a reply.
        self.name = (name or f"openai:{model}@{self.base_url}") + _suffix(settings)
        self.requests = 0
        self._client: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._rng = random.Random(0)

    #: The structured judge modes this backend can send (see ``LLMJudge(structured=...)``).
    structured_modes = STRUCTURED_MODES

    def __repr__(self) -> str:
        return f"OpenAICompatible(name={self.name!r}, concurrency={self.concurrency}, retries={self.retries})"

    def __getstate__(self) -> dict[str, Any]:
        # Never pickle the key or live clients; the unpickled copy re-reads the key from its environment.
        state = self.__dict__.copy()
        state.update(_api_key=None, _client=None, _pool=None, _lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._api_key = os.environ.get(self.api_key_env) or None if self.api_key_env else None

    def close(self) -> None:
        """Close the HTTP client and the thread pool (a later ``chat`` opens new ones)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def __enter__(self) -> OpenAICompatible:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure(self) -> tuple[Any, ThreadPoolExecutor]:
        import httpx

        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout, connect=min(self.connect_timeout, self.timeout)),
                    limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
                    auth=self._auth,
                )
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="penguin-llm")
            return self._client, self._pool

    @property
    def url(self) -> str:
        """The completions endpoint."""
        if self.api_version is not None:
            return f"{self.base_url}/openai/deployments/{self.model}/chat/completions?api-version={self.api_version}"
        return f"{self.base_url}/chat/completions"

    def _request_headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self._headers}
        if self._api_key:
            if self.api_version is not None:
                headers["api-key"] = self._api_key
            else:
                headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _redact(self, text: str) -> str:
        for secret in (self._api_key, *(self._auth or ())):
            if secret:
                text = text.replace(secret, "***")
        return redact_credentials(text)

    def chat(
        self, conversations: Sequence[Sequence[Mapping[str, str]]], *, temperature: float = 0.7, max_tokens: int = 512
    ) -> list[str]:
        each = self.chat_each(conversations, temperature=temperature, max_tokens=max_tokens)
        return _chat_from_each(each, len(conversations), self.name)

    def chat_each(
        self,
        conversations: Sequence[Sequence[Mapping[str, str]]],
        *,
        temperature: float = 0.7,
        max_tokens: int = 512,
        seeds: Sequence[int | None] | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> Iterator[ItemReply]:
        """Each conversation's reply or ``RequestError``, in the order they complete; see ``chat_each``."""
        _check_sampling(temperature, max_tokens, self.name)
        _check_conversations(conversations, self.name)
        seeds = _check_seeds(seeds, len(conversations), self.name)
        if not conversations:
            return
        client, pool = self._ensure()
        extra = dict(fields or {})
        if len(conversations) == 1:
            yield 0, self._attempts(client, conversations[0], temperature, max_tokens, seeds[0], extra)
            return
        futures = {
            pool.submit(self._attempts, client, conv, temperature, max_tokens, seeds[i], extra): i
            for i, conv in enumerate(conversations)
        }
        try:
            for f in as_completed(futures):
                yield futures[f], f.result()
        finally:  # the caller stopped early (an error, a kill): drop what was not sent yet
            for f in futures:
                f.cancel()

    def _attempts(
        self,
        client: Any,
        messages: Conversation,
        temperature: float,
        max_tokens: int,
        seed: int | None,
        fields: Mapping[str, Any],
    ) -> str | RequestError:
        """One request with its retries: the reply text, or the ``RequestError`` that ended it."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "temperature": temperature,
            self.max_tokens_field: max_tokens,
            **self.extra_body,
            **fields,
        }
        if seed is not None:
            body["seed"] = int(seed)
        last = RequestError(f"{self.name}: no attempt made", cause="connection", permanent=False)
        for attempt in range(self.retries + 1):
            with self._lock:
                self.requests += 1
            outcome, retry_after = self._attempt(client, body)
            if isinstance(outcome, str):
                return outcome
            if outcome.permanent:
                return outcome
            last = outcome
            if attempt < self.retries:
                delay = min(self.max_backoff, self.backoff * 2.0**attempt * (0.5 + self._rng.random()))
                if retry_after is not None:
                    delay = min(self.max_backoff, max(delay, retry_after))
                logger.warning("%s; retry %d/%d in %.2fs", outcome, attempt + 1, self.retries, delay)
                time.sleep(delay)
        return RequestError(
            f"{self.name}: request failed after {self.retries + 1} attempts: {str(last).removeprefix(self.name + ': ')}",
            cause=last.cause,
            permanent=False,
        )

    def _attempt(self, client: Any, body: Mapping[str, Any]) -> tuple[str | RequestError, float | None]:
        """One HTTP attempt under the deadline: the reply, or the error and a ``Retry-After``."""
        import httpx

        deadline = time.monotonic() + self.timeout
        watchdog: threading.Timer | None = None
        try:
            with client.stream("POST", self.url, json=body, headers=self._request_headers()) as resp:
                # Past the deadline the response is closed under the reader, however it trickles.
                watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), resp.close)
                watchdog.daemon = True
                watchdog.start()
                chunks = []
                for chunk in resp.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise _DeadlinePassed
                status = resp.status_code
                text = b"".join(chunks).decode(resp.encoding or "utf-8", errors="replace")
                headers = resp.headers
        except _DeadlinePassed:
            return self._error(f"passed its {self.timeout:g}s deadline", "timeout"), None
        except httpx.TimeoutException as e:
            return self._error(f"timed out ({type(e).__name__}, deadline {self.timeout:g}s)", "timeout"), None
        except (httpx.TransportError, httpx.StreamError) as e:
            if time.monotonic() >= deadline:
                return self._error(f"passed its {self.timeout:g}s deadline", "timeout"), None
            return self._error(f"connection error: {type(e).__name__}: {self._redact(str(e))}", "connection"), None
        finally:
            if watchdog is not None:
                watchdog.cancel()
        if status == 429 or status >= 500:
            return self._error(f"HTTP {status}: {self._redact(text[:200])!r}", "server_error"), _retry_after(
                headers.get("retry-after")
            )
        if status >= 400:
            hint = ""
            cause = "http_error"
            if status in (401, 403):
                hint = f" (check the API key in ${self.api_key_env})"
            elif status == 404:
                hint = f" (check the base URL {self.base_url} and the model name {self.model!r})"
            if _CONTENT_FILTER.search(text):
                cause, hint = "refused", " (the provider's content filter refused this request)"
            return self._error(f"HTTP {status}{hint}: {self._redact(text[:300])!r}", cause, permanent=True), None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            return self._error(f"malformed response ({e.msg}): {self._redact(text[:120])!r}", "malformed"), None
        try:
            return _completion_text(data), None
        except _Refused as e:
            return self._error(str(e), "refused", permanent=True), None
        except ValueError as e:
            return self._error(
                f"malformed response ({self._redact(str(e))}): {self._redact(text[:120])!r}", "malformed"
            ), None

    def _error(self, what: str, cause: str, *, permanent: bool = False) -> RequestError:
        return RequestError(f"{self.name}: {what}", cause=cause, permanent=permanent)


class _DeadlinePassed(Exception):
    """A request's total deadline passed while its body was still arriving."""


class _Refused(ValueError):
    """A completion the provider stopped with its content filter."""


_CONTENT_FILTER = re.compile(r"content[_ ]?filter|content[_ ]management[_ ]policy|responsible ?ai|safety system", re.I)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _completion_text(data: Any) -> str:
    """The reply text of a chat completion response (``""`` for a null or empty one: the judge decides
    what an empty reply is); ``_Refused`` for a content-filtered one; ``ValueError`` when it is not one."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    if "error" in data and "choices" not in data:
        raise ValueError(f"server error object: {str(data['error'])[:200]}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("no 'choices' in the response")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    reason = choices[0].get("finish_reason")
    if reason == "content_filter" and not content:
        raise _Refused("the provider's content filter stopped the reply (finish_reason='content_filter')")
    if content is None:
        if not isinstance(message, dict):
            raise ValueError(f"the first choice has no message (finish_reason={reason!r})")
        return ""
    if not isinstance(content, str):
        raise ValueError(f"the first choice's content is a {type(content).__name__}, not text")
    return content


def from_spec(spec: str, arg: str | None, **kwargs: Any) -> OpenAICompatible:
    """The registry's factory for ``"openai:<model>@<base_url>"`` and ``"openai:<model>"`` (api.openai.com)."""
    if not arg:
        raise ConfigError(
            f"backend spec {redact_credentials(spec)!r}: give the model, e.g. 'openai:gpt-4o-mini@http://localhost:8000/v1'"
        )
    at = arg.find("@http")
    model, base_url = (arg[:at], arg[at + 1 :]) if at >= 0 else (arg, "https://api.openai.com/v1")
    return OpenAICompatible(model, base_url, **kwargs)
