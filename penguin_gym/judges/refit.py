"""Refitting the ``SimulatedJudge`` to real judgments: a surrogate fast enough to train PPO on.

A GPU-day of LLM judging buys tens of thousands of judgments: too few to train an acquisition policy
on, plenty to fit the simulated judge's few dozen parameters. ``refit`` takes a ``ScoreTable`` (or the
judgments in a ``CachedJudge`` file, or a list of judged triples), fits the parameters of the simulated
judge's model (``penguin_gym.judges.simulated``) by damped Gauss-Newton (Levenberg-Marquardt, numpy
only, forward-difference Jacobian) on the squared error of the three dimension scores, and reports how
well the fitted surrogate reproduces them: R^2 of the safety score and of each dimension, and the
per-scenario Spearman rank correlation of subsets (does the surrogate rank the subsets of a scenario as
the LLM judge does? That is what an acquisition policy learns from).

Those numbers are given twice. **Held-out** first: k-fold cross-validation by scenario (each fold's
scenarios, with all their subsets, are left out of a fit by the same function and predicted by it), so
they say how well the surrogate does on scenarios it was not fitted to. **In-sample** second: on the
judgments fitted, which a fit of many parameters to few judgments matches whatever the truth (a dozen
judgments and 56 parameters give R^2 near 1). Too few judgments per fitted parameter, or too few
scenarios to cross-validate, raise an ``UnderdeterminedFitWarning`` and are listed in the report.

Fitted: the attribute weights (3 x 10, on a log scale), ``base_need``, the synergy strengths, ``kappa``,
the ceilings, context-free levels, risk penalties, dilution and attention costs, the query-cue coverage,
and optionally the domain boosts. A small ridge pull towards the starting parameters (``ridge``) keeps
directions the data cannot pin down (a weight scale traded against synergy strengths, the cue coverage
when no query shows a cue) where they were. The result is a ``SimulatedJudgeParams`` and, with ``out``, a
JSON preset that ``SimulatedJudge(params=path)`` (or the judge spec ``"simulated@path"``) loads.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from penguin_gym.data.schema import ATTRIBUTES, DOMAINS, Scenario, attribute_mask
from penguin_gym.error import ConfigError, PenguinError, UnderdeterminedFitWarning
from penguin_gym.judges.base import DIMENSIONS, JudgeScore
from penguin_gym.judges.simulated import SimulatedJudgeParams, risk_level

logger = logging.getLogger(__name__)

_NA = len(ATTRIBUTES)
_BITS = np.arange(_NA, dtype=np.int64)

#: Parameter groups that ``refit`` can fit (``fixed`` names those to keep).
PARAM_GROUPS: tuple[str, ...] = (
    "attribute_weight",
    "base_need",
    "synergies",
    "kappa",
    "cue_coverage",
    "ceiling",
    "context_free",
    "risk_penalty",
    "dilution",
    "attention_cost",
    "domain_boost",
)

Triple = tuple[Scenario, frozenset[str] | int, JudgeScore]

#: Fewer judgments than this per fitted parameter raise an ``UnderdeterminedFitWarning``.
MIN_JUDGMENTS_PER_PARAMETER = 10.0
#: A held-out safety R^2 this far below the in-sample one is reported as overfitting.
_OVERFIT_GAP = 0.1


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


@dataclass(frozen=True, slots=True)
class FitQuality:
    """How closely a surrogate's scores match judgments: held-out or in-sample (``FitReport`` says which).

    Attributes:
        r2: R^2 of the safety score (mean of the three dimensions).
        r2_dimensions: R^2 per dimension.
        rmse: Root mean squared error of the safety score.
        rmse_dimensions: Root mean squared error per dimension.
        spearman_mean: Mean over scenarios of the Spearman rank correlation between the observed and
            the predicted safety of that scenario's subsets (scenarios with >= 3 subsets that vary).
        spearman_median: Its median.
        spearman_min: Its minimum.
        n_spearman: Scenarios in the rank correlation.
        n_observations: Judgments compared.
    """

    r2: float
    r2_dimensions: dict[str, float]
    rmse: float
    rmse_dimensions: dict[str, float]
    spearman_mean: float
    spearman_median: float
    spearman_min: float
    n_spearman: int
    n_observations: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """Two lines: R^2 and RMSE (safety, then per dimension), and the per-scenario Spearman."""
        dims = ", ".join(f"{d} {self.r2_dimensions[d]:.3f} ({self.rmse_dimensions[d]:.3f})" for d in self.r2_dimensions)
        return (
            f"R^2 safety {self.r2:.4f}, RMSE {self.rmse:.4f}; per dimension R^2 (RMSE): {dims}\n"
            f"    per-scenario Spearman of subsets: mean {self.spearman_mean:.3f}, "
            f"median {self.spearman_median:.3f}, min {self.spearman_min:.3f} over {self.n_spearman} scenarios"
        )


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """How the held-out numbers were obtained: k-fold cross-validation by scenario.

    Attributes:
        folds: Folds used: the requested number, or the number of scenarios when there are fewer.
        seed: Seed of the assignment of scenarios to folds (``scenario_folds``).
        fold_scenarios: Scenarios held out in each fold.
        fold_observations: Judgments held out in each fold.
        fold_r2: Safety R^2 within each held-out fold (their spread shows how noisy the estimate is).
        iterations: Gauss-Newton iterations of each fold's fit.
        converged: Whether each fold's fit converged.
    """

    folds: int
    seed: int
    fold_scenarios: tuple[int, ...]
    fold_observations: tuple[int, ...]
    fold_r2: tuple[float, ...]
    iterations: tuple[int, ...]
    converged: tuple[bool, ...]

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True, slots=True)
class FitReport:
    """How well the fitted surrogate reproduces the judgments: held-out, then in-sample.

    Attributes:
        held_out: Quality on scenarios left out of the fit (the out-of-fold predictions of the
            cross-validation, pooled); ``None`` when there was none (``held_out_note`` says why). The
            numbers to judge the surrogate by.
        in_sample: Quality on the judgments fitted (all of them, including any left out of a ``max_obs``
            subsample): optimistic, the more so the fewer judgments per parameter.
        initial_r2: In-sample R^2 of the starting parameters, for comparison.
        n_observations: Judgments (scenario, subset) compared.
        n_scenarios: Scenarios among them.
        n_parameters: Parameters fitted.
        n_fit_observations: Judgments used for the fit (a random subsample when there are more than
            ``max_obs``).
        iterations: Gauss-Newton iterations run.
        converged: Whether the fit stopped because it stopped improving (not on ``max_iter``).
        seconds: Wall time of the fit, cross-validation included.
        source: The name of the judge whose judgments were fitted.
        fitted: The parameter groups fitted.
        cross_validation: The folds behind ``held_out`` (``None`` with it).
        held_out_note: Why ``held_out`` is ``None`` ("" when it is not).
        warnings: What makes these numbers unreliable (too few judgments per parameter, too few
            scenarios to cross-validate, overfitting), each also raised as an ``UnderdeterminedFitWarning``.
    """

    held_out: FitQuality | None
    in_sample: FitQuality
    initial_r2: float
    n_observations: int
    n_scenarios: int
    n_parameters: int
    n_fit_observations: int
    iterations: int
    converged: bool
    seconds: float
    source: str = ""
    fitted: tuple[str, ...] = field(default=())
    cross_validation: CrossValidation | None = None
    held_out_note: str = ""
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the held-out numbers first, then the in-sample ones (so labelled)."""
        return {
            "held_out": None if self.held_out is None else self.held_out.to_dict(),
            "held_out_note": self.held_out_note,
            "cross_validation": None if self.cross_validation is None else self.cross_validation.to_dict(),
            "in_sample": self.in_sample.to_dict(),
            "initial_r2": self.initial_r2,
            "warnings": list(self.warnings),
            "n_observations": self.n_observations,
            "n_scenarios": self.n_scenarios,
            "n_parameters": self.n_parameters,
            "n_fit_observations": self.n_fit_observations,
            "iterations": self.iterations,
            "converged": self.converged,
            "seconds": self.seconds,
            "source": self.source,
            "fitted": list(self.fitted),
        }

    def __str__(self) -> str:
        cv = self.cross_validation
        if self.held_out is not None and cv is not None:
            held = (
                f"  held-out ({cv.folds}-fold cross-validation by scenario, seed {cv.seed}; "
                f"fold R^2 {min(cv.fold_r2):.3f} to {max(cv.fold_r2):.3f}): {self.held_out.summary()}"
            )
        else:
            held = f"  held-out: none ({self.held_out_note})"
        lines = [
            f"fit of {self.n_parameters} parameters to {self.n_fit_observations} judgments ({self.n_observations} "
            f"compared, {self.n_scenarios} scenarios) in {self.iterations} iterations ({self.seconds:.1f}s, "
            f"{'converged' if self.converged else 'stopped at max_iter'})",
            held,
            f"  in-sample (the judgments fitted; optimistic; start R^2 {self.initial_r2:.4f}): {self.in_sample.summary()}",
            *(f"  WARNING: {w}" for w in self.warnings),
        ]
        return "\n".join(lines)


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


