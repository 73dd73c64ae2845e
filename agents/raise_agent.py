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
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agents import llm
from agents.base import DialogueAgent
from agents.context import AgentContext
from agents.library import PathLibrary, PathRecord, build_library_cached
from agents.mcts import MCTSConfig
from agents.raise_modules import (
    GENERAL_IMPORTANCE,
    Abstention,
    Acquisition,
    CompletenessAbstention,
    ImportanceAcquisition,
    LLMAbstention,
    LLMAcquisition,
    PathGainAbstention,
    RaiseContext,
    VoteAcquisition,
    path_gain_stats,
    path_gains,
    planned_questions,
)
from penguin_gym.data.schema import DOMAINS, NUM_ATTRIBUTES, Scenario
from penguin_gym.error import ConfigError
from penguin_gym.features import Featurizer, local_embedding_model, make_featurizer
from penguin_gym.judges.base import Judge
from penguin_gym.model import ANSWER, DEFAULT_QUESTION_COST, MASK_BITS, CostSpec, EpisodeModel

logger = logging.getLogger(__name__)


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
            ``library_size`` training users per domain, in ``fit`` or, from the context's training split,
            in ``setup`` (a few seconds on the simulated judge).
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
        self._auto = False
        self._pool = np.zeros(0, dtype=np.int64)
        self._sims = np.zeros(0)

    @property
    def stats(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for mod in (self.acquisition, self.abstention):
            out.update(getattr(mod, "stats", Counter()))
        return out

    def llm_usage(self) -> dict[str, Any] | None:
        """The LLM modules' replies and fallbacks (``evaluate`` records them; ``None`` without an LLM)."""
        return llm.usage(self.acquisition, self.abstention)

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

    def _build_library(self, train: list[Scenario], judge: Judge, model: Any, seed: int) -> None:
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

    def setup(self, context: AgentContext) -> None:
        super().setup(context)
        self.judge_costs = np.asarray(context.costs, dtype=np.float64)
        if self.variant != "planner":
            return
        if self.library is None or self._auto:
            # Planned on this context's training split (rebuilt for each; a given or ``fit`` library is kept).
            self._build_library(list(context.train_scenarios), context.judge, context, self._seed)
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

    def prepare(self, queries: Sequence[str]) -> None:
        """Embed the upcoming users' queries in one batch (``evaluate`` calls this; the queries are what the
        users will say, nothing hidden)."""
        if self.variant == "planner" and self.featurizer is not None:
            self.embed_many(queries)

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
            raise ConfigError("full RAISE has no path library yet: call fit(scenarios, judge) or setup(context)")
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
        asked = np.flatnonzero(MASK_BITS[d.told_mask])  # a declined answer tells nothing
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
