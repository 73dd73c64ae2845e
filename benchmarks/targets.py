"""The benchmarks' targets: each compared, printed as met or NOT met, and turned into the exit status.

A benchmark measures, then hands its goals to ``check``, which prints one line per goal and returns the
process's exit status: 1 when a gated goal is missed, so that CI, a refit or a reader of the exit code
sees the miss (a script that prints "NOT met" and exits 0 misleads every caller that is not a person).

A speed goal is set for one size (``mcts_speed``'s 50x holds for 1,024 users batched at 300 rollouts:
a batch of 16 cannot amortize its calls that far), so a run smaller than that size reports the goal
without gating on it, unless the goal is given explicitly on the command line. ``--quick`` is such a
run: the sizes a smoke test needs (``tests/test_benchmarks.py`` runs every benchmark with it).
Goals that do not depend on the machine (the judge's calibration, the planner's sample efficiency)
are gated at every size.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Target:
    """One goal of a benchmark.

    Attributes:
        name: What was measured ("fast path / reference").
        value: The measurement.
        goal: The bound it must reach: ``value >= goal``, or ``value <= goal`` with ``at_most``.
        unit: Printed after both numbers ("x", " s").
        fmt: The numbers' format spec.
        at_most: The goal is an upper bound (a time), not a lower one.
        gated: A miss fails the run; ``False``: reported only (a run smaller than the goal's size).
    """

    name: str
    value: float
    goal: float
    unit: str = ""
    fmt: str = ",.1f"
    at_most: bool = False
    gated: bool = True

    @property
    def met(self) -> bool:
        """Whether the measurement reaches the goal (a NaN measurement never does)."""
        return bool(self.value <= self.goal) if self.at_most else bool(self.value >= self.goal)

    def line(self) -> str:
        """``target <name> >= <goal>: met (<value>)``, and why a miss does not count when it does not."""
        op = "<=" if self.at_most else ">="
        verdict = "met" if self.met else "NOT met"
        text = (
            f"target {self.name} {op} {self.goal:{self.fmt}}{self.unit}: {verdict} ({self.value:{self.fmt}}{self.unit})"
        )
        return text if self.gated else text + "; not gated: a run smaller than the target's size"


def check(targets: Iterable[Target]) -> int:
    """Print one line per target and return the exit status: 1 when a gated target is missed, else 0."""
    missed = []
    for t in targets:
        print(t.line())
        if t.gated and not t.met:
            missed.append(t.name)
    if missed:
        print(f"MISSED: {', '.join(missed)}")
        return 1
    return 0


def parse(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    quick: Mapping[str, Any],
    *,
    sizes: Collection[str] | None = None,
) -> tuple[argparse.Namespace, bool]:
    """Add ``--quick`` to ``parser`` and parse ``argv``.

    Args:
        parser: The benchmark's parser, its size options added.
        argv: The arguments (``None``: ``sys.argv``).
        quick: The options' values under ``--quick`` (dest -> value); explicit options still win.
        sizes: The options that set the size the speed targets were set for (default: the numeric
            options in ``quick``); the others (repeats, steps timed) only make a measurement noisier.

    Returns:
        ``(args, full_size)``: ``full_size`` says every option in ``sizes`` is at least its default.
    """
    shown = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in quick.items())
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"tiny sizes for a smoke test ({shown}); speed targets are then reported, not gated, unless "
        "given explicitly",
    )
    if sizes is None:
        sizes = [k for k in quick if isinstance(parser.get_default(k), int | float)]
    defaults = {k: parser.get_default(k) for k in sizes}
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--quick", action="store_true")
    if pre.parse_known_args(argv)[0].quick:
        parser.set_defaults(**quick)
    args = parser.parse_args(argv)
    return args, all(getattr(args, k) >= v for k, v in defaults.items())


def goal(given: float | None, default: float, *, full_size: bool) -> tuple[float, bool]:
    """The goal to compare with and whether it gates: one given explicitly always gates, the default
    one when the run is at least the size it was set for."""
    if given is not None:
        return given, True
    return default, full_size
