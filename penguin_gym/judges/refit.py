"""Refitting the ``SimulatedJudge`` to real judgments: a surrogate fast enough to train PPO on.

A GPU-day of LLM judging buys tens of thousands of judgments: too few to train an acquisition policy
on, plenty to fit the simulated judge's few dozen parameters. ``refit`` takes a ``ScoreTable`` (or the
judgments in a ``CachedJudge`` file, or a list of judged triples), fits the parameters of the simulated
judge's model (``penguin_gym.judges.simulated``) by damped Gauss-Newton (Levenberg-Marquardt, numpy
only, forward-difference Jacobian) on the squared error of the three dimension scores, and reports how
well the fitted surrogate reproduces them: R^2 of the safety score and of each dimension, and the
per-scenario Spearman rank correlation of subsets (does the surrogate rank the subsets of a scenario as
the LLM judge does? That is what an acquisition policy learns from).

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
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from penguin_gym.data.schema import ATTRIBUTES, DOMAINS, Scenario, attribute_mask
from penguin_gym.error import ConfigError, PenguinError
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
class FitReport:
    """How well the fitted surrogate reproduces the judgments.

    Attributes:
        r2: R^2 of the safety score (mean of the three dimensions) over all observations.
        r2_dimensions: R^2 per dimension.
        rmse: Root mean squared error of the safety score.
        spearman_mean: Mean over scenarios of the Spearman rank correlation between the observed and
            the fitted safety of that scenario's subsets (scenarios with >= 3 subsets that vary).
        spearman_median: Its median.
        spearman_min: Its minimum.
        initial_r2: R^2 of the starting parameters, for comparison.
        n_observations: Judgments (scenario, subset) compared.
        n_scenarios: Scenarios among them.
        n_fit_observations: Judgments used for the fit (a random subsample when there are more than
            ``max_obs``).
        n_spearman: Scenarios in the rank correlation.
        iterations: Gauss-Newton iterations run.
        converged: Whether the fit stopped because it stopped improving (not on ``max_iter``).
        seconds: Wall time of the fit.
        source: The name of the judge whose judgments were fitted.
    """

    r2: float
    r2_dimensions: dict[str, float]
    rmse: float
    spearman_mean: float
    spearman_median: float
    spearman_min: float
    initial_r2: float
    n_observations: int
    n_scenarios: int
    n_fit_observations: int
    n_spearman: int
    iterations: int
    converged: bool
    seconds: float
    source: str = ""
    fitted: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["fitted"] = list(self.fitted)
        return d

    def __str__(self) -> str:
        dims = ", ".join(f"{k} {v:.3f}" for k, v in self.r2_dimensions.items())
        return (
            f"fit of {self.n_fit_observations} judgments ({self.n_observations} compared, {self.n_scenarios} "
            f"scenarios) in {self.iterations} iterations ({self.seconds:.1f}s, "
            f"{'converged' if self.converged else 'stopped at max_iter'})\n"
            f"  R^2 safety {self.r2:.4f} (start {self.initial_r2:.4f}); per dimension: {dims}\n"
            f"  RMSE safety {self.rmse:.4f}\n"
            f"  per-scenario Spearman of subsets: mean {self.spearman_mean:.3f}, median {self.spearman_median:.3f}, "
            f"min {self.spearman_min:.3f} over {self.n_spearman} scenarios"
        )


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


def evaluate(params: SimulatedJudgeParams, data: FitData) -> dict[str, Any]:
    """R^2 (safety and per dimension), RMSE and per-scenario Spearman of ``params`` on ``data``."""
    pred = predict(params, data)
    ys, ps = data.y.mean(axis=1), pred.mean(axis=1)
    rho = spearman_by_scenario(data.rows, ys, ps)
    return {
        "r2": _r2(ys, ps),
        "r2_dimensions": {d: _r2(data.y[:, k], pred[:, k]) for k, d in enumerate(DIMENSIONS)},
        "rmse": float(np.sqrt(np.mean((ys - ps) ** 2))),
        "spearman_mean": float(rho.mean()) if rho.size else float("nan"),
        "spearman_median": float(np.median(rho)) if rho.size else float("nan"),
        "spearman_min": float(rho.min()) if rho.size else float("nan"),
        "n_spearman": int(rho.size),
    }


# --------------------------------------------------------------------------------------------------
# The fit


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
    seed: int = 0,
    name: str = "refit",
    out: str | Path | None = None,
) -> tuple[SimulatedJudgeParams, FitReport]:
    """Fit the simulated judge's parameters to judgments.

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
        max_iter: Gauss-Newton iterations at most.
        tol: Stop when an iteration improves the cost by less than this fraction.
        max_obs: Fit on a random subsample of this many judgments when there are more (the report
            covers all of them).
        seed: Seed of that subsample.
        name: The fitted parameters' name (part of the judge's ``name``, so of cache keys).
        out: Write the fitted parameters (with the report under ``"_fit"``) to this JSON file.

    Returns:
        The fitted parameters and the report.

    Example:
        >>> from penguin_gym.data import load_scenarios
        >>> from penguin_gym.judges import SimulatedJudge
        >>> from penguin_gym.judges.table import ScoreTable
        >>> scenarios = load_scenarios(domains="Career", n_per_domain=4)
        >>> table = ScoreTable.build(SimulatedJudge(), scenarios, max_size=3, progress=False)
        >>> params, report = refit(table, max_iter=3)
        >>> report.r2 > 0.99
        True
    """
    t0 = time.perf_counter()
    unknown = [g for g in fixed if g not in PARAM_GROUPS]
    if unknown:
        raise ConfigError(f"refit: unknown parameter groups {unknown} in fixed; valid: {list(PARAM_GROUPS)}")
    if ridge < 0 or max_iter < 0 or max_obs < 1:
        raise ConfigError(f"refit: need ridge >= 0, max_iter >= 0, max_obs >= 1 (got {ridge}, {max_iter}, {max_obs})")
    if not isinstance(init, SimulatedJudgeParams):
        init = SimulatedJudgeParams.load(init)
    data = fit_data(table_or_judgments, scenarios, judge_name=judge_name)
    n_obs = len(data.y)
    fit_set = data
    if n_obs > max_obs:
        idx = np.sort(np.random.default_rng(seed).choice(n_obs, size=max_obs, replace=False))
        fit_set = data.subset(idx)
    layout = _Layout(init, [g for g in PARAM_GROUPS if g not in fixed])
    theta0 = layout.pack(init)
    scale = 1.0 / np.sqrt(fit_set.y.size)
    prior = np.sqrt(ridge)

    def residuals(theta: np.ndarray) -> np.ndarray:
        pred = predict(layout.unpack(theta), fit_set)
        return np.concatenate([((pred - fit_set.y) * scale).ravel(), prior * (theta - theta0)])

    initial = evaluate(init, data)
    logger.info(
        "refit: %d judgments of %d scenarios (%d used), %d parameters; start R^2 %.4f",
        n_obs,
        len(data.ids),
        len(fit_set.y),
        layout.size,
        initial["r2"],
    )
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
    final = evaluate(params, data)
    report = FitReport(
        r2=final["r2"],
        r2_dimensions=final["r2_dimensions"],
        rmse=final["rmse"],
        spearman_mean=final["spearman_mean"],
        spearman_median=final["spearman_median"],
        spearman_min=final["spearman_min"],
        initial_r2=initial["r2"],
        n_observations=n_obs,
        n_scenarios=len(data.ids),
        n_fit_observations=len(fit_set.y),
        n_spearman=final["n_spearman"],
        iterations=iterations,
        converged=converged,
        seconds=time.perf_counter() - t0,
        source=data.source,
        fitted=tuple(layout.groups),
    )
    logger.info("refit done: %s", report)
    if out is not None:
        save_params(params, out, report)
    return params, report


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
    ap.add_argument("--max-iter", type=int, default=60)
    ap.add_argument("--max-obs", type=int, default=20_000)
    ap.add_argument("--source", default="synthetic", help="scenario source, for caches")
    ap.add_argument("--domains", nargs="+", default=None, choices=list(DOMAINS), metavar="DOMAIN")
    ap.add_argument("--split", choices=["train", "test"], default=None)
    ap.add_argument("--n-per-domain", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
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
            fixed=() if args.fit_domain_boost else ("domain_boost",),
            max_iter=args.max_iter,
            max_obs=args.max_obs,
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
