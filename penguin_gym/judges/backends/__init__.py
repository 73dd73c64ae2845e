"""LLM backends: one ``Backend`` protocol over OpenAI-compatible servers, local transformers models and a
scripted stand-in for tests.

A backend turns conversations into replies, many at once: ``chat(conversations)`` returns one reply per
conversation, in order, and raises ``BackendError`` once its own retries are spent. The backends here
also answer item by item (``chat_each``: each reply, or that one request's ``RequestError``, as it
arrives, with a sampling seed per conversation and request fields such as a JSON schema), so that one
refused request never takes its batch with it; ``chat_each(backend, ...)`` gives any ``Backend`` that
form. Transport retries live in the HTTP backend and only there; the judge above never retries a
transport failure, it asks again (with another seed) for empty answers and unreadable judgments.

Backends are chosen by a spec string (``make_backend``), so env kwargs, CLIs and configs can name them:

* ``"openai:<model>@<base_url>"``: any ``/v1/chat/completions`` server (vLLM, Ollama, llama.cpp
  server, OpenAI, Azure OpenAI); ``"openai:<model>"`` talks to api.openai.com.
* ``"hf:<model id, local path or .gguf file>"``: a local Hugging Face causal LM with batched generation.
* ``"scripted"``: canned replies (``replies=[...]`` or a callable), for tests and demos only.

httpx and transformers/torch are imported inside the constructors (``pip install "penguin-gym[llm]"``),
and each backend's module only when it is first named or used, so ``import penguin_gym`` stays light.
API keys are read from the environment variable the user names, in the constructor, and are never
logged, never part of ``name`` (which caches and result files key on) and never pickled; credentials
written into a URL are redacted (``redact_credentials``) wherever a spec is shown. ``name`` holds every
setting that can change a reply, so a cache never serves a reply made under other settings.

Where to look:

* ``base``: the protocol, message types, ``chat_each``, argument checks, ``redact_credentials``.
* ``registry``: ``make_backend`` and the table of backend kinds (``PROVIDERS``).
* ``scripted``: ``ScriptedBackend``.
* ``openai_compatible``: ``OpenAICompatible``: the HTTP client, its thread pool, deadlines and retries.
* ``hf``: ``Transformers``: local generation, sampling.
* ``shared_prefix``: the shared-prefix key/value batching behind ``Transformers`` and the transformers
  versions it was tested on.

Example:
    >>> backend = make_backend("scripted", replies=["Score: 4/5"])
    >>> [reply for _, reply in chat_each(backend, [[{"role": "user", "content": "Rate it."}]],
    ...                                   temperature=0.0, max_tokens=8)]
    ['Score: 4/5']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from penguin_gym.judges.backends.base import Backend, Conversation, ItemReply, Message, chat_each, redact_credentials
from penguin_gym.judges.backends.registry import PROVIDERS, make_backend

if TYPE_CHECKING:
    from penguin_gym.judges.backends.hf import Transformers
    from penguin_gym.judges.backends.openai_compatible import STRUCTURED_MODES, OpenAICompatible
    from penguin_gym.judges.backends.scripted import ScriptedBackend
    from penguin_gym.judges.backends.shared_prefix import TESTED_TRANSFORMERS

__all__ = [
    "PROVIDERS",
    "STRUCTURED_MODES",
    "TESTED_TRANSFORMERS",
    "Backend",
    "Conversation",
    "ItemReply",
    "Message",
    "OpenAICompatible",
    "ScriptedBackend",
    "Transformers",
    "chat_each",
    "make_backend",
    "redact_credentials",
]

# The backends' modules, imported on first use (a backend's class is reached through here or through
# ``make_backend``). The private names are the shared-prefix internals the transformers tests patch.
_LAZY: dict[str, str] = {
    "ScriptedBackend": "scripted",
    "OpenAICompatible": "openai_compatible",
    "STRUCTURED_MODES": "openai_compatible",
    "Transformers": "hf",
    "_InverseCDFSampling": "hf",
    "TESTED_TRANSFORMERS": "shared_prefix",
    "_CacheAPI": "shared_prefix",
    "_SHARED_ATTENTION": "shared_prefix",
    "_SharedPrefixDecoding": "shared_prefix",
    "_SharedPrefixUnsupported": "shared_prefix",
    "_shared_prefix_attention": "shared_prefix",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
