"""LLM backends: one ``Backend`` protocol over OpenAI-compatible servers, local transformers models and a
scripted stand-in for tests.

A backend turns conversations into replies, many at once: ``chat(conversations)`` returns one reply per
conversation, in order, and raises ``BackendError`` once its own retries are spent. The backends here
also answer item by item (``chat_each``: each reply, or that one request's ``RequestError``, as it
arrives, with a sampling seed per conversation and request fields such as a JSON schema), so that one
refused request never takes its batch with it; ``chat_each(backend, ...)`` gives any ``Backend`` that
form. Transport retries live here and only here; the judge above never retries a transport failure,
it asks again (with another seed) for empty answers and unreadable judgments.

Backends are chosen by a spec string (``make_backend``), so env kwargs, CLIs and configs can name them:

* ``"openai:<model>@<base_url>"``: any ``/v1/chat/completions`` server (vLLM, Ollama, llama.cpp
  server, OpenAI, Azure OpenAI); ``"openai:<model>"`` talks to api.openai.com.
* ``"hf:<model id, local path or .gguf file>"``: a local Hugging Face causal LM with batched generation.
* ``"scripted"``: canned replies (``replies=[...]`` or a callable), for tests and demos only.

httpx and transformers/torch are imported inside the constructors (``pip install "penguin-gym[llm]"``),
so ``import penguin_gym`` stays light. API keys are read from the environment variable the user names,
in the constructor, and are never logged, never part of ``name`` (which caches and result files key
on) and never pickled; credentials written into a URL are redacted (``redact_credentials``) wherever a
spec is shown. ``name`` holds every setting that can change a reply, so a cache never serves a reply
made under other settings.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit, urlunsplit

from penguin_gym.error import BackendError, ConfigError, DependencyNotInstalled, RequestError

logger = logging.getLogger(__name__)

Message = Mapping[str, str]
Conversation = Sequence[Message]

_INSTALL_HINT = 'pip install "penguin-gym[llm]"'
_PREFILL_MODES = ("auto", "ragged", "padded", "plain")
#: On CPU, the most attention scores (rows x heads x queries x keys) one prefill forward computes: past
#: a few million, a masked batch runs out of cache and costs more than its rows would one by one.
_CPU_PREFILL_SCORES = 4_000_000
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "[::1]"})


@runtime_checkable
class Backend(Protocol):
    """Turns chat conversations into replies.

    Attributes:
        name: The backend's identity without secrets (e.g. ``"openai:gpt-4o@https://api.openai.com/v1"``);
            part of judge names and so of cache keys.
    """

    name: str

    def chat(
        self, conversations: Sequence[Sequence[Mapping[str, str]]], *, temperature: float = 0.7, max_tokens: int = 512
    ) -> list[str]:
        """One reply per conversation (messages are ``{"role", "content"}`` dicts), in order.

        Raises:
            BackendError: when a reply cannot be had after the backend's retries.
        """
        ...


def _check_conversations(conversations: Sequence[Sequence[Mapping[str, str]]], who: str) -> None:
    for i, conv in enumerate(conversations):
        if not conv:
            raise ConfigError(f"{who}: conversation {i} is empty; give at least one message")
        for msg in conv:
            if "role" not in msg or "content" not in msg:
                raise ConfigError(f"{who}: conversation {i} has a message without 'role'/'content': {dict(msg)!r}")


def _check_sampling(temperature: float, max_tokens: int, who: str) -> None:
    if not temperature >= 0:
        raise ConfigError(f"{who}: temperature = {temperature!r} must be >= 0")
    if not (isinstance(max_tokens, int) and max_tokens >= 1):
        raise ConfigError(f"{who}: max_tokens = {max_tokens!r} must be an integer >= 1")


# --------------------------------------------------------------------------------------------------
# Per-item requests, seeds and secrets

#: What ``chat_each`` yields: a conversation's index and its reply, or the error of that one request.
ItemReply = tuple[int, "str | BackendError"]

_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.\-]*://)(?P<info>[^/\s@]+)@", re.IGNORECASE)
_SECRET_QUERY = re.compile(r"(?P<key>[?&](?:api[_-]?key|key|token|access[_-]?token|auth|password)=)[^&\s#]+", re.I)


def redact_credentials(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``: the user-info of
    ``scheme://user:KEY@host`` and ``api_key=``/``key=``/``token=`` query values.

    Labels, configs, result rows, logs and W&B records pass backend specs through this, so a key put in a
    URL is never written anywhere.

    Example:
        >>> redact_credentials("openai:m@http://user:sk-123@host:8000/v1?api_key=sk-123")
        'openai:m@http://***@host:8000/v1?api_key=***'
    """
    return _SECRET_QUERY.sub(r"\g<key>***", _USERINFO.sub(r"\g<scheme>***@", text))


