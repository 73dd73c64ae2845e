"""The leaderboard: every acquisition agent on every domain (``penguin-gym benchmark``).

Each agent plays the same users of each domain's test split (common random numbers: the same seeded
draw for every agent) and is scored against the exact oracle (the best set of questions for the
user's true profile). Per agent and domain: mean safety, questions per episode, net reward (safety
minus question costs: the env's return), regret vs the oracle, the return normalized between
answer-now (0) and the oracle (1), each with its 95% confidence interval (Student t over episodes,
``agents.stats.mean_ci``), and the critical-miss rate (high-risk users answered without the question
that reveals the risk) with its 95% Wilson interval (``agents.stats.rate_ci``).

Agents are compared on the users they both met, never by overlapping two unpaired intervals
(``agents.stats.paired``): the best non-privileged agent by mean net reward is the *reference*, and
every agent gets its paired difference of net reward to it ("vs best"). Ranks have ties: an agent's
rank is 1 + the number of agents whose paired net-reward interval against it lies above 0, so agents
whose paired 95% interval includes 0 share a rank ("=2"). Privileged agents (the oracle, mcts in mode
"true": they see the user's true profile) are not ranked; they are listed after the ranked agents as
bounds.

The safety-critical view (``--miss-penalty P``): a critical miss, a high-risk user answered without
the question that reveals the risk, costs this much net reward in the safety-penalized ranking; 0
turns the view off. Per episode ``penalized = net_reward - P * missed_high_risk``; its mean, interval
and a second tie-ranking are printed in a second table. The primary column and ranking stay net
reward.

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
    penguin-gym leaderboard --from runs/leaderboard-aaa runs/leaderboard-bbb  # merge finished runs, rerun nothing

Writes ``runs/leaderboard-<hash>/``: rows.jsonl (one row per episode), summary.json, leaderboard.csv,
leaderboard_domains.csv, leaderboard_safety.png (bars per domain with CIs), frontier.png (safety vs
questions of every agent), regret.png. ``--from FOLDER ...`` reads finished folders instead (their
summary.json and rows.jsonl, checked comparable), merges their agents (a label in two folders becomes
``label@<folder name>``) and prints the same tables, writing nothing into them (``--out DIR``: a merged
summary.json there).

summary.json (``schema`` "penguin-gym/leaderboard", ``schema_version`` 1; a reader checks both): its
fields are documented in ``experiments.ranking`` (``summarize`` writes the statistics; this module the
header and ``run``; ``experiments.published`` reads and merges finished folders).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.args import DataArgs, JudgeArgs, RunArgs, arg, build_parser, config_dict
from experiments.evaluation import AgentUnit, env_kwargs_for, episodes_per_domain, run_agent_units
from experiments.judging import build_judge, closing_judges
from experiments.loading import agent_label, code_fingerprint, is_custom_agent, parse_agent_options
from experiments.plots import bar_panels, frontier, grouped_bars
from experiments.published import COMPARABLE as COMPARABLE
from experiments.published import Folder as Folder
from experiments.published import check_comparable as check_comparable
from experiments.published import identity as identity
from experiments.published import load_folder, merge
from experiments.ranking import EXPERIMENT, SCHEMA, SCHEMA_VERSION, summarize
from experiments.ranking import METRICS as METRICS
from experiments.ranking import Pairs as Pairs
from experiments.ranking import penalized as penalized
from experiments.results import ResultsDir, Stopwatch, derive_seed
from experiments.terminal import pm, print_results_line, print_table
from experiments.tracking import Tracker
from penguin_gym.error import ConfigError
from penguin_gym.model import DEFAULT_QUESTION_COST
from penguin_gym.registration import TRACKS
from penguin_gym.users.params import track_question_cost

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
    track: str = arg(
        "faithful",
        "'faithful' (the paper's users: every question answered truly, one cost) or 'guarded' (users who may "
        "decline, hedge or leave; Penguin-<Domain>-Guarded-v0; costs by intrusiveness)",
        choices=TRACKS,
    )
    question_cost: float = arg(
        DEFAULT_QUESTION_COST,
        "cost of each question (1-5 safety scale); on the guarded track the base cost, times each attribute's "
        "intrusiveness",
    )
    budget: int | None = arg(None, "most questions per episode (default: 10)")
    miss_penalty: float = arg(
        1.0,
        "the safety-penalized ranking: a critical miss, a high-risk user answered without the question that "
        "reveals the risk, costs this much net reward (0 turns the view off)",
        hashed=False,
    )
    max_fallback_rate: float | None = arg(
        None,
        "LLM-driven agents (raise, raise-agent with an LLM backend): stop with an error when more than this "
        "fraction of an agent's LLM replies on a domain fell back to its offline modules (that domain's rows "
        "are kept; default: no limit)",
        hashed=False,
    )

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
        if not self.miss_penalty >= 0:
            raise ConfigError(f"--miss-penalty = {self.miss_penalty} must be >= 0 (0 turns the view off)")
        if self.max_fallback_rate is not None and not 0.0 <= self.max_fallback_rate <= 1.0:
            raise ConfigError(f"--max-fallback-rate = {self.max_fallback_rate} must be a fraction in [0, 1]")

    def agent_kwargs(self) -> dict[str, dict[str, Any]]:
        """``--agent-option`` as ``{agent: {key: value}}`` (plus ``path`` for ppo)."""
        out = parse_agent_options(self.agent_option, self.agents)
        if self.ppo_path:
            out["ppo"]["path"] = self.ppo_path
        for a in ("raise", "raise-agent"):
            if a in out:
                out[a].setdefault("embedding", self.embedding)
        return out


def _hashed_config(args: Args) -> dict[str, Any]:
    """The config that names the results folder; the faithful track leaves ``track`` out, so folders made
    before the guarded track existed are found again."""
    config = config_dict(args, hashed_only=True)
    if config.get("track") == "faithful":
        del config["track"]
    return config


def plan_units(args: Args, judge: Any, domains: Sequence[str]) -> list[AgentUnit]:
    """One unit per (agent, domain); the seed depends on the domain only, so every agent meets the
    same users."""
    episodes = episodes_per_domain(args)
    kwargs = args.agent_kwargs()
    env_kwargs = env_kwargs_for(
        args, judge, question_cost=track_question_cost(args.track, args.question_cost), budget=args.budget
    )
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
            track=args.track,
        )
        for a in args.agents
        for d in domains
    ]


def run(args: Args) -> dict[str, Any]:
    """Run the leaderboard; returns the summary (also written to ``summary.json``)."""
    with closing_judges():  # an LLM judge's connections close however the run ends
        return _run(args)


def _run(args: Args) -> dict[str, Any]:
    summary, results, _ = compute(args, report=True)
    return summary


def compute(args: Args, *, report: bool = True) -> tuple[dict[str, Any], ResultsDir, list[dict[str, Any]]]:
    """Run (or resume) the units and write ``summary.json``; with ``report``, also the CSVs, the tables,
    the plots and W&B. Returns the summary, the results folder and its rows (``compare`` reads them)."""
    from experiments.scenarios import load_domains

    clock = Stopwatch()
    domains = list(load_domains(args))
    judge = build_judge(args)
    results = ResultsDir(
        EXPERIMENT,
        _hashed_config(args),
        full_config=config_dict(args),
        out=args.out,
        runs_dir=args.runs_dir,
        fresh=args.fresh,
        extra={"judge": judge.name, "code": code_fingerprint(*args.agents), "ppo_model": _file_hash(args.ppo_path)},
    )
    tracker = Tracker(args, EXPERIMENT, results, config_dict(args)) if report else None
    units = plan_units(args, judge, domains)
    resumed = sum(results.is_done(u.key) for u in units)
    run_agent_units(results, units, show_progress=args.progress, max_fallback_rate=args.max_fallback_rate)
    rows = results.rows([u.key for u in units])
    kwargs = args.agent_kwargs()
    infos = {
        agent_label(a): agent_info(a, kwargs[a], [results.unit_meta(u.key) for u in units if u.agent == a])
        for a in args.agents
    }
    summary = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        **_header(args, judge.name, domains),
        "config_hash": results.hash,
        **summarize(rows, infos, domains, miss_penalty=args.miss_penalty),
    }
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
    if tracker is not None:
        _write_outputs(args, results, tracker, summary, domains)
    return summary, results, rows


def _header(args: Args, judge: str, domains: Sequence[str]) -> dict[str, Any]:
    """What the results are of: env, judge, data, costs (the comparable fields of ``COMPARABLE``)."""
    from experiments.evaluation import episodes_per_domain
    from experiments.scenarios import load_domains

    everyone = load_domains(dataclasses.replace(args, split="all", max_scenarios=None, domains=tuple(domains)))
    sizes = {
        d: {name: len({s.user_id for s in everyone.get(d, []) if s.split == name}) for name in ("train", "test")}
        for d in domains
    }
    played = {d: len(v) for d, v in load_domains(args).items()}
    episodes = episodes_per_domain(args)
    return {
        "experiment": EXPERIMENT,
        "env": _env_header(args.track, domains),
        "judge": judge,
        "data": {
            "source": str(args.source),
            "split": args.split,
            "n_per_domain": args.n_per_domain,
            "data_seed": args.data_seed,
            "max_scenarios": args.max_scenarios,
            "split_sizes": sizes,
        },
        "question_cost": args.question_cost,
        "budget": args.budget,
        "seed": args.seed,
        "episodes_per_domain": {d: played[d] if episodes[d] is None else episodes[d] for d in domains},
    }


def _track_note(summary: Mapping[str, Any]) -> str:
    env = summary.get("env") or {}
    if env.get("track", "faithful") == "faithful":
        return ""
    return f" x intrusiveness; {env['track']} track, user model {env.get('user_model', {}).get('name', '?')}"


def _env_header(track: str, domains: Sequence[str]) -> dict[str, Any]:
    """summary.json's ``env``: the ids and version (and, on the guarded track, the track and user model)."""
    from penguin_gym.registration import ENV_VERSION, GUARDED_VERSION, env_id

    if track == "faithful":
        return {"ids": {d: env_id(d) for d in domains}, "version": ENV_VERSION}
    from penguin_gym.users import load_params

    user = load_params()
    return {
        "ids": {d: env_id(d, track=track) for d in domains},
        "version": GUARDED_VERSION,
        "track": track,
        "user_model": {"name": user.name, "file": user.source_file},
    }


