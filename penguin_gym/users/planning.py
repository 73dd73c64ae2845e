"""The exact planner of the guarded track: dynamic programming over what each question got.

For one user whose true profile is known (so the judge's score of every revealed set is), the best
expected return of any policy under the user model is a finite-horizon MDP: a state says, for each
attribute, whether it is unasked, answered, hedged or declined (4^10 = 1,048,576 states: the issue's
3^10 of asked-and-answered sets, with the vague answer as a fourth case). From a state ``s``:

- answering gives ``A(s)``: the safety term of the judge's scores for the answered set, moved
  ``hedge_credit`` of the way to the answered-or-hedged set;
- asking ``i`` costs ``c_i``; the user then leaves (the answer is ``A(s)``), or declines, hedges or
  answers, each with the model's probability in ``s`` (``GuardedParams``), and the value is that of the
  next state; at the budget the answer is forced.

``V(s) = max(A(s), max_i Q(s, i))``, computed level by level from the states with the most questions
down to the empty one, all states of a level at once (numpy). ``V(empty)`` is the oracle's expected
return: the regret reference of the track. It is an expectation: on one episode a lucky agent can beat
it, never on average.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from penguin_gym.data.schema import NUM_ATTRIBUTES
from penguin_gym.rules import ANSWER, MASK_BITS, NUM_SETS, POPCOUNT, reward_scale, safety_reward

if TYPE_CHECKING:
    from penguin_gym.users.model import GuardedModel

#: Digits of a state, per attribute.
UNASKED, ANSWERED, HEDGED, DECLINED = 0, 1, 2, 3
NUM_STATES = 4**NUM_ATTRIBUTES
PLACE = 4 ** np.arange(NUM_ATTRIBUTES, dtype=np.int64)


class _Tables(NamedTuple):
    answered: np.ndarray  # (n,) int16 bitmask
    told: np.ndarray  # answered | hedged, int16
    code: np.ndarray  # rapport * 11 + declined count, int8 (the decline probability's state inputs)
    levels: tuple[tuple[tuple[int, np.ndarray, np.ndarray], ...], ...]  # per level: (i, states, asked|i)
    reachable: np.ndarray  # the states whose asked intrusiveness is within the patience limit, int32


@lru_cache(maxsize=4)
def _tables(rapport_after: int, intrusiveness: tuple[float, ...], max_intrusion: float) -> _Tables:
    """The state space's index tables (shared by every user of one user model).

    Only the states a user can reach count: a question that takes the intrusiveness asked past
    ``max_intrusion`` makes the user leave, so its next states never occur (and asking it is worth
    less than answering: it costs and reveals nothing)."""
    s = np.arange(NUM_STATES, dtype=np.int64)
    answered = np.zeros(NUM_STATES, dtype=np.int64)
    hedged = np.zeros(NUM_STATES, dtype=np.int64)
    declined = np.zeros(NUM_STATES, dtype=np.int64)
    for i in range(NUM_ATTRIBUTES):
        d = (s // PLACE[i]) % 4
        answered |= (d == ANSWERED).astype(np.int64) << i
        hedged |= (d == HEDGED).astype(np.int64) << i
        declined |= (d == DECLINED).astype(np.int64) << i
    asked = answered | hedged | declined
    within = MASK_BITS @ np.asarray(intrusiveness) <= max_intrusion + 1e-9  # per asked set (1024,)
    reachable = np.flatnonzero(within[asked])
    count = POPCOUNT[asked]
    told = answered | hedged
    code = ((told >> rapport_after) & 1) * 11 + POPCOUNT[declined]
    r_count = count[reachable]
    order = reachable[np.argsort(r_count, kind="stable")]
    bounds = np.searchsorted(np.sort(r_count), np.arange(NUM_ATTRIBUTES + 2))
    levels = []
    for k in range(NUM_ATTRIBUTES + 1):
        at = order[bounds[k] : bounds[k + 1]]
        per = []
        for i in range(NUM_ATTRIBUTES):
            after = asked[at] | (1 << i)
            keep = (((asked[at] >> i) & 1) == 0) & within[after]
            per.append((i, at[keep].astype(np.int32), after[keep].astype(np.int16)))
        levels.append(tuple(per))
    return _Tables(
        answered.astype(np.int16),
        told.astype(np.int16),
        code.astype(np.int8),
        tuple(levels),
        reachable.astype(np.int32),
    )


def tables_for(model: GuardedModel) -> _Tables:
    p = model.params
    return _tables(p.rapport_after, tuple(p.intrusiveness.tolist()), p.max_intrusion)


class Plan(NamedTuple):
    """The exact planner's result for one user."""

    values: np.ndarray  # V over all states (NUM_STATES,), the reward's units
    answer: np.ndarray  # A over all states: the value of answering now
    root: float  # V of the empty state: the expected return of the best policy


