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
judges), or a belief over profiles (``BeliefValues``). A single search (the online agent) runs the scalar
twin of the same algorithm instead (``agents.mcts_scalar``), where numpy's per-call overhead would dominate.
mctx-style, the planner never touches an env.

The planner's legality (which attributes a node may ask, when it must answer) is
``penguin_gym.rules.action_masks``: the env's rules over bitmasks, with the planner's own choice of
when stopping early is allowed (``MCTSConfig.allow_stop``). ``agents.mcts`` holds the agent that plays
the plans and re-exports this module's public names.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agents.mcts_config import MCTSConfig, SearchResult, complete_plans
from agents.mcts_scalar import search_one
from agents.priors import STOP, BoundPrior
from agents.scoring import ValueSource
from penguin_gym.data.schema import NUM_ATTRIBUTES
from penguin_gym.error import ConfigError
from penguin_gym.rules import ACTION_MASKS, ANSWER, BITS, POPCOUNT, action_masks

assert STOP == ANSWER  # the planner's STOP is the env's answer action

_BITS = BITS
_SLOTS = 2 << NUM_ATTRIBUTES
#: ``_EDGES[U]``: the 11 statistic slots of node U's edges (children U + a, then STOP at U).
_EDGES = np.concatenate(
    [
        np.arange(1 << NUM_ATTRIBUTES)[:, None] | _BITS[None, :],
        (1 << NUM_ATTRIBUTES) + np.arange(1 << NUM_ATTRIBUTES)[:, None],
    ],
    axis=1,
).astype(np.int64)
_ALL_SETS = np.arange(1 << NUM_ATTRIBUTES, dtype=np.int64)


def _unflat(S: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The flat statistics as (n, 1024) node visits, node values, stop visits, stop values."""
    half = 1 << NUM_ATTRIBUTES
    nn, ww = S[:, 0].reshape(n, _SLOTS).astype(np.int64), S[:, 1].reshape(n, _SLOTS)
    return nn[:, :half], ww[:, :half], nn[:, half:], ww[:, half:]


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
        return search_one(
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
    legal_at = action_masks(_ALL_SETS, 1)
    legal_at[:, STOP] = allow_stop | ~legal_at[:, :STOP].any(axis=1)

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
                legal[full] = action_masks(m[full], 0)
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
            legal = action_masks(m, left)
            can = legal[:, :STOP].any(axis=1)
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
        masks, paths = complete_plans(masks, paths, limits, prior, config)
    root_child = roots[:, None] | _BITS[None, :]
    root_visits = np.concatenate(
        [np.where(ACTION_MASKS[roots, :STOP], N[ar[:, None], root_child], 0), NS[ar, roots][:, None]], axis=1
    )
    return SearchResult(masks, paths, q, root_visits, first_hit, config.num_rollouts, value_calls)


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
        ok = ACTION_MASKS[m, :STOP] & (nc > 0)
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


__all__ = ["MCTSConfig", "SearchResult", "search"]
