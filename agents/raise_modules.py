"""RAISE's acquisition and abstention modules (Wu et al. 2025, Section 5), each an LLM or an offline stand-in.

The agent that runs them is ``agents.raise_agent.RaiseAgent`` (its docstring describes the loop and each
module's rule); this module holds the modules themselves, so a new acquisition or abstention strategy
is written here against the ``Acquisition`` / ``Abstention`` protocols and ``RaiseContext``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from agents import llm
from agents.library import PathRecord
from penguin_gym.data.lexicon import estimate_severity, query_risk_cue
from penguin_gym.data.schema import ATTRIBUTE_INDEX, ATTRIBUTES, NUM_ATTRIBUTES
from penguin_gym.error import ConfigError
from penguin_gym.model import MASK_BITS, POPCOUNT

logger = logging.getLogger(__name__)

#: General knowledge of +agent without an LLM: each attribute's effect on safety when it alone is known,
#: over the context-free 3.12, from the paper's Section 4.3 figure (Mental Health 3.97, Emotional State
#: 3.90, Past Self-Harm 3.83, Health 3.67; the six demographic attributes 3.33-3.53, here their midpoint
#: 3.43 for each). Not learned from any training data.
GENERAL_IMPORTANCE: Mapping[str, float] = {
    "Age": 0.31,
    "Gender": 0.31,
    "Marital Status": 0.31,
    "Profession": 0.31,
    "Economic Status": 0.31,
    "Education Level": 0.31,
    "Health Status": 0.55,
    "Mental Health Status": 0.85,
    "Past Self-Harm History": 0.71,
    "Emotional State": 0.78,
}


@dataclass
class RaiseContext:
    """What the modules see at one step of the dialogue (never the hidden profile).

    Attributes:
        query, domain: The user's message and domain.
        revealed: Attribute name -> the user's answer, in asking order.
        asked_mask: The attributes asked (bitmask).
        budget_left: Questions left.
        costs: Question costs (10,), judge units (comparable with safety gains).
        paths: Retrieved ``(record, weight)`` pairs, best offline safety first (none for +agent).
        evidence: The records the offline abstention estimates gains from: the ``evidence`` best
            matches among the pooled queries, by weight (a superset of ``paths``; empty: use ``paths``).
        severity: ``(10,)`` the severity the env reports for each revealed value (``obs["revealed"]``),
            or ``None`` to read it from the texts with the lexicon.
    """

    query: str
    domain: str
    revealed: dict[str, str]
    asked_mask: int
    budget_left: int
    costs: np.ndarray
    paths: list[tuple[PathRecord, float]] = field(default_factory=list)
    evidence: list[tuple[PathRecord, float]] = field(default_factory=list)
    severity: np.ndarray | None = None

    def severity_of(self, name: str) -> float:
        """The severity of the revealed value of ``name``: the env's, else the lexicon's reading."""
        if self.severity is not None:
            return float(self.severity[ATTRIBUTE_INDEX[name]])
        return estimate_severity(name, self.revealed[name])

    @property
    def asked_names(self) -> list[str]:
        return [a for i, a in enumerate(ATTRIBUTES) if self.asked_mask >> i & 1]

    @property
    def candidates(self) -> list[int]:
        return [a for a in range(NUM_ATTRIBUTES) if not self.asked_mask >> a & 1]


class Abstention(Protocol):
    name: str

    def should_stop(self, ctx: RaiseContext) -> bool: ...


class Acquisition(Protocol):
    name: str

    def choose(self, ctx: RaiseContext) -> int: ...


_GENERAL = np.array([GENERAL_IMPORTANCE[a] for a in ATTRIBUTES])
_GENERAL_ORDER = [int(a) for a in np.argsort(-_GENERAL, kind="stable")]


def _record_gains(rec: PathRecord) -> tuple[float, ...]:
    # Libraries without leave-one-out gains: each attribute's step gain along the path.
    if rec.gains:
        return rec.gains
    return tuple(rec.step_safety[i + 1] - rec.step_safety[i] for i in range(len(rec.path)))


def _weights(paths: Sequence[tuple[PathRecord, float]]) -> np.ndarray:
    # The records' weights, clipped at 0 and never all 0 (not normalized).
    return np.array([max(wp, 0.0) for _, wp in paths]) + 1e-12


def path_gains(ctx: RaiseContext) -> tuple[np.ndarray, np.ndarray]:
    """What the paths say about each attribute not yet asked: ``(share, gain)``, both ``(10,)``.

    ``share[a]``: the weighted share of paths that ask ``a``. ``gain[a]``: the expected safety gain of
    asking ``a``: the weighted mean over paths of ``a``'s leave-one-out gain on the path (0 where the
    path does not ask it). Asked attributes get 0.
    """
    share, gain, _ = path_gain_stats(ctx)
    return share, gain


def path_gain_stats(
    ctx: RaiseContext, paths: Sequence[tuple[PathRecord, float]] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``path_gains`` and the standard error of each gain: ``(share, gain, stderr)``, all ``(10,)``.

    Each path is one sample of what a user like this one gains from ``a`` (its leave-one-out gain, or 0
    where its planner did not ask ``a``); ``stderr[a]`` is the weighted standard deviation of those
    samples over the square root of the paths' effective number ``1 / sum(w^2)`` (weights normalized).
    Asked attributes get 0 everywhere. ``paths`` (default ``ctx.paths``) are the records to read.
    """
    paths = ctx.paths if paths is None else paths
    zeros = np.zeros(NUM_ATTRIBUTES)
    if not paths:
        return zeros, zeros.copy(), zeros.copy()
    w = _weights(paths)
    w /= w.sum()
    samples = np.zeros((len(paths), NUM_ATTRIBUTES))
    asks = np.zeros((len(paths), NUM_ATTRIBUTES))
    for i, (rec, _) in enumerate(paths):
        for name, g in zip(rec.path, _record_gains(rec), strict=True):
            a = ATTRIBUTE_INDEX[name]
            samples[i, a], asks[i, a] = g, 1.0
    unasked = ~MASK_BITS[ctx.asked_mask].astype(bool)
    share = np.where(unasked, w @ asks, 0.0)
    gain = np.where(unasked, w @ samples, 0.0)
    var = w @ (samples - gain) ** 2
    stderr = np.where(unasked, np.sqrt(var * float(np.sum(w**2))), 0.0)
    return share, gain, stderr


