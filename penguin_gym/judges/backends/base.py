"""The ``Backend`` protocol and what every backend shares: message types, argument checks, the
per-item form ``chat_each``, the ``chat`` contract over it, credential redaction and settings suffixes.

Stdlib only: every backend module and the registry import this, and ``import penguin_gym.judges.backends``
must stay as light as ``import penguin_gym``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from penguin_gym.error import BackendError, ConfigError

Message = Mapping[str, str]
Conversation = Sequence[Message]

_INSTALL_HINT = 'pip install "penguin-gym[llm]"'


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


def _check_seeds(seeds: Sequence[int | None] | None, n: int, who: str) -> list[int | None]:
    if seeds is None:
        return [None] * n
    if len(seeds) != n:
        raise ConfigError(f"{who}: {len(seeds)} seeds for {n} conversations")
    return list(seeds)


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

    The backends of this package answer per item (``chat_each`` method); any other ``Backend`` is asked with
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
