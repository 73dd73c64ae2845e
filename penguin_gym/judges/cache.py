"""``CachedJudge``: a persistent SQLite cache of judgments, shared across processes and runs.

An LLM judgment costs seconds and money; a PPO run asks for the same (scenario, revealed set) pairs
again and again. ``CachedJudge`` wraps any judge and stores every judgment under a key made of the
scenario (its id and a fingerprint of its content), the revealed set and the judge's ``name``, which
for an ``LLMJudge`` holds the responder's and the judge's identities, the prompt version and the
sampling settings. A changed prompt, model or temperature therefore never reads old scores.

Crash safety: the database runs in WAL mode and every chunk of judgments is committed as soon as it
is scored (``chunk_size`` items; 1 commits each judgment on its own). A run killed with ``kill -9``
keeps everything committed, and a restarted run judges only what is missing. Several processes may
share one file: writes are serialized by SQLite (with a generous busy timeout), the first stored
judgment of a key wins and is what every reader gets. Failed judgments are not cached (a later run
retries them) but are recorded in a ``failures`` table.

Nothing secret is stored: the key and rows hold the judge's ``name`` (no API keys), the texts and
the scores.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from penguin_gym.data.schema import ATTRIBUTES, Scenario, attribute_mask
from penguin_gym.error import ConfigError, JudgeBatchError
from penguin_gym.judges.base import Judge, JudgeBase, JudgeScore

logger = logging.getLogger(__name__)

#: Bumped when the key derivation or the table layout changes.
CACHE_SCHEMA = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS judgments (
    key TEXT PRIMARY KEY,
    judge TEXT NOT NULL,
    scenario_id TEXT NOT NULL,
    scenario_fp TEXT NOT NULL,
    revealed INTEGER NOT NULL,
    risk_sensitivity REAL NOT NULL,
    emotional_empathy REAL NOT NULL,
    personalization REAL NOT NULL,
    response TEXT,
    raw TEXT,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS judgments_by_judge ON judgments (judge, scenario_id);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    judge TEXT NOT NULL,
    scenario_id TEXT NOT NULL,
    revealed INTEGER NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT,
    created REAL NOT NULL
);
"""


def scenario_fingerprint(scenario: Scenario) -> str:
    """A short hash of everything in a scenario that a judge reads (query, profile, severities)."""
    parts = [scenario.domain, scenario.scenario_type, scenario.query]
    parts += [scenario.profile[a] for a in ATTRIBUTES]
    parts += [repr(x) for x in scenario.severity_vector]
    parts.append(repr(scenario.risk_cue))
    # \x1e between fields: no text field of a scenario holds it, so the join is unambiguous.
    return hashlib.blake2b("\x1e".join(parts).encode("utf-8"), digest_size=8).hexdigest()


