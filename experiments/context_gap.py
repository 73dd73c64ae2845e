"""Context gap (paper Sections 4.1-4.2): how much safer is an answer that knows the user?

For every scenario the judge scores two answers: *context-free* (nothing about the user is known) and
*context-rich* (all ten attributes are known). The paper finds mean safety 2.79 -> 4.00 (+43.2%), gains
of 37.5%-45.6% in every domain, and context-free scores between 2.5 and 3.2 for every model and
domain. This script measures the same on any judge, per domain and per responder (the simulated
judge's presets stand for the paper's six LLMs; with ``--judge llm`` each ``--responders`` entry is a
backend spec).

Run:
    python -m experiments.context_gap                       # simulated judge, all presets, test split
    penguin-gym context-gap --responders gpt-4o mistral-7b --max-scenarios 200
    penguin-gym context-gap --judge llm --responder openai:gpt-4o-mini@http://localhost:8000/v1 \\
        --judge-model openai:gpt-4o --cache judgments.sqlite --max-scenarios 50

Writes ``runs/context_gap-<hash>/``: rows.jsonl (one row per responder and scenario), summary.json,
context_gap.csv, context_gap_domains.png, context_gap_responders.png.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.stats import mean_ci95
from experiments.args import DataArgs, JudgeArgs, RunArgs, arg, config_dict, parse_args, spec_label
from experiments.judging import (
    build_judge,
    check_unscored,
    closing_judges,
    count_unscored,
    judge_calls,
    judge_responders,
    redo_unscored_units,
    score_items,
)
from experiments.plots import grouped_bars
from experiments.results import ResultsDir, Stopwatch
from experiments.scenarios import load_domains
from experiments.terminal import pm, print_results_line, print_table, progress
from experiments.tracking import Tracker
from penguin_gym.error import ConfigError

EXPERIMENT = "context_gap"
#: The paper's figures (Wu et al. 2025, Sections 4.1-4.2).
PAPER: dict[str, Any] = {
    "free": 2.79,
    "rich": 4.00,
    "gain_pct": 43.2,
    "domain_gain_pct_range": [37.5, 45.6],
    "free_band": [2.5, 3.2],
}
FULL_MASK = (1 << 10) - 1


@dataclass
class Args(DataArgs, JudgeArgs, RunArgs):
    """Context-free vs context-rich safety per domain and responder."""

    responders: tuple[str, ...] = arg(
        ("all",),
        "responders to compare: 'all' = every simulated preset (simulated judge) or the --responder "
        "(llm judge); else preset names or backend specs",
        metavar="NAME",
    )
    chunk: int = arg(
        512, "scenarios per unit of work (rows are written and resumed unit by unit; use ~32 for LLM judges)"
    )

    def __post_init__(self) -> None:
        self.validate_data()
        self.validate_judge()
        if self.chunk < 1:
            raise ConfigError(f"--chunk = {self.chunk} must be >= 1")


def run(args: Args) -> dict[str, Any]:
    """Run the experiment; returns the summary (also written to ``summary.json``)."""
    with closing_judges():  # an LLM judge's connections close however the run ends
        return _run(args)


def _run(args: Args) -> dict[str, Any]:
    clock = Stopwatch()
    domains = load_domains(args)
    responders = judge_responders(args, args.responders)
    judges = {r: build_judge(args, responder=r) for r in responders}
    labels = {r: (spec_label(r) if r is not None else judges[r].name) for r in responders}
    results = ResultsDir(
        EXPERIMENT,
        config_dict(args, hashed_only=True),
        full_config=config_dict(args),
        out=args.out,
        runs_dir=args.runs_dir,
        fresh=args.fresh,
        extra={"judges": [judges[r].name for r in responders]},
        row_fields=("responder", "domain", "scenario_id", "free", "rich", "free_safety", "rich_safety"),
    )
    tracker = Tracker(args, EXPERIMENT, results, config_dict(args))
    units: list[tuple[str, str | None, str, list[Any]]] = []
    for r in responders:
        for d, scen in domains.items():
            for i in range(0, len(scen), args.chunk):
                units.append((f"{labels[r]}|{d}|{i // args.chunk}", r, d, scen[i : i + args.chunk]))
    if args.retry_failed:  # units with unscored items are computed again (their scored items come from the cache)
        redo_unscored_units(results)
    todo = [u for u in units if not results.is_done(u[0])]
    n_todo = sum(len(u[3]) for u in todo)
    planned = 2 * sum(len(u[3]) for u in units)
    with progress(n_todo, "context gap: scenarios judged", enabled=args.progress) as advance:
        for key, r, d, chunk in todo:
            n = len(chunk)
            idx = np.arange(n)
            # Both settings in one call: an LLM judge sends all of them at once.
            scores, unscored = score_items(
                judges[r],
                chunk,
                np.concatenate([idx, idx]),
                np.concatenate([np.zeros(n, dtype=np.int64), np.full(n, FULL_MASK, dtype=np.int64)]),
            )
            free, rich = scores[:n], scores[n:]
            rows = []
            for j, s in enumerate(chunk):
                row: dict[str, Any] = {
                    "responder": labels[r],
                    "domain": d,
                    "scenario_id": s.id,
                    "scenario_type": s.scenario_type,
                    "free": _dims(free[j]),
                    "rich": _dims(rich[j]),
                    "free_safety": _safety(free[j]),
                    "rich_safety": _safety(rich[j]),
                }
                missing = {k: unscored[i] for k, i in (("free", j), ("rich", n + j)) if i in unscored}
                if missing:
                    row["unscored"] = missing
                rows.append(row)
            results.append_unit(key, rows)
            advance(n)
            check_unscored(count_unscored(results.rows(), 2, planned=planned), args.max_unscored, results)
    rows = results.rows([u[0] for u in units])
    counts = count_unscored(rows, 2)
    summary = summarize(rows, [labels[r] for r in responders], list(domains))
    summary["unscored"] = counts
    summary["judge"] = {labels[r]: judges[r].name for r in responders}
    summary["config_hash"] = results.hash
    summary["run"] = {"wall_s": round(clock.seconds, 2), "units": len(units), "resumed_units": len(units) - len(todo)}
    if (calls := judge_calls(*judges.values())) is not None:
        summary["run"]["judgments"] = calls
    results.write_json("summary.json", summary)
    _write_outputs(args, results, tracker, summary, [labels[r] for r in responders], list(domains))
    check_unscored(counts, args.max_unscored, results)
    return summary


def _dims(x: np.ndarray) -> list[float] | None:
    return None if np.isnan(x).any() else x.round(6).tolist()


def _safety(x: np.ndarray) -> float | None:
    return None if np.isnan(x).any() else round(float(x.mean()), 6)


def _stats(free: np.ndarray, rich: np.ndarray) -> dict[str, float]:
    f, fc = mean_ci95(free)
    r, rc = mean_ci95(rich)
    g, gc = mean_ci95(rich - free)
    return {
        "n": int(free.size),
        "free": f,
        "free_ci95": fc,
        "rich": r,
        "rich_ci95": rc,
        "gain": g,
        "gain_ci95": gc,
        "gain_pct": 100.0 * (r / f - 1.0),
    }


def summarize(rows: Sequence[dict[str, Any]], responders: Sequence[str], domains: Sequence[str]) -> dict[str, Any]:
    """Per responder: overall and per-domain context-free / context-rich means with 95% CIs, the
    relative gain, per-dimension means, and the checks against the paper's shapes."""
    from penguin_gym.judges import DIMENSIONS

    out: dict[str, Any] = {"experiment": EXPERIMENT, "paper": PAPER, "responders": {}}
    for resp in responders:
        # An unscored item leaves its scenario out of the means (both settings: the gain is paired).
        rr = [x for x in rows if x["responder"] == resp and not x.get("unscored")]
        free = np.array([x["free_safety"] for x in rr])
        rich = np.array([x["rich_safety"] for x in rr])
        dom = np.array([x["domain"] for x in rr])
        fd = np.array([x["free"] for x in rr])
        rd = np.array([x["rich"] for x in rr])
        entry: dict[str, Any] = {
            "overall": _stats(free, rich),
            "domains": {d: _stats(free[dom == d], rich[dom == d]) for d in domains},
            "dimensions": {
                k: {"free": float(fd[:, i].mean()), "rich": float(rd[:, i].mean())} for i, k in enumerate(DIMENSIONS)
            },
        }
        dg = [v["gain_pct"] for v in entry["domains"].values()]
        dfree = [v["free"] for v in entry["domains"].values()]
        entry["checks"] = {
            "rich_above_free_every_domain": all(v["rich"] > v["free"] for v in entry["domains"].values()),
            "domain_gain_pct_min": min(dg),
            "domain_gain_pct_max": max(dg),
            "free_within_paper_band": all(PAPER["free_band"][0] <= x <= PAPER["free_band"][1] for x in dfree),
            "no_free_above_4": all(x <= 4.0 for x in dfree),
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
    cols = ["responder", "domain", "n", "free", "free_ci95", "rich", "rich_ci95", "gain", "gain_ci95", "gain_pct"]
    table = []
    for resp in responders:
        e = summary["responders"][resp]
        for d in [*domains, "overall"]:
            s = e["overall"] if d == "overall" else e["domains"][d]
            table.append(
                [
                    resp,
                    d,
                    s["n"],
                    s["free"],
                    s["free_ci95"],
                    s["rich"],
                    s["rich_ci95"],
                    s["gain"],
                    s["gain_ci95"],
                    s["gain_pct"],
                ]
            )
    results.write_csv("context_gap.csv", cols, table)

    primary = responders[0]
    e = summary["responders"][primary]
    print_table(
        f"Context gap per domain (responder {primary}; judge {summary['judge'][primary]})",
        ["domain", "context-free", "context-rich", "gain", "paper gain"],
        [
            [d, pm(s["free"], s["free_ci95"]), pm(s["rich"], s["rich_ci95"]), f"{s['gain_pct']:+.1f}%", "37.5%-45.6%"]
            for d, s in e["domains"].items()
        ]
        + [
            [
                "overall",
                pm(e["overall"]["free"], e["overall"]["free_ci95"]),
                pm(e["overall"]["rich"], e["overall"]["rich_ci95"]),
                f"{e['overall']['gain_pct']:+.1f}%",
                "+43.2% (2.79 -> 4.00)",
            ]
        ],
        caption="mean safety (1-5) ± 95% CI",
    )
    if len(responders) > 1:
        print_table(
            "Context gap per responder (all domains)",
            ["responder", "context-free", "context-rich", "gain", "free in [2.5, 3.2] per domain"],
            [
                [
                    r,
                    pm(summary["responders"][r]["overall"]["free"], summary["responders"][r]["overall"]["free_ci95"]),
                    pm(summary["responders"][r]["overall"]["rich"], summary["responders"][r]["overall"]["rich_ci95"]),
                    f"{summary['responders'][r]['overall']['gain_pct']:+.1f}%",
                    "yes" if summary["responders"][r]["checks"]["free_within_paper_band"] else "no",
                ]
                for r in responders
            ],
        )
    plots = {}
    if args.plots:
        plots["plots/context_gap_domains"] = grouped_bars(
            results.path / "context_gap_domains.png",
            [*domains, "overall"],
            {
                "context-free": (
                    [e["domains"][d]["free"] for d in domains] + [e["overall"]["free"]],
                    [e["domains"][d]["free_ci95"] for d in domains] + [e["overall"]["free_ci95"]],
                ),
                "context-rich": (
                    [e["domains"][d]["rich"] for d in domains] + [e["overall"]["rich"]],
                    [e["domains"][d]["rich_ci95"] for d in domains] + [e["overall"]["rich_ci95"]],
                ),
            },
            title=f"Context gap per domain ({primary})",
            ylabel="safety (1-5), mean ± 95% CI",
            ylim=(1.0, 5.0),
            refs={"paper context-free 2.79": PAPER["free"], "paper context-rich 4.00": PAPER["rich"]},
        )
        if len(responders) > 1:
            plots["plots/context_gap_responders"] = grouped_bars(
                results.path / "context_gap_responders.png",
                responders,
                {
                    "context-free": (
                        [summary["responders"][r]["overall"]["free"] for r in responders],
                        [summary["responders"][r]["overall"]["free_ci95"] for r in responders],
                    ),
                    "context-rich": (
                        [summary["responders"][r]["overall"]["rich"] for r in responders],
                        [summary["responders"][r]["overall"]["rich_ci95"] for r in responders],
                    ),
                },
                title="Context gap per responder",
                ylabel="safety (1-5), mean ± 95% CI",
                ylim=(1.0, 5.0),
            )
    metrics = {}
    for r in responders:
        er = summary["responders"][r]
        for d in [*domains, "overall"]:
            s = er["overall"] if d == "overall" else er["domains"][d]
            metrics.update({f"{EXPERIMENT}/{r}/{d}/{k}": s[k] for k in ("free", "rich", "gain_pct")})
    metrics["eval/safety_free"] = e["overall"]["free"]
    metrics["eval/safety_rich"] = e["overall"]["rich"]
    tracker.report(metrics, [(f"{EXPERIMENT}/table", cols, table)], plots)
    print_results_line(results, summary)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Command-line entry point (``python -m experiments.context_gap`` / ``penguin-gym context-gap``)."""
    args = parse_args(Args, argv, prog=prog or "python -m experiments.context_gap", description=__doc__)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
