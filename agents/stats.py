"""The statistics of every evaluation: ``agents.evaluate``, every experiment, the leaderboard and W&B.

One formula per question, so that a number means the same wherever it is printed:

- **A mean and its interval** (``mean_ci``): the sample mean and the half-width of its 95% confidence
  interval from Student's t (``scipy.stats.t``). Episodes are users drawn without replacement from a
  split of thousands, so the t interval over episodes is the standard choice.
- **Two agents on the same users** (``paired``): every agent of a benchmark meets the same users
  (common random numbers), so agents are compared on their per-user differences, never by comparing
  two unpaired intervals: the mean difference, its 95% t interval, the two-sided paired t test's p
  value (``scipy.stats.ttest_rel``), and the probability of improvement ``P(a > b)`` over users (ties
  count half), the paired form of rliable's probability of improvement (Agarwal et al., "Deep RL at the
  Edge of the Statistical Precipice", NeurIPS 2021). The verdict is "better"/"worse" when the interval
  excludes 0, else "tied".
- **A rate** (``rate_ci``): the share of high-risk users answered without the revealing question, with
  its Wilson score interval (``scipy.stats.binomtest``), which stays inside [0, 1] for rare events.
- **Ranks with ties** (``tie_ranks``): an agent's rank is 1 + the number of agents significantly better
  than it on the paired test, so agents whose paired intervals include 0 share a rank.

rliable itself is not a dependency: its interval estimates (IQM, stratified bootstrap) are built for a
few training runs on many tasks, where here each agent is one run over thousands of paired users; the
paired t interval on those differences is exact enough at these sizes and needs nothing beyond scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

#: The confidence level of every interval the project prints.
CONFIDENCE = 0.95


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided ``confidence`` quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"df = {df} must be >= 1")
    from scipy import stats  # imported here: scipy.stats takes a moment to import, --help should not

    return float(stats.t.ppf(0.5 + confidence / 2, df))


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t (the 95% interval's)."""
    return t_quantile(df, 0.95)


def _finite(x: Sequence[float | None] | np.ndarray) -> np.ndarray:
    a = np.asarray([np.nan if v is None else v for v in np.asarray(x, dtype=object).reshape(-1)], dtype=np.float64)
    return a[np.isfinite(a)]


def mean_ci(x: Sequence[float | None] | np.ndarray, *, strict: bool = False) -> tuple[float, float]:
    """The mean of the finite values of ``x`` and the half-width of its 95% t interval.

    ``None`` and NaN values are left out. One value: no interval (half-width NaN). No value:
    ``(nan, nan)``, or ``ValueError`` with ``strict``.
    """
    a = _finite(x)
    if a.size == 0:
        if strict:
            raise ValueError("the mean of an empty sample")
        return math.nan, math.nan
    m = float(a.mean())
    if a.size == 1:
        return m, math.nan
    return m, float(t975(a.size - 1) * a.std(ddof=1) / math.sqrt(a.size))


def mean_ci95(x: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """``mean_ci(x, strict=True)``: an empty sample is an error."""
    return mean_ci(x, strict=True)


Verdict = Literal["better", "worse", "tied"]


@dataclass(frozen=True)
class Paired:
    """Agent ``a`` against agent ``b`` on the same users (``a - b`` per user).

    Attributes:
        n: Users both met.
        mean_a, mean_b: Their means on those users.
        diff: The mean difference ``a - b``.
        ci95: The half-width of its 95% t interval (``low``/``high``: its ends).
        p_value: Two-sided paired t test (1.0 when every difference is 0; NaN below two users).
        prob_improvement: ``P(a > b)`` over users, ties counted half.
        verdict: ``"better"`` (the interval is above 0), ``"worse"`` (below) or ``"tied"``.
    """

    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci95: float
    low: float
    high: float
    p_value: float
    prob_improvement: float
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> Paired:
    """The paired comparison of ``a`` and ``b``, two equal-length arrays over the same users."""
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"paired samples of different lengths: {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n == 0:
        raise ValueError("a paired comparison needs at least one user with both values")
    d = x - y
    diff = float(d.mean())
    if n == 1:
        half, p = math.nan, math.nan
    elif not np.any(d != d[0]):  # constant differences: no spread
        half, p = 0.0, (1.0 if d[0] == 0 else 0.0)
    else:
        from scipy import stats

        half = float(t975(n - 1) * d.std(ddof=1) / math.sqrt(n))
        p = float(stats.ttest_rel(x, y).pvalue)
    low, high = diff - half, diff + half
    verdict: Verdict = "tied"
    if math.isfinite(half):
        verdict = "better" if low > 0 else "worse" if high < 0 else "tied"
    prob = float(np.mean((d > 0) + 0.5 * (d == 0)))
    return Paired(n, float(x.mean()), float(y.mean()), diff, half, low, high, p, prob, verdict)


def rate_ci(k: int, n: int) -> tuple[float, float, float]:
    """The rate ``k / n`` and its 95% Wilson score interval ``(rate, low, high)``; NaN for ``n = 0``."""
    if n <= 0:
        return math.nan, math.nan, math.nan
    if not 0 <= k <= n:
        raise ValueError(f"rate_ci: k = {k} must be in [0, n = {n}]")
    from scipy import stats

    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return k / n, float(ci.low), float(ci.high)


def tie_ranks(order: Sequence[str], better: Callable[[str, str], bool]) -> dict[str, int]:
    """Ranks with ties: ``rank[x] = 1 + #{y : better(y, x)}`` over the names in ``order`` (best first by
    mean). ``better(y, x)``: ``y`` is significantly better than ``x`` (its paired interval is above 0)."""
    return {x: 1 + sum(better(y, x) for y in order if y != x) for x in order}


def rank_labels(ranks: Mapping[str, int]) -> dict[str, str]:
    """``"1"``, ``"=2"``, ...: a rank shared by two or more names is marked with ``=``."""
    counts: dict[int, int] = {}
    for r in ranks.values():
        counts[r] = counts.get(r, 0) + 1
    return {k: (f"={r}" if counts[r] > 1 else str(r)) for k, r in ranks.items()}


__all__ = [
    "CONFIDENCE",
    "Paired",
    "mean_ci",
    "mean_ci95",
    "paired",
    "rank_labels",
    "rate_ci",
    "t975",
    "t_quantile",
    "tie_ranks",
]
