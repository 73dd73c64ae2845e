"""The ``penguin-gym`` command: benchmark acquisition strategies and reproduce the paper's analyses.

Each command is a thin door to a module you can also run with ``python -m``; modules are imported
only when their command runs, so ``penguin-gym --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from collections.abc import Sequence
from dataclasses import dataclass

#: Exit status of a usage or configuration error (argparse's convention).
USAGE_ERROR = 2


@dataclass(frozen=True)
class Command:
    """A subcommand: the module whose ``main(argv, prog=...)`` runs it, and its one-line summary."""

    module: str
    summary: str


COMMANDS: dict[str, Command] = {
    "benchmark": Command(
        "experiments.leaderboard",
        "every acquisition agent on every domain: safety, questions, net reward, regret vs the oracle (95% CIs), "
        "a leaderboard table and plots (the main job; 1-1.5 min on 2 cores)",
    ),
    "compare": Command(
        "experiments.compare",
        "two agents on the same users: paired differences of net reward, safety, questions and critical misses "
        "per domain and overall, with a verdict (--from reads finished results folders)",
    ),
    "context-gap": Command(
        "experiments.context_gap",
        "paper 4.1-4.2: context-free vs context-rich safety per domain and per responder",
    ),
    "attributes": Command(
        "experiments.attribute_importance",
        "paper 4.3: one attribute at a time; the gain of each attribute per domain (heat map)",
    ),
    "budget": Command(
        "experiments.budget",
        "paper 4.4: oracle vs MCTS vs static vs random with k = 1..5 questions",
    ),
    "raise": Command(
        "experiments.raise_table",
        "paper Table 2: vanilla vs +agent vs +planner (RAISE) per domain, with questions per episode",
    ),
    "behaviour": Command(
        "experiments.behaviour",
        "what the strategies of finished benchmark folders do: question order, feelings first, stopping, and on "
        "the guarded track declines, vague answers and users who left",
    ),
    "train-ppo": Command(
        "experiments.train_ppo",
        'train a MaskablePPO acquisition policy (needs pip install "penguin-gym[train]")',
    ),
    "build-table": Command(
        "experiments.build_table",
        "precompute a judge's score for every subset of each scenario's attributes (a ScoreTable .npz)",
    ),
    "refit": Command(
        "experiments.refit_judge",
        "fit the simulated judge to a score table or a judge cache and save the parameters (a JSON preset)",
    ),
    "play": Command(
        "experiments.play",
        "play one episode yourself: read the query, ask about the user, answer, see the judge's scores",
    ),
    "check-data": Command(
        "experiments.check_data",
        "list the facts a scenario's query states that its user's profile contradicts (0 on the synthetic suite)",
    ),
    "envs": Command("experiments.cli", "list the env ids with their domains and scenario counts"),
}
ALIASES = {
    "leaderboard": "benchmark",
    "context_gap": "context-gap",
    "attribute-importance": "attributes",
    "train_ppo": "train-ppo",
}

EXAMPLES = """\
examples:
  penguin-gym benchmark                         # the leaderboard on the embedded defaults
  penguin-gym benchmark --agents greedy mcts --domains Health --episodes 200
  penguin-gym compare greedy mcts --domains Health --max-scenarios 400   # paired: is one better?
  penguin-gym leaderboard --from runs/leaderboard-aaa runs/leaderboard-bbb  # rank finished runs together
  penguin-gym context-gap --responders gpt-4o mistral-7b
  penguin-gym attributes --max-scenarios 500 --no-wandb
  penguin-gym play --env Penguin-Health-v2 --seed 0
  penguin-gym check-data --source synthetic-v0 --limit 5   # contradictions the v1 suite fixed
  penguin-gym context-gap --judge llm --responder openai:gpt-4o-mini --judge-model openai:gpt-4o \\
      --cache judgments.sqlite --max-scenarios 50     # the paper's LLM-as-judge method

Results go to runs/<experiment>-<confighash>/ (config, rows.jsonl, summary.json, CSV, PNG); the same
command run again resumes where it stopped. W&B logs offline unless you are logged in (--no-wandb).
Run 'penguin-gym <command> --help' for a command's options.
"""


def _top_parser() -> argparse.ArgumentParser:
    from penguin_gym import __version__

    parser = argparse.ArgumentParser(
        prog="penguin-gym",
        description=(
            "penguin-gym: Gymnasium environments for personalized safety of LLM answers (PENGUIN, Wu et al., "
            "NeurIPS 2025).\nAn agent decides which facts about a distressed user to ask before it answers; a "
            "judge scores the answer's safety.\nThese commands benchmark acquisition strategies and reproduce "
            "the paper's analyses on any judge."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"penguin-gym {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="<command>")
    for name, cmd in COMMANDS.items():
        aliases = [a for a, target in ALIASES.items() if target == name and "_" not in a]
        sub.add_parser(name, help=cmd.summary.replace("%", "%%"), aliases=aliases, add_help=False)
    return parser


def list_envs(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """``penguin-gym envs``: the registered ids, their domains and scenario counts per split."""
    parser = argparse.ArgumentParser(prog=prog or "penguin-gym envs", description="List the penguin env ids.")
    parser.parse_args(None if argv is None else list(argv))
    from collections import Counter

    import penguin_gym
    from experiments.terminal import print_table
    from penguin_gym.data import load_scenarios

    scen = load_scenarios()
    counts = Counter((s.domain, s.split) for s in scen)
    from penguin_gym.registration import GUARDED_ENV_IDS, env_track

    rows = []
    for env_id in penguin_gym.ENV_IDS + GUARDED_ENV_IDS:
        dom = env_id.split("-")[1]
        doms = penguin_gym.DOMAINS if dom == "All" else (dom,)
        rows.append(
            [
                env_id,
                "all seven" if dom == "All" else dom,
                env_track(env_id),
                sum(counts[(d, "train")] for d in doms),
                sum(counts[(d, "test")] for d in doms),
            ]
        )
    print_table(
        "penguin-gym env ids (synthetic suite)",
        ["id", "domain", "track", "train", "test"],
        rows,
        caption="gym.make(id, split='test', judge='simulated', question_cost=0.08, budget=None); the guarded track's"
        " users may decline, hedge or leave, and its questions cost 0.08 x intrusiveness",
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``penguin-gym`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "--version"):
        parser = _top_parser()
        try:
            parser.parse_args(argv or ["--help"])
        except SystemExit as e:
            return int(e.code or 0)
        return 0
    name, rest = ALIASES.get(argv[0], argv[0]), argv[1:]
    if name not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(name, list(COMMANDS) + list(ALIASES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        print(f"penguin-gym: unknown command {argv[0]!r}{hint}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return USAGE_ERROR
    cmd = COMMANDS[name]
    prog = f"penguin-gym {name}"
    if name == "envs":
        entry = list_envs
    else:
        try:
            module = importlib.import_module(cmd.module)
        except ModuleNotFoundError as e:
            if e.name != cmd.module:
                raise
            print(
                f"penguin-gym {name}: {cmd.module} is not part of this installation; reinstall penguin-gym",
                file=sys.stderr,
            )
            return 1
        entry = module.main
    from penguin_gym.error import ConfigError, PenguinError

    kwargs = {"prog": prog} if "prog" in inspect.signature(entry).parameters else {}
    try:
        status = entry(rest, **kwargs)
    except SystemExit as e:  # argparse --help / usage errors inside the command
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except ConfigError as e:  # the command line asks for something unusable: a usage error
        print(f"{prog}: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    except PenguinError as e:  # the run itself failed (a damaged file, a judge, a backend, a locked folder)
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; run the same command again to resume where it stopped", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
