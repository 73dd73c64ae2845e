"""Judgments in array form, and the simulated judge's scores of them: what ``refit`` fits.

``FitData`` holds judgments as arrays (each scenario's features once, one row per judged subset);
``fit_data`` reads them from any source (a ``ScoreTable``, a ``CachedJudge`` or its file, judged
triples), and ``predict`` is the simulated judge's model over those arrays: the same arithmetic as
``BoundSimulatedJudge`` (``penguin_gym.judges.simulated``; ``tests/test_refit.py`` checks them equal),
written over observations rather than a scenario table so that a fit can evaluate it thousands of
times on a subsample.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from penguin_gym.data.schema import ATTRIBUTES, Scenario, attribute_mask
from penguin_gym.error import ConfigError
from penguin_gym.judges.base import JudgeScore
from penguin_gym.judges.simulated import SimulatedJudgeParams, risk_level

logger = logging.getLogger(__name__)

_NA = len(ATTRIBUTES)
_BITS = np.arange(_NA, dtype=np.int64)

Triple = tuple[Scenario, frozenset[str] | int, JudgeScore]


@dataclass(frozen=True, slots=True)
class FitData:
    """Judgments in array form: scenario features and one row per (scenario, subset) observation.

    Attributes:
        ids: Scenario ids.
        severity: ``(S, 10)`` severities.
        domain: ``(S,)`` domain indices.
        risk_cue: ``(S,)`` query risk cues.
        rows: ``(M,)`` scenario row of each observation.
        masks: ``(M,)`` revealed-set bitmask of each observation.
        y: ``(M, 3)`` observed dimension scores.
        source: What the judgments came from (the judge's name).
        known: ``(S, 10)`` 1 where the scenario records the attribute, 0 where it is missing
            (``Scenario.missing``); ``None``: every attribute recorded.
    """

    ids: list[str]
    severity: np.ndarray
    domain: np.ndarray
    risk_cue: np.ndarray
    rows: np.ndarray
    masks: np.ndarray
    y: np.ndarray
    source: str = ""
    known: np.ndarray | None = None

    def subset(self, idx: np.ndarray) -> FitData:
        return dataclasses.replace(self, rows=self.rows[idx], masks=self.masks[idx], y=self.y[idx])


# --------------------------------------------------------------------------------------------------
# The model (the same arithmetic as BoundSimulatedJudge, over observation arrays)


def predict(params: SimulatedJudgeParams, data: FitData, offset: float = 0.0) -> np.ndarray:
    """The simulated judge's scores ``(M, 3)`` of every observation in ``data`` (noise-free).

    Identical to ``SimulatedJudge(params=params)`` with the reference responder (``offset`` shifts the
    context-free level as a responder preset does).
    """
    p = params
    sev = data.severity.astype(np.float64)
    known = np.ones_like(sev) if data.known is None else data.known.astype(np.float64)
    need = (
        p.attribute_weight[None, :, :]
        * p.domain_boost[data.domain][:, None, :]
        * ((p.base_need + sev) * known)[:, None, :]
    )
    if p.synergies:
        syn_need = np.stack(
            [
                w[None, :] * s * (sev[:, a] * sev[:, b] * known[:, a] * known[:, b])[:, None]
                for a, b, w, s in p.synergies
            ],
            axis=-1,
        )
        pairs = np.array([(1 << a) | (1 << b) for a, b, _, _ in p.synergies], dtype=np.int64)
    else:
        syn_need = np.zeros((len(sev), 3, 0))
        pairs = np.zeros(0, dtype=np.int64)
    total = need.sum(axis=2) + syn_need.sum(axis=2)
    inv_total = 1.0 / total
    share = need * inv_total[:, :, None]
    dilute = p.attention_cost[None, :, None] + p.dilution[None, :, None] * np.clip(1.0 - _NA * share, 0.0, None)
    q = np.clip(p.cue_coverage[None, :] * data.risk_cue.astype(np.float64)[:, None], 0.0, 1.0)
    base = p.context_free[None, :] + offset - p.risk_penalty[None, :] * risk_level(sev)[:, None]
    span = p.ceiling[None, :] - base
    rows, masks = data.rows, data.masks
    bits = ((masks[:, None] >> _BITS) & 1).astype(np.float64)
    cov = np.einsum("mka,ma->mk", need[rows], bits)
    if pairs.size:
        both = ((masks[:, None] & pairs) == pairs).astype(np.float64)
        cov += np.einsum("mks,ms->mk", syn_need[rows], both)
    c = np.clip(cov * inv_total[rows], 0.0, 1.0)
    qr = q[rows]
    c = qr + (1.0 - qr) * c
    gain = (1.0 - np.exp(-p.kappa * c)) / (1.0 - np.exp(-p.kappa))
    out = base[rows] + span[rows] * gain - np.einsum("mka,ma->mk", dilute[rows], bits)
    return np.clip(out, 1.0, 5.0)


# --------------------------------------------------------------------------------------------------
# Data


def _features(scenarios: Sequence[Scenario]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(scenarios)
    return (
        np.array([s.severity_vector for s in scenarios], dtype=np.float64).reshape(n, _NA),
        np.array([s.domain_index for s in scenarios], dtype=np.int64),
        np.array([s.risk_cue for s in scenarios], dtype=np.float64),
    )


def fit_data(data: Any, scenarios: Sequence[Scenario] | None = None, *, judge_name: str | None = None) -> FitData:
    """Judgments in array form, from a ``ScoreTable``, a ``CachedJudge``, a file (``.npz`` table or
    SQLite cache), or a sequence of ``(scenario, revealed, JudgeScore)`` triples.

    Args:
        data: The judgments.
        scenarios: The scenarios judged (needed for caches: they store ids, not features).
        judge_name: For a cache file holding several judges: whose judgments.

    Raises:
        ConfigError: when there are no usable judgments, or a cache comes without its scenarios.
    """
    from penguin_gym.judges.cache import CachedJudge, read_judgments, scenario_fingerprint
    from penguin_gym.judges.table import ScoreTable

    if isinstance(data, (str, Path)):
        path = Path(data)
        data = ScoreTable.load(path) if path.suffix == ".npz" else path
    if isinstance(data, ScoreTable):
        r, p = np.nonzero(~np.isnan(data.values[:, :, 0]))
        if r.size == 0:
            raise ConfigError(f"{data.name} holds no judgments to fit")
        return FitData(
            ids=list(data.ids),
            severity=data.severity.astype(np.float64),
            domain=data.domain.copy(),
            risk_cue=data.risk_cue.astype(np.float64),
            rows=r.astype(np.int64),
            masks=data.masks[p],
            y=data.values[r, p].astype(np.float64),
            source=data.judge_name,
        )
    if isinstance(data, (CachedJudge, Path)):
        if scenarios is None:
            raise ConfigError(
                "refitting from a judge cache needs the judged scenarios (scenarios=...); "
                "the cache stores their ids only"
            )
        path = data.path if isinstance(data, CachedJudge) else data
        name = data.name if isinstance(data, CachedJudge) else judge_name
        by_id = {s.id: s for s in scenarios}
        fps: dict[str, str] = {}
        triples: list[Triple] = []
        skipped = 0
        source = ""
        for j in read_judgments(path, name):
            s = by_id.get(j.scenario_id)
            if s is not None and j.scenario_fp != fps.setdefault(s.id, scenario_fingerprint(s)):
                s = None
            if s is None:
                skipped += 1
                continue
            source = j.judge
            triples.append((s, j.mask, j.score))
        if skipped:
            logger.warning("%s: %d judgments are of scenarios not given (or changed since); left out", path, skipped)
        data = triples
        judge_name = source
    triples = list(data)
    if not triples:
        raise ConfigError("no judgments to fit")
    index: dict[str, int] = {}
    scen: list[Scenario] = []
    rows, masks, y = [], [], []
    for item in triples:
        if len(item) != 3:
            raise ConfigError(f"a judgment must be (scenario, revealed, JudgeScore), got {item!r}")
        s, rev, sc = item
        if s.id not in index:
            index[s.id] = len(scen)
            scen.append(s)
        rows.append(index[s.id])
        masks.append(rev if isinstance(rev, (int, np.integer)) else attribute_mask(rev))
        y.append((sc.risk_sensitivity, sc.emotional_empathy, sc.personalization))
    sev, dom, cue = _features(scen)
    return FitData(
        ids=[s.id for s in scen],
        severity=sev,
        domain=dom,
        risk_cue=cue,
        rows=np.array(rows, dtype=np.int64),
        masks=np.array(masks, dtype=np.int64),
        y=np.array(y, dtype=np.float64),
        source=judge_name or "",
        known=np.array([[a not in s.missing for a in ATTRIBUTES] for s in scen], dtype=np.float64).reshape(-1, _NA),
    )
