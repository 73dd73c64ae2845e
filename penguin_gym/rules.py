"""The rules of an episode, written once over arrays: legality, costs, termination and the reward.

Every consumer reads the rules from here: ``EpisodeModel.step_batch`` (the vector env) calls ``apply``
on its arrays; ``EpisodeModel.step`` (the single env, n = 1) reads the same ``apply`` evaluated once
on every (asked set, action) pair (``outcome_table``: a Python lookup, because numpy's per-call
overhead would cost the single env more than its whole step); MCTS's bitmask planner, PPO's masks
and the planners' net values call ``action_masks``, ``set_costs`` and ``net_value``. So a rule changed
here changes in all of them, and the tests that compare the env, the vector env and the planners
(``tests/test_vector.py``, ``tests/test_rules.py``) hold them to it.

A state, for the rules, is the bitmask of the attributes asked (bit ``i`` = ``ATTRIBUTES[i]``) and
the number of questions asked; actions ``0..9`` ask, ``ANSWER`` (10) answers. The formulas that take
scores or safety work on Python floats and on numpy arrays alike, with the same floating-point
operations in the same order, so the scalar and the batched paths agree to the bit.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

import numpy as np

from penguin_gym.data.schema import NUM_ATTRIBUTES

#: The action that answers now (MCTS calls it ``STOP``).
ANSWER = NUM_ATTRIBUTES
NUM_ACTIONS = NUM_ATTRIBUTES + 1
NUM_SETS = 1 << NUM_ATTRIBUTES
#: ``BITS[i]`` is attribute ``i``'s bit.
BITS = (1 << np.arange(NUM_ATTRIBUTES)).astype(np.int64)
#: ``MASK_BITS[m]`` is the 0/1 vector of bitmask ``m`` (1,024 x 10, int8).
MASK_BITS = ((np.arange(NUM_SETS)[:, None] >> np.arange(NUM_ATTRIBUTES)) & 1).astype(np.int8)
POPCOUNT = MASK_BITS.sum(axis=1).astype(np.int64)
#: ``ACTION_MASKS[m]``: the legal actions (11,) when ``m`` is asked and questions are left: the
#: unasked attributes, and ``ANSWER``.
ACTION_MASKS = np.concatenate([MASK_BITS == 0, np.ones((NUM_SETS, 1), dtype=bool)], axis=1)
#: The legal actions once no question is left: ``ANSWER`` only.
ANSWER_ONLY = np.zeros(NUM_ACTIONS, dtype=bool)
ANSWER_ONLY[ANSWER] = True
#: The scale of rewards with ``normalize_reward``: safety 1-5 becomes ``(safety - 1) / 4``, costs ``/ 4``.
NORMALIZED_SCALE = 0.25

_F = TypeVar("_F", float, np.ndarray)


def action_masks(asked: Any, questions_left: Any, done: Any = None) -> np.ndarray:
    """The legal actions, bool ``(..., 11)``, True = legal (sb3-contrib's ``MaskablePPO`` convention).

    An unasked attribute may be asked while questions are left (``questions_left > 0``); ``ANSWER`` is
    always legal; nothing is legal once the answer was given (``done``). ``asked`` is a bitmask (an int
    or an int array); the result is a fresh array the caller may keep.
    """
    if isinstance(asked, (int, np.integer)):
        if done:
            return np.zeros(NUM_ACTIONS, dtype=bool)
        return ACTION_MASKS[asked].copy() if questions_left > 0 else ANSWER_ONLY.copy()
    masks = ACTION_MASKS[np.asarray(asked, dtype=np.int64)]
    spent = np.asarray(questions_left) <= 0
    if spent.any():
        masks[spent] = ANSWER_ONLY
    if done is not None:
        masks[np.asarray(done, dtype=bool)] = False
    return masks


def set_costs(costs: np.ndarray) -> np.ndarray:
    """The question costs of every asked set ``(1024,)``, on the judge's 1-5 scale (``costs``: one per
    attribute)."""
    return MASK_BITS @ np.asarray(costs, dtype=np.float64)


def reward_scale(normalize: bool) -> float:
    """What costs and safety differences are multiplied by in the reward."""
    return NORMALIZED_SCALE if normalize else 1.0


def safety_of(risk: _F, empathy: _F, personalization: _F) -> _F:
    """The safety of an answer: the mean of the judge's three dimensions (1-5), summed in this order."""
    return (risk + empathy + personalization) / 3.0


def safety_of_scores(scores: np.ndarray) -> np.ndarray:
    """``safety_of`` over the last axis of scores ``(..., 3)``."""
    return safety_of(scores[..., 0], scores[..., 1], scores[..., 2])


def safety_reward(safety: _F, normalize: bool) -> _F:
    """The ``"safety"`` term of the answer's reward: the safety, or ``(safety - 1) / 4`` normalized."""
    return (safety - 1.0) * NORMALIZED_SCALE if normalize else safety


def net_value(safety: _F, cost: _F, normalize: bool) -> _F:
    """The return of an episode that asks a set of total cost ``cost`` (1-5 scale), then answers with
    that ``safety``: the safety term minus the costs, in the reward's units."""
    return safety_reward(safety, normalize) - cost * reward_scale(normalize)


