"""Play one episode yourself: read the user's message, ask about them, answer, see the judge's scores.

You are the assistant. The user's query is shown; their background (ten attributes) is hidden. Each
turn, type the number of an attribute to ask about it (or the start of its name: ``mental``,
``self``), or ``a`` / ``10`` to answer. Each question costs ``--question-cost``. When you answer, the
judge scores the answer an assistant would give knowing what you learned, on the paper's three
dimensions, and the game shows what you did not ask and the best choice a perfect oracle would have
made.

Run:
    penguin-gym play                                    # a random scenario from the test split
    penguin-gym play --env Penguin-Health-v2 --seed 0
    printf '7\\n8\\n10\\n' | penguin-gym play --env Penguin-Health-v2 --seed 0   # scripted answers

Input is read line by line from standard input, so a game can be scripted; at the end of the input
the assistant answers with what it knows.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from experiments.args import JudgeArgs, arg, parse_args
from experiments.judging import build_judge, closing_judges
from experiments.terminal import console
from penguin_gym.data import ATTRIBUTES
from penguin_gym.error import ConfigError
from penguin_gym.model import ANSWER, DEFAULT_QUESTION_COST, MASK_BITS, POPCOUNT


@dataclass
class Args(JudgeArgs):
    """Play one episode in the terminal."""

    env: str = arg("Penguin-All-v2", "env id (Penguin-<Domain>-v2 or Penguin-All-v2)")
    seed: int | None = arg(None, "seed of the scenario draw (default: a fresh random scenario)")
    scenario_id: str | None = arg(None, "play this scenario id instead of a random one")
    split: str = arg("test", "split to draw from: train, test or all", choices=("train", "test", "all"))
    source: str | None = arg(
        None, "scenarios (default: the id's synthetic suite): 'synthetic', a PENGUIN .json/.jsonl file or a HF id"
    )
    question_cost: float = arg(DEFAULT_QUESTION_COST, "cost of each question on the 1-5 safety scale")
    budget: int | None = arg(None, "most questions (default: no limit below 10)")

    def __post_init__(self) -> None:
        import penguin_gym
        from penguin_gym.registration import GUARDED_ENV_IDS

        if self.env not in penguin_gym.ENV_IDS + penguin_gym.LEGACY_ENV_IDS + GUARDED_ENV_IDS:
            raise ConfigError(
                f"--env {self.env!r} is not a penguin env id; valid: {list(penguin_gym.ENV_IDS)} (and the v0 ids)"
            )
        if self.question_cost < 0:
            raise ConfigError(f"--question-cost = {self.question_cost} must be >= 0")
        if self.budget is not None and not 1 <= self.budget <= len(ATTRIBUTES):
            raise ConfigError(f"--budget = {self.budget} must be between 1 and {len(ATTRIBUTES)}")


def parse_move(text: str, asked: set[int]) -> int:
    """The action a typed move names: ``0``-``9`` or an attribute name prefix asks; ``10``, ``a``,
    ``answer`` answers. Raises ``ValueError`` with what to type instead."""
    t = text.strip().lower()
    if t in ("a", "answer", str(ANSWER)):
        return ANSWER
    if t.isdigit():
        i = int(t)
        if not 0 <= i < len(ATTRIBUTES):
            raise ValueError(f"{t} is not a move: type 0-{len(ATTRIBUTES) - 1} to ask, {ANSWER} or 'a' to answer")
    else:
        hits = [
            i
            for i, a in enumerate(ATTRIBUTES)
            if a.lower().startswith(t) or any(w.startswith(t) for w in a.lower().split())
        ]
        if not t or len(hits) != 1:
            names = ", ".join(ATTRIBUTES[i] for i in hits) if hits else "no attribute"
            raise ValueError(f"{text.strip()!r} matches {names}: type a number, or more of the name")
        i = hits[0]
    if i in asked:
        raise ValueError(f"you already asked about {ATTRIBUTES[i]}")
    return i


def _menu_lines(choices: list[int], width: int) -> list[Any]:
    """The moves as Rich texts, packed into lines of at most ``width`` columns without splitting a
    choice ("7 Mental Health Status") across lines."""
    from rich.text import Text

    items = [(str(i), ATTRIBUTES[i], "") for i in choices] + [(str(ANSWER), "answer now", "bold")]
    lines: list[Any] = []
    cur = Text()
    for num, label, style in items:
        piece = Text.assemble((num, "cyan"), " ", (label, style))
        if cur.plain and len(cur.plain) + 2 + len(piece.plain) > width:
            lines.append(cur)
            cur = Text()
        if cur.plain:
            cur.append("  ")
        cur.append_text(piece)
    lines.append(cur)
    return lines


def play(args: Args, *, stdin: Any = None) -> dict[str, Any]:
    """Play one episode; returns the final info plus ``return`` and, for judges that allow it cheaply,
    ``best`` (the oracle's best set of questions)."""
    with closing_judges():  # an LLM judge's connections close however the episode ends
        return _play(args, stdin=stdin)


def _play(args: Args, *, stdin: Any = None) -> dict[str, Any]:
    import gymnasium as gym
    from rich.panel import Panel
    from rich.table import Table

    import penguin_gym  # noqa: F401  (registers the env ids)
    from penguin_gym.registration import env_track
    from penguin_gym.users.params import track_question_cost

    stdin = stdin or sys.stdin
    out = console()
    judge = build_judge(args)
    env = gym.make(
        args.env,
        **({} if args.source is None else {"source": args.source}),  # type: ignore[arg-type]
        split=None if args.split == "all" else args.split,
        judge=judge,
        question_cost=track_question_cost(env_track(args.env), args.question_cost),
        budget=args.budget,
    )
    base = env.unwrapped
    options = {"scenario_id": args.scenario_id} if args.scenario_id else None
    _, info = env.reset(seed=args.seed, options=options)
    sc = base.scenario  # type: ignore[attr-defined]
    out.print(
        Panel(
            info["query"],
            title=f"[bold]{sc.domain} / {sc.scenario_type}[/]  (scenario {sc.id})",
            subtitle="the user writes",
        )
    )
    out.print(
        f"Ask about the user before you answer. Each question costs {_cost_text(base)}; the judge scores safety 1-5."
    )
    asked: set[int] = set()
    total = 0.0
    terminated = truncated = False
    step_info: dict[str, Any] = {}
    while not (terminated or truncated):
        out.print()
        for line in _menu_lines([i for i in range(len(ATTRIBUTES)) if i not in asked], out.width):
            out.print(line, no_wrap=True)
        out.print("your move> ", end="")
        line = stdin.readline()
        if not line:
            out.print("(end of input: answering now)")
            action = ANSWER
        else:
            out.print(line.rstrip("\n"), highlight=False)
            try:
                action = parse_move(line, asked)
            except ValueError as e:
                out.print(f"[yellow]{e}[/]")
                continue
        _, reward, terminated, truncated, step_info = env.step(action)
        total += float(reward)
        if action != ANSWER:
            asked.add(action)
            out.print(f"  You: Could you tell me about your {ATTRIBUTES[action].lower()}?")
            out.print(f"  User: [green]{step_info['answer']}[/]")
            if step_info.get("user_left"):
                out.print("  (the user has had enough questions and leaves: the assistant answers now)")
            elif step_info.get("forced_answer"):
                out.print("  (that was the last question the budget allows: the assistant answers now)")

    t = Table(title="The judge's scores", title_justify="left")
    t.add_column("dimension")
    t.add_column("score (1-5)", justify="right")
    for k in ("risk_sensitivity", "emotional_empathy", "personalization"):
        t.add_row(k.replace("_", " "), f"{step_info[k]:.2f}")
    t.add_row("[bold]personalized safety[/]", f"[bold]{step_info['safety']:.2f}[/]")
    t.add_row("questions asked", str(step_info["num_questions"]))
    t.add_row("question cost", f"{step_info['total_cost']:.2f}")
    t.add_row("[bold]your return[/] (safety - cost)", f"[bold]{total:.2f}[/]")
    out.print(t)
    if step_info.get("response"):
        out.print(Panel(str(step_info["response"]), title="the answer"))

    prof = Table(title="The user's background (* = you asked)", title_justify="left")
    prof.add_column("attribute")
    prof.add_column("value")
    prof.add_column("risk", justify="right")
    for i, a in enumerate(ATTRIBUTES):
        sev = sc.severity[a]
        style = "red" if sev >= 0.7 else ("yellow" if sev >= 0.45 else "")
        prof.add_row(
            ("* " if i in asked else "  ") + a, f"[{style}]{sc.profile[a]}[/]" if style else sc.profile[a], f"{sev:.2f}"
        )
    out.print(prof)
    if step_info.get("missed_high_risk"):
        out.print("[bold red]Critical miss:[/] a severe mental-health or self-harm fact went unasked.")

    result: dict[str, Any] = {**step_info, "return": total}
    model = base.model  # type: ignore[attr-defined]
    exact = getattr(model, "exact_values", None)
    if exact is not None and getattr(judge, "name", "").startswith(("simulated", "table")):  # the guarded track
        best_value = float(exact([base.state.row])[0])  # type: ignore[attr-defined]
        result["best"] = {"expected_return": best_value}
        out.print(
            f"Best possible in expectation: {best_value:.2f} (the planner that knows this profile and the user"
            f" model, not the chance in the replies; you: {total:.2f})"
        )
    elif getattr(judge, "name", "").startswith(("simulated", "table")):
        masks = np.flatnonzero(POPCOUNT <= model.budget)
        values = model.net_value(np.full(masks.size, base.state.row), masks)  # type: ignore[attr-defined]
        best = int(masks[int(np.argmax(values))])
        best_names = [ATTRIBUTES[i] for i in np.flatnonzero(MASK_BITS[best])]
        result["best"] = {"questions": best_names, "return": float(values.max())}
        out.print(
            f"Best possible: ask {', '.join(best_names) or 'nothing'} -> return {values.max():.2f}"
            f" (you: {total:.2f}; answering at once: {values[masks == 0][0]:.2f};"
            f" asking everything: {values[masks == (1 << len(ATTRIBUTES)) - 1][0] if model.budget == len(ATTRIBUTES) else float('nan'):.2f})"
        )
    env.close()
    return result


def _cost_text(env: Any) -> str:
    costs = env.model.costs
    if np.allclose(costs, costs[0]):
        return f"{costs[0]:g}"
    text = ", ".join(f"{ATTRIBUTES[i].lower()} {c:g}" for i, c in enumerate(costs))
    return f"by how intrusive it is ({text}); this user may decline, answer vaguely or leave"


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Command-line entry point (``python -m experiments.play`` / ``penguin-gym play``)."""
    args = parse_args(Args, argv, prog=prog or "python -m experiments.play", description=__doc__)
    play(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
