"""Judges from specs, so env kwargs, commands and config files can name them.

The spec strings are parsed by ``penguin_gym.judges.spec.parse_judge_spec`` (their forms are listed
there); this module builds the judge a parsed spec names.
"""

from __future__ import annotations

from pathlib import Path

from penguin_gym.error import ConfigError
from penguin_gym.judges.base import Judge
from penguin_gym.judges.spec import JudgeSpec, parse_judge_spec


def make_judge(spec: Judge | JudgeSpec | str | None = None) -> Judge:
    """A judge from a spec.

    Specs: ``None`` or ``"simulated"`` (the calibrated ``SimulatedJudge``), ``"simulated:<responder>"``
    (a responder preset, e.g. ``"simulated:gpt-4o"``), ``"simulated@<params.json>"`` (refitted
    parameters), ``"table:<path.npz>"`` (a precomputed ``ScoreTable``), ``"llm:<backend spec>"`` (an
    ``LLMJudge`` whose responder and judge are the one backend, e.g.
    ``"llm:openai:Qwen/Qwen2.5-7B-Instruct@http://localhost:8000/v1"`` or ``"llm:hf:<model id or path>"``,
    or that backend spec alone; for two models, sampling options or a cache, pass an ``LLMJudge`` /
    ``CachedJudge`` object), a parsed ``JudgeSpec``, or a ``Judge`` object.

    Raises:
        ConfigError: for a spec ``parse_judge_spec`` rejects, a table file that does not exist, the bare
            ``"llm"`` (whose backends a command names apart), or an object that is not a ``Judge``.
    """
    from penguin_gym.judges.simulated import SimulatedJudge

    if spec is None:
        return SimulatedJudge()
    if not isinstance(spec, (str, JudgeSpec)):
        if not (hasattr(spec, "score") and hasattr(spec, "score_many") and hasattr(spec, "name")):
            raise ConfigError(f"judge {spec!r} does not implement the Judge protocol (name, score, score_many)")
        return spec
    parsed = parse_judge_spec(spec)
    if parsed.kind == "simulated":
        return SimulatedJudge(responder=parsed.responder or "mean", params=parsed.params)
    if parsed.kind == "table":
        if not Path(str(parsed.path)).exists():
            raise ConfigError(f"judge spec {str(spec)!r}: no score table file at {parsed.path!r}")
        from penguin_gym.judges.table import ScoreTable

        return ScoreTable.load(str(parsed.path))
    if parsed.backend is None:
        raise ConfigError(
            f"judge spec {str(spec)!r}: give a backend spec, e.g. 'llm:openai:gpt-4o-mini@http://localhost:8000/v1'"
        )
    from penguin_gym.judges.llm import LLMJudge

    return LLMJudge(parsed.backend)
