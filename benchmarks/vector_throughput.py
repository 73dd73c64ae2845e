"""Env-steps per second of ``PenguinVectorEnv`` against gymnasium's ``SyncVectorEnv`` of ``PenguinEnv``.

Both step ``N`` sub-envs (default 4,096) with the same stream of uniformly random actions (all 11,
masked ones included: they are penalized, as the env documents) under the same autoreset mode
(``NEXT_STEP``), and the ratio is measured in one process. The goals of the VectorEnv issue: a ratio of at
least 20x and at least 1,000,000 env-steps/s; the exit status is 1 when one is missed, gated at N = 4,096
sub-envs or more, or at any size when given (``--min-ratio``, ``--min-rate``; ``benchmarks.targets``).

The reference's sub-envs are shallow copies of one ``PenguinEnv`` (sharing its read-only episode model,
judge binding and feature cache) under ``OrderEnforcing`` and ``TimeLimit``, the wrappers ``gym.make``
adds: 4,096 independently built envs would hold 4,096 judge bindings (~1.9 MB each, ~7.7 GB) and take
~40 s to build, while their ``step`` code is the same.

Run: ``python -m benchmarks.vector_throughput [--num-envs 4096] [--env-id Penguin-Health-v2]``
(``--quick``: a smoke test at tiny sizes, the goals reported, not gated).
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
from benchmarks.targets import Target, check, goal, parse
from penguin_gym.registration import MAX_EPISODE_STEPS
from penguin_gym.vector import PenguinVectorEnv


@dataclass(frozen=True)
class Args:
    env_id: str = "Penguin-Health-v2"
    num_envs: int = 4096
    vector_steps: int = 500
    sync_steps: int = 25
    warmup: int = 5
    seed: int = 0
    min_ratio: float | None = None
    min_rate: float | None = None

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
        if default is not None:
            p.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    p.add_argument("--min-ratio", type=float, default=None, help="target ratio (default 20; gated at any size)")
    p.add_argument("--min-rate", type=float, default=None, help="target env-steps/s (default 1e6; gated at any size)")
    quick = {"num_envs": 64, "vector_steps": 20, "sync_steps": 5, "warmup": 1}
    parsed, full_size = parse(p, argv, quick, sizes=("num_envs",))
    args = Args(**{k: v for k, v in vars(parsed).items() if k != "quick"})
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
    min_ratio, ratio_gated = goal(args.min_ratio, 20.0, full_size=full_size)
    min_rate, rate_gated = goal(args.min_rate, 1e6, full_size=full_size)
    return check(
        [
            Target("ratio PenguinVectorEnv / SyncVectorEnv", ratio, min_ratio, unit="x", gated=ratio_gated),
            Target("PenguinVectorEnv env-steps/s", vec_rate, min_rate, fmt=",.0f", gated=rate_gated),
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
