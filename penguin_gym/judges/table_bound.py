"""``BoundScoreTable``: a ``ScoreTable`` over a fixed list of scenarios, scored by array indexing.

``ScoreTable.bind`` makes one: it maps each scenario to its row of the table once (checking that the
scenario is the one the table was built for), so ``scores(rows, masks)`` is two index operations and
``score_one`` a single lookup. ``_take`` is the shared lookup with the precise errors (a subset the
table does not hold, an entry never judged); ``ScoreTable.lookup`` uses it too. This module imports
``ScoreTable`` for type checking only (``table`` imports this one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from penguin_gym.data.schema import ATTRIBUTES, Scenario, mask_attributes
from penguin_gym.error import ConfigError, JudgeError
from penguin_gym.judges.cache import scenario_fingerprint

if TYPE_CHECKING:
    from penguin_gym.judges.table import ScoreTable

_ALL = 1 << len(ATTRIBUTES)  # all subsets of the ten attributes (as in ``table``)


class BoundScoreTable:
    """A ``ScoreTable`` over a fixed scenario list: ``scores(rows, masks)`` is two index operations."""

    def __init__(self, table: ScoreTable, scenarios: Sequence[Scenario], *, check: bool = True) -> None:
        self.score_table = table
        self.scenarios = list(scenarios)
        rows = [table._row.get(s.id, -1) for s in self.scenarios]
        unknown = [s.id for s, r in zip(self.scenarios, rows, strict=True) if r < 0]
        if unknown:
            raise ConfigError(
                f"{len(unknown)} of {len(self.scenarios)} scenarios are not in the score table {table.name} "
                f"(e.g. {unknown[:3]}); build the table over these scenarios (penguin-gym build-table) "
                "or use its scenarios"
            )
        if check:
            changed = [
                s.id
                for s, r in zip(self.scenarios, rows, strict=True)
                if table.fingerprints[r] != scenario_fingerprint(s)
            ]
            if changed:
                raise ConfigError(
                    f"{len(changed)} scenarios changed since the score table was built (e.g. {changed[:3]}); "
                    "rebuild the table, or bind with check=False to use it anyway"
                )
        self.rows = np.asarray(rows, dtype=np.int64)

    def scores(self, rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Scores of ``scenarios[rows[j]]`` with revealed set ``masks[j]``: float64 ``(n, 3)``.

        Raises:
            JudgeError: for a subset the table does not hold.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        return _take(self.score_table, self.rows[rows], np.asarray(masks, dtype=np.int64).reshape(-1))

    def score_one(self, row: int, mask: int) -> np.ndarray:
        """``scores`` of a single (row, mask) without the batch machinery (the env's answer step)."""
        t = self.score_table
        if 0 <= mask < _ALL:
            pos = t._pos[mask]
            if pos >= 0:
                out = t.values[self.rows[row], pos].astype(np.float64)
                if not np.isnan(out[0]):
                    return out
        return _take(t, self.rows[[row]], np.array([mask], dtype=np.int64))[0]  # raises the precise error

    def table(self, rows: np.ndarray) -> np.ndarray:
        """Scores of every subset for each row, indexed by bitmask: ``(len(rows), 1024, 3)``.

        Only for tables of all 1,024 subsets with nothing missing; the same call as
        ``BoundSimulatedJudge.table``, so oracles and analyses take either.
        """
        t = self.score_table
        if t.masks.size != _ALL:
            raise JudgeError(f"{t.name} holds subsets up to size {t.max_size} only, not all 1,024")
        out = t.values[self.rows[np.asarray(rows, dtype=np.int64).reshape(-1)]].astype(np.float64)
        if np.isnan(out).any():
            raise JudgeError(f"{t.name}: some entries of these scenarios were never judged; finish the build")
        return out


def _take(table: ScoreTable, rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
    if masks.size and (masks.min() < 0 or masks.max() >= _ALL):
        bad = masks[(masks < 0) | (masks >= _ALL)][0]
        raise JudgeError(f"revealed-set bitmask {int(bad)} is outside [0, 1024)")
    pos = table._pos[masks]
    if (pos < 0).any():
        m = int(masks[pos < 0][0])
        raise JudgeError(
            f"{table.name} holds subsets of at most {table.max_size} attributes; revealed set "
            f"{sorted(mask_attributes(m))} has {bin(m).count('1')} (rebuild with a larger --max-size)"
        )
    out = table.values[rows, pos].astype(np.float64)
    if np.isnan(out).any():
        j = int(np.flatnonzero(np.isnan(out[:, 0]))[0])
        raise JudgeError(
            f"{table.name} has no score for scenario {table.ids[rows[j]]!r} with revealed set "
            f"{sorted(mask_attributes(int(masks[j])))} (its judgment failed or the build is unfinished; "
            "run the build again)"
        )
    return out