class _Layout:
    """Packs the fitted parameter groups into one vector (log scale for positive quantities)."""

    def __init__(self, init: SimulatedJudgeParams, groups: Sequence[str]) -> None:
        self.init = init
        self.groups = [g for g in PARAM_GROUPS if g in groups and not (g == "synergies" and not init.synergies)]
        sizes = {
            "attribute_weight": 3 * _NA,
            "base_need": 1,
            "synergies": len(init.synergies),
            "kappa": 1,
            "cue_coverage": 3,
            "ceiling": 3,
            "context_free": 3,
            "risk_penalty": 3,
            "dilution": 3,
            "attention_cost": 3,
            "domain_boost": len(DOMAINS) * _NA,
        }
        self.slices: dict[str, slice] = {}
        n = 0
        for g in self.groups:
            self.slices[g] = slice(n, n + sizes[g])
            n += sizes[g]
        self.size = n

    @staticmethod
    def _log(x: np.ndarray | float) -> np.ndarray:
        return np.log(np.maximum(np.asarray(x, dtype=np.float64), 1e-4))

    def pack(self, p: SimulatedJudgeParams) -> np.ndarray:
        theta = np.empty(self.size)
        values: dict[str, np.ndarray] = {
            "attribute_weight": self._log(p.attribute_weight).ravel(),
            "base_need": self._log(p.base_need).ravel(),
            "synergies": np.array([s for _, _, _, s in p.synergies], dtype=np.float64),
            "kappa": self._log(p.kappa).ravel(),
            "cue_coverage": p.cue_coverage,
            "ceiling": p.ceiling,
            "context_free": p.context_free,
            "risk_penalty": p.risk_penalty,
            "dilution": self._log(p.dilution),
            "attention_cost": self._log(p.attention_cost),
            "domain_boost": self._log(p.domain_boost).ravel(),
        }
        for g, sl in self.slices.items():
            theta[sl] = values[g]
        return theta

    def unpack(self, theta: np.ndarray, name: str | None = None) -> SimulatedJudgeParams:
        p = self.init
        changes: dict[str, Any] = {}
        for g, sl in self.slices.items():
            v = theta[sl]
            if g == "attribute_weight":
                changes[g] = np.exp(v).reshape(3, _NA)
            elif g in ("base_need", "kappa"):
                changes[g] = float(np.exp(v[0]))
            elif g == "synergies":
                changes[g] = tuple((a, b, w, float(s)) for (a, b, w, _), s in zip(p.synergies, v, strict=True))
            elif g in ("dilution", "attention_cost"):
                changes[g] = np.exp(v)
            elif g == "domain_boost":
                changes[g] = np.exp(v).reshape(len(DOMAINS), _NA)
            else:
                changes[g] = v.copy()
        if name is not None:
            changes["name"] = name
        return dataclasses.replace(p, **changes)


