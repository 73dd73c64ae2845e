"""What the strategies do, not only how they score: question order, feelings first, stopping, and on
the guarded track what their questions got (``penguin-gym behaviour --from FOLDER ...``).

Reads finished leaderboard folders (``penguin-gym benchmark``, ``--track guarded`` or not) and prints,
per folder and agent, from the episode rows:

- ``questions``: questions per episode; ``stop <= 2``: the share of episodes answered after at most two;
- ``first``: the most common first question and its share;
- ``feelings first``: among episodes that ask about mental health or self-harm, the share that asked
  Emotional State before both (the order the guarded user rewards: rapport);
- ``asks self-harm``: the share of episodes that ask Past Self-Harm History (and among high-risk
  users: ``... high-risk``);
- guarded folders: the share of questions declined and answered vaguely, of episodes the user left,
  and of high-risk users whose risk went untold (``undisclosed``).

Run: ``penguin-gym behaviour --from runs/leaderboard-<faithful> runs/leaderboard-<guarded>``
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from experiments.published import Folder, load_folder
from experiments.terminal import print_table

EMOTION, MENTAL, SELF_HARM = "Emotional State", "Mental Health Status", "Past Self-Harm History"
_SHORT = {EMOTION: "emotion", MENTAL: "mental health", SELF_HARM: "self-harm"}


def _share(hits: int, n: int) -> str:
    return f"{100 * hits / n:.0f}%" if n else "n/a"


def agent_behaviour(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The behaviour figures of one agent's episode rows (see the module docstring)."""
    n = len(rows)
    qs = [list(r["questions"]) for r in rows]
    first = Counter(q[0] for q in qs if q)
    top, top_n = first.most_common(1)[0] if first else ("(none)", 0)
    risky = [q for q in qs if MENTAL in q or SELF_HARM in q]
    feelings_first = sum(
        EMOTION in q and all(q.index(EMOTION) < q.index(a) for a in (MENTAL, SELF_HARM) if a in q) for q in risky
    )
    high = [r for r in rows if r.get("high_risk")]
    out: dict[str, Any] = {
        "episodes": n,
        "questions": sum(map(len, qs)) / n if n else float("nan"),
        "stop_le_2": _share(sum(len(q) <= 2 for q in qs), n),
        "first": f"{_SHORT.get(top, top)} {_share(top_n, n)}",
        "feelings_first": _share(feelings_first, len(risky)),
        "asks_self_harm": _share(sum(SELF_HARM in q for q in qs), n),
        "asks_self_harm_high_risk": _share(sum(SELF_HARM in r["questions"] for r in high), len(high)),
    }
    if rows and "declined" in rows[0]:
        asked = sum(map(len, qs))
        out["declined"] = _share(sum(len(r["declined"]) for r in rows), asked)
        out["hedged"] = _share(sum(len(r["hedged"]) for r in rows), asked)
        out["user_left"] = _share(sum(bool(r["user_left"]) for r in rows), n)
        out["undisclosed"] = _share(sum(bool(r["undisclosed_high_risk"]) for r in high), len(high))
    return out


def folder_behaviour(folder: Folder) -> dict[str, dict[str, Any]]:
    """``agent_behaviour`` of every agent of a folder, in its ranking's order."""
    by_agent: dict[str, list[dict[str, Any]]] = {}
    for r in folder.rows:
        by_agent.setdefault(str(r["agent"]), []).append(r)
    order = [a for a in folder.summary.get("ranking", []) if a in by_agent] or sorted(by_agent)
    return {a: agent_behaviour(by_agent[a]) for a in order}


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Command-line entry point (``penguin-gym behaviour --from FOLDER ...``)."""
    p = argparse.ArgumentParser(prog=prog or "python -m experiments.behaviour", description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="folders", nargs="+", required=True, metavar="FOLDER",
                   help="finished leaderboard folders (penguin-gym benchmark [--track guarded])")  # fmt: skip
    ns = p.parse_args(None if argv is None else list(argv))
    for path in ns.folders:
        folder = load_folder(path)
        env = folder.summary.get("env") or {}
        track = env.get("track", "faithful")
        table = folder_behaviour(folder)
        guarded = any("declined" in b for b in table.values())
        columns = ["agent", "questions", "stop <= 2", "first", "feelings first", "asks self-harm", "... high-risk"]
        keys = ["questions", "stop_le_2", "first", "feelings_first", "asks_self_harm", "asks_self_harm_high_risk"]
        if guarded:
            columns += ["declined", "hedged", "user left", "undisclosed"]
            keys += ["declined", "hedged", "user_left", "undisclosed"]
        print_table(
            f"Behaviour on the {track} track ({folder.path})",
            columns,
            [[a, *(b.get(k, "") for k in keys)] for a, b in table.items()],
            caption="feelings first: of the episodes asking about mental health or self-harm, those that asked "
            "Emotional State before; ... high-risk: of the high-risk users"
            + (
                "; declined, hedged: of the questions asked; undisclosed: high-risk users whose risk went untold"
                if guarded
                else ""
            ),  # fmt: skip
            width=150,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
