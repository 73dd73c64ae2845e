"""A new acquisition strategy in a few lines: ask about risk first, then what the domain needs.

``RiskFirstAgent`` asks Mental Health Status; if the answer signals risk it also asks Past Self-Harm
History; then Emotional State and the one attribute the user's domain hinges on (the profession for
a career question, the economic situation for a financial one); then answers.

Benchmark it against the shipped agents:

    penguin-gym benchmark --agents docs/examples/risk_first_agent.py:RiskFirstAgent static greedy mcts oracle

or in Python:

    >>> from agents import evaluate
    >>> res = evaluate(RiskFirstAgent(), "Penguin-Health-v1", episodes=50, seed=0)
    >>> 2.0 <= res.summary["questions_mean"] <= 4.0
    True
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from agents.base import DialogueAgent
from penguin_gym.data import ATTRIBUTE_INDEX
from penguin_gym.model import ANSWER

#: The attribute each domain's questions hinge on (the simulated judge's domain boosts agree).
DOMAIN_KEY = {
    "Relationship": "Marital Status",
    "Career": "Profession",
    "Financial": "Economic Status",
    "Social": "Age",
    "Health": "Health Status",
    "Life": "Age",
    "Education": "Education Level",
}
MENTAL = ATTRIBUTE_INDEX["Mental Health Status"]


class RiskFirstAgent(DialogueAgent):
    """Mental health first; self-harm history only when the mental-health answer signals risk.

    Args:
        threshold: Severity (0-1) of the mental-health answer above which self-harm is asked about.
    """

    name = "risk-first"

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = threshold

    def choose(self, obs: Mapping[str, np.ndarray]) -> int:
        d = self.dialogue  # what the agent has seen: query, domain, answers, their severities
        plan = ["Mental Health Status"]
        if d.asked_mask >> MENTAL & 1 and d.severity[MENTAL] >= self.threshold:
            plan.append("Past Self-Harm History")
        plan += ["Emotional State", DOMAIN_KEY[d.domain]]
        for name in plan:
            a = ATTRIBUTE_INDEX[name]
            if not d.asked_mask >> a & 1:
                return a
        return ANSWER
