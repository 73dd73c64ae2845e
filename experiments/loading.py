"""Agents by spec: a shipped agent's name (``agents.make_agent``) or a user's class
(``module:Class``, ``path/to/file.py:Class``), their shown names, ``--agent-option`` values, and a
fingerprint of the agents' code so a results folder never mixes rows computed by different code."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from penguin_gym.error import ConfigError


def is_custom_agent(spec: str) -> bool:
    """Whether ``spec`` names a user's agent class (``module:Class`` or ``path/to/file.py:Class``)."""
    return ":" in spec


def load_custom_agent(spec: str) -> Any:
    """The class or factory ``spec`` names: ``package.module:Name`` (importable, or a module in the
    current directory) or ``path/to/file.py:Name``."""
    import importlib
    import importlib.util

    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise ConfigError(f"agent {spec!r}: write a custom agent as module:Class or path/to/file.py:Class")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.exists():
            raise ConfigError(f"agent {spec!r}: no file {path}")
        mod_id = "penguin_user_agent_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
        module = sys.modules.get(mod_id)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(mod_id, path)
            assert loader_spec is not None and loader_spec.loader is not None
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[mod_id] = module
            loader_spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path and importlib.util.find_spec(module_name.split(".")[0]) is None:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            raise ConfigError(
                f"agent {spec!r}: cannot import {module_name!r} ({e}); run from its folder or give path/to/file.py:{attr}"
            ) from e
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"agent {spec!r}: {module_name} has no {attr!r}") from None


def make_any_agent(spec: str, **kwargs: Any) -> Any:
    """``agents.make_agent(spec)`` for a shipped agent, or the user's class for ``module:Class`` specs."""
    if is_custom_agent(spec):
        factory = load_custom_agent(spec)
        try:
            return factory(**kwargs)
        except TypeError as e:
            raise ConfigError(f"agent {spec!r}: bad arguments {sorted(kwargs)}: {e}") from e
    import agents

    return agents.make_agent(spec, **kwargs)


def agent_label(spec: str) -> str:
    """The name shown for an agent spec: the spec itself, or a custom class's ``name`` attribute
    (``docs/examples/risk_first_agent.py:RiskFirstAgent`` -> ``risk-first``; the class name without one)."""
    if not is_custom_agent(spec):
        return spec
    name = getattr(load_custom_agent(spec), "name", None)
    return name if isinstance(name, str) and name else spec.rpartition(":")[2]


def parse_agent_options(items: Sequence[str], agents: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--agent-option AGENT:KEY=VALUE`` items as ``{agent spec: {key: value}}``.

    ``AGENT`` is an agent's spec or its shown name (``risk-first`` for
    ``docs/examples/risk_first_agent.py:RiskFirstAgent``); values are parsed as JSON when they are JSON
    (``80``, ``true``, ``[1, 2]``), else kept as text (``openai:gpt-4o@http://host/v1``).
    """
    out: dict[str, dict[str, Any]] = {a: {} for a in agents}
    names = {**{agent_label(a): a for a in agents}, **{a: a for a in agents}}
    for item in items:
        head, eq, value = item.partition("=")
        name, colon, key = head.rpartition(":")
        if not (eq and colon and name and key):
            raise ConfigError(f"--agent-option {item!r} must be AGENT:KEY=VALUE, e.g. mcts:num_rollouts=80")
        if name not in names:
            raise ConfigError(f"--agent-option {item!r} names agent {name!r}, which is not among {sorted(names)}")
        try:
            parsed: Any = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out[names[name]][key.replace("-", "_")] = parsed
    return out


def code_fingerprint(*specs: str) -> str:
    """A hash of the ``agents`` package's source (and of custom agents' files), so a results folder
    never mixes rows computed by different agent code."""
    import agents

    h = hashlib.sha256()
    for f in sorted(Path(agents.__file__).parent.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    for spec in specs:
        if is_custom_agent(spec) and spec.rpartition(":")[0].endswith(".py") and Path(spec.rpartition(":")[0]).exists():
            h.update(Path(spec.rpartition(":")[0]).read_bytes())
    return h.hexdigest()[:12]
