"""``ScriptedBackend``: canned replies, for tests and demos, made only when asked for by name
(``make_backend("scripted", replies=[...])``), never a silent default."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from penguin_gym.error import BackendError, ConfigError
from penguin_gym.judges.backends.base import (
    ItemReply,
    _chat_from_each,
    _check_conversations,
    _check_sampling,
    _check_seeds,
)


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


def from_spec(spec: str, arg: str | None, **kwargs: Any) -> ScriptedBackend:
    """The registry's factory for ``"scripted"`` (it takes no ``:<argument>``; ``replies=`` is required)."""
    if "replies" not in kwargs:
        raise ConfigError("backend 'scripted' needs replies=[...] or replies=callable")
    return ScriptedBackend(kwargs.pop("replies"), **kwargs)