def _levenberg_marquardt(fun: Any, theta: np.ndarray, *, max_iter: int, tol: float) -> tuple[np.ndarray, int, bool]:
    """Minimise ``|fun(theta)|^2``; returns (theta, iterations, converged)."""
    r = fun(theta)
    cost = float(r @ r)
    lam = 1e-3
    for it in range(1, max_iter + 1):
        h = 1e-6 * np.maximum(1.0, np.abs(theta))
        jac = np.empty((r.size, theta.size))
        for j in range(theta.size):
            t = theta.copy()
            t[j] += h[j]
            jac[:, j] = (fun(t) - r) / h[j]
        a = jac.T @ jac
        g = jac.T @ r
        d = np.maximum(np.diag(a), 1e-12)
        accepted = False
        while lam < 1e10:
            try:
                step = np.linalg.solve(a + lam * np.diag(d), -g)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            r_new = fun(theta + step)
            c_new = float(r_new @ r_new)
            if np.isfinite(c_new) and c_new < cost:
                accepted = True
                break
            lam *= 10.0
        if not accepted:
            return theta, it, True
        improvement = (cost - c_new) / max(cost, 1e-300)
        theta, r, cost = theta + step, r_new, c_new
        lam = max(lam / 10.0, 1e-12)
        logger.debug("refit iteration %d: cost %.6g (lambda %.1e)", it, cost, lam)
        if improvement < tol:
            return theta, it, True
    return theta, max_iter, False


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


