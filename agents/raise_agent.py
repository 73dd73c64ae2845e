"""The RAISE agent (Wu et al. 2025, Section 5): planner-guided acquisition with abstention.

Offline, the MCTS planner runs on training users with their true profiles and a ``PathLibrary`` stores,
per training query, the best question path, its safety and the query's embedding. Online, the agent
embeds the user's query (all-MiniLM-L6-v2 through sentence-transformers, as the paper; the default
hashing featurizer when no local copy of the model is installed), retrieves the ``k = 5`` nearest stored
queries and ranks their paths by offline safety, then loops:

1. the **abstention module** decides whether enough is known to answer;
2. if not, the **acquisition module** picks the next attribute; the user's answer is recorded.

Each module is an LLM (through any ``penguin_gym.judges.backends.Backend``) or an offline stand-in:

* ``LLMAbstention``: the LLM rates the completeness of the known background 0-5 and the agent stops at
  ``threshold`` (the paper's scale abstention). Offline, ``PathGainAbstention``: stop when the library's
  paths say the remaining expected gain is below the question cost: the expected safety gain of an
  attribute not yet asked is, over the ``evidence = 30`` best-matching records weighted by similarity,
  what each record's user would lose without it (the path's leave-one-out ``gains``; 0 on a path that
  does not ask it: its planner found it not worth its cost), and it must beat the cost (by
  ``confidence`` standard errors of that mean; 0 by default); and stop, too, once the agent has asked as
  many questions as the planner asked those users (``planned_length``; ``planned_questions``: the
  paths' weighted mean length): the paths say how much users like this one needed to be asked.
* ``LLMAcquisition``: the LLM picks the next attribute, with the retrieved paths as examples. Offline,
  ``VoteAcquisition``: follow the paths' votes: each path votes for each attribute it asks that is not
  yet asked, with its weight times that attribute's gain on it; the top vote net of the question's cost
  wins.

Where an LLM sees the revealed background, the offline stand-ins use it through retrieval: before
anything is revealed the paths are the ``k`` stored queries nearest to the user's (cosine), and after
each answer they are the ``k`` records, among the ``pool`` nearest queries, that best match the query
and the values revealed so far (the stored users' severities; weight
``exp(sim / tau - sum (s_a - s_pa)^2 / (2 sigma^2))``). Both kinds of modules see the same ``k`` paths;
the offline abstention also reads the next best matches, up to ``evidence`` records, for its estimate.

An unusable LLM reply (an attribute that does not exist or was already asked, a rating that is not a
number in 0-5) falls back to the offline module, is logged, and is counted in ``agent.stats``.

Variants (the paper's Table 2): ``variant="planner"`` is full RAISE (+planner); ``variant="agent"`` is
abstention + acquisition without the path library (+agent). The LLM modules of +agent get no examples;
its offline stand-ins know no training data and no plans, only general knowledge: the paper's
single-attribute findings (``GENERAL_IMPORTANCE``; Section 4.3): ``ImportanceAcquisition`` asks the most
important attribute not yet asked and ``CompletenessAbstention`` rates completeness as the share of the
three most important attributes' importance that is known, 0-5, and stops at ``threshold``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from agents import llm
from agents.base import DialogueAgent
from agents.belief import training_scenarios
from agents.library import PathLibrary, PathRecord, build_library_cached
from agents.mcts import MCTSConfig
from penguin_gym.data.lexicon import estimate_severity, query_risk_cue
from penguin_gym.data.schema import ATTRIBUTE_INDEX, ATTRIBUTES, DOMAINS, NUM_ATTRIBUTES, Scenario
from penguin_gym.error import ConfigError
from penguin_gym.features import Featurizer, local_embedding_model, make_featurizer
from penguin_gym.judges.base import Judge
from penguin_gym.model import ANSWER, DEFAULT_QUESTION_COST, MASK_BITS, POPCOUNT, CostSpec, EpisodeModel

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
        self.ratings: list[float] = []

    def should_stop(self, ctx: RaiseContext) -> bool:
        if not ctx.candidates or ctx.budget_left <= 0:
            return True
        msgs = llm.abstention_messages(ctx.query, ctx.domain, ctx.revealed)
        reply = self.backend.chat([msgs], temperature=self.temperature, max_tokens=16)[0]
        rating, why = llm.parse_rating(reply)
        if rating is None:
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

    def choose(self, ctx: RaiseContext) -> int:
        cands = [ATTRIBUTES[a] for a in ctx.candidates]
        ex = (
            [{"query": r.query, "path": list(r.path), "safety": r.safety} for r, _ in ctx.paths]
            if self.examples
            else []
        )
        msgs = llm.acquisition_messages(ctx.query, ctx.domain, ctx.revealed, cands, ex)
        reply = self.backend.chat([msgs], temperature=self.temperature, max_tokens=32)[0]
        name, why = llm.parse_attribute(reply, ctx.asked_names)
        if name is None:
            llm.record_fallback(self.stats, "acquisition", why, reply)
            return self.fallback.choose(ctx)
        return ATTRIBUTE_INDEX[name]


def resolve_embedding(spec: str | Featurizer | None) -> Featurizer:
    """The query embedder: ``"auto"``/``None`` = all-MiniLM-L6-v2 when a local copy and
    sentence-transformers are installed, else the default hashing featurizer; otherwise a featurizer spec
    (``"embedding:<HF id or path>"``, ``"hashing"``) or object."""
    if spec is None or spec == "auto":
        path = local_embedding_model()
        if path is not None and importlib.util.find_spec("sentence_transformers") is not None:
            return _shared_featurizer(f"embedding:{path}")
        logger.info("no local all-MiniLM-L6-v2 (or sentence-transformers): RAISE retrieves with the hashing featurizer")
        return _shared_featurizer("hashing")
    return _shared_featurizer(spec) if isinstance(spec, str) else make_featurizer(spec)


@functools.lru_cache(maxsize=8)
def _shared_featurizer(spec: str) -> Featurizer:
    # One model per spec and process: agents made one after another (one per domain) share it instead of
    # loading the sentence-transformers weights again.
    return make_featurizer(spec)


class RaiseAgent(DialogueAgent):
    """RAISE: retrieval of planner paths + acquisition + abstention (see the module docstring).

    Args:
        variant: ``"planner"`` (full RAISE) or ``"agent"`` (no path library).
        library: A ``PathLibrary`` or a JSONL path; default (full RAISE): built by the MCTS planner on
            ``library_size`` training users per domain, in ``fit`` or, from the env's training split, in
            ``attach`` (a few seconds on the simulated judge).
        backend: An LLM ``Backend`` or spec for both modules (default: the offline modules).
        acquisition, abstention: Explicit modules (override ``backend``).
        embedding: The query embedder (``"auto"``: all-MiniLM-L6-v2 when installed locally, else hashing).
        k: Paths retrieved (5): the examples of the acquisition module (and of the LLM modules).
        pool: Nearest stored queries among which the paths are re-matched after each answer (100).
        evidence: Best-matching records of the pool from which the offline abstention estimates each
            question's gain and its standard error (30; ``PathGainAbstention``).
        tau, sigma: Weights of query similarity and of revealed-value agreement in that matching.
        threshold: The stopping rating (0-5) of the LLM abstention and of +agent's offline abstention.
        confidence: Standard errors by which the expected gain of a question must beat its cost for full
            RAISE's offline abstention to go on (``PathGainAbstention``; 0: the mean alone).
        planned_length: Whether that abstention also stops once as many questions were asked as the
            planner asked the best-matching stored users (True; ``PathGainAbstention``).
        library_size: Training users planned per domain for the default library.
        planner: The offline planner's hyper-parameters (default: the paper's).
        max_questions: Optional cap on questions besides the env's budget.
        seed: Seed of the offline stage.

    Attributes:
        stats: Fallbacks of the LLM modules (``"acquisition:unknown_attribute"``, ...), summed.
    """

    def __init__(
        self,
        *,
        variant: Literal["planner", "agent"] = "planner",
        library: PathLibrary | str | Path | None = None,
        backend: Any = None,
        acquisition: Acquisition | None = None,
        abstention: Abstention | None = None,
        embedding: str | Featurizer | None = "auto",
        k: int = 5,
        pool: int = 100,
        evidence: int = 30,
        tau: float = 1.0,
        sigma: float = 0.15,
        threshold: float = 4.0,
        confidence: float = 0.0,
        planned_length: bool = True,
        library_size: int = 200,
        planner: MCTSConfig | None = None,
        max_questions: int | None = None,
        seed: int = 0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if variant not in ("planner", "agent"):
            raise ConfigError(f"RaiseAgent variant = {variant!r} must be 'planner' (full RAISE) or 'agent' (+agent)")
        counts = {"k": k, "pool": pool, "evidence": evidence, "library_size": library_size}
        bad = {n: v for n, v in counts.items() if isinstance(v, bool) or not isinstance(v, (int, np.integer))}
        if bad:
            raise ConfigError(f"RaiseAgent counts must be integers, got {bad}")
        if k < 1 or library_size < 1 or not k <= evidence <= pool:
            raise ConfigError(
                "RaiseAgent needs 1 <= k <= evidence <= pool and library_size >= 1 "
                f"(got k={k}, evidence={evidence}, pool={pool}, library_size={library_size})"
            )
        if not (tau > 0 and sigma > 0):
            raise ConfigError(f"RaiseAgent tau = {tau} and sigma = {sigma} must be > 0")
        self.variant = variant
        self.library = PathLibrary.load(library) if isinstance(library, (str, Path)) else library
        if variant == "agent" and self.library is not None:
            raise ConfigError("the '+agent' variant runs without a path library; use variant='planner' with a library")
        self.backend = None if backend is None else llm.backend_from(backend)
        planner_variant = variant == "planner"
        offline_acq: Acquisition = VoteAcquisition() if planner_variant else ImportanceAcquisition()
        offline_abs: Abstention = (
            PathGainAbstention(confidence, planned_length=planned_length)
            if planner_variant
            else CompletenessAbstention(threshold=threshold)
        )
        if self.backend is not None:
            offline_acq = LLMAcquisition(self.backend, examples=planner_variant, fallback=offline_acq)
            offline_abs = LLMAbstention(self.backend, threshold=threshold, fallback=offline_abs)
        self.acquisition: Acquisition = acquisition or offline_acq
        self.abstention: Abstention = abstention or offline_abs
        self.embedding_spec = embedding
        self.featurizer: Featurizer | None = None
        self.k, self.pool, self.evidence = int(k), int(pool), int(evidence)
        self.tau, self.sigma = float(tau), float(sigma)
        self.library_size = library_size
        self.planner = planner or MCTSConfig()
        self.max_questions = max_questions
        self._seed = seed
        self.name = name or ("raise" if planner_variant else "raise-agent")
        self.judge_costs = np.full(NUM_ATTRIBUTES, DEFAULT_QUESTION_COST)
        self._emb_cache: dict[str, np.ndarray] = {}
        self._queries: dict[str, str] = {}
        self._auto = False
        self._pool = np.zeros(0, dtype=np.int64)
        self._sims = np.zeros(0)

    @property
    def stats(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for mod in (self.acquisition, self.abstention):
            out.update(getattr(mod, "stats", Counter()))
        return out

    # -- offline stage ----------------------------------------------------------------------------
    def fit(
        self,
        scenarios: Sequence[Scenario],
        judge: Judge,
        *,
        seed: int = 0,
        question_cost: CostSpec = DEFAULT_QUESTION_COST,
        budget: int | None = None,
    ) -> RaiseAgent:
        """The offline stage: for full RAISE, plan up to ``library_size`` training users per domain (the
        ``train`` split of ``scenarios``) and store the path library. +agent needs no training."""
        train = [s for s in scenarios if s.split == "train"]
        if not train:
            raise ConfigError(f"RaiseAgent.fit got {len(scenarios)} scenarios but none of the 'train' split")
        model = EpisodeModel(train, judge, question_cost=question_cost, budget=budget)
        self.judge_costs = np.asarray(model.costs, dtype=np.float64)
        if self.variant == "planner":
            self._build_library(train, judge, model, seed)
        self._auto = False
        return self

    def _build_library(self, train: list[Scenario], judge: Judge, model: EpisodeModel, seed: int) -> None:
        if self.featurizer is None:
            self.featurizer = resolve_embedding(self.embedding_spec)
        rng = np.random.default_rng(seed)
        chosen: list[Scenario] = []
        for d in DOMAINS:
            pool = [s for s in train if s.domain == d and s.split == "train"]
            if len(pool) > self.library_size:
                pool = [pool[i] for i in np.sort(rng.choice(len(pool), size=self.library_size, replace=False))]
            chosen.extend(pool)
        self.library = build_library_cached(
            chosen,
            judge,
            featurizer=self.featurizer,
            config=self.planner,
            question_cost=model.costs,
            budget=model.budget,
            seed=seed,
        )

    def attach(self, env: Any) -> None:
        super().attach(env)
        self.judge_costs = np.asarray(env.model.costs, dtype=np.float64)
        self._queries = {s.id: s.query for s in env.scenarios}
        if self.variant != "planner":
            return
        if self.library is None or self._auto:
            # Planned on this env's training split (rebuilt for each env; a given or ``fit`` library is kept).
            self._build_library(training_scenarios(env), env.judge, env.model, self._seed)
            self._auto = True
        if self.featurizer is None:
            self.featurizer = resolve_embedding(self.embedding_spec)
        assert self.library is not None
        if self.featurizer.dim != self.library.embeddings.shape[1]:
            raise ConfigError(
                f"the path library was embedded with {self.library.embedding_model} "
                f"({self.library.embeddings.shape[1]} dimensions) but the agent embeds with {self.featurizer.name} "
                f"({self.featurizer.dim}); pass embedding= the library's model (e.g. 'hashing' or 'embedding:<path>')"
            )
        if self.featurizer.name != self.library.embedding_model:
            logger.warning(
                "the path library was embedded with %s but the agent embeds with %s; retrieval compares the two",
                self.library.embedding_model,
                self.featurizer.name,
            )

    def prepare(self, scenario_ids: Sequence[str]) -> None:
        """Embed the episodes' queries in one batch (``evaluate`` calls this; the queries are what the users
        will say, nothing hidden)."""
        if self.variant == "planner" and self.featurizer is not None:
            self.embed_many([self._queries[s] for s in scenario_ids if s in self._queries])

    # -- online loop ------------------------------------------------------------------------------
    def embed_many(self, queries: Sequence[str]) -> None:
        """Embed queries ahead of time in one batch (the online loop then reuses them)."""
        todo = [q for q in dict.fromkeys(queries) if q not in self._emb_cache]
        if todo and self.featurizer is not None:
            for q, e in zip(todo, self.featurizer(todo), strict=True):
                self._emb_cache[q] = e

    def _embed(self, query: str) -> np.ndarray:
        if query not in self._emb_cache:
            self.embed_many([query])
        return self._emb_cache[query]

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        if self.variant != "planner":
            return
        if self.library is None or self.featurizer is None:
            raise ConfigError("full RAISE has no path library yet: call fit(scenarios, judge) or attach(env.unwrapped)")
        lib = self.library
        sims = lib.query_similarity(self._embed(self.dialogue.query))
        cand = np.flatnonzero(lib.domains == DOMAINS.index(self.dialogue.domain))
        if not len(cand):
            cand = np.arange(len(lib))
        self._pool = cand[np.argsort(-sims[cand], kind="stable")[: self.pool]]
        self._sims = sims[self._pool]

    def retrieved(self, k: int | None = None) -> list[tuple[PathRecord, float]]:
        """The ``k`` (default ``self.k``) paths for the current dialogue, best offline safety first, with
        their weights."""
        top, w = self._matches(self.k if k is None else k)
        return self._by_safety(top, w)

    def _matches(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` pooled records that best match the query and the answers so far (pool positions,
        best first) and their weights (the best one's is 1)."""
        if self.variant != "planner" or self.library is None or not len(self._pool):
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        d = self.dialogue
        logw = self._sims / self.tau
        asked = np.flatnonzero(MASK_BITS[d.asked_mask])
        if len(asked):
            diff = np.nan_to_num(self.library.severity[np.ix_(self._pool, asked)] - d.severity[asked])
            logw = logw - (diff**2).sum(axis=1) / (2 * self.sigma**2)
        top = np.argsort(-logw, kind="stable")[:n]
        return top, np.exp(logw[top] - logw[top[0]])

    def _by_safety(self, top: np.ndarray, w: np.ndarray) -> list[tuple[PathRecord, float]]:
        """``(record, weight)`` of the pool positions ``top``, best offline safety first."""
        if self.library is None or not len(top):
            return []
        order = np.argsort(-self.library.safety[self._pool[top]], kind="stable")
        return [(self.library.records[self._pool[top[i]]], float(w[i])) for i in order]

    def context(self) -> RaiseContext:
        """The modules' view of the current dialogue."""
        d = self.dialogue
        # One ranking serves both: the k paths are the best-weighted records of the evidence.
        top, w = self._matches(self.evidence)
        return RaiseContext(
            query=d.query,
            domain=d.domain,
            revealed=dict(d.revealed),
            asked_mask=d.asked_mask,
            budget_left=d.budget_left,
            costs=self.judge_costs,
            paths=self._by_safety(top[: self.k], w[: self.k]),
            evidence=self._by_safety(top, w),
            severity=np.asarray(d.severity, dtype=np.float64).copy(),
        )

    def choose(self, obs: Mapping[str, np.ndarray]) -> int:
        d = self.dialogue
        if d.budget_left <= 0 or (self.max_questions is not None and len(d.order) >= self.max_questions):
            return ANSWER
        ctx = self.context()
        if not ctx.candidates or self.abstention.should_stop(ctx):
            return ANSWER
        a = int(self.acquisition.choose(ctx))
        if not 0 <= a < NUM_ATTRIBUTES or ctx.asked_mask >> a & 1:
            raise ConfigError(
                f"acquisition module {self.acquisition.name} chose {a}, which is not an unasked attribute"
            )
        return a


__all__ = [
    "GENERAL_IMPORTANCE",
    "Abstention",
    "Acquisition",
    "CompletenessAbstention",
    "ImportanceAcquisition",
    "LLMAbstention",
    "LLMAcquisition",
    "PathGainAbstention",
    "RaiseAgent",
    "RaiseContext",
    "VoteAcquisition",
    "local_embedding_model",
    "path_gain_stats",
    "path_gains",
    "planned_questions",
    "resolve_embedding",
]
