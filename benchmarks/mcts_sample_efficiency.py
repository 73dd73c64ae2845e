"""Sample efficiency of the planner: rollouts to find the oracle's best 3-subset, guided vs plain UCT.

The paper (Section 5) reports that LLM-guided MCTS matches vanilla MCTS with 4x fewer rollouts (80 vs
320). Here the guide is the prior learned from training users (``LearnedPrior``: attribute importance
per domain; the offline stand-in of the LLM's ranking), against plain UCT (no prior, random rollouts),
and PUCT with a uniform prior for reference. For each test user (budget 3, no question cost, so the
target is the oracle's best of the 120 3-subsets) each search records the first rollout after which
its extracted plan (greedy by Q) is that set; all users are searched in one lock-step batch.

Printed: the median and mean rollouts to the first hit (over users found within the cap), the share
found by 20, 40, 80, 160, 320, 640 rollouts and by the cap, the share whose final plan after 80 and 320
rollouts is the best set, and the ratio of medians (UCT / guided). The target is the paper's 4x
(``--min-ratio``); it is gated at every size, as it does not depend on the machine (a seeded search),
and the exit status is 1 when it is missed (``benchmarks.targets``).

Run:
    python -m benchmarks.mcts_sample_efficiency
    python -m benchmarks.mcts_sample_efficiency --users 300 --max-rollouts 1000 --seed 1
    python -m benchmarks.mcts_sample_efficiency --quick     # a smoke test at tiny sizes
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from agents.mcts import MCTSConfig, plan_true_profile, search
from agents.oracle import oracle_values
from agents.priors import LearnedPrior, Prior, UniformPrior
from agents.scoring import TableValues, net_tables
from benchmarks.targets import Target, check, parse
from penguin_gym.data import load_scenarios
from penguin_gym.judges import SimulatedJudge
from penguin_gym.model import EpisodeModel

CHECKPOINTS = (20, 40, 80, 160, 320, 640)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=700, help="test users (all domains)")
    ap.add_argument("--n-per-domain", type=int, default=2000, help="synthetic scenarios per domain")
    ap.add_argument("--max-rollouts", type=int, default=1000, help="the cap on rollouts per search")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-ratio", type=float, default=4.0, help="target of the ratio of medians, UCT / guided")
    args, _ = parse(ap, argv, {"users": 20, "n_per_domain": 40, "max_rollouts": 100})
    t0 = time.perf_counter()

    judge = SimulatedJudge()
    everyone = load_scenarios(n_per_domain=args.n_per_domain, seed=0)
    train = [s for s in everyone if s.split == "train"]
    test = [s for s in everyone if s.split == "test"]
    rng = np.random.default_rng(args.seed)
    users = [test[i] for i in np.sort(rng.choice(len(test), size=min(args.users, len(test)), replace=False))]
    model = EpisodeModel(users, judge, question_cost=0.0, budget=3)
    rows = np.arange(len(users))
    best, _ = oracle_values(model, rows, budget=3, exact=True)
    tables = net_tables(model, rows)
    tm = EpisodeModel(train, judge, question_cost=0.0, budget=3)
    learned = LearnedPrior.from_tables(
        net_tables(tm, np.arange(len(train))), np.array([s.domain_index for s in train]), 3
    )

    runs: dict[str, tuple[Prior, bool]] = {
        "guided (learned prior, PUCT)": (learned, True),
        "PUCT, uniform prior": (UniformPrior(), True),
        "plain UCT (no prior)": (UniformPrior(), False),
    }
    print(
        f"Rollouts to find the oracle's best 3-subset: {len(users)} test users (all domains), judge {judge.name}, "
        f"cap {args.max_rollouts}; prior learned on {len(train)} training users"
    )
    header = f"{'search':30s} {'median':>7s} {'mean':>7s} " + " ".join(f"{'<=' + str(c):>6s}" for c in CHECKPOINTS)
    header += f" {'<=cap':>6s} {'plan@80':>8s} {'plan@320':>9s}"
    print(header)
    medians = {}
    for name, (prior, use_prior) in runs.items():
        cfg = MCTSConfig(num_rollouts=args.max_rollouts, budget=3, allow_stop=False, use_prior=use_prior)
        bound = prior.bind([s.query for s in users], [s.domain_index for s in users])
        res = search(
            TableValues(tables),
            bound,
            roots=np.zeros(len(users), dtype=np.int64),
            limits=np.full(len(users), 3),
            config=cfg,
            rng=np.random.default_rng(args.seed),
            targets=best,
        )
        assert res.first_hit is not None
        hit = res.first_hit[res.first_hit > 0]
        medians[name] = float(np.median(hit)) if len(hit) else float("nan")
        shares = [np.mean((res.first_hit > 0) & (res.first_hit <= c)) for c in CHECKPOINTS]
        final = []
        for t in (80, 320):
            r = plan_true_profile(
                model,
                rows,
                prior=prior,
                config=MCTSConfig(num_rollouts=t, budget=3, allow_stop=False, use_prior=use_prior),
                seed=args.seed,
            )
            final.append(np.mean(r.masks == best))
        print(
            f"{name:30s} {medians[name]:7.0f} {hit.mean() if len(hit) else float('nan'):7.1f} "
            + " ".join(f"{x:6.0%}" for x in shares)
            + f" {np.mean(res.first_hit > 0):6.0%} {final[0]:8.0%} {final[1]:9.0%}"
        )
    g, u = medians["guided (learned prior, PUCT)"], medians["plain UCT (no prior)"]
    print(
        f"median rollouts to the best set: guided {g:.0f} vs plain UCT {u:.0f}: {u / g:.1f}x fewer "
        f"(paper: 80 vs 320, 4x)  [{time.perf_counter() - t0:.0f}s]"
    )
    return check([Target("median rollouts, plain UCT / guided", u / g, args.min_ratio, unit="x")])


if __name__ == "__main__":
    raise SystemExit(main())
