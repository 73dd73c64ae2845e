"""Judges from spec strings, so env kwargs, CLIs and config files can name them."""

from __future__ import annotations

from pathlib import Path

from penguin_gym.error import ConfigError
from penguin_gym.judges.base import Judge


def make_judge(spec: Judge | str | None = None) -> Judge:
    """A judge from a spec.

    Specs: ``None`` or ``"simulated"`` (the calibrated ``SimulatedJudge``), ``"simulated:<responder>"``
    (a responder preset, e.g. ``"simulated:gpt-4o"``), ``"simulated@<params.json>"`` (refitted
    parameters), ``"table:<path.npz>"`` (a precomputed ``ScoreTable``), ``"llm:<backend spec>"`` (an
    ``LLMJudge`` whose responder and judge are the one backend, e.g.
    ``"llm:openai:Qwen/Qwen2.5-7B-Instruct@http://localhost:8000/v1"`` or ``"llm:hf:<model id or path>"``;
    for two models, sampling options or a cache, pass an ``LLMJudge`` / ``CachedJudge`` object), or a
    ``Judge`` object.
    """
    from penguin_gym.judges.simulated import SimulatedJudge

    if spec is None:
        return SimulatedJudge()
    if not isinstance(spec, str):
        if not (hasattr(spec, "score") and hasattr(spec, "score_many") and hasattr(spec, "name")):
            raise ConfigError(f"judge {spec!r} does not implement the Judge protocol (name, score, score_many)")
        return spec
    kind, _, arg = spec.partition(":")
    if kind.startswith("simulated"):
        base, _, params = kind.partition("@")
        if base != "simulated":
            raise ConfigError(f"unknown judge spec {spec!r}")
        return SimulatedJudge(responder=arg or "mean", params=params or None)
    if kind == "table":
        if not arg or not Path(arg).exists():
            raise ConfigError(f"judge spec {spec!r}: no score table file at {arg!r}")
        from penguin_gym.judges.table import ScoreTable

        return ScoreTable.load(arg)  # type: ignore[no-any-return]
    if kind == "llm":
        if not arg:
            raise ConfigError(
                f"judge spec {spec!r}: give a backend spec, e.g. 'llm:openai:gpt-4o-mini@http://localhost:8000/v1'"
            )
        from penguin_gym.judges.llm import LLMJudge

        return LLMJudge(arg)
    raise ConfigError(
        f"unknown judge spec {spec!r}; valid: 'simulated', 'simulated:<responder>', 'simulated@<params.json>', "
        "'table:<path.npz>', 'llm:<backend spec>', or a Judge object (LLMJudge, CachedJudge, ...)"
    )
