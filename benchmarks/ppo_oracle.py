"""How fast MaskablePPO reaches 95% of the oracle's net reward on held-out scenarios, against the baselines.

Trains ``agents.ppo`` (``MaskablePPO`` on ``PenguinVectorEnv``, the ``train`` split) on one env id and
evaluates it every ``--eval-freq`` env steps on every scenario (or ``--episodes``) of the held-out ``test`` split (with
``agents.evaluate``). Reports the first evaluation at or above ``--target`` (default 0.95) of the oracle's
mean net reward: env steps, wall time (with and without the evaluations' time), and the final policy; then
evaluates the hand-made strategies on the same scenarios (greedy value of information, RAISE, the paper's
static top-3, random-3, answer-now), all as ratios to the same oracle, in one process.

The goal of the PPO issue: 95% of the oracle in under 5 minutes on a 2-core laptop. On a guarded id
(``--env-id Penguin-Health-Guarded-v0``, the track where users decline, hedge and leave) the goal is the
guarded track's: the final policy's normalized score (answer-now 0, oracle 1) on the held-out users at
least greedy's, its training done (evaluations included) within 5 minutes. The policy is the advised
one there by default (``--advice greedy``: it reads greedy's value estimates and starts as greedy,
``agents.advice``; ``--advice none`` trains on the observation alone). The exit status is 1
when the goal is missed (not reached in ``--timesteps``, or reached later than ``--max-wall-s``); gated
at the default ``--timesteps``, ``--eval-freq`` and ``--n-envs`` or larger, or at any size when
``--max-wall-s`` is given (``benchmarks.targets``).

Run: ``python -m benchmarks.ppo_oracle [--env-id Penguin-Health-v2] [--timesteps 65536] [--eval-freq 2048] [--seed 0]
[--advice auto|none|greedy]`` (``--quick``: a smoke test, a few seconds of training on a few episodes, the goal
reported, not gated). ``--eval-freq`` defaults to 2048 steps on the faithful ids and 8192 on the guarded
ones (an advised policy's evaluation computes the advice at every step).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass, fields

from agents.advice import ADVICE_KINDS
from agents.evaluate import evaluate
from agents.ppo import PPOConfig, train
from agents.registry import make_agent
from agents.stats import paired
from benchmarks.targets import Target, check, goal, parse
from penguin_gym.registration import env_track


@dataclass(frozen=True)
class Args:
    env_id: str = "Penguin-Health-v2"
    timesteps: int = 65_536
    seed: int = 0
    eval_freq: int | None = None  # 2048 on the faithful ids, 8192 on the guarded ones
    target: float = 0.95
    n_envs: int = 32
    baselines: str = "greedy,raise,static,random-k,answer-now"
    advice: str = "auto"  # greedy on the guarded ids, none on the faithful ones
    episodes: int | None = None  # every held-out scenario
    max_wall_s: float | None = None  # the target's 300 s

    def __post_init__(self) -> None:
        guarded = env_track(self.env_id) == "guarded"
        if self.eval_freq is None:
            object.__setattr__(self, "eval_freq", 8_192 if guarded else 2_048)
        if self.advice == "auto":
            object.__setattr__(self, "advice", "greedy" if guarded else "none")
        if self.advice not in ("none", *ADVICE_KINDS):
            raise ValueError(f"--advice = {self.advice!r} must be auto, none or one of {list(ADVICE_KINDS)}")
        if self.timesteps < 1 or self.eval_freq is None or self.eval_freq < 1:
            raise ValueError("--timesteps and --eval-freq must be >= 1")
        if self.episodes is not None and self.episodes < 1:
            raise ValueError(f"--episodes = {self.episodes} must be >= 1 (or omitted: every held-out scenario)")
        if not 0 < self.target <= 1:
            raise ValueError(f"--target = {self.target} must be in (0, 1]")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for f in fields(Args):
        name, default = f.name, f.default
        if default is not None:
            p.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    p.add_argument("--episodes", type=int, default=None, help="held-out episodes per evaluation (default: all)")
    p.add_argument(
        "--eval-freq", type=int, default=None, help="evaluate every this many steps (default 2048; guarded 8192)"
    )
    p.add_argument(
        "--max-wall-s", type=float, default=None, help="target wall seconds to reach --target (default 300; gated)"
    )
    quick = {"timesteps": 1024, "eval_freq": 512, "n_envs": 8, "episodes": 20, "baselines": "greedy,answer-now"}
    parsed, full_size = parse(p, argv, quick)
    args = Args(**{k: v for k, v in vars(parsed).items() if k != "quick"})
    advice = None if args.advice == "none" else args.advice
    config = PPOConfig(n_envs=args.n_envs) if advice is None else PPOConfig.advised(advice, n_envs=args.n_envs)
    print(
        f"{args.env_id}: MaskablePPO, seed {args.seed}, {args.n_envs} envs, {os.cpu_count()} CPU cores, "
        + ("no advice" if advice is None else f"{advice}'s advice (lr {config.learning_rate:g} {config.lr_schedule}, "
           f"ent_coef {config.ent_coef:g}, beta {config.advice_scale:g})")
    )  # fmt: skip

    res = train(
        args.env_id,
        args.timesteps,
        args.seed,
        config=config,
        eval_freq=args.eval_freq,
        eval_episodes=args.episodes,
    )
    print(f"{'steps':>8}{'wall s':>9}{'train s':>9}{'safety':>8}{'net':>8}{'% oracle':>10}{'questions':>11}")
    first = None
    for e in res.evaluations:
        print(
            f"{int(e['timesteps']):>8}{e['wall_time_s']:>9.1f}{e['train_time_s']:>9.1f}{e['safety']:>8.3f}"
            f"{e['net_reward']:>8.3f}{100 * e['oracle_fraction']:>10.2f}{e['questions']:>11.2f}"
        )
        if first is None and e["oracle_fraction"] >= args.target:
            first = e
    final = res.evaluations[-1]
    oracle = final["oracle_net_reward"]
    if first is None:
        print(f"{100 * args.target:.0f}% of the oracle not reached in {res.timesteps:,} steps")
    else:
        print(
            f"{100 * args.target:.0f}% of the oracle reached at {int(first['timesteps']):,} env steps, "
            f"{first['wall_time_s']:.1f} s wall ({first['train_time_s']:.1f} s training, the rest evaluating)"
        )

    rows = [("ppo (final)" if advice is None else f"ppo+{advice}", final["net_reward"], final.get("normalized", math.nan), final["safety"],
             final["questions"], final["regret"], res.wall_time_s)]  # fmt: skip
    results = {}
    for name in [b for b in args.baselines.split(",") if b]:
        start = time.perf_counter()
        agent = make_agent(name)
        results[name] = evaluate(agent, args.env_id, episodes=args.episodes, seed=args.seed, split="test")
        s = results[name].summary
        rows.append((name, s["net_reward_mean"], s["normalized_mean"], s["safety_mean"], s["questions_mean"],
                     s["regret_mean"], time.perf_counter() - start))  # fmt: skip
    print(f"\nheld-out test split, oracle mean net reward {oracle:.4f}")
    print(
        f"{'agent':<14}{'net':>8}{'% oracle':>10}{'normalized':>12}{'vs ppo':>8}{'safety':>8}{'questions':>11}"
        f"{'regret':>8}{'time s':>8}"
    )
    for name, net, normalized, safety, questions, regret, took in rows:
        print(
            f"{name:<14}{net:>8.4f}{100 * net / oracle:>10.2f}{normalized:>12.4f}{net / final['net_reward']:>8.3f}"
            f"{safety:>8.3f}{questions:>11.2f}{regret:>8.4f}{took:>8.1f}"
        )
    max_wall, gated = goal(args.max_wall_s, 300.0, full_size=full_size)
    if env_track(args.env_id) == "guarded":
        # The guarded track's goal: a learned policy earns its place where heuristics are weakest: the
        # final policy's normalized score (answer-now 0, oracle 1) on held-out users at least greedy's,
        # trained (evaluations included) in 300 s. The final policy, not the best evaluation: picking
        # the best of several evaluations on the test users would select on them.
        greedy = next((r for r in rows if r[0] == "greedy"), None)
        if greedy is None:
            raise SystemExit("the guarded track's target compares with greedy: keep it in --baselines")
        print(f"final policy: {final.get('normalized', math.nan):.4f} normalized after {res.wall_time_s:.0f} s "
              f"(greedy {greedy[2]:.4f})")  # fmt: skip
        # the same users and replies (the seed draws both): a paired comparison, user by user
        mine = evaluate(res.agent, args.env_id, episodes=args.episodes, seed=args.seed, split="test").rows
        theirs = results["greedy"].rows
        for metric in ("net_reward", "normalized"):
            pr = paired([getattr(r, metric) for r in mine], [getattr(r, metric) for r in theirs])
            print(f"ppo - greedy, {metric}, paired over {pr.n} users: {pr.diff:+.4f} ± {pr.ci95:.4f} "
                  f"(p = {pr.p_value:.3f}, {pr.verdict})")  # fmt: skip
        score = final.get("normalized", -math.inf) if res.wall_time_s <= max_wall else -math.inf
        return check([Target("final PPO normalized - greedy's, trained within the wall budget", score - greedy[2],
                             0.0, fmt="+.4f", gated=gated)])  # fmt: skip
    reached_s = math.inf if first is None else first["wall_time_s"]
    name = f"wall s to {100 * args.target:.0f}% of the oracle"
    return check([Target(name, reached_s, max_wall, unit=" s", at_most=True, gated=gated)])


if __name__ == "__main__":
    raise SystemExit(main())
