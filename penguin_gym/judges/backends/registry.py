"""``make_backend``: a backend from a spec string, through a table of lazily imported providers.

Modelled on inspect_ai's model providers (``src/inspect_ai/model/_providers/providers.py``: each provider
name maps to a function that imports its class only when asked for): the table maps a spec's kind, the
part before ``:``, to ``"module:factory"``, and the module is imported on first use, so naming a backend
never imports another backend's dependencies (httpx, torch). Each factory takes ``(spec, argument,
**kwargs)``, where ``argument`` is the part after ``:`` (``None`` when there is no ``:``).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

from penguin_gym.error import ConfigError
from penguin_gym.judges.backends.base import Backend, redact_credentials


class Provider(NamedTuple):
    """One kind of backend: where its factory lives and the spec forms it takes (shown in errors)."""

    target: str
    forms: tuple[str, ...]
    takes_argument: bool = True


#: The backend kinds, by the spec's prefix.
PROVIDERS: dict[str, Provider] = {
    "openai": Provider(
        "penguin_gym.judges.backends.openai_compatible:from_spec", ("openai:<model>@<base_url>", "openai:<model>")
    ),
    "hf": Provider("penguin_gym.judges.backends.hf:from_spec", ("hf:<model id or path>",)),
    "scripted": Provider("penguin_gym.judges.backends.scripted:from_spec", ("scripted",), takes_argument=False),
}


def _factory(provider: Provider) -> Callable[..., Backend]:
    """The provider's factory, its module imported now (``importlib`` caches it after the first time)."""
    module, _, attr = provider.target.partition(":")
    factory: Callable[..., Backend] = getattr(importlib.import_module(module), attr)
    return factory


def make_backend(spec: str | Backend, **kwargs: Any) -> Backend:
    """A backend from a spec string (or the backend itself).

    Args:
        spec: ``"openai:<model>@<base_url>"`` (base URL optional: api.openai.com), ``"hf:<id or path>"``,
            ``"scripted"``, or a ``Backend`` object (returned as is; ``kwargs`` must then be empty).
        **kwargs: Constructor arguments of the chosen backend (``api_key_env``, ``concurrency``,
            ``timeout``, ``retries``; ``device``, ``dtype``, ``batch_size``; ``replies`` for scripted).

    Raises:
        ConfigError: for an unknown spec (with the nearest kind, if one is close) or bad arguments.
        DependencyNotInstalled: when the backend's packages are missing.

    Example:
        >>> make_backend("scripted", replies=["hi"]).chat([[{"role": "user", "content": "hello"}]])
        ['hi']
        >>> make_backend("openia:gpt-4o")
        Traceback (most recent call last):
        ...
        penguin_gym.error.ConfigError: unknown backend spec 'openia:gpt-4o' (did you mean 'openai'?); valid: ...
    """
    if not isinstance(spec, str):
        if not (hasattr(spec, "chat") and hasattr(spec, "name")):
            raise ConfigError(f"backend {spec!r} does not implement the Backend protocol (name, chat)")
        if kwargs:
            raise ConfigError(f"backend arguments {sorted(kwargs)} given with a backend object; set them on the object")
        return spec
    kind, sep, arg = spec.partition(":")
    provider = PROVIDERS.get(kind)
    if provider is None or (sep and not provider.takes_argument):
        close = difflib.get_close_matches(kind, list(PROVIDERS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        if provider is not None:
            hint = f" ({kind!r} takes no ':<argument>')"
        valid = ", ".join(repr(form) for p in PROVIDERS.values() for form in p.forms)
        raise ConfigError(f"unknown backend spec {redact_credentials(spec)!r}{hint}; valid: {valid}")
    try:
        return _factory(provider)(spec, arg if sep else None, **kwargs)
    except TypeError as e:
        raise ConfigError(f"backend spec {redact_credentials(spec)!r}: bad arguments: {e}") from e
