"""RAISE vs vanilla (paper Table 2): vanilla, +agent, +planner per domain and responder.

Three ways to answer a user, as in the paper's ablation:

* **vanilla**: answer at once (context-free; ``answer-now``);
* **+agent**: RAISE's acquisition and abstention modules without the planner's path library
  (``raise-agent``);
* **+planner**: full RAISE, the modules guided by paths the MCTS planner found offline for similar
  training queries (``raise``).

The paper (mean of six LLMs) finds 2.86 -> 3.56 (+24.5%) -> 3.77 (+31.6% over vanilla), with 2.7
questions per episode on average. Here each responder is a simulated-judge preset (the paper's six
LLMs and their mean), or with ``--judge llm`` a responder backend; the agents' modules are the offline
stand-ins (pass ``--agent-option raise:backend=openai:<model>@<url>`` for the LLM-driven ones).

Run:
    python -m experiments.raise_table
    penguin-gym raise --responders mean gpt-4o --max-scenarios 200

Writes ``runs/raise_table-<hash>/``: rows.jsonl (one row per episode), summary.json, raise_table.csv,
raise_domains.csv, raise_domains.png, raise_responders.png.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agents.stats import mean_ci95
from experiments.args import DataArgs, JudgeArgs, RunArgs, arg, config_dict, parse_args
from experiments.evaluation import AgentUnit, env_kwargs_for, episodes_per_domain, run_agent_units
from experiments.judging import build_judge, closing_judges, judge_responders
from experiments.loading import code_fingerprint, parse_agent_options
from experiments.plots import grouped_bars
from experiments.results import ResultsDir, Stopwatch, derive_seed
from experiments.scenarios import load_domains
from experiments.terminal import pm, print_results_line, print_table
from experiments.tracking import Tracker
from penguin_gym.error import ConfigError
from penguin_gym.model import DEFAULT_QUESTION_COST

EXPERIMENT = "raise_table"
VARIANTS = {"vanilla": "answer-now", "+agent": "raise-agent", "+planner": "raise"}
#: The paper's Table 2 (safety; vanilla and full RAISE per model, +agent as the six-model mean).
PAPER: dict[str, Any] = {
    "mean": {"vanilla": 2.86, "+agent": 3.56, "+planner": 3.77, "questions": 2.7},
    "vanilla": {
        "gpt-4o": 2.94,
        "deepseek-7b": 2.64,
        "mistral-7b": 2.55,
        "llama-3.1-8b": 3.15,
        "qwen-2.5-7b": 2.75,
        "qwq-32b": 3.13,
    },
    "+planner": {
        "gpt-4o": 3.83,
        "deepseek-7b": 3.07,
        "mistral-7b": 3.22,
        "llama-3.1-8b": 4.06,
        "qwen-2.5-7b": 3.91,
        "qwq-32b": 4.55,
    },
}


@dataclass
class Args(DataArgs, JudgeArgs, RunArgs):
    """Vanilla vs +agent vs +planner per domain and responder."""

    max_scenarios: int | None = arg(
        100, "episodes per domain (the same users for every variant; all of them: 0)", group="data"
    )
    responders: tuple[str, ...] = arg(
        ("all",),
        "responders: 'all' = every simulated preset (simulated judge) or the --responder (llm judge)",
        metavar="NAME",
    )
    agent_option: tuple[str, ...] = arg(
        (),
        "options of the RAISE agents AGENT:KEY=VALUE (raise:k=3, raise-agent:threshold=4.5, raise:backend=openai:...)",
        metavar="AGENT:KEY=VALUE",
    )
    embedding: str = arg(
        "hashing", "query embedding of RAISE's retriever: 'hashing' (fast), 'auto' (all-MiniLM-L6-v2 as the paper)"
    )
    seed: int = arg(0, "seed of the user draw and of the agents")
    question_cost: float = arg(DEFAULT_QUESTION_COST, "cost of each question (1-5 safety scale)")

    def __post_init__(self) -> None:
        if self.max_scenarios == 0:
            self.max_scenarios = None
        self.validate_data()
        self.agent_kwargs()
        if self.question_cost < 0:
            raise ConfigError(f"--question-cost = {self.question_cost} must be >= 0")

    def agent_kwargs(self) -> dict[str, dict[str, Any]]:
        out = parse_agent_options(self.agent_option, list(VARIANTS.values()))
        for a in ("raise", "raise-agent"):
            out[a].setdefault("embedding", self.embedding)
        return out


def run(args: Args) -> dict[str, Any]:
    """Run the experiment; returns the summary (also written to ``summary.json``)."""
    with closing_judges():  # an LLM judge's connections close however the run ends
        return _run(args)


def _run(args: Args) -> dict[str, Any]:
    clock = Stopwatch()
    domains = list(load_domains(args))
    responders = judge_responders(args, args.responders)
    judges = {r: build_judge(args, responder=r) for r in responders}
    labels = {r: (r if r is not None else judges[r].name) for r in responders}
    results = ResultsDir(
        EXPERIMENT,
        config_dict(args, hashed_only=True),
        full_config=config_dict(args),
        out=args.out,
        runs_dir=args.runs_dir,
        fresh=args.fresh,
        extra={"judges": [judges[r].name for r in responders], "code": code_fingerprint()},
    )
    tracker = Tracker(args, EXPERIMENT, results, config_dict(args))
    episodes = episodes_per_domain(args)
    kwargs = args.agent_kwargs()
    units = [
        AgentUnit(
            key=f"{labels[r]}|{variant}|{d}",
            agent=spec,
            agent_kwargs=kwargs[spec],
            domain=d,
            episodes=episodes[d],
            seed=derive_seed(args.seed, d),
            env_kwargs=env_kwargs_for(args, judges[r], question_cost=args.question_cost),
            labels={"responder": labels[r], "variant": variant},
        )
        for r in responders
        for variant, spec in VARIANTS.items()
        for d in domains
    ]
    resumed = sum(results.is_done(u.key) for u in units)
    run_agent_units(results, units, show_progress=args.progress, oracle=False)
    rows = results.rows([u.key for u in units])
    summary = summarize(rows, [labels[r] for r in responders], domains)
    summary["judge"] = {labels[r]: judges[r].name for r in responders}
    summary["config_hash"] = results.hash
    summary["run"] = {"wall_s": round(clock.seconds, 2), "units": len(units), "resumed_units": resumed}
    results.write_json("summary.json", summary)
    _write_outputs(args, results, tracker, summary, [labels[r] for r in responders], domains)
    return summary


def _cell(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    s, c = mean_ci95([r["safety"] for r in rows])
    q, qc = mean_ci95([r["num_questions"] for r in rows])
    return {"safety": s, "safety_ci95": c, "questions": q, "questions_ci95": qc, "episodes": len(rows)}


def summarize(rows: Sequence[dict[str, Any]], responders: Sequence[str], domains: Sequence[str]) -> dict[str, Any]:
    """Per responder: each variant's safety and questions overall and per domain, and the relative
    gains (+agent and +planner over vanilla, +planner over +agent)."""
    out: dict[str, Any] = {"experiment": EXPERIMENT, "paper": PAPER, "responders": {}}
    for resp in responders:
        rr = [r for r in rows if r["responder"] == resp]
        entry: dict[str, Any] = {"overall": {}, "domains": {d: {} for d in domains}}
        for v in VARIANTS:
            rv = [r for r in rr if r["variant"] == v]
            entry["overall"][v] = _cell(rv)
            for d in domains:
                entry["domains"][d][v] = _cell([r for r in rv if r["domain"] == d])
        o = entry["overall"]
        entry["gains_pct"] = {
            "agent_over_vanilla": 100 * (o["+agent"]["safety"] / o["vanilla"]["safety"] - 1),
            "planner_over_vanilla": 100 * (o["+planner"]["safety"] / o["vanilla"]["safety"] - 1),
            "planner_over_agent": 100 * (o["+planner"]["safety"] / o["+agent"]["safety"] - 1),
        }
        entry["checks"] = {
            "agent_above_vanilla_every_domain": all(
                entry["domains"][d]["+agent"]["safety"] > entry["domains"][d]["vanilla"]["safety"] for d in domains
            ),
            "planner_above_vanilla_every_domain": all(
                entry["domains"][d]["+planner"]["safety"] > entry["domains"][d]["vanilla"]["safety"] for d in domains
            ),
            "planner_above_agent": o["+planner"]["safety"] > o["+agent"]["safety"],
        }
        out["responders"][resp] = entry
    return out


def _write_outputs(
    args: Args,
    results: ResultsDir,
    tracker: Tracker,
    summary: dict[str, Any],
    responders: list[str],
    domains: list[str],
) -> None:
    cols = ["responder", "domain", "variant", "episodes", "safety", "safety_ci95", "questions", "questions_ci95"]
    table = []
    for resp in responders:
        e = summary["responders"][resp]
        for d in [*domains, "overall"]:
            cells = e["overall"] if d == "overall" else e["domains"][d]
            for v in VARIANTS:
                c = cells[v]
                table.append(
                    [resp, d, v, c["episodes"], c["safety"], c["safety_ci95"], c["questions"], c["questions_ci95"]]
                )
    results.write_csv("raise_table.csv", cols, table)

    primary = responders[0]
    e = summary["responders"][primary]
    print_table(
        f"RAISE ablation per domain (responder {primary}; judge {summary['judge'][primary]})",
        ["domain", "vanilla", "+agent", "+planner", "questions (+agent / +planner)"],
        [
            [
                d,
                *[pm(cells[v]["safety"], cells[v]["safety_ci95"]) for v in VARIANTS],
                f"{cells['+agent']['questions']:.1f} / {cells['+planner']['questions']:.1f}",
            ]
            for d, cells in [*e["domains"].items(), ("overall", e["overall"])]
        ],
        caption=f"gains: +agent {e['gains_pct']['agent_over_vanilla']:+.1f}%, +planner {e['gains_pct']['planner_over_vanilla']:+.1f}%"
        f" over vanilla ({e['gains_pct']['planner_over_agent']:+.1f}% over +agent); paper (six-LLM mean): 2.86 -> 3.56 -> 3.77"
        " (+24.5%, +31.6%, +5.9%), 2.7 questions",
    )
    if len(responders) > 1:
        print_table(
            "RAISE ablation per responder (all domains; cf. the paper's Table 2)",
            ["responder", "vanilla", "+agent", "+planner", "questions", "paper vanilla", "paper +planner"],
            [
                [
                    r,
                    *[f"{summary['responders'][r]['overall'][v]['safety']:.2f}" for v in VARIANTS],
                    f"{summary['responders'][r]['overall']['+planner']['questions']:.1f}",
                    f"{PAPER['vanilla'][r]:.2f}" if r in PAPER["vanilla"] else ("2.86" if r == "mean" else ""),
                    f"{PAPER['+planner'][r]:.2f}" if r in PAPER["+planner"] else ("3.77" if r == "mean" else ""),
                ]
                for r in responders
            ],
        )
    plots = {}
    if args.plots:
        plots["plots/raise_domains"] = grouped_bars(
            results.path / "raise_domains.png",
            [*domains, "overall"],
            {
                v: (
                    [e["domains"][d][v]["safety"] for d in domains] + [e["overall"][v]["safety"]],
                    [e["domains"][d][v]["safety_ci95"] for d in domains] + [e["overall"][v]["safety_ci95"]],
                )
                for v in VARIANTS
            },
            title=f"RAISE ablation per domain ({primary})",
            ylabel="safety (1-5), mean ± 95% CI",
            ylim=(1.0, 5.0),
        )
        if len(responders) > 1:
            paper_of = {
                "vanilla": {**PAPER["vanilla"], "mean": 2.86},
                "+planner": {**PAPER["+planner"], "mean": 3.77},
                "+agent": {"mean": 3.56},
            }
            plots["plots/raise_responders"] = grouped_bars(
                results.path / "raise_responders.png",
                responders,
                {
                    v: (
                        [summary["responders"][r]["overall"][v]["safety"] for r in responders],
                        [summary["responders"][r]["overall"][v]["safety_ci95"] for r in responders],
                    )
                    for v in VARIANTS
                },
                title="RAISE ablation per responder (diamonds: the paper's Table 2)",
                ylabel="safety (1-5), mean ± 95% CI",
                ylim=(1.0, 5.0),
                markers={v: [paper_of[v].get(r) for r in responders] for v in VARIANTS},
            )
    metrics: dict[str, float] = {}
    for r in responders:
        for v in VARIANTS:
            c = summary["responders"][r]["overall"][v]
            metrics[f"{EXPERIMENT}/{r}/{v}/safety"] = c["safety"]
            metrics[f"{EXPERIMENT}/{r}/{v}/questions"] = c["questions"]
            for d in domains:
                metrics[f"{EXPERIMENT}/{r}/{v}/{d}/safety"] = summary["responders"][r]["domains"][d][v]["safety"]
    metrics["eval/safety"] = e["overall"]["+planner"]["safety"]
    metrics["eval/questions"] = e["overall"]["+planner"]["questions"]
    tracker.report(metrics, [(f"{EXPERIMENT}/table", cols, table)], plots)
    print_results_line(results, summary)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Command-line entry point (``python -m experiments.raise_table`` / ``penguin-gym raise``)."""
    args = parse_args(Args, argv, prog=prog or "python -m experiments.raise_table", description=__doc__)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
