"""Reading finished leaderboard folders (their summary.json, schema checked, and rows.jsonl), checking
that two are comparable, and merging their agents into one summary (``leaderboard --from``,
``compare --from``); nothing is written into them. The summary's fields: ``experiments.ranking``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.ranking import SCHEMA, SCHEMA_VERSION, summarize
from experiments.results import read_results
from penguin_gym.error import ConfigError, DataFormatError

#: What two results folders must share to be ranked or compared together.
COMPARABLE = ("judge", "env_version", "question_cost", "budget", "source", "split", "n_per_domain", "data_seed")


@dataclass(frozen=True)
class Folder:
    """A finished leaderboard folder, read only: its summary and its episode rows."""

    path: Path
    summary: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def agents(self) -> list[str]:
        return list(self.summary.get("agents") or {})


def load_folder(folder: str | Path) -> Folder:
    """A leaderboard results folder's summary.json (schema checked) and rows.jsonl; nothing is written.

    Raises:
        ConfigError: when ``folder`` is not a folder.
        DataFormatError: when summary.json is missing, damaged, of another schema or version, or the
            rows are damaged (the message names the folder).
    """
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"--from {folder}: no such results folder")
    spath = path / "summary.json"
    if not spath.exists():
        raise DataFormatError(
            f"{path}: no summary.json (an unfinished run? run the same benchmark command again to finish it)"
        )
    try:
        summary = json.loads(spath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataFormatError(f"{spath}: not a readable JSON summary ({e})") from e
    if not isinstance(summary, dict) or "schema_version" not in summary:
        raise DataFormatError(
            f"{path}: summary.json has no 'schema_version' (written before schema {SCHEMA} v{SCHEMA_VERSION}, or "
            "not a leaderboard); rerun its benchmark command to rewrite it"
        )
    if summary.get("schema") != SCHEMA or summary.get("schema_version") != SCHEMA_VERSION:
        raise DataFormatError(
            f"{path}: summary.json is schema {summary.get('schema')!r} version {summary.get('schema_version')!r}; "
            f"this penguin-gym reads {SCHEMA!r} version {SCHEMA_VERSION}"
        )
    _, units = read_results(path)
    known = set(summary.get("agents") or {})
    rows = [r for r in units.rows() if r.get("agent") in known]
    return Folder(path, summary, rows)


def merge(folders: Sequence[Folder], *, miss_penalty: float) -> dict[str, Any]:
    """The summary of several comparable folders' agents, recomputed from their rows (an agent label in
    two folders becomes ``label@<folder name>``)."""
    from penguin_gym.data import DOMAINS

    for f in folders[1:]:
        check_comparable((str(folders[0].path), folders[0].summary), (str(f.path), f.summary))
    seen: dict[str, int] = {}
    for f in folders:
        for a in f.agents:
            seen[a] = seen.get(a, 0) + 1
    names = [f.path.name for f in folders]
    rows: list[dict[str, Any]] = []
    infos: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    for f in folders:
        tag = f.path.name if names.count(f.path.name) == 1 else str(f.path)
        rename = {a: (f"{a}@{tag}" if seen[a] > 1 else a) for a in f.agents}
        for a in f.agents:
            infos[rename[a]] = {
                k: v
                for k, v in f.summary["agents"][a].items()
                if k in ("spec", "options", "code_version", "privileged", "llm")
            }
            infos[rename[a]]["folder"] = str(f.path)
            seconds[rename[a]] = float(((f.summary.get("run") or {}).get("agent_seconds") or {}).get(a, math.nan))
        rows += [{**r, "agent": rename[r["agent"]]} for r in f.rows]
    domains = [d for d in DOMAINS if any(d in (f.summary.get("domains") or []) for f in folders)]
    first = folders[0].summary
    header = {k: first.get(k) for k in ("env", "judge", "data", "question_cost", "budget", "seed")}
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        **header,
        "sources": [
            {"folder": str(f.path), "config_hash": f.summary.get("config_hash"), "agents": f.agents} for f in folders
        ],
        **summarize(rows, infos, domains, miss_penalty=miss_penalty),
        "run": {"agent_seconds": seconds},
    }


def identity(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The ``COMPARABLE`` fields of a summary: two folders are ranked together only when these agree."""
    data = summary.get("data") or {}
    return {
        "judge": summary.get("judge"),
        "env_version": (summary.get("env") or {}).get("version"),
        "question_cost": summary.get("question_cost"),
        "budget": summary.get("budget"),
        "source": data.get("source"),
        "split": data.get("split"),
        "n_per_domain": data.get("n_per_domain"),
        "data_seed": data.get("data_seed"),
    }


def check_comparable(first: tuple[str, Mapping[str, Any]], other: tuple[str, Mapping[str, Any]]) -> None:
    """Raise ``ConfigError`` naming the first field (``COMPARABLE``) on which two folders' summaries differ."""
    a, b = identity(first[1]), identity(other[1])
    for field in COMPARABLE:
        if a[field] != b[field]:
            raise ConfigError(
                f"{other[0]} is not comparable with {first[0]}: {field} {b[field]!r} vs {a[field]!r} "
                "(rank or compare only folders run with the same judge, env version, question cost, budget and data)"
            )
