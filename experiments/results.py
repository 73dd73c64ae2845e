"""The resumable results folder: ``runs/<experiment>-<confighash>/``, written unit by unit.

An experiment plans *units* of work (a (responder, domain, chunk) of scenarios, an (agent, domain)
evaluation) and appends each unit's rows as it finishes (flushed and fsynced, closed by a marker line).
Started again with the same arguments, a run finds the same folder (``config_hash``) and skips the units
already written, so a run killed midway resumes where it stopped; a unit cut off by the kill (no marker,
or a half-written last line) is dropped and computed again. Hand-written rather than a database: a
folder of JSON Lines, JSON, CSV and PNG is what a reader opens, diffs and attaches to a report.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.locking import lock_folder, unlock_folder
from penguin_gym.error import ConfigError, DataFormatError

#: Bump when the meaning of a results row changes: old folders then no longer match a new run.
RESULTS_FORMAT = 1
#: Where results folders go unless ``--out`` names one.
DEFAULT_RUNS_DIR = "runs"


def config_hash(experiment: str, config: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> str:
    """A stable 10-hex-digit hash of what determines an experiment's results."""
    import penguin_gym

    blob = json.dumps(
        {
            "experiment": experiment,
            "config": dict(config),
            "extra": dict(extra or {}),
            "format": RESULTS_FORMAT,
            "penguin_gym": penguin_gym.__version__,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def derive_seed(*parts: object) -> int:
    """A 32-bit seed from any parts (hashlib, so it is the same on every machine and run)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


_UNIT_DONE = "__unit_done__"
#: The fix of every damaged results folder.
_FRESH_FIX = "rerun with --fresh or choose another --out"

_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ResultsDir:
    """A results folder that resumes: rows are appended unit by unit and skipped when present.

    Layout: ``config.json`` (the arguments and their hash), ``rows.jsonl`` (one JSON object per line;
    after each unit's rows a marker line ``{"__unit_done__": <unit>, "rows": n}``), ``summary.json``,
    ``*.csv``, ``*.png``, ``.lock`` and, with tracking, ``wandb/``.

    Reading is strict: a damaged ``config.json`` or ``rows.jsonl`` (not JSON, not UTF-8, a line that is
    not an object, a marker whose count is wrong, a row without one of ``row_fields``), or rows with no
    ``config.json`` to say which configuration wrote them, raise ``DataFormatError`` naming the file and
    line. Only what a kill leaves (a half-written last line, rows of a unit without its marker) is
    repaired, by dropping it.

    Locking: while a ``ResultsDir`` is open its process holds an exclusive ``flock`` on ``<folder>/.lock``
    (which holds its pid), so a second run on the same folder fails at once with ``ResultsLockedError``
    instead of interleaving rows. The lock is per process and re-entrant: the same process may open the
    folder again (a resumed run, a test) and the lock is released when every ``ResultsDir`` of the folder
    in that process is closed (``close()``, or ``with ResultsDir(...)``) or when the process exits. A
    forked child is another process and needs the lock of its own. Where ``fcntl`` is missing (Windows)
    or the file system refuses ``flock``, locking is skipped with a logged warning.

    Args:
        experiment: The experiment's name (``context_gap``, ``leaderboard``, ...).
        config: The arguments that determine the results (hashed).
        full_config: Every argument (recorded in ``config.json``).
        out: The folder; default ``<runs_dir>/<experiment>-<hash>``.
        runs_dir: Parent of the default folder.
        fresh: Discard what the folder holds.
        extra: Other things the results depend on (the judge's name), hashed with ``config``.
        row_fields: Fields every row must have (those the experiment's summary reads); a resumed row
            without one is a ``DataFormatError``, not a ``KeyError`` deep in the summary.

    Raises:
        ResultsLockedError: when another process is writing the folder.
        ConfigError: when the folder holds another configuration's results, or cannot be created.
        DataFormatError: when what the folder holds is damaged (the message names file and line).
    """

    def __init__(
        self,
        experiment: str,
        config: Mapping[str, Any],
        *,
        full_config: Mapping[str, Any] | None = None,
        out: str | Path | None = None,
        runs_dir: str | Path = DEFAULT_RUNS_DIR,
        fresh: bool = False,
        extra: Mapping[str, Any] | None = None,
        row_fields: Sequence[str] = (),
    ) -> None:
        self.experiment = experiment
        self.hash = config_hash(experiment, config, extra)
        self.path = Path(out) if out is not None else Path(runs_dir) / f"{experiment}-{self.hash}"
        self.rows_path = self.path / "rows.jsonl"
        self.row_fields = tuple(row_fields)
        self._units: dict[str, list[dict[str, Any]]] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._closed = False
        self._lock_key: str | None = None
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} is a file, not a results folder; choose another --out")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(
                f"cannot create the results folder {self.path} ({e.strerror}); choose another --out"
            ) from e
        self._lock_key = lock_folder(self.path)
        try:
            self._open(config, full_config, fresh, extra)
        except BaseException:
            self.close()
            raise
        self.resumed_units = len(self._units)

    def _open(
        self,
        config: Mapping[str, Any],
        full_config: Mapping[str, Any] | None,
        fresh: bool,
        extra: Mapping[str, Any] | None,
    ) -> None:
        cfg_path = self.path / "config.json"
        if fresh:
            # rows before config: a kill in between leaves a config without rows, never rows without one
            for name in ("rows.jsonl", "summary.json", "config.json"):
                (self.path / name).unlink(missing_ok=True)
        if cfg_path.exists():
            old = self._read_config(cfg_path)
            if old["hash"] != self.hash:
                raise ConfigError(
                    f"{self.path} holds results of another configuration (hash {old['hash']}, this run "
                    f"{self.hash}): pass --fresh to overwrite it or choose another --out"
                )
        else:
            strays = [name for name in ("rows.jsonl", "summary.json") if (self.path / name).exists()]
            if strays:
                raise DataFormatError(
                    f"{self.path} holds {' and '.join(strays)} but no config.json, so nothing says which "
                    f"configuration wrote them; {_FRESH_FIX}"
                )
            self.write_json(
                "config.json",
                {
                    "experiment": self.experiment,
                    "hash": self.hash,
                    "config": dict(full_config or config),
                    "extra": dict(extra or {}),
                },
            )
        self._load()

    def close(self) -> None:
        """Stop writing: drop this object's hold on the folder's lock (released when the process's last
        ``ResultsDir`` of the folder closes). Reading still works; writing raises ``ValueError``."""
        self._closed = True
        if self._lock_key is not None:
            key, self._lock_key = self._lock_key, None
            unlock_folder(key)

    def __enter__(self) -> ResultsDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self.path}: this ResultsDir is closed; open the folder again to write to it")

    # reading -------------------------------------------------------------------------------------
    @staticmethod
    def _read_config(cfg_path: Path) -> dict[str, Any]:
        """``config.json`` as a dict with a string ``hash``, or a ``DataFormatError`` saying what is wrong."""
        try:
            raw = cfg_path.read_bytes()
        except OSError as e:
            raise DataFormatError(f"{cfg_path}: cannot be read ({e.strerror}); {_FRESH_FIX}") from e
        if not raw.strip():
            raise DataFormatError(f"{cfg_path}: empty (a run cut off while writing it?); {_FRESH_FIX}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataFormatError(f"{cfg_path}: not UTF-8 text (byte {e.start}: {e.reason}); {_FRESH_FIX}") from e
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            early = e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated")
            what = "truncated JSON" if early else "not valid JSON"
            raise DataFormatError(f"{cfg_path}:{e.lineno}:{e.colno}: {what} ({e.msg}); {_FRESH_FIX}") from e
        if not isinstance(obj, dict):
            raise DataFormatError(
                f"{cfg_path}: holds a JSON {_JSON_KINDS.get(type(obj), type(obj).__name__)}, expected an object "
                f"with 'experiment', 'hash' and 'config'; {_FRESH_FIX}"
            )
        if "hash" not in obj:
            raise DataFormatError(f"{cfg_path}: lacks field 'hash' (it has {sorted(obj)}); {_FRESH_FIX}")
        if not isinstance(obj["hash"], str):
            raise DataFormatError(
                f"{cfg_path}: field 'hash' is {_short(obj['hash'])}, expected the configuration hash (a string); "
                f"{_FRESH_FIX}"
            )
        return obj

    def _load(self) -> None:
        """Read ``rows.jsonl``: the rows of every closed unit, checked line by line."""
        if not self.rows_path.exists():
            return
        units, meta, original, keep = parse_rows(self.rows_path, self.row_fields, self.experiment)
        for unit, rows in units.items():
            self._units.setdefault(unit, rows)
            self._meta.setdefault(unit, meta[unit])
        if keep != original:
            # Rows of a unit that was never closed: rewrite the file without them, atomically.
            tmp = self.rows_path.with_suffix(".jsonl.tmp")
            with open(tmp, "wb") as fh:
                fh.write(keep)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.rows_path)

    def is_done(self, unit: str) -> bool:
        """Whether ``unit``'s rows are in the folder (a resumed run skips it)."""
        return unit in self._units

    @property
    def done_units(self) -> frozenset[str]:
        """The units whose rows are in the folder."""
        return frozenset(self._units)

    def unit_rows(self, unit: str) -> list[dict[str, Any]]:
        """The rows ``unit`` wrote."""
        return self._units[unit]

    def unit_meta(self, unit: str) -> dict[str, Any]:
        """The ``meta`` the unit was written with (timings)."""
        return self._meta[unit]

    def rows(self, units: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The rows of ``units`` in that order (default: every unit, in the order written)."""
        keys = list(self._units) if units is None else list(units)
        missing = [u for u in keys if u not in self._units]
        if missing:
            raise KeyError(f"units not computed yet: {missing[:5]}")
        return [r for u in keys for r in self._units[u]]

    # writing -------------------------------------------------------------------------------------
    def append_unit(
        self, unit: str, rows: Sequence[Mapping[str, Any]], *, meta: Mapping[str, Any] | None = None
    ) -> None:
        """Append a unit's rows and its marker (with ``meta``, e.g. timings, kept out of the rows) in one
        write, then flush and fsync."""
        self._check_open()
        if unit in self._units:
            raise ValueError(f"unit {unit!r} is already in {self.rows_path}")
        copies = [dict(r) for r in rows]
        text = "".join(json.dumps(r, default=_json_default) + "\n" for r in copies)
        text += json.dumps({_UNIT_DONE: unit, "rows": len(copies), "meta": dict(meta or {})}) + "\n"
        with open(self.rows_path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        self._units[unit] = copies
        self._meta[unit] = dict(meta or {})

    def redo_units(self, units: Iterable[str]) -> None:
        """Forget ``units`` (their rows and markers leave ``rows.jsonl``, rewritten atomically), so that
        the run computes them again: ``--retry-failed`` does so for units with unscored items."""
        self._check_open()
        drop = set(units) & set(self._units)
        if not drop:
            return
        for unit in drop:
            del self._units[unit]
            self._meta.pop(unit, None)
        text = "".join(
            "".join(json.dumps(r, default=_json_default) + "\n" for r in rows)
            + json.dumps({_UNIT_DONE: unit, "rows": len(rows), "meta": self._meta.get(unit, {})})
            + "\n"
            for unit, rows in self._units.items()
        )
        tmp = self.rows_path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.rows_path)

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as indented JSON, atomically and durably (temp file, fsync, rename): a crash
        leaves the old file or the new one, never an empty or truncated one."""
        self._check_open()
        p = self.path / name
        tmp = p.with_suffix(p.suffix + ".tmp")
        text = json.dumps(obj, indent=2, default=_json_default) + "\n"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        return p

    def write_csv(self, name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
        """Write the table ``<folder>/<name>`` (``write_csv``)."""
        self._check_open()
        return write_csv(self.path / name, columns, rows)


def write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV table with a header row; floats to 6 significant digits."""
    p = Path(path)
    with open(p, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for r in rows:
            w.writerow([_csv_cell(x) for x in r])
    return p


def _csv_cell(x: Any) -> Any:
    if isinstance(x, float):
        return f"{x:.6g}"
    return x


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (frozenset, set)):
        return sorted(o)
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def parse_rows(
    where: Path, row_fields: Sequence[str] = (), experiment: str = "this experiment"
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]], bytes, bytes]:
    """Parse a results folder's ``rows.jsonl``, strictly (the ``ResultsDir`` rules), without writing.

    Returns ``(rows by unit, meta by unit, the file's bytes, the bytes to keep)``: what a kill leaves
    (a half-written last line, rows of a unit without its marker) is left out of the last two.
    """
    units: dict[str, list[dict[str, Any]]] = {}
    metas: dict[str, dict[str, Any]] = {}

    def check_row(lineno: int, row: Mapping[str, Any]) -> None:
        missing = [f for f in row_fields if f not in row]
        if missing:
            what = f"field {missing[0]!r}" if len(missing) == 1 else f"fields {missing}"
            raise DataFormatError(
                f"{where}:{lineno}: row lacks {what}, which {experiment} needs (the row has "
                f"{_short(sorted(row), 120)}); {_FRESH_FIX}"
            )

    try:
        original = raw = where.read_bytes()
    except OSError as e:
        raise DataFormatError(f"{where}: cannot be read ({e.strerror}); {_FRESH_FIX}") from e
    if raw and not raw.endswith(b"\n"):
        # A kill in the middle of a write: drop the half-written line.
        raw = raw[: raw.rfind(b"\n") + 1]
    pending: list[tuple[int, dict[str, Any]]] = []
    keep = bytearray()
    pending_bytes = bytearray()
    for lineno, line in enumerate(raw.splitlines(keepends=True), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise DataFormatError(
                f"{where}:{lineno}: not UTF-8 text (byte {e.start} of the line: {e.reason}); {_FRESH_FIX}"
            ) from e
        except json.JSONDecodeError as e:
            raise DataFormatError(f"{where}:{lineno}:{e.colno}: not valid JSON ({e.msg}); {_FRESH_FIX}") from e
        if not isinstance(obj, dict):
            raise DataFormatError(
                f"{where}:{lineno}: a JSON {_JSON_KINDS.get(type(obj), type(obj).__name__)}, expected an "
                f"object (a row or a unit marker); {_FRESH_FIX}"
            )
        if _UNIT_DONE in obj:
            unit, n, meta = obj[_UNIT_DONE], obj.get("rows"), obj.get("meta")
            if not isinstance(unit, str):
                raise DataFormatError(
                    f"{where}:{lineno}: field {_UNIT_DONE!r} is {_short(unit)}, expected the unit's name "
                    f"(a string); {_FRESH_FIX}"
                )
            if not isinstance(n, int) or isinstance(n, bool):
                seen = "missing" if "rows" not in obj else f"{_short(n)} ({type(n).__name__})"
                raise DataFormatError(
                    f"{where}:{lineno}: unit {unit!r}: field 'rows' is {seen}, expected the unit's row count "
                    f"(an integer); {_FRESH_FIX}"
                )
            if meta is not None and not isinstance(meta, dict):
                raise DataFormatError(
                    f"{where}:{lineno}: unit {unit!r}: field 'meta' is {_short(meta)}, expected an object; {_FRESH_FIX}"
                )
            if len(pending) != n:
                raise DataFormatError(
                    f"{where}:{lineno}: unit {unit!r} closes {n} rows but {len(pending)} precede it; {_FRESH_FIX}"
                )
            for row_line, row in pending:
                check_row(row_line, row)
            units.setdefault(unit, [row for _, row in pending])
            metas.setdefault(unit, dict(meta or {}))
            keep += pending_bytes + line
            pending, pending_bytes = [], bytearray()
        else:
            pending.append((lineno, obj))
            pending_bytes += line
    return units, metas, original, bytes(keep)


def read_results(folder: str | Path, row_fields: Sequence[str] = ()) -> tuple[dict[str, Any], ResultsRows]:
    """A results folder's ``config.json`` and rows, read only: no lock is taken and nothing is written
    (``leaderboard --from`` and ``compare --from`` read folders another run may own).

    Raises:
        ConfigError: when ``folder`` is not a folder.
        DataFormatError: when ``config.json`` or ``rows.jsonl`` is missing or damaged (file and line named).
    """
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such results folder")
    cfg_path = path / "config.json"
    if not cfg_path.exists():
        raise DataFormatError(f"{path}: no config.json, so this is not a results folder")
    config = ResultsDir._read_config(cfg_path)
    rows_path = path / "rows.jsonl"
    if not rows_path.exists():
        return config, ResultsRows({}, {})
    units, meta, _, _ = parse_rows(rows_path, row_fields, str(config.get("experiment", "the experiment")))
    return config, ResultsRows(units, meta)


@dataclasses.dataclass(frozen=True)
class ResultsRows:
    """The closed units of a results folder read by ``read_results``: rows and meta by unit."""

    units: dict[str, list[dict[str, Any]]]
    meta: dict[str, dict[str, Any]]

    def rows(self) -> list[dict[str, Any]]:
        """Every unit's rows, in the order written."""
        return [r for rows in self.units.values() for r in rows]


class Stopwatch:
    """Seconds since the run began (a summary's ``run.wall_s``)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0
