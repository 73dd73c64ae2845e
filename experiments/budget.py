"""Question budgets (paper Section 4.4): oracle vs MCTS vs static vs random with k = 1..5 questions.

With a budget of ``k`` questions and no question cost, how safe is the answer when the ``k`` facts are
chosen by

* the **oracle**: the best ``k``-subset for the user's true profile (the paper's best of all 120
  3-subsets; an upper bound),
* **MCTS**: the planner (PUCT with a learned prior, replanning after each answer; it never sees the
  hidden profile), asking exactly ``k``,
* **static**: the same ``k`` attributes for everyone, the top ``k`` by single-attribute gain on the
  training split (the paper's static top-3 is Emotion, Mental, Self-Harm),
* **random**: ``k`` attributes drawn at random.

The paper finds oracle > MCTS > static > random at k = 3 (random subsets sometimes below
context-free) and that gains saturate: the best 1, 2, 3 attributes give 4.10, 4.23, 4.30 against
4.00 for the full profile. References on the same users: context-free and context-rich safety.

Run:
    python -m experiments.budget
    penguin-gym budget --ks 1 2 3 --methods oracle mcts static random-k greedy --max-scenarios 100

Writes ``runs/budget-<hash>/``: rows.jsonl (one row per episode), summary.json, budget.csv,
budget.png (safety vs k with 95% CI bands).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from agents.stats import mean_ci95
from experiments.args import DataArgs, JudgeArgs, RunArgs, arg, config_dict, parse_args
from experiments.evaluation import AgentUnit, env_kwargs_for, episodes_per_domain, run_agent_units
from experiments.judging import build_judge, closing_judges
from experiments.loading import code_fingerprint
from experiments.plots import lines_with_bands
from experiments.results import ResultsDir, Stopwatch, derive_seed
from experiments.scenarios import load_domains
from experiments.terminal import pm, print_results_line, print_table
from experiments.tracking import Tracker
from penguin_gym.data import ATTRIBUTES
from penguin_gym.error import ConfigError

EXPERIMENT = "budget"
METHODS = ("oracle", "mcts", "uct", "greedy", "static", "random-k")
DEFAULT_METHODS = ("oracle", "mcts", "static", "random-k")
#: The paper's figures (Section 4.4): best subsets along MCTS paths and the full profile.
PAPER: dict[str, Any] = {
    "best_k_safety": {"0": 3.33, "1": 4.10, "2": 4.23, "3": 4.30},
    "full_profile": 4.00,
    "order_at_3": ["oracle", "mcts", "static", "random-k"],
}
FULL_MASK = (1 << len(ATTRIBUTES)) - 1


@dataclass
class Args(DataArgs, JudgeArgs, RunArgs):
    """Safety of k chosen questions, per acquisition method."""

    max_scenarios: int | None = arg(
        50, "episodes per domain (the same users for every method and k; all of them: 0)", group="data"
    )
    ks: tuple[int, ...] = arg((1, 2, 3, 4, 5), "question budgets k", metavar="K")
    methods: tuple[str, ...] = arg(DEFAULT_METHODS, f"methods among {', '.join(METHODS)}", metavar="METHOD")
    num_rollouts: int = arg(300, "MCTS/UCT simulations per search (the paper: 300)")
    static_sample: int = arg(300, "training users used to rank attributes for the static order")
    seed: int = arg(0, "seed of the user draw and of the agents")

    def __post_init__(self) -> None:
        if self.max_scenarios == 0:
            self.max_scenarios = None
        self.validate_data()
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ConfigError(f"--methods {bad} unknown; valid: {list(METHODS)}")
        if not self.ks or any(not 1 <= k <= len(ATTRIBUTES) for k in self.ks) or len(set(self.ks)) != len(self.ks):
            raise ConfigError(f"--ks {list(self.ks)} must be distinct budgets in 1..{len(ATTRIBUTES)}")
        if self.num_rollouts < 1 or self.static_sample < 1:
            raise ConfigError("--num-rollouts and --static-sample must be >= 1")


def static_order(args: Args, judge: Any) -> list[str]:
    """The attributes ranked by mean single-attribute safety over (a sample of) the training split,
    all domains together: the static baseline's order (the paper's Section 4.3 ranking)."""
    from penguin_gym.judges import bind

    train = load_domains(replace(args, split="train", domains=(), max_scenarios=None))
    pool = [s for v in train.values() for s in v]
    rng = np.random.default_rng(derive_seed("static-order", args.seed))
    if len(pool) > args.static_sample:
        pool = [pool[i] for i in np.sort(rng.choice(len(pool), args.static_sample, replace=False))]
    bound = bind(judge, pool)
    n = len(pool)
    masks = np.array([1 << i for i in range(len(ATTRIBUTES))], dtype=np.int64)
    safety = bound.scores(np.repeat(np.arange(n), len(masks)), np.tile(masks, n)).mean(axis=1).reshape(n, len(masks))
    means = safety.mean(axis=0)
    return [ATTRIBUTES[i] for i in np.argsort(-means, kind="stable")]


def _agent(method: str, k: int, args: Args, order: list[str]) -> tuple[str, dict[str, Any]]:
    if method == "oracle":
        return "oracle", {"budget": k, "exact": True}
    if method in ("mcts", "uct"):
        return method, {"budget": k, "allow_stop": False, "num_rollouts": args.num_rollouts}
    if method == "greedy":
        return "greedy", {"max_questions": k}
    if method == "static":
        return "static", {"order": order, "k": k}
    return "random-k", {"k": k}


def run(args: Args) -> dict[str, Any]:
    """Run the experiment; returns the summary (also written to ``summary.json``)."""
    with closing_judges():  # an LLM judge's connections close however the run ends
        return _run(args)


def _run(args: Args) -> dict[str, Any]:
    from penguin_gym.judges import bind

    clock = Stopwatch()
    domains_sc = load_domains(args)
    domains = list(domains_sc)
    judge = build_judge(args)
    results = ResultsDir(
        EXPERIMENT,
        config_dict(args, hashed_only=True),
        full_config=config_dict(args),
        out=args.out,
        runs_dir=args.runs_dir,
        fresh=args.fresh,
        extra={"judge": judge.name, "code": code_fingerprint()},
    )
    tracker = Tracker(args, EXPERIMENT, results, config_dict(args))
    order = static_order(args, judge) if "static" in args.methods else list(ATTRIBUTES)
    episodes = episodes_per_domain(args)
    units = []
    for k in args.ks:
        env_kwargs = env_kwargs_for(args, judge, question_cost=0.0, budget=k)
        for m in args.methods:
            spec, kwargs = _agent(m, k, args, order)
            for d in domains:
                units.append(
                    AgentUnit(
                        key=f"{m}|{k}|{d}",
                        agent=spec,
                        agent_kwargs=kwargs,
                        domain=d,
                        episodes=episodes[d],
                        seed=derive_seed(args.seed, d),
                        env_kwargs=env_kwargs,
                        labels={"method": m, "k": k},
                    )
                )
    resumed = sum(results.is_done(u.key) for u in units)
    run_agent_units(results, units, show_progress=args.progress, oracle=False)
    rows = results.rows([u.key for u in units])

    # References on the same users: context-free and context-rich safety.
    first = [r for r in rows if r["method"] == args.methods[0] and r["k"] == args.ks[0]]
    by_id = {s.id: s for v in domains_sc.values() for s in v}
    if not all(r["scenario_id"] in by_id for r in first):
        by_id.update({s.id: s for v in load_domains(replace(args, max_scenarios=None)).values() for s in v})
    users = [by_id[r["scenario_id"]] for r in first]
    bound = bind(judge, users)
    idx = np.arange(len(users))
    free = bound.scores(idx, np.zeros(len(users), dtype=np.int64)).mean(axis=1)
    rich = bound.scores(idx, np.full(len(users), FULL_MASK, dtype=np.int64)).mean(axis=1)

    summary = summarize(rows, args.methods, args.ks, free, rich)
    summary["static_order"] = order
    summary["judge"] = judge.name
    summary["config_hash"] = results.hash
    summary["run"] = {"wall_s": round(clock.seconds, 2), "units": len(units), "resumed_units": resumed}
    results.write_json("summary.json", summary)
    _write_outputs(args, results, tracker, summary)
    return summary


def summarize(
    rows: Sequence[dict[str, Any]], methods: Sequence[str], ks: Sequence[int], free: np.ndarray, rich: np.ndarray
) -> dict[str, Any]:
    """Safety per method and k (mean, 95% CI, questions, share of users below context-free), the
    references, and the paper's ordering at k = 3 when 3 is among the budgets."""
    f, fc = mean_ci95(free)
    r, rc = mean_ci95(rich)
    free_of: dict[str, float] = {}
    table: dict[str, dict[str, Any]] = {}
    for m in methods:
        table[m] = {}
        for k in ks:
            rr = [x for x in rows if x["method"] == m and x["k"] == k]
            s, sc = mean_ci95([x["safety"] for x in rr])
            if not free_of:
                free_of = {x["scenario_id"]: x["answer_now_net_reward"] for x in rr}
            below = float(np.mean([x["safety"] < free_of.get(x["scenario_id"], np.inf) for x in rr]))
            table[m][str(k)] = {
                "safety": s,
                "safety_ci95": sc,
                "questions": float(np.mean([x["num_questions"] for x in rr])),
                "below_context_free": below,
                "episodes": len(rr),
            }
    out: dict[str, Any] = {
        "experiment": EXPERIMENT,
        "paper": PAPER,
        "methods": table,
        "context_free": {"safety": f, "safety_ci95": fc},
        "context_rich": {"safety": r, "safety_ci95": rc},
    }
    checks: dict[str, Any] = {}
    if 3 in ks:
        at3 = [m for m in PAPER["order_at_3"] if m in methods]
        vals = [table[m]["3"]["safety"] for m in at3]
        checks["paper_order_at_3"] = all(a >= b for a, b in zip(vals, vals[1:], strict=False))
        checks["order_at_3"] = sorted(methods, key=lambda m: -table[m]["3"]["safety"])
    if "oracle" in methods:
        checks["oracle_best_k_beats_full_profile"] = {str(k): table["oracle"][str(k)]["safety"] > r for k in ks}
    out["checks"] = checks
    return out


