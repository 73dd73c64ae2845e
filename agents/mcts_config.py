"""The MCTS planner's hyper-parameters and results, and the plan completion that both of its
implementations (``agents.mcts_search``, arrays; ``agents.mcts_scalar``, one search in plain Python)
share, so that neither imports the other's module for them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from agents.priors import STOP, BoundPrior
from penguin_gym.data.schema import NUM_ATTRIBUTES
from penguin_gym.error import ConfigError
from penguin_gym.rules import ACTION_MASKS, BITS, POPCOUNT

#: ``UNASKED[U]``: the attributes U may still ask (the rules' legal questions), for the scalar search.
UNASKED = [tuple(np.flatnonzero(row[:STOP]).tolist()) for row in ACTION_MASKS]


@dataclass(frozen=True)
class MCTSConfig:
    """Hyper-parameters of the planner (defaults: the paper's, Section 5 and Appendix).

    Attributes:
        num_rollouts: Simulations per search (T = 300).
        budget: Most questions in a plan (the paper's maximum depth, 5), capped by the env's budget.
        c_puct: Exploration constant of PUCT (0.5).
        c_uct: Exploration constant of plain UCT (on normalized values in [0, 1]).
        eps0: Rollout exploration rate at the root (0.2).
        eps_decay: Rollout exploration decay per question asked: ``eps = eps0 * eps_decay ** depth``.
        use_prior: PUCT with the prior (True) or plain UCT without one (False: vanilla MCTS).
        allow_stop: Whether a plan may stop before the budget (the ``STOP`` action). False: every plan
            asks exactly ``budget`` questions (the paper's budget-k comparison).
        extract: The best path ``"q"`` (greedy on Q, the paper) or ``"visits"`` (most visited).
    """

    num_rollouts: int = 300
    budget: int = 5
    c_puct: float = 0.5
    c_uct: float = 1.0
    eps0: float = 0.2
    eps_decay: float = 0.5
    use_prior: bool = True
    allow_stop: bool = True
    extract: Literal["q", "visits"] = "q"

    def __post_init__(self) -> None:
        if self.num_rollouts < 1:
            raise ConfigError(f"MCTSConfig.num_rollouts = {self.num_rollouts} must be >= 1")
        if not 0 <= self.budget <= NUM_ATTRIBUTES:
            raise ConfigError(f"MCTSConfig.budget = {self.budget} must be in [0, {NUM_ATTRIBUTES}]")
        if self.c_puct < 0 or self.c_uct < 0:
            raise ConfigError(f"exploration constants must be >= 0 (c_puct={self.c_puct}, c_uct={self.c_uct})")
        if not (0 <= self.eps0 <= 1 and 0 <= self.eps_decay <= 1):
            raise ConfigError(f"eps0 = {self.eps0} and eps_decay = {self.eps_decay} must be in [0, 1]")
        if self.extract not in ("q", "visits"):
            raise ConfigError(f"MCTSConfig.extract = {self.extract!r} must be 'q' or 'visits'")


@dataclass
class SearchResult:
    """What ``search`` returns for ``n`` searches.

    Attributes:
        masks: ``(n,)`` the extracted plan's final set (root included).
        paths: Per search, the attributes to ask, in order (the root's own attributes excluded).
        q: ``(n,)`` the search's value estimate of the plan (mean backed-up net value).
        root_visits: ``(n, 11)`` visits of each root action (10 attributes, then STOP).
        first_hit: ``(n,)`` simulations until the extracted plan first equalled ``targets`` (-1: never);
            only when ``targets`` were given.
        simulations: Simulations run per search.
        value_calls: ``ValueSource`` calls made (one per simulation step, for all searches).
    """

    masks: np.ndarray
    paths: list[tuple[int, ...]]
    q: np.ndarray
    root_visits: np.ndarray
    first_hit: np.ndarray | None
    simulations: int
    value_calls: int


def complete_plans(
    masks: np.ndarray, paths: list[tuple[int, ...]], limits: np.ndarray, prior: BoundPrior, config: MCTSConfig
) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Without STOP a plan asks exactly up to the limit: finish a plan that ran out of visited children
    with the prior's (or, for plain UCT, the paper's order's) most likely attributes."""
    masks = masks.copy()
    grown = [list(p) for p in paths]
    while True:
        b = np.flatnonzero(POPCOUNT[masks] < limits)
        if not len(b):
            break
        m = masks[b]
        legal = ACTION_MASKS[m, :STOP]
        if config.use_prior:
            p = prior.probs(b, m, limits[b] - POPCOUNT[m], False)[:, :NUM_ATTRIBUTES]
        else:
            p = np.ones((len(b), NUM_ATTRIBUTES))
        a = np.where(legal, p + 1e-12, -1.0).argmax(axis=1)
        masks[b] = m | BITS[a]
        for i, x in zip(b.tolist(), a.tolist(), strict=True):
            grown[i].append(int(x))
    return masks, [tuple(p) for p in grown]


__all__ = ["UNASKED", "MCTSConfig", "SearchResult", "complete_plans"]
