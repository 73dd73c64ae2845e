"""Scenarios: the schema, the taxonomy, the synthetic generator and the PENGUIN loader."""

from __future__ import annotations

from collections.abc import Sequence

from penguin_gym.data.schema import (
    ATTRIBUTE_GROUPS,
    ATTRIBUTE_INDEX,
    ATTRIBUTES,
    DOMAIN_INDEX,
    DOMAINS,
    HIGH_RISK_ATTRIBUTES,
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
    "NUM_ATTRIBUTES",
    "SCENARIO_TYPES",
    "TYPES_BY_DOMAIN",
    "TYPE_BY_NAME",
    "Scenario",
    "ScenarioType",
    "attribute_mask",
    "load_scenarios",
    "mask_attributes",
]


def load_scenarios(
    source: str = "synthetic",
    *,
    domains: Sequence[str] | str | None = None,
    split: str | None = None,
    n_per_domain: int | None = None,
    seed: int = 0,
) -> list[Scenario]:
    """Load scenarios from a source, filtered by domain and split.

    Args:
        source: ``"synthetic"`` (the embedded generator, default), a local ``.json``/``.jsonl`` file of
            the published PENGUIN records or of ``Scenario.to_dict`` records, or a Hugging Face dataset
            id (``"wick1d/Personalized_Safety_Data"``; needs ``pip install datasets`` and the network
            or a local cache).
        domains: One domain, several, or ``None`` for all seven.
        split: ``"train"``, ``"test"`` or ``None`` for both.
        n_per_domain: Synthetic: scenarios per domain (default 2,000). Files: keep at most this many
            per domain (the first ones).
        seed: Seed of the synthetic generator.

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
    if source == "synthetic":
        from penguin_gym.data import synthetic

        n = synthetic.SCENARIOS_PER_DOMAIN if n_per_domain is None else n_per_domain
        scenarios = synthetic.generate(domains, n, seed)
    else:
        from penguin_gym.data import penguin

        scenarios = penguin.load(source)
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
