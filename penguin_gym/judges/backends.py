"""LLM backends: one ``Backend`` protocol over OpenAI-compatible servers, local transformers models and a
scripted stand-in for tests.

A backend turns conversations into replies, many at once: ``chat(conversations)`` returns one reply per
conversation, in order, and raises ``BackendError`` once its own retries are spent. Retries live here
and only here; the judge above never retries a transport failure, it retries unparseable replies.

Backends are chosen by a spec string (``make_backend``), so env kwargs, CLIs and configs can name them:

* ``"openai:<model>@<base_url>"``: any ``/v1/chat/completions`` server (vLLM, Ollama, llama.cpp
  server, OpenAI, Azure OpenAI); ``"openai:<model>"`` talks to api.openai.com.
* ``"hf:<model id or local path>"``: a local Hugging Face causal LM with batched generation.
* ``"scripted"``: canned replies (``replies=[...]`` or a callable), for tests and demos only.

httpx and transformers/torch are imported inside the constructors (``pip install "penguin-gym[llm]"``),
so ``import penguin_gym`` stays light. API keys are read from the environment variable the user names,
in the constructor, and are never logged, never part of ``name`` (which caches and result files key
on) and never pickled.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from penguin_gym.error import BackendError, ConfigError, DependencyNotInstalled

logger = logging.getLogger(__name__)

Message = Mapping[str, str]
Conversation = Sequence[Message]

_INSTALL_HINT = 'pip install "penguin-gym[llm]"'
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
# Scripted


class ScriptedBackend:
    """Canned replies, for tests and demos (constructed only when asked for by name).

    Args:
        replies: Either a list consumed in order, one item per conversation (a string is the reply; an
            exception instance is raised, as a ``BackendError`` unless it is one), or a callable
            ``f(messages) -> str`` called for every conversation (it may raise ``BackendError``).
        name: The backend's identity.
        delay: Seconds to sleep per conversation, to stand in for a real model's latency.
        batch_delay: Seconds to sleep per ``chat`` call (per batch).

    Attributes:
        calls: Conversations answered so far.
        batches: ``chat`` calls so far.
        history: Every conversation seen, in order.
    """

    def __init__(
        self,
        replies: Sequence[str | BaseException] | Callable[[Sequence[Mapping[str, str]]], str],
        *,
        name: str = "scripted",
        delay: float = 0.0,
        batch_delay: float = 0.0,
    ) -> None:
        if isinstance(replies, str):
            raise ConfigError("ScriptedBackend: replies must be a list of strings or a callable, not one string")
        self._fn = replies if callable(replies) else None
        self._queue = None if callable(replies) else list(replies)
        self.name = name
        self.delay = float(delay)
        self.batch_delay = float(batch_delay)
        self.calls = 0
        self.batches = 0
        self.history: list[list[dict[str, str]]] = []
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
        _check_sampling(temperature, max_tokens, self.name)
        _check_conversations(conversations, self.name)
        with self._lock:
            self.batches += 1
        if self.batch_delay:
            time.sleep(self.batch_delay)
        out = []
        for conv in conversations:
            if self.delay:
                time.sleep(self.delay)
            with self._lock:
                self.calls += 1
                self.history.append([dict(m) for m in conv])
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
                item = self._fn(conv)
            if isinstance(item, BackendError):
                raise item
            if isinstance(item, BaseException):
                raise BackendError(f"{self.name}: scripted failure: {item}") from item
            if not isinstance(item, str):
                raise BackendError(f"{self.name}: scripted reply {item!r} is not a string")
            out.append(item)
        return out


# --------------------------------------------------------------------------------------------------
# OpenAI-compatible HTTP


class OpenAICompatible:
    """Any server that speaks the OpenAI ``/v1/chat/completions`` API: vLLM, Ollama, llama.cpp server,
    LM Studio, OpenAI, Azure OpenAI.

    Requests run concurrently on a thread pool (``concurrency`` at a time). A request that times out,
    loses its connection, gets 429 or a 5xx, or gets a body that is not a completion (truncated JSON,
    an HTML error page) is retried ``retries`` times with exponential backoff and jitter (a 429's or
    503's ``Retry-After`` is honoured, up to ``max_backoff``); other 4xx fail at once.

    Args:
        model: The model name the server expects (for Azure: the deployment name).
        base_url: The API root, as the OpenAI SDK takes it, e.g. ``"http://localhost:8000/v1"`` (vLLM),
            ``"http://localhost:11434/v1"`` (Ollama); a URL without a path gets ``/v1``. For Azure give
            ``https://<resource>.openai.azure.com`` and ``api_version``.
        api_key_env: The environment variable holding the API key, read here. Missing: an error naming
            it, unless the server is local (localhost), where no key is sent.
        concurrency: Requests in flight at once.
        timeout: Seconds to wait for a response (read/write/pool); ``connect_timeout`` for connecting.
        retries: Retries after the first attempt of each request.
        backoff: The first retry's delay in seconds; doubles per retry, with +-50% jitter.
        max_backoff: The longest delay between attempts.
        api_version: Azure OpenAI's ``api-version``: switches to Azure's URL layout and ``api-key`` header.
        max_tokens_field: The request field for the token limit (``"max_completion_tokens"`` for OpenAI's
            reasoning models).
        extra_body: More request fields (``top_p``, ``seed``, ``stop``...), sent with every request.
        headers: More HTTP headers (never put a secret here: use ``api_key_env``).
        name: The identity in judge names and caches (default ``"openai:<model>@<base_url>"``).
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
        if timeout <= 0 or connect_timeout <= 0:
            raise ConfigError(f"OpenAICompatible: timeouts must be > 0 (got {timeout}, {connect_timeout})")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"OpenAICompatible: base_url {base_url!r} must be an http(s) URL, e.g. http://localhost:8000/v1"
            )
        path = parts.path.rstrip("/")
        if api_version is None and not path:
            path = "/v1"
        self.base_url = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        self.model = model
        self.api_version = api_version
        self.api_key_env = api_key_env
        self.local = (parts.hostname or "").lower() in _LOCAL_HOSTS or (parts.hostname or "").endswith(".localhost")
        key = os.environ.get(api_key_env) if api_key_env else None
        if not key and not self.local:
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
        # The identity: no user info, query string or key. Sampling settings are the judge's to add.
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.name = name or f"openai:{model}@{urlunsplit((parts.scheme, netloc, path, '', ''))}"
        self.requests = 0
        self._client: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._rng = random.Random(0)

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
                    timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
                    limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
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
        return text.replace(self._api_key, "***") if self._api_key else text

    def chat(
        self, conversations: Sequence[Sequence[Mapping[str, str]]], *, temperature: float = 0.7, max_tokens: int = 512
    ) -> list[str]:
        _check_sampling(temperature, max_tokens, self.name)
        _check_conversations(conversations, self.name)
        if not conversations:
            return []
        client, pool = self._ensure()
        if len(conversations) == 1:
            return [self._complete(client, conversations[0], temperature, max_tokens)]
        futures: list[Future[str]] = [
            pool.submit(self._complete, client, conv, temperature, max_tokens) for conv in conversations
        ]
        out: list[str] = []
        first_error: BackendError | None = None
        for f in futures:
            if first_error is not None:
                break
            try:
                out.append(f.result())
            except BackendError as e:
                first_error = e
                for g in futures:  # requests not yet sent are dropped; those in flight finish
                    g.cancel()
        if first_error is not None:
            wait(futures)
            failed = sum(1 for f in futures if not f.cancelled() and f.exception() is not None)
            dropped = sum(1 for f in futures if f.cancelled())
            raise BackendError(
                f"{failed} of {len(conversations)} requests failed ({dropped} not sent); first: {first_error}"
            ) from first_error
        return out

    def _complete(self, client: Any, messages: Conversation, temperature: float, max_tokens: int) -> str:
        import httpx

        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "temperature": temperature,
            self.max_tokens_field: max_tokens,
            **self.extra_body,
        }
        last = "no attempt made"
        for attempt in range(self.retries + 1):
            retry_after: float | None = None
            with self._lock:
                self.requests += 1
            try:
                resp = client.post(self.url, json=body, headers=self._request_headers())
            except httpx.TimeoutException as e:
                last = f"timed out ({type(e).__name__}, timeout {self.timeout:g}s)"
            except httpx.TransportError as e:
                last = f"connection error: {type(e).__name__}: {self._redact(str(e))}"
            else:
                status = resp.status_code
                if status == 429 or status >= 500:
                    last = f"HTTP {status}: {self._redact(resp.text[:200])!r}"
                    retry_after = _retry_after(resp.headers.get("retry-after"))
                elif status >= 400:
                    hint = ""
                    if status in (401, 403):
                        hint = f" (check the API key in ${self.api_key_env})"
                    elif status == 404:
                        hint = f" (check the base URL {self.base_url} and the model name {self.model!r})"
                    raise BackendError(f"{self.name}: HTTP {status}{hint}: {self._redact(resp.text[:300])!r}")
                else:
                    try:
                        return _completion_text(resp.json())
                    except ValueError as e:
                        last = f"malformed response ({self._redact(str(e))}): {self._redact(resp.text[:120])!r}"
            if attempt < self.retries:
                delay = min(self.max_backoff, self.backoff * 2.0**attempt * (0.5 + self._rng.random()))
                if retry_after is not None:
                    delay = min(self.max_backoff, max(delay, retry_after))
                logger.warning("%s: %s; retry %d/%d in %.2fs", self.name, last, attempt + 1, self.retries, delay)
                time.sleep(delay)
        raise BackendError(f"{self.name}: request failed after {self.retries + 1} attempts: {last}")


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _completion_text(data: Any) -> str:
    """The reply text of a chat completion response; ``ValueError`` when it is not one."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    if "error" in data and "choices" not in data:
        raise ValueError(f"server error object: {str(data['error'])[:200]}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("no 'choices' in the response")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        reason = choices[0].get("finish_reason")
        raise ValueError(f"the first choice has no text content (finish_reason={reason!r})")
    return content


# --------------------------------------------------------------------------------------------------
# Local transformers


class Transformers:
    """A local Hugging Face causal LM, with its chat template and batched generation.

    Conversations are rendered with the tokenizer's chat template, sorted by length (less padding),
    padded on the left (so every row's continuation starts at the same position) and generated
    ``batch_size`` at a time.

    Decoding is the same on every backend: greedy at ``temperature == 0``, else plain temperature
    sampling over the whole distribution (no top-k or top-p), as an OpenAI-compatible server does by
    default; the model's own ``generation_config`` sampling defaults (HF's ``top_k=50``, a model's
    ``top_p=0.9``) do not apply. Sampling uses the Gumbel-max trick (the argmax of ``logits / T`` plus
    Gumbel noise is an exact draw from ``softmax(logits / T)``), which costs a third of
    ``torch.multinomial`` on CPU batches and draws its noise from the backend's own generator.

    Args:
        model: A model id on the Hub, a local directory, or a loaded ``PreTrainedModel``.
        tokenizer: A tokenizer (default: loaded from ``model``'s id or path).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, or ``"auto"`` (spread over devices with
            accelerate's ``device_map="auto"``). Default: CUDA when available, else CPU.
        dtype: ``"auto"``, ``"float32"``, ``"bfloat16"``, ``"float16"`` or a ``torch.dtype`` (default:
            ``"auto"`` for loaded ids, unchanged for model objects).
        batch_size: Conversations per ``generate`` call.
        chat_template: A Jinja chat template, for tokenizers without one (base models).
        trust_remote_code: Passed to ``from_pretrained``.
        seed: When set, each ``chat`` call samples from a generator seeded with it (repeatable replies);
            the global torch RNG is never touched.
        name: The identity in judge names and caches (default ``"hf:<model id or path>"``).
        model_kwargs: More ``from_pretrained`` arguments (``attn_implementation``, ``quantization_config``...).

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
        self._torch = torch
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_dtype = _torch_dtype(torch, dtype)
        if isinstance(model, str):
            model_id = model
            kwargs: dict[str, Any] = dict(model_kwargs or {})
            kwargs["trust_remote_code"] = trust_remote_code
            version = re.match(r"(\d+)\.(\d+)", transformers.__version__)
            new_api = version is None or (int(version[1]), int(version[2])) >= (4, 56)
            dtype_key = "dtype" if new_api else "torch_dtype"  # renamed in transformers 4.56
            kwargs[dtype_key] = "auto" if torch_dtype is None else torch_dtype
            if device == "auto":
                kwargs["device_map"] = "auto"
            try:
                loaded = transformers.AutoModelForCausalLM.from_pretrained(model, **kwargs)
                if tokenizer is None:
                    tokenizer = transformers.AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
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
        self.name = name or f"hf:{model_id}"
        self.generate_calls = 0
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

    def chat(
        self, conversations: Sequence[Sequence[Mapping[str, str]]], *, temperature: float = 0.7, max_tokens: int = 512
    ) -> list[str]:
        _check_sampling(temperature, max_tokens, self.name)
        _check_conversations(conversations, self.name)
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
                if self.seed is None:
                    generator.seed()
                else:
                    generator.manual_seed(self.seed)
                processors.append(_GumbelSampling(temperature, generator))
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                batch = self.tokenizer.pad({"input_ids": [ids[i] for i in chunk]}, padding=True, return_tensors="pt")
                input_ids = batch["input_ids"].to(self.model.device)
                attention = batch["attention_mask"].to(self.model.device)
                try:
                    with torch.inference_mode():
                        gen = self.model.generate(
                            input_ids=input_ids,
                            attention_mask=attention,
                            generation_config=config,
                            logits_processor=processors,
                        )
                except (RuntimeError, ValueError) as e:
                    raise BackendError(f"{self.name}: generation failed on a batch of {len(chunk)}: {e}") from e
                self.generate_calls += 1
                texts = self.tokenizer.batch_decode(gen[:, input_ids.shape[1] :], skip_special_tokens=True)
                for i, text in zip(chunk, texts, strict=True):
                    out[i] = text.strip()
        return [t if t is not None else "" for t in out]


class _GumbelSampling:
    """A logits processor that turns greedy decoding into temperature sampling (the Gumbel-max trick)."""

    def __init__(self, temperature: float, generator: Any) -> None:
        self.temperature = float(temperature)
        self.generator = generator

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        uniform = torch.rand(scores.shape, generator=self.generator, device=scores.device, dtype=torch.float32)
        gumbel = -torch.log(-torch.log(uniform.clamp_(min=1e-20)))  # rand is faster than exponential_ on CPU
        return scores.float() / self.temperature + gumbel


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
                    f"backend spec {spec!r}: give the model, e.g. 'openai:gpt-4o-mini@http://localhost:8000/v1'"
                )
            at = arg.find("@http")
            model, base_url = (arg[:at], arg[at + 1 :]) if at >= 0 else (arg, "https://api.openai.com/v1")
            return OpenAICompatible(model, base_url, **kwargs)
        if kind == "hf":
            if not arg:
                raise ConfigError(
                    f"backend spec {spec!r}: give a model id or path, e.g. 'hf:Qwen/Qwen2.5-0.5B-Instruct'"
                )
            return Transformers(arg, **kwargs)
        if kind == "scripted" and not sep:
            if "replies" not in kwargs:
                raise ConfigError("backend 'scripted' needs replies=[...] or replies=callable")
            return ScriptedBackend(kwargs.pop("replies"), **kwargs)
    except TypeError as e:
        raise ConfigError(f"backend spec {spec!r}: bad arguments: {e}") from e
    raise ConfigError(
        f"unknown backend spec {spec!r}; valid: 'openai:<model>@<base_url>', 'openai:<model>', "
        "'hf:<model id or path>', 'scripted'"
    )
