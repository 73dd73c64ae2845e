"""``penguin-gym refit``: fit the ``SimulatedJudge`` to real judgments and save the parameters as a preset.

The judgments come from a score table (``.npz``, ``penguin-gym build-table``) or a judge cache (SQLite);
the fit is ``penguin_gym.judges.fitting.refit``, whose report (held-out numbers first, then in-sample)
is printed. The preset loads with ``SimulatedJudge(params=<file>)`` or the judge spec
``simulated@<file>``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from penguin_gym.data.schema import DOMAINS
from penguin_gym.error import PenguinError
from penguin_gym.judges.fitting import PARAM_GROUPS, refit

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """``penguin-gym refit DATA --out fit.json``: fit and save a preset."""
    ap = argparse.ArgumentParser(
        prog=prog or "penguin-gym refit",
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
    args = ap.parse_args(None if argv is None else list(argv))
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


if __name__ == "__main__":
    sys.exit(main())
