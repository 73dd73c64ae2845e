"""A new acquisition strategy in a few lines: ask about risk first, then what the domain needs.

``RiskFirstAgent`` asks Mental Health Status; if the answer signals risk it also asks Past Self-Harm
History; then Emotional State and the one attribute the user's domain hinges on (the profession for
a career question, the economic situation for a financial one); then answers. With
``threshold=None`` it learns the threshold in ``setup`` from the training users the context holds
(what a deployed agent may know: never a test user).

Benchmark it against the shipped agents:

    penguin-gym benchmark --agents docs/examples/risk_first_agent.py:RiskFirstAgent static greedy mcts oracle

or in Python:

    >>> from agents import evaluate
    >>> res = evaluate(RiskFirstAgent(), "Penguin-Health-v2", episodes=50, seed=0)
    >>> 2.0 <= res.summary["questions_mean"] <= 4.0
    True
    >>> learned = RiskFirstAgent(threshold=None)
    >>> res = evaluate(learned, "Penguin-Health-v2", episodes=50, seed=0)
    >>> 0.0 <= learned.learned <= 1.0
    True
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from agents.base import DialogueAgent
from agents.context import AgentContext
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
SELF_HARM = "Past Self-Harm History"


class RiskFirstAgent(DialogueAgent):
    """Mental health first; self-harm history only when the mental-health answer signals risk.

    Args:
        threshold: Severity (0-1) of the mental-health answer above which self-harm is asked about;
            ``None``: learned in ``setup``, the mental-health severity that 90% of the training users
            with a severe self-harm history reach.
    """

    name = "risk-first"

    def __init__(self, threshold: float | None = 0.5) -> None:
        super().__init__()
        self.threshold = threshold
        self.learned: float | None = None

    def setup(self, context: AgentContext) -> None:
        super().setup(context)  # the question costs and the budget
        if self.threshold is None:
            at_risk = [
                s.severity["Mental Health Status"] for s in context.train_scenarios if s.severity[SELF_HARM] >= 0.7
            ]
            self.learned = float(np.quantile(at_risk, 0.1)) if at_risk else 0.5

    def choose(self, obs: Mapping[str, np.ndarray]) -> int:
        d = self.dialogue  # what the agent has seen: query, domain, answers, their severities
        plan = ["Mental Health Status"]
        threshold = self.threshold if self.threshold is not None else self.learned
        assert threshold is not None, "call setup(context) first (evaluate does)"
        if d.asked_mask >> MENTAL & 1 and d.severity[MENTAL] >= threshold:
            plan.append(SELF_HARM)
        plan += ["Emotional State", DOMAIN_KEY[d.domain]]
        for name in plan:
            a = ATTRIBUTE_INDEX[name]
            if not d.asked_mask >> a & 1:
                return a
        return ANSWER