def planned_questions(paths: Sequence[tuple[PathRecord, float]]) -> float:
    """How many questions the planner asked users like this one: the weighted mean length of the
    records' paths (0 without records)."""
    if not paths:
        return 0.0
    w = _weights(paths)
    return float(w @ np.array([len(rec.path) for rec, _ in paths], dtype=np.float64) / w.sum())


class PathGainAbstention:
    """Stop when the paths say enough is known: when as many questions have been asked as the planner
    asked users like this one (``planned_questions``: the weighted mean length of the records' paths), or
    when the paths do not show that some attribute's gain beats its question cost (stop unless
    ``gain[a] - confidence * stderr[a] > cost[a]`` for an attribute not yet asked), or when nothing is
    left to ask. The records are ``ctx.evidence`` (``ctx.paths`` when the context has none), and the
    gains and their standard errors are ``path_gain_stats`` over them.

    The gain rule alone (``planned_length=False``, ``confidence=0``: ask while the mean gain of some
    question beats its cost) hedges: an attribute that two of five neighbours' planners asked, each with
    a gain of 0.3, has a mean gain of 0.12 and gets asked at a cost of 0.08 although the other three
    planners found it not worth asking; and since it asks while *any* of ten noisy means beats the cost,
    the noise itself keeps it asking. It asks more questions than the planner did for the same users
    (the planner saw their profiles; the agent pays to find out). The planned length is what the
    neighbours' plans say about *how many* questions users like this one needed; the agent stops there
    even when some mean gain still beats the cost. ``confidence > 0`` instead drops the questions the
    neighbours do not broadly agree on. Both trade questions for critical misses (high-risk users
    answered without the question that reveals the risk, ``evaluate``): among the questions dropped are
    those only a few neighbours needed, which reveal a rare, serious risk. On the synthetic suite at the
    default cost (questions, safety, net reward and critical misses from ``penguin-gym benchmark
    --agents raise --agent-option raise:planned_length=<b> raise:confidence=<z>``; the closest domain
    of full RAISE over +agent in safety from ``penguin-gym raise --responders mean`` with the same
    options; the exact oracle asks 3.0 questions for a net reward of 4.29, +agent 3.2 for a safety of
    4.37):

    ==============  ==========  =========  ======  ==========  =============  =========================
    planned_length  confidence  questions  safety  net reward  critical miss  RAISE - +agent, closest
    ==============  ==========  =========  ======  ==========  =============  =========================
    False           0           3.6        4.49    4.20        22%            +0.074 (Social)
    False           0.5         3.4        4.46    4.19        27%            +0.028 (Life)
    True (default)  0 (default) 3.1        4.44    4.19        35%            +0.021 (Life)
    True            0.5         2.9        4.42    4.19        38%            -0.020 (Life)
    ==============  ==========  =========  ======  ==========  =============  =========================

    The net reward hardly moves (4.19-4.20): the planned length buys a question count near the paper's
    (its RAISE asks 2.7 questions, 1.35 to 4.98 across its six LLMs) with safety and critical misses, not
    with return. ``planned_length=False`` is the choice for a study of critical misses.

    Args:
        confidence: Standard errors the expected gain must clear the cost by (>= 0).
        planned_length: Also stop at the records' planned number of questions.
    """

    name = "path-gain"

    def __init__(self, confidence: float = 0.0, *, planned_length: bool = True) -> None:
        if isinstance(confidence, bool) or not (isinstance(confidence, (int, float)) and confidence >= 0):
            raise ConfigError(f"PathGainAbstention confidence = {confidence!r} must be a number >= 0")
        if not isinstance(planned_length, (bool, np.bool_)):
            raise ConfigError(f"PathGainAbstention planned_length = {planned_length!r} must be True or False")
        self.confidence = float(confidence)
        self.planned_length = bool(planned_length)

    def should_stop(self, ctx: RaiseContext) -> bool:
        cands = ctx.candidates
        if not cands or ctx.budget_left <= 0:
            return True
        records = ctx.evidence or ctx.paths
        if self.planned_length and POPCOUNT[ctx.asked_mask] >= planned_questions(records):
            return True
        _, gain, stderr = path_gain_stats(ctx, records)
        bound = gain - self.confidence * stderr
        return not any(bound[a] > ctx.costs[a] for a in cands)


