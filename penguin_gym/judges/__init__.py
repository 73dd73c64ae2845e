"""Judges: the ``Judge`` protocol, the calibrated ``SimulatedJudge`` and the LLM judges."""

from penguin_gym.judges.base import DIMENSIONS, BoundJudge, Judge, JudgeBase, JudgeScore, bind
from penguin_gym.judges.simulated import SimulatedJudge, SimulatedJudgeParams

__all__ = [
    "DIMENSIONS",
    "BoundJudge",
    "Judge",
    "JudgeBase",
    "JudgeScore",
    "SimulatedJudge",
    "SimulatedJudgeParams",
    "bind",
]

# LLM judging, caches, score tables and refitting: imported on first use, so that
# `import penguin_gym` never imports sqlite3, httpx, transformers or torch.
_LAZY: dict[str, str] = {
    "Backend": "penguin_gym.judges.backends",
    "OpenAICompatible": "penguin_gym.judges.backends",
    "Transformers": "penguin_gym.judges.backends",
    "ScriptedBackend": "penguin_gym.judges.backends",
    "make_backend": "penguin_gym.judges.backends",
    "chat_each": "penguin_gym.judges.backends",
    "redact_credentials": "penguin_gym.judges.backends",
    "JUDGMENT_SCHEMA": "penguin_gym.judges.parse",
    "JUDGMENT_GRAMMAR": "penguin_gym.judges.parse",
    "LLMJudge": "penguin_gym.judges.llm",
    "JudgeFailure": "penguin_gym.judges.llm",
    "CachedJudge": "penguin_gym.judges.cache",
    "ScoreTable": "penguin_gym.judges.table",
    "BoundScoreTable": "penguin_gym.judges.table",
    "refit": "penguin_gym.judges.fitting",
    "FitReport": "penguin_gym.judges.fit_quality",
    "parse_judge_output": "penguin_gym.judges.parse",
    "ParsedJudgment": "penguin_gym.judges.parse",
    "PROMPT_ID": "penguin_gym.judges.rubric",
    "PROMPT_VERSION": "penguin_gym.judges.rubric",
}
__all__ += sorted(_LAZY)


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'penguin_gym.judges' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
