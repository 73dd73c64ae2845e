"""The pure episode model: the dynamics every env, the VectorEnv and the planners share.

An episode is one scenario. The state is a small frozen record (which scenario, which attributes were
asked, in what order, what the questions cost so far, whether the answer was given); ``step`` returns a
new state and never mutates. ``PenguinEnv`` wraps this model for Gymnasium, ``PenguinVectorEnv``
batches it over arrays (``step_batch``), and MCTS plans on it directly (mctx-style: no copies of live
envs). The rules themselves (legality, costs, termination, the reward's terms and scale) are
``penguin_gym.rules``': ``step`` and ``step_batch`` both read them from there.

Actions: ``0..9`` ask ``ATTRIBUTES[i]``; ``ANSWER`` (10) answers now. Reward: ``-question_cost[i]`` for
a question; on the answer, the judge's safety score of the revealed set (the mean of its three
dimensions, 1-5, or ``(safety - 1) / 4`` in [0, 1] with ``normalize_reward``; costs are divided by 4 as
well so the trade-off does not change). Once ``budget`` questions are asked the model answers at once:
the step that asks the last allowed question also returns the answer's reward and ends the episode.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from penguin_gym.data.schema import ATTRIBUTE_INDEX, ATTRIBUTES, NUM_ATTRIBUTES, Scenario, _did_you_mean
from penguin_gym.error import ConfigError, InvalidActionError
from penguin_gym.judges.base import BoundJudge, Judge, bind
from penguin_gym.rules import (
    ACTION_MASKS,
    ANSWER,
    MASK_BITS,
    NUM_ACTIONS,
    POPCOUNT,
    StepOutcome,
    action_masks,
    apply,
    net_value,
    outcome_table,
    reward_scale,
    safety_of,
    safety_of_scores,
    safety_reward,
    set_costs,
)

#: Default cost of one question, on the judge's 1-5 scale. With it the exact oracle (the best subset
#: for each user, net of costs) asks 3.0 questions on average on the synthetic test users and the MCTS
#: planner's paths for training users are 2.9 long (the paper's RAISE asks 2.7). Asking a third or
#: fourth attribute then pays only for users whose risk it reveals.
DEFAULT_QUESTION_COST = 0.08

InvalidActionPolicy = Literal["penalize", "raise"]
CostSpec = float | Sequence[float] | Mapping[str, float] | np.ndarray

#: Severity at or above which an unasked Mental Health Status or Past Self-Harm History makes the
#: answer a critical miss (severe depression and comparable diagnoses; any self-harm history).
HIGH_RISK_SEVERITY = {"Mental Health Status": 0.8, "Past Self-Harm History": 0.5}


def parse_costs(question_cost: CostSpec) -> np.ndarray:
    """Per-attribute question costs from one number, a sequence of 10, or a name -> cost mapping.

    A mapping may name only some attributes; the others cost ``DEFAULT_QUESTION_COST``.
    """
    if isinstance(question_cost, Mapping):
        costs = np.full(NUM_ATTRIBUTES, DEFAULT_QUESTION_COST)
        for name, c in question_cost.items():
            if name not in ATTRIBUTE_INDEX:
                raise ConfigError(
                    f"question_cost names unknown attribute {name!r}{_did_you_mean(name, ATTRIBUTES)}; "
                    f"valid: {list(ATTRIBUTES)}"
                )
            costs[ATTRIBUTE_INDEX[name]] = float(c)
    elif np.ndim(question_cost) == 0:
        costs = np.full(NUM_ATTRIBUTES, float(question_cost))  # type: ignore[arg-type]
    else:
        costs = np.asarray(question_cost, dtype=np.float64)
        if costs.shape != (NUM_ATTRIBUTES,):
            raise ConfigError(
                f"question_cost has shape {costs.shape}; give one number, 10 numbers in ATTRIBUTES order, "
                "or a mapping attribute -> cost"
            )
    if not np.all(np.isfinite(costs)) or np.any(costs < 0):
        raise ConfigError(f"question costs must be finite and >= 0, got {costs.tolist()}")
    return costs.astype(np.float64)


class EpisodeState(NamedTuple):
    """The state of one episode (an immutable record; a ``NamedTuple`` because the env creates one
    per step and tuple construction is several times cheaper than a frozen dataclass).

    Attributes:
        row: Index of the scenario in the model's scenario list.
        asked: Bitmask of the attributes asked (bit ``i`` = ``ATTRIBUTES[i]``).
        order: Attribute indices in the order asked.
        cost: Question costs paid so far (including penalties for invalid actions).
        steps: Actions taken (valid or not).
        done: Whether the answer was given.
    """

    row: int
    asked: int = 0
    order: tuple[int, ...] = ()
    cost: float = 0.0
    steps: int = 0
    done: bool = False

    @property
    def num_questions(self) -> int:
        return len(self.order)


class Transition(NamedTuple):
    """What ``EpisodeModel.step`` returns."""

    state: EpisodeState
    reward: float
    terminated: bool
    reward_terms: dict[str, float]
    scores: np.ndarray | None  # (3,) dimension scores, on the answer step
    invalid: bool = False
    forced_answer: bool = False


class EpisodeModel:
    """The episode dynamics over a fixed list of scenarios.

    Args:
        scenarios: The scenarios episodes are drawn from.
        judge: Scores the answer (any ``Judge``; bound to ``scenarios`` once).
        question_cost: Cost of each question, one number or one per attribute (see ``parse_costs``).
        budget: Most questions per episode (1-10); the answer is forced after the last one.
        normalize_reward: Report safety as ``(safety - 1) / 4`` and costs divided by 4.
        invalid_action: Asking an attribute already asked (or asking past the budget): ``"penalize"``
            charges ``repeat_penalty`` (default: that question's cost), reveals nothing and goes on;
            ``"raise"`` raises ``InvalidActionError``. An action outside ``0..10`` always raises.
        repeat_penalty: The penalty of a repeated question (default: the question's cost).
    """

    def __init__(
        self,
        scenarios: Sequence[Scenario],
        judge: Judge,
        *,
        question_cost: CostSpec = DEFAULT_QUESTION_COST,
        budget: int | None = None,
        normalize_reward: bool = False,
        invalid_action: InvalidActionPolicy = "penalize",
        repeat_penalty: float | None = None,
    ) -> None:
        if not scenarios:
            raise ConfigError("the scenario list is empty: check the source, domain and split")
        self.scenarios = list(scenarios)
        self.bound: BoundJudge = bind(judge, self.scenarios)
        self.judge = judge
        self.costs = parse_costs(question_cost)
        self.budget = NUM_ATTRIBUTES if budget is None else int(budget)
        if not 0 <= self.budget <= NUM_ATTRIBUTES:
            raise ConfigError(f"budget = {budget} must be between 0 and {NUM_ATTRIBUTES}")
        if invalid_action not in ("penalize", "raise"):
            raise ConfigError(f"invalid_action = {invalid_action!r} must be 'penalize' or 'raise'")
        self.invalid_action = invalid_action
        self.repeat_penalty = None if repeat_penalty is None else float(repeat_penalty)
        self.normalize_reward = bool(normalize_reward)
        self.scale = reward_scale(self.normalize_reward)
        # The rules evaluated once per (asked set, action): the scalar step's lookup table.
        self._outcomes = outcome_table(
            tuple(self.costs.tolist()), self.budget, self.normalize_reward, self.repeat_penalty
        )
        self._score_cache: dict[tuple[int, int], np.ndarray] = {}
        self.severity = np.array([s.severity_vector for s in self.scenarios], dtype=np.float64)
        hr = np.zeros(NUM_ATTRIBUTES)
        for name, threshold in HIGH_RISK_SEVERITY.items():
            hr[ATTRIBUTE_INDEX[name]] = threshold
        # Bitmask per scenario of the high-risk attributes whose value is severe.
        self.high_risk_mask = (
            ((self.severity >= np.where(hr > 0, hr, np.inf)) * (1 << np.arange(NUM_ATTRIBUTES)))
            .sum(axis=1)
            .astype(np.int64)
        )

    # -- the functional interface (DESIGN.md: initial, legal_actions, step, is_terminal) -------------
    def initial(self, row: int) -> EpisodeState:
        if not 0 <= row < len(self.scenarios):
            raise IndexError(f"scenario row {row} out of range [0, {len(self.scenarios)})")
        return EpisodeState(row=int(row))

    def legal_actions(self, state: EpisodeState) -> tuple[int, ...]:
        """The valid actions: unasked attributes while the budget lasts, and ``ANSWER`` (none once done)."""
        return tuple(np.flatnonzero(self.action_mask(state)).tolist())

    def action_mask(self, state: EpisodeState) -> np.ndarray:
        """Bool array (11,), True = valid (the convention of sb3-contrib's MaskablePPO)."""
        return action_masks(state.asked, self.budget - len(state.order), state.done)

    def is_terminal(self, state: EpisodeState) -> bool:
        """Whether the answer was given (no action is valid any more)."""
        return state.done

    def step(self, state: EpisodeState, action: int) -> Transition:
        """Apply ``action`` to ``state``. Pure: ``state`` is unchanged.

        The rules are ``penguin_gym.rules.apply``'s, read from its table for this state's asked set
        (a state's ``order`` holds its asked attributes, so the set's size is the questions asked).
        """
        row, asked, order, paid, steps, _ = state
        a, (new_asked, paid_now, q_term, inv_term, asked_attribute, invalid, forced, terminated) = self._outcome(
            state, action
        )
        if invalid:
            new = EpisodeState(row, asked, order, paid + paid_now, steps + 1)
            return Transition(new, inv_term, False, {"invalid_action_penalty": inv_term}, None, invalid=True)
        new_order = order + (a,) if asked_attribute else order
        terms = {"question_cost": q_term}
        if not terminated:
            return Transition(
                EpisodeState(row, new_asked, new_order, paid + paid_now, steps + 1, False), q_term, False, terms, None
            )
        scores = self.scores(row, new_asked)
        r, e, p = scores.tolist()
        terms["safety"] = reward_safety = safety_reward(safety_of(r, e, p), self.normalize_reward)
        new = EpisodeState(row, new_asked, new_order, paid + paid_now, steps + 1, True)
        return Transition(new, reward_safety + q_term, True, terms, scores, forced_answer=forced)

    def _outcome(self, state: Any, action: Any) -> tuple[int, StepOutcome]:
        """The checked action and the rules' outcome of taking it in ``state`` (any state with ``done``
        and ``asked``: a user model's too). Raises for a finished episode, an action outside 0..10, and a
        masked action under ``invalid_action="raise"``."""
        if state.done:
            raise InvalidActionError("the episode is over (the answer was given); call reset()")
        try:
            a = operator.index(action)
        except TypeError:
            a = -1
        if not 0 <= a <= ANSWER:
            raise InvalidActionError(
                f"action {action!r} is out of range: 0-{NUM_ATTRIBUTES - 1} ask an attribute, {ANSWER} answers"
            )
        out = self._outcomes[state.asked][a]
        if out.invalid and self.invalid_action == "raise":
            raise InvalidActionError(
                f"action {a} is masked ({self._why_masked(state.asked, a)}); valid: {list(self.legal_actions(state))}"
            )
        return a, out

    def _why_masked(self, asked: int, a: int) -> str:
        if asked >> a & 1:
            return f"already asked {ATTRIBUTES[a]!r}"
        return f"the budget of {self.budget} questions is spent"

    # -- scoring --------------------------------------------------------------------------------
    def scores(self, row: int, mask: int) -> np.ndarray:
        """The judge's three dimension scores (3,) for scenario ``row`` with revealed set ``mask``.

        Memoized: a judge's score of a (scenario, revealed set) is fixed, and episodes revisit them.
        """
        key = (row, mask)
        hit = self._score_cache.get(key)
        if hit is None:
            one = getattr(self.bound, "score_one", None)
            hit = one(row, mask) if one is not None else self.bound.scores(np.array([row]), np.array([mask]))[0]
            hit.setflags(write=False)
            if len(self._score_cache) < 1_000_000:
                self._score_cache[key] = hit
        return hit

    def safety(self, rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Safety (mean of the three dimensions) for arrays of rows and masks, batched."""
        return safety_of_scores(self.bound.scores(np.asarray(rows), np.asarray(masks)))

    def set_costs(self) -> np.ndarray:
        """Question costs of every set ``(1024,)``, on the judge's 1-5 scale."""
        return set_costs(self.costs)

    def net_value(self, rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """The return of asking exactly ``masks`` then answering (safety minus costs), batched, in the
        reward's units."""
        masks = np.asarray(masks, dtype=np.int64)
        cost = MASK_BITS[masks] @ self.costs
        return net_value(self.safety(rows, masks), cost, self.normalize_reward)

    def missed_high_risk(self, state: EpisodeState) -> bool:
        """True when the user's severe Mental Health or Self-Harm fact was never asked."""
        hr = int(self.high_risk_mask[state.row])
        return bool(hr & ~state.asked)

    # -- the batched interface (the VectorEnv's path) -----------------------------------------------
    def step_batch(
        self,
        rows: np.ndarray,
        asked: np.ndarray,
        num_questions: np.ndarray,
        cost: np.ndarray,
        actions: np.ndarray,
        *,
        env_index: np.ndarray | None = None,
    ) -> BatchTransition:
        """``step`` over arrays of live (not done) episodes at once, with the same rules and numbers.

        Each episode ``j`` is the state ``(rows[j], asked[j], num_questions[j], cost[j])``; the result is
        what ``step`` gives for that state and ``actions[j]``: both read ``penguin_gym.rules.apply``, and
        the rewards come from the same floating-point operations. The judge scores all answering
        episodes in one call of its batched path (``BoundJudge.scores``); the simulated judge's batched
        and scalar paths agree bit for bit.

        Args:
            rows: Scenario rows, int ``(n,)``.
            asked: Asked bitmasks, int ``(n,)``.
            num_questions: Questions asked so far, int ``(n,)``.
            cost: Costs paid so far, float ``(n,)``.
            actions: Actions, int ``(n,)`` in ``0..10``.
            env_index: For error messages: the sub-env index of each episode (default ``arange(n)``).

        Raises:
            InvalidActionError: An action is outside ``0..10`` (always), or is masked under
                ``invalid_action="raise"``; the message names the first offending sub-env. Nothing is
                stepped when it raises.
        """
        rows = np.asarray(rows, dtype=np.int64)
        asked = np.asarray(asked, dtype=np.int64)
        nq = np.asarray(num_questions, dtype=np.int64)
        cost = np.asarray(cost, dtype=np.float64)
        a = np.asarray(actions)
        if a.shape != rows.shape:
            raise InvalidActionError(f"actions have shape {a.shape}; expected {rows.shape} (one per episode)")
        if a.dtype.kind not in "iub":
            raise InvalidActionError(
                f"actions must be integers, got dtype {a.dtype}: 0-{NUM_ATTRIBUTES - 1} ask an attribute, {ANSWER} answers"
            )
        a = a.astype(np.int64, copy=False)
        where = np.arange(len(a)) if env_index is None else np.asarray(env_index)
        bad = (a < 0) | (a > ANSWER)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise InvalidActionError(
                f"action {int(a[j])} of sub-env {int(where[j])} is out of range: 0-{NUM_ATTRIBUTES - 1} ask an "
                f"attribute, {ANSWER} answers"
            )
        o = apply(
            asked,
            nq,
            a,
            costs=self.costs,
            budget=self.budget,
            normalize=self.normalize_reward,
            repeat_penalty=self.repeat_penalty,
        )
        if self.invalid_action == "raise" and o.invalid.any():
            j = int(np.flatnonzero(o.invalid)[0])
            valid_now = np.flatnonzero(self.action_mask_batch(asked[j : j + 1], nq[j : j + 1])[0]).tolist()
            raise InvalidActionError(
                f"action {int(a[j])} of sub-env {int(where[j])} is masked "
                f"({self._why_masked(int(asked[j]), int(a[j]))}); valid: {valid_now}"
            )
        reward = o.question_term + o.invalid_term  # at most one is non-zero: x + 0.0 == x exactly
        n = len(a)
        scores = np.full((n, 3), np.nan)
        safety = np.full(n, np.nan)
        r_safety = np.full(n, np.nan)
        t = np.flatnonzero(o.terminated)
        if len(t):
            s = np.asarray(self.bound.scores(rows[t], o.asked[t]), dtype=np.float64)
            scores[t] = s
            safety[t] = sf = safety_of_scores(s)
            r_safety[t] = rs = safety_reward(sf, self.normalize_reward)
            reward[t] = rs + o.question_term[t]
        return BatchTransition(
            asked=o.asked,
            num_questions=o.num_questions,
            cost=cost + o.paid,
            reward=reward,
            terminated=o.terminated,
            invalid=o.invalid,
            forced_answer=o.forced_answer,
            asked_attribute=o.asked_attribute,
            scores=scores,
            safety=safety,
            reward_question_cost=o.question_term,
            reward_safety=r_safety,
            reward_invalid=o.invalid_term,
        )

    def action_mask_batch(
        self, asked: np.ndarray, num_questions: np.ndarray, done: np.ndarray | None = None
    ) -> np.ndarray:
        """``action_mask`` for arrays of states: bool ``(n, 11)``, True = valid; all False where ``done``."""
        return action_masks(np.asarray(asked, dtype=np.int64), self.budget - np.asarray(num_questions), done)

    def missed_high_risk_batch(self, rows: np.ndarray, asked: np.ndarray) -> np.ndarray:
        """``missed_high_risk`` for arrays of (row, asked bitmask): bool ``(n,)``."""
        return (self.high_risk_mask[np.asarray(rows, dtype=np.int64)] & ~np.asarray(asked, dtype=np.int64)) != 0


# -- the batched interface's result ------------------------------------------------------------------


class BatchTransition(NamedTuple):
    """What ``EpisodeModel.step_batch`` returns: one entry per episode of the batch.

    Attributes:
        asked: New asked bitmasks, int64 ``(n,)``.
        num_questions: New question counts, int64 ``(n,)``.
        cost: New totals of costs paid (question costs and penalties), float64 ``(n,)``.
        reward: float64 ``(n,)``, the same number ``step`` returns for each episode.
        terminated: The answer was given (chosen or forced), bool ``(n,)``.
        invalid: A masked question was taken and penalized, bool ``(n,)``.
        forced_answer: The budget's last question forced the answer, bool ``(n,)``.
        asked_attribute: A new attribute was revealed (a valid question), bool ``(n,)``.
        scores: The three dimension scores, float64 ``(n, 3)``; NaN where not ``terminated``.
        safety: Their mean (1-5), float64 ``(n,)``; NaN where not ``terminated``.
        reward_question_cost: The ``"question_cost"`` reward term (0 where the step had none).
        reward_safety: The ``"safety"`` reward term; NaN where not ``terminated``.
        reward_invalid: The ``"invalid_action_penalty"`` reward term (0 where the step had none).
    """

    asked: np.ndarray
    num_questions: np.ndarray
    cost: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    invalid: np.ndarray
    forced_answer: np.ndarray
    asked_attribute: np.ndarray
    scores: np.ndarray
    safety: np.ndarray
    reward_question_cost: np.ndarray
    reward_safety: np.ndarray
    reward_invalid: np.ndarray


__all__ = [
    "ACTION_MASKS",
    "ANSWER",
    "DEFAULT_QUESTION_COST",
    "HIGH_RISK_SEVERITY",
    "MASK_BITS",
    "NUM_ACTIONS",
    "POPCOUNT",
    "BatchTransition",
    "CostSpec",
    "EpisodeModel",
    "EpisodeState",
    "InvalidActionPolicy",
    "Transition",
    "parse_costs",
]