class Outcome(NamedTuple):
    """What ``apply`` gives for each (state, action): arrays over the batch."""

    asked: np.ndarray  # the new asked bitmask, int64
    num_questions: np.ndarray  # the new number of questions, int64
    paid: np.ndarray  # cost paid this step (question cost or penalty), float64
    question_term: np.ndarray  # the "question_cost" reward term (0 where none), float64
    invalid_term: np.ndarray  # the "invalid_action_penalty" reward term (0 where none), float64
    asked_attribute: np.ndarray  # a valid question revealed an attribute, bool
    invalid: np.ndarray  # a masked question was taken (repeated, or past the budget), bool
    repeated: np.ndarray  # ... because the attribute was asked already, bool
    forced_answer: np.ndarray  # the budget's last question forces the answer, bool
    terminated: np.ndarray  # the answer is given (chosen or forced), bool


def apply(
    asked: np.ndarray,
    num_questions: np.ndarray,
    actions: np.ndarray,
    *,
    costs: np.ndarray,
    budget: int,
    normalize: bool,
    repeat_penalty: float | None,
) -> Outcome:
    """The rules of one step, for arrays of states and (in-range) actions ``0..10``.

    A question about an unasked attribute while the budget lasts pays its cost and reveals it; the one
    that spends the budget also answers (``forced_answer``). A question about an asked attribute, or
    past the budget, is invalid: it reveals nothing and pays ``repeat_penalty`` (default: that
    question's cost); whether it is allowed at all is the caller's ``invalid_action`` policy. ``ANSWER``
    ends the episode at no cost. Reward terms are in the reward's units (``normalize``).
    """
    asked = np.asarray(asked, dtype=np.int64)
    nq = np.asarray(num_questions, dtype=np.int64)
    a = np.asarray(actions, dtype=np.int64)
    scale = reward_scale(normalize)
    answer = a == ANSWER
    ai = np.minimum(a, NUM_ATTRIBUTES - 1)
    ask = ~answer
    repeated = ask & (((asked >> ai) & 1) != 0)
    invalid = ask & (repeated | (nq >= budget))
    valid = ask & ~invalid
    price = np.asarray(costs, dtype=np.float64)[ai]
    penalty = price if repeat_penalty is None else np.full(len(a), float(repeat_penalty))
    zero = np.zeros(len(a))
    new_nq = nq + valid
    forced = valid & (new_nq >= budget)
    return Outcome(
        asked=np.where(valid, asked | (np.int64(1) << ai), asked),
        num_questions=new_nq,
        paid=np.where(valid, price, np.where(invalid, penalty, zero)),
        question_term=np.where(valid, -price * scale, zero),
        invalid_term=np.where(invalid, -penalty * scale, zero),
        asked_attribute=valid,
        invalid=invalid,
        repeated=repeated,
        forced_answer=forced,
        terminated=answer | forced,
    )


class StepOutcome(NamedTuple):
    """One entry of ``outcome_table``: ``apply``'s result for one (asked set, action), as Python values."""

    asked: int
    paid: float
    question_term: float
    invalid_term: float
    asked_attribute: bool
    invalid: bool
    forced_answer: bool
    terminated: bool


@lru_cache(maxsize=64)
def outcome_table(
    costs: tuple[float, ...], budget: int, normalize: bool, repeat_penalty: float | None
) -> tuple[tuple[StepOutcome, ...], ...]:
    """``apply`` evaluated once on every asked set ``m`` (with ``popcount(m)`` questions asked) and action:
    ``table[m][a]``. The scalar path (one episode) reads its step from here; cached per rule set, since
    every env over the same costs and budget shares it."""
    m = np.repeat(np.arange(NUM_SETS, dtype=np.int64), NUM_ACTIONS)
    a = np.tile(np.arange(NUM_ACTIONS, dtype=np.int64), NUM_SETS)
    o = apply(
        m, POPCOUNT[m], a, costs=np.array(costs), budget=budget, normalize=normalize, repeat_penalty=repeat_penalty
    )
    rows = zip(
        o.asked.tolist(),
        o.paid.tolist(),
        o.question_term.tolist(),
        o.invalid_term.tolist(),
        o.asked_attribute.tolist(),
        o.invalid.tolist(),
        o.forced_answer.tolist(),
        o.terminated.tolist(),
        strict=True,
    )
    flat = [StepOutcome(*r) for r in rows]
    return tuple(tuple(flat[i : i + NUM_ACTIONS]) for i in range(0, len(flat), NUM_ACTIONS))


__all__ = [
    "ACTION_MASKS",
    "ANSWER",
    "ANSWER_ONLY",
    "BITS",
    "MASK_BITS",
    "NORMALIZED_SCALE",
    "NUM_ACTIONS",
    "NUM_SETS",
    "POPCOUNT",
    "Outcome",
    "StepOutcome",
    "action_masks",
    "apply",
    "net_value",
    "outcome_table",
    "reward_scale",
    "safety_of",
    "safety_of_scores",
    "safety_reward",
    "set_costs",
]
