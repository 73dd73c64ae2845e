"""How well a fitted surrogate reproduces judgments, and the report of a fit (``refit``'s result).

The scores (R^2 and RMSE of the safety score and of each dimension, the per-scenario Spearman rank
correlation of subsets) are computed by ``quality`` alone, for in-sample and held-out numbers alike;
``scenario_folds`` deals the judgments into cross-validation folds by scenario.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from penguin_gym.error import ConfigError
from penguin_gym.judges.base import DIMENSIONS


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
        iterations: Solver iterations of each fold's fit (as ``FitReport.iterations``).
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
        iterations: Solver iterations run (residual evaluations of ``scipy.optimize.least_squares``,
            rejected trial steps included).
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
# Scores of a fit


def r_squared(y: np.ndarray, pred: np.ndarray) -> float:
    """The coefficient of determination of ``pred`` for ``y`` (1 for a perfect fit of constant ``y``, else 0)."""
    sst = float(((y - y.mean()) ** 2).sum())
    sse = float(((y - pred) ** 2).sum())
    return 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else 0.0)


def spearman_by_scenario(rows: np.ndarray, observed: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of observed vs predicted values within each scenario (row).

    Scenarios with fewer than 3 observations, or where either side is constant, are left out.
    """
    from scipy.stats import spearmanr

    out = []
    order = np.argsort(rows, kind="stable")
    bounds = np.flatnonzero(np.diff(rows[order])) + 1
    for group in np.split(order, bounds):
        if group.size < 3:
            continue
        a, b = observed[group], predicted[group]
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            continue
        out.append(float(spearmanr(a, b)[0]))  # [0]: the statistic in every scipy version
    return np.array(out)


def quality(y: np.ndarray, pred: np.ndarray, rows: np.ndarray) -> FitQuality:
    """R^2 and RMSE (safety and per dimension) and per-scenario Spearman of predictions ``pred`` of the
    judgments ``y`` (both ``(M, 3)``) of scenarios ``rows``: the one scoring of in-sample and held-out fits."""
    ys, ps = y.mean(axis=1), pred.mean(axis=1)
    rho = spearman_by_scenario(rows, ys, ps)
    return FitQuality(
        r2=r_squared(ys, ps),
        r2_dimensions={d: r_squared(y[:, k], pred[:, k]) for k, d in enumerate(DIMENSIONS)},
        rmse=float(np.sqrt(np.mean((ys - ps) ** 2))),
        rmse_dimensions={d: float(np.sqrt(np.mean((y[:, k] - pred[:, k]) ** 2))) for k, d in enumerate(DIMENSIONS)},
        spearman_mean=float(rho.mean()) if rho.size else float("nan"),
        spearman_median=float(np.median(rho)) if rho.size else float("nan"),
        spearman_min=float(rho.min()) if rho.size else float("nan"),
        n_spearman=int(rho.size),
        n_observations=len(y),
    )


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
