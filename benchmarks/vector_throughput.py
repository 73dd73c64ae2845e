"""Env-steps per second of ``PenguinVectorEnv`` against gymnasium's ``SyncVectorEnv`` of ``PenguinEnv``.

Both step ``N`` sub-envs (default 4,096) with the same stream of uniformly random actions (all 11,
masked ones included: they are penalized, as the env documents) under the same autoreset mode
(``NEXT_STEP``), and the ratio is measured in one process. The goals of the VectorEnv issue: a ratio of at
least 20x and at least 1,000,000 env-steps/s.

The reference's sub-envs are shallow copies of one ``PenguinEnv`` (sharing its read-only episode model,
judge binding and feature cache) under ``OrderEnforcing`` and ``TimeLimit``, the wrappers ``gym.make``
adds: 4,096 independently built envs would hold 4,096 judge bindings (~1.9 MB each, ~7.7 GB) and take
~40 s to build, while their ``step`` code is the same.

Run: ``python -m benchmarks.vector_throughput [--num-envs 4096] [--env-id Penguin-Health-v1]``.
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import OrderEnforcing, TimeLimit

import penguin_gym  # noqa: F401  (registers the ids)
from penguin_gym.registration import MAX_EPISODE_STEPS
from penguin_gym.vector import PenguinVectorEnv


@dataclass(frozen=True)
class Args:
    env_id: str = "Penguin-Health-v1"
    num_envs: int = 4096
    vector_steps: int = 500
    sync_steps: int = 25
    warmup: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_envs", "vector_steps", "sync_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} = {getattr(self, name)} must be >= 1")


def _time_steps(envs: gym.vector.VectorEnv, actions: np.ndarray, warmup: int) -> float:
    """Env-steps per second over ``actions`` (T, N), after ``warmup`` untimed steps."""
    for a in actions[:warmup]:
        envs.step(a)
    start = time.perf_counter()
    for a in actions[warmup:]:
        envs.step(a)
    elapsed = time.perf_counter() - start
    return (len(actions) - warmup) * actions.shape[1] / elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, default in vars(Args()).items():
        p.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    args = Args(**vars(p.parse_args(argv)))
    n = args.num_envs
    rng = np.random.default_rng(args.seed)

    t0 = time.perf_counter()
    vec = gym.make_vec(args.env_id, num_envs=n)
    assert isinstance(vec, PenguinVectorEnv)
    vec.reset(seed=args.seed)
    vec_build = time.perf_counter() - t0

    t0 = time.perf_counter()
    base = gym.make(args.env_id).unwrapped
    base.reset(seed=args.seed)

    def make_one() -> gym.Env:
        return TimeLimit(OrderEnforcing(copy.copy(base)), max_episode_steps=MAX_EPISODE_STEPS)

    sync = gym.vector.SyncVectorEnv([make_one for _ in range(n)])
    sync.reset(seed=args.seed)
    sync_build = time.perf_counter() - t0

    vec_rate = _time_steps(vec, rng.integers(0, 11, (args.vector_steps + args.warmup, n)), args.warmup)
    sync_rate = _time_steps(sync, rng.integers(0, 11, (args.sync_steps + args.warmup, n)), args.warmup)
    ratio = vec_rate / sync_rate

    print(f"{args.env_id}, N = {n:,} sub-envs, uniformly random actions, autoreset NEXT_STEP")
    print(f"{'vectorization':<38}{'build s':>9}{'env-steps/s':>15}{'ratio':>8}")
    print(f"{'SyncVectorEnv of PenguinEnv':<38}{sync_build:>9.2f}{sync_rate:>15,.0f}{1.0:>8.1f}")
    print(f"{'PenguinVectorEnv (numpy)':<38}{vec_build:>9.2f}{vec_rate:>15,.0f}{ratio:>8.1f}")
    ok_ratio, ok_rate = ratio >= 20.0, vec_rate >= 1e6
    print(f"goal ratio >= 20x: {'met' if ok_ratio else 'NOT met'} ({ratio:.1f}x)")
    print(f"goal >= 1,000,000 env-steps/s: {'met' if ok_rate else 'NOT met'} ({vec_rate:,.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
