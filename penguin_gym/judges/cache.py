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
the scores. The file's schema, connection and readers are in ``penguin_gym.judges.cache_file``; this
module is the public door to caches and names its readers in ``__all__``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from penguin_gym.data.schema import ATTRIBUTES, Scenario, attribute_mask
from penguin_gym.error import BackendError, ConfigError, JudgeBatchError
from penguin_gym.judges.base import Judge, JudgeBase, JudgeScore, close_judge
from penguin_gym.judges.cache_file import CACHE_SCHEMA, CachedJudgment, Store, judge_names, read_judgments

__all__ = [
    "CACHE_SCHEMA",
    "CachedJudge",
    "CachedJudgment",
    "judge_names",
    "judgment_key",
    "read_judgments",
    "scenario_fingerprint",
]

logger = logging.getLogger(__name__)


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


class CachedJudge(JudgeBase):
    """Any judge, with its judgments and its permanent failures kept in a SQLite file.

    Every judgment is committed as soon as the wrapped judge hands it over (an ``LLMJudge`` does so item
    by item), so a killed run loses only what was in flight. An item that failed for good (an empty
    answer, a judgment that stayed unreadable, a request the server refused) is recorded with its
    cause and raw replies; a later call serves that record as the item's failure without asking again,
    unless ``retry_failed``. Failures on the server's side (timeouts, 5xx after the backend's retries)
    are not recorded as permanent: the call stops with ``BackendError`` once everything before it is
    stored, and a later call asks for those items again.

    Args:
        judge: The judge to cache (an ``LLMJudge``, or any ``Judge``).
        path: The SQLite file (created if missing); share it between runs and processes.
        chunk_size: Judgments sent to ``judge`` per ``score_many`` call. Larger chunks batch better.
        retry_failed: Ask again for items whose permanent failure is recorded (``--retry-failed``).

    Attributes:
        hits: Judgments served from the file.
        misses: Judgments computed by ``judge`` (successful or not).
        failed_hits: Recorded failures served from the file.

    Example:
        >>> import tempfile, os
        >>> from penguin_gym.data import load_scenarios
        >>> from penguin_gym.judges import SimulatedJudge
        >>> s = load_scenarios(domains="Health", n_per_domain=1)[0]
        >>> cached = CachedJudge(SimulatedJudge(), os.path.join(tempfile.mkdtemp(), "judge.sqlite"))
        >>> cached.score(s, frozenset()) == cached.score(s, frozenset()), cached.hits
        (True, 1)
    """

    def __init__(self, judge: Judge, path: str | Path, *, chunk_size: int = 32, retry_failed: bool = False) -> None:
        if not (hasattr(judge, "score_many") and hasattr(judge, "name")):
            raise ConfigError(f"CachedJudge: {judge!r} does not implement the Judge protocol (name, score_many)")
        if chunk_size < 1:
            raise ConfigError(f"CachedJudge: chunk_size = {chunk_size} must be >= 1")
        self.judge = judge
        self.path = Path(path)
        self.chunk_size = int(chunk_size)
        self.retry_failed = bool(retry_failed)
        self.name = judge.name
        self.hits = 0
        self.misses = 0
        self.failed_hits = 0
        self._store = Store(self.path)
        # Fingerprints memoized per scenario object (held, so its id() cannot be reused): an edited
        # scenario under the same id is a different object and gets its own fingerprint.
        self._fps: dict[int, tuple[Scenario, str]] = {}
        self._streams = "on_result" in _parameters(judge.score_many)
        self._store.conn()  # fail now on an unusable path

    def __repr__(self) -> str:
        return f"CachedJudge({self.judge!r}, path={str(self.path)!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fps"] = {}
        return state

    def close(self) -> None:
        """Close this process's connection (reopened on next use) and the judge's (an ``LLMJudge``'s
        HTTP clients)."""
        self._store.close()
        close_judge(self.judge)

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
        """Scores from the file where stored; the rest judged chunk by chunk, each stored as it comes.

        Raises:
            JudgeBatchError: when some items failed for good (now or in an earlier call, unless
                ``retry_failed``): everything else is stored and in ``.results``; the failures are in
                ``.failures`` and in the file's ``failures`` table.
            BackendError: when some requests failed on the server's side after the backend's retries;
                everything judged before is stored, and a later call asks only for the rest.
        """
        from penguin_gym.judges.llm import JudgeFailure, count_causes, describe_causes

        if len(scenarios) != len(revealed):
            raise ConfigError(f"CachedJudge: {len(scenarios)} scenarios but {len(revealed)} revealed sets")
        revealed = [frozenset(r) for r in revealed]
        masks = [attribute_mask(r) for r in revealed]
        keys = [judgment_key(self.name, s.id, self._fingerprint(s), m) for s, m in zip(scenarios, masks, strict=True)]
        found = self._store.get(keys)
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        recorded = {} if self.retry_failed or not missing else self._store.failed(missing)
        todo: dict[str, int] = {}  # key -> first index needing it
        for i, k in enumerate(keys):
            if k not in found and k not in recorded and k not in todo:
                todo[k] = i
        self.hits += sum(1 for k in keys if k in found)
        self.failed_hits += sum(1 for k in keys if k in recorded)
        if not todo and not recorded:  # everything stored: the common case of a warm cache
            return [found[k] for k in keys]
        failed: dict[str, JudgeFailure] = {}
        transient: list[JudgeFailure] = []
        pending = list(todo.values())
        for start in range(0, len(pending), self.chunk_size):
            chunk = pending[start : start + self.chunk_size]
            self.misses += len(chunk)
            stored: set[int] = set()

            def store(
                j: int, item: JudgeScore | JudgeFailure, chunk: list[int] = chunk, stored: set[int] = stored
            ) -> None:
                i = chunk[j]
                stored.add(j)
                if isinstance(item, JudgeScore):
                    self._store.put([self._row(keys[i], scenarios[i], masks[i], item)])
                elif getattr(item, "permanent", True):
                    self._store.put([], [self._failure_row(keys[i], scenarios[i], masks[i], item)])
                    failed[keys[i]] = _reindex(item, i)
                else:
                    transient.append(_reindex(item, i))

            items = ([scenarios[i] for i in chunk], [revealed[i] for i in chunk])
            try:
                if self._streams:
                    scored = list(self.judge.score_many(*items, on_result=store))  # type: ignore[call-arg]
                else:
                    scored = list(self.judge.score_many(*items))
                results: list[JudgeScore | None] = list(scored)
                chunk_failures: list[Any] = []
            except JudgeBatchError as e:
                results = [r if isinstance(r, JudgeScore) else None for r in e.results]
                chunk_failures = list(e.failures)
            if len(results) != len(chunk):
                raise ConfigError(f"CachedJudge: {self.judge!r} returned {len(results)} scores for {len(chunk)} items")
            # What the judge did not hand over one by one (a judge outside this package) is stored now.
            for f in chunk_failures:
                j = getattr(f, "index", None)
                if isinstance(j, int) and 0 <= j < len(chunk) and j not in stored:
                    store(
                        j,
                        f
                        if isinstance(f, JudgeFailure)
                        else _as_failure(f, j, scenarios[chunk[j]], revealed[chunk[j]]),
                    )
            for j, sc in enumerate(results):
                if j in stored:
                    continue
                if sc is not None:
                    store(j, sc)
                else:  # scored None without a failure record
                    i = chunk[j]
                    store(j, _as_failure("no score and no failure record", j, scenarios[i], revealed[i]))
            if transient:
                n_saved = len(self)
                first = transient[0]
                raise BackendError(
                    f"{len(transient)} requests failed on the server's side ({first.cause}: {first.reason}); "
                    f"every judgment made so far is stored in {self.path} ({n_saved} of this judge); run again to "
                    "resume (only the missing ones are asked for)"
                )
        # Read back: when another process stored a key first, its judgment is the one everybody uses.
        final = self._store.get([k for k in dict.fromkeys(keys) if k not in failed and k not in recorded])
        out: list[JudgeScore | None] = [final.get(k) for k in keys]
        failures: list[JudgeFailure] = []
        for i, k in enumerate(keys):
            if k in failed:
                failures.append(_reindex(failed[k], i))
            elif k in recorded:
                failures.append(_as_failure(recorded[k], i, scenarios[i], revealed[i]))
        if failures:
            first = failures[0]
            raise JudgeBatchError(
                f"{len(failures)} of {len(keys)} judgments failed ({describe_causes(count_causes(failures))}; recorded in {self.path}, "
                f"asked again only with retry_failed / --retry-failed); first: scenario {first.scenario_id!r}: "
                f"{first.cause}: {first.reason}",
                results=list(out),
                failures=list(failures),
            )
        lost = [i for i, r in enumerate(out) if r is None]
        if lost:
            raise ConfigError(f"CachedJudge: {len(lost)} judgments vanished from {self.path} while in use")
        return [r for r in out if r is not None]

    def _row(self, key: str, scenario: Scenario, mask: int, sc: JudgeScore) -> tuple[Any, ...]:
        return (
            key,
            self.name,
            scenario.id,
            self._fingerprint(scenario),
            mask,
            float(sc.risk_sensitivity),
            float(sc.emotional_empathy),
            float(sc.personalization),
            sc.response,
            sc.raw,
            time.time(),
            json.dumps(list(sc.notes), ensure_ascii=False) if sc.notes else None,
        )

    def _failure_row(self, key: str, scenario: Scenario, mask: int, f: Any) -> tuple[Any, ...]:
        return (
            key,
            self.name,
            scenario.id,
            mask,
            str(getattr(f, "reason", f)),
            json.dumps(list(getattr(f, "raw", ())), ensure_ascii=False),
            time.time(),
            str(getattr(f, "cause", "unparseable")),
            1,
            str(getattr(f, "response", "") or ""),
            json.dumps(list(getattr(f, "seeds", ()))),
        )

    def failures(self) -> list[dict[str, Any]]:
        """The recorded failures of this judge (oldest first): key, scenario id, mask, reason, cause,
        raw replies, seeds."""
        rows = (
            self._store.conn()
            .execute(
                "SELECT key, scenario_id, revealed, reason, raw, created, cause, permanent, response, seeds "
                "FROM failures WHERE judge = ? ORDER BY id",
                (self.name,),
            )
            .fetchall()
        )
        return [
            {
                "key": k,
                "scenario_id": sid,
                "mask": m,
                "reason": r,
                "raw": json.loads(raw or "[]"),
                "created": c,
                "cause": cause or "unparseable",
                "permanent": bool(perm),
                "response": response or "",
                "seeds": json.loads(seeds or "[]"),
            }
            for k, sid, m, r, raw, c, cause, perm, response, seeds in rows
        ]

    def __len__(self) -> int:
        row = self._store.conn().execute("SELECT COUNT(*) FROM judgments WHERE judge = ?", (self.name,)).fetchone()
        return int(row[0])

    def judgments(self) -> list[CachedJudgment]:
        """Every judgment this judge has stored (for refitting)."""
        return list(read_judgments(self.path, self.name))


def _parameters(fn: Any) -> frozenset[str]:
    import inspect

    try:
        return frozenset(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return frozenset()


def _as_failure(what: object, index: int, scenario: Scenario, revealed: frozenset[str]) -> Any:
    """A ``JudgeFailure`` from any failure record (a recorded row, one of a judge outside this package)
    or a bare reason."""
    from penguin_gym.judges.llm import JudgeFailure

    return JudgeFailure(
        index=index,
        scenario_id=scenario.id,
        revealed=tuple(a for a in ATTRIBUTES if a in revealed),
        reason=str(getattr(what, "reason", what)),
        response=str(getattr(what, "response", "") or ""),
        raw=tuple(getattr(what, "raw", ()) or ()),
        cause=str(getattr(what, "cause", "unparseable")),
        permanent=bool(getattr(what, "permanent", True)),
        seeds=tuple(getattr(what, "seeds", ()) or ()),
    )


def _reindex(failure: Any, index: int) -> Any:
    """The failure record with ``index`` pointing into the caller's batch instead of the chunk."""
    if hasattr(failure, "__dataclass_fields__") and hasattr(failure, "index"):
        import dataclasses

        return dataclasses.replace(failure, index=index)  # type: ignore[type-var]
    return failure
