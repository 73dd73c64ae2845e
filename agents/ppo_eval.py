"""Evaluation during PPO training: ``PenguinEvalCallback`` (held-out users every ``eval_freq`` steps, into
SB3's logger and so W&B) and ``eval_metrics`` (what it records, from an ``EvalResult.summary``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from agents.ppo_agent import PPOAgent
from penguin_gym.error import ConfigError, DependencyNotInstalled

try:
    from stable_baselines3.common.callbacks import BaseCallback
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise DependencyNotInstalled(
        'agents.ppo needs torch, stable-baselines3 and sb3-contrib: pip install "penguin-gym[train]"'
    ) from e

logger = logging.getLogger(__name__)


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


__all__ = ["PenguinEvalCallback", "eval_metrics"]