class VoteAcquisition:
    """Follow the paths' votes: the attribute with the largest gain-weighted vote net of its cost
    (``path_gains``); ties go to the larger share of paths, then to general importance."""

    name = "path-vote"

    def choose(self, ctx: RaiseContext) -> int:
        cands = ctx.candidates
        if not cands:
            raise ConfigError("VoteAcquisition.choose: every attribute was asked; the abstention module should stop")
        share, gain = path_gains(ctx)
        order = [a for a in _GENERAL_ORDER if a in cands]
        return max(
            order, key=lambda a: (round(float(gain[a] - ctx.costs[a]), 12), round(float(share[a]), 12), -order.index(a))
        )


class ImportanceAcquisition:
    """+agent offline: the most important attribute not yet asked, by ``importance`` (default
    ``GENERAL_IMPORTANCE``)."""

    name = "importance"

    def __init__(self, importance: Mapping[str, float] | None = None) -> None:
        self.importance = _importance(importance)
        self.order = [int(a) for a in np.argsort(-self.importance, kind="stable")]

    def choose(self, ctx: RaiseContext) -> int:
        cands = set(ctx.candidates)
        if not cands:
            raise ConfigError(
                "ImportanceAcquisition.choose: every attribute was asked; the abstention module should stop"
            )
        return next(a for a in self.order if a in cands)


class CompletenessAbstention:
    """+agent offline: a rule-based stand-in for the LLM's 0-5 completeness rating.

    completeness = 5 x (importance known) / (importance of the ``top`` most important attributes x
    ``0.5 + risk``), capped at 5, where ``risk`` is the highest risk the agent can read so far: the
    query's cues and the severity of the psychological answers (Mental Health, Past Self-Harm,
    Emotional State), both read from the texts with the documented lexicon (never the hidden
    profile). Like an LLM reading the dialogue, it is satisfied sooner when the answers are benign
    ("None", "Calm") and wants more when they signal risk. Stop when it reaches ``threshold``.
    """

    name = "completeness"

    def __init__(self, *, threshold: float = 4.0, importance: Mapping[str, float] | None = None, top: int = 3) -> None:
        self.threshold = llm.check_threshold(threshold)
        self.importance = _importance(importance)
        if not 1 <= top <= NUM_ATTRIBUTES:
            raise ConfigError(f"CompletenessAbstention top = {top} must be in [1, {NUM_ATTRIBUTES}]")
        self.norm = float(np.sort(self.importance)[::-1][:top].sum())

    def rating(self, ctx: RaiseContext) -> float:
        known = sum(self.importance[a] for a in range(NUM_ATTRIBUTES) if ctx.asked_mask >> a & 1)
        risk = query_risk_cue(ctx.query)
        for name in _PSYCH:
            if name in ctx.revealed:
                risk = max(risk, ctx.severity_of(name))
        return min(5.0, 5.0 * known / (self.norm * (0.5 + risk)))

    def should_stop(self, ctx: RaiseContext) -> bool:
        if not ctx.candidates or ctx.budget_left <= 0:
            return True
        return self.rating(ctx) >= self.threshold