def chat_each(
    backend: Backend,
    conversations: Sequence[Sequence[Mapping[str, str]]],
    *,
    temperature: float,
    max_tokens: int,
    seeds: Sequence[int | None] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> Iterator[ItemReply]:
    """``backend``'s replies one by one, as each arrives, with the failure of one request as that item's
    value (a ``BackendError``, a ``RequestError`` where the backend says whether it is permanent).

    Backends of this module answer per item (``chat_each`` method); any other ``Backend`` is asked with
    one ``chat`` call, whose failure becomes every item's.

    Args:
        backend: The backend.
        conversations: The conversations.
        temperature: Sampling temperature.
        max_tokens: Reply length limit.
        seeds: A sampling seed per conversation (``None``: the backend's own), e.g. to ask again for a
            different reply than the one that could not be read.
        fields: Request fields for this call only (a ``response_format`` or a ``grammar``); backends
            that cannot honour them raise ``ConfigError``.
    """
    own = getattr(backend, "chat_each", None)
    if callable(own):
        yield from own(conversations, temperature=temperature, max_tokens=max_tokens, seeds=seeds, fields=fields)
        return
    if fields:
        raise ConfigError(f"{backend.name}: this backend takes no request fields ({sorted(fields)})")
    try:
        replies = backend.chat(conversations, temperature=temperature, max_tokens=max_tokens)
    except BackendError as e:
        for i in range(len(conversations)):
            yield i, e
        return
    if len(replies) != len(conversations):
        raise BackendError(f"{backend.name}: {len(replies)} replies to {len(conversations)} conversations")
    yield from enumerate(replies)


def _chat_from_each(each: Iterator[ItemReply], n: int, who: str) -> list[str]:
    """``chat``'s contract over ``chat_each``: every reply in order, or one ``BackendError`` for all."""
    out: list[str | None] = [None] * n
    errors: dict[int, BackendError] = {}
    for i, reply in each:
        if isinstance(reply, BackendError):
            errors[i] = reply
        else:
            out[i] = reply
    if errors:
        first = errors[min(errors)]
        if n == 1:
            raise first
        raise BackendError(f"{who}: {len(errors)} of {n} requests failed; first: {first}") from first
    return [r if r is not None else "" for r in out]


def _suffix(settings: Mapping[str, Any]) -> str:
    """The settings part of a backend's name: ``[k=v,...]`` with long values hashed."""
    parts = []
    for k, v in settings.items():
        text = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
        if len(text) > 24 or any(c in text for c in ",[]="):
            text = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
        parts.append(f"{k}={text}")
    return f"[{','.join(parts)}]" if parts else ""


# --------------------------------------------------------------------------------------------------
# Scripted


class ScriptedBackend:
    """Canned replies, for tests and demos (constructed only when asked for by name).

    Args:
        replies: Either a list consumed in order, one item per conversation (a string is the reply; an
            exception instance is that request's failure, a ``BackendError`` unless it is one), or a
            callable ``f(messages) -> str`` (or ``f(messages, seed) -> str``) called for every
            conversation (it may raise ``BackendError``).
        name: The backend's identity.
        delay: Seconds to sleep per conversation, to stand in for a real model's latency.
        batch_delay: Seconds to sleep per ``chat`` call (per batch).

    Attributes:
        calls: Conversations answered so far.
        batches: ``chat`` calls so far.
        history: Every conversation seen, in order.
        seeds: The seed of every conversation seen (``None`` where none was asked for), in order.
        fields: The request fields of every conversation seen, in order.
    """

    def __init__(
        self,
        replies: Sequence[str | BaseException] | Callable[..., str],
        *,
        name: str = "scripted",
        delay: float = 0.0,
        batch_delay: float = 0.0,
    ) -> None:
        if isinstance(replies, str):
            raise ConfigError("ScriptedBackend: replies must be a list of strings or a callable, not one string")
        self._fn = replies if callable(replies) else None
        self._fn_seeded = False
        if self._fn is not None:
            try:
                self._fn_seeded = len(inspect.signature(self._fn).parameters) >= 2
            except (TypeError, ValueError):
                self._fn_seeded = False
        self._queue = None if callable(replies) else list(replies)
        self.name = name
        self.delay = float(delay)
        self.batch_delay = float(batch_delay)
        self.calls = 0
        self.batches = 0
        self.history: list[list[dict[str, str]]] = []
        self.seeds: list[int | None] = []
        self.fields: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ScriptedBackend(name={self.name!r}, calls={self.calls})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

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
        """Each conversation's reply (or failure), in order; see ``chat_each``."""
        _check_sampling(temperature, max_tokens, self.name)
        _check_conversations(conversations, self.name)
        seeds = _check_seeds(seeds, len(conversations), self.name)
        with self._lock:
            self.batches += 1
        if self.batch_delay:
            time.sleep(self.batch_delay)
        for index, conv in enumerate(conversations):
            if self.delay:
                time.sleep(self.delay)
            with self._lock:
                self.calls += 1
                self.history.append([dict(m) for m in conv])
                self.seeds.append(seeds[index])
                self.fields.append(dict(fields or {}))
                if self._fn is None:
                    assert self._queue is not None
                    if not self._queue:
                        raise BackendError(
                            f"{self.name}: the scripted backend ran out of replies after {self.calls - 1}"
                        )
                    item: str | BaseException = self._queue.pop(0)
                else:
                    item = ""
            if self._fn is not None:
                try:
                    item = self._fn(conv, seeds[index]) if self._fn_seeded else self._fn(conv)
                except BackendError as e:
                    item = e
            if isinstance(item, BackendError):
                yield index, item
            elif isinstance(item, BaseException):
                err = BackendError(f"{self.name}: scripted failure: {item}")
                err.__cause__ = item
                yield index, err
            elif not isinstance(item, str):
                raise BackendError(f"{self.name}: scripted reply {item!r} is not a string")
            else:
                yield index, item


def _check_seeds(seeds: Sequence[int | None] | None, n: int, who: str) -> list[int | None]:
    if seeds is None:
        return [None] * n
    if len(seeds) != n:
        raise ConfigError(f"{who}: {len(seeds)} seeds for {n} conversations")
    return list(seeds)


# --------------------------------------------------------------------------------------------------
# OpenAI-compatible HTTP

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


# --------------------------------------------------------------------------------------------------
# Local transformers


class Transformers:
    """A local Hugging Face causal LM, with its chat template and batched generation.

    Conversations are rendered with the tokenizer's chat template, sorted by length (less padding) and
    generated ``batch_size`` at a time. The rows of a batch share a prefix (a judge prompt's system
    message, rubric and output format, about half of it): it is prefilled once and its keys and values
    serve every row, which is laid out as ``prefix | padding | own tokens`` so that each continuation
    starts at the same column. On CPU the rows' own tokens are prefilled in groups small enough for
    their attention scores to stay in cache, and decoding reads the prefix's keys and values once per
    step for the whole batch instead of once per row (``prefill="auto"``). The replies are the ones
    each conversation gets on its own (the tests check it to float64 precision). Models whose cache is
    not a plain key/value cache (sliding windows, recurrent layers) and transformers versions without
    layered caches get plain left-padded batches. While a batch decodes, the model's attention
    implementation is switched to the shared-prefix one and back: do not run the same model object
    from another thread meanwhile.

    Decoding is the same on every backend: greedy at ``temperature == 0``, else plain temperature
    sampling over the whole distribution (no top-k or top-p), as an OpenAI-compatible server does by
    default; the model's own ``generation_config`` sampling defaults (HF's ``top_k=50``, a model's
    ``top_p=0.9``) do not apply. Sampling inverts the cumulative distribution of ``softmax(logits / T)``
    with one uniform draw per row from the backend's own generator (an exact draw; on CPU batches a
    third of the cost of Gumbel noise over the vocabulary and less than ``torch.multinomial``).

    Args:
        model: A model id on the Hub, a local directory, a local ``.gguf`` file (llama.cpp's format:
            the model and its tokenizer are read from it, dequantized; needs ``pip install gguf``), or
            a loaded ``PreTrainedModel``.
        tokenizer: A tokenizer (default: loaded from ``model``'s id, path or GGUF file).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, or ``"auto"`` (spread over devices with
            accelerate's ``device_map="auto"``). Default: CUDA when available, else CPU.
        dtype: ``"auto"``, ``"float32"``, ``"bfloat16"``, ``"float16"`` or a ``torch.dtype`` (default:
            ``"auto"`` for loaded ids, unchanged for model objects).
        batch_size: Conversations per ``generate`` call.
        chat_template: A Jinja chat template, for tokenizers without one (base models).
        trust_remote_code: Passed to ``from_pretrained``.
        seed: When set, each ``chat`` call samples from a generator seeded with it (repeatable replies);
            the global torch RNG is never touched.
        name: The identity in judge names and caches (default ``"hf:<model id or path>"``); the dtype,
            the seed and a GGUF file are appended to it either way.
        gguf_file: A GGUF file inside the repository or folder ``model`` names (for a Hub repository of
            GGUF files; a path to a ``.gguf`` file needs none).
        model_kwargs: More ``from_pretrained`` arguments (``attn_implementation``, ``quantization_config``...).
        prefill: ``"auto"`` (the above; on GPUs the rows' own tokens are prefilled in one padded batch and
            the prefix is copied to each row for decoding), ``"padded"``, ``"ragged"`` (each row's own
            tokens on their own), or ``"plain"`` (no shared prefix: one left-padded ``generate``).

    Attributes:
        generate_calls: ``generate`` calls so far.
    """

    def __init__(
        self,
        model: str | Any,
        *,
        tokenizer: Any = None,
        device: str | None = None,
        dtype: str | Any = None,
        batch_size: int = 8,
        chat_template: str | None = None,
        trust_remote_code: bool = False,
        seed: int | None = None,
        name: str | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        prefill: Literal["auto", "ragged", "padded", "plain"] = "auto",
        gguf_file: str | None = None,
    ) -> None:
        try:
            import torch
            import transformers
        except ImportError as e:
            raise DependencyNotInstalled(
                f"the transformers backend needs torch and transformers: {_INSTALL_HINT}"
            ) from e
        if batch_size < 1:
            raise ConfigError(f"Transformers: batch_size = {batch_size} must be >= 1")
        if prefill not in _PREFILL_MODES:
            raise ConfigError(f"Transformers: prefill = {prefill!r}; valid: {', '.join(map(repr, _PREFILL_MODES))}")
        self._torch = torch
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_dtype = _torch_dtype(torch, dtype)
        if isinstance(model, str):
            model_id = model
            if model.lower().endswith(".gguf"):
                path = Path(model).expanduser()
                if not path.is_file():
                    raise ConfigError(f"Transformers: no GGUF file at {model!r}")
                if gguf_file is not None:
                    raise ConfigError("Transformers: give either a .gguf path or gguf_file=, not both")
                model, gguf_file = str(path.parent), path.name
            kwargs: dict[str, Any] = dict(model_kwargs or {})
            kwargs["trust_remote_code"] = trust_remote_code
            tokenizer_kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
            if gguf_file is not None:
                try:
                    import accelerate  # noqa: F401
                    import gguf  # noqa: F401
                except ImportError as e:
                    raise DependencyNotInstalled(
                        f"Transformers: reading the GGUF file {gguf_file!r} needs the gguf and accelerate packages: "
                        f"pip install gguf accelerate (both in {_INSTALL_HINT.removeprefix('pip install ')})"
                    ) from e
                kwargs["gguf_file"] = tokenizer_kwargs["gguf_file"] = gguf_file
            version = re.match(r"(\d+)\.(\d+)", transformers.__version__)
            new_api = version is None or (int(version[1]), int(version[2])) >= (4, 56)
            dtype_key = "dtype" if new_api else "torch_dtype"  # renamed in transformers 4.56
            kwargs[dtype_key] = "auto" if torch_dtype is None else torch_dtype
            if device == "auto":
                kwargs["device_map"] = "auto"
            try:
                loaded = transformers.AutoModelForCausalLM.from_pretrained(model, **kwargs)
                if tokenizer is None:
                    tokenizer = transformers.AutoTokenizer.from_pretrained(model, **tokenizer_kwargs)
            except (OSError, ValueError) as e:
                raise ConfigError(f"Transformers: cannot load model {model!r}: {e}") from e
            lm: Any = loaded
        else:
            model_id = str(getattr(getattr(model, "config", None), "_name_or_path", "") or "in-memory")
            if tokenizer is None:
                raise ConfigError("Transformers: a model object needs its tokenizer (tokenizer=...)")
            lm = model.to(torch_dtype) if torch_dtype is not None else model
        if device != "auto":
            lm = lm.to(device)
        lm.eval()
        if chat_template is not None:
            tokenizer.chat_template = chat_template
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                f"Transformers: the tokenizer of {model_id!r} has no chat template; pass chat_template='...' "
                "(a Jinja template over `messages`) or use an instruction-tuned model"
            )
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token is None:
                raise ConfigError(f"Transformers: the tokenizer of {model_id!r} has neither a pad nor an eos token")
            tokenizer.pad_token = tokenizer.eos_token
        self.model = lm
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = int(batch_size)
        self.seed = seed
        self.gguf_file = gguf_file
        settings: dict[str, Any] = {"dtype": str(getattr(lm, "dtype", torch_dtype or "auto")).removeprefix("torch.")}
        if seed is not None:
            settings["seed"] = int(seed)
        if gguf_file is not None and not model_id.lower().endswith(".gguf"):
            settings["gguf"] = gguf_file
        if chat_template is not None:
            settings["chat_template"] = chat_template
        self.name = (name or f"hf:{model_id}") + _suffix(settings)
        self.generate_calls = 0
        self.prefill = prefill
        self._cache_api = _CacheAPI.detect(lm)
        self._shared_decoding = True
        self._lock = threading.Lock()
        self._max_positions = getattr(getattr(lm, "config", None), "max_position_embeddings", None)

    def __repr__(self) -> str:
        return f"Transformers(name={self.name!r}, device={self.device!r}, batch_size={self.batch_size})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_torch=None, _lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import torch

        self.__dict__.update(state)
        self._torch = torch
        self._lock = threading.Lock()

    def _render(self, conv: Conversation) -> str:
        return str(
            self.tokenizer.apply_chat_template(
                [{"role": m["role"], "content": m["content"]} for m in conv], tokenize=False, add_generation_prompt=True
            )
        )

    def chat_each(
        self,
        conversations: Sequence[Sequence[Mapping[str, str]]],
        *,
        temperature: float = 0.7,
        max_tokens: int = 512,
        seeds: Sequence[int | None] | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> Iterator[ItemReply]:
        """The replies batch by batch, conversations that share a seed generated together; a failed
        batch is the failure of its items (``RequestError``, not permanent). No request fields: local
        generation has no constrained decoding here (``ConfigError``)."""
        if fields:
            raise ConfigError(
                f"{self.name}: local generation takes no request fields ({sorted(fields)}); constrained "
                "output needs a server that takes a JSON schema or a grammar (vLLM, llama.cpp)"
            )
        _check_sampling(temperature, max_tokens, self.name)
        _check_conversations(conversations, self.name)
        seeds = _check_seeds(seeds, len(conversations), self.name)
        groups: dict[int | None, list[int]] = {}
        for i, seed in enumerate(seeds):
            groups.setdefault(seed, []).append(i)
        for seed, members in groups.items():
            try:
                replies = self._chat([conversations[i] for i in members], temperature, max_tokens, seed)
            except BackendError as e:
                for i in members:
                    yield i, RequestError(str(e), cause="server_error", permanent=False)
                continue
            yield from zip(members, replies, strict=True)

    def chat(
        self, conversations: Sequence[Sequence[Mapping[str, str]]], *, temperature: float = 0.7, max_tokens: int = 512
    ) -> list[str]:
        _check_sampling(temperature, max_tokens, self.name)
        _check_conversations(conversations, self.name)
        return self._chat(conversations, temperature, max_tokens, None)

    def _chat(
        self,
        conversations: Sequence[Sequence[Mapping[str, str]]],
        temperature: float,
        max_tokens: int,
        seed: int | None,
    ) -> list[str]:
        """The replies, sampled from a generator seeded with ``seed`` (else the backend's ``seed``)."""
        if not conversations:
            return []
        from transformers import GenerationConfig, LogitsProcessorList

        torch = self._torch
        prompts = [self._render(c) for c in conversations]
        ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        for i, seq in enumerate(ids):
            if self._max_positions and len(seq) + max_tokens > self._max_positions:
                raise BackendError(
                    f"{self.name}: conversation {i} is {len(seq)} tokens; with max_tokens={max_tokens} it exceeds "
                    f"the model's {self._max_positions} positions (shorten the prompt or lower max_tokens)"
                )
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out: list[str | None] = [None] * len(ids)
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        config = GenerationConfig(
            max_new_tokens=max_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=eos if eos is not None else self.tokenizer.eos_token_id,
        )
        with self._lock:  # one generate at a time per model: they would only contend for the device
            processors = LogitsProcessorList()
            if temperature > 0:
                generator = torch.Generator(device=self.model.device)
                seed = self.seed if seed is None else seed
                if seed is None:
                    generator.seed()
                else:
                    generator.manual_seed(seed)
                processors.append(_InverseCDFSampling(temperature, generator))
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                try:
                    with torch.inference_mode():
                        gen, prompt_len = self._generate([ids[i] for i in chunk], config, processors)
                except (RuntimeError, ValueError) as e:
                    raise BackendError(f"{self.name}: generation failed on a batch of {len(chunk)}: {e}") from e
                self.generate_calls += 1
                texts = self.tokenizer.batch_decode(gen[:, prompt_len:], skip_special_tokens=True)
                for i, text in zip(chunk, texts, strict=True):
                    out[i] = text.strip()
        return [t if t is not None else "" for t in out]

    def _generate(self, rows: list[list[int]], config: Any, processors: Any) -> tuple[Any, int]:
        """Generate for one batch of token rows (longest first); returns ``(sequences, prompt length)``.

        ``prefill="plain"``, or a single row: one left-padded ``generate``. Otherwise the rows' longest
        common prefix (a judge prompt's system message and rubric) is prefilled once and its key/value
        cache shared by every row, and the rows are laid out as ``prefix | padding | rest`` (positions
        follow the attention mask, so each row's positions are exactly its unpadded ones). The rests are
        prefilled all together (``"padded"``, the default on accelerators), one by one (``"ragged"``), or
        on CPU (``"auto"``) in groups of consecutive rows small enough that their attention scores stay in
        cache (a masked batch of long prompts costs more on CPU than its rows one by one); then the whole
        batch decodes at once. Models whose cache is not a plain key/value cache (sliding windows,
        recurrent state) fall back to ``"plain"``.
        """
        device = self.model.device
        mode = self.prefill if self.prefill != "auto" or device.type == "cpu" else "padded"
        if len(rows) > 1 and max(len(r) for r in rows) > 1 and mode != "plain" and self._cache_api is not None:
            try:
                return self._generate_shared(rows, mode, config, processors)
            except _SharedPrefixUnsupported as e:
                logger.info("%s: no shared-prefix prefill for a %s cache; plain batched generation", self.name, e)
                self._cache_api = None
        batch = self.tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt")
        input_ids = batch["input_ids"].to(device)
        gen = self.model.generate(
            input_ids=input_ids,
            attention_mask=batch["attention_mask"].to(device),
            generation_config=config,
            logits_processor=processors,
        )
        return gen, input_ids.shape[1]

    def _generate_shared(self, rows: list[list[int]], mode: str, config: Any, processors: Any) -> tuple[Any, int]:
        torch = self._torch
        api = self._cache_api
        assert api is not None
        device = self.model.device
        n, longest, shortest = len(rows), max(len(r) for r in rows), min(len(r) for r in rows)
        first, prefix = rows[0], 0
        while prefix < shortest - 1 and all(r[prefix] == first[prefix] for r in rows):
            prefix += 1
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((n, longest), pad, dtype=torch.long)
        attention = torch.zeros((n, longest), dtype=torch.long)
        for i, r in enumerate(rows):
            rest = len(r) - prefix
            input_ids[i, :prefix] = torch.tensor(r[:prefix])
            input_ids[i, longest - rest :] = torch.tensor(r[prefix:])
            attention[i, :prefix] = 1
            attention[i, longest - rest :] = 1
        input_ids, attention = input_ids.to(device), attention.to(device)
        shared = self._prefill(input_ids[:1, :prefix], attention[:1, :prefix], None) if prefix else None
        # Every row but its last token (which ``generate`` runs) goes into the cache, right-aligned at
        # column ``longest - 1``; columns of padding stay zero (masked, never read). With shared-prefix
        # decoding the cache holds the rows' own columns only (from ``base = prefix``).
        shared_decoding = (
            shared is not None
            and mode == "auto"
            and self._shared_decoding
            and _SharedPrefixDecoding.available(self.model)
        )
        base = prefix if shared_decoding else 0
        rests = [len(r) - prefix - 1 for r in rows]
        layers: list[tuple[Any, Any]] = []
        for group in self._prefill_groups(rests, prefix, mode):
            width = rests[group[0]]  # the group's longest rest (rows are longest first)
            if width == 0:
                continue
            lo, hi = group[0], group[-1] + 1
            cols = slice(longest - 1 - width, longest - 1)
            mask = torch.cat([attention[lo:hi, :prefix], attention[lo:hi, cols]], dim=1)
            kv = self._prefill(input_ids[lo:hi, cols], mask, shared)
            if not layers:
                layers = [_zeros_like_batch(k, n, longest - 1 - base) for k, _ in kv]
            for (big_k, big_v), (k, v) in zip(layers, kv, strict=True):
                big_k[lo:hi, :, cols.start - base : cols.stop - base] = k[:, :, prefix:]
                big_v[lo:hi, :, cols.start - base : cols.stop - base] = v[:, :, prefix:]
        if shared is not None and not layers:
            layers = [_zeros_like_batch(k, n, longest - 1 - base) for k, _ in shared]
        kwargs = {"input_ids": input_ids, "attention_mask": attention, "generation_config": config}
        if shared_decoding:
            assert shared is not None
            decoding = _SharedPrefixDecoding(
                self.model, shared, layers, prefix, attention[:, prefix : longest - 1], config.max_new_tokens + 1
            )
            try:
                with decoding as cache:
                    gen = self.model.generate(logits_processor=processors, **kwargs, **{api.kwarg: cache})
                if decoding.calls < len(shared):  # the model's attention does not go through the registry
                    raise _SharedPrefixUnsupported(f"attention of {type(self.model).__name__}")
                return gen, longest
            except _SharedPrefixUnsupported as e:
                logger.info("%s: no shared-prefix decoding (%s); the prefix is copied to every row", self.name, e)
                self._shared_decoding = False
        if shared is not None and base:  # the prefix, copied to every row, in front of the rows' own columns
            layers = [
                (torch.cat([pk.expand(n, -1, -1, -1), k], dim=2), torch.cat([pv.expand(n, -1, -1, -1), v], dim=2))
                for (pk, pv), (k, v) in zip(shared, layers, strict=True)
            ]
        elif shared is not None:
            for (big_k, big_v), (k, v) in zip(layers, shared, strict=True):
                big_k[:, :, :prefix] = k
                big_v[:, :, :prefix] = v
        gen = self.model.generate(logits_processor=processors, **kwargs, **{api.kwarg: api.build(layers)})
        return gen, longest

    def _prefill_groups(self, rests: list[int], prefix: int, mode: str) -> list[list[int]]:
        """Consecutive rows prefilled together: all (``"padded"``), one by one (``"ragged"``), or on CPU
        (``"auto"``) as many as keep a group's attention scores (rows x heads x its longest rest x the
        keys) under ``_CPU_PREFILL_SCORES`` elements."""
        n = len(rests)
        if mode == "padded":
            return [list(range(n))]
        if mode == "ragged":
            return [[i] for i in range(n)]
        heads = int(getattr(getattr(self.model, "config", None), "num_attention_heads", 1) or 1)
        groups: list[list[int]] = []
        for i in range(n):
            if groups:
                width = rests[groups[-1][0]]  # the group's longest rest: rows come longest first
                if (len(groups[-1]) + 1) * heads * width * (prefix + width) <= _CPU_PREFILL_SCORES:
                    groups[-1].append(i)
                    continue
            groups.append([i])
        return groups

    def _prefill(
        self, input_ids: Any, attention_mask: Any, past: list[tuple[Any, Any]] | None
    ) -> list[tuple[Any, Any]]:
        """Per-layer ``(keys, values)`` after running ``input_ids`` (left-padded rows; ``attention_mask``
        covers ``past`` and them) after ``past`` (one row's cache, shared by all rows)."""
        api = self._cache_api
        assert api is not None
        n = input_ids.shape[0]
        cache = api.build([(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in past or []])
        positions = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)[:, -input_ids.shape[1] :]
        mask = attention_mask
        if getattr(self.model.config, "_attn_implementation", None) in ("sdpa", "eager"):
            mask = _prefill_mask(attention_mask, input_ids.shape[1], self.model.dtype)
        kwargs: dict[str, Any] = {api.kwarg: cache}
        if api.logits_kwarg:
            kwargs[api.logits_kwarg] = 1  # the prefill's logits are not needed: keep one position
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, **kwargs)
        return api.tensors(getattr(out, api.kwarg))  # the output names the cache as the input does


