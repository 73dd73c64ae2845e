"""Scenarios: the schema, the taxonomy, the synthetic generator and the PENGUIN loader."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from penguin_gym.data.schema import (
    ATTRIBUTE_GROUPS,
    ATTRIBUTE_INDEX,
    ATTRIBUTES,
    DOMAIN_INDEX,
    DOMAINS,
    HIGH_RISK_ATTRIBUTES,
    MISSING,
    NUM_ATTRIBUTES,
    Scenario,
    attribute_mask,
    mask_attributes,
)
from penguin_gym.data.taxonomy import SCENARIO_TYPES, TYPE_BY_NAME, TYPES_BY_DOMAIN, ScenarioType
from penguin_gym.error import ConfigError

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_GROUPS",
    "ATTRIBUTE_INDEX",
    "DOMAINS",
    "DOMAIN_INDEX",
    "HIGH_RISK_ATTRIBUTES",
    "MISSING",
    "NUM_ATTRIBUTES",
    "SCENARIO_TYPES",
    "TYPES_BY_DOMAIN",
    "TYPE_BY_NAME",
    "Scenario",
    "ScenarioType",
    "attribute_mask",
    "load_scenarios",
    "mask_attributes",
    "split_summary",
]


def load_scenarios(
    source: Any = "synthetic",
    *,
    domains: Sequence[str] | str | None = None,
    split: str | None = None,
    n_per_domain: int | None = None,
    seed: int = 0,
    domain_map: Mapping[str, str] | str | None = None,
    severity: Any = "lexicon",
    strict: bool = True,
) -> list[Scenario]:
    """Load scenarios from a source, filtered by domain and split.

    Args:
        source: ``"synthetic"`` (the embedded generator's current suite, default; ``"synthetic-v0"`` the
            suite of the v0 env ids, kept for results published with them), or the published PENGUIN data in any
            of its formats (``penguin_gym.data.penguin``): a JSON or JSON Lines file (the Hugging Face
            records, the official generator's ``User_Profile``/``Queries`` output, ``Scenario.to_dict``
            records), a folder of them, a ``datasets`` object or ``save_to_disk`` folder, or a Hugging
            Face dataset id (``"wick1d/Personalized_Safety_Data"``; the local cache, or the network).
        domains: One domain, several, or ``None`` for all seven.
        split: ``"train"``, ``"test"`` or ``None`` for both. Splits are drawn per user: every query of
            one user is in the same split.
        n_per_domain: Synthetic: scenarios per domain (default 2,000). Other sources: keep at most this
            many per domain (the first ones).
        seed: Seed of the synthetic generator.
        domain_map: Loaded data: scenario name -> domain (or a JSON file of such pairs) for names the
            routing rules do not know (``penguin_gym.data.routing``).
        severity: Loaded data: how value texts become severities, ``"lexicon"`` (default),
            ``"embedding"`` or a ``SeverityEstimator`` (``penguin_gym.data.severity``).
        strict: Loaded data: reject unknown keys (``False`` ignores extra columns).

    Returns:
        The scenarios, in a stable order.
    """
    if isinstance(domains, str):
        domains = (domains,)
    if domains is not None:
        unknown = [d for d in domains if d not in DOMAINS]
        if unknown:
            raise ConfigError(f"unknown domain(s) {unknown}; valid: {list(DOMAINS)}")
    if split not in (None, "train", "test"):
        raise ConfigError(f"split {split!r} must be 'train', 'test' or None")
    from penguin_gym.data import synthetic

    version = synthetic.suite_version(source)
    if version is not None:
        n = synthetic.SCENARIOS_PER_DOMAIN if n_per_domain is None else n_per_domain
        scenarios = synthetic.generate(domains, n, seed, version)
    else:
        from penguin_gym.data import penguin

        scenarios = penguin.load(source, domain_map=domain_map, severity=severity, strict=strict)
        if domains is not None:
            keep = set(domains)
            scenarios = [s for s in scenarios if s.domain in keep]
        if n_per_domain is not None:
            counts: dict[str, int] = {}
            kept = []
            for s in scenarios:
                counts[s.domain] = counts.get(s.domain, 0) + 1
                if counts[s.domain] <= n_per_domain:
                    kept.append(s)
            scenarios = kept
    if split is not None:
        scenarios = [s for s in scenarios if s.split == split]
    return scenarios


def split_summary(scenarios: Sequence[Scenario]) -> str:
    """One line on the split sizes: scenarios and users in train and in test."""
    parts = []
    for name in ("train", "test"):
        sc = [s for s in scenarios if s.split == name]
        parts.append(f"{name} {len(sc):,} scenarios of {len({s.user_id for s in sc}):,} users")
    return "; ".join(parts)
