"""The statistics every experiment reports: a mean and the half-width of its 95% confidence interval."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (``scipy.stats.t.ppf``)."""
    if df < 1:
        raise ValueError(f"df = {df} must be >= 1")
    from scipy import stats  # imported here: scipy.stats takes a moment to import, --help should not

    return float(stats.t.ppf(0.975, df))


def mean_ci95(x: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """The mean of ``x`` and the half-width of its 95% confidence interval (Student t; 0 for one value)."""
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise ValueError("mean_ci95 of an empty sample")
    m = float(a.mean())
    if a.size == 1:
        return m, 0.0
    return m, float(t975(a.size - 1) * a.std(ddof=1) / math.sqrt(a.size))
