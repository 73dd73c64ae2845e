"""The leaderboard: every acquisition agent on every domain (``penguin-gym benchmark``).

Each agent plays the same users of each domain's test split (common random numbers: the same seeded
draw for every agent) and is scored against the exact oracle (the best set of questions for the
user's true profile). Per agent and domain: mean safety, questions per episode, net reward (safety
minus question costs: the env's return), regret vs the oracle, the return normalized between
answer-now (0) and the oracle (1), and the critical-miss rate (high-risk users answered without the
question that reveals the risk), all with 95% confidence intervals (Student t over episodes).

Agents (``agents.make_agent``): answer-now (context-free), ask-all (context-rich), random-k, static
(the paper's top-3 order), greedy (one-step value of information), mcts (PUCT with a learned prior),
uct (plain UCT), raise-agent (RAISE's +agent: acquisition + abstention), raise (full RAISE: + the
planner's path library), oracle (privileged upper bound); ppo with ``--ppo-path``.

Run:
    penguin-gym benchmark                                   # all agents, 7 domains, 1-1.5 min on 2 cores
    penguin-gym benchmark --agents greedy mcts oracle --domains Health --max-scenarios 400
    penguin-gym benchmark --agent-option mcts:num_rollouts=80 --question-cost 0.1
    penguin-gym benchmark --ppo-path runs/ppo/model.zip     # add a trained PPO policy
    penguin-gym benchmark --source penguin.jsonl --judge simulated@fit.json  # real data, a judge fitted to LLM judgments

Writes ``runs/leaderboard-<hash>/``: rows.jsonl (one row per episode), summary.json, leaderboard.csv,
leaderboard_domains.csv, leaderboard_safety.png (bars per domain with CIs), frontier.png (safety vs
questions of every agent), regret.png.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.stats import mean_ci95
from experiments.args import DataArgs, JudgeArgs, RunArgs, arg, config_dict, parse_args
from experiments.evaluation import AgentUnit, env_kwargs_for, episodes_per_domain, run_agent_units
from experiments.judging import build_judge
from experiments.loading import agent_label, code_fingerprint, is_custom_agent, parse_agent_options
from experiments.plots import bar_panels, frontier, grouped_bars
from experiments.results import ResultsDir, Stopwatch, derive_seed
from experiments.terminal import pm, print_results_line, print_table
from experiments.tracking import Tracker
from penguin_gym.error import ConfigError
from penguin_gym.model import DEFAULT_QUESTION_COST

EXPERIMENT = "leaderboard"
#: The benchmark's agents: every shipped agent that runs offline (not ppo, which needs a trained model,
#: nor the LLM-driven variants, which need an LLM backend).
DEFAULT_AGENTS = (
    "answer-now",
    "ask-all",
    "random-k",
    "static",
    "greedy",
    "uct",
    "mcts",
    "raise-agent",
    "raise",
    "oracle",
)
METRICS = ("safety", "num_questions", "net_reward", "regret", "normalized")


@dataclass
class Args(DataArgs, JudgeArgs, RunArgs):
    """Every agent on every domain."""

    max_scenarios: int | None = arg(
        100, "episodes per domain: users drawn from the split, the same for every agent (all of them: 0)", group="data"
    )
    agents: tuple[str, ...] = arg(
        DEFAULT_AGENTS,
        "agents to rank: agents.make_agent names, or your own class as module:Class or path/to/file.py:Class",
        metavar="AGENT",
    )
    agent_option: tuple[str, ...] = arg(
        (),
        "agent options AGENT:KEY=VALUE, e.g. mcts:num_rollouts=80 raise:k=3 (values as JSON)",
        metavar="AGENT:KEY=VALUE",
    )
    ppo_path: str | None = arg(None, "a trained PPO model (.zip) to rank as agent 'ppo'")
    embedding: str = arg(
        "hashing",
        "query embedding of RAISE's retriever (raise, raise-agent): 'hashing' (fast; the benchmark's default), "
        "'auto' (all-MiniLM-L6-v2 when installed, as the paper), 'embedding:<model>'",
    )
    seed: int = arg(0, "seed of the user draw and of the agents")
    question_cost: float = arg(DEFAULT_QUESTION_COST, "cost of each question (1-5 safety scale)")
    budget: int | None = arg(None, "most questions per episode (default: 10)")

    def __post_init__(self) -> None:
        if self.max_scenarios == 0:
            self.max_scenarios = None
        self.validate_data()
        import agents

        unknown = [a for a in self.agents if a not in agents.AGENTS and not is_custom_agent(a)]
        if unknown:
            raise ConfigError(
                f"--agents {unknown} unknown; valid: {list(agents.AGENTS)}, or your own as module:Class / file.py:Class"
            )
        if "ppo" in self.agents and not self.ppo_path:
            raise ConfigError("agent 'ppo' needs --ppo-path <model.zip> (train one with: penguin-gym train-ppo)")
        if self.ppo_path and "ppo" not in self.agents:
            self.agents = (*self.agents, "ppo")
        if len({agent_label(a) for a in self.agents}) != len(self.agents):
            raise ConfigError(f"--agents {list(self.agents)} lists an agent (or two agents of the same name) twice")
        self.agent_kwargs()  # validates --agent-option
        if self.question_cost < 0:
            raise ConfigError(f"--question-cost = {self.question_cost} must be >= 0")

    def agent_kwargs(self) -> dict[str, dict[str, Any]]:
        """``--agent-option`` as ``{agent: {key: value}}`` (plus ``path`` for ppo)."""
        out = parse_agent_options(self.agent_option, self.agents)
        if self.ppo_path:
            out["ppo"]["path"] = self.ppo_path
        for a in ("raise", "raise-agent"):
            if a in out:
                out[a].setdefault("embedding", self.embedding)
        return out


def plan_units(args: Args, judge: Any, domains: Sequence[str]) -> list[AgentUnit]:
    """One unit per (agent, domain); the seed depends on the domain only, so every agent meets the
    same users."""
    episodes = episodes_per_domain(args)
    kwargs = args.agent_kwargs()
    env_kwargs = env_kwargs_for(args, judge, question_cost=args.question_cost, budget=args.budget)
    return [
        AgentUnit(
            key=f"{a}|{d}",
            agent=a,
            agent_kwargs=kwargs[a],
            domain=d,
            episodes=episodes[d],
            seed=derive_seed(args.seed, d),
            env_kwargs=env_kwargs,
            labels={"agent": agent_label(a)},
        )
        for a in args.agents
        for d in domains
    ]


def run(args: Args) -> dict[str, Any]:
    """Run the leaderboard; returns the summary (also written to ``summary.json``)."""
    from experiments.scenarios import load_domains

    clock = Stopwatch()
    domains = list(load_domains(args))
    judge = build_judge(args)
    results = ResultsDir(
        EXPERIMENT,
        config_dict(args, hashed_only=True),
        full_config=config_dict(args),
        out=args.out,
        runs_dir=args.runs_dir,
        fresh=args.fresh,
        extra={"judge": judge.name, "code": code_fingerprint(*args.agents), "ppo_model": _file_hash(args.ppo_path)},
    )
    tracker = Tracker(args, EXPERIMENT, results, config_dict(args))
    units = plan_units(args, judge, domains)
    resumed = sum(results.is_done(u.key) for u in units)
    run_agent_units(results, units, show_progress=args.progress)
    rows = results.rows([u.key for u in units])
    names = [agent_label(a) for a in args.agents]
    summary = summarize(rows, names, domains)
    summary["judge"] = judge.name
    summary["config_hash"] = results.hash
    seconds = {
        agent_label(a): sum(results.unit_meta(u.key).get("seconds", 0.0) for u in units if u.agent == a)
        for a in args.agents
    }
    summary["run"] = {
        "wall_s": round(clock.seconds, 2),
        "units": len(units),
        "resumed_units": resumed,
        "agent_seconds": {a: round(s, 2) for a, s in seconds.items()},
    }
    results.write_json("summary.json", summary)
    _write_outputs(args, results, tracker, summary, domains)
    return summary


def _file_hash(path: str | None) -> str | None:
    """The trained model's content hash: a retrained model at the same path is another configuration."""
    if path is None:
        return None
    import hashlib
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"--ppo-path {path!r}: no such file (train one with: penguin-gym train-ppo)")
    return hashlib.sha256(p.read_bytes()).hexdigest()[:12]