_SHARED_ATTENTION = "penguin_shared_prefix"


class _SharedPrefixDecoding:
    """A context in which ``model.generate`` decodes a batch whose rows share a prefix, reading the
    prefix's keys and values once per step instead of once per row.

    The cache holds each row's own part only (its columns after the prefix, padded on the left); every attention
    module gets the prefix's ``(keys, values)`` and the padding's additive mask, and the model's attention
    implementation is switched to ``_shared_prefix_attention``, which attends to the prefix (one copy,
    broadcast over the rows) and to the row's own keys in one softmax. Positions come from ``generate``'s
    attention mask as usual, so the result is the same attention as over the full rows; on CPU, where
    decoding a batch of long prompts is bound by reading the cache, this halves the reads of a judge
    prompt whose rubric is half its length, and skips building a padding mask at each step.

    Needs transformers' layered caches and attention registry (transformers >= 5); ``available`` says so.
    """

    def __init__(
        self,
        model: Any,
        prefix: list[tuple[Any, Any]],
        rests: list[tuple[Any, Any]],
        prefix_len: int,
        rest_mask: Any,
        capacity: int,
    ) -> None:
        import torch

        self.model = model
        self.capacity = capacity
        self.prefix = prefix
        self.rests = rests
        self.prefix_len = prefix_len
        bias = torch.zeros(rest_mask.shape, dtype=prefix[0][0].dtype, device=rest_mask.device)
        self.bias = bias.masked_fill(rest_mask == 0, float("-inf"))[:, None, None, :]
        self._saved: Any = None
        self._modules: list[Any] = []
        #: Calls of ``_shared_prefix_attention`` so far (none: the model bypasses the registry).
        self.calls = 0

    @staticmethod
    def available(model: Any) -> bool:
        try:
            from transformers import AttentionInterface
            from transformers.cache_utils import DynamicCache, DynamicLayer  # noqa: F401
        except ImportError:
            return False
        config = getattr(model, "config", None)
        if config is None or getattr(config, "_attn_implementation", None) not in ("sdpa", "eager"):
            return False
        if _SHARED_ATTENTION not in AttentionInterface._global_mapping:
            AttentionInterface.register(_SHARED_ATTENTION, _shared_prefix_attention)
        return True

    def __enter__(self) -> Any:
        from transformers.cache_utils import DynamicCache, DynamicLayer

        prefix_len, capacity = self.prefix_len, self.capacity

        class RestLayer(DynamicLayer):
            """The rows' own keys and values, in a buffer with room for the reply (no copy per token);
            the prefix's are counted in the length but held once, elsewhere."""

            def __init__(self, keys: Any, values: Any) -> None:
                super().__init__()
                self.lazy_initialization(keys, values)
                shape = (*keys.shape[:2], keys.shape[2] + capacity, keys.shape[3])
                self.buffers = keys.new_zeros(shape), values.new_zeros(shape)
                self.length = 0
                self.update(keys, values)

            def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
                end = self.length + key_states.shape[-2]
                if end > self.buffers[0].shape[-2]:
                    raise _SharedPrefixUnsupported(f"more than {capacity} new tokens")
                self.buffers[0][:, :, self.length : end] = key_states
                self.buffers[1][:, :, self.length : end] = value_states
                self.length = end
                self.keys, self.values = self.buffers[0][:, :, :end], self.buffers[1][:, :, :end]
                return self.keys, self.values

            def get_seq_length(self) -> int:
                return prefix_len + self.length

            def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
                return self.get_seq_length() + query_length, 0

        cache = DynamicCache()
        cache.layers = [RestLayer(k, v) for k, v in self.rests]
        for module in self.model.modules():
            idx = getattr(module, "layer_idx", None)
            if isinstance(idx, int) and 0 <= idx < len(self.prefix):
                module._penguin_shared_prefix = (*self.prefix[idx], self.bias, self)
                self._modules.append(module)
        self._saved = self.model.config._attn_implementation
        self.model.config._attn_implementation = _SHARED_ATTENTION
        return cache

    def __exit__(self, *exc: Any) -> None:
        self.model.config._attn_implementation = self._saved
        for module in self._modules:
            del module._penguin_shared_prefix


