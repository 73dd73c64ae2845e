"""The judge cache's file: an SQLite database of judgments and failure records, its schema and readers.

``penguin_gym.judges.cache.CachedJudge`` is the judge that fills and serves such a file; this module is
the file itself: the tables (``CACHE_SCHEMA``, upgraded in place from schema 1), the per-process
connection with its WAL mode and short write transactions (``Store``), the check that a file is a
judge cache before anything is written to it, and the readers of a file without a judge
(``judge_names``, ``read_judgments``: what ``penguin-gym refit`` fits).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from penguin_gym.error import ConfigError, DataFormatError, JudgeError, PenguinError
from penguin_gym.judges.base import JudgeScore

#: Bumped when the key derivation or the table layout changes. 2: judgments keep their notes, failures
#: their cause, permanence, answer and seeds (a schema-1 file is upgraded in place when opened).
CACHE_SCHEMA = 2

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
    created REAL NOT NULL,
    notes TEXT
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
    created REAL NOT NULL,
    cause TEXT,
    permanent INTEGER NOT NULL DEFAULT 0,
    response TEXT,
    seeds TEXT
);
CREATE INDEX IF NOT EXISTS failures_by_key ON failures (key);
"""

#: What turns a schema-1 file into a schema-2 one. Its failures were "retried by a later call": they stay
#: not permanent, so they are asked for again once.
_MIGRATE_1_TO_2 = """
ALTER TABLE judgments ADD COLUMN notes TEXT;
ALTER TABLE failures ADD COLUMN cause TEXT;
ALTER TABLE failures ADD COLUMN permanent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE failures ADD COLUMN response TEXT;
ALTER TABLE failures ADD COLUMN seeds TEXT;
CREATE INDEX IF NOT EXISTS failures_by_key ON failures (key);
UPDATE meta SET value = '2' WHERE key = 'schema';
"""


@dataclass(frozen=True, slots=True)
class CachedJudgment:
    """One stored judgment (as read by ``read_judgments``)."""

    judge: str
    scenario_id: str
    scenario_fp: str
    mask: int
    score: JudgeScore


class Store:
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
            try:
                conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            except sqlite3.Error as e:
                raise _cache_error(self.path, e) from e
            try:
                # Checked before anything is written, so a file that is not a cache is left as it was.
                _check_cache_file(conn, self.path)
                # One transaction creates the tables and the schema row, so another process never sees
                # the tables without the row (which _check_cache_file would take for a foreign file).
                create = f"BEGIN IMMEDIATE;\n{_SCHEMA}\nINSERT OR IGNORE INTO meta VALUES ('schema', '{CACHE_SCHEMA}');\nCOMMIT;"
                for attempt in range(50):
                    try:
                        conn.execute("PRAGMA journal_mode=WAL")
                        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable against process crashes
                        conn.executescript(create)
                        break
                    except sqlite3.OperationalError as e:  # another process is creating the file right now
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        if not _is_busy(e) or attempt == 49:
                            raise
                        time.sleep(0.05)
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            except sqlite3.Error as e:
                conn.close()
                raise _cache_error(self.path, e) from e
            except BaseException:
                conn.close()
                raise
            if row is not None and str(row[0]) == "1":
                try:
                    conn.executescript(f"BEGIN IMMEDIATE;\n{_MIGRATE_1_TO_2}\nCOMMIT;")
                except sqlite3.OperationalError as e:  # another process upgraded it first
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    if "duplicate column" not in str(e) and not _is_busy(e):
                        conn.close()
                        raise _cache_error(self.path, e) from e
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is not None and str(row[0]) != str(CACHE_SCHEMA):
                conn.close()
                if not str(row[0]).isdigit():
                    raise _not_a_cache(self.path, f"its schema row is {row[0]!r}, not a version number")
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

    def _rows_of(self, select: str, keys: Sequence[str], order: str = "") -> list[tuple[Any, ...]]:
        """The rows of ``select ... WHERE ... key IN (keys)`` (``select`` ends in ``WHERE`` or ``AND``),
        asked 500 keys at a time (SQLite's limit on parameters)."""
        out: list[tuple[Any, ...]] = []
        with self._lock:
            conn = self.conn()
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                out += conn.execute(f"{select} key IN ({','.join('?' * len(chunk))}) {order}", chunk).fetchall()
        return out

    def get(self, keys: Sequence[str]) -> dict[str, JudgeScore]:
        rows = self._rows_of(
            "SELECT key, risk_sensitivity, emotional_empathy, personalization, response, raw, notes FROM judgments WHERE",
            keys,
        )
        return {
            key: JudgeScore(rs, ee, pe, response=response, raw=raw, notes=_notes(notes))
            for key, rs, ee, pe, response, raw, notes in rows
        }

    def failed(self, keys: Sequence[str]) -> dict[str, SimpleNamespace]:
        """The latest recorded permanent failure of each of ``keys`` that has one (its reason, raw
        replies, cause, answer and seeds)."""
        rows = self._rows_of(
            "SELECT key, reason, raw, cause, response, seeds FROM failures WHERE permanent = 1 AND", keys, "ORDER BY id"
        )
        return {
            key: SimpleNamespace(
                reason=reason,
                raw=tuple(json.loads(raw or "[]")),
                cause=cause or "unparseable",
                response=response or "",
                seeds=tuple(json.loads(seeds or "[]")),
                permanent=True,
            )
            for key, reason, raw, cause, response, seeds in rows  # the latest record of a key wins
        }

    def put(self, rows: Sequence[tuple[Any, ...]], failures: Sequence[tuple[Any, ...]] = ()) -> None:
        """Store judgments (the first one stored of a key wins) and failure records, in one transaction."""
        if not rows and not failures:
            return
        with self._lock:
            conn = self.conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(f"INSERT OR IGNORE INTO judgments ({_JUDGMENT_COLUMNS}) VALUES ({_marks(12)})", rows)
                conn.executemany(f"INSERT INTO failures ({_FAILURE_COLUMNS}) VALUES ({_marks(11)})", failures)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


