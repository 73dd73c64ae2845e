"""Advice features: a planner's value estimates as part of a learned policy's observation.

A policy learned from reward alone has to rediscover, from tens of thousands of episodes, what a
value-of-information planner computes in a millisecond from the training users: how much each
question is worth to this user now. ``GreedyAdvice`` hands it that estimate. Each step it runs greedy's
one-step value model (``agents.baselines.GreedyAgent.action_values``: the belief over training users,
and on the guarded track the published user model's declines, hedges and departures) on the dialogue so
far, and returns one number per action:

* ``advice[a]`` for a question ``a`` that may be asked: the expected gain, in judge points (1-5 scale,
  question cost included), of asking ``a`` and then answering, over answering now (greedy asks the
  largest when it is positive); 0 for an action that may not be taken;
* ``advice[ANSWER]``: the expected net value of answering now, ``(net - 1) / 4`` (about 0-1).

The policy reads the advice with the rest of the observation and is free to overrule it: it learns,
from the env's true rewards, where greedy's one-step, belief-based estimate is wrong (greedy never looks
two questions ahead, and its belief approximates the user model). ``PPOConfig(advice="greedy")`` trains
such a policy (``agents.ppo``); ``PPOAgent`` computes the same advice when it plays, so it needs only
what any agent gets (``AgentContext``: the training split, the costs, the published user model).

The advice is leave-one-out: the belief never counts the user being played among its particles. On
the held-out split that changes nothing (a test user is no training particle); on the training split it
keeps the features as informative as they will be on new users, instead of reading the training user's
own scores.

* ``GreedyAdvice``: the features for one dialogue (``setup(context)``, ``reset(info)``,
  ``__call__(obs, info, action)``).
* ``AdviceObservation``: a wrapper that adds them to a penguin env's observation under ``"advice"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.baselines import GreedyAgent
from agents.belief import BeliefConfig
from agents.context import AgentContext
from penguin_gym.error import ConfigError
from penguin_gym.rules import ANSWER, NUM_ACTIONS

#: The observation key of the advice features.
ADVICE_KEY = "advice"

#: The advice kinds ``PPOConfig.advice`` accepts.
ADVICE_KINDS = ("greedy",)

_BOUND = 4.0


def check_advice(advice: str | None, *, flatten: bool = False, name: str = "advice") -> None:
    """Raise ``ConfigError`` unless ``advice`` is ``None`` or one of ``ADVICE_KINDS`` on a Dict
    observation (``flatten=False``: the advice is a key of it); ``name`` is how the error calls it."""
    if advice is None:
        return
    if advice not in ADVICE_KINDS:
        raise ConfigError(f"{name} = {advice!r} must be one of {list(ADVICE_KINDS)} or None")
    if flatten:
        raise ConfigError(f"{name} = {advice!r} needs the Dict observation: flatten=False (MultiInputPolicy)")


def advice_space() -> spaces.Box:
    """The advice features' space: ``(11,)`` float32 in ``[-4, 4]``."""
    return spaces.Box(-_BOUND, _BOUND, (NUM_ACTIONS,), np.float32)


class GreedyAdvice:
    """Greedy's one-step values of every action, for one dialogue at a time (see the module docstring).

    Args:
        belief_config: How greedy's belief weighs training users (default ``BeliefConfig()``, greedy's).
    """

    name = "greedy"

    def __init__(self, *, belief_config: BeliefConfig | None = None) -> None:
        self.greedy = GreedyAgent(belief_config=belief_config)
        self._scale = 1.0
        self._offset = 0.0
        self._ready = False

    def setup(self, context: AgentContext) -> None:
        """Fit (or reuse, ``agents.belief.fit_belief_cached``) greedy's belief on the context's training
        split and read its costs, reward scale and user model."""
        self.greedy.setup(context)
        self._scale = float(context.scale)
        self._offset = 1.0 if context.normalize_reward else 0.0  # the reward's (safety - 1) / 4 shift
        self._ready = True

    def reset(self, info: Mapping[str, Any]) -> None:
        """Start a dialogue (the env's reset info)."""
        if not self._ready:
            raise ConfigError(
                "GreedyAdvice is not set up: call setup(AgentContext.from_env(env)) (evaluate does it for an "
                "agent) before the first episode"
            )
        self.greedy.reset(info)

    def __call__(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any], action: int | None = None) -> np.ndarray:
        """The advice after a step: ``obs`` and ``info`` as the env returned them, ``action`` the action
        that led there (``None`` after a reset). Returns ``(11,)`` float32."""
        g = self.greedy
        g.observe(obs, info, action)
        cands, now, asks = g.action_values(exclude=g.dialogue.scenario_id)
        out = np.zeros(NUM_ACTIONS, dtype=np.float64)
        if cands:
            out[cands] = (np.asarray(asks) - now) / self._scale
        out[ANSWER] = (now / self._scale + self._offset - 1.0) / 4.0
        return np.clip(out, -_BOUND, _BOUND).astype(np.float32)


class AdviceObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Adds ``GreedyAdvice``'s features to a penguin env's Dict observation under ``"advice"``.

    Args:
        env: A penguin env (either track), wrapped or not.
        context: The agent context the advice is computed in (default ``AgentContext.from_env(env)`` at
            the first reset: the env's training split, costs and user model). Sub-envs of one vector env
            can share one.
        advice: The feature source (default a new ``GreedyAdvice()``).

    The observation after the answer (the episode is over) carries zeros: nothing is left to advise.
    """

    def __init__(self, env: gym.Env, *, context: AgentContext | None = None, advice: GreedyAdvice | None = None):
        gym.utils.RecordConstructorArgs.__init__(self, context=context, advice=advice)
        gym.Wrapper.__init__(self, env)
        space = env.observation_space
        if not isinstance(space, spaces.Dict):
            raise ConfigError(
                f"AdviceObservation needs a penguin env's Dict observation, got {space!r} (wrap before flattening)"
            )
        if ADVICE_KEY in space.spaces:
            raise ConfigError(f"the observation already has an {ADVICE_KEY!r} key: the env is wrapped twice")
        self.observation_space = spaces.Dict({**space.spaces, ADVICE_KEY: advice_space()})
        self.advice = advice or GreedyAdvice()
        self._context = context
        self._ready = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        if not self._ready:
            self.advice.setup(self._context or AgentContext.from_env(self.env))
            self._ready = True
        self.advice.reset(info)
        return {**obs, ADVICE_KEY: self.advice(obs, info)}, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            feats = np.zeros(NUM_ACTIONS, dtype=np.float32)
        else:
            feats = self.advice(obs, info, int(action))
        return {**obs, ADVICE_KEY: feats}, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """The env's valid actions (sb3-contrib's ``MaskablePPO`` reads them)."""
        return np.asarray(self.env.unwrapped.action_masks())  # type: ignore[attr-defined]


__all__ = ["ADVICE_KEY", "ADVICE_KINDS", "AdviceObservation", "GreedyAdvice", "advice_space", "check_advice"]
