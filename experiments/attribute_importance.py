"""Attribute importance (paper Section 4.3): which single fact about the user helps most?

For every scenario the judge scores the answer given *one* attribute at a time (ten answers), plus the
context-free baseline and the full profile. The paper (1,000 scenarios, baseline 3.12) finds Mental
Health Status, Emotional State and Past Self-Harm History lead (about 3.97, 3.90, 3.83), Health Status
next (3.67) and the six demographic attributes behind (3.33-3.53); the static top three are Emotion,
Mental and Self-Harm. This script measures the gain of each attribute over the baseline per domain
(a heat map), overall with 95% CIs, per rubric dimension, and per attribute group.

Run:
    python -m experiments.attribute_importance
    penguin-gym attributes --domains Health Financial --max-scenarios 300
    penguin-gym attributes --judge llm --responder openai:qwen2.5-7b@http://localhost:8000/v1 \\
        --judge-model openai:gpt-4o --cache judgments.sqlite --max-scenarios 30

Writes ``runs/attribute_importance-<hash>/``: rows.jsonl (one row per scenario), summary.json,
attributes.csv, attributes_domains.csv, attribute_gain_heatmap.png, attribute_gain.png.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from agents.stats import mean_ci95
from experiments.args import DataArgs, JudgeArgs, RunArgs, arg, config_dict, parse_args
from experiments.judging import (
    build_judge,
    check_unscored,
    closing_judges,
    count_unscored,
    judge_calls,
    redo_unscored_units,
    score_items,
)
from experiments.plots import grouped_bars, heatmap
from experiments.results import ResultsDir, Stopwatch
from experiments.scenarios import load_domains
from experiments.terminal import pm, print_results_line, print_table, progress
from experiments.tracking import Tracker
from penguin_gym.data import ATTRIBUTE_GROUPS, ATTRIBUTES
from penguin_gym.error import ConfigError

EXPERIMENT = "attribute_importance"
#: The paper's single-attribute safety (Fig. 4, read off the figure; demographic ones span 3.33-3.53).
PAPER: dict[str, Any] = {
    "baseline": 3.12,
    "single": {
        "Mental Health Status": 3.97,
        "Emotional State": 3.90,
        "Past Self-Harm History": 3.83,
        "Health Status": 3.67,
    },
    "demographic_range": [3.33, 3.53],
    "static_top3": ["Emotional State", "Mental Health Status", "Past Self-Harm History"],
}
FULL_MASK = (1 << len(ATTRIBUTES)) - 1
#: The judged settings of a scenario, in order: the query alone, each attribute alone, the full profile.
_LABELS = ("baseline", *ATTRIBUTES, "full")
SHORT = {
    "Age": "Age",
    "Gender": "Gender",
    "Marital Status": "Marital",
    "Profession": "Profession",
    "Economic Status": "Economic",
    "Health Status": "Health",
    "Education Level": "Education",
    "Mental Health Status": "Mental",
    "Past Self-Harm History": "Self-Harm",
    "Emotional State": "Emotion",
}


@dataclass
class Args(DataArgs, JudgeArgs, RunArgs):
    """One attribute at a time: the gain of each attribute per domain."""

    chunk: int = arg(512, "scenarios per unit of work (use ~8 for LLM judges: each scenario is 12 judgments)")

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
    judge = build_judge(args)
    results = ResultsDir(
        EXPERIMENT,
        config_dict(args, hashed_only=True),
        full_config=config_dict(args),
        out=args.out,
        runs_dir=args.runs_dir,
        fresh=args.fresh,
        extra={"judge": judge.name},
        row_fields=("domain", "scenario_id", "baseline", "single", "single_dims", "baseline_dims", "full"),
    )
    tracker = Tracker(args, EXPERIMENT, results, config_dict(args))
    units = [
        (f"{d}|{i // args.chunk}", d, scen[i : i + args.chunk])
        for d, scen in domains.items()
        for i in range(0, len(scen), args.chunk)
    ]
    if args.retry_failed:  # units with unscored items are computed again (their scored items come from the cache)
        redo_unscored_units(results)
    todo = [u for u in units if not results.is_done(u[0])]
    # Per scenario: the baseline, each single attribute, the full profile.
    masks = np.array([0] + [1 << i for i in range(len(ATTRIBUTES))] + [FULL_MASK], dtype=np.int64)
    planned = len(masks) * sum(len(u[2]) for u in units)
    with progress(sum(len(u[2]) for u in todo), "attributes: scenarios judged", enabled=args.progress) as advance:
        for key, d, chunk in todo:
            n = len(chunk)
            flat, unscored = score_items(judge, chunk, np.repeat(np.arange(n), len(masks)), np.tile(masks, n))
            scores = flat.reshape(n, len(masks), 3)
            rows = []
            for j, s in enumerate(chunk):
                missing = {
                    _LABELS[k]: unscored[j * len(masks) + k]
                    for k in range(len(masks))
                    if j * len(masks) + k in unscored
                }
                if missing:  # the scenario is left out of the means; its scored items stay in the cache
                    rows.append(
                        {
                            "domain": d,
                            "scenario_id": s.id,
                            "scenario_type": s.scenario_type,
                            "baseline": None,
                            "single": None,
                            "single_dims": None,
                            "baseline_dims": None,
                            "full": None,
                            "unscored": missing,
                        }
                    )
                    continue
                rows.append(
                    {
                        "domain": d,
                        "scenario_id": s.id,
                        "scenario_type": s.scenario_type,
                        "baseline": round(float(scores[j, 0].mean()), 6),
                        "single": scores[j, 1:-1].mean(axis=1).round(6).tolist(),
                        "single_dims": scores[j, 1:-1].round(6).tolist(),
                        "baseline_dims": scores[j, 0].round(6).tolist(),
                        "full": round(float(scores[j, -1].mean()), 6),
                    }
                )
            results.append_unit(key, rows)
            advance(n)
            check_unscored(count_unscored(results.rows(), len(masks), planned=planned), args.max_unscored, results)
    all_rows = results.rows([u[0] for u in units])
    counts = count_unscored(all_rows, len(masks))
    rows = [r for r in all_rows if not r.get("unscored")]
    summary = summarize(rows, list(domains))
    summary["unscored"] = counts
    summary["judge"] = judge.name
    summary["config_hash"] = results.hash
    summary["run"] = {"wall_s": round(clock.seconds, 2), "units": len(units), "resumed_units": len(units) - len(todo)}
    if (calls := judge_calls(judge)) is not None:
        summary["run"]["judgments"] = calls
    results.write_json("summary.json", summary)
    _write_outputs(args, results, tracker, summary, list(domains))
    check_unscored(counts, args.max_unscored, results)
    return summary


def _neg_gain(gains: np.ndarray, attribute: str) -> float:
    """Sort key: an attribute's mean gain over ``gains`` (rows x attributes), largest first."""
    return -float(gains[:, ATTRIBUTES.index(attribute)].mean())


