"""``AdvisedPolicy``: a masked actor-critic whose action logits start from a planner's advice.

With advice features (``agents.advice``: greedy's expected gain of each question over answering now,
in judge points), the policy's logits are

    logits = action_net(latent) + beta * gain,      gain[ANSWER] = 0,

with ``beta = exp(log_beta)`` learned (``PPOConfig.advice_scale`` its initial value). SB3 initializes
``action_net`` near zero, so the untrained deterministic policy is greedy (the largest positive gain, or
answer), and its sampling explores around greedy's choice, sharper where greedy is sure. PPO then learns,
from the env's rewards, a correction ``action_net(latent)`` from the whole observation (the advice
included) and how far to trust the advice (``beta``): a residual policy on a planner's prior, as
AlphaZero's policy starts from its search's prior. The value net reads the same observation.

Used by ``agents.ppo.train`` when ``PPOConfig.advice`` is set; ``MaskablePPO.load`` restores it (SB3
saves the policy class and its keywords).
"""

from __future__ import annotations

import math
from typing import Any

import torch as th
from sb3_contrib.common.maskable.policies import MaskableMultiInputActorCriticPolicy
from torch import nn

from agents.advice import ADVICE_KEY
from penguin_gym.error import ConfigError
from penguin_gym.rules import ANSWER


class AdvisedPolicy(MaskableMultiInputActorCriticPolicy):
    """``MaskableMultiInputActorCriticPolicy`` with the advice's gains added to the action logits.

    Args:
        advice_scale: Initial ``beta`` (logits per judge point of expected gain); learned in training.
        *args, **kwargs: ``MaskableMultiInputActorCriticPolicy``'s.
    """

    def __init__(self, *args: Any, advice_scale: float = 20.0, **kwargs: Any) -> None:
        if not advice_scale > 0:
            raise ConfigError(f"AdvisedPolicy advice_scale = {advice_scale} must be > 0")
        self._advice_scale = float(advice_scale)
        self._bias: th.Tensor | None = None
        super().__init__(*args, **kwargs)
        if ADVICE_KEY not in self.observation_space.spaces:  # type: ignore[attr-defined]
            raise ConfigError(
                f"AdvisedPolicy needs the {ADVICE_KEY!r} observation key (train with PPOConfig(advice='greedy'))"
            )

    def _build(self, lr_schedule: Any) -> None:
        # Before the optimizer is made (in super()._build), so beta is trained with the rest.
        self.log_advice_scale = nn.Parameter(th.tensor(math.log(self._advice_scale), dtype=th.float32))
        super()._build(lr_schedule)

    @property
    def advice_scale(self) -> float:
        """The current ``beta``."""
        return float(self.log_advice_scale.exp().item())

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["advice_scale"] = self._advice_scale
        return data

    def _set_bias(self, obs: Any) -> None:
        gain = obs[ADVICE_KEY].clone()
        gain[..., ANSWER] = 0.0  # the answer entry is the value of answering, not a gain
        self._bias = gain

    def _get_action_dist_from_latent(self, latent_pi: th.Tensor) -> Any:
        if self._bias is None:
            raise RuntimeError("AdvisedPolicy: the advice was not read before the action distribution")
        logits = self.action_net(latent_pi) + self.log_advice_scale.exp() * self._bias
        self._bias = None
        return self.action_dist.proba_distribution(action_logits=logits)

    def forward(self, obs: Any, deterministic: bool = False, action_masks: Any = None) -> Any:
        self._set_bias(obs)
        return super().forward(obs, deterministic=deterministic, action_masks=action_masks)

    def evaluate_actions(self, obs: Any, actions: th.Tensor, action_masks: Any = None) -> Any:
        self._set_bias(obs)
        return super().evaluate_actions(obs, actions, action_masks=action_masks)

    def get_distribution(self, obs: Any, action_masks: Any = None) -> Any:
        self._set_bias(obs)
        return super().get_distribution(obs, action_masks=action_masks)


__all__ = ["AdvisedPolicy"]
