"""Shared test settings: never the network, a display, or a real W&B account."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _close_http_backends(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every OpenAI-compatible backend a test made when the test ends, so no HTTP client to a
    test server is left for the garbage collector (an unclosed socket warns in whatever test runs
    then). The library closes what it owns (``close_judge``, ``closing_judges``); a test's own backends
    are closed here."""
    try:
        from penguin_gym.judges.backends.openai_compatible import OpenAICompatible
    except ImportError:  # pragma: no cover - without the llm extra
        yield
        return
    made: list[Any] = []
    init = OpenAICompatible.__init__

    def record(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(OpenAICompatible, "__init__", record)
    yield
    for backend in made:
        backend.close()
