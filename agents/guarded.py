"""What the belief-based agents (greedy, MCTS) know of the guarded track's user (``penguin_gym.users``).

On the guarded track a question may be declined, answered vaguely, or make the user leave, with the
probabilities of the published user model (``AgentContext.user``), which depend on the user's hidden
distress. A deployed agent does not know the distress, but its belief does, particle by particle (each
particle is a training user with a profile):

- ``evidence``: a decline is evidence. Each particle's log-likelihood of the dialogue's replies (each
  question declined, or told, with that particle's decline probability), so a user who declines the
  self-harm question weighs the distressed particles up. Vague answers widen the severity kernel
  (``ProfileBelief.weights(hedged=...)``).
- ``question_values``: the one-step value of asking each attribute under the belief: the chance the
  user leaves (the answer is then what is known), declines (nothing learned), hedges (a part of the
  attribute's value) or answers.

The probabilities are the model's own (``GuardedParams``) at each particle's distress; the replies'
order is not modelled in the likelihood (each decline is scored in the state the dialogue is in now),
which is this module's one approximation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.base import Dialogue
from agents.belief import ProfileBelief
from penguin_gym.data.schema import NUM_ATTRIBUTES
from penguin_gym.rules import MASK_BITS, POPCOUNT


def _distress(belief: ProfileBelief, user: Any) -> np.ndarray:
    d = getattr(belief, "_guarded_distress", None)
    if d is None or getattr(belief, "_guarded_user", None) is not user:
        d = user.distress(belief.severity)
        belief._guarded_distress, belief._guarded_user = d, user  # type: ignore[attr-defined]
    return d


def evidence(belief: ProfileBelief, dialogue: Dialogue, user: Any):  # type: ignore[no-untyped-def]
    """The replies' log-likelihood per particle, as ``ProfileBelief.weights``'s ``evidence``."""
    declined, told = dialogue.declined, dialogue.told_mask
    rapport = bool(told >> user.rapport_after & 1)
    n_declined = int(POPCOUNT[declined])

    def loglik(idx: np.ndarray) -> np.ndarray:
        d = _distress(belief, user)[idx]
        out = np.zeros(len(idx))
        for i in range(NUM_ATTRIBUTES):
            bit = 1 << i
            if declined & bit:
                out += np.log(np.maximum(user.p_decline(i, d, rapport, n_declined - 1), 1e-12))
            elif told & bit:
                out += np.log(np.maximum(1.0 - user.p_decline(i, d, rapport, n_declined), 1e-12))
        return out

    return loglik


def weights(belief: ProfileBelief, dialogue: Dialogue, user: Any) -> tuple[np.ndarray, np.ndarray]:
    """The belief's particles and weights given everything the guarded user said and did not say."""
    d = dialogue
    return belief.weights(
        d.domain_index,
        d.scenario_type,
        d.query,
        d.severity,
        d.told_mask,
        hedged=d.hedged,
        hedge_sd=float(user.hedge_noise_sd),
        evidence=evidence(belief, d, user),
    )


def answer_values(
    belief: ProfileBelief, idx: np.ndarray, costs: np.ndarray, answered: np.ndarray, hedged: np.ndarray, credit: float
) -> np.ndarray:
    """The safety term of answering, per particle ``(len(idx),)`` and per state (arrays of answered and
    hedged masks ``(k,)``): ``(len(idx), k)``; ``costs`` in the reward's units."""
    set_cost = MASK_BITS @ np.asarray(costs, dtype=np.float64)
    told = answered | hedged
    full = belief.tables[np.ix_(idx, told)] + set_cost[told]
    base = belief.tables[np.ix_(idx, answered)] + set_cost[answered]
    return base + credit * (full - base)


def question_values(
    belief: ProfileBelief,
    dialogue: Dialogue,
    user: Any,
    costs: np.ndarray,
    candidates: Sequence[int],
    idx: np.ndarray,
    w: np.ndarray,
) -> tuple[float, np.ndarray]:
    """``(value of answering now, value of asking each candidate then answering)``, in expectation
    over the belief and the user's replies; ``costs`` in the reward's units."""
    d = dialogue
    told, hedged, declined = d.told_mask, d.hedged, d.declined
    answered = told & ~hedged
    asked = d.asked_mask
    dist = _distress(belief, user)[idx]
    rapport = bool(told >> user.rapport_after & 1)
    n_declined = int(POPCOUNT[declined])
    intrusion = MASK_BITS @ user.intrusiveness
    c = np.asarray(candidates, dtype=np.int64)
    bits = np.int64(1) << c
    states_a = np.concatenate([[answered], answered | bits, np.full(len(c), answered)])
    states_h = np.concatenate([[hedged], np.full(len(c), hedged), hedged | bits])
    vals = answer_values(belief, idx, costs, states_a, states_h, float(user.hedge_credit))  # (P, 1 + 2k)
    now = vals[:, 0]
    full, vague = vals[:, 1 : 1 + len(c)], vals[:, 1 + len(c) :]
    out = np.empty(len(c))
    for j, a in enumerate(c.tolist()):
        pl = user.p_leave(intrusion[asked | 1 << a], dist)
        pd = user.p_decline(a, dist, rapport, n_declined)
        ph = user.p_hedge(a, dist)
        v = now * (pl + (1 - pl) * pd) + (1 - pl) * (1 - pd) * (ph * vague[:, j] + (1 - ph) * full[:, j])
        out[j] = float(w @ v) - float(costs[a])
    return float(w @ now), out


class WithoutDeclined:
    """A planner's value source (``agents.scoring.ValueSource``) for a dialogue with declines: a set's
    value is that of the set without the declined attributes (they were asked, so the search never
    asks them again, but they told nothing; their cost is paid already and shifts every value alike).
    Vague answers count as told, and leaving is not modelled: MCTS's search is the faithful one."""

    def __init__(self, inner: Any, declined: int) -> None:
        self.inner, self.keep = inner, ~np.int64(declined)

    @property
    def calls(self) -> int:
        return int(getattr(self.inner, "calls", 0))

    def values(self, idx: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.inner.values(idx, np.asarray(masks, dtype=np.int64) & self.keep, rng)


__all__ = ["WithoutDeclined", "answer_values", "evidence", "question_values", "weights"]
