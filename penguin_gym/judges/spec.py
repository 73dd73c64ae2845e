"""Judge specs: the one parser of the strings that name a judge, for env kwargs, commands and config files.

A spec is parsed here and nowhere else; ``penguin_gym.judges.factory.make_judge`` builds the judge a
spec names, and the commands (``penguin-gym build-table``, the experiments' ``--judge``) read their
option through ``parse_judge_spec`` too, so a spec means the same thing wherever it is written. The
forms:

======================================  ==========================================================
``simulated``                           the calibrated ``SimulatedJudge``, reference responder
``simulated:<responder>``               a responder preset, e.g. ``simulated:gpt-4o``
``simulated@<params.json>``             refitted parameters (``penguin-gym refit``); a preset may
                                        follow: ``simulated@fit.json:gpt-4o``
``table:<path.npz>``                    a precomputed ``ScoreTable``
``llm:<backend spec>``                  an ``LLMJudge`` whose responder and judge are that backend
``openai:<model>@<url>``, ``hf:<id>``   shorthand for ``llm:`` and that backend spec
``llm``                                 an LLM judge whose backends are named apart (a command's
                                        ``--responder`` and ``--judge-model``)
======================================  ==========================================================

Parsing is pure string work (no file is opened, no backend imported): whether a table file exists or
a responder preset is known is checked when the judge is built.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

from penguin_gym.error import ConfigError

JudgeKind = Literal["simulated", "table", "llm"]

#: Backend kinds that, written without ``llm:``, name an LLM judge (``penguin_gym.judges.backends``).
LLM_SHORTHANDS: tuple[str, ...] = ("openai", "hf")

_VALID = (
    "'simulated', 'simulated:<responder>', 'simulated@<params.json>', 'table:<path.npz>', "
    "'llm:<backend spec>' (or the backend spec itself: 'openai:<model>@<url>', 'hf:<model id or path>')"
)


@dataclass(frozen=True, slots=True)
class JudgeSpec:
    """A parsed judge spec (``parse_judge_spec``); ``str(spec)`` writes it back in its canonical form.

    Attributes:
        kind: ``"simulated"``, ``"table"`` or ``"llm"``.
        responder: simulated: the responder preset (``None``: the reference responder, ``"mean"``).
        params: simulated: the JSON parameter file (``None``: the packaged calibration).
        path: table: the ``.npz`` file.
        backend: llm: the backend spec of the responder, which also judges (``None``: the backends are
            named apart, as the bare ``llm`` of a command with ``--responder`` and ``--judge-model``).
    """

    kind: JudgeKind
    responder: str | None = None
    params: str | None = None
    path: str | None = None
    backend: str | None = None

    def __str__(self) -> str:
        if self.kind == "simulated":
            return (
                "simulated"
                + (f"@{self.params}" if self.params else "")
                + (f":{self.responder}" if self.responder else "")
            )
        if self.kind == "table":
            return f"table:{self.path}"
        return "llm" + (f":{self.backend}" if self.backend else "")

    def with_responder(self, responder: str | None) -> JudgeSpec:
        """This spec with another responder: a preset for simulated judges, the backend spec for LLM
        judges; ``None`` keeps this one.

        Raises:
            ConfigError: for a table, whose scores were judged once and for all.
        """
        if responder is None:
            return self
        if self.kind == "simulated":
            return replace(self, responder=responder)
        if self.kind == "llm":
            return replace(self, backend=responder)
        raise ConfigError(
            f"a responder ({responder!r}) applies to simulated and llm judges, not to judge spec {str(self)!r}"
        )


def parse_judge_spec(spec: str | JudgeSpec) -> JudgeSpec:
    """Parse a judge spec (the forms are in this module's docstring); a ``JudgeSpec`` is returned as is.

    Examples:
        >>> parse_judge_spec("simulated@fit.json:gpt-4o")
        JudgeSpec(kind='simulated', responder='gpt-4o', params='fit.json', path=None, backend=None)
        >>> str(parse_judge_spec("openai:gpt-4o-mini@http://localhost:8000/v1"))
        'llm:openai:gpt-4o-mini@http://localhost:8000/v1'

    Raises:
        ConfigError: for a spec of none of the forms, or one whose argument is empty (``"table:"``,
            ``"llm:"``), naming the valid forms.
    """
    if isinstance(spec, JudgeSpec):
        return spec
    if not isinstance(spec, str):
        raise ConfigError(f"judge spec {spec!r} is a {type(spec).__name__}, not a string; valid: {_VALID}")
    kind, sep, arg = spec.partition(":")
    if kind.startswith("simulated"):
        base, _, params = kind.partition("@")
        if base == "simulated":
            return JudgeSpec("simulated", responder=arg or None, params=params or None)
    elif kind == "table":
        if not arg:
            raise ConfigError(f"judge spec {spec!r}: no score table file named; give one, e.g. 'table:scores.npz'")
        return JudgeSpec("table", path=arg)
    elif kind == "llm":
        if sep and not arg:
            raise ConfigError(
                f"judge spec {spec!r}: give a backend spec, e.g. 'llm:openai:gpt-4o-mini@http://localhost:8000/v1'"
            )
        return JudgeSpec("llm", backend=arg or None)
    elif kind in LLM_SHORTHANDS and arg:
        return JudgeSpec("llm", backend=spec)
    raise ConfigError(f"unknown judge spec {spec!r}; valid: {_VALID}, or a Judge object (LLMJudge, CachedJudge, ...)")


def parse_backend_options(items: Iterable[str] | None, *, option: str = "--backend-option") -> dict[str, Any]:
    """Backend constructor options written ``KEY=VALUE`` (a command's repeatable ``--backend-option``).

    A key's dashes become underscores (``api-key-env`` -> ``api_key_env``); a value is read as JSON when
    it is JSON (``16``, ``true``, ``{"top_p": 0.9}``), else kept as the string (``cuda``).

    Example:
        >>> parse_backend_options(["concurrency=16", "device=cuda", 'extra-body={"top_p": 0.9}'])
        {'concurrency': 16, 'device': 'cuda', 'extra_body': {'top_p': 0.9}}

    Raises:
        ConfigError: for an item without ``=`` or without a key, naming ``option``.
    """
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{option} {item!r} must be KEY=VALUE, e.g. concurrency=16")
        try:
            out[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.replace("-", "_")] = value
    return out
