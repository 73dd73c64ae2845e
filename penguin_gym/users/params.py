"""The guarded user's parameters: read from a documented data file, checked, and turned into the
probabilities the episode model, the exact planner and the agents' beliefs share.

The file (``guarded_v0.json`` next to this module is the default) gives every value with its reason and
its source: a reference key, or ``"assumption"`` for a modelling choice no study measured. The model:

- *distress* ``d`` in [0, 1]: the weighted mean of the user's true severities of the risk attributes;
- asking attribute ``i``, the user first may *leave* (``p_leave``: the intrusiveness asked so far,
  this question included, against a patience threshold that distress lowers, and always past
  ``max_intrusion``), else *decline*
  (``p_decline``: the attribute's sensitivity, distress, rapport once the user said how they feel, and
  guardedness after each earlier decline), else *hedge* (``p_hedge``: a vague answer, worth
  ``hedge_credit`` of the full one to the responder, seen by the agent with noise), else answer fully.

Every probability depends on the state through the sets answered, hedged and declined only (never the
order), so the exact planner (``penguin_gym.users.planning``) is a dynamic program over those sets.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from penguin_gym.data.schema import ATTRIBUTE_INDEX, ATTRIBUTES, NUM_ATTRIBUTES, _did_you_mean
from penguin_gym.error import ConfigError

#: The default parameter file's name (in this package).
DEFAULT_USER_FILE = "guarded_v0.json"
_ATTRIBUTE_FIELDS = ("intrusiveness", "decline_logit", "decline_distress", "hedge_logit", "hedge_distress")


def _sigmoid(x: Any) -> Any:
    return expit(np.asarray(x, dtype=np.float64))


@dataclass(frozen=True)
class GuardedParams:
    """The guarded user model's numbers (``load_params`` reads them from a file).

    Arrays are float64 ``(10,)`` in ``ATTRIBUTES`` order. ``sensitive``: the attributes whose decline
    rises with distress (``decline_distress > 0``), to which guardedness applies.
    """

    name: str
    source_file: str
    distress_weights: np.ndarray
    intrusiveness: np.ndarray
    decline_logit: np.ndarray
    decline_distress: np.ndarray
    hedge_logit: np.ndarray
    hedge_distress: np.ndarray
    rapport: float
    rapport_after: int
    rapport_applies: np.ndarray  # bool (10,)
    guardedness: float
    hedge_credit: float
    hedge_noise_sd: float
    hedge_texts: tuple[str, ...]
    patience_half: float
    patience_shift: float
    patience_slope: float
    max_intrusion: float
    base_cost: float

    @property
    def sensitive(self) -> np.ndarray:
        return self.decline_distress > 0

    @property
    def costs(self) -> np.ndarray:
        """The default per-attribute question costs: ``base_cost * intrusiveness`` (judge's 1-5 scale)."""
        return self.base_cost * self.intrusiveness

    def distress(self, severity: np.ndarray) -> np.ndarray:
        """Latent distress of users with severities ``(..., 10)``: ``(...,)`` in [0, 1]."""
        return np.asarray(severity, dtype=np.float64) @ self.distress_weights

    def p_leave(self, intrusion_after: Any, distress: Any) -> Any:
        """Probability that the user leaves instead of answering, when the intrusiveness asked so far
        (this question included) is ``intrusion_after``."""
        threshold = self.patience_half - self.patience_shift * np.asarray(distress, dtype=np.float64)
        after = np.asarray(intrusion_after, dtype=np.float64)
        return np.where(after > self.max_intrusion + 1e-9, 1.0, _sigmoid((after - threshold) / self.patience_slope))

    def p_decline(self, attribute: Any, distress: Any, rapport: Any, n_declined: Any) -> Any:
        """Probability that a user who stays declines ``attribute`` (an index or an array of them).

        ``rapport``: the user has answered (or hedged) the rapport attribute (Emotional State);
        ``n_declined``: how many questions they declined before."""
        i = np.asarray(attribute, dtype=np.int64)
        logit = (
            self.decline_logit[i]
            + self.decline_distress[i] * np.asarray(distress, dtype=np.float64)
            + self.rapport * (np.asarray(rapport, dtype=bool) & self.rapport_applies[i])
            + self.guardedness * np.asarray(n_declined, dtype=np.float64) * self.sensitive[i]
        )
        return _sigmoid(logit)

    def p_hedge(self, attribute: Any, distress: Any) -> Any:
        """Probability that a user who answers ``attribute`` answers vaguely."""
        i = np.asarray(attribute, dtype=np.int64)
        return _sigmoid(self.hedge_logit[i] + self.hedge_distress[i] * np.asarray(distress, dtype=np.float64))

    def describe(self) -> dict[str, Any]:
        """The parameters as plain values (for results folders and W&B configs)."""
        return {
            "name": self.name,
            "file": self.source_file,
            "attributes": {
                a: {f: float(getattr(self, f)[k]) for f in _ATTRIBUTE_FIELDS} for k, a in enumerate(ATTRIBUTES)
            },
            "distress_weights": dict(zip(ATTRIBUTES, self.distress_weights.tolist(), strict=True)),
            "rapport": self.rapport,
            "rapport_after": ATTRIBUTES[self.rapport_after],
            "rapport_applies_to": [a for k, a in enumerate(ATTRIBUTES) if self.rapport_applies[k]],
            "guardedness": self.guardedness,
            "hedge_credit": self.hedge_credit,
            "hedge_noise_sd": self.hedge_noise_sd,
            "patience": {
                "half_intrusion": self.patience_half,
                "distress_shift": self.patience_shift,
                "slope": self.patience_slope,
                "max_intrusion": self.max_intrusion,
            },
            "question_cost_base": self.base_cost,
        }


def _read(path: str | Path | None) -> tuple[str, Mapping[str, Any]]:
    if path is None:
        ref = resources.files("penguin_gym.users").joinpath(DEFAULT_USER_FILE)
        return DEFAULT_USER_FILE, json.loads(ref.read_text(encoding="utf-8"))
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read the user-model file {p}: {e}") from None
    try:
        return str(p), json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from None


class _Fields:
    """Reads numbers out of the file, naming the file and field of any bad one."""

    def __init__(self, where: str, data: Mapping[str, Any]) -> None:
        self.where, self.data = where, data

    def section(self, *keys: str) -> Mapping[str, Any]:
        node: Any = self.data
        for depth, k in enumerate(keys):
            if not isinstance(node, Mapping) or k not in node:
                raise ConfigError(f"{self.where}: missing field {'.'.join(keys[: depth + 1])!r}")
            node = node[k]
        if not isinstance(node, Mapping):
            raise ConfigError(f"{self.where}: field {'.'.join(keys)!r} must be an object")
        return node

    def number(
        self,
        node: Mapping[str, Any],
        key: str,
        path: str,
        *,
        low: float = -math.inf,
        high: float = math.inf,
        open_low: bool = False,
    ) -> float:
        if key not in node:
            raise ConfigError(f"{self.where}: missing field {path}.{key}")
        v = node[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{self.where}: field {path}.{key} = {v!r} must be a finite number")
        if v < low or v > high or (open_low and v == low):
            side = ">" if open_low else ">="
            raise ConfigError(f"{self.where}: field {path}.{key} = {v!r} must be {side} {low} and <= {high}")
        return float(v)

    def documented(self, node: Mapping[str, Any], path: str) -> None:
        """Every section says why (``reason``) and on what (``source``: a reference key or "assumption")."""
        refs = self.data.get("references", {})
        for key in ("reason", "source"):
            if not isinstance(node.get(key), str) or not node[key].strip():
                raise ConfigError(f"{self.where}: field {path}.{key} is missing: every value needs its {key}")
        if node["source"] != "assumption" and node["source"] not in refs:
            raise ConfigError(
                f"{self.where}: field {path}.source = {node['source']!r} is neither 'assumption' nor a key of "
                f"'references' ({sorted(refs)})"
            )


def _attribute(where: str, name: str) -> int:
    if name not in ATTRIBUTE_INDEX:
        raise ConfigError(f"{where}: unknown attribute {name!r}{_did_you_mean(name, ATTRIBUTES)}")
    return ATTRIBUTE_INDEX[name]


def _texts(where: str, texts: Any) -> tuple[str, ...]:
    if not isinstance(texts, Mapping) or not all(isinstance(v, str) for v in texts.values()):
        raise ConfigError(f"{where}: field hedge.texts must map each attribute to the text of a vague answer")
    for a in texts:
        _attribute(f"{where}: field hedge.texts", a)
    missing = [a for a in ATTRIBUTES if a not in texts]
    if missing:
        raise ConfigError(f"{where}: field hedge.texts lacks {missing}")
    return tuple(texts[a] for a in ATTRIBUTES)


def load_params(path: str | Path | None = None) -> GuardedParams:
    """Read and check a user-model file (default: the package's ``guarded_v0.json``).

    Raises:
        ConfigError: naming the file and the field at fault (a missing or non-numeric value, an unknown
            attribute, a section without its reason or source).
    """
    where, data = _read(path)
    f = _Fields(where, data)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: the file must hold a JSON object")
    refs = data.get("references", {})
    if not isinstance(refs, Mapping):
        raise ConfigError(f"{where}: field 'references' must map keys to citations")
    attrs = f.section("attributes")
    unknown = [a for a in attrs if a not in ATTRIBUTE_INDEX]
    if unknown:
        _attribute(f"{where}: field attributes", unknown[0])
    missing = [a for a in ATTRIBUTES if a not in attrs]
    if missing:
        raise ConfigError(f"{where}: field attributes lacks {missing}: give all ten")
    cols: dict[str, np.ndarray] = {k: np.zeros(NUM_ATTRIBUTES) for k in _ATTRIBUTE_FIELDS}
    for a in ATTRIBUTES:
        node = f.section("attributes", a)
        f.documented(node, f"attributes.{a}")
        for k in _ATTRIBUTE_FIELDS:
            low = 0.0 if k == "intrusiveness" else -math.inf
            cols[k][ATTRIBUTE_INDEX[a]] = f.number(node, k, f"attributes.{a}", low=low)
    distress = f.section("distress")
    f.documented(distress, "distress")
    weights = f.section("distress", "weights")
    w = np.zeros(NUM_ATTRIBUTES)
    for a in weights:
        w[_attribute(f"{where}: field distress.weights", a)] = f.number(weights, a, "distress.weights", low=0.0)
    if not math.isclose(w.sum(), 1.0, abs_tol=1e-9):
        raise ConfigError(f"{where}: field distress.weights sums to {w.sum():g}; the weights must sum to 1")
    rapport = f.section("rapport")
    f.documented(rapport, "rapport")
    after = rapport.get("after")
    applies = rapport.get("applies_to")
    if not isinstance(after, str):
        raise ConfigError(f"{where}: field rapport.after must name an attribute")
    if not isinstance(applies, list) or not all(isinstance(a, str) for a in applies):
        raise ConfigError(f"{where}: field rapport.applies_to must be a list of attribute names")
    applies_mask = np.zeros(NUM_ATTRIBUTES, dtype=bool)
    for a in applies:
        applies_mask[_attribute(f"{where}: field rapport.applies_to", a)] = True
    guarded = f.section("guardedness")
    f.documented(guarded, "guardedness")
    hedge = f.section("hedge")
    f.documented(hedge, "hedge")
    patience = f.section("patience")
    f.documented(patience, "patience")
    cost = f.section("question_cost")
    f.documented(cost, "question_cost")
    return GuardedParams(
        name=str(data.get("name", Path(where).stem)),
        source_file=where,
        distress_weights=w,
        rapport=f.number(rapport, "value", "rapport"),
        rapport_after=_attribute(f"{where}: field rapport.after", after),
        rapport_applies=applies_mask,
        guardedness=f.number(guarded, "value", "guardedness"),
        hedge_credit=f.number(hedge, "credit", "hedge", low=0.0, high=1.0),
        hedge_noise_sd=f.number(hedge, "noise_sd", "hedge", low=0.0),
        hedge_texts=_texts(where, hedge.get("texts")),
        patience_half=f.number(patience, "half_intrusion", "patience"),
        patience_shift=f.number(patience, "distress_shift", "patience"),
        patience_slope=f.number(patience, "slope", "patience", low=0.0, open_low=True),
        max_intrusion=f.number(patience, "max_intrusion", "patience", low=0.0),
        base_cost=f.number(cost, "base", "question_cost", low=0.0),
        **cols,
    )


def track_question_cost(track: str, base: float) -> float | list[float]:
    """The ``question_cost`` of an env on ``track`` from a command's one cost option: ``base`` on the
    faithful track; on the guarded track ``base`` times each attribute's intrusiveness (the user
    model's default costs at the default base 0.08)."""
    if track == "guarded":
        return (float(base) * load_params().intrusiveness).tolist()
    return float(base)


__all__ = ["DEFAULT_USER_FILE", "GuardedParams", "load_params", "track_question_cost"]
