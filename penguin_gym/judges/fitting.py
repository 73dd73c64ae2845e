"""Refitting the ``SimulatedJudge`` to real judgments: a surrogate fast enough to train PPO on.

A GPU-day of LLM judging buys tens of thousands of judgments: too few to train an acquisition policy
on, plenty to fit the simulated judge's few dozen parameters. ``refit`` takes a ``ScoreTable`` (or the
judgments in a ``CachedJudge`` file, or a list of judged triples), fits the parameters of the simulated
judge's model (``penguin_gym.judges.simulated``) by Levenberg-Marquardt (``scipy.optimize.least_squares``,
forward-difference Jacobian) on the squared error of the three dimension scores, and reports how
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

The judgments' array form and the model evaluated on it are in ``penguin_gym.judges.observations``,
the scores of a fit and its report in ``penguin_gym.judges.fit_quality``; the command is
``penguin-gym refit`` (``experiments.refit_judge``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from penguin_gym.data.schema import ATTRIBUTES, DOMAINS, Scenario
from penguin_gym.error import ConfigError, UnderdeterminedFitWarning
from penguin_gym.judges.fit_quality import CrossValidation, FitQuality, FitReport, quality, r_squared, scenario_folds
from penguin_gym.judges.observations import FitData, fit_data, predict
from penguin_gym.judges.simulated import SimulatedJudgeParams

logger = logging.getLogger(__name__)

_NA = len(ATTRIBUTES)

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

#: Fewer judgments than this per fitted parameter raise an ``UnderdeterminedFitWarning``.
MIN_JUDGMENTS_PER_PARAMETER = 10.0
#: A held-out safety R^2 this far below the in-sample one is reported as overfitting.
_OVERFIT_GAP = 0.1


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


def _least_squares(fun: Any, theta: np.ndarray, *, max_iter: int, tol: float) -> tuple[np.ndarray, int, bool]:
    """Minimise ``|fun(theta)|^2`` by ``scipy.optimize.least_squares``; returns (theta, iterations, converged).

    Levenberg-Marquardt (MINPACK's, ``method="lm"``, scaled by the Jacobian's columns) with a
    forward-difference Jacobian (``scipy.optimize.approx_fprime``). On these dense problems (thousands of
    residuals, a few dozen parameters) the trust-region default (``"trf"``) took about four times as long
    on the fits of ``tests/test_refit.py``. The Jacobian is passed as a function so that ``max_nfev``
    counts the same thing in every scipy version (residual evaluations, the Jacobian's not counted;
    before scipy 1.16 a numerical Jacobian's were): ``max_iter`` bounds those evaluations, which are what
    "iterations" counts (rejected trial steps included). ``tol`` is the relative cost reduction at which
    the fit stops (``ftol``); converged means it stopped on a tolerance, not on ``max_iter``.
    """
    if max_iter == 0:
        return theta, 0, False
    from scipy.optimize import approx_fprime, least_squares

    # One-slot memos: scipy asks for the Jacobian at the start point twice (a shape check, then the
    # first iteration), and approx_fprime asks again for the residuals at the point it differentiates,
    # which the solver has just evaluated; each residual evaluation scores every judgment.
    @functools.lru_cache(maxsize=1)
    def residuals_at(key: bytes) -> np.ndarray:
        return np.asarray(fun(np.frombuffer(key)), dtype=np.float64)

    @functools.lru_cache(maxsize=1)
    def jacobian_at(key: bytes) -> np.ndarray:
        return approx_fprime(np.frombuffer(key), lambda t: residuals_at(t.tobytes()))

    res = least_squares(
        lambda t: residuals_at(t.tobytes()).copy(),
        theta,
        jac=lambda t: jacobian_at(t.tobytes()).copy(),
        method="lm",
        x_scale="jac",
        ftol=tol,
        max_nfev=max_iter,
    )
    iterations = int(res.nfev)
    logger.debug("refit: cost %.6g after %d iterations (%s)", 2.0 * res.cost, iterations, res.message)
    return res.x, iterations, bool(res.status > 0)


def evaluate(params: SimulatedJudgeParams, data: FitData) -> FitQuality:
    """The quality of ``params`` on ``data`` (in-sample when ``data`` is what they were fitted to)."""
    return quality(data.y, predict(params, data), data.rows)


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

    theta, iterations, converged = _least_squares(residuals, theta0, max_iter=max_iter, tol=tol)
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
        fold_r2.append(r_squared(held.y.mean(axis=1), pred[test].mean(axis=1)))
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
        max_iter: Solver iterations at most (per fit; residual evaluations, as ``FitReport.iterations``).
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
        "SimulatedJudge parameters fitted by penguin_gym.judges.fitting"
        + (f" to judgments of {report.source!r}" if report and report.source else "")
        + "; load with SimulatedJudge(params=<this file>) or the judge spec 'simulated@<this file>'."
    )
    if report is not None:
        d["_fit"] = report.to_dict()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(d, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
