"""The paper's MCTS planner over asked-sets (Wu et al. 2025, Algorithm 1), batched over many searches.

The search plans which attributes to ask for one user. A state is the set ``U`` of attributes asked
(a bitmask: the tree is over asked-sets, so two orders of the same questions share a node); an action
asks one more attribute, or ``STOP`` answers now with ``U`` (no question is worth its cost any more).
Each simulation:

1. **Selection** from the root by PUCT,
   ``a* = argmax_a Q(U + a) + c * pi0(a | q, U) * sqrt(sum_b N(U + b)) / (1 + N(U + a))``,
   with ``pi0`` a pluggable prior (``agents.priors``: an LLM's ranking as in the paper, a prior learned
   from training users, or uniform). ``Q`` is min-max normalized over the values seen in this search
   (as in MuZero) so that ``c`` does not depend on the judge's scale; an unvisited child takes its
   parent's value ("first-play urgency"). ``use_prior=False`` gives plain UCT (UCB1,
   ``Q + c * sqrt(ln sum N / N(U + a))``, unvisited children first): the paper's vanilla MCTS.
2. **Expansion** of the first child not yet in the tree.
3. **Rollout** from it to the budget, epsilon-greedy on the prior: with probability
   ``eps0 * eps_decay ** depth`` a uniformly random legal action, otherwise the prior's most likely one
   (``eps0 = 0.2``); plain UCT rolls out uniformly at random.
4. **Reward**: the judge's safety of the final set minus its question costs, backed up (mean) along
   the selected path.

After ``num_rollouts`` simulations the best path is extracted greedily by ``Q`` from the root (the
paper), or by visit counts (``extract="visits"``).

Batching. ``search`` runs ``n`` independent searches in lock-step: every step of every simulation is
one numpy operation over all searches, and the final sets of a simulation step are scored in one
``ValueSource`` call: a lookup in judge tables (``agents.scoring.TableValues``, the simulated judge's
1,024 sets per row in one broadcast), a cache with batched judge calls (``JudgeValues``, for LLM
judges), or a belief over profiles (``BeliefValues``). A single search (the online agent) runs a scalar
implementation of the same rules instead, where numpy's per-call overhead would dominate.
mctx-style, the planner never touches an env.

``MCTSAgent`` plays with it in two documented modes:

* ``mode="true"`` (privileged, the paper's offline planner): plans with the user's *true* profile
  (the judge's scores of this user); what RAISE runs on training users to build its path library, and
  the paper's MCTS row of the budget-3 comparison. Not a deployable agent.
* ``mode="belief"`` (default, deployable): at every step, plans from what is known with rewards of
  *sampled profiles*: each simulation draws a training user from ``ProfileBelief`` (weighted by how well
  they match the domain, scenario type, query cues and the values revealed so far) and scores the final
  set with that user's scores; the agent takes the plan's first action and replans after each answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from agents.base import DialogueAgent
from agents.belief import BeliefConfig, ProfileBelief, fit_belief_cached, training_scenarios
from agents.priors import STOP, BoundPrior, LearnedPrior, LLMPrior, Prior, UniformPrior
from agents.scoring import JudgeValues, TableValues, ValueSource, net_tables
from penguin_gym.data.schema import NUM_ATTRIBUTES, Scenario
from penguin_gym.error import ConfigError
from penguin_gym.judges.base import Judge
from penguin_gym.model import ANSWER, DEFAULT_QUESTION_COST, MASK_BITS, POPCOUNT, CostSpec, EpisodeModel

_BITS = (1 << np.arange(NUM_ATTRIBUTES)).astype(np.int64)
_SLOTS = 2 << NUM_ATTRIBUTES
#: ``_EDGES[U]``: the 11 statistic slots of node U's edges (children U + a, then STOP at U).
_EDGES = np.concatenate(
    [
        np.arange(1 << NUM_ATTRIBUTES)[:, None] | _BITS[None, :],
        (1 << NUM_ATTRIBUTES) + np.arange(1 << NUM_ATTRIBUTES)[:, None],
    ],
    axis=1,
).astype(np.int64)
#: ``_LEGAL[U]``: the attributes not in U (STOP column False; set per search).
_LEGAL = np.concatenate([MASK_BITS == 0, np.zeros((1 << NUM_ATTRIBUTES, 1), dtype=bool)], axis=1)
_ONLY_STOP = np.eye(NUM_ATTRIBUTES + 1, dtype=bool)[NUM_ATTRIBUTES]


def _unflat(S: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The flat statistics as (n, 1024) node visits, node values, stop visits, stop values."""
    half = 1 << NUM_ATTRIBUTES
    nn, ww = S[:, 0].reshape(n, _SLOTS).astype(np.int64), S[:, 1].reshape(n, _SLOTS)
    return nn[:, :half], ww[:, :half], nn[:, half:], ww[:, half:]


