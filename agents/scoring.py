"""Batched scoring for planners and oracles: net values of revealed sets, from whole tables or a cache.

The return of an episode that asks exactly the set ``U`` and then answers is the judge's safety of
``U`` minus the costs of ``U``'s questions (``EpisodeModel.net_value``). Planners evaluate many sets of
the same scenarios; three ways to get those values, from fastest to most frugal with judge calls:

* ``net_tables(model, rows)``: every one of the 1,024 sets per row in one broadcast when the judge
  offers ``table`` (``BoundSimulatedJudge``, a full ``BoundScoreTable``), else one batched
  ``model.net_value`` call over all sets (for a costly judge: 1,024 judgments per row).
* ``TableValues``: lookups in such tables.
* ``JudgeValues``: only the sets a search visits, each scored once (a cache) and all of a search step's
  new sets in one batched judge call (the way to plan with an LLM judge). With ``cache=False,
  batch=False`` it calls ``judge.score`` once per set: the unbatched reference of the speed benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from penguin_gym.data.schema import NUM_ATTRIBUTES, mask_attributes
from penguin_gym.judges.base import Judge
from penguin_gym.model import EpisodeModel
from penguin_gym.rules import net_value, safety_of_scores, set_costs

ALL_MASKS = np.arange(1 << NUM_ATTRIBUTES, dtype=np.int64)
#: Rows per broadcast in ``net_tables`` (a row's table is 1,024 x 3 floats; 256 rows = 6 MB).
_CHUNK = 256


def safety_tables(model: EpisodeModel, rows: Sequence[int] | np.ndarray) -> np.ndarray:
    """Safety (1-5) of every revealed set for each row: float64 ``(len(rows), 1024)``, indexed by bitmask.

    One broadcast per chunk of rows when the bound judge has ``table``; otherwise batched
    ``model.safety`` calls (every set of every row is judged once).
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    out = np.empty((len(rows), ALL_MASKS.size), dtype=np.float64)
    table = getattr(model.bound, "table", None)
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        if table is not None:
            out[start : start + len(chunk)] = safety_of_scores(table(chunk))
        else:
            r = np.repeat(chunk, ALL_MASKS.size)
            m = np.tile(ALL_MASKS, len(chunk))
            out[start : start + len(chunk)] = model.safety(r, m).reshape(len(chunk), ALL_MASKS.size)
    return out


def net_tables(model: EpisodeModel, rows: Sequence[int] | np.ndarray) -> np.ndarray:
    """Net value (safety minus question costs, in the reward's units) of every set per row:
    float64 ``(len(rows), 1024)``. Sets larger than the model's budget are included (callers mask them)."""
    return net_value(safety_tables(model, rows), set_costs(model.costs)[None, :], model.normalize_reward)


class ValueSource(Protocol):
    """Net values of revealed sets for the searches of one batched planning call.

    ``values(idx, masks, rng)`` returns the value of ``masks[j]`` for search ``idx[j]`` (float64).
    A belief-based source may sample (a profile per call), which is why it gets the rng.
    """

    def values(self, idx: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


class TableValues:
    """Values looked up in precomputed tables ``(n_searches, 1024)``."""

    def __init__(self, tables: np.ndarray) -> None:
        self.tables = np.asarray(tables, dtype=np.float64)
        self.calls = 0

    def values(self, idx: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        self.calls += 1
        return self.tables[idx, masks]


class JudgeValues:
    """Values from the env's judge for rows of ``model``, only for the sets asked for.

    Args:
        model: The episode model (judge, costs, reward scale).
        rows: The model row of each search.
        cache: Keep every (row, set) value; a set is judged at most once.
        batch: Score all of one call's new sets in one ``model.net_value`` call (one ``score_many`` of
            the judge). With ``batch=False`` each set is one ``judge.score`` call, unbatched.

    Attributes:
        judge_calls: How many times the judge was called (batched calls count once).
        judged: How many (scenario, set) pairs were judged.
    """

    def __init__(
        self, model: EpisodeModel, rows: Sequence[int] | np.ndarray, *, cache: bool = True, batch: bool = True
    ) -> None:
        self.model = model
        self.rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        self.cache: dict[tuple[int, int], float] | None = {} if cache else None
        self.batch = batch
        self.judge_calls = 0
        self.judged = 0
        self._costs = set_costs(model.costs).tolist()

    def values(self, idx: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rows = self.rows[np.asarray(idx, dtype=np.int64)]
        masks = np.asarray(masks, dtype=np.int64)
        out = np.empty(len(rows), dtype=np.float64)
        if not self.batch:
            judge: Judge = self.model.judge  # type: ignore[assignment]
            for j, (r, m) in enumerate(zip(rows.tolist(), masks.tolist(), strict=True)):
                hit = None if self.cache is None else self.cache.get((r, m))
                if hit is None:
                    score = judge.score(self.model.scenarios[r], mask_attributes(m))
                    hit = net_value(float(score.safety), self._costs[m], self.model.normalize_reward)
                    self.judge_calls += 1
                    self.judged += 1
                    if self.cache is not None:
                        self.cache[(r, m)] = hit
                out[j] = hit
            return out
        if self.cache is None:
            self.judge_calls += 1
            self.judged += len(rows)
            return self.model.net_value(rows, masks)
        missing: dict[tuple[int, int], list[int]] = {}
        for j, key in enumerate(zip(rows.tolist(), masks.tolist(), strict=True)):
            hit = self.cache.get(key)
            if hit is None:
                missing.setdefault(key, []).append(j)
            else:
                out[j] = hit
        if missing:
            keys = list(missing)
            vals = self.model.net_value(np.array([k[0] for k in keys]), np.array([k[1] for k in keys]))
            self.judge_calls += 1
            self.judged += len(keys)
            for key, v in zip(keys, vals.tolist(), strict=True):
                self.cache[key] = v
                out[missing[key]] = v
        return out


__all__ = [
    "ALL_MASKS",
    "JudgeValues",
    "TableValues",
    "ValueSource",
    "net_tables",
    "safety_tables",
]
