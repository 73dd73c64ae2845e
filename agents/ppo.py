"""A learned acquisition policy: sb3-contrib's ``MaskablePPO`` on the batched penguin env.

The policy reads the query (its features), the domain, what was asked and what was revealed, and the
budget left, and picks the next question or answers; invalid actions (asking twice, asking past the
budget) are masked out of the policy's distribution (invalid action masking, Huang & Ontañón 2022), so
every sampled action is legal. Training steps a ``PenguinVectorEnv`` through the SB3 adapter
(``agents.sb3_vec``): no per-env Python objects, so a laptop trains a policy within a minute or two.

* ``train(env_id, timesteps, seed, ...)``: trains on the ``train`` split, evaluates on the held-out
  ``test`` split during training (``PenguinEvalCallback``: mean safety, questions, net reward and regret
  against the oracle), writes checkpoints, and returns a ``TrainResult``.
* ``PPOAgent``: a trained model as an ``Agent`` (``agents.base``) that ``agents.evaluate`` runs on any env;
  ``PPOAgent.load(path)`` reads a saved model.

Needs ``pip install "penguin-gym[train]"`` (torch, stable-baselines3, sb3-contrib).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from penguin_gym.data import DOMAINS, NUM_ATTRIBUTES
from penguin_gym.error import ConfigError, DependencyNotInstalled
from penguin_gym.model import ANSWER
from penguin_gym.rules import BITS, action_masks
from penguin_gym.wrappers import flatten_observation

try:
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise DependencyNotInstalled(
        'agents.ppo needs torch, stable-baselines3 and sb3-contrib: pip install "penguin-gym[train]"'
    ) from e

logger = logging.getLogger(__name__)

#: Entries of the flat observation besides the query features: domain, asked, revealed, steps_left.
_FLAT_EXTRA = len(DOMAINS) + 2 * NUM_ATTRIBUTES + 1


def masks_from_obs(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The valid actions implied by an observation (one ``(11,)`` or a batch ``(N, 11)``).

    An unasked attribute may be asked while questions are left (``steps_left > 0``); answering is always
    valid. Equal to ``env.action_masks()`` on every state before the answer.
    """
    asked = (np.asarray(obs["asked"]) != 0) @ BITS
    return action_masks(asked, np.asarray(obs["steps_left"])[..., 0])


@dataclass
class PPOConfig:
    """``MaskablePPO`` hyper-parameters and the training env's options.

    The defaults train a policy that reaches about 98-99% of the oracle's net reward on held-out
    ``Penguin-Health-v1`` scenarios in a few tens of thousands of steps (see
    ``benchmarks/ppo_oracle.py``).

    Attributes:
        n_envs: Sub-envs of the training ``PenguinVectorEnv``.
        n_steps: Steps per sub-env per rollout (the rollout holds ``n_envs * n_steps`` transitions).
        batch_size: Minibatch size of the PPO update.
        n_epochs: Passes over each rollout.
        learning_rate: Adam step size.
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
    """

    n_envs: int = 32
    n_steps: int = 64
    batch_size: int = 512
    n_epochs: int = 4
    learning_rate: float = 1e-3
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
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError(f"PPOConfig gamma = {self.gamma} and gae_lambda = {self.gae_lambda} must be in [0, 1]")
        if self.ent_coef < 0 or self.vf_coef < 0 or self.clip_range <= 0:
            raise ConfigError("PPOConfig ent_coef and vf_coef must be >= 0 and clip_range > 0")
        if not self.net_arch or any(int(h) < 1 for h in self.net_arch):
            raise ConfigError(f"PPOConfig.net_arch = {self.net_arch} must be one or more positive layer sizes")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError(f"PPOConfig.num_threads = {self.num_threads} must be >= 1 (or None)")
        self.net_arch = tuple(int(h) for h in self.net_arch)