@dataclass(frozen=True)
class MCTSConfig:
    """Hyper-parameters of the planner (defaults: the paper's, Section 5 and Appendix).

    Attributes:
        num_rollouts: Simulations per search (T = 300).
        budget: Most questions in a plan (the paper's maximum depth, 5), capped by the env's budget.
        c_puct: Exploration constant of PUCT (0.5).
        c_uct: Exploration constant of plain UCT (on normalized values in [0, 1]).
        eps0: Rollout exploration rate at the root (0.2).
        eps_decay: Rollout exploration decay per question asked: ``eps = eps0 * eps_decay ** depth``.
        use_prior: PUCT with the prior (True) or plain UCT without one (False: vanilla MCTS).
        allow_stop: Whether a plan may stop before the budget (the ``STOP`` action). False: every plan
            asks exactly ``budget`` questions (the paper's budget-k comparison).
        extract: The best path ``"q"`` (greedy on Q, the paper) or ``"visits"`` (most visited).
    """

    num_rollouts: int = 300
    budget: int = 5
    c_puct: float = 0.5
    c_uct: float = 1.0
    eps0: float = 0.2
    eps_decay: float = 0.5
    use_prior: bool = True
    allow_stop: bool = True
    extract: Literal["q", "visits"] = "q"

    def __post_init__(self) -> None:
        if self.num_rollouts < 1:
            raise ConfigError(f"MCTSConfig.num_rollouts = {self.num_rollouts} must be >= 1")
        if not 0 <= self.budget <= NUM_ATTRIBUTES:
            raise ConfigError(f"MCTSConfig.budget = {self.budget} must be in [0, {NUM_ATTRIBUTES}]")
        if self.c_puct < 0 or self.c_uct < 0:
            raise ConfigError(f"exploration constants must be >= 0 (c_puct={self.c_puct}, c_uct={self.c_uct})")
        if not (0 <= self.eps0 <= 1 and 0 <= self.eps_decay <= 1):
            raise ConfigError(f"eps0 = {self.eps0} and eps_decay = {self.eps_decay} must be in [0, 1]")
        if self.extract not in ("q", "visits"):
            raise ConfigError(f"MCTSConfig.extract = {self.extract!r} must be 'q' or 'visits'")


@dataclass
class SearchResult:
    """What ``search`` returns for ``n`` searches.

    Attributes:
        masks: ``(n,)`` the extracted plan's final set (root included).
        paths: Per search, the attributes to ask, in order (the root's own attributes excluded).
        q: ``(n,)`` the search's value estimate of the plan (mean backed-up net value).
        root_visits: ``(n, 11)`` visits of each root action (10 attributes, then STOP).
        first_hit: ``(n,)`` simulations until the extracted plan first equalled ``targets`` (-1: never);
            only when ``targets`` were given.
        simulations: Simulations run per search.
        value_calls: ``ValueSource`` calls made (one per simulation step, for all searches).
    """

    masks: np.ndarray
    paths: list[tuple[int, ...]]
    q: np.ndarray
    root_visits: np.ndarray
    first_hit: np.ndarray | None
    simulations: int
    value_calls: int


