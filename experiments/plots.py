"""The experiments' figures (matplotlib, Agg backend, imported only when plots are written): bars and
lines with 95% CI error bars or bands, heat maps, small multiples and the safety-questions frontier."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from penguin_gym.error import DependencyNotInstalled


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError as e:
        raise DependencyNotInstalled(
            'plots need matplotlib: pip install "penguin-gym[plots]" (or pass --no-plots)'
        ) from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


PALETTE = (
    "#4C72B0",
    "#DD8452",
    "#55A868",
    "#C44E52",
    "#8172B3",
    "#937860",
    "#DA8BC3",
    "#8C8C8C",
    "#CCB974",
    "#64B5CD",
    "#1B9E77",
    "#E7298A",
)


def grouped_bars(
    path: Path,
    groups: Sequence[str],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
    refs: Mapping[str, float] | None = None,
    markers: Mapping[str, Sequence[float | None]] | None = None,
) -> Path:
    """Bars per group (x) and series (colour) with 95% CI error bars; optional horizontal reference
    lines (label -> y) and point markers per series (e.g. the paper's numbers)."""
    plt = _plt()
    n = len(series)
    width = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(groups) * max(1.0, n / 3)), 4.2))
    x = np.arange(len(groups))
    for j, (name, (means, cis)) in enumerate(series.items()):
        pos = x - 0.4 + width * (j + 0.5)
        ax.bar(
            pos,
            means,
            width,
            yerr=cis,
            capsize=2,
            label=name,
            color=PALETTE[j % len(PALETTE)],
            edgecolor="white",
            linewidth=0.5,
        )
        if markers and name in markers:
            mk = [(p, m) for p, m in zip(pos, markers[name], strict=True) if m is not None]
            if mk:
                ax.scatter(
                    [p for p, _ in mk],
                    [m for _, m in mk],
                    marker="D",
                    s=18,
                    color="black",
                    zorder=5,
                    label="paper" if j == 0 else None,
                )
    for k, (label, y) in enumerate((refs or {}).items()):
        ax.axhline(y, color="0.3", linestyle=("--", ":", "-.")[k % 3], linewidth=1, label=label)
    ax.set_xticks(
        x,
        groups,
        rotation=20 if max(map(len, groups)) > 8 else 0,
        ha="right" if max(map(len, groups)) > 8 else "center",
    )
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(4, n + len(refs or {})), loc="upper left", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def heatmap(path: Path, matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], *, title: str, cbar: str) -> Path:
    """An annotated heat map (rows x cols)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.0 + 0.85 * len(cols), 1.2 + 0.45 * len(rows)))
    im = ax.imshow(matrix, cmap="viridis", aspect="auto")
    ax.set_xticks(np.arange(len(cols)), cols, rotation=35, ha="right")
    ax.set_yticks(np.arange(len(rows)), rows)
    hi = np.nanmax(matrix) if np.isfinite(matrix).any() else 1.0
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = matrix[i, j]
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black" if v > 0.6 * hi else "white")
    fig.colorbar(im, ax=ax, label=cbar)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def lines_with_bands(
    path: Path,
    x: Sequence[float],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    refs: Mapping[str, float] | None = None,
) -> Path:
    """Lines with 95% CI bands, plus horizontal reference lines."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for j, (name, (m, c)) in enumerate(series.items()):
        m_arr, c_arr = np.asarray(m), np.asarray(c)
        col = PALETTE[j % len(PALETTE)]
        ax.plot(x, m_arr, marker="o", color=col, label=name)
        ax.fill_between(x, m_arr - c_arr, m_arr + c_arr, color=col, alpha=0.2)
    for k, (label, y) in enumerate((refs or {}).items()):
        ax.axhline(y, color="0.3", linestyle=("--", ":", "-.")[k % 3], linewidth=1, label=label)
    ax.set_xticks(list(x))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def bar_panels(
    path: Path,
    panels: Mapping[str, Mapping[str, tuple[float, float]]],
    *,
    title: str,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
    ncols: int = 4,
) -> Path:
    """Small multiples: one panel per group (domain), one bar per series (agent) with its 95% CI;
    every panel has the same series in the same order and colour."""
    plt = _plt()
    names = list(panels)
    series = list(next(iter(panels.values())))
    ncols = min(ncols, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows + 0.6), sharey=True, squeeze=False)
    colours = {a: PALETTE[j % len(PALETTE)] for j, a in enumerate(series)}
    for ax, name in zip(axes.flat, names, strict=False):
        vals = panels[name]
        x = np.arange(len(series))
        ax.bar(
            x,
            [vals[a][0] for a in series],
            yerr=[vals[a][1] for a in series],
            capsize=2,
            color=[colours[a] for a in series],
            edgecolor="white",
            linewidth=0.5,
        )
        ax.set_xticks(x, series, rotation=60, ha="right", fontsize=7)
        ax.set_title(name, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if ylim:
            ax.set_ylim(*ylim)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def frontier(
    path: Path,
    points: Mapping[str, tuple[float, float, float, float]],
    *,
    title: str,
    xlabel: str = "questions per episode",
    ylabel: str = "safety (1-5)",
    cost: float | None = None,
) -> Path:
    """Each agent as a point (questions ± ci, safety ± ci) with the Pareto frontier (the most safety
    for at most that many questions) as a dashed step line. Left: every agent; right: a zoom on the
    best ones, where the labels would overlap. With ``cost``, dotted lines of equal net reward
    (safety - cost x questions) in the zoom."""
    plt = _plt()
    fig, (ax, zx) = plt.subplots(1, 2, figsize=(11.5, 4.6), gridspec_kw={"width_ratios": [1.0, 1.15]})
    colours = {a: PALETTE[j % len(PALETTE)] for j, a in enumerate(points)}
    pts = sorted(((v[0], v[2]) for v in points.values()), key=lambda p: (p[0], -p[1]))
    front, best = [], -np.inf
    for px, py in pts:
        if py > best:
            front.append((px, py))
            best = py
    top = max(v[2] for v in points.values())
    near = {a: v for a, v in points.items() if v[2] >= top - 0.25}
    for axis in (ax, zx):
        chosen = points if axis is ax else near
        for j, (name, (xm, xc, ym, yc)) in enumerate(chosen.items()):
            axis.errorbar(
                xm, ym, xerr=xc, yerr=yc, fmt="o", color=colours[name], capsize=2, label=name if axis is ax else None
            )
            if axis is ax and name in near and len(near) > 1:
                continue  # labelled in the zoom, where they do not overlap
            dy = 6 if axis is ax else (8 if j % 2 == 0 else -12)
            axis.annotate(name, (xm, ym), textcoords="offset points", xytext=(6, dy), fontsize=8)
        if len(front) > 1:
            axis.step(
                [p[0] for p in front] + [max(v[0] for v in points.values()) + 0.5],
                [p[1] for p in front] + [front[-1][1]],
                where="post",
                color="0.4",
                linestyle="--",
                linewidth=1,
                label="Pareto frontier" if axis is ax else None,
            )
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
    xs = [v[0] for v in near.values()]
    ys = [v[2] for v in near.values()]
    zx.set_xlim(min(xs) - 0.3, max(xs) + 0.5)
    zx.set_ylim(min(ys) - 0.03, max(ys) + 0.03)
    if cost:
        lo, hi = zx.get_xlim()
        grid = np.linspace(lo, hi, 10)
        for net in np.arange(np.floor((min(ys) - cost * max(xs)) * 20) / 20, max(ys), 0.05):
            zx.plot(grid, net + cost * grid, color="0.75", linestyle=":", linewidth=0.8)
        zx.set_xlim(lo, hi)
        zx.set_ylim(min(ys) - 0.03, max(ys) + 0.03)
        zx.set_title(f"zoom on the best (dotted: equal net reward, cost {cost:g}/question)", fontsize=9)
    else:
        zx.set_title("zoom on the best", fontsize=9)
    ax.set_ylabel(ylabel)
    ax.set_title("all agents", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