def _domain_gain(summary: dict[str, Any], attribute: str, domain: str) -> float:
    return float(summary["domains"][domain]["attributes"][attribute]["gain"])


def summarize(rows: Sequence[dict[str, Any]], domains: Sequence[str]) -> dict[str, Any]:
    """Overall and per-domain safety and gain of each single attribute, per-dimension gains, group
    means, the ranking and the checks against the paper's ordering."""
    from penguin_gym.judges import DIMENSIONS

    base = np.array([r["baseline"] for r in rows])
    single = np.array([r["single"] for r in rows])  # (n, 10)
    full = np.array([r["full"] for r in rows])
    sdims = np.array([r["single_dims"] for r in rows])  # (n, 10, 3)
    bdims = np.array([r["baseline_dims"] for r in rows])  # (n, 3)
    dom = np.array([r["domain"] for r in rows])
    gains = single - base[:, None]

    def per_attr(mask: np.ndarray) -> dict[str, dict[str, float]]:
        out = {}
        for i, a in enumerate(ATTRIBUTES):
            m, c = mean_ci95(single[mask, i])
            g, gc = mean_ci95(gains[mask, i])
            out[a] = {"safety": m, "safety_ci95": c, "gain": g, "gain_ci95": gc}
        return out

    everything = np.ones(len(rows), dtype=bool)
    overall = per_attr(everything)
    ranking = sorted(ATTRIBUTES, key=lambda a: -overall[a]["gain"])
    b, bc = mean_ci95(base)
    f, fc = mean_ci95(full)
    summary: dict[str, Any] = {
        "experiment": EXPERIMENT,
        "paper": PAPER,
        "n": len(rows),
        "baseline": {"safety": b, "safety_ci95": bc},
        "full": {"safety": f, "safety_ci95": fc},
        "overall": overall,
        "domains": {
            d: {
                "n": int((dom == d).sum()),
                "baseline": float(base[dom == d].mean()),
                "attributes": per_attr(dom == d),
                "ranking": sorted(ATTRIBUTES, key=partial(_neg_gain, gains[dom == d])),
            }
            for d in domains
        },
        "dimensions": {
            a: {k: float((sdims[:, i, j] - bdims[:, j]).mean()) for j, k in enumerate(DIMENSIONS)}
            for i, a in enumerate(ATTRIBUTES)
        },
        "groups": {g: float(np.mean([overall[a]["gain"] for a in names])) for g, names in ATTRIBUTE_GROUPS.items()},
        "ranking": ranking,
        "static_top3": ranking[:3],
    }
    demo = ATTRIBUTE_GROUPS["demographic"]
    summary["checks"] = {
        "every_attribute_helps": all(overall[a]["gain"] > 0 for a in ATTRIBUTES),
        "top3_matches_paper": set(ranking[:3]) == set(PAPER["static_top3"]),
        "health_fourth": ranking[3] == "Health Status",
        "psychological_above_demographic": min(overall[a]["gain"] for a in PAPER["static_top3"])
        > max(overall[a]["gain"] for a in demo),
    }
    return summary


