"""A belief over the hidden profile, learned from training scenarios, and the training data itself.

Non-privileged agents (greedy, MCTS in ``"belief"`` mode) cannot read the user's profile, so they value a
set of questions by its *expected* net value over users like this one. ``ProfileBelief`` is a particle
belief: the particles are training users (scenarios of the ``train`` split, never the test users), each
with its judge-scored net value of all 1,024 revealed sets. Given what the agent sees (the domain, the
scenario type, the query's risk cues, and the severity of each value revealed so far) each particle is
weighted by a kernel

    w_j = [same domain] * (same_type_weight if same scenario type else 1)
          * exp(-(cue - cue_j)^2 / (2 cue_sigma^2)) * prod_{a revealed} exp(-(s_a - s_ja)^2 / (2 sigma^2))

and the value of a set ``U`` is ``sum_j w_j net_j(U)`` (or, to *sample a profile*, ``net_j(U)`` for
``j ~ w``). The query's cue level comes from the query text (``lexicon.query_risk_cue``), the same way
for particles and for the user.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.scoring import net_tables
from penguin_gym.data import load_scenarios
from penguin_gym.data.lexicon import query_risk_cue
from penguin_gym.data.schema import DOMAINS, NUM_ATTRIBUTES, Scenario
from penguin_gym.error import ConfigError
from penguin_gym.judges.base import Judge
from penguin_gym.model import DEFAULT_QUESTION_COST, CostSpec, EpisodeModel

logger = logging.getLogger(__name__)

_BITS = np.arange(NUM_ATTRIBUTES)


def training_scenarios(env: Any) -> list[Scenario]:
    """The training-split scenarios that match ``env`` (same data source, seed and domain).

    Looks, in order, for ``env.train_scenarios()``; the data arguments the env was made with
    (``env.spec.kwargs`` or the env's ``source``/``n_per_domain``/``data_seed`` attributes); the
    ``train``-split scenarios among the env's own. Never returns a test-split scenario.

    Raises:
        ConfigError: when no training scenario can be found (then fit the agent with ``fit(scenarios,
            judge)`` on your own training data).
    """
    found = _training_scenarios(env, by_domain=True)
    if not found and getattr(env, "domain", None) not in (None, "All"):
        # A small file (the official generator's sample, a few users per domain) may hold no training
        # user of this domain: learning from every domain's training users beats failing.
        found = _training_scenarios(env, by_domain=False)
        if found:
            logger.warning(
                "no training users in domain %s; the agent learns from the %d training scenarios of all domains",
                env.domain,
                len(found),
            )
    if not found:
        raise ConfigError(
            "no training-split scenarios found for this env (its data source is unknown or has no 'train' "
            "split); fit the agent yourself: agent.fit(train_scenarios, judge)"
        )
    return list(found)


def _training_scenarios(env: Any, *, by_domain: bool) -> list[Scenario]:
    fn = getattr(env, "train_scenarios", None)
    if callable(fn) and by_domain:
        found = [s for s in fn() if s.split == "train"]
        if found:
            return found
    spec = getattr(env, "spec", None)
    kw: dict[str, Any] = dict(getattr(spec, "kwargs", None) or {})
    for key in ("source", "n_per_domain", "data_seed"):
        if hasattr(env, key):
            kw[key] = getattr(env, key)
    kw.update(getattr(env, "data_options", None) or {})
    data_options = {k: kw[k] for k in ("domain_map", "severity") if kw.get(k) is not None}
    if "strict_records" in kw:
        data_options["strict"] = bool(kw["strict_records"])
    domain = getattr(env, "domain", None) if by_domain else None
    domains = None if domain in (None, "All") else (domain,)
    custom = kw.get("scenarios")
    if custom is None and all(s.source == "synthetic" for s in env.scenarios):
        return load_scenarios(
            kw.get("source", "synthetic"),
            domains=domains,
            split="train",
            n_per_domain=kw.get("n_per_domain"),
            seed=int(kw.get("data_seed", 0)),
        )
    if custom is None and kw.get("source") not in (None, "synthetic"):
        return load_scenarios(
            kw["source"], domains=domains, split="train", n_per_domain=kw.get("n_per_domain"), **data_options
        )
    pool = custom if custom is not None else env.scenarios
    return [s for s in pool if s.split == "train" and (domains is None or s.domain in domains)]


@dataclass(frozen=True)
class BeliefConfig:
    """How the belief weighs training users.

    Attributes:
        max_per_domain: Most particles (training users) per domain, drawn with ``seed`` (0 = all).
        sigma: Kernel width on a revealed value's severity.
        cue_sigma: Kernel width on the query's risk-cue level.
        same_type_weight: Weight multiplier of a particle of the same scenario type.
        seed: Seed of the particle subsample.
    """

    max_per_domain: int = 600
    sigma: float = 0.15
    cue_sigma: float = 0.25
    same_type_weight: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_per_domain < 0:
            raise ConfigError(f"BeliefConfig.max_per_domain = {self.max_per_domain} must be >= 0 (0 = all)")
        if not (self.sigma > 0 and self.cue_sigma > 0):
            raise ConfigError(f"BeliefConfig sigma = {self.sigma}, cue_sigma = {self.cue_sigma} must be > 0")
        if self.same_type_weight < 1:
            raise ConfigError(f"BeliefConfig.same_type_weight = {self.same_type_weight} must be >= 1")


class ProfileBelief:
    """Particles (training users) with the net value of every revealed set; see the module docstring.

    Build with ``ProfileBelief.fit``. Attributes (P particles): ``tables`` ``(P, 1024)`` net values in
    the reward's units, ``domains`` ``(P,)``, ``severity`` ``(P, 10)``, ``cues`` ``(P,)``, ``types``
    ``(P,)`` scenario types, ``queries``, ``ids``, ``budget`` (the questions budget the values assume).
    """

    def __init__(
        self,
        *,
        tables: np.ndarray,
        scenarios: Sequence[Scenario],
        budget: int,
        config: BeliefConfig | None = None,
        judge_name: str = "",
    ) -> None:
        if len(tables) != len(scenarios) or not len(scenarios):
            raise ConfigError(
                f"ProfileBelief needs one table per scenario and at least one: {len(tables)} vs {len(scenarios)}"
            )
        self.config = config or BeliefConfig()
        self.tables = np.asarray(tables, dtype=np.float64)
        self.ids = [s.id for s in scenarios]
        self.queries = [s.query for s in scenarios]
        self.domains = np.array([s.domain_index for s in scenarios], dtype=np.int64)
        self.severity = np.array([s.severity_vector for s in scenarios], dtype=np.float64)
        self.cues = np.array([query_risk_cue(s.query) for s in scenarios], dtype=np.float64)
        self.types = np.array([s.scenario_type for s in scenarios], dtype=object)
        self.budget = int(budget)
        self.judge_name = judge_name
        self._by_domain = {d: np.flatnonzero(self.domains == d) for d in range(len(DOMAINS))}
        self._index = {sid: i for i, sid in enumerate(self.ids)}

    @classmethod
    def fit(
        cls,
        scenarios: Sequence[Scenario],
        judge: Judge,
        *,
        question_cost: CostSpec = DEFAULT_QUESTION_COST,
        budget: int | None = None,
        normalize_reward: bool = False,
        config: BeliefConfig | None = None,
    ) -> ProfileBelief:
        """Score every revealed set of (a per-domain subsample of) ``scenarios`` with ``judge``.

        Only ``train``-split scenarios are used. Fast on the simulated judge (one broadcast per 256
        users); with an LLM judge this judges 1,024 sets per particle, so keep ``max_per_domain`` small
        or use a ``ScoreTable``.
        """
        config = config or BeliefConfig()
        train = [s for s in scenarios if s.split == "train"]
        if not train:
            raise ConfigError(f"ProfileBelief.fit got {len(scenarios)} scenarios but none of the 'train' split")
        rng = np.random.default_rng(config.seed)
        chosen: list[Scenario] = []
        for d in DOMAINS:
            pool = [s for s in train if s.domain == d]
            if config.max_per_domain and len(pool) > config.max_per_domain:
                keep = np.sort(rng.choice(len(pool), size=config.max_per_domain, replace=False))
                pool = [pool[i] for i in keep]
            chosen.extend(pool)
        model = EpisodeModel(
            chosen, judge, question_cost=question_cost, budget=budget, normalize_reward=normalize_reward
        )
        tables = net_tables(model, np.arange(len(chosen)))
        return cls(tables=tables, scenarios=chosen, budget=model.budget, config=config, judge_name=judge.name)

    def __len__(self) -> int:
        return len(self.ids)

    def weights(
        self,
        domain: int,
        scenario_type: str,
        query: str,
        severity: np.ndarray,
        asked_mask: int,
        *,
        hedged: int = 0,
        hedge_sd: float = 0.0,
        evidence: Callable[[np.ndarray], np.ndarray] | None = None,
        exclude: str = "",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Particles of ``domain`` and their normalized weights given what was observed.

        Args:
            domain: Domain index of the user.
            scenario_type: The scenario type (particles of the same type weigh more).
            query: The user's message (its risk-cue level is matched).
            severity: ``(10,)`` severity of the revealed values (only the bits of ``asked_mask`` are read).
            asked_mask: The attributes revealed.
            hedged: The guarded track: revealed attributes answered vaguely, whose severity was seen with
                noise of sd ``hedge_sd`` (their kernel widens to ``sqrt(sigma^2 + hedge_sd^2)``).
            evidence: The guarded track: more log-likelihood per particle, ``evidence(idx) -> (len(idx),)``
                (what the user's declines say).
            exclude: A scenario id whose particle is left out (leave-one-out: a training user's own
                particle would tell its exact scores); ``""``: none.

        Returns:
            ``(idx, w)``: particle indices and weights summing to 1.
        """
        idx = self._by_domain.get(int(domain))
        if idx is None or not len(idx):
            idx = np.arange(len(self.ids))  # no training user of this domain: all domains
        c = self.config
        logw = -((self.cues[idx] - query_risk_cue(query)) ** 2) / (2 * c.cue_sigma**2)
        if scenario_type:
            logw = logw + np.where(self.types[idx] == scenario_type, np.log(c.same_type_weight), 0.0)
        revealed = _BITS[(asked_mask >> _BITS) & 1 == 1]
        if len(revealed):
            diff = self.severity[np.ix_(idx, revealed)] - np.asarray(severity, dtype=np.float64)[revealed]
            if hedged & asked_mask:
                var = c.sigma**2 + hedge_sd**2 * ((hedged >> revealed) & 1)
                logw = logw - (diff**2 / (2 * var)).sum(axis=1)
            else:
                logw = logw - (diff**2).sum(axis=1) / (2 * c.sigma**2)
        if evidence is not None:
            logw = logw + evidence(idx)
        if exclude:
            own = self._index.get(exclude)
            if own is not None:
                hit = idx == own
                if hit.any() and len(idx) > 1:
                    logw = np.where(hit, -np.inf, logw)
        w = np.exp(logw - logw.max())
        return idx, w / w.sum()

    def expected(self, idx: np.ndarray, w: np.ndarray, masks: np.ndarray | Sequence[int]) -> np.ndarray:
        """Expected net value of each set in ``masks`` under the weighted particles."""
        return w @ self.tables[np.ix_(idx, np.asarray(masks, dtype=np.int64))]


class ParticleSampler:
    """Draws one particle per search from each search's weights (the planners' value sources).

    ``particles[i] = (idx, w)``: search ``i``'s particle indices and weights (summing to 1)."""

    def __init__(self, particles: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        width = max(len(idx) for idx, _ in particles)
        self.idx = np.zeros((len(particles), width), dtype=np.int64)
        self.cum = np.full((len(particles), width), 2.0)
        for i, (idx, w) in enumerate(particles):
            self.idx[i, : len(idx)] = idx
            self.cum[i, : len(idx)] = np.cumsum(w)
            self.cum[i, len(idx) - 1] = 1.0

    def draw(self, searches: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The particle of each of ``searches`` for uniforms ``u`` (one per search)."""
        return self.idx[searches, (u[:, None] >= self.cum[searches]).sum(axis=1)]


_FIT_CACHE: OrderedDict[str, ProfileBelief] = OrderedDict()


def fit_belief_cached(
    scenarios: Sequence[Scenario], judge: Judge, *, rules: Any, config: BeliefConfig | None = None
) -> ProfileBelief:
    """``ProfileBelief.fit`` with the costs, budget and reward scale of ``rules`` (an ``AgentContext`` or
    an ``EpisodeModel``: anything with ``costs``, ``budget`` and ``normalize_reward``), memoized per
    process (several agents set up for the same env share one fit). Keyed by the judge's name, the
    scenario ids, the costs, the budget, the reward scale and the config."""
    model = rules
    config = config or BeliefConfig()
    h = hashlib.sha256()
    for part in (judge.name, repr(config), str(model.budget), str(model.normalize_reward), model.costs.tobytes().hex()):
        h.update(part.encode())
    for s in scenarios:
        h.update(s.id.encode())
    key = h.hexdigest()
    hit = _FIT_CACHE.get(key)
    if hit is not None:
        _FIT_CACHE.move_to_end(key)
        return hit
    belief = ProfileBelief.fit(
        scenarios,
        judge,
        question_cost=model.costs,
        budget=model.budget,
        normalize_reward=model.normalize_reward,
        config=config,
    )
    _FIT_CACHE[key] = belief
    while len(_FIT_CACHE) > 4:
        _FIT_CACHE.popitem(last=False)
    logger.debug("fitted a belief over %d training users (judge %s)", len(belief), judge.name)
    return belief


__all__ = ["BeliefConfig", "ParticleSampler", "ProfileBelief", "fit_belief_cached", "training_scenarios"]
