"""Two agents on the same users (``penguin-gym compare A B``): is one of them better, or is it noise?

Both agents run through the leaderboard's machinery (``experiments.leaderboard``: the same options,
the same users of each domain's test split, a results folder that resumes), then each metric is
compared on the users both met, per domain and overall (``agents.stats.paired``): the mean difference
``A - B``, its 95% t interval, the paired t test's p value and the probability of improvement
``P(A > B)`` over users. The verdict is "A better" / "B better" when the interval excludes 0, else "no
significant difference". Metrics: net reward (the leaderboard's primary one), safety, questions per
episode, and critical misses (high-risk users answered without the revealing question; fewer is
better; compared on the high-risk users).

Run:
    penguin-gym compare greedy mcts --domains Health --max-scenarios 400
    penguin-gym compare static my_agent.py:MyAgent --question-cost 0.1
    penguin-gym compare greedy mcts --from runs/leaderboard-aaa          # agents of a finished folder
    penguin-gym compare greedy greedy --from runs/leaderboard-aaa runs/leaderboard-bbb  # A from the first

Give A and B before the options (``--domains`` and ``--agents`` take several values).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.stats import Paired
from experiments import leaderboard
from experiments.leaderboard import args_from
from experiments.loading import agent_label
from experiments.published import Folder, check_comparable, load_folder
from experiments.ranking import Pairs
from penguin_gym.error import ConfigError, PenguinError


@dataclass(frozen=True)
class Metric:
    """A compared metric: its name, the per-episode value, whether higher is better, and which users it
    is compared on (``None``: all)."""

    name: str
    value: Callable[[Mapping[str, Any]], float]
    higher_is_better: bool
    users: Callable[[Mapping[str, Any]], bool] | None = None


METRICS = (
    Metric("net reward", lambda r: float(r["net_reward"]), True),
    Metric("safety", lambda r: float(r["safety"]), True),
    Metric("questions", lambda r: float(r["num_questions"]), False),
    Metric("critical misses", lambda r: float(bool(r["missed_high_risk"])), False, lambda r: bool(r["high_risk"])),
)


def _p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def verdict_text(p: Paired, metric: Metric, a: str, b: str) -> str:
    """``"A better"``, ``"B better"`` or ``"no significant difference"`` (for questions: who asks more)."""
    if p.verdict == "tied":
        return "no significant difference"
    a_higher = p.verdict == "better"
    if metric.name == "questions":
        return f"{a if a_higher else b} asks more"
    return f"{a if a_higher == metric.higher_is_better else b} better"


def line(p: Paired, metric: Metric, a: str, b: str) -> str:
    """``A - B = d ± ci (p = ..., P(A > B) = ...): verdict``."""
    ci = "n/a" if math.isnan(p.ci95) else f"{p.ci95:.3f}"
    return (
        f"{a} - {b} = {p.diff:+.3f} ± {ci} (p {_p(p.p_value)}, P({a} > {b}) = {p.prob_improvement:.2f}): "
        f"{verdict_text(p, metric, a, b)}"
    )


def compare(
    rows: Sequence[Mapping[str, Any]], a: str, b: str, domains: Sequence[str], *, names: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The paired comparison of agents ``a`` and ``b`` (row labels) per domain and overall; prints it and
    returns ``{scope: {metric: Paired.to_dict() | None}}`` (scope: a domain or ``"overall"``).

    Raises:
        PenguinError: when the two agents met no common user.
    """
    shown_a, shown_b = names or (a, b)
    pairs = Pairs(rows)
    if not pairs.common(a, b):
        raise PenguinError(
            f"{shown_a} and {shown_b} met no common users (nothing to pair); run them on the same data, split, "
            "--max-scenarios and --seed"
        )
    out: dict[str, Any] = {}
    scopes: list[str | None] = [*(d for d in domains if pairs.common(a, b, d)), None]
    for d in scopes:
        scope = d or "overall"
        users = pairs.common(a, b, d)
        print(f"{scope} ({len(users)} users both met):")
        out[scope] = {}
        for m in METRICS:
            p = pairs.paired(a, b, m.value, name=m.name, domain=d, users=m.users)
            out[scope][m.name] = None if p is None else p.to_dict()
            if p is None:
                print(f"  {m.name}: no common users")
                continue
            extra = ""
            if m.name == "critical misses":
                extra = (
                    f"{shown_a} {round(p.mean_a * p.n)}, {shown_b} {round(p.mean_b * p.n)} of {p.n} high-risk users; "
                )
            print(f"  {m.name}: {extra}{line(p, m, shown_a, shown_b)}")
    return out


def _find(folder: Folder, label: str, which: str) -> None:
    if label not in folder.agents:
        raise ConfigError(f"{which} {label!r} is not an agent of {folder.path}; it has {folder.agents}")


def from_folders(a: str, b: str, folders: Sequence[str]) -> dict[str, Any]:
    """``compare A B --from F1 [F2]``: A and B from one finished folder, or A from F1 and B from F2."""
    if not 1 <= len(folders) <= 2:
        raise ConfigError(f"--from takes one or two results folders, got {len(folders)}")
    loaded = [load_folder(f) for f in folders]
    fa, fb = loaded[0], loaded[-1]
    _find(fa, a, "A")
    _find(fb, b, "B")
    if fa is fb:
        if a == b:
            raise ConfigError(f"A and B are both {a!r} of {fa.path}: compare two different agents")
        rows = [r for r in fa.rows if r["agent"] in (a, b)]
        ka, kb = a, b
    else:
        check_comparable((str(fa.path), fa.summary), (str(fb.path), fb.summary))
        ka, kb = f"A:{a}", f"B:{b}"
        rows = [{**r, "agent": ka} for r in fa.rows if r["agent"] == a]
        rows += [{**r, "agent": kb} for r in fb.rows if r["agent"] == b]
    from penguin_gym.data import DOMAINS

    domains = [d for d in DOMAINS if d in set(fa.summary.get("domains", [])) | set(fb.summary.get("domains", []))]
    s = fa.summary
    print(
        f"Paired comparison: {a} vs {b} (judge {s.get('judge')}, question cost {s.get('question_cost')}; "
        f"{' and '.join(str(f.path) for f in loaded)})"
    )
    return compare(rows, ka, kb, domains, names=(a, b))


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Command-line entry point (``penguin-gym compare A B [options]``)."""
    from experiments.args import build_parser

    parser = build_parser(leaderboard.Args, prog=prog or "python -m experiments.compare", description=__doc__)
    parser.add_argument(
        "a", metavar="A", help="an agent: a make_agent name or path/to/file.py:Class (a label with --from)"
    )
    parser.add_argument("b", metavar="B", help="the other agent")
    parser.add_argument(
        "--from",
        dest="from_folders",
        nargs="+",
        metavar="FOLDER",
        default=None,
        help="compare agents of finished leaderboard folders instead of running them: one folder (A and B in it) "
        "or two (A from the first, B from the second)",
    )
    ns = parser.parse_args(None if argv is None else list(argv))
    if ns.from_folders:
        from_folders(ns.a, ns.b, ns.from_folders)
        return 0
    args = args_from(parser, ns, agents=(ns.a, ns.b), ppo_path=ns.ppo_path)
    summary, results, rows = leaderboard.compute(args, report=False)
    la, lb = agent_label(ns.a), agent_label(ns.b)
    print(
        f"Paired comparison: {la} vs {lb} (judge {summary['judge']}, question cost {args.question_cost:g}; "
        f"results {results.path})"
    )
    compare(rows, la, lb, summary["domains"])
    results.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