class PPOAgent:
    """A trained ``MaskablePPO`` policy as an ``Agent``: greedy (``deterministic``) masked actions.

    Args:
        model: A ``MaskablePPO`` model trained on a penguin env (Dict or flattened observations).
        deterministic: Take the most probable valid action (else sample from the masked policy).
        name: The agent's name in results.

    ``attach(env)`` (``agents.evaluate`` calls it) keeps the env to read ``env.action_masks()``; without
    it the mask comes from the observation (``masks_from_obs``, the same on every live state).
    """

    def __init__(self, model: Any, *, deterministic: bool = True, name: str = "ppo") -> None:
        self.model = model
        self.deterministic = bool(deterministic)
        self.name = name
        self._env: Any = None
        self._flat = isinstance(model.observation_space, spaces.Box)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu", deterministic: bool = True, name: str = "ppo") -> PPOAgent:
        """Load a model saved by ``train`` (or ``MaskablePPO.save``)."""
        p = Path(path)
        if not p.exists() and not p.with_suffix(".zip").exists():
            raise ConfigError(f"no saved PPO model at {p} (nor {p.with_suffix('.zip')}); train one first")
        model = MaskablePPO.load(str(p), device=device)
        return cls(model, deterministic=deterministic, name=name)

    def attach(self, env: Any) -> None:
        """Keep the env (for its action masks) and check that its observations fit the policy."""
        space = getattr(env, "observation_space", None)
        want = self.model.observation_space
        if space is not None:
            have = space["query"].shape[0] if hasattr(space, "spaces") and "query" in space.spaces else None
            need = want.shape[0] - _FLAT_EXTRA if self._flat else want["query"].shape[0]
            if have is not None and have != need:
                raise ConfigError(
                    f"the env's query features have {have} dimensions but the policy was trained on {need}: "
                    "make the env with the featurizer used in training (e.g. featurizer='hashing' or 'embedding')"
                )
        self._env = env

    def seed(self, seed: int) -> None:
        """Seed the sampling of a stochastic agent (``deterministic=False``; SB3 seeds the global torch
        and numpy generators). A deterministic agent has nothing to seed and leaves them alone, so
        evaluating during training does not change the training run."""
        if not self.deterministic:
            self.model.set_random_seed(int(seed))

    def reset(self, info: Mapping[str, Any]) -> None:
        """Nothing to reset: the policy is memoryless (the observation holds the dialogue state)."""

    def act(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> int:
        mask = self._env.action_masks() if self._env is not None else masks_from_obs(obs)
        x: Any = flatten_observation(dict(obs)) if self._flat else dict(obs)
        action, _ = self.model.predict(x, action_masks=mask, deterministic=self.deterministic)
        return int(np.asarray(action).reshape(-1)[0])

    def act_batch(self, obs: Mapping[str, np.ndarray], masks: np.ndarray | None = None) -> np.ndarray:
        """Actions for a batch of observations ``(N, ...)`` (a ``PenguinVectorEnv``'s), int64 ``(N,)``.

        Rows whose mask has no valid action (finished episodes awaiting autoreset) get ``ANSWER``,
        which the vector env ignores.
        """
        masks = masks_from_obs(obs) if masks is None else np.asarray(masks, dtype=bool)
        empty = ~masks.any(axis=1)
        if empty.any():
            masks = masks.copy()
            masks[empty, ANSWER] = True
        x: Any = flatten_observation(dict(obs)) if self._flat else dict(obs)
        actions, _ = self.model.predict(x, action_masks=masks, deterministic=self.deterministic)
        return np.asarray(actions, dtype=np.int64).reshape(-1)


class PenguinEvalCallback(BaseCallback):
    """Evaluates the policy in training on held-out scenarios every ``eval_freq`` env steps.

    Args:
        env_id: The env id to evaluate on.
        eval_freq: Env steps between evaluations (``None``: only when ``run_eval()`` is called).
        episodes: Episodes per evaluation (default: every scenario of ``split`` once).
        split: The held-out split (``"test"``).
        env_kwargs: Keywords of the evaluation env.
        seed: ``evaluate``'s seed.
        best_model_path: Save the best policy so far (by net reward) there.
        verbose: Log each evaluation.

    Runs ``agents.evaluate.evaluate`` with a ``PPOAgent`` on ``env_id`` (``split``, the test split by
    default) and records, in SB3's logger (and so in W&B when the logger writes there):
    ``eval/safety``, ``eval/net_reward``, ``eval/questions``, ``eval/regret``,
    ``eval/oracle_fraction`` (net reward / the oracle's) and ``eval/critical_miss_rate``.
    ``evaluations`` keeps every summary with its ``timesteps``, ``wall_time_s`` (since training started,
    earlier evaluations included), ``train_time_s`` (the same less the time spent evaluating) and
    ``eval_time_s`` (this evaluation's).
    """

    def __init__(
        self,
        env_id: str,
        *,
        eval_freq: int | None,
        episodes: int | None = None,
        split: str = "test",
        env_kwargs: Mapping[str, Any] | None = None,
        seed: int = 0,
        best_model_path: str | Path | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if eval_freq is not None and eval_freq < 1:
            raise ConfigError(
                f"eval_freq = {eval_freq} must be >= 1 env steps (or None: only when run_eval() is called)"
            )
        self.env_id = env_id
        self.eval_freq = None if eval_freq is None else int(eval_freq)
        self.episodes = episodes
        self.split = split
        self.env_kwargs = dict(env_kwargs or {})
        self.eval_seed = int(seed)
        self.best_model_path = None if best_model_path is None else Path(best_model_path)
        self.evaluations: list[dict[str, float]] = []
        self.best_net = -np.inf
        self._last_eval = 0
        self._start = time.perf_counter()
        self._eval_seconds = 0.0

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()
        self._eval_seconds = 0.0

    def _on_step(self) -> bool:
        if self.eval_freq is not None and self.num_timesteps - self._last_eval >= self.eval_freq:
            self.run_eval()
        return True

    def run_eval(self) -> dict[str, float]:
        """Evaluate now; returns the recorded metrics."""
        from agents.evaluate import evaluate

        self._last_eval = self.num_timesteps
        t0 = time.perf_counter()
        wall = t0 - self._start
        result = evaluate(
            PPOAgent(self.model),
            self.env_id,
            episodes=self.episodes,
            seed=self.eval_seed,
            split=self.split,
            env_kwargs=self.env_kwargs,
            oracle=True,
        )
        metrics = eval_metrics(result.summary)
        for key, value in metrics.items():
            self.logger.record(f"eval/{key}", value)
        self.logger.record("eval/timesteps", self.num_timesteps)
        self.logger.dump(self.num_timesteps)
        took = time.perf_counter() - t0
        record = {
            "timesteps": float(self.num_timesteps),
            "wall_time_s": wall,
            "train_time_s": wall - self._eval_seconds,
            "eval_time_s": took,
            **metrics,
        }
        self._eval_seconds += took
        self.evaluations.append(record)
        if metrics["net_reward"] > self.best_net:
            self.best_net = metrics["net_reward"]
            if self.best_model_path is not None:
                self.best_model_path.parent.mkdir(parents=True, exist_ok=True)
                self.model.save(str(self.best_model_path))
        if self.verbose:
            logger.info(
                "eval at %d steps: safety %.3f, net %.3f (%.1f%% of oracle), %.2f questions",
                self.num_timesteps,
                metrics["safety"],
                metrics["net_reward"],
                100 * metrics["oracle_fraction"],
                metrics["questions"],
            )
        return metrics


def eval_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """The evaluation metrics PPO training logs, from an ``EvalResult.summary``.

    Keys: ``safety``, ``net_reward``, ``questions``, ``regret``, ``oracle_net_reward``,
    ``oracle_fraction`` (the mean net reward over the oracle's), and ``normalized`` (per user, 0 =
    answer-now, 1 = the oracle) and ``critical_miss_rate`` when the summary has them.
    """
    try:
        net = float(summary["net_reward_mean"])
        regret = float(summary["regret_mean"])
        out = {
            "safety": float(summary["safety_mean"]),
            "net_reward": net,
            "questions": float(summary["questions_mean"]),
            "regret": regret,
        }
    except KeyError as e:
        raise ConfigError(
            f"the evaluation summary lacks {e.args[0]!r} (keys: {sorted(summary)}); evaluate with oracle=True"
        ) from e
    oracle_net = float(summary.get("oracle_net_reward_mean", net + regret))
    out["oracle_net_reward"] = oracle_net
    out["oracle_fraction"] = net / oracle_net if oracle_net != 0 else float("nan")
    for key in ("normalized_mean", "critical_miss_rate"):
        if key in summary:
            out[key.removesuffix("_mean")] = float(summary[key])
    return out


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
    env_id: str = "Penguin-Health-v1",
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
        venv = make_sb3_vec_env(env_id, cfg.n_envs, seed=seed, flatten=cfg.flatten, **kwargs)
        model = MaskablePPO(
            "MlpPolicy" if cfg.flatten else "MultiInputPolicy",
            venv,
            learning_rate=cfg.learning_rate,
            n_steps=cfg.n_steps,
            batch_size=cfg.batch_size,
            n_epochs=cfg.n_epochs,
            gamma=cfg.gamma,
            gae_lambda=cfg.gae_lambda,
            clip_range=cfg.clip_range,
            ent_coef=cfg.ent_coef,
            vf_coef=cfg.vf_coef,
            max_grad_norm=cfg.max_grad_norm,
            policy_kwargs={"net_arch": list(cfg.net_arch)},
            seed=seed,
            device=cfg.device,
            verbose=verbose,
        )
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
        agent=PPOAgent(model),
        timesteps=int(model.num_timesteps),
        wall_time_s=wall,
        evaluations=list(eval_cb.evaluations) if eval_cb is not None else [],
        model_path=model_path,
        config=cfg,
    )


def config_dict(config: PPOConfig) -> dict[str, Any]:
    """``config`` as a JSON-ready dict (W&B config, results files)."""
    d = asdict(config)
    d["net_arch"] = list(config.net_arch)
    return d


__all__ = ["PPOAgent", "PPOConfig", "PenguinEvalCallback", "TrainResult", "config_dict", "masks_from_obs", "train"]
