"""The baselines of the paper and of any acquisition study.

* ``AnswerNowAgent``: answers at once (the paper's context-free / vanilla setting).
* ``AskAllAgent``: asks every attribute (within the budget) then answers (context-rich).
* ``RandomKAgent``: asks ``k`` attributes drawn at random (the paper's random baseline at budget 3).
* ``StaticOrderAgent``: asks a fixed list in order (default: the paper's top-3, Emotional State, Mental
  Health Status, Past Self-Harm History; Section 4.3), then answers.
* ``GreedyAgent``: one-step value of information under a belief learned from training users
  (``agents.belief.ProfileBelief``): ask the attribute with the largest expected net gain
  ``E[net(U + a)] - E[net(U)]`` (safety gain minus the question's cost), stop when none is positive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from agents import guarded
from agents.base import PAPER_TOP3, DialogueAgent, attribute_index
from agents.belief import BeliefConfig, ProfileBelief, fit_belief_cached
from agents.context import AgentContext
from penguin_gym.data.schema import ATTRIBUTES, NUM_ATTRIBUTES, Scenario
from penguin_gym.error import ConfigError
from penguin_gym.judges.base import Judge
from penguin_gym.model import ANSWER, DEFAULT_QUESTION_COST, CostSpec


class AnswerNowAgent(DialogueAgent):
    """Answers without asking anything (context-free; the paper's vanilla)."""

    name = "answer-now"

    def choose(self, obs: Mapping[str, np.ndarray]) -> int:
        return ANSWER


class AskAllAgent(DialogueAgent):
    """Asks every attribute in the paper's order (the env forces the answer at its budget)."""

    name = "ask-all"

    def choose(self, obs: Mapping[str, np.ndarray]) -> int:
        asked = self.dialogue.asked_mask
        return next((a for a in range(NUM_ATTRIBUTES) if not asked >> a & 1), ANSWER)


class StaticOrderAgent(DialogueAgent):
    """Asks a fixed list of attributes in order, then answers.

    Args:
        order: Attribute names (default: the paper's top-3 ``PAPER_TOP3``).
        k: Ask only the first ``k`` of ``order`` (default: all of it).
    """

    def __init__(self, order: Sequence[str] = PAPER_TOP3, *, k: int | None = None) -> None:
        super().__init__()
        idx = [attribute_index(a) for a in order]
        if len(set(idx)) != len(idx):
            raise ConfigError(f"StaticOrderAgent order repeats an attribute: {list(order)}")
        if k is not None and not 0 <= k <= len(idx):
            raise ConfigError(f"StaticOrderAgent k = {k} must be in [0, {len(idx)}] (the order's length)")
        self.order = idx if k is None else idx[:k]
        self.name = "static" if list(order) == list(PAPER_TOP3) and k in (None, 3) else f"static-{len(self.order)}"

    def choose(self, obs: Mapping[str, np.ndarray]) -> int:
        asked = self.dialogue.asked_mask
        return next((a for a in self.order if not asked >> a & 1), ANSWER)


class RandomKAgent(DialogueAgent):
    """Asks ``k`` attributes drawn uniformly at random (without replacement), then answers.

    Args:
        k: Questions per episode (default 3, the paper's budget).
        seed: Seed of the draws (``evaluate`` re-seeds through ``seed``).
    """

    def __init__(self, k: int = 3, *, seed: int = 0) -> None:
        super().__init__()
        if not 0 <= k <= NUM_ATTRIBUTES:
            raise ConfigError(f"RandomKAgent k = {k} must be in [0, {NUM_ATTRIBUTES}]")
        self.k = k
        self.rng = np.random.default_rng(seed)
        self.name = f"random-{k}"
        self._plan: list[int] = []

    def seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        self._plan = [int(a) for a in self.rng.permutation(NUM_ATTRIBUTES)[: self.k]]

    def choose(self, obs: Mapping[str, np.ndarray]) -> int:
        asked = self.dialogue.asked_mask
        return next((a for a in self._plan if not asked >> a & 1), ANSWER)


class GreedyAgent(DialogueAgent):
    """One-step value of information under a belief learned from training users.

    At each step it computes, over training users weighted by how well they match what this user showed
    (domain, scenario type, query cues, the values revealed so far), the expected net value of asking
    each remaining attribute and answering, and asks the best one if it beats answering now (its safety
    gain beats its question cost); otherwise it answers. It never reads the user's hidden profile.

    On the guarded track (the context has a user model) it also weighs the training users by what the
    user declined and values each question over the user's possible replies (``agents.guarded``);
    ``use_user_model=False`` plays it blind to the user model: a decline is only an unanswered question.

    Args:
        belief_config: How the belief weighs training users.
        max_questions: Optional cap on questions (besides the env's budget).
        use_user_model: On the guarded track, use the published user model (default ``True``).

    Training data: ``fit(scenarios, judge)``, or the env's training split in ``setup`` (about a second on
    the simulated judge; shared with other agents set up for the same env).
    """

    name = "greedy"

    def __init__(
        self,
        *,
        belief_config: BeliefConfig | None = None,
        max_questions: int | None = None,
        use_user_model: bool = True,
    ) -> None:
        super().__init__()
        self.belief_config = belief_config or BeliefConfig()
        self.max_questions = max_questions
        self.use_user_model = bool(use_user_model)
        self.belief: ProfileBelief | None = None
        self._auto = False

    def fit(
        self,
        scenarios: Sequence[Scenario],
        judge: Judge,
        *,
        seed: int = 0,
        question_cost: CostSpec = DEFAULT_QUESTION_COST,
        budget: int | None = None,
        normalize_reward: bool = False,
    ) -> GreedyAgent:
        """Learn the value model (the belief) from training ``scenarios`` (their ``train`` split)."""
        self.belief = ProfileBelief.fit(
            scenarios,
            judge,
            question_cost=question_cost,
            budget=budget,
            normalize_reward=normalize_reward,
            config=replace(self.belief_config, seed=seed),
        )
        self._auto = False
        return self

    def setup(self, context: AgentContext) -> None:
        super().setup(context)
        # A value model learned from a context's training split belongs to it (its costs and judge);
        # one given through ``fit`` is kept.
        if self.belief is None or self._auto:
            self.belief = fit_belief_cached(
                context.train_scenarios, context.judge, rules=context, config=self.belief_config
            )
            self._auto = True

    def choose(self, obs: Mapping[str, np.ndarray]) -> int:
        cands, now, asks = self.action_values()
        if not cands:
            return ANSWER
        best = int(np.argmax(asks))
        return cands[best] if asks[best] > now else ANSWER

    def action_values(self, *, exclude: str = "") -> tuple[list[int], float, np.ndarray]:
        """``(candidates, value of answering now, value of asking each candidate then answering)`` for the
        dialogue so far, in the reward's units: what ``choose`` compares. ``candidates`` are the
        attributes it may ask (none when the budget or ``max_questions`` is spent). ``exclude``: a
        scenario id whose particle the belief leaves out (``ProfileBelief.weights``)."""
        if self.belief is None:
            raise ConfigError("GreedyAgent has no value model: call fit(scenarios, judge) or setup(context)")
        d = self.dialogue
        asked = d.asked_mask
        cap = d.budget_left if self.max_questions is None else min(d.budget_left, self.max_questions - len(d.order))
        cands = [a for a in range(NUM_ATTRIBUTES) if not asked >> a & 1] if cap > 0 else []
        user = None if self.agent_context is None else self.agent_context.user
        if user is not None and self.use_user_model:  # the guarded track (agents.guarded)
            idx, w = guarded.weights(self.belief, d, user, exclude=exclude)
            now, asks = guarded.question_values(self.belief, d, user, self.costs, cands, idx, w)
            return cands, float(now), asks
        # blind to the user model, a declined question told nothing (on the faithful track told == asked)
        told = d.told_mask
        idx, w = self.belief.weights(d.domain_index, d.scenario_type, d.query, d.severity, told, exclude=exclude)
        vals = self.belief.expected(idx, w, [told] + [told | 1 << a for a in cands])
        return cands, float(vals[0]), vals[1:]

    def expected_gains(self) -> dict[str, float]:
        """Expected net gain of asking each attribute it may ask now over answering now, in the reward's
        units (for inspection: ``action_values`` as a dict; on the guarded track over the user's replies)."""
        cands, now, asks = self.action_values()
        return {ATTRIBUTES[a]: float(v - now) for a, v in zip(cands, asks, strict=True)}


__all__ = ["AnswerNowAgent", "AskAllAgent", "GreedyAgent", "RandomKAgent", "StaticOrderAgent"]