class BeliefValues:
    """Net values under sampled profiles: each call draws, per search, one particle (a training user)
    from that search's weights and returns that user's net value of the set."""

    def __init__(self, belief: ProfileBelief, particles: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        self.tables = belief.tables
        width = max(len(idx) for idx, _ in particles)
        self.idx = np.zeros((len(particles), width), dtype=np.int64)
        self.cum = np.full((len(particles), width), 2.0)
        for i, (idx, w) in enumerate(particles):
            self.idx[i, : len(idx)] = idx
            self.cum[i, : len(idx)] = np.cumsum(w)
            self.cum[i, len(idx) - 1] = 1.0

    def values(self, idx: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.random(len(idx))
        pick = (u[:, None] >= self.cum[idx]).sum(axis=1)
        return self.tables[self.idx[idx, pick], masks]


def search(
    values: ValueSource,
    prior: BoundPrior,
    *,
    roots: np.ndarray | Sequence[int],
    limits: np.ndarray | Sequence[int],
    config: MCTSConfig,
    rng: np.random.Generator,
    targets: np.ndarray | None = None,
    vectorized: bool | None = None,
) -> SearchResult:
    """Run ``len(roots)`` searches in lock-step (see the module docstring).

    Args:
        values: Net values of final sets (``values(idx, masks, rng)``).
        prior: The prior bound to the searches' queries and domains (ignored by plain UCT).
        roots: Each search's root set (attributes already asked).
        limits: Each search's most questions in total (root included); a plan adds at most
            ``limit - popcount(root)`` attributes.
        config: The hyper-parameters.
        rng: The only source of randomness (same rng state, same result).
        targets: Optional ``(n,)`` sets; ``first_hit`` records when the extracted plan first equals them
            (the sample-efficiency benchmark).
        vectorized: Force the array implementation (True) or the scalar one for a single search (False);
            default: scalar for one search (numpy's per-call overhead dominates there), arrays otherwise.
            Both run the same algorithm; with deterministic values and ``eps0 = 0`` (or no rollout
            randomness) they give the same plan (a test checks), otherwise they draw randomness
            differently.
    """
    roots = np.asarray(roots, dtype=np.int64).reshape(-1)
    limits = np.asarray(limits, dtype=np.int64).reshape(-1)
    n = len(roots)
    if limits.shape != (n,):
        raise ConfigError(f"search: {n} roots but {limits.shape} limits")
    if np.any(POPCOUNT[roots] > limits):
        raise ConfigError("search: a root already holds more attributes than its limit")
    if n == 1 and not vectorized:
        return _search_one(
            values,
            prior,
            int(roots[0]),
            int(limits[0]),
            config,
            rng,
            None if targets is None else int(np.asarray(targets).reshape(-1)[0]),
        )
    allow_stop = config.allow_stop
    # Node statistics of all searches in two flat arrays: slot ``b * 2048 + U`` holds the visits (value
    # sum) of node U of search b, slot ``b * 2048 + 1024 + U`` those of STOP at U. The 11 edges of node U
    # are the slots ``_EDGES[U]`` (its 10 children, then its STOP), so one ``take`` gathers them.
    # Visits and value sums side by side (one gather reads both); visit counts are exact in float64.
    S = np.zeros((n * _SLOTS, 2))
    base = np.arange(n, dtype=np.int64) * _SLOTS
    qmin = np.full(n, np.inf)
    qmax = np.full(n, -np.inf)
    ar = np.arange(n)
    first_hit = None if targets is None else np.full(n, -1, dtype=np.int64)
    targets = None if targets is None else np.asarray(targets, dtype=np.int64).reshape(-1)
    value_calls = 0
    root_depth = POPCOUNT[roots]
    c_puct, c_uct = config.c_puct, config.c_uct
    # Legal edges of a node with questions left: its unasked attributes, and STOP when allowed (or when
    # every attribute is asked).
    legal_at = _LEGAL.copy()
    legal_at[:, STOP] = allow_stop | ~_LEGAL[:, :NUM_ATTRIBUTES].any(axis=1)

    for t in range(config.num_rollouts):
        cur = roots.copy()
        active = np.ones(n, dtype=bool)
        final = roots.copy()
        stopped = np.zeros(n, dtype=bool)
        rollout_from = np.zeros(n, dtype=bool)
        visits: list[np.ndarray] = [base + roots]
        # Min-max normalization of Q (per search; constant within a simulation step).
        span_all = qmax - qmin
        has_span = span_all > 0
        inv_all = np.where(has_span, 1.0 / np.where(has_span, span_all, 1.0), 0.0)
        lo_all = np.where(has_span, qmin, 0.0)
        b = ar
        while len(b):
            m = cur[b]
            left = limits[b] - POPCOUNT[m]
            legal = legal_at[m]
            full = left <= 0
            if full.any():  # only a root can be full here (the descent stops at full nodes)
                legal[full] = _ONLY_STOP
            slots = base[b][:, None] + _EDGES[m]
            g = S[slots]
            n_all, w_all = g[..., 0], g[..., 1]
            inv, lo = inv_all[b], lo_all[b]
            visited = n_all > 0
            n1 = np.maximum(n_all, 1)
            qn = (w_all / n1 - lo[:, None]) * inv[:, None]
            # sum_b N(U + b): children are shared between parents (the tree is over sets), so this counts
            # visits of the children through any parent, as the scalar implementation does.
            total = np.where(legal, n_all, 0).sum(axis=1)
            if config.use_prior:
                node = base[b] + m
                parent = S[node]
                parent_n = parent[:, 0]
                fpu = np.where(parent_n > 0, (parent[:, 1] / np.maximum(parent_n, 1) - lo) * inv, 0.0)
                p = prior.probs(b, m, np.maximum(left, 0), allow_stop)
                score = np.where(visited, qn, fpu[:, None]) + p * (
                    (c_puct * np.sqrt(total))[:, None] / (n_all + 1.0) + 1e-9
                )
            else:
                explore = c_uct * np.sqrt(np.log(np.maximum(total, 1))[:, None] / n1)
                score = np.where(visited, qn + explore, 1e9 + rng.random(n_all.shape))
            a = np.where(legal, score, -np.inf).argmax(axis=1)
            stop = a == STOP
            if stop.any():
                sb = b[stop]
                stopped[sb] = True
                final[sb] = m[stop]
                active[sb] = False
            go = ~stop
            if go.any():
                gb = b[go]
                newm = m[go] | _BITS[a[go]]
                slot = base[gb] + newm
                visits.append(slot)
                final[gb] = newm
                leaf = (S[slot, 0] == 0) | (POPCOUNT[newm] >= limits[gb])
                rollout_from[gb[leaf]] = True
                active[gb[leaf]] = False
                cur[gb[~leaf]] = newm[~leaf]
            b = np.flatnonzero(active)

        # Rollouts from the newly expanded leaves, epsilon-greedy on the prior, to the budget.
        rb = np.flatnonzero(rollout_from)
        while len(rb):
            m = final[rb]
            left = limits[rb] - POPCOUNT[m]
            legal = _LEGAL[m] & (left > 0)[:, None]
            can = legal.any(axis=1)
            if not can.all():
                rb, m, left, legal = rb[can], m[can], left[can], legal[can]
                if not len(rb):
                    break
            legal[:, STOP] = allow_stop
            if config.use_prior:
                p = prior.probs(rb, m, left, allow_stop)
                a = np.where(legal, p, -1.0).argmax(axis=1)
                eps = config.eps0 * config.eps_decay ** (POPCOUNT[m] - root_depth[rb])
                ex = np.flatnonzero(rng.random(len(rb)) < eps)
                if len(ex):  # a uniformly random legal action for the exploring rollouts
                    a[ex] = np.where(legal[ex], rng.random((len(ex), legal.shape[1])), -1.0).argmax(axis=1)
            else:
                a = np.where(legal, rng.random(legal.shape), -1.0).argmax(axis=1)
            go = a != STOP
            final[rb[go]] = m[go] | _BITS[a[go]]
            rb = rb[go]

        v = values.values(ar, final, rng)
        value_calls += 1
        np.minimum(qmin, v, out=qmin)
        np.maximum(qmax, v, out=qmax)
        for slot in visits:
            S[slot, 0] += 1
            S[slot, 1] += v[slot // _SLOTS]
        if stopped.any():
            sb = np.flatnonzero(stopped)
            slot = base[sb] + (1 << NUM_ATTRIBUTES) + final[sb]
            S[slot, 0] += 1
            S[slot, 1] += v[sb]
        if first_hit is not None and targets is not None:
            need = first_hit < 0
            if need.any():
                got, _, _ = _extract(*_unflat(S, n), roots, limits, allow_stop, config.extract)
                hit = need & (got == targets)
                first_hit[hit] = t + 1

    N, W, NS, WS = _unflat(S, n)
    masks, q, paths = _extract(N, W, NS, WS, roots, limits, allow_stop, config.extract)
    if not allow_stop:
        masks, paths = _complete(masks, paths, limits, prior, config)
    root_child = roots[:, None] | _BITS[None, :]
    root_visits = np.concatenate(
        [np.where(MASK_BITS[roots] == 0, N[ar[:, None], root_child], 0), NS[ar, roots][:, None]], axis=1
    )
    return SearchResult(masks, paths, q, root_visits, first_hit, config.num_rollouts, value_calls)


_PC = [int(x) for x in POPCOUNT]


def _search_one(
    values: ValueSource,
    prior: BoundPrior,
    root: int,
    limit: int,
    config: MCTSConfig,
    rng: np.random.Generator,
    target: int | None,
) -> SearchResult:
    """``search`` for one search, in plain Python over dicts (the same rules, line for line)."""
    allow_stop = config.allow_stop
    use_prior = config.use_prior
    c = config.c_puct if use_prior else config.c_uct
    N: dict[int, int] = {}
    W: dict[int, float] = {}
    NS: dict[int, int] = {}
    WS: dict[int, float] = {}
    priors: dict[int, list[float]] = {}
    zero = np.zeros(1, dtype=np.int64)

    def prior_of(m: int) -> list[float]:
        p = priors.get(m)
        if p is None:
            p = prior.probs(zero, np.array([m]), np.array([max(limit - _PC[m], 0)]), allow_stop)[0].tolist()
            priors[m] = p
        return p

    qmin, qmax = math.inf, -math.inf
    root_depth = _PC[root]
    first_hit = -1
    value_calls = 0
    idx0 = np.zeros(1, dtype=np.int64)
    for t in range(config.num_rollouts):
        m = root
        path = [root]
        stopped = False
        rollout = False
        while True:
            left = limit - _PC[m]
            acts = [a for a in range(NUM_ATTRIBUTES) if not m >> a & 1] if left > 0 else []
            if allow_stop or not acts:
                acts.append(STOP)
            span = qmax - qmin
            has_span = span > 0
            inv = 1.0 / span if has_span else 0.0
            lo = qmin if has_span else 0.0
            counts = [NS.get(m, 0) if a == STOP else N.get(m | 1 << a, 0) for a in acts]
            total = sum(counts)
            if use_prior:
                p = prior_of(m)
                pn = N.get(m, 0)
                fpu = (W[m] / pn - lo) * inv if pn > 0 else 0.0
                sq = math.sqrt(total)
            else:
                lg = math.log(max(total, 1))
            best_a, best_s = -1, -math.inf
            for a, na in zip(acts, counts, strict=True):
                if na > 0:
                    wa = WS[m] if a == STOP else W[m | 1 << a]
                    qa = (wa / na - lo) * inv if has_span else 0.0
                if use_prior:
                    if na == 0:
                        qa = fpu
                    score = qa + p[a] * (c * sq / (na + 1.0) + 1e-9)
                else:
                    score = qa + c * math.sqrt(lg / na) if na > 0 else 1e9 + rng.random()
                if score > best_s:
                    best_a, best_s = a, score
            if best_a == STOP:
                stopped = True
                break
            m = m | 1 << best_a
            path.append(m)
            if N.get(m, 0) == 0 or _PC[m] >= limit:
                rollout = True
                break
        final = m
        if rollout:
            while True:
                left = limit - _PC[final]
                legal = [a for a in range(NUM_ATTRIBUTES) if not final >> a & 1] if left > 0 else []
                if not legal:
                    break
                if allow_stop:
                    legal.append(STOP)
                if use_prior:
                    p = prior_of(final)
                    greedy = max(legal, key=lambda a: (p[a], -a))
                    explore = rng.random() < config.eps0 * config.eps_decay ** (_PC[final] - root_depth)
                else:
                    explore = True
                a = legal[int(rng.integers(len(legal)))] if explore else greedy
                if a == STOP:
                    break
                final |= 1 << a
        v = float(values.values(idx0, np.array([final]), rng)[0])
        value_calls += 1
        qmin = min(qmin, v)
        qmax = max(qmax, v)
        for node in path:
            N[node] = N.get(node, 0) + 1
            W[node] = W.get(node, 0.0) + v
        if stopped:
            NS[final] = NS.get(final, 0) + 1
            WS[final] = WS.get(final, 0.0) + v
        if (
            target is not None
            and first_hit < 0
            and _extract_one(N, W, NS, WS, root, limit, allow_stop, config.extract)[0] == target
        ):
            first_hit = t + 1
    mask, q, path_ = _extract_one(N, W, NS, WS, root, limit, allow_stop, config.extract)
    masks, paths = np.array([mask], dtype=np.int64), [path_]
    if not allow_stop:
        masks, paths = _complete(masks, paths, np.array([limit]), prior, config)
    root_visits = np.zeros((1, NUM_ATTRIBUTES + 1), dtype=np.int64)
    for a in range(NUM_ATTRIBUTES):
        if not root >> a & 1:
            root_visits[0, a] = N.get(root | 1 << a, 0)
    root_visits[0, STOP] = NS.get(root, 0)
    return SearchResult(
        masks,
        paths,
        np.array([q]),
        root_visits,
        None if target is None else np.array([first_hit]),
        config.num_rollouts,
        value_calls,
    )


def _extract_one(
    N: dict[int, int],
    W: dict[int, float],
    NS: dict[int, int],
    WS: dict[int, float],
    root: int,
    limit: int,
    allow_stop: bool,
    how: str,
) -> tuple[int, float, tuple[int, ...]]:
    """``_extract`` for one search over dicts."""
    cur = root
    q = W[root] / N[root] if N.get(root, 0) > 0 else -math.inf
    path: list[int] = []
    while _PC[cur] < limit:
        best_a, best = -1, -math.inf
        for a in range(NUM_ATTRIBUTES):
            if cur >> a & 1:
                continue
            na = N.get(cur | 1 << a, 0)
            if na > 0:
                key = float(na) if how == "visits" else W[cur | 1 << a] / na
                if key > best:
                    best_a, best = a, key
        ns = NS.get(cur, 0)
        halt = best_a < 0
        if allow_stop and ns > 0:
            stop_key = float(ns) if how == "visits" else WS[cur] / ns
            halt = halt or stop_key >= best
        if halt:
            if allow_stop and ns > 0:
                q = WS[cur] / ns
            break
        cur |= 1 << best_a
        q = W[cur] / N[cur]
        path.append(best_a)
    return cur, q, tuple(path)


def _extract(
    N: np.ndarray,
    W: np.ndarray,
    NS: np.ndarray,
    WS: np.ndarray,
    roots: np.ndarray,
    limits: np.ndarray,
    allow_stop: bool,
    how: str,
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, ...]]]:
    """Walk from each root to the best visited child (by Q or visits) until STOP is at least as good, no
    child was visited, or the limit is reached."""
    n = len(roots)
    cur = roots.copy()
    q = np.where(N[np.arange(n), roots] > 0, W[np.arange(n), roots] / np.maximum(N[np.arange(n), roots], 1), -np.inf)
    active = POPCOUNT[roots] < limits
    steps: list[tuple[np.ndarray, np.ndarray]] = []
    while active.any():
        b = np.flatnonzero(active)
        m = cur[b]
        child = m[:, None] | _BITS[None, :]
        nc = N[b[:, None], child]
        ok = (MASK_BITS[m] == 0) & (nc > 0)
        key = nc.astype(np.float64) if how == "visits" else W[b[:, None], child] / np.maximum(nc, 1)
        key = np.where(ok, key, -np.inf)
        a = key.argmax(axis=1)
        best = key[np.arange(len(b)), a]
        ns = NS[b, m]
        stop_key = (ns.astype(np.float64) if how == "visits" else WS[b, m] / np.maximum(ns, 1)) if allow_stop else None
        halt = ~ok.any(axis=1)
        if stop_key is not None:
            halt |= (ns > 0) & (stop_key >= best)
        if halt.any():
            hb = b[halt]
            active[hb] = False
            if allow_stop:
                stop_q = WS[hb, cur[hb]] / np.maximum(NS[hb, cur[hb]], 1)
                q[hb] = np.where(NS[hb, cur[hb]] > 0, stop_q, q[hb])
        mv = ~halt
        if mv.any():
            gb = b[mv]
            newm = m[mv] | _BITS[a[mv]]
            cur[gb] = newm
            q[gb] = W[gb, newm] / np.maximum(N[gb, newm], 1)
            steps.append((gb, a[mv]))
            active[gb] = POPCOUNT[newm] < limits[gb]
    paths: list[list[int]] = [[] for _ in range(n)]
    for gb, a in steps:
        for i, x in zip(gb.tolist(), a.tolist(), strict=True):
            paths[i].append(int(x))
    return cur, q, [tuple(p) for p in paths]


def _complete(
    masks: np.ndarray, paths: list[tuple[int, ...]], limits: np.ndarray, prior: BoundPrior, config: MCTSConfig
) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Without STOP a plan asks exactly up to the limit: finish a plan that ran out of visited children
    with the prior's (or, for plain UCT, the paper's order's) most likely attributes."""
    masks = masks.copy()
    grown = [list(p) for p in paths]
    while True:
        b = np.flatnonzero(POPCOUNT[masks] < limits)
        if not len(b):
            break
        m = masks[b]
        legal = MASK_BITS[m] == 0
        if config.use_prior:
            p = prior.probs(b, m, limits[b] - POPCOUNT[m], False)[:, :NUM_ATTRIBUTES]
        else:
            p = np.ones((len(b), NUM_ATTRIBUTES))
        a = np.where(legal, p + 1e-12, -1.0).argmax(axis=1)
        masks[b] = m | _BITS[a]
        for i, x in zip(b.tolist(), a.tolist(), strict=True):
            grown[i].append(int(x))
    return masks, [tuple(p) for p in grown]


def plan_true_profile(
    model: EpisodeModel,
    rows: Sequence[int] | np.ndarray,
    *,
    prior: Prior,
    config: MCTSConfig,
    seed: int = 0,
    chunk: int = 1024,
    tables: bool | None = None,
) -> SearchResult:
    """Plan for scenario ``rows`` of ``model`` with their true profiles (the paper's offline search).

    Scores come from the judge's full tables when it has them (``tables=None``: auto), else from
    ``JudgeValues`` (each visited set judged once, batched per simulation step). Rows are searched in
    chunks of ``chunk`` in lock-step.
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    use_tables = hasattr(model.bound, "table") if tables is None else tables
    limit = min(config.budget, model.budget)
    rng = np.random.default_rng(seed)
    parts: list[SearchResult] = []
    for start in range(0, len(rows), chunk):
        r = rows[start : start + chunk]
        src: ValueSource = TableValues(net_tables(model, r)) if use_tables else JudgeValues(model, r)
        bound = prior.bind([model.scenarios[i].query for i in r], [model.scenarios[i].domain_index for i in r])
        parts.append(
            search(
                src,
                bound,
                roots=np.zeros(len(r), dtype=np.int64),
                limits=np.full(len(r), limit),
                config=config,
                rng=rng,
            )
        )
    if not parts:
        return SearchResult(
            np.zeros(0, np.int64), [], np.zeros(0), np.zeros((0, 11), np.int64), None, config.num_rollouts, 0
        )
    return SearchResult(
        masks=np.concatenate([p.masks for p in parts]),
        paths=[x for p in parts for x in p.paths],
        q=np.concatenate([p.q for p in parts]),
        root_visits=np.concatenate([p.root_visits for p in parts]),
        first_hit=None,
        simulations=config.num_rollouts,
        value_calls=sum(p.value_calls for p in parts),
    )


class MCTSAgent(DialogueAgent):
    """Plays the MCTS planner's plan (see the module docstring for the two modes).

    Args:
        mode: ``"belief"`` (default; plans with sampled profiles from a belief learned on training users,
            replanning after every answer) or ``"true"`` (privileged: plans with the user's true profile,
            as the paper's offline search).
        prior: ``"learned"`` (attribute importance per domain learned from training users; default),
            ``"uniform"``, ``"llm:<backend spec>"`` (an LLM's ranking; falls back to the learned prior on
            an unusable reply), or a ``Prior`` object. Ignored by plain UCT.
        config: Planner hyper-parameters; ``MCTSConfig(use_prior=False)`` is plain UCT.
        belief_config: How the belief weighs training users.
        seed: Seed of the planner's randomness.

    Training data (the belief, the learned prior): ``fit(scenarios, judge)``, or built in ``attach`` from
    the env's training split (``agents.belief.training_scenarios``; about a second on the simulated judge).
    """

    def __init__(
        self,
        *,
        mode: Literal["belief", "true"] = "belief",
        prior: str | Prior = "learned",
        config: MCTSConfig | None = None,
        belief_config: BeliefConfig | None = None,
        seed: int = 0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if mode not in ("belief", "true"):
            raise ConfigError(f"MCTSAgent mode = {mode!r} must be 'belief' or 'true'")
        self.mode = mode
        self.config = config or MCTSConfig()
        self.prior_spec = prior
        self.belief_config = belief_config or BeliefConfig()
        self._seed = seed
        self.rng = np.random.default_rng(seed)
        self.privileged = mode == "true"
        kind = "mcts" if self.config.use_prior else "uct"
        self.name = name or (kind if mode == "belief" else f"{kind}-true")
        self.belief: ProfileBelief | None = None
        self._auto = False
        self.prior: Prior | None = None
        self._model: EpisodeModel | None = None
        self._row_of_id: dict[str, int] = {}
        self._plans: dict[int, tuple[int, ...]] = {}
        self._plan: tuple[int, ...] = ()

    # -- training ---------------------------------------------------------------------------------
    def fit(
        self,
        scenarios: Sequence[Scenario],
        judge: Judge,
        *,
        seed: int = 0,
        question_cost: CostSpec = DEFAULT_QUESTION_COST,
        budget: int | None = None,
        normalize_reward: bool = False,
    ) -> MCTSAgent:
        """Learn the belief and the learned prior from training ``scenarios`` (their ``train`` split)."""
        cfg = replace(self.belief_config, seed=seed)
        self.belief = ProfileBelief.fit(
            scenarios, judge, question_cost=question_cost, budget=budget, normalize_reward=normalize_reward, config=cfg
        )
        self._auto = False
        self._set_prior()
        return self

    def _set_prior(self) -> None:
        assert self.belief is not None
        learned = LearnedPrior.from_tables(self.belief.tables, self.belief.domains, self.belief.budget)
        spec = self.prior_spec
        if not isinstance(spec, str):
            self.prior = spec
        elif spec == "learned":
            self.prior = learned
        elif spec == "uniform":
            self.prior = UniformPrior()
        elif spec.startswith("llm:"):
            self.prior = LLMPrior(spec[4:], fallback=learned)
        else:
            raise ConfigError(f"unknown prior {spec!r}; valid: 'learned', 'uniform', 'llm:<backend spec>', or a Prior")

    def attach(self, env: Any) -> None:
        super().attach(env)
        self._model = env.model
        self._row_of_id = {s.id: i for i, s in enumerate(env.model.scenarios)}
        self._plans = {}
        needs_training = (
            self.prior_spec == "learned" or isinstance(self.prior_spec, str) and self.prior_spec.startswith("llm:")
        )
        if (self.belief is None or self._auto) and (self.mode == "belief" or needs_training):
            # Learned from this env's training split (refreshed for each env; a ``fit`` model is kept).
            self.belief = fit_belief_cached(
                training_scenarios(env), env.judge, model=env.model, config=self.belief_config
            )
            self._auto = True
            self.prior = None
        if self.prior is None:
            if self.belief is None:
                self.prior = UniformPrior() if self.prior_spec == "uniform" else self.prior_spec  # type: ignore[assignment]
            else:
                self._set_prior()

    def seed(self, seed: int) -> None:
        self._seed = seed
        self.rng = np.random.default_rng(seed)
        self._plans = {}

    def prepare(self, scenario_ids: Sequence[str]) -> None:
        """Privileged mode: plan all the episodes' users in one batched search (``evaluate`` calls this)."""
        if self.mode != "true" or self._model is None or self.prior is None:
            return
        rows = sorted({self._row_of_id[s] for s in scenario_ids} - set(self._plans))
        if rows:
            res = plan_true_profile(
                self._model, rows, prior=self.prior, config=self.config, seed=int(self.rng.integers(1 << 31))
            )
            self._plans.update({r: p for r, p in zip(rows, res.paths, strict=True)})

    # -- playing ----------------------------------------------------------------------------------
    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        if self._model is None or self.prior is None:
            raise ConfigError("MCTSAgent needs the env: call agent.attach(env.unwrapped) first (evaluate does)")
        if self.mode == "true":
            row = self._row_of_id[str(info["scenario_id"])]
            if row not in self._plans:
                self.prepare([str(info["scenario_id"])])
            self._plan = self._plans[row]

    def choose(self, obs: Mapping[str, np.ndarray]) -> int:
        d = self.dialogue
        if self.mode == "true":
            asked = d.asked_mask
            return next((a for a in self._plan if not asked >> a & 1), ANSWER)
        assert self.belief is not None and self.prior is not None
        limit = min(self.config.budget, POPCOUNT[d.asked_mask] + d.budget_left)
        if POPCOUNT[d.asked_mask] >= limit:
            return ANSWER
        idx, w = self.belief.weights(d.domain_index, d.scenario_type, d.query, d.severity, d.asked_mask)
        res = search(
            BeliefValues(self.belief, [(idx, w)]),
            self.prior.bind([d.query], [d.domain_index]),
            roots=np.array([d.asked_mask]),
            limits=np.array([limit]),
            config=self.config,
            rng=self.rng,
        )
        return res.paths[0][0] if res.paths[0] else ANSWER


__all__ = [
    "BeliefValues",
    "MCTSAgent",
    "MCTSConfig",
    "SearchResult",
    "plan_true_profile",
    "search",
]
