"""The scenarios an experiment runs on: ``DataArgs`` -> each domain's scenarios, or ``gym.make`` keywords."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from experiments.args import DataArgs
from experiments.results import derive_seed
from penguin_gym.error import ConfigError


def load_domains(args: DataArgs) -> dict[str, list[Any]]:
    """The scenarios of each requested domain (in ``DOMAINS`` order), sampled to ``max_scenarios``.

    The sample is seeded per domain (hashlib), so it is the same in every run and does not depend on
    which other domains are loaded.
    """
    from penguin_gym.data import DOMAINS, load_scenarios

    domains = list(args.domains) or list(DOMAINS)
    split = None if args.split == "all" else args.split
    scenarios = load_scenarios(
        args.source,
        domains=domains,
        n_per_domain=args.n_per_domain,
        seed=args.data_seed,
        **data_options(args, loader=True),
    )
    _announce_split(args.source, scenarios)
    if split is not None:
        scenarios = [s for s in scenarios if s.split == split]
    out: dict[str, list[Any]] = {}
    for d in DOMAINS:
        if d not in domains:
            continue
        items = [s for s in scenarios if s.domain == d]
        if not items:
            if not args.domains:
                continue  # a source that covers only some domains: run on those it has
            raise ConfigError(f"no {args.split} scenarios for domain {d!r} in source {args.source!r}")
        if args.max_scenarios is not None and len(items) > args.max_scenarios:
            rng = np.random.default_rng(derive_seed("sample", args.data_seed, d))
            idx = np.sort(rng.choice(len(items), size=args.max_scenarios, replace=False))
            items = [items[i] for i in idx]
        out[d] = items
    if not out:
        raise ConfigError(
            f"no {args.split} scenarios in source {args.source!r} (split {args.split!r}; try --split all)"
        )
    return out


def data_options(args: DataArgs, *, loader: bool = False) -> dict[str, Any]:
    """The loaded-data options of ``args`` that differ from the defaults, as ``gym.make`` keywords (or as
    ``load_scenarios`` keywords with ``loader=True``)."""
    out: dict[str, Any] = {}
    if args.domain_map is not None:
        out["domain_map"] = args.domain_map
    if args.severity != "lexicon":
        out["severity"] = args.severity
    if not args.strict_records:
        out["strict" if loader else "strict_records"] = False
    return out


_ANNOUNCED: set[tuple[str, int]] = set()


def _announce_split(source: str, scenarios: Sequence[Any]) -> None:
    """Print the split sizes of a source, once per process (experiments load it several times)."""
    from penguin_gym.data import split_summary

    key = (str(source), len(scenarios))
    if key not in _ANNOUNCED:
        _ANNOUNCED.add(key)
        print(f"data: {source}: {len(scenarios):,} scenarios; {split_summary(scenarios)}")
