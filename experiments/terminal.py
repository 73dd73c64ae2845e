"""What an experiment shows in the terminal: Rich tables, ``mean ± ci`` cells, progress bars and the
closing results line. Rich is the one progress-bar and table library of ``experiments/``."""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from experiments.results import ResultsDir


_NUMERIC = re.compile(r"^[+\-]?\d")


def console(stderr: bool = False, *, width: int = 120) -> Any:
    """A Rich console; ``width`` (120) columns wide when the output is not a terminal (logs, pipes,
    READMEs) and ``COLUMNS`` does not say otherwise."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(stderr=stderr, highlight=False, width=None if tty or os.environ.get("COLUMNS") else width)


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    caption: str | None = None,
    width: int = 120,
) -> None:
    """Print a Rich table (numbers right-aligned), ``width`` columns wide when the output is not a
    terminal (``console``)."""
    from rich.table import Table

    rows = [list(r) for r in rows]
    t = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for j, c in enumerate(columns):
        cells = [_fmt(r[j]) for r in rows if j < len(r)]
        numeric = j > 0 and bool(cells) and all(_NUMERIC.match(x) for x in cells if x)
        t.add_column(c, justify="right" if numeric else "left")
    for r in rows:
        t.add_row(*[_fmt(x) for x in r])
    console(width=width).print(t)


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.3f}" if abs(x) < 100 else f"{x:.1f}"
    return str(x)


def pm(mean: float, ci: float, digits: int = 2) -> str:
    """``"3.12 ± 0.04"`` (``"3.12 ± n/a"`` without an interval: a single value)."""
    if math.isnan(ci):
        return f"{mean:.{digits}f} ± n/a"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


@contextmanager
def progress(total: int, description: str, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr; yields ``advance(n)``."""
    if not enabled or total == 0:
        yield _no_bar
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance


def _no_bar(n: int = 1) -> None:
    """``progress``'s ``advance`` when no bar is shown."""


def print_results_line(results: ResultsDir, summary: Mapping[str, Any]) -> None:
    """The last line every experiment prints: where its results are, what it computed and resumed."""
    run = summary["run"]
    unscored = summary.get("unscored")
    if unscored and unscored["items"]:
        from penguin_gym.judges.llm import describe_causes

        print(
            f"unscored: {unscored['items']} of {unscored['judged']} judged items "
            f"({describe_causes(unscored['by_cause'])}); their "
            f"{unscored['rows_left_out']} rows are left out of the means (reasons in rows.jsonl)"
        )
    calls = run.get("judgments")
    if calls:
        print(
            f"judgments: {calls['new']} made now, {calls['from_cache']} from the cache, "
            f"{calls['failed_from_cache']} recorded failures served"
        )
    print(
        f"results: {results.path}  ({run['units'] - run['resumed_units']} units computed, {run['resumed_units']} resumed);"
        f" wall time {run['wall_s']:.1f}s"
    )