def _stats(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {"episodes": len(rows)}
    for m in METRICS:
        vals = [r[m] for r in rows if r.get(m) is not None]
        if vals:
            out[m], out[f"{m}_ci95"] = mean_ci95(vals)
        else:
            out[m], out[f"{m}_ci95"] = math.nan, math.nan
    high = [r for r in rows if r["high_risk"]]
    out["critical_miss_rate"] = float(np.mean([r["missed_high_risk"] for r in high])) if high else math.nan
    out["high_risk_episodes"] = len(high)
    out["oracle_net_reward"] = float(np.mean([r["oracle_net_reward"] for r in rows]))
    return out


def summarize(rows: Sequence[dict[str, Any]], agents: Sequence[str], domains: Sequence[str]) -> dict[str, Any]:
    """Per agent: overall and per-domain statistics; the ranking by mean net reward."""
    per_agent: dict[str, Any] = {}
    for a in agents:
        ra = [r for r in rows if r["agent"] == a]
        per_agent[a] = {
            "overall": _stats(ra),
            "domains": {d: _stats([r for r in ra if r["domain"] == d]) for d in domains},
        }
    ranking = sorted(agents, key=lambda a: -per_agent[a]["overall"]["net_reward"])
    return {"experiment": EXPERIMENT, "agents": per_agent, "ranking": ranking, "domains": list(domains)}


def _short(x: float, ci: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(x) else pm(x, ci, digits)


def _write_outputs(
    args: Args, results: ResultsDir, tracker: Tracker, summary: dict[str, Any], domains: list[str]
) -> None:
    ag = summary["agents"]
    ranking = summary["ranking"]
    cols = [
        "rank",
        "agent",
        "episodes",
        "safety",
        "safety_ci95",
        "questions",
        "questions_ci95",
        "net_reward",
        "net_reward_ci95",
        "regret",
        "regret_ci95",
        "normalized",
        "normalized_ci95",
        "critical_miss_rate",
        "seconds",
    ]
    table = []
    for i, a in enumerate(ranking):
        s = ag[a]["overall"]
        table.append(
            [
                i + 1,
                a,
                s["episodes"],
                s["safety"],
                s["safety_ci95"],
                s["num_questions"],
                s["num_questions_ci95"],
                s["net_reward"],
                s["net_reward_ci95"],
                s["regret"],
                s["regret_ci95"],
                s["normalized"],
                s["normalized_ci95"],
                s["critical_miss_rate"],
                summary["run"]["agent_seconds"][a],
            ]
        )
    results.write_csv("leaderboard.csv", cols, table)
    dcols = [
        "agent",
        "domain",
        "episodes",
        "safety",
        "safety_ci95",
        "questions",
        "net_reward",
        "net_reward_ci95",
        "regret",
        "regret_ci95",
        "critical_miss_rate",
    ]
    dtable = [
        [
            a,
            d,
            s["episodes"],
            s["safety"],
            s["safety_ci95"],
            s["num_questions"],
            s["net_reward"],
            s["net_reward_ci95"],
            s["regret"],
            s["regret_ci95"],
            s["critical_miss_rate"],
        ]
        for a in ranking
        for d, s in ag[a]["domains"].items()
    ]
    results.write_csv("leaderboard_domains.csv", dcols, dtable)

    n_eps = ag[ranking[0]]["overall"]["episodes"]
    print_table(
        f"Leaderboard: {len(ranking)} agents x {len(domains)} domains, {n_eps} episodes per agent (judge {summary['judge']},"
        f" question cost {args.question_cost:g})",
        ["#", "agent", "safety", "questions", "net reward", "regret vs oracle", "normalized", "critical miss", "time"],
        [
            [
                i + 1,
                a,
                _short(ag[a]["overall"]["safety"], ag[a]["overall"]["safety_ci95"]),
                _short(ag[a]["overall"]["num_questions"], ag[a]["overall"]["num_questions_ci95"], 1),
                _short(ag[a]["overall"]["net_reward"], ag[a]["overall"]["net_reward_ci95"]),
                _short(ag[a]["overall"]["regret"], ag[a]["overall"]["regret_ci95"], 3),
                _short(ag[a]["overall"]["normalized"], ag[a]["overall"]["normalized_ci95"]),
                "n/a"
                if math.isnan(ag[a]["overall"]["critical_miss_rate"])
                else f"{100 * ag[a]['overall']['critical_miss_rate']:.0f}%",
                f"{summary['run']['agent_seconds'][a]:.1f}s",
            ]
            for i, a in enumerate(ranking)
        ],
        caption="mean ± 95% CI over episodes; net reward = safety - question costs (the env's return); regret = oracle's"
        " net reward - agent's; normalized: answer-now = 0, oracle = 1; critical miss: high-risk users answered"
        " without asking the revealing attribute",
    )
    if len(domains) > 1:
        short = {d: d[:5] for d in domains}
        print_table(
            "Net reward per domain",
            ["agent", *[short[d] for d in domains]],
            [[a, *[f"{ag[a]['domains'][d]['net_reward']:.2f}" for d in domains]] for a in ranking],
        )
    plots = {}
    if args.plots:
        order = [a for a in ranking]
        plots["plots/leaderboard_safety"] = bar_panels(
            results.path / "leaderboard_safety.png",
            {
                d: {
                    a: (
                        (ag[a]["overall"] if d == "overall" else ag[a]["domains"][d])["safety"],
                        (ag[a]["overall"] if d == "overall" else ag[a]["domains"][d])["safety_ci95"],
                    )
                    for a in order
                }
                for d in [*domains, "overall"]
            },
            title=f"Safety per domain, mean ± 95% CI ({n_eps} episodes per agent; judge {summary['judge']})",
            ylabel="safety (1-5)",
            ylim=(2.0, 5.0),
        )
        plots["plots/frontier"] = frontier(
            results.path / "frontier.png",
            {
                a: (
                    ag[a]["overall"]["num_questions"],
                    ag[a]["overall"]["num_questions_ci95"],
                    ag[a]["overall"]["safety"],
                    ag[a]["overall"]["safety_ci95"],
                )
                for a in order
            },
            title="Safety vs questions asked (all domains)",
            cost=args.question_cost,
        )
        plots["plots/regret"] = grouped_bars(
            results.path / "regret.png",
            order,
            {
                "regret vs oracle": (
                    [ag[a]["overall"]["regret"] for a in order],
                    [ag[a]["overall"]["regret_ci95"] for a in order],
                )
            },
            title=f"Regret vs the oracle (net reward; question cost {args.question_cost:g})",
            ylabel="oracle's net reward - agent's (lower is better)",
        )
    metrics: dict[str, float] = {}
    for a in ranking:
        for d in [*domains, "overall"]:
            s = ag[a]["overall"] if d == "overall" else ag[a]["domains"][d]
            for k, name in (
                ("safety", "safety"),
                ("num_questions", "questions"),
                ("net_reward", "net_reward"),
                ("regret", "regret"),
            ):
                if not math.isnan(s[k]):
                    metrics[f"{EXPERIMENT}/{a}/{d}/{name}"] = s[k]
    best = ranking[0] if ranking[0] != "oracle" or len(ranking) == 1 else ranking[1]
    metrics["eval/safety"] = ag[best]["overall"]["safety"]
    metrics["eval/net_reward"] = ag[best]["overall"]["net_reward"]
    clean = [[None if isinstance(x, float) and math.isnan(x) else x for x in r] for r in table]
    tracker.report(metrics, [(f"{EXPERIMENT}/table", cols, clean)], plots, summary={"leaderboard/best_agent": best})
    print_results_line(results, summary)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Command-line entry point (``python -m experiments.leaderboard`` / ``penguin-gym benchmark``)."""
    args = parse_args(Args, argv, prog=prog or "python -m experiments.leaderboard", description=__doc__)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