_JUDGMENT_COLUMNS = (
    "key, judge, scenario_id, scenario_fp, revealed, risk_sensitivity, emotional_empathy, personalization, "
    "response, raw, created, notes"
)
_FAILURE_COLUMNS = "key, judge, scenario_id, revealed, reason, raw, created, cause, permanent, response, seeds"


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _notes(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text)) if text else ()


def _not_a_cache(path: str | Path, what: object) -> DataFormatError:
    return DataFormatError(f"{path}: not a penguin-gym judge cache ({what}); move it away or pass another --cache")


def _is_busy(e: sqlite3.Error) -> bool:
    return "locked" in str(e) or "busy" in str(e)


def _cache_error(path: str | Path, e: sqlite3.Error) -> PenguinError:
    """The penguin-gym error of an sqlite3 error on a judge cache file: another process holding it too
    long, a path SQLite cannot open, or (any other) a file that is not a cache."""
    if _is_busy(e):
        return JudgeError(f"judge cache {path} stayed locked by another process ({e}); try again when it is done")
    if "unable to open" in str(e):
        return ConfigError(f"cannot open the judge cache {path} ({e}); pass another --cache")
    return _not_a_cache(path, e)


def _check_cache_file(conn: sqlite3.Connection, path: str | Path) -> set[str]:
    """The tables of a judge cache file (none when it is new or empty).

    Raises:
        DataFormatError: when the file is an SQLite database of something else: tables but no
            ``judgments``, or a ``meta`` table without the ``schema`` row.
        sqlite3.DatabaseError: when it is not an SQLite database at all or is truncated (``file is not a
            database``, ``database disk image is malformed``); callers turn it into ``_cache_error``.
    """
    tables = {str(name) for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "judgments" not in tables:
        raise _not_a_cache(path, f"an SQLite database with tables {sorted(tables)[:8]} and no 'judgments' table")
    if "meta" in tables:
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.OperationalError as e:  # a meta table of other columns
            if _is_busy(e):
                raise
            raise _not_a_cache(path, f"its meta table is not ours: {e}") from e
        if row is None:
            raise _not_a_cache(path, "its meta table has no 'schema' row")
    return tables


def judge_names(path: str | Path) -> dict[str, int]:
    """The judges stored in a cache file, with their judgment counts.

    Raises:
        ConfigError: when there is no file at ``path``.
        DataFormatError: when the file is not a judge cache (not SQLite, truncated, another database).
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"no judge cache at {p}")
    try:
        conn = sqlite3.connect(p, timeout=60.0)
    except sqlite3.Error as e:
        raise _cache_error(p, e) from e
    try:
        if "judgments" not in _check_cache_file(conn, p):
            return {}
        rows = conn.execute("SELECT judge, COUNT(*) FROM judgments GROUP BY judge").fetchall()
    except sqlite3.Error as e:
        raise _cache_error(p, e) from e
    finally:
        conn.close()
    return {str(j): int(n) for j, n in rows}


def read_judgments(path: str | Path, judge_name: str | None = None) -> Iterator[CachedJudgment]:
    """The judgments in a cache file, of one judge.

    Args:
        path: The SQLite file.
        judge_name: Which judge's judgments; may be omitted when the file holds only one judge.

    Raises:
        ConfigError: when the file is missing, or holds several judges and none is named.
        DataFormatError: when the file is not a judge cache (not SQLite, truncated, another database).
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
    try:
        conn = sqlite3.connect(Path(path), timeout=60.0)
    except sqlite3.Error as e:
        raise _cache_error(path, e) from e
    try:
        cur = conn.execute(
            "SELECT judge, scenario_id, scenario_fp, revealed, risk_sensitivity, emotional_empathy, personalization, "
            "response, raw FROM judgments WHERE judge = ? ORDER BY scenario_id, revealed",
            (judge_name,),
        )
        for judge, sid, fp, mask, rs, ee, pe, response, raw in cur:
            yield CachedJudgment(judge, sid, fp, int(mask), JudgeScore(rs, ee, pe, response=response, raw=raw))
    except sqlite3.Error as e:  # a page damaged past the header, found while reading
        raise _cache_error(path, e) from e
    finally:
        conn.close()
