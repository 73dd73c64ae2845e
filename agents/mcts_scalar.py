"""The MCTS planner for one search in plain Python over dicts: ``agents.mcts_search.search``'s twin.

One online search (the belief agent's replanning, one user at a time) spends most of its time in
numpy's per-call overhead on arrays of length 1; this implementation runs the same rules (PUCT or UCT
selection, expansion, the epsilon-greedy rollout, mean backup, extraction) line for line over dicts
and is several times faster there (``benchmarks/mcts_speed.py``, "scalar + tables"). Legal questions
come from the same table as the batched search (``UNASKED``, generated from ``penguin_gym.rules``).
"""

from __future__ import annotations

import math

import numpy as np

from agents.mcts_config import UNASKED, MCTSConfig, SearchResult, complete_plans
from agents.priors import STOP, BoundPrior
from agents.scoring import ValueSource
from penguin_gym.data.schema import NUM_ATTRIBUTES
from penguin_gym.rules import POPCOUNT

_PC = [int(x) for x in POPCOUNT]


def search_one(
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
            acts = list(UNASKED[m]) if left > 0 else []
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
                legal = list(UNASKED[final]) if left > 0 else []
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
        masks, paths = complete_plans(masks, paths, np.array([limit]), prior, config)
    root_visits = np.zeros((1, NUM_ATTRIBUTES + 1), dtype=np.int64)
    for a in UNASKED[root]:
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
        for a in UNASKED[cur]:
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


__all__ = ["search_one"]
