"""Steps per second of ``Penguin-Health-v2`` against ``CartPole-v1``, both through ``gym.make``.

Run:
    python -m benchmarks.env_throughput [--steps 200000] [--repeats 5] [--warmup N]

Two ways of playing penguin, each against CartPole's uniformly random actions (resetting at episode end):

* **random**: uniformly random actions from ``action_space.sample()`` (masked ones included, handled by
  the default "penalize" policy), so most episodes are long and few end in a judgment;
* **as agents play**: three distinct questions, then the answer: a reset and a judgment every 4 steps,
  the rhythm of the trained agents (the oracle asks 3.0 questions on average), where the answer step's
  info (texts, scores) and the reset are paid often.

Each runs after a warm-up that visits every scenario once (query features are computed once per
scenario and cached). The runs are interleaved, and the median of the repeats is reported, so machine
noise hits both envs alike. Target: a ratio >= 1.0 on both cases; the exit status is 1 when one is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

import penguin_gym  # noqa: F401  (registers the ids)

TARGET = 1.0


def steps_per_second(env: gym.Env, steps: int) -> float:
    """Uniformly random actions (``action_space.sample()``)."""
    env.action_space.seed(0)
    env.reset(seed=0)
    sample = env.action_space.sample
    step = env.step
    reset = env.reset
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = step(sample())
        if terminated or truncated:
            reset()
    return steps / (time.perf_counter() - t0)


def agent_steps_per_second(env: gym.Env, steps: int) -> float:
    """Three distinct random questions, then the answer (``ANSWER`` = 10), then a reset."""
    rng = np.random.default_rng(0)
    # The episodes' actions drawn up front (1,024 distinct plans, cycled), so the timing is the env's.
    plans = [[*rng.permutation(10)[:3].tolist(), 10] for _ in range(1024)]
    actions = [a for plan in plans for a in plan]
    env.reset(seed=0)
    step = env.step
    reset = env.reset
    k, n = 0, len(actions)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = step(actions[k])
        k = k + 1 if k + 1 < n else 0
        if terminated or truncated:
            reset()
    return steps / (time.perf_counter() - t0)


def compare(
    penguin: gym.Env, cartpole: gym.Env, play: Callable[[gym.Env, int], float], steps: int, repeats: int
) -> tuple[list[float], list[float]]:
    """Interleaved runs of ``play`` on penguin and of random actions on CartPole."""
    ours, ref = [], []
    for _ in range(repeats):
        ours.append(play(penguin, steps))
        ref.append(steps_per_second(cartpole, steps))
    return ours, ref


def main(argv: list[str] | None = None) -> int:
    from benchmarks.targets import Target, check, goal, parse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--env", default="Penguin-Health-v2")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps (default: 20 per scenario)")
    ap.add_argument("--min-ratio", type=float, default=None, help=f"target ratio to CartPole (default {TARGET}x)")
    args, full = parse(ap, argv, {"steps": 2000, "repeats": 1, "warmup": 200}, sizes=("steps",))
    target, gated = goal(args.min_ratio, TARGET, full_size=full)

    penguin: Any = gym.make(args.env)
    cartpole = gym.make("CartPole-v1")
    warmup = 20 * len(penguin.unwrapped.scenarios) if args.warmup is None else args.warmup
    steps_per_second(penguin, warmup)  # warm-up: every scenario seen
    steps_per_second(cartpole, min(warmup, 20_000))
    targets = []
    for case, play in (("random actions", steps_per_second), ("as agents play", agent_steps_per_second)):
        ours, ref = compare(penguin, cartpole, play, args.steps, args.repeats)
        p, c = statistics.median(ours), statistics.median(ref)
        print(f"-- {case}")
        print(f"{args.env:<20} {p:>12,.0f} steps/s   (runs: {', '.join(f'{x:,.0f}' for x in ours)})")
        print(f"{'CartPole-v1':<20} {c:>12,.0f} steps/s   (runs: {', '.join(f'{x:,.0f}' for x in ref)})")
        print(f"ratio {args.env} / CartPole-v1: {p / c:.2f}x")
        targets.append(Target(f"{case}: {args.env} / CartPole-v1", p / c, target, "x", ".2f", gated=gated))
    return check(targets)


if __name__ == "__main__":
    sys.exit(main())