class _UserModel(NamedTuple):
    """One user's probabilities, as lookup tables."""

    p_leave: np.ndarray  # (1024,) by the asked set after the question
    p_decline: np.ndarray  # (10, 22) by attribute and state code
    p_hedge: np.ndarray  # (10,)
    cost: np.ndarray  # (10,) in the reward's units


def _user(model: GuardedModel, row: int) -> _UserModel:
    p = model.params
    d = float(model.distress[row])
    rapport = np.repeat([False, True], 11)
    n_declined = np.tile(np.arange(11), 2)
    pd = np.stack([p.p_decline(i, d, rapport, n_declined) for i in range(NUM_ATTRIBUTES)])
    return _UserModel(
        p_leave=np.asarray(p.p_leave(model.intrusion, d)),
        p_decline=pd,
        p_hedge=np.asarray(p.p_hedge(np.arange(NUM_ATTRIBUTES), d)),
        cost=model.costs * reward_scale(model.normalize_reward),
    )


def answer_values(model: GuardedModel, row: int) -> np.ndarray:
    """``A(s)`` for every reachable state (0 elsewhere): the reward's safety term of answering in ``s``."""
    t = tables_for(model)
    safety = model.safety(np.full(NUM_SETS, row), np.arange(NUM_SETS))
    r = t.reachable
    s_told = safety[t.told[r]]
    s_answered = safety[t.answered[r]]
    out = np.zeros(NUM_STATES)
    out[r] = safety_reward(s_answered + model.params.hedge_credit * (s_told - s_answered), model.normalize_reward)
    return out


def plan_values(model: GuardedModel, row: int) -> Plan:
    """Solve the user's MDP exactly (see the module docstring)."""
    t = tables_for(model)
    u = _user(model, row)
    a = answer_values(model, row)
    v = a.copy()
    for k in range(min(model.budget, NUM_ATTRIBUTES) - 1, -1, -1):
        for i, idx, after in t.levels[k]:
            if not len(idx):
                continue
            q = _q(v, a, u, t, i, idx, after)
            v[idx] = np.maximum(v[idx], q)
    return Plan(v, a, float(v[0]))


def _q(
    v: np.ndarray, a: np.ndarray, u: _UserModel, t: _Tables, i: int, idx: np.ndarray, after: np.ndarray
) -> np.ndarray:
    place = int(PLACE[i])
    pl = u.p_leave[after]
    pd = u.p_decline[i][t.code[idx]]
    ph = u.p_hedge[i]
    stay = v[idx + place] * (1.0 - ph) + v[idx + 2 * place] * ph
    reply = v[idx + 3 * place] * pd + stay * (1.0 - pd)
    return a[idx] * pl + reply * (1.0 - pl) - u.cost[i]


def state_index(answered: int, hedged: int, declined: int) -> int:
    """The planner's index of a state given as three bitmasks."""
    s = 0
    for i in range(NUM_ATTRIBUTES):
        bit = 1 << i
        if answered & bit:
            s += ANSWERED * int(PLACE[i])
        elif hedged & bit:
            s += HEDGED * int(PLACE[i])
        elif declined & bit:
            s += DECLINED * int(PLACE[i])
    return s


def best_action(model: GuardedModel, row: int, plan: Plan, answered: int, hedged: int, declined: int) -> int:
    """The planner's action in a state: the question with the best expected value, or ``ANSWER`` when
    none beats answering now (ties answer)."""
    t = tables_for(model)
    s = state_index(answered, hedged, declined)
    asked = answered | hedged | declined
    if POPCOUNT[asked] >= model.budget:
        return ANSWER
    u = _user(model, row)
    best, best_value = ANSWER, float(plan.answer[s])
    idx = np.array([s], dtype=np.int64)
    for i in range(NUM_ATTRIBUTES):
        if asked >> i & 1 or not model.within_patience(asked | (1 << i)):
            continue
        q = float(_q(plan.values, plan.answer, u, t, i, idx, np.array([asked | (1 << i)]))[0])
        if q > best_value + 1e-12:
            best, best_value = i, q
    return best


__all__ = ["NUM_STATES", "Plan", "answer_values", "best_action", "plan_values", "state_index"]
