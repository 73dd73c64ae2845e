"""``GuardedModel``: the episode model of the guarded track, where the user may decline, hedge or leave.

The rules of legality, cost, budget and reward are the faithful track's (``penguin_gym.rules``, read
through ``EpisodeModel``'s outcome table); what changes is the user's reply to a valid question
(``penguin_gym.users.params`` has the probabilities):

1. the user may **leave** instead of answering: the episode ends with a forced answer on what is known;
2. else **decline**: the attribute counts as asked (it cannot be asked again) and reveals nothing to
   the judge; the decline itself is observed (``obs["declined"]``);
3. else **hedge**: a vague answer; the judge's scores move ``hedge_credit`` of the way from the set
   without it to the set with it, and the agent sees the severity with noise (``obs["hedged"]``);
4. else a full answer, as on the faithful track.

The chance in each reply comes from draws made once per episode at reset (``draw``): a uniform per
question index for leaving, and a uniform per attribute for declining and hedging, plus a normal for
the hedge's noise. So the model stays pure (a state carries its draws), one seed gives one episode,
and two agents that ask the same user the same question get the same reply (common random numbers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from penguin_gym.data.schema import ATTRIBUTES, NUM_ATTRIBUTES, Scenario
from penguin_gym.error import ConfigError
from penguin_gym.judges.base import Judge
from penguin_gym.model import CostSpec, EpisodeModel, InvalidActionPolicy, Transition, parse_costs
from penguin_gym.rules import MASK_BITS, NUM_SETS, safety_of, safety_reward
from penguin_gym.users.params import GuardedParams, load_params

#: What the user did with a question (``info["reply"]``).
REPLIES = ("answered", "hedged", "declined", "left")


class GuardedDraws(NamedTuple):
    """One episode's chance, drawn at reset: ``leave[k]`` for the ``k``-th question, ``decline[i]``,
    ``hedge[i]`` and ``noise[i]`` (standard normal) for attribute ``i``."""

    leave: tuple[float, ...]
    decline: tuple[float, ...]
    hedge: tuple[float, ...]
    noise: tuple[float, ...]


class GuardedState(NamedTuple):
    """The state of one guarded episode (immutable).

    Attributes:
        row, asked, order, cost, steps, done: as ``EpisodeState`` (``asked`` and ``order`` hold every
            question asked, declined ones and the one the user left on included).
        declined: Bitmask of the questions declined.
        hedged: Bitmask of the questions answered vaguely.
        left: The user left (on the last question of ``order``, unanswered).
        draws: The episode's chance (``GuardedDraws``).
    """

    row: int
    asked: int = 0
    order: tuple[int, ...] = ()
    cost: float = 0.0
    steps: int = 0
    done: bool = False
    declined: int = 0
    hedged: int = 0
    left: bool = False
    draws: GuardedDraws | None = None

    @property
    def num_questions(self) -> int:
        return len(self.order)

    @property
    def unanswered(self) -> int:
        """Questions asked that revealed nothing: declined, and the one the user left on."""
        return self.declined | ((1 << self.order[-1]) if self.left else 0)

    @property
    def answered(self) -> int:
        """Questions answered fully."""
        return self.asked & ~self.unanswered & ~self.hedged


class GuardedModel(EpisodeModel):
    """``EpisodeModel`` with the guarded user's replies (see the module docstring).

    Args:
        scenarios, judge, budget, normalize_reward, invalid_action, repeat_penalty: as ``EpisodeModel``.
        params: The user model (``GuardedParams``, or a path to its JSON file; default the package's
            ``guarded_v0.json``).
        question_cost: As ``EpisodeModel``; default (``None``) the user model's per-attribute costs,
            ``base_cost * intrusiveness``. A mapping changes the attributes it names and keeps the user
            model's cost for the others.
    """

    def __init__(
        self,
        scenarios: Sequence[Scenario],
        judge: Judge,
        *,
        params: GuardedParams | str | None = None,
        question_cost: CostSpec | None = None,
        budget: int | None = None,
        normalize_reward: bool = False,
        invalid_action: InvalidActionPolicy = "penalize",
        repeat_penalty: float | None = None,
    ) -> None:
        self.params = params if isinstance(params, GuardedParams) else load_params(params)
        costs = self.params.costs
        if isinstance(question_cost, Mapping):  # the named attributes change; the others keep their cost
            costs = costs.copy()
            costs[:] = [float(question_cost.get(a, c)) for a, c in zip(ATTRIBUTES, costs, strict=True)]
            unknown = [k for k in question_cost if k not in ATTRIBUTES]
            if unknown:
                parse_costs({unknown[0]: 0.0})  # raises, naming the attribute and the valid ones
        elif question_cost is not None:
            costs = question_cost  # type: ignore[assignment]
        super().__init__(
            scenarios,
            judge,
            question_cost=costs,
            budget=budget,
            normalize_reward=normalize_reward,
            invalid_action=invalid_action,
            repeat_penalty=repeat_penalty,
        )
        p = self.params
        self.distress = p.distress(self.severity)
        #: The intrusiveness of every asked set (1024,).
        self.intrusion = MASK_BITS @ p.intrusiveness
        self._intrusion = self.intrusion.tolist()
        self._rapport_bit = 1 << p.rapport_after
        self._hedge_cache: dict[tuple[int, int, int], np.ndarray] = {}

    def within_patience(self, asked: int) -> bool:
        """Whether a user asked the set ``asked`` can still answer (its intrusiveness is within
        ``max_intrusion``; past it the user leaves)."""
        return self._intrusion[asked] <= self.params.max_intrusion + 1e-9

    # -- chance -----------------------------------------------------------------------------------
    def draw(self, rng: np.random.Generator) -> GuardedDraws:
        """An episode's draws from ``rng`` (the env's ``np_random``)."""
        u = rng.random(3 * NUM_ATTRIBUTES).tolist()
        z = rng.standard_normal(NUM_ATTRIBUTES).tolist()
        n = NUM_ATTRIBUTES
        return GuardedDraws(tuple(u[:n]), tuple(u[n : 2 * n]), tuple(u[2 * n :]), tuple(z))

    def initial(self, row: int, draws: GuardedDraws | None = None) -> GuardedState:  # type: ignore[override]
        if not 0 <= row < len(self.scenarios):
            raise IndexError(f"scenario row {row} out of range [0, {len(self.scenarios)})")
        if draws is None:
            raise ConfigError("GuardedModel.initial needs the episode's draws: initial(row, model.draw(rng))")
        return GuardedState(row=int(row), draws=draws)

    def reply_probabilities(self, state: GuardedState, attribute: int) -> tuple[float, float, float]:
        """``(p_leave, p_decline, p_hedge)`` of asking ``attribute`` now (each conditional on the ones
        before not happening)."""
        d = float(self.distress[state.row])
        p = self.params
        leave = float(p.p_leave(self._intrusion[state.asked | (1 << attribute)], d))
        rapport = bool((state.answered | state.hedged) & self._rapport_bit)
        decline = float(p.p_decline(attribute, d, rapport, bin(state.declined).count("1")))
        hedge = float(p.p_hedge(attribute, d))
        return leave, decline, hedge

    # -- the step -----------------------------------------------------------------------------------
    def step(self, state: GuardedState, action: int) -> Transition:  # type: ignore[override]
        """Apply ``action``: the faithful rules for legality and cost, then the user's reply."""
        a, (new_asked, paid_now, q_term, inv_term, asked_attribute, invalid, forced, terminated) = self._outcome(
            state, action
        )
        if invalid:
            new = state._replace(cost=state.cost + paid_now, steps=state.steps + 1)
            return Transition(new, inv_term, False, {"invalid_action_penalty": inv_term}, None, invalid=True)  # type: ignore[arg-type]
        terms = {"question_cost": q_term}
        declined, hedged, left = state.declined, state.hedged, False
        if asked_attribute:
            draws = state.draws
            assert draws is not None, "a guarded state carries its draws"
            p_leave, p_decline, p_hedge = self.reply_probabilities(state, a)
            if draws.leave[len(state.order)] < p_leave:
                left = True
            elif draws.decline[a] < p_decline:
                declined |= 1 << a
            elif draws.hedge[a] < p_hedge:
                hedged |= 1 << a
        order = state.order + (a,) if asked_attribute else state.order
        done = terminated or left
        new = GuardedState(
            state.row,
            new_asked,
            order,
            state.cost + paid_now,
            state.steps + 1,
            done,
            declined,
            hedged,
            left,
            state.draws,
        )
        if not done:
            return Transition(new, q_term, False, terms, None)  # type: ignore[arg-type]
        scores = self.guarded_scores(new.row, new.answered, new.hedged)
        r, e, p = scores.tolist()
        terms["safety"] = reward_safety = safety_reward(safety_of(r, e, p), self.normalize_reward)
        return Transition(new, reward_safety + q_term, True, terms, scores, forced_answer=forced or left)  # type: ignore[arg-type]

    def reply(self, prev: GuardedState, new: GuardedState) -> str | None:
        """What the user did with the question of this step (``REPLIES``), or ``None`` if none was asked."""
        if len(new.order) == len(prev.order):
            return None
        bit = 1 << new.order[-1]
        if new.left:
            return "left"
        if new.declined & bit:
            return "declined"
        return "hedged" if new.hedged & bit else "answered"

    # -- scoring ----------------------------------------------------------------------------------
    def guarded_scores(self, row: int, answered: int, hedged: int) -> np.ndarray:
        """The judge's three scores when ``answered`` was told fully and ``hedged`` vaguely: the scores
        of ``answered`` moved ``hedge_credit`` of the way to those of ``answered | hedged``."""
        base = self.scores(row, answered)
        if not hedged:
            return base
        key = (row, answered, hedged)
        hit = self._hedge_cache.get(key)
        if hit is None:
            full = self.scores(row, answered | hedged)
            hit = base + self.params.hedge_credit * (full - base)
            hit.setflags(write=False)
            if len(self._hedge_cache) < 1_000_000:
                self._hedge_cache[key] = hit
        return hit

    def observed_severity(self, state: GuardedState) -> np.ndarray:
        """What the agent has seen of each severity, float32 (10,): the value for a full answer, the
        value plus the hedge's noise (clipped to [0, 1]) for a vague one, 0 otherwise."""
        sev = self.severity[state.row]
        out = sev * MASK_BITS[state.answered]
        if state.hedged:
            assert state.draws is not None
            z = np.asarray(state.draws.noise)
            noisy = np.clip(sev + self.params.hedge_noise_sd * z, 0.0, 1.0)
            out = np.where(MASK_BITS[state.hedged] == 1, noisy, out)
        return out.astype(np.float32)

    def undisclosed_high_risk(self, state: GuardedState) -> bool:
        """True when the user's severe Mental Health or Self-Harm fact was not told (never asked,
        declined, or left unanswered; a vague answer counts as told)."""
        return bool(int(self.high_risk_mask[state.row]) & ~(state.answered | state.hedged))

    def exact_values(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The exact planner's expected return per row (``penguin_gym.users.planning``): the best any
        policy that knows the true profile and the user model can do in expectation."""
        from penguin_gym.users.planning import plan_values

        head = (
            self.judge_name,
            self.params.name,
            self.params.source_file,
            self.costs.tobytes(),
            self.budget,
            self.normalize_reward,
        )
        out = []
        for r in np.asarray(rows, dtype=np.int64).reshape(-1).tolist():
            key = (*head, self.scenarios[r].id)
            v = _EXACT_CACHE.get(key)
            if v is None:
                v = _EXACT_CACHE[key] = plan_values(self, r).root
                if len(_EXACT_CACHE) > 200_000:
                    _EXACT_CACHE.pop(next(iter(_EXACT_CACHE)))
            out.append(v)
        return np.array(out)

    @property
    def judge_name(self) -> str:
        return str(getattr(self.judge, "name", type(self.judge).__name__))


#: The exact planner's values, per (judge, user model, costs, budget, scale, scenario id): every env a
#: process makes over the same users (one per agent in a leaderboard) shares them.
_EXACT_CACHE: dict[tuple[object, ...], float] = {}


assert NUM_SETS == 1 << NUM_ATTRIBUTES and len(ATTRIBUTES) == NUM_ATTRIBUTES

__all__ = ["REPLIES", "GuardedDraws", "GuardedModel", "GuardedState"]
