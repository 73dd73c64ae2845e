"""Judges: the ``Judge`` protocol, the calibrated ``SimulatedJudge`` and (issue 3) LLM judges."""

from penguin_gym.judges.base import DIMENSIONS, BoundJudge, Judge, JudgeBase, JudgeScore, bind
from penguin_gym.judges.simulated import SimulatedJudge, SimulatedJudgeParams

__all__ = ["DIMENSIONS", "BoundJudge", "Judge", "JudgeBase", "JudgeScore", "SimulatedJudge", "SimulatedJudgeParams", "bind"]