def agent_info(spec: str, options: Mapping[str, Any], metas: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """An agent's identity in summary.json: label, spec, options, code version, privileged flag and its
    LLM usage summed over its units' meta."""
    if metas and all("privileged" in m for m in metas):
        privileged = any(bool(m["privileged"]) for m in metas)
    else:  # units written before their meta recorded it
        from agents.context import is_privileged
        from experiments.loading import make_any_agent

        privileged = is_privileged(make_any_agent(spec, **dict(options)))
    llm: dict[str, Any] | None = None
    for m in metas:
        usage = m.get("llm")
        if not usage:
            continue
        llm = llm or {"calls": 0, "fallbacks": 0, "by_reason": {}}
        llm["calls"] += int(usage.get("calls", 0))
        llm["fallbacks"] += int(usage.get("fallbacks", 0))
        for k, v in (usage.get("by_reason") or {}).items():
            llm["by_reason"][k] = llm["by_reason"].get(k, 0) + int(v)
    return {
        "label": agent_label(spec),
        "spec": spec,
        "options": json.loads(json.dumps(dict(options), default=str)),
        "code_version": code_fingerprint(spec),
        "privileged": privileged,
        "llm": llm,
    }


def _file_hash(path: str | None) -> str | None:
    """The trained model's content hash: a retrained model at the same path is another configuration."""
    if path is None:
        return None
    import hashlib

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"--ppo-path {path!r}: no such file (train one with: penguin-gym train-ppo)")
    return hashlib.sha256(p.read_bytes()).hexdigest()[:12]


