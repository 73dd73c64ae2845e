"""The scenario record and the fixed vocabularies of the PENGUIN benchmark.

The names follow Wu et al., "Personalized Safety in LLMs: A Benchmark and A Planning-Based Agent
Approach" (arXiv 2505.18882, NeurIPS 2025): ten user attributes in the paper's order and seven domains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from penguin_gym.error import InvalidScenarioError

#: The ten attributes of a user's background, in the paper's order. Action ``i`` of every env asks
#: ``ATTRIBUTES[i]``; bit ``i`` of a revealed-set bitmask stands for the same attribute.
ATTRIBUTES: tuple[str, ...] = (
    "Age",
    "Gender",
    "Marital Status",
    "Profession",
    "Economic Status",
    "Health Status",
    "Education Level",
    "Mental Health Status",
    "Past Self-Harm History",
    "Emotional State",
)
NUM_ATTRIBUTES = len(ATTRIBUTES)
ATTRIBUTE_INDEX: Mapping[str, int] = MappingProxyType({a: i for i, a in enumerate(ATTRIBUTES)})

#: The paper's grouping of the attributes (Section 4.3).
ATTRIBUTE_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "demographic": ATTRIBUTES[:5] + ("Education Level",),
        "health_psychological": ("Health Status", "Mental Health Status", "Past Self-Harm History"),
        "emotional": ("Emotional State",),
    }
)

#: Attributes whose severe values mark a user as high-risk: answering without asking them is a
#: critical miss (see ``PenguinEnv`` info key ``missed_high_risk``).
HIGH_RISK_ATTRIBUTES: tuple[str, ...] = ("Mental Health Status", "Past Self-Harm History")

#: The seven domains of the benchmark. "Life" is the paper's "life decisions / transitions".
DOMAINS: tuple[str, ...] = (
    "Relationship",
    "Career",
    "Financial",
    "Social",
    "Health",
    "Life",
    "Education",
)
DOMAIN_INDEX: Mapping[str, int] = MappingProxyType({d: i for i, d in enumerate(DOMAINS)})

#: The profile value of an attribute the source did not record (or recorded as a placeholder such as
#: "N/A"): the user cannot say. It does not count toward the paper's 7-of-10 inclusion rule, and asking
#: about it reveals nothing (see ``PenguinEnv``).
MISSING = "Unknown"

Source = Literal["synthetic", "penguin"]
Split = Literal["train", "test"]


def attribute_mask(attributes: frozenset[str] | set[str] | tuple[str, ...] | list[str]) -> int:
    """The bitmask of a set of attribute names (bit ``i`` = ``ATTRIBUTES[i]``).

    Raises:
        InvalidScenarioError: for a name that is not one of ``ATTRIBUTES``.
    """
    mask = 0
    for name in attributes:
        try:
            mask |= 1 << ATTRIBUTE_INDEX[name]
        except KeyError:
            raise InvalidScenarioError(
                f"unknown attribute {name!r}{_did_you_mean(name, ATTRIBUTES)}; valid: {list(ATTRIBUTES)}"
            ) from None
    return mask


def mask_attributes(mask: int) -> frozenset[str]:
    """The attribute names set in ``mask``."""
    return frozenset(a for i, a in enumerate(ATTRIBUTES) if mask >> i & 1)


def _did_you_mean(value: str, options: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
    if not close:
        close = [o for o in options if o.lower() == value.lower()]
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True, slots=True)
class Scenario:
    """One PENGUIN scenario: a user's query and the background the user could reveal.

    Attributes:
        id: Unique, stable identifier (also the key of judge caches and of the train/test split).
        domain: One of ``DOMAINS``.
        scenario_type: The fine-grained type, e.g. ``"Medical Debt"`` (see ``taxonomy``).
        query: The user's message, first person.
        profile: Attribute name -> the value's text as the user would state it. Every one of the ten
            attributes is present; an attribute the source did not record holds ``"Unknown"``.
        severity: Attribute name -> how much that value signals risk, in [0, 1].
        source: ``"synthetic"`` (the embedded generator) or ``"penguin"`` (the published dataset).
        split: ``"train"`` or ``"test"``.
        risk_cue: How strongly the query itself shows the user's risk, in [0, 1] (0 = the query hides
            it: a practical or upbeat message from a user who may be high-risk).
        user_id: The user the scenario belongs to (default: its ``id``). The split is drawn per user, so
            every query of one user lands in the same split: the published data holds about ten
            queries per profile, and the loader sets a stable hash of the profile here.
    """

    id: str
    domain: str
    scenario_type: str
    query: str
    profile: Mapping[str, str]
    severity: Mapping[str, float]
    source: Source = "synthetic"
    split: Split = "train"
    risk_cue: float = 0.0
    user_id: str = ""
    _severity_vector: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.domain not in DOMAIN_INDEX:
            raise InvalidScenarioError(
                f"scenario {self.id!r}: domain {self.domain!r} is not one of {list(DOMAINS)}"
                f"{_did_you_mean(self.domain, DOMAINS)}"
            )
        if not self.query.strip():
            raise InvalidScenarioError(f"scenario {self.id!r}: the query is empty")
        for name, table in (("profile", self.profile), ("severity", self.severity)):
            missing = [a for a in ATTRIBUTES if a not in table]
            extra = [a for a in table if a not in ATTRIBUTE_INDEX]
            if missing or extra:
                raise InvalidScenarioError(
                    f"scenario {self.id!r}: {name} must hold exactly the 10 attributes; "
                    f"missing {missing}, unknown {extra}"
                )
        for a in ATTRIBUTES:
            s = self.severity[a]
            if not (isinstance(s, (int, float)) and math.isfinite(s) and 0.0 <= s <= 1.0):
                raise InvalidScenarioError(f"scenario {self.id!r}: severity[{a!r}] = {s!r} must be a number in [0, 1]")
        if self.source not in ("synthetic", "penguin"):
            raise InvalidScenarioError(f"scenario {self.id!r}: source {self.source!r} must be 'synthetic' or 'penguin'")
        if self.split not in ("train", "test"):
            raise InvalidScenarioError(f"scenario {self.id!r}: split {self.split!r} must be 'train' or 'test'")
        if not 0.0 <= self.risk_cue <= 1.0:
            raise InvalidScenarioError(f"scenario {self.id!r}: risk_cue {self.risk_cue!r} must be in [0, 1]")
        if not isinstance(self.user_id, str):
            raise InvalidScenarioError(f"scenario {self.id!r}: user_id {self.user_id!r} must be text")
        if not self.user_id:
            object.__setattr__(self, "user_id", self.id)
        # Read-only views, so a scenario shared by many envs cannot be mutated through one of them.
        object.__setattr__(self, "profile", MappingProxyType(dict(self.profile)))
        object.__setattr__(self, "severity", MappingProxyType({a: float(self.severity[a]) for a in ATTRIBUTES}))
        object.__setattr__(self, "_severity_vector", tuple(self.severity[a] for a in ATTRIBUTES))

    def __reduce__(self) -> tuple[object, tuple[dict[str, object]]]:
        # The read-only mapping views do not pickle; rebuild from plain dicts (SubprocVecEnv, caches).
        return (Scenario.from_dict, (self.to_dict(),))

    @property
    def severity_vector(self) -> tuple[float, ...]:
        """Severities in ``ATTRIBUTES`` order."""
        return self._severity_vector

    @property
    def missing(self) -> frozenset[str]:
        """The attributes the source did not record (their value is ``MISSING``)."""
        return frozenset(a for a in ATTRIBUTES if self.profile[a] == MISSING)

    @property
    def domain_index(self) -> int:
        return DOMAIN_INDEX[self.domain]

    def background(self, revealed: frozenset[str] | None = None) -> str:
        """The revealed part of the profile as "Attribute: value" lines (all of it when ``None``)."""
        names = ATTRIBUTES if revealed is None else [a for a in ATTRIBUTES if a in revealed]
        return "\n".join(f"{a}: {self.profile[a]}" for a in names)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (the inverse of ``Scenario.from_dict``)."""
        return {
            "id": self.id,
            "domain": self.domain,
            "scenario_type": self.scenario_type,
            "query": self.query,
            "profile": dict(self.profile),
            "severity": dict(self.severity),
            "source": self.source,
            "split": self.split,
            "risk_cue": self.risk_cue,
            "user_id": self.user_id,
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, object]) -> Scenario:
        keys = ("id", "domain", "scenario_type", "query", "profile", "severity")
        missing = [k for k in keys if k not in record]
        if missing:
            raise InvalidScenarioError(f"scenario record is missing {missing}")
        return cls(
            id=str(record["id"]),
            domain=str(record["domain"]),
            scenario_type=str(record["scenario_type"]),
            query=str(record["query"]),
            profile=dict(record["profile"]),  # type: ignore[call-overload]
            severity=dict(record["severity"]),  # type: ignore[call-overload]
            source=record.get("source", "synthetic"),  # type: ignore[arg-type]
            split=record.get("split", "train"),  # type: ignore[arg-type]
            risk_cue=float(record.get("risk_cue", 0.0)),  # type: ignore[arg-type]
            user_id=str(record.get("user_id") or ""),
        )