# --------------------------------------------------------------------------------------------------
# Scores of a fit


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    sst = float(((y - y.mean()) ** 2).sum())
    sse = float(((y - pred) ** 2).sum())
    return 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else 0.0)


def _rank(x: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as scipy.stats.rankdata)."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j)
        i = j + 1
    return ranks


def spearman_by_scenario(rows: np.ndarray, observed: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of observed vs predicted values within each scenario (row).

    Scenarios with fewer than 3 observations, or where either side is constant, are left out.
    """
    out = []
    order = np.argsort(rows, kind="stable")
    bounds = np.flatnonzero(np.diff(rows[order])) + 1
    for group in np.split(order, bounds):
        if group.size < 3:
            continue
        a, b = observed[group], predicted[group]
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            continue
        ra, rb = _rank(a), _rank(b)
        ra -= ra.mean()
        rb -= rb.mean()
        out.append(float(ra @ rb / np.sqrt((ra @ ra) * (rb @ rb))))
    return np.array(out)


def quality(y: np.ndarray, pred: np.ndarray, rows: np.ndarray) -> FitQuality:
    """R^2 and RMSE (safety and per dimension) and per-scenario Spearman of predictions ``pred`` of the
    judgments ``y`` (both ``(M, 3)``) of scenarios ``rows``: the one scoring of in-sample and held-out fits."""
    ys, ps = y.mean(axis=1), pred.mean(axis=1)
    rho = spearman_by_scenario(rows, ys, ps)
    return FitQuality(
        r2=_r2(ys, ps),
        r2_dimensions={d: _r2(y[:, k], pred[:, k]) for k, d in enumerate(DIMENSIONS)},
        rmse=float(np.sqrt(np.mean((ys - ps) ** 2))),
        rmse_dimensions={d: float(np.sqrt(np.mean((y[:, k] - pred[:, k]) ** 2))) for k, d in enumerate(DIMENSIONS)},
        spearman_mean=float(rho.mean()) if rho.size else float("nan"),
        spearman_median=float(np.median(rho)) if rho.size else float("nan"),
        spearman_min=float(rho.min()) if rho.size else float("nan"),
        n_spearman=int(rho.size),
        n_observations=len(y),
    )


def evaluate(params: SimulatedJudgeParams, data: FitData) -> FitQuality:
    """The quality of ``params`` on ``data`` (in-sample when ``data`` is what they were fitted to)."""
    return quality(data.y, predict(params, data), data.rows)


def scenario_folds(rows: np.ndarray, folds: int, *, seed: int = 0) -> np.ndarray:
    """Assign each judgment to one of ``folds`` cross-validation folds by its scenario.

    The subsets of one scenario are scored alike (they share its severities, domain and cue), so folds
    that split a scenario's judgments would let a fit see the scenario it is tested on. Scenarios are
    shuffled (``np.random.default_rng(seed)``) and dealt round-robin, so folds differ in size by at
    most one scenario.

    Args:
        rows: ``(M,)`` scenario of each judgment (``FitData.rows``).
        folds: Number of folds, between 2 and the number of scenarios.
        seed: Seed of the shuffle: the same seed gives the same folds.

    Returns:
        ``(M,)`` fold (``0 .. folds - 1``) of each judgment.

    Raises:
        ConfigError: when ``folds`` is not between 2 and the number of scenarios.
    """
    scen, inverse = np.unique(rows, return_inverse=True)
    if not 2 <= folds <= scen.size:
        raise ConfigError(
            f"{folds} folds of {scen.size} scenarios: cross-validation by scenario needs 2 <= folds <= scenarios"
        )
    fold_of = np.empty(scen.size, dtype=np.int64)
    fold_of[np.random.default_rng(seed).permutation(scen.size)] = np.arange(scen.size) % folds
    return fold_of[inverse.reshape(-1)]


# --------------------------------------------------------------------------------------------------
# The fit


class _Fit(NamedTuple):
    params: SimulatedJudgeParams
    iterations: int
    converged: bool
    n_fit: int


def _fit(
    layout: _Layout,
    data: FitData,
    *,
    ridge: float,
    max_iter: int,
    tol: float,
    max_obs: int,
    seed: int,
    name: str | None,
) -> _Fit:
    """The fit: ``layout``'s parameters to ``data`` (subsampled to ``max_obs``), responders re-anchored.

    The one definition of fitting, run on all judgments and on each cross-validation fold's training set.
    """
    init = layout.init
    n_obs = len(data.y)
    fit_set = data
    if n_obs > max_obs:
        idx = np.sort(np.random.default_rng(seed).choice(n_obs, size=max_obs, replace=False))
        fit_set = data.subset(idx)
    theta0 = layout.pack(init)
    scale = 1.0 / np.sqrt(fit_set.y.size)
    prior = np.sqrt(ridge)

    def residuals(theta: np.ndarray) -> np.ndarray:
        pred = predict(layout.unpack(theta), fit_set)
        return np.concatenate([((pred - fit_set.y) * scale).ravel(), prior * (theta - theta0)])

    theta, iterations, converged = _levenberg_marquardt(residuals, theta0, max_iter=max_iter, tol=tol)
    params = layout.unpack(theta, name=name)
    # Keep the responder presets' spacing, anchored so the reference sits at the fitted context-free level.
    free = dataclasses.replace(
        data,
        rows=np.arange(len(data.ids)),
        masks=np.zeros(len(data.ids), dtype=np.int64),
        y=np.zeros((len(data.ids), 3)),
    )
    level = float(predict(params, free).mean())
    ref = params.responders[params.reference_responder]
    params = dataclasses.replace(
        params, responders={k: round(v - ref + level, 4) for k, v in params.responders.items()}
    )
    return _Fit(params, iterations, converged, len(fit_set.y))


def _cross_validate(
    layout: _Layout, data: FitData, *, folds: int, seed: int, **fit_options: Any
) -> tuple[FitQuality, CrossValidation]:
    """Held-out quality: each fold's scenarios predicted by ``_fit`` on the other folds' judgments."""
    fold = scenario_folds(data.rows, folds, seed=seed)
    pred = np.empty_like(data.y)
    sizes, counts, fold_r2, iterations, converged = [], [], [], [], []
    for k in range(folds):
        test = np.flatnonzero(fold == k)
        held = data.subset(test)
        fit = _fit(layout, data.subset(np.flatnonzero(fold != k)), seed=seed, name=None, **fit_options)
        pred[test] = predict(fit.params, held)
        sizes.append(int(np.unique(held.rows).size))
        counts.append(int(test.size))
        fold_r2.append(_r2(held.y.mean(axis=1), pred[test].mean(axis=1)))
        iterations.append(fit.iterations)
        converged.append(fit.converged)
        logger.info("refit fold %d/%d: %d scenarios held out, R^2 %.4f", k + 1, folds, sizes[-1], fold_r2[-1])
    cv = CrossValidation(
        folds=folds,
        seed=seed,
        fold_scenarios=tuple(sizes),
        fold_observations=tuple(counts),
        fold_r2=tuple(fold_r2),
        iterations=tuple(iterations),
        converged=tuple(converged),
    )
    return quality(data.y, pred, data.rows), cv


def _warn(messages: list[str], message: str) -> None:
    messages.append(message)
    # stacklevel 3: the caller of refit, not this helper or refit itself
    warnings.warn(f"refit: {message}", UnderdeterminedFitWarning, stacklevel=3)


def refit(
    table_or_judgments: Any,
    scenarios: Sequence[Scenario] | None = None,
    *,
    init: SimulatedJudgeParams | str | Path | None = None,
    judge_name: str | None = None,
    fixed: Sequence[str] = ("domain_boost",),
    ridge: float = 1e-4,
    max_iter: int = 60,
    tol: float = 1e-7,
    max_obs: int = 20_000,
    folds: int = 5,
    min_judgments_per_parameter: float = MIN_JUDGMENTS_PER_PARAMETER,
    seed: int = 0,
    name: str = "refit",
    out: str | Path | None = None,
) -> tuple[SimulatedJudgeParams, FitReport]:
    """Fit the simulated judge's parameters to judgments, and say how well the fit does on unseen scenarios.

    The fit runs once on all judgments (the parameters returned) and once per cross-validation fold on
    the judgments of the other folds' scenarios; the report's ``held_out`` numbers are those folds'
    predictions of the scenarios they left out, its ``in_sample`` numbers the full fit's on the judgments
    it fitted. Too few judgments per parameter, or fewer scenarios than ``folds``, raise an
    ``UnderdeterminedFitWarning`` (and are listed in ``FitReport.warnings``).

    Args:
        table_or_judgments: A ``ScoreTable``, a ``CachedJudge``, a path to a table (``.npz``) or a
            cache (SQLite), or a sequence of ``(scenario, revealed set or bitmask, JudgeScore)``.
        scenarios: The judged scenarios (required for caches).
        init: Starting parameters (default: the packaged calibration); also the ridge's anchor and the
            source of everything not fitted (synergy pairs and dimension weights, responder presets).
        judge_name: For a cache holding several judges: whose judgments.
        fixed: Parameter groups to keep at ``init`` (from ``PARAM_GROUPS``; default keeps the 70
            domain boosts, which need many judgments per domain to pin down).
        ridge: Weight of the pull towards ``init`` (relative to the mean squared error).
        max_iter: Gauss-Newton iterations at most (per fit).
        tol: Stop when an iteration improves the cost by less than this fraction.
        max_obs: Fit on a random subsample of this many judgments when there are more (the report
            covers all of them).
        folds: Cross-validation folds, split by scenario (``scenario_folds``); as many as there are
            scenarios when there are fewer (with a warning). 0: no cross-validation (``held_out`` is
            ``None``), for a fit ``folds + 1`` times faster.
        min_judgments_per_parameter: Warn when there are fewer judgments than this per fitted parameter.
        seed: Seed of the subsample and of the folds.
        name: The fitted parameters' name (part of the judge's ``name``, so of cache keys).
        out: Write the fitted parameters (with the report under ``"_fit"``) to this JSON file.

    Returns:
        The fitted parameters and the report.

    Raises:
        ConfigError: on an unknown parameter group or an out-of-range option, and when there are no
            judgments.

    Example:
        >>> from penguin_gym.data import load_scenarios
        >>> from penguin_gym.judges import SimulatedJudge
        >>> from penguin_gym.judges.table import ScoreTable
        >>> scenarios = load_scenarios(domains="Career", n_per_domain=5)
        >>> table = ScoreTable.build(SimulatedJudge(), scenarios, max_size=3, progress=False)
        >>> params, report = refit(table, max_iter=3)
        >>> report.held_out.r2 > 0.99, report.cross_validation.folds, report.warnings
        (True, 5, ())
    """
    t0 = time.perf_counter()
    unknown = [g for g in fixed if g not in PARAM_GROUPS]
    if unknown:
        raise ConfigError(f"refit: unknown parameter groups {unknown} in fixed; valid: {list(PARAM_GROUPS)}")
    if ridge < 0 or max_iter < 0 or max_obs < 1 or min_judgments_per_parameter < 0:
        raise ConfigError(
            "refit: need ridge >= 0, max_iter >= 0, max_obs >= 1, min_judgments_per_parameter >= 0 "
            f"(got {ridge}, {max_iter}, {max_obs}, {min_judgments_per_parameter})"
        )
    if folds == 1 or folds < 0:
        raise ConfigError(f"refit: folds = {folds}; use 0 (no cross-validation) or at least 2 (default 5)")
    if not isinstance(init, SimulatedJudgeParams):
        init = SimulatedJudgeParams.load(init)
    data = fit_data(table_or_judgments, scenarios, judge_name=judge_name)
    n_obs = len(data.y)
    n_scen = int(np.unique(data.rows).size)
    layout = _Layout(init, [g for g in PARAM_GROUPS if g not in fixed])
    notes: list[str] = []
    need = math.ceil(min_judgments_per_parameter * layout.size)
    if n_obs < need:
        sizes = ", ".join(f"{g} {sl.stop - sl.start}" for g, sl in layout.slices.items())
        _warn(
            notes,
            f"{n_obs} judgments for {layout.size} fitted parameters ({n_obs / layout.size:.1f} per parameter, "
            f"fewer than {min_judgments_per_parameter:g}): the fit is underdetermined and its in-sample R^2 "
            f"says little. Judge more scenarios or subsets (>= {need} judgments), or fit fewer parameters "
            f"(fixed=... or --fix GROUP; fitted now: {sizes})",
        )
    held_out: FitQuality | None = None
    cv: CrossValidation | None = None
    held_out_note = ""
    if folds == 0:
        held_out_note = "cross-validation off (folds=0)"
    elif n_scen < 2:
        held_out_note = (
            f"cross-validation impossible: the judgments are of {n_scen} scenario and folds split by scenario"
        )
        _warn(
            notes,
            f"{held_out_note}, so there are no held-out numbers (held_out is None) and the in-sample ones "
            f"are all there is. Judge at least {folds} scenarios",
        )
    elif n_scen < folds:
        _warn(
            notes,
            f"{n_scen} scenarios for {folds} folds: cross-validating with {n_scen} folds (one scenario held out "
            f"in each), a noisy held-out estimate. Judge at least {folds} scenarios",
        )
    fit_options: dict[str, Any] = {"ridge": ridge, "max_iter": max_iter, "tol": tol, "max_obs": max_obs}
    initial = evaluate(init, data)
    logger.info(
        "refit: %d judgments of %d scenarios (%d used), %d parameters; start R^2 %.4f",
        n_obs,
        n_scen,
        min(n_obs, max_obs),
        layout.size,
        initial.r2,
    )
    fit = _fit(layout, data, seed=seed, name=name, **fit_options)
    in_sample = evaluate(fit.params, data)
    if folds and n_scen >= 2:
        held_out, cv = _cross_validate(layout, data, folds=min(folds, n_scen), seed=seed, **fit_options)
        if held_out.r2 < in_sample.r2 - _OVERFIT_GAP:
            _warn(
                notes,
                f"held-out R^2 {held_out.r2:.3f} is far below the in-sample {in_sample.r2:.3f}: the fit overfits "
                "the judgments it saw. Judge more scenarios, fit fewer parameters (fixed=...) or raise ridge",
            )
    report = FitReport(
        held_out=held_out,
        in_sample=in_sample,
        initial_r2=initial.r2,
        n_observations=n_obs,
        n_scenarios=n_scen,
        n_parameters=layout.size,
        n_fit_observations=fit.n_fit,
        iterations=fit.iterations,
        converged=fit.converged,
        seconds=time.perf_counter() - t0,
        source=data.source,
        fitted=tuple(layout.groups),
        cross_validation=cv,
        held_out_note=held_out_note,
        warnings=tuple(notes),
    )
    logger.info(
        "refit done: held-out R^2 %s, in-sample R^2 %.4f, %d warnings (%.1fs)",
        "none" if held_out is None else f"{held_out.r2:.4f}",
        in_sample.r2,
        len(notes),
        report.seconds,
    )
    if out is not None:
        save_params(fit.params, out, report)
    return fit.params, report


def save_params(params: SimulatedJudgeParams, path: str | Path, report: FitReport | None = None) -> None:
    """Write ``params`` as a JSON preset for ``SimulatedJudge(params=path)``, with the fit report if given."""
    d = params.to_dict()
    d["_about"] = (
        "SimulatedJudge parameters fitted by penguin_gym.judges.refit"
        + (f" to judgments of {report.source!r}" if report and report.source else "")
        + "; load with SimulatedJudge(params=<this file>) or the judge spec 'simulated@<this file>'."
    )
    if report is not None:
        d["_fit"] = report.to_dict()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(d, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """``python -m penguin_gym.judges.refit DATA --out fit.json``: fit and save a preset."""
    ap = argparse.ArgumentParser(
        prog="python -m penguin_gym.judges.refit",
        description="Fit the SimulatedJudge to a score table (.npz) or a judge cache (SQLite) and save a preset.",
    )
    ap.add_argument("data", help="a score table (.npz) or a judge cache (.sqlite)")
    ap.add_argument("--out", required=True, help="the JSON preset to write")
    ap.add_argument("--name", default="refit", help="the preset's name")
    ap.add_argument("--init", default=None, help="starting parameters (JSON; default: the packaged calibration)")
    ap.add_argument("--judge-name", default=None, help="whose judgments, when the cache holds several judges")
    ap.add_argument("--fit-domain-boost", action="store_true", help="fit the 70 domain boosts too")
    ap.add_argument(
        "--fix",
        nargs="+",
        default=[],
        choices=[g for g in PARAM_GROUPS if g != "domain_boost"],
        metavar="GROUP",
        help=f"parameter groups to keep at --init, for fewer parameters (from {', '.join(PARAM_GROUPS[:-1])})",
    )
    ap.add_argument(
        "--folds", type=int, default=5, help="cross-validation folds, split by scenario (0: no held-out numbers)"
    )
    ap.add_argument("--max-iter", type=int, default=60)
    ap.add_argument("--max-obs", type=int, default=20_000)
    ap.add_argument("--source", default="synthetic", help="scenario source, for caches")
    ap.add_argument("--domains", nargs="+", default=None, choices=list(DOMAINS), metavar="DOMAIN")
    ap.add_argument("--split", choices=["train", "test"], default=None)
    ap.add_argument("--n-per-domain", type=int, default=None)
    ap.add_argument(
        "--seed", type=int, default=0, help="seed of the scenario sample, the fit's subsample and the folds"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with warnings.catch_warnings():
        # an UnderdeterminedFitWarning as one log line when raised (the report repeats it at the end)
        warnings.showwarning = _log_warning
        return _run(args)


def _log_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    logger.warning("%s", message)


def _run(args: argparse.Namespace) -> int:
    try:
        scenarios = None
        if Path(args.data).suffix != ".npz":
            from penguin_gym.data import load_scenarios

            scenarios = load_scenarios(
                args.source, domains=args.domains, split=args.split, n_per_domain=args.n_per_domain, seed=args.seed
            )
        _, report = refit(
            args.data,
            scenarios,
            init=args.init,
            judge_name=args.judge_name,
            fixed=(*args.fix, *(() if args.fit_domain_boost else ("domain_boost",))),
            max_iter=args.max_iter,
            max_obs=args.max_obs,
            folds=args.folds,
            seed=args.seed,
            name=args.name,
            out=args.out,
        )
    except PenguinError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report)
    print(f"saved {args.out}; use SimulatedJudge(params={args.out!r}) or the judge spec 'simulated@{args.out}'")
    return 0


class _CallableModule(type(sys)):  # type: ignore[misc]
    """``penguin_gym.judges.refit`` is both this module and its ``refit`` function: once the module is
    imported, Python binds the package attribute ``refit`` to the module, so the module calls ``refit``."""

    def __call__(self, *args: Any, **kwargs: Any) -> tuple[SimulatedJudgeParams, FitReport]:
        return refit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule


if __name__ == "__main__":
    sys.exit(main())
