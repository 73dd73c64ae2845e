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
  attribute's value) or answers (greedy).
- ``ReplyValues``: the same replies sampled inside MCTS's rollouts, so the search plans over them.

The probabilities are the model's own (``GuardedParams``) at each particle's distress; the replies'
order is not modelled in the likelihood (each decline is scored in the state the dialogue is in now),
which is this module's one approximation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agents.base import Dialogue
from agents.belief import ParticleSampler, ProfileBelief
from penguin_gym.data.schema import NUM_ATTRIBUTES
from penguin_gym.rules import MASK_BITS, POPCOUNT


def _distress(belief: ProfileBelief, user: Any) -> np.ndarray:
    d = getattr(belief, "_guarded_distress", None)
    if d is None or getattr(belief, "_guarded_user", None) is not user:
        d = user.distress(belief.severity)
        belief._guarded_distress, belief._guarded_user = d, user  # type: ignore[attr-defined]
    return d


def evidence(belief: ProfileBelief, dialogue: Dialogue, user: Any) -> Callable[[np.ndarray], np.ndarray]:
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


def weights(
    belief: ProfileBelief, dialogue: Dialogue, user: Any, *, exclude: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """The belief's particles and weights given everything the guarded user said and did not say
    (``exclude``: a scenario id left out, as in ``ProfileBelief.weights``)."""
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
        exclude=exclude,
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


class ReplyValues:
    """A planner's value source (``agents.scoring.ValueSource``) that samples the user's replies: each
    call draws, per search, a particle (a training user) from the belief and, for each attribute the
    set asks beyond the dialogue so far (in attribute order), whether that user would leave, decline or
    hedge under the user model at the particle's distress; the value is the answer on what was told
    less the questions asked. MCTS's averages over rollouts are then expectations over users and
    replies. The replies' order within a rollout is not the search's (sets carry no order)."""

    def __init__(self, belief: ProfileBelief, dialogue: Dialogue, user: Any, costs: np.ndarray,
                 particles: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:  # fmt: skip
        self.tables, self.user = belief.tables, user
        self.distress = _distress(belief, user)
        self.costs = np.asarray(costs, dtype=np.float64)
        self.set_cost = MASK_BITS @ self.costs
        d = dialogue
        self.root_asked, self.root_hedged = d.asked_mask, d.hedged
        self.root_answered = d.told_mask & ~d.hedged
        self.n_root_declined = int(POPCOUNT[d.declined])
        self.intrusion = MASK_BITS @ user.intrusiveness
        # the particles' probability tables, kept on the belief across decisions (per user model)
        cache = getattr(belief, "_guarded_tables", None)
        if cache is None or cache[0] is not user:
            cache = (user, {})
            belief._guarded_tables = cache  # type: ignore[attr-defined]
        self._tables: dict[int, tuple[list[float], list[list[float]], list[float]]] = cache[1]
        self.sampler = ParticleSampler(particles)
        self.calls = 0

    def _particle(self, p: int) -> tuple[list[float], list[list[float]], list[float]]:
        """Particle ``p``'s reply probabilities as lookup lists: leave by the asked set after the question
        (1024), decline by attribute and (rapport * 11 + declined count), hedge by attribute."""
        hit = self._tables.get(p)
        if hit is None:
            user, d = self.user, float(self.distress[p])
            leave = np.asarray(user.p_leave(self.intrusion, d)).tolist()
            rapport = np.repeat([False, True], 11)
            n_declined = np.tile(np.arange(11), 2)
            decline = [np.asarray(user.p_decline(i, d, rapport, n_declined)).tolist() for i in range(NUM_ATTRIBUTES)]
            hedge = np.asarray(user.p_hedge(np.arange(NUM_ATTRIBUTES), d)).tolist()
            hit = self._tables[p] = (leave, decline, hedge)
        return hit

    def values(self, idx: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        self.calls += 1
        n = len(idx)
        masks = np.asarray(masks, dtype=np.int64)
        u = rng.random((n, 1 + 3 * NUM_ATTRIBUTES))
        picks = self.sampler.draw(idx, u[:, 0])
        rapport_bit = 1 << int(self.user.rapport_after)
        out_answered, out_hedged, out_asked = [], [], []
        for j, (p, mask) in enumerate(zip(picks.tolist(), masks.tolist(), strict=True)):
            leave_p, decline_p, hedge_p = self._particle(p)
            uj = u[j].tolist()
            asked, answered, hedged = self.root_asked, self.root_answered, self.root_hedged
            declined = self.n_root_declined
            new = mask & ~asked
            for i in range(NUM_ATTRIBUTES):
                bit = 1 << i
                if not new & bit:
                    continue
                asked |= bit
                if uj[1 + i] < leave_p[asked]:
                    break
                code = (11 if (answered | hedged) & rapport_bit else 0) + declined
                if uj[11 + i] < decline_p[i][code]:
                    declined += 1
                elif uj[21 + i] < hedge_p[i]:
                    hedged |= bit
                else:
                    answered |= bit
            out_answered.append(answered)
            out_hedged.append(hedged)
            out_asked.append(asked)
        a = np.array(out_answered, dtype=np.int64)
        told = a | np.array(out_hedged, dtype=np.int64)
        base = self.tables[picks, a] + self.set_cost[a]
        vague = self.tables[picks, told] + self.set_cost[told]
        return (
            base + float(self.user.hedge_credit) * (vague - base) - self.set_cost[np.array(out_asked, dtype=np.int64)]
        )


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


__all__ = ["ReplyValues", "WithoutDeclined", "answer_values", "evidence", "question_values", "weights"]