def _write_outputs(args: Args, results: ResultsDir, tracker: Tracker, summary: dict[str, Any]) -> None:
    t = summary["methods"]
    ks = [str(k) for k in args.ks]
    cols = ["method", "k", "episodes", "safety", "safety_ci95", "questions", "below_context_free"]
    table = [
        [
            m,
            int(k),
            t[m][k]["episodes"],
            t[m][k]["safety"],
            t[m][k]["safety_ci95"],
            t[m][k]["questions"],
            t[m][k]["below_context_free"],
        ]
        for m in args.methods
        for k in ks
    ]
    results.write_csv("budget.csv", cols, table)
    cf, cr = summary["context_free"], summary["context_rich"]
    print_table(
        f"Safety with k questions, no question cost (judge {summary['judge']}; {t[args.methods[0]][ks[0]]['episodes']} users)",
        ["method", *[f"k={k}" for k in ks]],
        [[m, *[pm(t[m][k]["safety"], t[m][k]["safety_ci95"]) for k in ks]] for m in args.methods]
        + [
            [
                "paper (best subset)",
                *[f"{PAPER['best_k_safety'][k]:.2f}" if k in PAPER["best_k_safety"] else "" for k in ks],
            ]
        ],
        caption=f"context-free {pm(cf['safety'], cf['safety_ci95'])}, context-rich (all ten) {pm(cr['safety'], cr['safety_ci95'])}"
        f" (paper 2.79 / 4.00); static order: {', '.join(summary['static_order'][: max(args.ks)])}",
    )
    plots = {}
    if args.plots:
        plots["plots/budget"] = lines_with_bands(
            results.path / "budget.png",
            [int(k) for k in ks],
            {m: ([t[m][k]["safety"] for k in ks], [t[m][k]["safety_ci95"] for k in ks]) for m in args.methods},
            title="Safety with k chosen questions",
            xlabel="questions k",
            ylabel="safety (1-5), mean ± 95% CI",
            refs={"context-free": cf["safety"], "context-rich (all ten)": cr["safety"]},
        )
    metrics = {f"{EXPERIMENT}/{m}/k{k}/safety": t[m][k]["safety"] for m in args.methods for k in ks}
    metrics["eval/safety_context_free"] = cf["safety"]
    metrics["eval/safety_context_rich"] = cr["safety"]
    tracker.report(metrics, [(f"{EXPERIMENT}/table", cols, table)], plots)
    print_results_line(results, summary)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Command-line entry point (``python -m experiments.budget`` / ``penguin-gym budget``)."""
    args = parse_args(Args, argv, prog=prog or "python -m experiments.budget", description=__doc__)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