def _shared_prefix_attention(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None, **kwargs: Any
) -> tuple[Any, None]:
    """Attention of one new token per row over a shared prefix (held once) and the row's own keys.

    ``query``: ``(rows, heads, 1, dim)``; ``key``/``value``: the rows' own part ``(rows, kv heads, n, dim)``;
    the prefix and the padding's additive mask come from ``module._penguin_shared_prefix``. Grouped-query
    heads are grouped, not repeated. Returns the output as ``(rows, 1, heads, dim)``.
    """
    import torch

    state = getattr(module, "_penguin_shared_prefix", None)
    if state is None:
        raise _SharedPrefixUnsupported(f"{type(module).__name__} has no layer_idx")
    prefix_k, prefix_v, bias, decoding = state
    unsupported = [k for k in ("softcap", "s_aux", "sliding_window") if kwargs.get(k) is not None]
    if unsupported or query.shape[2] != 1:
        raise _SharedPrefixUnsupported(f"attention with {unsupported or f'{query.shape[2]} new tokens per row'}")
    decoding.calls += 1
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    scale = scaling if scaling is not None else dim**-0.5
    q = query.reshape(rows, kv_heads, heads // kv_heads, dim).float() * scale
    s_prefix = q @ prefix_k.float().transpose(-1, -2)  # (rows, kv heads, group, prefix): the prefix read once
    s_rest = q @ key.float().transpose(-1, -2)
    s_rest[..., : bias.shape[-1]] += bias  # (rows, 1, 1, initial length): -inf on the padding
    top = torch.maximum(s_prefix.amax(-1, keepdim=True), s_rest.amax(-1, keepdim=True))
    p_prefix, p_rest = (s_prefix - top).exp_(), (s_rest - top).exp_()
    norm = p_prefix.sum(-1, keepdim=True) + p_rest.sum(-1, keepdim=True)
    out = (p_prefix @ prefix_v.float() + p_rest @ value.float()) / norm
    return out.to(query.dtype).reshape(rows, heads, 1, dim).transpose(1, 2), None


def _prefill_mask(attention_mask: Any, queries: int, dtype: Any) -> Any:
    """The additive 4D mask ``(rows, 1, queries, keys)`` of a prefill whose ``queries`` last columns are
    new: causal, padding masked, and each query sees at least itself (a padding query would otherwise
    see nothing and turn NaN). A few passes over the ``rows x queries x keys`` elements, fewer than
    transformers' own mask builder makes."""
    import torch

    keys = attention_mask.shape[1]
    device = attention_mask.device
    q_pos = torch.arange(keys - queries, keys, device=device)[:, None]
    k_pos = torch.arange(keys, device=device)[None, :]
    allowed = (k_pos <= q_pos) & attention_mask[:, None, None, :].bool()
    allowed |= k_pos == q_pos
    zero = torch.zeros((), dtype=dtype, device=device)
    return torch.where(allowed, zero, torch.full((), torch.finfo(dtype).min, dtype=dtype, device=device))


def _zeros_like_batch(k: Any, n: int, length: int) -> tuple[Any, Any]:
    """Zero keys and values for ``n`` rows of ``length`` positions, shaped like layer keys ``k``."""
    shape = (n, k.shape[1], length, k.shape[3])
    return k.new_zeros(shape), k.new_zeros(shape)


class _SharedPrefixUnsupported(Exception):
    """The model's cache is not a plain per-layer key/value cache (sliding windows, recurrent state)."""


class _CacheAPI:
    """How this transformers version runs a model over a key/value cache: the keyword (``cache`` since
    transformers 5, ``past_key_values`` before; the output attribute has the same name), ``DynamicCache``
    from tensors, and the keyword that keeps only the last position's logits."""

    def __init__(self, kwarg: str, cache_class: Any, config: Any, logits_kwarg: str | None) -> None:
        self.kwarg = kwarg
        self.cache_class = cache_class
        self.config = config
        self.logits_kwarg = logits_kwarg
        init = inspect.signature(cache_class.__init__).parameters
        self.from_tensors = "ddp_cache_data" in init
        self.with_config = "config" in init

    @classmethod
    def detect(cls, model: Any) -> _CacheAPI | None:
        try:
            from transformers import DynamicCache
        except ImportError:
            return None
        try:
            params = inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            return None
        if "position_ids" not in params:
            return None
        logits = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
        for kwarg in ("cache", "past_key_values"):
            if kwarg in params:
                api = cls(kwarg, DynamicCache, getattr(model, "config", None), logits)
                if api.from_tensors or hasattr(DynamicCache, "from_legacy_cache"):
                    return api
        return None

    def empty(self) -> Any:
        """An empty cache laid out for the model (sliding-window layers where its config has them)."""
        if self.with_config and self.config is not None:
            return self.cache_class(config=self.config)
        return self.cache_class()

    def build(self, pairs: Sequence[tuple[Any, Any]]) -> Any:
        """A cache holding per-layer ``(keys, values)`` (checked to be plain full-attention layers)."""
        if not pairs:
            return self.empty()
        if self.from_tensors:
            return self.cache_class(ddp_cache_data=list(pairs))
        return self.cache_class.from_legacy_cache(tuple(pairs))

    def tensors(self, cache: Any) -> list[tuple[Any, Any]]:
        layers = getattr(cache, "layers", None)
        if layers is not None:
            if any(getattr(layer, "is_sliding", False) or not hasattr(layer, "keys") for layer in layers):
                raise _SharedPrefixUnsupported(type(layers[0]).__name__)
            return [(layer.keys, layer.values) for layer in layers]
        if hasattr(cache, "key_cache"):
            return list(zip(cache.key_cache, cache.value_cache, strict=True))
        raise _SharedPrefixUnsupported(type(cache).__name__)


class _InverseCDFSampling:
    """A logits processor that turns greedy decoding into temperature sampling: each row's token is
    drawn from ``softmax(scores / T)`` by inverting its cumulative distribution at one uniform draw
    (in float64), and returned as the only finite score, so ``generate``'s argmax picks it."""

    def __init__(self, temperature: float, generator: Any) -> None:
        self.temperature = float(temperature)
        self.generator = generator

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        cdf = torch.softmax(scores.float() / self.temperature, dim=-1).double().cumsum_(dim=-1)
        u = torch.rand((scores.shape[0], 1), generator=self.generator, device=scores.device, dtype=torch.float64)
        token = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp_(max=scores.shape[-1] - 1)
        out = torch.full(scores.shape, float("-inf"), device=scores.device, dtype=torch.float32)
        return out.scatter_(1, token, 0.0)


def _torch_dtype(torch: Any, dtype: str | Any) -> Any:
    if dtype is None or dtype == "auto":
        return None
    if isinstance(dtype, str):
        value = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(value, torch.dtype):
            raise ConfigError(f"Transformers: unknown dtype {dtype!r}; valid: 'auto', 'float32', 'bfloat16', 'float16'")
        return value
    return dtype


# --------------------------------------------------------------------------------------------------
# The registry


def make_backend(spec: str | Backend, **kwargs: Any) -> Backend:
    """A backend from a spec string (or the backend itself).

    Args:
        spec: ``"openai:<model>@<base_url>"`` (base URL optional: api.openai.com), ``"hf:<id or path>"``,
            ``"scripted"``, or a ``Backend`` object (returned as is; ``kwargs`` must then be empty).
        **kwargs: Constructor arguments of the chosen backend (``api_key_env``, ``concurrency``,
            ``timeout``, ``retries``; ``device``, ``dtype``, ``batch_size``; ``replies`` for scripted).

    Raises:
        ConfigError: for an unknown spec or bad arguments.
        DependencyNotInstalled: when the backend's packages are missing.

    Example:
        >>> make_backend("scripted", replies=["hi"]).chat([[{"role": "user", "content": "hello"}]])
        ['hi']
    """
    if not isinstance(spec, str):
        if not (hasattr(spec, "chat") and hasattr(spec, "name")):
            raise ConfigError(f"backend {spec!r} does not implement the Backend protocol (name, chat)")
        if kwargs:
            raise ConfigError(f"backend arguments {sorted(kwargs)} given with a backend object; set them on the object")
        return spec
    kind, sep, arg = spec.partition(":")
    try:
        if kind == "openai":
            if not arg:
                raise ConfigError(
                    f"backend spec {redact_credentials(spec)!r}: give the model, e.g. 'openai:gpt-4o-mini@http://localhost:8000/v1'"
                )
            at = arg.find("@http")
            model, base_url = (arg[:at], arg[at + 1 :]) if at >= 0 else (arg, "https://api.openai.com/v1")
            return OpenAICompatible(model, base_url, **kwargs)
        if kind == "hf":
            if not arg:
                raise ConfigError(
                    f"backend spec {redact_credentials(spec)!r}: give a model id or path, e.g. 'hf:Qwen/Qwen2.5-0.5B-Instruct'"
                )
            return Transformers(arg, **kwargs)
        if kind == "scripted" and not sep:
            if "replies" not in kwargs:
                raise ConfigError("backend 'scripted' needs replies=[...] or replies=callable")
            return ScriptedBackend(kwargs.pop("replies"), **kwargs)
    except TypeError as e:
        raise ConfigError(f"backend spec {redact_credentials(spec)!r}: bad arguments: {e}") from e
    raise ConfigError(
        f"unknown backend spec {redact_credentials(spec)!r}; valid: 'openai:<model>@<base_url>', 'openai:<model>', "
        "'hf:<model id or path>', 'scripted'"
    )