_PSYCH = ("Mental Health Status", "Past Self-Harm History", "Emotional State")


def _importance(importance: Mapping[str, float] | None) -> np.ndarray:
    if importance is None:
        return _GENERAL.copy()
    unknown = [a for a in importance if a not in ATTRIBUTE_INDEX]
    if unknown:
        raise ConfigError(f"importance names unknown attributes {unknown}; valid: {list(ATTRIBUTES)}")
    out = np.array([float(importance.get(a, 0.0)) for a in ATTRIBUTES])
    if np.any(out < 0) or out.sum() <= 0:
        raise ConfigError(f"importance must be >= 0 with a positive total, got {out.tolist()}")
    return out


class LLMAbstention:
    """The LLM rates, 0-5, how complete the known background is; stop when the rating >= ``threshold``.

    Args:
        backend: A ``Backend`` or spec.
        threshold: The stopping rating (the paper's scale abstention; default 4).
        fallback: The module used when a reply is not a number in 0-5 (default ``PathGainAbstention``).
        temperature: Sampling temperature.

    Attributes:
        stats: ``"abstention:not_a_number"`` / ``"abstention:out_of_range"`` fallbacks.
        ratings: The ratings read, in order.
    """

    def __init__(
        self, backend: Any, *, threshold: float = 4.0, fallback: Abstention | None = None, temperature: float = 0.0
    ) -> None:
        self.backend = llm.backend_from(backend)
        self.threshold = llm.check_threshold(threshold)
        self.fallback = fallback or PathGainAbstention()
        self.temperature = float(temperature)
        self.name = f"llm-scale@{self.backend.name}"
        self.stats: Counter[str] = Counter()
        self.calls = 0
        self.fallbacks = 0
        self.ratings: list[float] = []

    def should_stop(self, ctx: RaiseContext) -> bool:
        if not ctx.candidates or ctx.budget_left <= 0:
            return True
        msgs = llm.abstention_messages(ctx.query, ctx.domain, ctx.revealed)
        reply = self.backend.chat([msgs], temperature=self.temperature, max_tokens=16)[0]
        self.calls += 1
        rating, why = llm.parse_rating(reply)
        if rating is None:
            self.fallbacks += 1
            llm.record_fallback(self.stats, "abstention", why, reply)
            return self.fallback.should_stop(ctx)
        self.ratings.append(rating)
        return rating >= self.threshold


class LLMAcquisition:
    """The LLM picks the next attribute, with the retrieved paths as examples (none for +agent).

    Args:
        backend: A ``Backend`` or spec.
        examples: Show the context's paths as examples.
        fallback: The module used when a reply names no valid new attribute (default ``VoteAcquisition``).
        temperature: Sampling temperature.

    Attributes:
        stats: ``"acquisition:unknown_attribute"`` / ``"acquisition:already_asked"`` /
            ``"acquisition:empty"`` fallbacks.
    """

    def __init__(
        self, backend: Any, *, examples: bool = True, fallback: Acquisition | None = None, temperature: float = 0.0
    ) -> None:
        self.backend = llm.backend_from(backend)
        self.examples = examples
        self.fallback = fallback or VoteAcquisition()
        self.temperature = float(temperature)
        self.name = f"llm@{self.backend.name}"
        self.stats: Counter[str] = Counter()
        self.calls = 0
        self.fallbacks = 0

    def choose(self, ctx: RaiseContext) -> int:
        cands = [ATTRIBUTES[a] for a in ctx.candidates]
        ex = (
            [{"query": r.query, "path": list(r.path), "safety": r.safety} for r, _ in ctx.paths]
            if self.examples
            else []
        )
        msgs = llm.acquisition_messages(ctx.query, ctx.domain, ctx.revealed, cands, ex)
        reply = self.backend.chat([msgs], temperature=self.temperature, max_tokens=32)[0]
        self.calls += 1
        name, why = llm.parse_attribute(reply, ctx.asked_names)
        if name is None:
            self.fallbacks += 1
            llm.record_fallback(self.stats, "acquisition", why, reply)
            return self.fallback.choose(ctx)
        return ATTRIBUTE_INDEX[name]
