"""``ScoreTable``: every subset's score, precomputed by any judge, looked up in O(1).

A table holds, for a list of scenarios, the three rubric scores of each revealed subset of the ten
attributes: all 2^10 = 1,024 of them, or those up to ``max_size`` attributes (176 subsets up to size 3,
386 up to 4). It is built once by any judge (an ``LLMJudge`` behind a ``CachedJudge``, or the
``SimulatedJudge``), saved as one compressed ``.npz`` file, and then serves as a judge itself: envs bind
it to their scenarios and score by array indexing, at the speed of the simulated judge.

The file stores, besides the scores (float32, NaN where not judged), the judge's name, the scenarios'
ids and content fingerprints (a table never scores a scenario that changed since it was built), and
their severities, domains and risk cues, so a table alone is enough to refit the simulated judge
(``penguin_gym.judges.fitting``).

``ScoreTable.build`` is resumable: it rewrites the file atomically as it goes and a restarted build
skips every entry already in it. The command ``penguin-gym build-table`` (``experiments.build_table``)
drives it from the command line, with a judgment cache for LLM judges.

``ScoreTable.bind`` returns a ``BoundScoreTable`` (``penguin_gym.judges.table_bound``, re-exported here).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from penguin_gym.data.schema import ATTRIBUTES, Scenario, attribute_mask, mask_attributes
from penguin_gym.error import BackendError, ConfigError, JudgeBatchError, JudgeError
from penguin_gym.judges.base import Judge, JudgeBase, JudgeScore
from penguin_gym.judges.cache import scenario_fingerprint
from penguin_gym.judges.table_bound import BoundScoreTable, _take

logger = logging.getLogger(__name__)

TABLE_FORMAT = "penguin-score-table-v1"
_NA = len(ATTRIBUTES)
_ALL = 1 << _NA
_POPCOUNT = np.array([bin(m).count("1") for m in range(_ALL)], dtype=np.int64)


def subset_masks(max_size: int | None = None) -> np.ndarray:
    """The bitmasks of all subsets of the ten attributes with at most ``max_size`` members, ascending."""
    if max_size is None:
        return np.arange(_ALL, dtype=np.int64)
    if not 0 <= max_size <= _NA:
        raise ConfigError(f"max_size = {max_size} must be between 0 and {_NA} (or None for all 1,024 subsets)")
    return np.flatnonzero(_POPCOUNT <= max_size).astype(np.int64)


class ScoreTable(JudgeBase):
    """Precomputed scores of revealed subsets, usable as a judge.

    Build one with ``ScoreTable.build``, read one with ``ScoreTable.load``. Scoring a scenario the
    table does not hold raises ``ConfigError``; a subset it does not hold (larger than ``max_size``, or
    a judgment that failed during the build) raises ``JudgeError``.

    Attributes:
        judge_name: The name of the judge that built it.
        name: ``"table[<judge_name>]"``.
        ids: Scenario ids, one per row.
        masks: The subsets held, as bitmasks (ascending).
        values: The scores, ``(n scenarios, n subsets, 3)`` float32, NaN where not judged.
        max_size: The largest subset size held.

    Example:
        >>> from penguin_gym.data import load_scenarios
        >>> from penguin_gym.judges import SimulatedJudge
        >>> scenarios = load_scenarios(domains="Health", n_per_domain=3)
        >>> table = ScoreTable.build(SimulatedJudge(), scenarios, max_size=2, progress=False)
        >>> table.masks.size, table.n_missing
        (56, 0)
        >>> bound = table.bind(scenarios)
        >>> bound.scores(np.array([0, 2]), np.array([0, 0b11])).shape
        (2, 3)
    """

    def __init__(
        self,
        *,
        judge_name: str,
        ids: Sequence[str],
        fingerprints: Sequence[str],
        severity: np.ndarray,
        domain: np.ndarray,
        risk_cue: np.ndarray,
        masks: np.ndarray,
        values: np.ndarray,
    ) -> None:
        n, m = len(ids), len(masks)
        masks = np.asarray(masks, dtype=np.int64)
        values = np.asarray(values, dtype=np.float32)
        if values.shape != (n, m, 3):
            raise ConfigError(f"ScoreTable: values have shape {values.shape}, expected ({n}, {m}, 3)")
        if len(set(ids)) != n:
            raise ConfigError("ScoreTable: scenario ids are not unique")
        if m and (masks.min() < 0 or masks.max() >= _ALL or np.any(np.diff(masks) <= 0)):
            raise ConfigError("ScoreTable: masks must be distinct bitmasks in [0, 1024), ascending")
        self.judge_name = str(judge_name)
        self.name = f"table[{self.judge_name}]"
        self.ids = [str(i) for i in ids]
        self.fingerprints = [str(f) for f in fingerprints]
        self.severity = np.asarray(severity, dtype=np.float32).reshape(n, _NA)
        self.domain = np.asarray(domain, dtype=np.int64).reshape(n)
        self.risk_cue = np.asarray(risk_cue, dtype=np.float32).reshape(n)
        self.masks = masks
        self.values = values
        #: The judgments the last ``build`` left unscored, by cause.
        self.unscored: dict[str, int] = {}
        self.max_size = int(_POPCOUNT[masks].max()) if m else 0
        self._row = {sid: i for i, sid in enumerate(self.ids)}
        self._pos = np.full(_ALL, -1, dtype=np.int64)
        self._pos[masks] = np.arange(m)

    def __repr__(self) -> str:
        return (
            f"ScoreTable(judge={self.judge_name!r}, scenarios={len(self.ids)}, subsets={len(self.masks)}, "
            f"missing={self.n_missing})"
        )

    # ----------------------------------------------------------------------------------------------
    # construction

    @classmethod
    def empty(cls, judge_name: str, scenarios: Sequence[Scenario], masks: np.ndarray) -> ScoreTable:
        """A table for ``scenarios`` and ``masks`` with nothing judged yet."""
        n = len(scenarios)
        return cls(
            judge_name=judge_name,
            ids=[s.id for s in scenarios],
            fingerprints=[scenario_fingerprint(s) for s in scenarios],
            severity=np.array([s.severity_vector for s in scenarios], dtype=np.float32).reshape(n, _NA),
            domain=np.array([s.domain_index for s in scenarios], dtype=np.int64),
            risk_cue=np.array([s.risk_cue for s in scenarios], dtype=np.float32),
            masks=masks,
            values=np.full((n, len(masks), 3), np.nan, dtype=np.float32),
        )

    @classmethod
    def build(
        cls,
        judge: Judge,
        scenarios: Sequence[Scenario],
        max_size: int | None = None,
        path: str | Path | None = None,
        progress: bool = True,
        *,
        chunk_size: int | None = None,
        save_every: float = 30.0,
        max_unscored: float = 0.0,
    ) -> ScoreTable:
        """Judge every subset (up to ``max_size`` attributes) of every scenario.

        Args:
            judge: Any judge. Judges with a vectorized ``bind`` (``SimulatedJudge``, ``ScoreTable``) are
                scored in large array chunks; others through ``score_many`` in chunks of ``chunk_size``.
            scenarios: The scenarios (distinct ids).
            max_size: The largest subset size (``None``: all 1,024 subsets).
            path: Where to keep the table (``.npz``). When the file exists and was built by the same
                judge over the same subsets, its entries are kept and only the rest is judged; the
                file is rewritten atomically every ``save_every`` seconds and at the end.
            progress: Show a progress bar (Rich, on stderr).
            chunk_size: Judgments per call (default: 65,536 for vectorized judges, 64 otherwise).
            save_every: Seconds between intermediate saves.
            max_unscored: The fraction of this build's judgments that may stay unscored (left NaN,
                counted in ``unscored``) before the build fails.

        Returns:
            The table (saved at ``path`` when given); ``table.unscored`` counts this build's unscored
            judgments by cause.

        Raises:
            JudgeError: when more than ``max_unscored`` of the judgments failed; everything else is saved,
                and running the build again asks only for the failed entries (through a ``CachedJudge``:
                only with ``retry_failed``).
            BackendError: when an LLM backend fails for good; what was judged before is saved.
        """
        from rich.console import Console
        from rich.progress import Progress

        masks = subset_masks(max_size)
        ids = [s.id for s in scenarios]
        if len(set(ids)) != len(ids):
            raise ConfigError("ScoreTable.build: scenario ids are not unique")
        table = cls.empty(judge.name, scenarios, masks)
        if path is not None and Path(path).exists():
            table._merge(cls.load(path), path)
        vectorized = callable(getattr(judge, "bind", None))
        chunk = chunk_size or (65536 if vectorized else 64)
        if chunk < 1:
            raise ConfigError(f"ScoreTable.build: chunk_size = {chunk} must be >= 1")
        missing = np.isnan(table.values[:, :, 0])
        n_todo = int(missing.sum())
        n_failed = 0
        causes: dict[str, int] = {}
        first_error: str | None = None
        bound = judge.bind(list(scenarios)) if vectorized else None  # type: ignore[attr-defined]
        # A vectorized judge that scores all 1,024 subsets of a row at once (BoundSimulatedJudge.table).
        whole_rows = bound is not None and masks.size == _ALL and callable(getattr(bound, "table", None))
        last_save = time.monotonic()
        bar = Progress(console=Console(stderr=True), disable=not progress, transient=True)
        task = bar.add_task(f"table {judge.name}"[:60] + " (judgments)", total=n_todo)
        bar.start()

        def checkpoint(n_done: int) -> None:
            nonlocal last_save
            bar.advance(task, n_done)
            if path is not None and time.monotonic() - last_save > save_every:
                table.save(path)
                last_save = time.monotonic()

        try:
            if whole_rows:
                todo_rows = np.flatnonzero(missing.any(axis=1))
                step = max(1, chunk // _ALL)
                for start in range(0, todo_rows.size, step):
                    rows = todo_rows[start : start + step]
                    table.values[rows] = bound.table(rows).astype(np.float32)  # type: ignore[union-attr]
                    checkpoint(int(missing[rows].sum()))
            else:
                todo_r, todo_p = np.nonzero(missing)
                del missing
                for start in range(0, todo_r.size, chunk):
                    rows, pos = todo_r[start : start + chunk], todo_p[start : start + chunk]
                    if bound is not None:
                        table.values[rows, pos] = bound.scores(rows, masks[pos]).astype(np.float32)
                    else:
                        results: list[JudgeScore | None]
                        try:
                            results = list(
                                judge.score_many(
                                    [scenarios[r] for r in rows.tolist()],
                                    [mask_attributes(int(m)) for m in masks[pos]],
                                )
                            )
                        except JudgeBatchError as e:
                            results = [r if isinstance(r, JudgeScore) else None for r in e.results]
                            first_error = first_error or str(e)
                            transient = [f for f in e.failures if not getattr(f, "permanent", True)]
                            for f in e.failures:
                                cause = str(getattr(f, "cause", "unparseable"))
                                causes[cause] = causes.get(cause, 0) + 1
                        else:
                            transient = []
                        for r, p, sc in zip(rows.tolist(), pos.tolist(), results, strict=True):
                            if sc is None:
                                n_failed += 1
                            else:
                                table.values[r, p] = (sc.risk_sensitivity, sc.emotional_empathy, sc.personalization)
                        if transient:  # the server failed, not the items: stop, keep what is judged
                            raise BackendError(
                                f"{len(transient)} requests failed on the server's side; first: "
                                f"{getattr(transient[0], 'reason', transient[0])}"
                            )
                    checkpoint(int(rows.size))
        except (BackendError, KeyboardInterrupt):
            if path is not None:
                table.save(path)
                logger.warning("build interrupted; the %d entries judged so far are saved in %s", table.n_judged, path)
            raise
        finally:
            bar.stop()
        if path is not None:
            table.save(path)
        table.unscored = dict(sorted(causes.items()))
        if n_failed > max_unscored * n_todo:
            from penguin_gym.judges.llm import describe_causes

            where = f"; the rest is saved in {path} and building again asks only for these" if path else ""
            raise JudgeError(
                f"{n_failed} of {n_todo} judgments stayed unscored ({describe_causes(causes) or 'no cause recorded'}), more than max_unscored "
                f"{max_unscored:g} allows{where}; first: {first_error}"
            )
        return table

    def _merge(self, old: ScoreTable, path: str | Path) -> None:
        """Take over ``old``'s judged entries (same judge, same subsets, unchanged scenarios)."""
        if old.judge_name != self.judge_name:
            raise ConfigError(
                f"{path} was built by judge {old.judge_name!r}, not {self.judge_name!r}; choose another --out "
                "or the same judge"
            )
        if not np.array_equal(old.masks, self.masks):
            raise ConfigError(
                f"{path} holds subsets up to size {old.max_size}, not {self.max_size}; choose another --out or "
                f"--max-size {old.max_size}"
            )
        kept = changed = 0
        for i, (sid, fp) in enumerate(zip(self.ids, self.fingerprints, strict=True)):
            j = old._row.get(sid)
            if j is None:
                continue
            if old.fingerprints[j] != fp:
                changed += 1
                continue
            self.values[i] = old.values[j]
            kept += 1
        if changed:
            logger.warning("%s: %d scenarios changed since they were judged; judging them again", path, changed)
        logger.info(
            "%s: resuming with %d scenarios already in the table (%d entries judged)",
            path,
            kept,
            int(np.count_nonzero(~np.isnan(self.values[:, :, 0]))),
        )

    # ----------------------------------------------------------------------------------------------
    # files

    def save(self, path: str | Path) -> None:
        """Write the table to ``path`` (``.npz``), atomically: a crash mid-write keeps the old file."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + f".tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                format=np.array(TABLE_FORMAT),
                judge=np.array(self.judge_name),
                ids=np.array(self.ids, dtype=str),
                fingerprints=np.array(self.fingerprints, dtype=str),
                severity=self.severity,
                domain=self.domain.astype(np.int8),
                risk_cue=self.risk_cue,
                masks=self.masks.astype(np.int16),
                scores=self.values,
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)

    @classmethod
    def load(cls, path: str | Path) -> ScoreTable:
        """Read a table written by ``save``.

        Raises:
            ConfigError: when the file is missing or is not a readable score table (not a ``.npz``,
                truncated, an array missing, another format tag); the message names the file and the fix.
        """
        import zipfile
        import zlib

        p = Path(path)
        if not p.exists():
            raise ConfigError(f"no score table at {p}; build one with `penguin-gym build-table --out {p}`")
        needed = ("judge", "ids", "fingerprints", "severity", "domain", "risk_cue", "masks", "scores")  # as save writes
        fix = f"move it away and build it again (`penguin-gym build-table --out {p}`), or pass another table"

        def unreadable(what: str) -> ConfigError:
            return ConfigError(f"{p}: cannot read the score table: {' '.join(what.split())}; {fix}")

        try:
            with open(p, "rb") as fh:
                head = fh.read(4)
        except OSError as e:
            raise unreadable(e.strerror or str(e)) from e
        if not head.startswith(b"PK"):
            raise unreadable(
                "the file is empty"
                if not head
                else f"not a .npz archive (it starts with {head!r}; ScoreTable.save writes a zip file)"
            )
        try:
            with np.load(p, allow_pickle=False) as data:
                files = set(data.files)
                fmt = str(data["format"]) if "format" in files else None
                if fmt != TABLE_FORMAT:
                    raise ConfigError(
                        f"{p} is not a score table (format tag {fmt!r}, expected {TABLE_FORMAT!r}); {fix}"
                    )
                missing = [k for k in needed if k not in files]
                if missing:
                    raise unreadable(f"array(s) {missing} missing (it holds {sorted(files)})")
                arrays = {k: data[k] for k in needed}
        except ConfigError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            raise unreadable(f"the zip archive is truncated or damaged ({e})") from e
        except (OSError, ValueError, KeyError) as e:
            raise unreadable(f"{type(e).__name__}: {e}") from e
        try:
            n = len(arrays["ids"])
            return cls(
                judge_name=str(arrays["judge"]),
                ids=arrays["ids"].tolist(),
                fingerprints=arrays["fingerprints"].tolist() if n else [],
                severity=arrays["severity"],
                domain=arrays["domain"],
                risk_cue=arrays["risk_cue"],
                masks=arrays["masks"].astype(np.int64),
                values=arrays["scores"],
            )
        except (ConfigError, ValueError, TypeError) as e:  # arrays of the wrong shape or type
            raise unreadable(f"inconsistent arrays ({e})") from e

    # ----------------------------------------------------------------------------------------------
    # as a judge

    @property
    def n_missing(self) -> int:
        """Entries (scenario, subset) not judged (yet, or because the judgment failed)."""
        return int(np.count_nonzero(np.isnan(self.values[:, :, 0])))

    @property
    def n_judged(self) -> int:
        return int(self.values.shape[0] * self.values.shape[1]) - self.n_missing

    def __contains__(self, scenario_id: object) -> bool:
        return scenario_id in self._row

    def bind(self, scenarios: Sequence[Scenario], *, check: bool = True) -> BoundScoreTable:
        """The table over ``scenarios`` (rows in that order), for array lookups.

        Args:
            scenarios: Scenarios the table holds.
            check: Verify that each scenario is the one the table was built for (content fingerprint).

        Raises:
            ConfigError: for a scenario the table does not hold, or one that changed since.
        """
        return BoundScoreTable(self, scenarios, check=check)

    def score_many(self, scenarios: Sequence[Scenario], revealed: Sequence[frozenset[str]]) -> list[JudgeScore]:
        if len(scenarios) != len(revealed):
            raise ConfigError(f"ScoreTable: {len(scenarios)} scenarios but {len(revealed)} revealed sets")
        bound = self.bind(scenarios)
        masks = np.array([attribute_mask(r) for r in revealed], dtype=np.int64)
        return [JudgeScore.from_array(row) for row in bound.scores(np.arange(len(scenarios)), masks)]

    def lookup(self, scenario_id: str, revealed: frozenset[str] | int) -> np.ndarray:
        """The three scores of one entry, by scenario id and revealed set (names or bitmask)."""
        row = self._row.get(scenario_id)
        if row is None:
            raise ConfigError(f"scenario {scenario_id!r} is not in the score table ({len(self.ids)} scenarios)")
        mask = revealed if isinstance(revealed, int) else attribute_mask(revealed)
        return _take(self, np.array([row]), np.array([mask], dtype=np.int64))[0]
