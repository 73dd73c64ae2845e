"""Priors over the next question, pi0(a | query, asked set), for the MCTS planner (Wu et al. 2025, Alg. 1).

A prior gives a probability to each of the 11 actions (ten attributes, then ``STOP`` = answer now) at a
node of the search: zero for an attribute already asked (or any attribute once the budget is spent), and
for ``STOP`` when the search does not allow stopping early. Three priors:

* ``UniformPrior``: every legal action alike (plain search guided by nothing).
* ``LearnedPrior``: attribute importance learned per domain from training users: how often each
  attribute is in a training user's best set (``oracle_values`` on training scenarios), plus a stopping
  hazard per domain and depth (how often the best set has exactly that many attributes, among those with
  at least that many).
* ``LLMPrior``: an LLM ranks the attributes not yet asked (the paper's choice), through any
  ``penguin_gym.judges.backends.Backend``; the ranking is turned into probabilities ``~ 1 / (rank + 1)``.
  Each node's prompt is asked once (cached), and all nodes a search step needs go in one batched
  ``chat`` call. An unusable reply falls back to another prior (logged, counted in ``stats``).

``bind(queries, domains)`` fixes the searches of one planning call; ``probs(idx, masks, budget_left,
allow_stop)`` is vectorized over nodes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from agents import llm
from penguin_gym.data.schema import ATTRIBUTES, DOMAINS, NUM_ATTRIBUTES
from penguin_gym.error import ConfigError
from penguin_gym.model import MASK_BITS, POPCOUNT
from penguin_gym.rules import ANSWER as STOP
from penguin_gym.rules import action_masks

NUM_PRIOR_ACTIONS = NUM_ATTRIBUTES + 1


class BoundPrior(Protocol):
    def probs(self, idx: np.ndarray, masks: np.ndarray, budget_left: np.ndarray, allow_stop: bool) -> np.ndarray:
        """``(len(idx), 11)`` probabilities at node ``masks[j]`` of search ``idx[j]``."""
        ...


class Prior(Protocol):
    """A prior over the next question; ``bind`` it to the queries and domains of a planning call."""

    name: str

    def bind(self, queries: Sequence[str], domains: Sequence[int]) -> BoundPrior: ...


def _legal(masks: np.ndarray, budget_left: np.ndarray) -> np.ndarray:
    """``(m, 10)`` float: attribute ``a`` may be asked (unasked, and budget left): ``rules.action_masks``."""
    return action_masks(np.asarray(masks), np.asarray(budget_left))[:, :STOP].astype(np.float64)


def _compose(p_attr: np.ndarray, stop: np.ndarray, allow_stop: bool) -> np.ndarray:
    """Attribute weights ``(m, 10)`` (zeros where illegal) and stop probabilities ``(m,)`` -> ``(m, 11)``."""
    tot = p_attr.sum(axis=1, keepdims=True)
    has = tot[:, 0] > 0
    p_attr = np.divide(p_attr, tot, out=np.zeros_like(p_attr), where=tot > 0)
    stop = np.where(has, stop if allow_stop else 0.0, 1.0)
    return np.concatenate([p_attr * (1.0 - stop)[:, None], stop[:, None]], axis=1)


def _uniform_table(allow_stop: bool) -> np.ndarray:
    masks = np.arange(1 << NUM_ATTRIBUTES)
    legal = _legal(masks, np.ones(len(masks)))
    n = legal.sum(axis=1)
    return _compose(legal, 1.0 / (n + 1.0) if allow_stop else np.zeros(len(n)), allow_stop)


_ONLY_STOP = np.eye(NUM_PRIOR_ACTIONS)[STOP]
#: Uniform probabilities of every node with budget left, without and with STOP: (1024, 11) each.
_UNIFORM = {False: _uniform_table(False), True: _uniform_table(True)}


class UniformPrior:
    """Every legal action equally likely."""

    name = "uniform"

    def bind(self, queries: Sequence[str], domains: Sequence[int]) -> UniformPrior:
        return self

    def probs(self, idx: np.ndarray, masks: np.ndarray, budget_left: np.ndarray, allow_stop: bool) -> np.ndarray:
        out = _UNIFORM[allow_stop][np.asarray(masks, dtype=np.int64)]
        return _stop_when_spent(out, budget_left)


def _stop_when_spent(probs: np.ndarray, budget_left: np.ndarray) -> np.ndarray:
    """Every prior's rule at a node with no question left: all mass on STOP (``probs`` edited in place)."""
    spent = np.asarray(budget_left) <= 0
    if spent.any():
        probs[spent] = _ONLY_STOP
    return probs


