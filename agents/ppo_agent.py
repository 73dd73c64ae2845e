"""A trained ``MaskablePPO`` policy as an agent (``PPOAgent``), and the action masks an observation implies.

Needs ``pip install "penguin-gym[train]"`` (torch, stable-baselines3, sb3-contrib).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from agents.advice import ADVICE_KEY, GreedyAdvice
from agents.context import AgentContext
from penguin_gym.data import DOMAINS, NUM_ATTRIBUTES
from penguin_gym.error import ConfigError, DependencyNotInstalled
from penguin_gym.model import ANSWER
from penguin_gym.rules import BITS, action_masks
from penguin_gym.wrappers import flatten_observation

try:
    from sb3_contrib import MaskablePPO
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise DependencyNotInstalled(
        'agents.ppo needs torch, stable-baselines3 and sb3-contrib: pip install "penguin-gym[train]"'
    ) from e

#: The attribute of a ``MaskablePPO`` model that records what it was trained on (``train`` sets it, SB3
#: saves it in every checkpoint's zip): ``{"env_id", "split", "source", "n_per_domain", "data_seed"}``.
TRAINED_ON_ATTR = "penguin_trained_on"

#: Entries of the flat observation besides the query features: domain, asked, revealed, steps_left.
_FLAT_EXTRA = len(DOMAINS) + 2 * NUM_ATTRIBUTES + 1


def masks_from_obs(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The valid actions implied by an observation (one ``(11,)`` or a batch ``(N, 11)``).

    An unasked attribute may be asked while questions are left (``steps_left > 0``); answering is always
    valid. Equal to ``env.action_masks()`` on every state before the answer.
    """
    asked = (np.asarray(obs["asked"]) != 0) @ BITS
    return action_masks(asked, np.asarray(obs["steps_left"])[..., 0])


class PPOAgent:
    """A trained ``MaskablePPO`` policy as an ``Agent``: greedy (``deterministic``) masked actions.

    Args:
        model: A ``MaskablePPO`` model trained on a penguin env (Dict or flattened observations).
        deterministic: Take the most probable valid action (else sample from the masked policy).
        name: The agent's name in results.
        trained_on: What the policy was trained on (default: the model's record, which ``train`` writes
            into every checkpoint: env id, split, data source). ``evaluate`` refuses to score it on
            users of its training split.

    The action mask comes from the observation (``masks_from_obs``, the env's on every live state).
    """

    def __init__(
        self, model: Any, *, deterministic: bool = True, name: str = "ppo", trained_on: Mapping[str, Any] | None = None
    ) -> None:
        self.model = model
        self.deterministic = bool(deterministic)
        self.name = name
        recorded = trained_on if trained_on is not None else getattr(model, TRAINED_ON_ATTR, None)
        self.trained_on: dict[str, Any] | None = dict(recorded) if recorded is not None else None
        self._flat = isinstance(model.observation_space, spaces.Box)
        # A policy trained with advice features (``PPOConfig.advice``) computes them as it plays.
        self._advice: Any = None
        if not self._flat and ADVICE_KEY in getattr(model.observation_space, "spaces", {}):
            self._advice = GreedyAdvice()
        self._last: int | None = None

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu", deterministic: bool = True, name: str = "ppo") -> PPOAgent:
        """Load a model saved by ``train`` (or ``MaskablePPO.save``)."""
        p = Path(path)
        if not p.exists() and not p.with_suffix(".zip").exists():
            raise ConfigError(f"no saved PPO model at {p} (nor {p.with_suffix('.zip')}); train one first")
        model = MaskablePPO.load(str(p), device=device)
        return cls(model, deterministic=deterministic, name=name)

    @property
    def advice(self) -> str | None:
        """The advice the policy reads (``"greedy"``, ``agents.advice``), or ``None``."""
        return None if self._advice is None else str(self._advice.name)

    def setup(self, context: AgentContext) -> None:
        """Check that the context's observations fit the policy (the query features' size); a policy
        trained with advice sets its advice up on the context (the training split, costs, user model)."""
        space = context.observation_space
        want = self.model.observation_space
        if space is not None and not self._flat and hasattr(space, "spaces") and hasattr(want, "spaces"):
            wanted = set(want.spaces) - {ADVICE_KEY}  # the agent computes the advice itself
            missing, extra = sorted(wanted - set(space.spaces)), sorted(set(space.spaces) - set(want.spaces))
            if missing or extra:
                trained = (self.trained_on or {}).get("env_id", "another env")
                raise ConfigError(
                    f"the policy was trained on {trained}, whose observations differ from {context.env_id}'s "
                    f"(keys the env lacks: {missing}; keys the policy never saw: {extra}): a guarded-track policy "
                    "plays the guarded ids (Penguin-<Domain>-Guarded-v0), a faithful one the v2 ids"
                )
        if space is not None:
            have = space["query"].shape[0] if hasattr(space, "spaces") and "query" in space.spaces else None
            need = want.shape[0] - _FLAT_EXTRA if self._flat else want["query"].shape[0]
            if have is not None and have != need:
                raise ConfigError(
                    f"the env's query features have {have} dimensions but the policy was trained on {need}: "
                    "make the env with the featurizer used in training (e.g. featurizer='hashing' or 'embedding')"
                )
        if self._advice is not None:
            self._advice.setup(context)

    def seed(self, seed: int) -> None:
        """Seed the sampling of a stochastic agent (``deterministic=False``; SB3 seeds the global torch
        and numpy generators). A deterministic agent has nothing to seed and leaves them alone, so
        evaluating during training does not change the training run."""
        if not self.deterministic:
            self.model.set_random_seed(int(seed))

    def reset(self, info: Mapping[str, Any]) -> None:
        """Start an episode. The policy is memoryless (the observation holds the dialogue state); a
        policy with advice starts the advice's dialogue."""
        self._last = None
        if self._advice is not None:
            self._advice.reset(info)

    def act(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> int:
        mask = masks_from_obs(obs)
        x: Any = flatten_observation(dict(obs)) if self._flat else dict(obs)
        if self._advice is not None:
            x[ADVICE_KEY] = self._advice(obs, info, self._last)
        action, _ = self.model.predict(x, action_masks=mask, deterministic=self.deterministic)
        self._last = int(np.asarray(action).reshape(-1)[0])
        return self._last

    def act_batch(self, obs: Mapping[str, np.ndarray], masks: np.ndarray | None = None) -> np.ndarray:
        """Actions for a batch of observations ``(N, ...)`` (a ``PenguinVectorEnv``'s), int64 ``(N,)``.

        Rows whose mask has no valid action (finished episodes awaiting autoreset) get ``ANSWER``,
        which the vector env ignores. A policy with advice plays through ``act`` (its advice follows
        each dialogue); ``act_batch`` refuses it.
        """
        if self._advice is not None:
            raise ConfigError(
                "this policy reads advice features, which follow each dialogue: play it episode by episode "
                "(agents.evaluate, or reset/act), not with act_batch"
            )
        masks = masks_from_obs(obs) if masks is None else np.asarray(masks, dtype=bool)
        empty = ~masks.any(axis=1)
        if empty.any():
            masks = masks.copy()
            masks[empty, ANSWER] = True
        x: Any = flatten_observation(dict(obs)) if self._flat else dict(obs)
        actions, _ = self.model.predict(x, action_masks=masks, deterministic=self.deterministic)
        return np.asarray(actions, dtype=np.int64).reshape(-1)


__all__ = ["TRAINED_ON_ATTR", "PPOAgent", "masks_from_obs"]