# -- output ------------------------------------------------------------------------------------------
def _short(x: float | None, ci: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or math.isnan(x) else pm(x, math.nan if ci is None else ci, digits)


def miss_cell(s: Mapping[str, Any]) -> str:
    """``"24% [21-27]"``: the critical-miss rate and its Wilson interval."""
    rate = s["critical_miss_rate"]
    if rate is None or math.isnan(rate):
        return "n/a"
    return f"{100 * rate:.0f}% [{100 * s['critical_miss_low']:.0f}-{100 * s['critical_miss_high']:.0f}]"


def vs_cell(p: Mapping[str, Any] | None, digits: int = 2) -> str:
    """``"-0.01 ± 0.01 (tied)"``: a paired difference, its interval and verdict."""
    if p is None:
        return "n/a"
    if p["verdict"] == "reference":
        return "reference"
    ci = "n/a" if p["ci95"] is None or math.isnan(p["ci95"]) else f"{p['ci95']:.{digits}f}"
    return f"{p['diff']:+.{digits}f} ± {ci} ({p['verdict']})"


def _seconds(summary: Mapping[str, Any], a: str) -> float:
    return float(((summary.get("run") or {}).get("agent_seconds") or {}).get(a, math.nan))


def print_leaderboard(summary: Mapping[str, Any]) -> None:
    """The leaderboard's tables: the ranking by net reward, net reward per domain and the
    safety-penalized ranking."""
    ag = summary["agents"]
    ranking = summary["ranking"]
    domains = summary["domains"]
    ref = summary.get("reference")
    n_eps = max((ag[a]["overall"]["episodes"] for a in ranking), default=0)
    qc = summary.get("question_cost")
    print_table(
        f"Leaderboard: {len(ranking)} agents x {len(domains)} domains, {n_eps} episodes per agent (judge {summary['judge']},"
        f" question cost {qc:g}{_track_note(summary)})",
        [
            "#",
            "agent",
            "safety",
            "questions",
            "net reward",
            "regret vs oracle",
            "normalized",
            "critical miss",
            "time",
            "vs best",
        ],
        [
            [
                ag[a]["rank_label"],
                a,
                _short(ag[a]["overall"]["safety"], ag[a]["overall"]["safety_ci95"]),
                _short(ag[a]["overall"]["num_questions"], ag[a]["overall"]["num_questions_ci95"], 1),
                _short(ag[a]["overall"]["net_reward"], ag[a]["overall"]["net_reward_ci95"]),
                _short(ag[a]["overall"]["regret"], ag[a]["overall"]["regret_ci95"], 3),
                _short(ag[a]["overall"]["normalized"], ag[a]["overall"]["normalized_ci95"]),
                miss_cell(ag[a]["overall"]),
                "n/a" if math.isnan(_seconds(summary, a)) else f"{_seconds(summary, a):.1f}s",
                vs_cell((ag[a].get("vs_reference") or {}).get("overall")),
            ]
            for a in ranking
        ],
        caption="mean ± 95% CI over episodes (Student t); net reward = safety - question costs (the env's return);"
        " regret = oracle's net reward - agent's; normalized: answer-now = 0, oracle = 1; critical miss: high-risk"
        " users answered without asking the revealing attribute, rate [95% Wilson interval]; vs best: paired"
        f" difference of net reward to {ref} on the users both met ± 95% CI; rank = 1 + the number of agents"
        " significantly better (paired 95% interval above 0), = marks a shared rank; bound: a privileged agent"
        " (sees the true profile), not ranked",
        width=max(150, 130 + max(map(len, ranking), default=0)),
    )
    if len(domains) > 1:
        short = {d: d[:5] for d in domains}
        print_table(
            "Net reward per domain",
            ["agent", *[short[d] for d in domains]],
            [
                [a, *[_short(ag[a]["domains"][d]["net_reward"], math.nan).split(" ")[0] for d in domains]]
                for a in ranking
            ],
        )
    penalty = summary.get("miss_penalty") or 0.0
    if penalty > 0 and summary.get("penalized_ranking"):
        print_table(
            f"Safety-penalized ranking (penalty {penalty:g} per critical miss)",
            ["#", "agent", "penalized net reward", "critical miss"],
            [
                [
                    ag[a]["penalized_rank_label"],
                    a,
                    _short(ag[a]["overall"]["penalized_net_reward"], ag[a]["overall"]["penalized_net_reward_ci95"]),
                    miss_cell(ag[a]["overall"]),
                ]
                for a in summary["penalized_ranking"]
            ],
            caption=f"penalized net reward = net reward - {penalty:g} x critical miss, mean ± 95% CI; rank = 1 +"
            " the number of agents significantly better (paired), = marks a shared rank",
        )


CSV_COLUMNS = (
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
    "critical_miss_low",
    "critical_miss_high",
    "high_risk_episodes",
    "privileged",
    "vs_best_diff",
    "vs_best_ci95",
    "vs_best_p_value",
    "vs_best_prob_improvement",
    "vs_best_verdict",
    "penalized_net_reward",
    "penalized_net_reward_ci95",
    "penalized_rank",
    "llm_calls",
    "llm_fallbacks",
)


def _vs(p: Mapping[str, Any] | None) -> list[Any]:
    if p is None:
        return [None] * 5
    return [p["diff"], p["ci95"], p["p_value"], p["prob_improvement"], p["verdict"]]


def _write_outputs(
    args: Args, results: ResultsDir, tracker: Tracker, summary: dict[str, Any], domains: list[str]
) -> None:
    ag = summary["agents"]
    ranking = summary["ranking"]
    table = []
    for a in ranking:
        s = ag[a]["overall"]
        llm = ag[a].get("llm") or {}
        table.append(
            [
                ag[a]["rank_label"],
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
                s["critical_miss_low"],
                s["critical_miss_high"],
                s["high_risk_episodes"],
                ag[a]["privileged"],
                *_vs((ag[a].get("vs_reference") or {}).get("overall")),
                s.get("penalized_net_reward"),
                s.get("penalized_net_reward_ci95"),
                ag[a].get("penalized_rank_label"),
                llm.get("calls"),
                llm.get("fallbacks"),
            ]
        )
    results.write_csv("leaderboard.csv", CSV_COLUMNS, table)
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
        "critical_miss_low",
        "critical_miss_high",
        "vs_best_diff",
        "vs_best_ci95",
        "vs_best_p_value",
        "vs_best_prob_improvement",
        "vs_best_verdict",
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
            s["critical_miss_low"],
            s["critical_miss_high"],
            *_vs(((ag[a].get("vs_reference") or {}).get("domains") or {}).get(d)),
        ]
        for a in ranking
        for d, s in ag[a]["domains"].items()
    ]
    results.write_csv("leaderboard_domains.csv", dcols, dtable)

    print_leaderboard(summary)
    n_eps = max(ag[a]["overall"]["episodes"] for a in ranking)
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
    best = summary["reference"] or ranking[0]
    metrics["eval/safety"] = ag[best]["overall"]["safety"]
    metrics["eval/net_reward"] = ag[best]["overall"]["net_reward"]
    clean = [[None if isinstance(x, float) and math.isnan(x) else x for x in r] for r in table]
    tracker.report(
        metrics, [(f"{EXPERIMENT}/table", list(CSV_COLUMNS), clean)], plots, summary={"leaderboard/best_agent": best}
    )
    print_results_line(results, summary)


