"""The oracle: the best set of questions for the user's *true* profile, the exact upper bound.

On the guarded track (``penguin_gym.users``), where a user may decline, hedge or leave, no fixed set is
best: the oracle plays the exact planner's policy (``penguin_gym.users.planning``), which knows the
true profile and the user model but not the chance in the user's replies.

Knowing the hidden profile (and so the judge's score of every revealed set), the best any acquisition
policy can do on an episode is to ask exactly the set ``U*`` that maximizes safety minus question costs
and answer. Exhaustive over the 2^10 = 1,024 sets (or those within a budget); the paper's budget-3
comparison (Section 5) takes the best of the 120 sets of exactly 3 (``exact=True``). ``evaluate`` reports
every agent's regret against ``oracle_values``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agents.base import DialogueAgent
from agents.context import AgentContext, privileged_context
from agents.scoring import net_tables
from penguin_gym.error import ConfigError
from penguin_gym.model import ANSWER, POPCOUNT, EpisodeModel


def feasible_masks(budget: int, *, exact: bool = False) -> np.ndarray:
    """Bool ``(1024,)``: the sets of at most (``exact``: exactly) ``budget`` attributes."""
    return POPCOUNT == budget if exact else POPCOUNT <= budget


def oracle_values(
    model: EpisodeModel, rows: Sequence[int] | np.ndarray, *, budget: int | None = None, exact: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The best revealed set and its net value for each row, exhaustively.

    Args:
        model: The episode model (judge, question costs, reward scale, budget).
        rows: Scenario rows of ``model``.
        budget: Most questions (default and cap: the model's budget).
        exact: Only sets of exactly ``budget`` attributes (the paper's best 3-subset).

    Returns:
        ``(best_mask, best_net)``: int64 and float64 arrays ``(len(rows),)``; ``best_net`` is in the
        reward's units (the episode return of asking ``best_mask`` then answering). Ties go to the
        smaller bitmask.

    Uses the judge's table (all 1,024 sets in one broadcast) when it has one, else batched
    ``model.net_value`` over all sets.
    """
    k = model.budget if budget is None else min(int(budget), model.budget)
    if k < 0:
        raise ConfigError(f"oracle budget = {budget} must be >= 0")
    if exact and budget is not None and int(budget) > model.budget:
        raise ConfigError(f"exact oracle of size {budget} exceeds the env's budget of {model.budget} questions")
    ok = feasible_masks(k, exact=exact)
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    tables = net_tables(model, rows)
    tables[:, ~ok] = -np.inf
    best = tables.argmax(axis=1)
    return best.astype(np.int64), tables[np.arange(len(rows)), best]


class OracleAgent(DialogueAgent):
    """Asks exactly the best set for the user's true profile, then answers (privileged: reads the
    hidden profile through its ``PrivilegedContext``'s env; an upper bound, not a deployable agent).

    Args:
        budget: Most questions (default: the env's budget).
        exact: Ask exactly ``budget`` attributes (the paper's best-of-120 3-subsets with ``budget=3``).
    """

    privileged = True

    def __init__(self, budget: int | None = None, *, exact: bool = False) -> None:
        super().__init__()
        if budget is not None and budget < 0:
            raise ConfigError(f"OracleAgent budget = {budget} must be >= 0")
        if exact and budget is None:
            raise ConfigError("OracleAgent(exact=True) needs a budget (the set size)")
        self.oracle_budget = budget
        self.exact = exact
        self.name = "oracle" if budget is None else f"oracle-{'exact-' if exact else ''}{budget}"
        self._model: EpisodeModel | None = None
        self._row_of_id: dict[str, int] = {}
        self._cache: dict[int, int] = {}
        self._plan: list[int] = []
        self._guarded = False
        self._row = -1
        self._guarded_plan: Any = None

    def setup(self, context: AgentContext) -> None:
        super().setup(context)
        self._model = privileged_context(context, "OracleAgent").env.model
        self._guarded = hasattr(self._model, "exact_values")
        self._row_of_id = {s.id: i for i, s in enumerate(self._model.scenarios)}
        self._cache = {}

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        if self._model is None:
            raise ConfigError(
                "OracleAgent needs its context: call agent.setup(PrivilegedContext.from_env(env)) first (evaluate does)"
            )
        row = self._row_of_id[str(info["scenario_id"])]
        if self._guarded:  # the user may decline, hedge or leave: the exact planner's policy
            if self.oracle_budget is not None or self.exact:
                raise ConfigError("OracleAgent on the guarded track plans with the env's budget (no budget=/exact=)")
            from penguin_gym.users.planning import plan_values

            self._row, self._guarded_plan = row, plan_values(self._model, row)  # type: ignore[arg-type]
            return
        mask = self._cache.get(row)
        if mask is None:
            mask = int(oracle_values(self._model, [row], budget=self.oracle_budget, exact=self.exact)[0][0])
            self._cache[row] = mask
        self._plan = [a for a in range(10) if mask >> a & 1]

    def choose(self, obs: Mapping[str, np.ndarray]) -> int:
        if self._guarded:
            from penguin_gym.users.planning import best_action

            d = self.dialogue
            told = d.told_mask
            return best_action(self._model, self._row, self._guarded_plan, told & ~d.hedged, d.hedged, d.declined)  # type: ignore[arg-type]
        asked = self.dialogue.asked_mask
        for a in self._plan:
            if not asked >> a & 1:
                return a
        return ANSWER


__all__ = ["OracleAgent", "feasible_masks", "oracle_values"]
