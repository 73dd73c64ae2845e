"""``GuardedPenguinEnv``: the guarded track, where the user may decline, hedge or leave.

Registered as ``Penguin-<Domain>-Guarded-v0`` and ``Penguin-All-Guarded-v0`` (the train split by
default, as the faithful v2 ids). The faithful ids are unchanged.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from penguin_gym.data import ATTRIBUTES, NUM_ATTRIBUTES
from penguin_gym.dialogue import DOMAIN_ONEHOT, STEPS_LEFT, scenario_texts
from penguin_gym.env import PenguinEnv
from penguin_gym.model import CostSpec
from penguin_gym.rules import MASK_BITS
from penguin_gym.users.model import GuardedModel, GuardedState
from penguin_gym.users.params import GuardedParams

#: What a decline, and leaving, say (``info["answer"]``, transcripts).
DECLINE_TEXT = "I'd rather not say."
LEFT_TEXT = "<the user leaves the conversation>"


class GuardedPenguinEnv(PenguinEnv):
    """``PenguinEnv`` with a guarded user (``penguin_gym.users``): a question may be declined, answered
    vaguely, or make the user leave.

    ## Differences from ``PenguinEnv``
    - **Replies.** Asking a valid question, the user may leave (the episode ends at once with a forced
      answer on what is known: ``info["user_left"]``), decline (nothing is revealed; the attribute
      cannot be asked again), hedge (a vague answer: the judge gets ``hedge_credit`` of its value, the
      agent a noisy severity) or answer fully. ``info["reply"]`` says which (``REPLIES``). The
      probabilities depend on the attribute's sensitivity, the user's latent distress, rapport (having
      said how they feel makes mental-health and self-harm questions likelier to be answered), earlier
      declines and the intrusiveness asked so far; the data file ``penguin_gym/users/guarded_v0.json``
      gives every value with its reason and source.
    - **Costs.** By default each question costs ``0.08 * intrusiveness`` (0.04 for age, 0.16 for
      self-harm; mean 0.08); ``question_cost`` overrides it (a mapping, only for the attributes it
      names).
    - **Observation.** Two more keys: ``declined`` and ``hedged`` (``MultiBinary(10)``). ``asked``
      counts every question asked; ``revealed`` is the severity of full answers and the noisy severity
      of vague ones (0 for declined and unasked).
    - **Info.** The last step also has ``declined``, ``hedged`` (attribute names), ``user_left`` and
      ``undisclosed_high_risk`` (a severe Mental Health or Self-Harm fact was not told: not asked,
      declined or left unanswered). ``missed_high_risk`` stays "never asked". ``revealed`` holds what
      the user said (the vague text for a hedge); ``questions`` every question asked.
    - **Oracle.** The track's exact bound plans with the true profile and the user model
      (``penguin_gym.users.planning``); its expected return is the regret reference.

    Args:
        user: The user model: ``GuardedParams`` or a path to its JSON file (default the package's).
        question_cost: Default ``None``: the user model's per-attribute costs.
        **kwargs: As ``PenguinEnv``.

    ## Version History
    - v0: initial guarded track (user model ``guarded-v0``, synthetic suite v1).
    """

    def __init__(
        self,
        domain: str | None = None,
        *,
        user: GuardedParams | str | None = None,
        question_cost: CostSpec | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(domain, **kwargs)
        base = self.model
        self.model: GuardedModel = GuardedModel(  # type: ignore[assignment]
            base.scenarios,
            base.judge,
            params=user,
            question_cost=question_cost,
            budget=base.budget,
            normalize_reward=base.normalize_reward,
            invalid_action=base.invalid_action,
            repeat_penalty=base.repeat_penalty,
        )
        self.user = self.model.params
        space = dict(self.observation_space.spaces)  # type: ignore[attr-defined]
        space["declined"] = spaces.MultiBinary(NUM_ATTRIBUTES)
        space["hedged"] = spaces.MultiBinary(NUM_ATTRIBUTES)
        self.observation_space = spaces.Dict(space)  # type: ignore[assignment]
        self.state: GuardedState | None = None  # type: ignore[assignment]
        self._replies = []

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        gym.Env.reset(self, seed=seed)
        row = self._pick_row(options)
        self.state = self.model.initial(row, self.model.draw(self.np_random))
        self._last_scores = None
        self._replies = []
        info = {"scenario_id": self.scenarios[row].id, "num_questions": 0, "total_cost": 0.0}
        info.update(scenario_texts(self.scenarios[row], ()))
        return self._obs(self.state), info

    def _add_answer(self, info: dict[str, Any], prev: GuardedState, state: GuardedState) -> None:  # type: ignore[override]
        kind = self.model.reply(prev, state)
        assert kind is not None
        a = state.order[-1]
        text = {
            "answered": self.scenarios[state.row].profile[ATTRIBUTES[a]],
            "hedged": self.user.hedge_texts[a],
            "declined": DECLINE_TEXT,
            "left": LEFT_TEXT,
        }[kind]
        assert self._replies is not None
        self._replies.append((kind, text))
        info["reply"] = kind
        info["answer"] = text

    def _add_final(self, info: dict[str, Any], tr: Any, state: GuardedState) -> None:  # type: ignore[override]
        super()._add_final(info, tr, state)
        info["declined"] = [ATTRIBUTES[i] for i in state.order if state.declined >> i & 1]
        info["hedged"] = [ATTRIBUTES[i] for i in state.order if state.hedged >> i & 1]
        info["user_left"] = state.left
        info["undisclosed_high_risk"] = self.model.undisclosed_high_risk(state)

    def _obs(self, state: GuardedState) -> dict[str, np.ndarray]:  # type: ignore[override]
        row = state.row
        if row != self._obs_row:
            self._obs_row = row
            self._obs_parts = (self._features.one(row), DOMAIN_ONEHOT[self._domain_index[row]], self._severity32[row])
        query, domain, _ = self._obs_parts
        return {
            "query": query.copy(),
            "domain": domain.copy(),
            "asked": MASK_BITS[state.asked].copy(),
            "revealed": self.model.observed_severity(state),
            "steps_left": STEPS_LEFT[0 if state.done else self.model.budget - len(state.order)].copy(),
            "declined": MASK_BITS[state.declined].copy(),
            "hedged": MASK_BITS[state.hedged].copy(),
        }


__all__ = ["DECLINE_TEXT", "LEFT_TEXT", "GuardedPenguinEnv"]
