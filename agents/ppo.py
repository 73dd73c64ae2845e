"""A learned acquisition policy: sb3-contrib's ``MaskablePPO`` on the batched penguin env.

The policy reads the query (its features), the domain, what was asked and what was revealed, and the
budget left, and picks the next question or answers; invalid actions (asking twice, asking past the
budget) are masked out of the policy's distribution (invalid action masking, Huang & Ontañón 2022), so
every sampled action is legal. Training steps a ``PenguinVectorEnv`` through the SB3 adapter
(``agents.sb3_vec``): no per-env Python objects, so a laptop trains a policy within a minute or two.

* ``train(env_id, timesteps, seed, ...)``: trains on the ``train`` split, evaluates on the held-out
  ``test`` split during training (``PenguinEvalCallback`` in ``agents.ppo_eval``: mean safety,
  questions, net reward and regret against the oracle), writes checkpoints, and returns a
  ``TrainResult``.
* ``PPOAgent`` (``agents.ppo_agent``): a trained model as an ``Agent`` (``agents.base``) that
  ``agents.evaluate`` runs on any env; ``PPOAgent.load(path)`` reads a saved model.

Needs ``pip install "penguin-gym[train]"`` (torch, stable-baselines3, sb3-contrib).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.advice import check_advice
from agents.ppo_agent import TRAINED_ON_ATTR, PPOAgent, masks_from_obs
from agents.ppo_eval import PenguinEvalCallback, eval_metrics
from penguin_gym.error import ConfigError, DependencyNotInstalled

try:
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise DependencyNotInstalled(
        'agents.ppo needs torch, stable-baselines3 and sb3-contrib: pip install "penguin-gym[train]"'
    ) from e

logger = logging.getLogger(__name__)


#: What an advised policy (``advice="greedy"``) trains with, unless told otherwise: it starts as greedy,
#: so it learns slowly (a tenth of the plain rate, decaying to 0), without an entropy bonus (which would
#: flatten the prior it starts from), from a sharp prior (``beta`` 40 logits per judge point). Tuned on
#: ``Penguin-Health-Guarded-v0``, 65k steps (``benchmarks/ppo_oracle.py``): with the plain defaults
#: (lr 1e-3, ent_coef 0.01, beta 20) the policy starts at greedy's 0.967 normalized and drifts to 0.961;
#: with these it ends at +0.006, -0.001 and +0.002 of greedy on seeds 0-2. A critic warm-up
#: (``critic_warmup=4``) gave +0.002, -0.001 and +0.002: no better, so it is off.
ADVISED_DEFAULTS: dict[str, Any] = {
    "learning_rate": 1e-4,
    "lr_schedule": "linear",
    "ent_coef": 0.0,
    "advice_scale": 40.0,
}


@dataclass
class PPOConfig:
    """``MaskablePPO`` hyper-parameters and the training env's options.

    The defaults train a policy that reaches about 98-99% of the oracle's net reward on held-out
    ``Penguin-Health-v2`` scenarios in a few tens of thousands of steps (see
    ``benchmarks/ppo_oracle.py``).

    Attributes:
        n_envs: Sub-envs of the training ``PenguinVectorEnv``.
        n_steps: Steps per sub-env per rollout (the rollout holds ``n_envs * n_steps`` transitions).
        batch_size: Minibatch size of the PPO update.
        n_epochs: Passes over each rollout.
        learning_rate: Adam step size (at the start, with ``lr_schedule="linear"``).
        lr_schedule: ``"constant"``, or ``"linear"``: decays to 0 at the end of training (a run's
            last updates then barely move the policy, so its final policy is its settled one).
        gamma: Discount; 1.0 because episodes are short and question costs are explicit.
        gae_lambda: GAE's lambda.
        clip_range: PPO's clipping.
        ent_coef: Entropy bonus.
        vf_coef: Value-loss weight.
        max_grad_norm: Gradient clipping.
        net_arch: Hidden layers of the policy and value MLPs (after the Dict features are concatenated).
        normalize_reward: Train on ``(safety - 1) / 4`` rewards (costs scaled alike; the same optimal
            policy, better-scaled values).
        flatten: Flatten the observation and use ``"MlpPolicy"`` instead of ``"MultiInputPolicy"``.
        num_threads: ``torch.set_num_threads`` during training (small MLPs run fastest on 1 thread;
            ``None`` leaves torch's setting).
        device: Torch device.
        advice: ``"greedy"``: the observation adds greedy's value estimate of every action
            (``agents.advice``), which the policy learns to follow or overrule; ``None`` (default): the
            env's observation only. The advice follows each dialogue, so the training env is SB3's
            ``DummyVecEnv`` of single envs (slower per step than the batched env). The policy is then
            ``agents.ppo_policy.AdvisedPolicy``: its logits add ``beta`` times the advice's gains.
        advice_scale: The initial ``beta`` (logits per judge point of expected gain; learned).
        critic_warmup: Rollouts, at the start, whose updates train the value net only (the actor is
            frozen): an advised policy starts as greedy, and a policy gradient on an untrained critic's
            advantages would move it away at random. 0: none.
    """

    n_envs: int = 32
    n_steps: int = 64
    batch_size: int = 512
    n_epochs: int = 4
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    gamma: float = 1.0
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    net_arch: tuple[int, ...] = (64, 64)
    normalize_reward: bool = True
    flatten: bool = False
    num_threads: int | None = 1
    device: str = "cpu"
    advice: str | None = None
    advice_scale: float = 20.0
    critic_warmup: int = 0

    @classmethod
    def advised(cls, advice: str = "greedy", **overrides: Any) -> PPOConfig:
        """A config for a policy with ``advice``: ``ADVISED_DEFAULTS``, then ``overrides``."""
        return cls(**{**ADVISED_DEFAULTS, "advice": advice, **overrides})

    def __post_init__(self) -> None:
        for name in ("n_envs", "n_steps", "batch_size", "n_epochs"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"PPOConfig.{name} = {getattr(self, name)} must be >= 1")
        if self.batch_size > self.n_envs * self.n_steps:
            raise ConfigError(
                f"PPOConfig.batch_size = {self.batch_size} exceeds the rollout size n_envs * n_steps = "
                f"{self.n_envs * self.n_steps}; lower batch_size or raise n_steps"
            )
        if not self.learning_rate > 0:
            raise ConfigError(f"PPOConfig.learning_rate = {self.learning_rate} must be > 0")
        if self.lr_schedule not in ("constant", "linear"):
            raise ConfigError(f"PPOConfig.lr_schedule = {self.lr_schedule!r} must be 'constant' or 'linear'")
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError(f"PPOConfig gamma = {self.gamma} and gae_lambda = {self.gae_lambda} must be in [0, 1]")
        if self.ent_coef < 0 or self.vf_coef < 0 or self.clip_range <= 0:
            raise ConfigError("PPOConfig ent_coef and vf_coef must be >= 0 and clip_range > 0")
        if not self.net_arch or any(int(h) < 1 for h in self.net_arch):
            raise ConfigError(f"PPOConfig.net_arch = {self.net_arch} must be one or more positive layer sizes")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError(f"PPOConfig.num_threads = {self.num_threads} must be >= 1 (or None)")
        self.net_arch = tuple(int(h) for h in self.net_arch)
        check_advice(self.advice, flatten=self.flatten, name="PPOConfig.advice")
        if self.critic_warmup < 0:
            raise ConfigError(f"PPOConfig.critic_warmup = {self.critic_warmup} must be >= 0 (rollouts)")
        if not self.advice_scale > 0:
            raise ConfigError(f"PPOConfig.advice_scale = {self.advice_scale} must be > 0")


@dataclass
class TrainResult:
    """What ``train`` returns.

    Attributes:
        model: The trained ``MaskablePPO``.
        agent: The model as a ``PPOAgent``.
        timesteps: Env steps trained.
        wall_time_s: Seconds spent in ``learn`` (evaluations included).
        evaluations: Every evaluation's metrics (``timesteps``, ``wall_time_s``, ``safety``,
            ``net_reward``, ``questions``, ``regret``, ``oracle_fraction``, ...).
        model_path: Where the final model was saved (``None`` without ``save_dir``).
        config: The hyper-parameters.
    """

    model: Any
    agent: PPOAgent
    timesteps: int
    wall_time_s: float
    evaluations: list[dict[str, float]] = field(default_factory=list)
    model_path: Path | None = None
    config: PPOConfig | None = None


def train(
    env_id: str = "Penguin-Health-v2",
    timesteps: int = 100_000,
    seed: int = 0,
    *,
    config: PPOConfig | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    eval_freq: int | None = None,
    eval_episodes: int | None = None,
    eval_split: str = "test",
    eval_env_kwargs: Mapping[str, Any] | None = None,
    save_dir: str | Path | None = None,
    checkpoint_freq: int | None = None,
    callbacks: Sequence[Any] = (),
    sb3_logger: Any = None,
    progress_bar: bool = False,
    verbose: int = 0,
) -> TrainResult:
    """Train a ``MaskablePPO`` acquisition policy on ``env_id``'s training split.

    Args:
        env_id: A registered penguin id.
        timesteps: Env steps to train (rounded up to whole rollouts by SB3).
        seed: Seeds the policy's initialization, its sampling and the training env.
        config: Hyper-parameters (default ``PPOConfig()``).
        env_kwargs: Keywords of the training env (``PenguinEnv``'s: ``judge``, ``question_cost``,
            ``budget``, ``featurizer``, ...); ``split`` defaults to ``"train"`` and
            ``normalize_reward`` to ``config.normalize_reward``.
        eval_freq: Evaluate every this many env steps (``None``: only at the end; 0: never).
        eval_episodes: Episodes per evaluation (default: every scenario of ``eval_split`` once).
        eval_split: The held-out split.
        eval_env_kwargs: Keywords of the evaluation env (default: the training env's, less ``split``
            and ``normalize_reward``: net reward is reported on the judge's 1-5 scale).
        save_dir: Writes ``final_model.zip``, ``best_model.zip`` (by evaluation) and, with
            ``checkpoint_freq``, ``checkpoints/ppo_<steps>_steps.zip``.
        checkpoint_freq: Save a checkpoint every this many env steps (needs ``save_dir``).
        callbacks: More SB3 callbacks (W&B, ...).
        sb3_logger: An SB3 ``Logger`` to record to (learning curves; ``experiments/train_ppo.py`` adds a
            W&B output). Default: SB3's, silent unless ``verbose``.
        progress_bar: Show SB3's progress bar.
        verbose: SB3 verbosity.

    Returns:
        A ``TrainResult``.
    """
    from agents.sb3_vec import make_sb3_vec_env

    cfg = config or PPOConfig()
    if timesteps < 1:
        raise ConfigError(f"timesteps = {timesteps} must be >= 1")
    if checkpoint_freq is not None and save_dir is None:
        raise ConfigError("checkpoint_freq needs save_dir (where the checkpoints go)")
    kwargs = {"split": "train", "normalize_reward": cfg.normalize_reward, **dict(env_kwargs or {})}
    if eval_env_kwargs is None:
        eval_env_kwargs = {k: v for k, v in kwargs.items() if k not in ("split", "normalize_reward")}
    out = None if save_dir is None else Path(save_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    old_threads = torch.get_num_threads()
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    try:
        venv = make_sb3_vec_env(env_id, cfg.n_envs, seed=seed, flatten=cfg.flatten, advice=cfg.advice, **kwargs)
        policy: Any = "MlpPolicy" if cfg.flatten else "MultiInputPolicy"
        policy_kwargs: dict[str, Any] = {"net_arch": list(cfg.net_arch)}
        if cfg.advice is not None:
            from agents.ppo_policy import AdvisedPolicy

            policy, policy_kwargs["advice_scale"] = AdvisedPolicy, cfg.advice_scale
        model = MaskablePPO(
            policy,
            venv,
            learning_rate=cfg.learning_rate if cfg.lr_schedule == "constant" else _linear(cfg.learning_rate),
            n_steps=cfg.n_steps,
            batch_size=cfg.batch_size,
            n_epochs=cfg.n_epochs,
            gamma=cfg.gamma,
            gae_lambda=cfg.gae_lambda,
            clip_range=cfg.clip_range,
            ent_coef=cfg.ent_coef,
            vf_coef=cfg.vf_coef,
            max_grad_norm=cfg.max_grad_norm,
            policy_kwargs=policy_kwargs,
            seed=seed,
            device=cfg.device,
            verbose=verbose,
        )
        # Saved in every checkpoint (SB3 saves the model's attributes), read back by PPOAgent.
        setattr(model, TRAINED_ON_ATTR, trained_on(env_id, kwargs))
        if sb3_logger is not None:
            model.set_logger(sb3_logger)
        cbs: list[Any] = []
        eval_cb = None
        if eval_freq != 0:
            eval_cb = PenguinEvalCallback(
                env_id,
                eval_freq=eval_freq,
                episodes=eval_episodes,
                split=eval_split,
                env_kwargs=eval_env_kwargs,
                seed=seed,
                best_model_path=None if out is None else out / "best_model.zip",
                verbose=verbose,
            )
            cbs.append(eval_cb)
        if checkpoint_freq is not None:
            assert out is not None
            cbs.append(
                CheckpointCallback(
                    save_freq=max(1, int(checkpoint_freq) // cfg.n_envs),
                    save_path=str(out / "checkpoints"),
                    name_prefix="ppo",
                )
            )
        if cfg.critic_warmup:
            cbs.append(CriticWarmup(cfg.critic_warmup))
        if cfg.advice is not None:
            cbs.append(LogAdviceScale())
        cbs.extend(callbacks)
        start = time.perf_counter()
        model.learn(total_timesteps=int(timesteps), callback=CallbackList(cbs), progress_bar=progress_bar)
        if eval_cb is not None and eval_cb._last_eval != model.num_timesteps:
            eval_cb.run_eval()  # the final policy is always evaluated
        wall = time.perf_counter() - start
        model_path = None
        if out is not None:
            model_path = out / "final_model.zip"
            model.save(str(model_path))
        venv.close()
    finally:
        torch.set_num_threads(old_threads)
    return TrainResult(
        model=model,
        agent=PPOAgent(model, trained_on=getattr(model, TRAINED_ON_ATTR)),
        timesteps=int(model.num_timesteps),
        wall_time_s=wall,
        evaluations=list(eval_cb.evaluations) if eval_cb is not None else [],
        model_path=model_path,
        config=cfg,
    )


class CriticWarmup(BaseCallback):
    """Freezes the actor (the policy head, its MLP branch and an advised policy's ``beta``) for the
    updates after the first ``rollouts`` rollouts, so they train the value net alone."""

    def __init__(self, rollouts: int) -> None:
        super().__init__()
        self.rollouts = int(rollouts)
        self._seen = 0

    def _actor(self) -> list[Any]:
        policy: Any = self.model.policy
        params = list(policy.action_net.parameters()) + list(policy.mlp_extractor.policy_net.parameters())
        if not policy.share_features_extractor:
            params += list(policy.pi_features_extractor.parameters())
        beta = getattr(policy, "log_advice_scale", None)
        return params + ([beta] if beta is not None else [])

    def _on_training_start(self) -> None:
        for p in self._actor():
            p.requires_grad_(False)

    def _on_rollout_end(self) -> None:  # SB3 calls it before the rollout's update
        self._seen += 1
        if self._seen == self.rollouts + 1:
            for p in self._actor():
                p.requires_grad_(True)

    def _on_training_end(self) -> None:  # a run shorter than the warmup leaves nothing frozen
        for p in self._actor():
            p.requires_grad_(True)

    def _on_step(self) -> bool:
        return True


class LogAdviceScale(BaseCallback):
    """Records an advised policy's ``beta`` (``train/advice_scale``) with each rollout's log (the
    learning curves, W&B), so a run shows how far the policy came to trust the advice."""

    def _on_rollout_end(self) -> None:
        beta = getattr(self.model.policy, "advice_scale", None)
        if beta is not None:
            self.logger.record("train/advice_scale", float(beta))

    def _on_step(self) -> bool:
        return True


class _linear:
    """SB3's learning-rate schedule (``progress_remaining`` 1 -> 0) decaying ``rate`` to 0; a class, not
    a closure, so a saved model's schedule pickles by reference."""

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)

    def __call__(self, progress_remaining: float) -> float:
        return self.rate * progress_remaining


def trained_on(env_id: str, env_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The record of what a policy is trained on: the env id, the split (``None``: both) and the data."""
    source = env_kwargs.get("source", "synthetic")
    return {
        "env_id": env_id,
        "split": env_kwargs.get("split"),
        "source": source if isinstance(source, str) else type(source).__name__,
        "n_per_domain": env_kwargs.get("n_per_domain"),
        "data_seed": env_kwargs.get("data_seed", 0),
    }


def config_dict(config: PPOConfig) -> dict[str, Any]:
    """``config`` as a JSON-ready dict (W&B config, results files)."""
    d = asdict(config)
    d["net_arch"] = list(config.net_arch)
    return d


__all__ = [
    "ADVISED_DEFAULTS",
    "PPOAgent",
    "PPOConfig",
    "PenguinEvalCallback",
    "TrainResult",
    "config_dict",
    "eval_metrics",
    "masks_from_obs",
    "train",
    "trained_on",
]