def judgment_key(judge_name: str, scenario_id: str, fingerprint: str, mask: int) -> str:
    """The cache key of one judgment (a sha256 hex digest)."""
    blob = json.dumps([CACHE_SCHEMA, judge_name, scenario_id, fingerprint, int(mask)], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedJudgment:
    """One stored judgment (as read by ``read_judgments``)."""

    judge: str
    scenario_id: str
    scenario_fp: str
    mask: int
    score: JudgeScore


class _Store:
    """The SQLite file: one connection per process (reopened after a fork), writes in short transactions."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._lock = threading.RLock()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = Path(state["path"])
        self._conn = None
        self._pid = -1
        self._lock = threading.RLock()

    def conn(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            for attempt in range(50):
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable against process crashes
                    conn.executescript(_SCHEMA)
                    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(CACHE_SCHEMA),))
                    break
                except sqlite3.OperationalError as e:  # another process is creating the file right now
                    if "locked" not in str(e) and "busy" not in str(e) or attempt == 49:
                        raise
                    time.sleep(0.05)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is not None and int(row[0]) != CACHE_SCHEMA:
                raise ConfigError(
                    f"judge cache {self.path} has schema {row[0]}, this version reads {CACHE_SCHEMA}; "
                    "use a new cache file"
                )
            self._conn = conn
            self._pid = os.getpid()
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def get(self, keys: Sequence[str]) -> dict[str, JudgeScore]:
        out: dict[str, JudgeScore] = {}
        with self._lock:
            conn = self.conn()
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                rows = conn.execute(
                    "SELECT key, risk_sensitivity, emotional_empathy, personalization, response, raw FROM judgments "
                    f"WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for key, rs, ee, pe, response, raw in rows:
                    out[key] = JudgeScore(rs, ee, pe, response=response, raw=raw)
        return out

    def put(self, rows: Sequence[tuple[Any, ...]], failures: Sequence[tuple[Any, ...]] = ()) -> None:
        if not rows and not failures:
            return
        with self._lock:
            conn = self.conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR IGNORE INTO judgments VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
                conn.executemany(
                    "INSERT INTO failures (key, judge, scenario_id, revealed, reason, raw, created) "
                    "VALUES (?,?,?,?,?,?,?)",
                    failures,
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


class CachedJudge(JudgeBase):
    """Any judge, with its judgments kept in a SQLite file.

    Args:
        judge: The judge to cache (an ``LLMJudge``, or any ``Judge``).
        path: The SQLite file (created if missing); share it between runs and processes.
        chunk_size: Judgments sent to ``judge`` per ``score_many`` call and committed together. Larger
            chunks batch better; a crash loses at most the chunk in flight.

    Attributes:
        hits: Judgments served from the file.
        misses: Judgments computed by ``judge`` (successful or not).

    Example:
        >>> import tempfile, os
        >>> from penguin_gym.data import load_scenarios
        >>> from penguin_gym.judges import SimulatedJudge
        >>> s = load_scenarios(domains="Health", n_per_domain=1)[0]
        >>> cached = CachedJudge(SimulatedJudge(), os.path.join(tempfile.mkdtemp(), "judge.sqlite"))
        >>> cached.score(s, frozenset()) == cached.score(s, frozenset()), cached.hits
        (True, 1)
    """

    def __init__(self, judge: Judge, path: str | Path, *, chunk_size: int = 32) -> None:
        if not (hasattr(judge, "score_many") and hasattr(judge, "name")):
            raise ConfigError(f"CachedJudge: {judge!r} does not implement the Judge protocol (name, score_many)")
        if chunk_size < 1:
            raise ConfigError(f"CachedJudge: chunk_size = {chunk_size} must be >= 1")
        self.judge = judge
        self.path = Path(path)
        self.chunk_size = int(chunk_size)
        self.name = judge.name
        self.hits = 0
        self.misses = 0
        self._store = _Store(self.path)
        # Fingerprints memoized per scenario object (held, so its id() cannot be reused): an edited
        # scenario under the same id is a different object and gets its own fingerprint.
        self._fps: dict[int, tuple[Scenario, str]] = {}
        self._store.conn()  # fail now on an unusable path

    def __repr__(self) -> str:
        return f"CachedJudge({self.judge!r}, path={str(self.path)!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fps"] = {}
        return state

    def close(self) -> None:
        """Close this process's connection (reopened on next use)."""
        self._store.close()

    def _fingerprint(self, scenario: Scenario) -> str:
        memo = self._fps.get(id(scenario))
        if memo is not None and memo[0] is scenario:
            return memo[1]
        if len(self._fps) >= 200_000:
            self._fps.clear()
        fp = scenario_fingerprint(scenario)
        self._fps[id(scenario)] = (scenario, fp)
        return fp

    def key(self, scenario: Scenario, revealed: frozenset[str]) -> str:
        """The cache key of judging ``scenario`` with ``revealed`` under this judge."""
        return judgment_key(self.name, scenario.id, self._fingerprint(scenario), attribute_mask(revealed))

    def score_many(self, scenarios: Sequence[Scenario], revealed: Sequence[frozenset[str]]) -> list[JudgeScore]:
        """Scores from the file where stored; the rest judged chunk by chunk and committed as they come.

        Raises:
            JudgeBatchError: when the wrapped judge failed on some items: everything else is stored
                and in ``.results``; the failures are in ``.failures`` and in the file's ``failures`` table.
            BackendError: from the wrapped judge; the chunks completed before it are kept.
        """
        if len(scenarios) != len(revealed):
            raise ConfigError(f"CachedJudge: {len(scenarios)} scenarios but {len(revealed)} revealed sets")
        revealed = [frozenset(r) for r in revealed]
        masks = [attribute_mask(r) for r in revealed]
        keys = [judgment_key(self.name, s.id, self._fingerprint(s), m) for s, m in zip(scenarios, masks, strict=True)]
        found = self._store.get(keys)
        todo: dict[str, int] = {}  # key -> first index needing it
        for i, k in enumerate(keys):
            if k not in found and k not in todo:
                todo[k] = i
        self.hits += len(keys) - sum(1 for k in keys if k not in found)
        if not todo:  # everything stored: the common case of a warm cache
            return [found[k] for k in keys]
        failures: list[object] = []
        failed_keys: set[str] = set()
        pending = list(todo.items())
        for start in range(0, len(pending), self.chunk_size):
            chunk = [i for _, i in pending[start : start + self.chunk_size]]
            self.misses += len(chunk)
            try:
                scored: list[JudgeScore | None] = list(
                    self.judge.score_many([scenarios[i] for i in chunk], [revealed[i] for i in chunk])
                )
                chunk_failures: list[object] = []
            except JudgeBatchError as e:
                scored = [r if isinstance(r, JudgeScore) else None for r in e.results]
                chunk_failures = list(e.failures)
            if len(scored) != len(chunk):
                raise ConfigError(f"CachedJudge: {self.judge!r} returned {len(scored)} scores for {len(chunk)} items")
            now = time.time()
            rows = []
            for i, sc in zip(chunk, scored, strict=True):
                if sc is not None:
                    rows.append(
                        (
                            keys[i],
                            self.name,
                            scenarios[i].id,
                            self._fingerprint(scenarios[i]),
                            masks[i],
                            float(sc.risk_sensitivity),
                            float(sc.emotional_empathy),
                            float(sc.personalization),
                            sc.response,
                            sc.raw,
                            now,
                        )
                    )
            fail_rows = []
            for f in chunk_failures:
                index = getattr(f, "index", None)
                if not isinstance(index, int) or not 0 <= index < len(chunk):
                    continue
                i = chunk[index]
                failed_keys.add(keys[i])
                raw = getattr(f, "raw", ())
                fail_rows.append(
                    (
                        keys[i],
                        self.name,
                        scenarios[i].id,
                        masks[i],
                        str(getattr(f, "reason", f)),
                        json.dumps(list(raw), ensure_ascii=False),
                        now,
                    )
                )
                failures.append(_reindex(f, i))
            self._store.put(rows, fail_rows)
            # Items scored None without a failure record (a judge outside this package) also fail.
            for i, sc in zip(chunk, scored, strict=True):
                if sc is None and keys[i] not in failed_keys:
                    failed_keys.add(keys[i])
        # Read back: when another process stored a key first, its judgment is the one everybody uses.
        final = self._store.get([k for k in dict.fromkeys(keys) if k not in failed_keys])
        results: list[JudgeScore | None] = [final.get(k) for k in keys]
        if failed_keys:
            n_failed = sum(1 for k in keys if k in failed_keys)
            raise JudgeBatchError(
                f"{n_failed} of {len(keys)} judgments failed (not cached; a later call retries them); "
                f"first: {failures[0] if failures else 'no failure record'}",
                results=list(results),
                failures=failures,
            )
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            raise ConfigError(f"CachedJudge: {len(missing)} judgments vanished from {self.path} while in use")
        return [r for r in results if r is not None]

    def failures(self) -> list[dict[str, Any]]:
        """The recorded failures of this judge (newest last): key, scenario id, mask, reason, raw replies."""
        rows = (
            self._store.conn()
            .execute(
                "SELECT key, scenario_id, revealed, reason, raw, created FROM failures WHERE judge = ? ORDER BY id",
                (self.name,),
            )
            .fetchall()
        )
        return [
            {"key": k, "scenario_id": sid, "mask": m, "reason": r, "raw": json.loads(raw or "[]"), "created": c}
            for k, sid, m, r, raw, c in rows
        ]

    def __len__(self) -> int:
        row = self._store.conn().execute("SELECT COUNT(*) FROM judgments WHERE judge = ?", (self.name,)).fetchone()
        return int(row[0])

    def judgments(self) -> list[CachedJudgment]:
        """Every judgment this judge has stored (for refitting)."""
        return list(read_judgments(self.path, self.name))


def _reindex(failure: object, index: int) -> object:
    """The failure record with ``index`` pointing into the caller's batch instead of the chunk."""
    if hasattr(failure, "__dataclass_fields__") and hasattr(failure, "index"):
        import dataclasses

        return dataclasses.replace(failure, index=index)  # type: ignore[type-var]
    return failure


def judge_names(path: str | Path) -> dict[str, int]:
    """The judges stored in a cache file, with their judgment counts."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"no judge cache at {p}")
    with sqlite3.connect(p, timeout=60.0) as conn:
        rows = conn.execute("SELECT judge, COUNT(*) FROM judgments GROUP BY judge").fetchall()
    return {str(j): int(n) for j, n in rows}


def read_judgments(path: str | Path, judge_name: str | None = None) -> Iterator[CachedJudgment]:
    """The judgments in a cache file, of one judge.

    Args:
        path: The SQLite file.
        judge_name: Which judge's judgments; may be omitted when the file holds only one judge.

    Raises:
        ConfigError: when the file is missing, or holds several judges and none is named.
    """
    names = judge_names(path)
    if judge_name is None:
        if len(names) > 1:
            raise ConfigError(f"judge cache {path} holds {len(names)} judges; name one: {sorted(names)}")
        if not names:
            return
        judge_name = next(iter(names))
    elif judge_name not in names:
        raise ConfigError(f"judge cache {path} has no judgments of {judge_name!r}; it holds {sorted(names)}")
    conn = sqlite3.connect(Path(path), timeout=60.0)
    try:
        cur = conn.execute(
            "SELECT judge, scenario_id, scenario_fp, revealed, risk_sensitivity, emotional_empathy, personalization, "
            "response, raw FROM judgments WHERE judge = ? ORDER BY scenario_id, revealed",
            (judge_name,),
        )
        for judge, sid, fp, mask, rs, ee, pe, response, raw in cur:
            yield CachedJudgment(judge, sid, fp, int(mask), JudgeScore(rs, ee, pe, response=response, raw=raw))
    finally:
        conn.close()