def _parser(prog: str | None) -> argparse.ArgumentParser:
    parser = build_parser(Args, prog=prog or "python -m experiments.leaderboard", description=__doc__)
    parser.add_argument(
        "--from",
        dest="from_folders",
        nargs="+",
        metavar="FOLDER",
        default=None,
        help="rank the agents of these finished results folders together (their summary.json and rows.jsonl; "
        "checked comparable) instead of running; only --miss-penalty and --out (a merged summary.json) apply, "
        "nothing is written into the folders",
    )
    return parser


def args_from(parser: argparse.ArgumentParser, ns: argparse.Namespace, **override: Any) -> Args:
    """``Args`` from parsed options (``override`` replacing some); a ``ConfigError`` is a usage error."""
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(Args)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    values.update(override)
    try:
        return Args(**values)
    except ConfigError as e:
        parser.error(str(e))
    raise AssertionError("unreachable")


def from_folders(folders: Sequence[str], *, miss_penalty: float, out: str | None = None) -> dict[str, Any]:
    """``leaderboard --from``: merge finished folders, print the tables, and write the merged summary to
    ``out`` (a folder that is none of the sources) when given."""
    if not miss_penalty >= 0:
        raise ConfigError(f"--miss-penalty = {miss_penalty} must be >= 0 (0 turns the view off)")
    loaded = [load_folder(f) for f in folders]
    summary = merge(loaded, miss_penalty=miss_penalty)
    print(f"merged: {', '.join(f'{f.path} ({len(f.agents)} agents)' for f in loaded)}")
    print_leaderboard(summary)
    if out is not None:
        target = Path(out)
        if any(target.resolve() == f.path.resolve() for f in loaded):
            raise ConfigError(f"--out {out} is one of the --from folders; choose another folder for the merged summary")
        target.mkdir(parents=True, exist_ok=True)
        (target / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        print(f"results: {target / 'summary.json'}")
    return summary


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Command-line entry point (``python -m experiments.leaderboard`` / ``penguin-gym benchmark``;
    ``penguin-gym leaderboard --from F1 F2`` merges finished folders)."""
    parser = _parser(prog)
    ns = parser.parse_args(None if argv is None else list(argv))
    if ns.from_folders:
        from_folders(ns.from_folders, miss_penalty=ns.miss_penalty, out=ns.out)
        return 0
    run(args_from(parser, ns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