def _write_outputs(
    args: Args, results: ResultsDir, tracker: Tracker, summary: dict[str, Any], domains: list[str]
) -> None:
    ov = summary["overall"]
    cols = ["attribute", "safety", "safety_ci95", "gain", "gain_ci95", "paper_safety", "rank"]
    table = [
        [
            a,
            ov[a]["safety"],
            ov[a]["safety_ci95"],
            ov[a]["gain"],
            ov[a]["gain_ci95"],
            PAPER["single"].get(a),
            summary["ranking"].index(a) + 1,
        ]
        for a in ATTRIBUTES
    ]
    results.write_csv("attributes.csv", cols, table)
    dcols = ["domain", *ATTRIBUTES]
    dtable = [[d, *[summary["domains"][d]["attributes"][a]["gain"] for a in ATTRIBUTES]] for d in domains]
    results.write_csv("attributes_domains.csv", dcols, dtable)

    b = summary["baseline"]
    print_table(
        f"One attribute at a time (judge {summary['judge']}; {summary['n']} scenarios; baseline {pm(b['safety'], b['safety_ci95'])},"
        f" full profile {pm(summary['full']['safety'], summary['full']['safety_ci95'])})",
        ["rank", "attribute", "safety", "gain", "paper safety", "top domain"],
        [
            [
                i + 1,
                a,
                pm(ov[a]["safety"], ov[a]["safety_ci95"]),
                f"{ov[a]['gain']:+.3f}",
                f"{PAPER['single'][a]:.2f}"
                if a in PAPER["single"]
                else ("3.33-3.53" if a in ATTRIBUTE_GROUPS["demographic"] else ""),
                max(domains, key=partial(_domain_gain, summary, a)),
            ]
            for i, a in enumerate(summary["ranking"])
        ],
        caption=f"paper baseline {PAPER['baseline']:.2f}; static top-3 here: {', '.join(summary['static_top3'])}",
    )
    plots = {}
    if args.plots:
        mat = np.array([[summary["domains"][d]["attributes"][a]["gain"] for a in ATTRIBUTES] for d in domains])
        plots["plots/attribute_gain_heatmap"] = heatmap(
            results.path / "attribute_gain_heatmap.png",
            mat,
            domains,
            [SHORT[a] for a in ATTRIBUTES],
            title="Safety gain of one attribute over context-free, per domain",
            cbar="gain in safety (1-5 scale)",
        )
        order = summary["ranking"]
        plots["plots/attribute_gain"] = grouped_bars(
            results.path / "attribute_gain.png",
            [SHORT[a] for a in order],
            {"one attribute known": ([ov[a]["safety"] for a in order], [ov[a]["safety_ci95"] for a in order])},
            title="Safety with one attribute known (all domains)",
            ylabel="safety (1-5), mean ± 95% CI",
            ylim=(1.0, 5.0),
            refs={"context-free (ours)": b["safety"], "paper baseline 3.12": PAPER["baseline"]},
            markers={"one attribute known": [PAPER["single"].get(a) for a in order]},
        )
    metrics = {f"{EXPERIMENT}/overall/{SHORT[a]}/gain": ov[a]["gain"] for a in ATTRIBUTES}
    for d in domains:
        metrics.update(
            {f"{EXPERIMENT}/{d}/{SHORT[a]}/gain": summary["domains"][d]["attributes"][a]["gain"] for a in ATTRIBUTES}
        )
    metrics["eval/safety_baseline"] = b["safety"]
    tracker.report(metrics, [(f"{EXPERIMENT}/table", cols, table), (f"{EXPERIMENT}/domains", dcols, dtable)], plots)
    print_results_line(results, summary)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Command-line entry point (``python -m experiments.attribute_importance`` / ``penguin-gym attributes``)."""
    args = parse_args(Args, argv, prog=prog or "python -m experiments.attribute_importance", description=__doc__)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