class LearnedPrior:
    """Attribute importance and stopping hazard per domain, learned from training users' best sets.

    Args:
        attribute_weight: ``(7, 10)`` importance per domain (rows need not be normalized).
        stop_hazard: ``(7, 11)``: probability of stopping at depth ``j`` (``j`` attributes asked).
    """

    def __init__(self, attribute_weight: np.ndarray, stop_hazard: np.ndarray, *, name: str = "learned") -> None:
        self.attribute_weight = np.asarray(attribute_weight, dtype=np.float64)
        self.stop_hazard = np.asarray(stop_hazard, dtype=np.float64)
        if self.attribute_weight.shape != (len(DOMAINS), NUM_ATTRIBUTES):
            raise ConfigError(
                f"LearnedPrior attribute_weight has shape {self.attribute_weight.shape}, expected (7, 10)"
            )
        if self.stop_hazard.shape != (len(DOMAINS), NUM_ATTRIBUTES + 1):
            raise ConfigError(f"LearnedPrior stop_hazard has shape {self.stop_hazard.shape}, expected (7, 11)")
        if np.any(self.attribute_weight < 0) or np.any((self.stop_hazard < 0) | (self.stop_hazard > 1)):
            raise ConfigError("LearnedPrior weights must be >= 0 and hazards in [0, 1]")
        self.name = name

    @classmethod
    def from_best_masks(cls, best_masks: np.ndarray, domains: np.ndarray, *, smoothing: float = 1.0) -> LearnedPrior:
        """Learn from the best set (bitmask) of each training user and the user's domain index.

        ``attribute_weight[d, a]`` = (users of ``d`` whose best set holds ``a`` + ``smoothing``), and
        ``stop_hazard[d, j]`` = (users of ``d`` whose best set has ``j`` attributes + ``smoothing``) /
        (users with at least ``j`` + 2 ``smoothing``). Domains without users get the pooled estimate.
        """
        best_masks = np.asarray(best_masks, dtype=np.int64)
        domains = np.asarray(domains, dtype=np.int64)
        if best_masks.shape != domains.shape or not len(best_masks):
            raise ConfigError("LearnedPrior.from_best_masks needs one domain per best set, and at least one")
        sizes = POPCOUNT[best_masks]

        def learn(sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            w = MASK_BITS[best_masks[sel]].sum(axis=0) + smoothing
            at = np.array([(sizes[sel] == j).sum() for j in range(NUM_ATTRIBUTES + 1)], dtype=np.float64)
            atleast = np.cumsum(at[::-1])[::-1]
            return w.astype(np.float64), (at + smoothing) / (atleast + 2 * smoothing)

        pooled = learn(np.ones(len(best_masks), dtype=bool))
        weight = np.empty((len(DOMAINS), NUM_ATTRIBUTES))
        hazard = np.empty((len(DOMAINS), NUM_ATTRIBUTES + 1))
        for d in range(len(DOMAINS)):
            sel = domains == d
            weight[d], hazard[d] = learn(sel) if sel.any() else pooled
        hazard[:, NUM_ATTRIBUTES] = 1.0
        return cls(weight, hazard)

    @classmethod
    def from_tables(
        cls, tables: np.ndarray, domains: np.ndarray, budget: int, *, smoothing: float = 1.0
    ) -> LearnedPrior:
        """Learn from net-value tables ``(n, 1024)`` of training users (their best set within ``budget``)."""
        t = np.where(POPCOUNT[None, :] <= budget, tables, -np.inf)
        return cls.from_best_masks(t.argmax(axis=1), domains, smoothing=smoothing)

    def ranking(self, domain: int) -> list[int]:
        """Attribute indices of ``domain``, most important first (ties: the paper's order)."""
        return [int(a) for a in np.argsort(-self.attribute_weight[domain], kind="stable")]

    def bind(self, queries: Sequence[str], domains: Sequence[int]) -> _BoundLearned:
        return _BoundLearned(self, np.asarray(domains, dtype=np.int64))


class _BoundLearned:
    def __init__(self, prior: LearnedPrior, domains: np.ndarray) -> None:
        self.prior = prior
        self.domains = domains
        self._tables: dict[bool, np.ndarray] = {}

    def _table(self, allow_stop: bool) -> np.ndarray:
        # The probabilities of every (domain, node) with budget left, computed once: (7, 1024, 11).
        t = self._tables.get(allow_stop)
        if t is None:
            masks = np.arange(1 << NUM_ATTRIBUTES)
            t = np.stack(
                [
                    _compose(
                        self.prior.attribute_weight[d] * _legal(masks, np.ones(len(masks))),
                        self.prior.stop_hazard[d, POPCOUNT[masks]],
                        allow_stop,
                    )
                    for d in range(len(DOMAINS))
                ]
            )
            self._tables[allow_stop] = t
        return t

    def probs(self, idx: np.ndarray, masks: np.ndarray, budget_left: np.ndarray, allow_stop: bool) -> np.ndarray:
        masks = np.asarray(masks, dtype=np.int64)
        out = self._table(allow_stop)[self.domains[np.asarray(idx, dtype=np.int64)], masks]
        return _stop_when_spent(out, budget_left)


class LLMPrior:
    """An LLM's ranking of the attributes not yet asked, as a prior (the paper's pi0).

    Args:
        backend: A ``Backend`` or a spec (``"openai:<model>@<base_url>"``, ``"hf:<path>"``).
        fallback: The prior used where a reply has no valid attribute, and for the stopping probability
            (default: ``UniformPrior``).
        temperature: Sampling temperature of the ranking calls (0: the most likely ranking).
        max_tokens: Reply length limit.

    Attributes:
        stats: ``Counter`` of problems: ``"prior:unknown_attribute"`` / ``"prior:already_asked"`` (items
            dropped from a ranking), ``"prior:no_valid_ranking"`` (the whole reply fell back).
        calls: Prompts sent.
        fallbacks: Replies that fell back whole to the fallback prior.
    """

    def __init__(
        self, backend: Any, *, fallback: Prior | None = None, temperature: float = 0.0, max_tokens: int = 128
    ) -> None:
        self.backend = llm.backend_from(backend)
        self.fallback = fallback or UniformPrior()
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.name = f"llm:{self.backend.name}"
        self.stats: Counter[str] = Counter()
        self.calls = 0
        self.fallbacks = 0
        self._cache: dict[tuple[str, int], list[str] | None] = {}

    def bind(self, queries: Sequence[str], domains: Sequence[int]) -> _BoundLLM:
        return _BoundLLM(self, list(queries), np.asarray(domains, dtype=np.int64))

    def rankings(self, items: Sequence[tuple[str, int, int]]) -> list[list[str] | None]:
        """The LLM's ranking for each ``(query, domain index, asked mask)``, ``None`` where unusable.

        Uncached prompts go in one batched ``chat`` call.
        """
        todo: dict[tuple[str, int], list[dict[str, str]]] = {}
        for query, dom, mask in items:
            key = (query, int(mask))
            if key not in self._cache and key not in todo:
                asked = [a for i, a in enumerate(ATTRIBUTES) if mask >> i & 1]
                cands = [a for i, a in enumerate(ATTRIBUTES) if not mask >> i & 1]
                todo[key] = llm.ranking_messages(query, DOMAINS[dom], asked, cands)
        if todo:
            keys = list(todo)
            replies = self.backend.chat(
                [todo[k] for k in keys], temperature=self.temperature, max_tokens=self.max_tokens
            )
            self.calls += len(keys)
            if len(replies) != len(keys):
                from penguin_gym.error import BackendError

                raise BackendError(
                    f"backend {self.backend.name} returned {len(replies)} replies for {len(keys)} prompts"
                )
            for key, reply in zip(keys, replies, strict=True):
                asked = [a for i, a in enumerate(ATTRIBUTES) if key[1] >> i & 1]
                ranked, problems = llm.parse_ranking(reply, asked)
                for reason, n in problems.items():
                    self.stats[f"prior:{reason}"] += n
                if not ranked:
                    self.fallbacks += 1
                    llm.record_fallback(self.stats, "prior", "no_valid_ranking", reply)
                self._cache[key] = ranked or None
        return [self._cache[(q, int(m))] for q, _, m in items]


class _BoundLLM:
    def __init__(self, prior: LLMPrior, queries: list[str], domains: np.ndarray) -> None:
        self.prior = prior
        self.queries = queries
        self.domains = domains
        self.fallback = prior.fallback.bind(queries, [int(d) for d in domains])

    def probs(self, idx: np.ndarray, masks: np.ndarray, budget_left: np.ndarray, allow_stop: bool) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        masks = np.asarray(masks, dtype=np.int64)
        base = self.fallback.probs(idx, masks, budget_left, allow_stop)
        legal = _legal(masks, budget_left)
        need = np.flatnonzero(legal.sum(axis=1) > 0)
        if not len(need):
            return base
        ranks = self.prior.rankings([(self.queries[idx[j]], int(self.domains[idx[j]]), int(masks[j])) for j in need])
        out = base.copy()
        for j, ranked in zip(need.tolist(), ranks, strict=True):
            if ranked is None:
                continue
            w = np.zeros(NUM_ATTRIBUTES)
            for r, name in enumerate(ranked):
                w[ATTRIBUTES.index(name)] = 1.0 / (r + 1.0)
            w[(legal[j] > 0) & (w == 0)] = 1.0 / (len(ranked) + 2.0)  # legal but unranked: below the last
            w *= legal[j]
            stop = base[j, STOP]
            out[j, :NUM_ATTRIBUTES] = w / w.sum() * (1.0 - stop)
        return out


def make_prior(spec: str | Prior, **kwargs: Any) -> Prior:
    """A prior from a spec: ``"uniform"``, ``"learned"`` (needs ``learned=LearnedPrior``), ``"llm:<backend
    spec>"`` (e.g. ``"llm:openai:qwen@http://127.0.0.1:8000/v1"``), or a ``Prior`` object."""
    if not isinstance(spec, str):
        if not hasattr(spec, "bind"):
            raise ConfigError(f"prior {spec!r} has no bind(queries, domains); see agents.priors.Prior")
        return spec
    if spec == "uniform":
        return UniformPrior()
    if spec == "learned":
        learned = kwargs.get("learned")
        if learned is None:
            raise ConfigError("the 'learned' prior is fitted from training users; pass learned=LearnedPrior(...)")
        return learned  # type: ignore[no-any-return]
    if spec.startswith("llm:"):
        return LLMPrior(spec[4:], fallback=kwargs.get("fallback"))
    raise ConfigError(f"unknown prior {spec!r}; valid: 'uniform', 'learned', 'llm:<backend spec>', or a Prior object")


__all__ = ["STOP", "BoundPrior", "LLMPrior", "LearnedPrior", "Prior", "UniformPrior", "make_prior"]
