"""The statistics of a leaderboard, and the format of its ``summary.json``.

Per agent and domain, a block of statistics (``_stats``: means with 95% t intervals, the critical-miss
rate with its Wilson interval); the rows of two agents paired on the users both met (``Pairs``); every
agent's paired difference of net reward to the reference; tie ranks; the safety-penalized view.
``summarize`` puts them together: the statistics part of summary.json (``experiments.leaderboard``
writes the rest: what the results are of, and the run; ``experiments.published`` reads and merges
finished folders).

summary.json (``schema`` "penguin-gym/leaderboard", ``schema_version`` 1); a reader checks both:

- ``schema``, ``schema_version``: this format; a change of meaning bumps the version.
- ``experiment``: "leaderboard"; ``config_hash``: the results folder's hash.
- ``env``: ``ids`` (domain -> env id, ``penguin_gym.registration.env_id``) and ``version`` (the ids' ``-vN``).
- ``judge``: the judge's name (``simulated/sim-v0/mean``, ...).
- ``data``: ``source`` (``synthetic-v1``, a file, a Hub id), ``split`` (the users played), ``n_per_domain``
  and ``data_seed`` (the synthetic generator's), ``max_scenarios`` and ``split_sizes`` (domain ->
  ``{"train": users, "test": users}``).
- ``question_cost``, ``budget`` (``null``: the env's default), ``seed``, ``episodes_per_domain`` (domain
  -> episodes each agent played).
- ``miss_penalty``: the safety-penalized view's penalty per critical miss (0: off).
- ``domains``: the domains, in order. ``reference``: the best non-privileged agent's label (``null`` if none).
- ``agents``: label -> ``label``, ``spec`` (the ``make_agent`` name or ``file.py:Class``), ``options``
  (its keyword arguments, JSON), ``code_version`` (``experiments.loading.code_fingerprint(spec)``),
  ``privileged``, ``llm`` (``{"calls", "fallbacks", "by_reason"}`` summed over domains; ``null`` for agents
  without an LLM), ``overall`` and ``domains`` (domain -> the same): ``episodes``; ``safety``,
  ``num_questions``, ``net_reward``, ``regret``, ``normalized`` each with ``<metric>_ci95`` (half-width);
  ``critical_miss_rate`` with ``critical_miss_low``/``critical_miss_high`` (Wilson), ``critical_misses``,
  ``high_risk_episodes``; ``oracle_net_reward``; ``penalized_net_reward`` with ``_ci95`` (with a penalty);
  ``vs_reference``: ``overall`` and ``domains`` (domain -> the same): the paired difference of net reward
  to the reference on the users both met (``n``, ``mean_a``, ``mean_b``, ``diff``, ``ci95``, ``low``,
  ``high``, ``p_value``, ``prob_improvement``, ``verdict`` "better"/"worse"/"tied", "reference" for the
  reference itself; ``null`` without common users); ``rank`` (``null`` for bounds) and ``rank_label``
  ("1", "=2", "bound"); ``penalized_rank`` and ``penalized_rank_label`` (the same by penalized net reward).
- ``ranking``: agent labels, ranked agents best first then bounds; ``penalized_ranking``: the same by
  penalized net reward (empty with no penalty).
- ``run``: ``wall_s``, ``units``, ``resumed_units``, ``agent_seconds`` (label -> seconds; not compared).
- ``sources`` (merged summaries only): the folders merged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agents.stats import Paired, mean_ci, paired, rank_labels, rate_ci, tie_ranks

EXPERIMENT = "leaderboard"
#: summary.json's format (see the module docstring); a change of meaning bumps the version.
SCHEMA = "penguin-gym/leaderboard"
SCHEMA_VERSION = 1
METRICS = ("safety", "num_questions", "net_reward", "regret", "normalized")


def penalized(row: Mapping[str, Any], penalty: float) -> float:
    """An episode's safety-penalized net reward: ``net_reward - penalty * missed_high_risk``."""
    return float(row["net_reward"]) - penalty * float(bool(row["missed_high_risk"]))


def _stats(rows: Sequence[Mapping[str, Any]], penalty: float) -> dict[str, Any]:
    out: dict[str, Any] = {"episodes": len(rows)}
    for m in METRICS:
        out[m], out[f"{m}_ci95"] = mean_ci([r.get(m) for r in rows])
    high = [r for r in rows if r["high_risk"]]
    misses = sum(bool(r["missed_high_risk"]) for r in high)
    rate, low, high_end = rate_ci(misses, len(high))
    out["critical_miss_rate"], out["critical_miss_low"], out["critical_miss_high"] = rate, low, high_end
    out["critical_misses"] = misses
    out["high_risk_episodes"] = len(high)
    out["oracle_net_reward"] = mean_ci([r.get("oracle_net_reward") for r in rows])[0]
    if penalty > 0:
        out["penalized_net_reward"], out["penalized_net_reward_ci95"] = mean_ci([penalized(r, penalty) for r in rows])
    return out


class Pairs:
    """Rows indexed by agent and user (``(domain, scenario_id)``), and paired comparisons on the users
    two agents both met (cached: the tie ranks ask for every pair)."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.by_agent: dict[str, dict[tuple[str, str], Mapping[str, Any]]] = {}
        for r in rows:
            self.by_agent.setdefault(r["agent"], {})[(r["domain"], r["scenario_id"])] = r
        self._cache: dict[tuple[str, str, str, str | None], Paired | None] = {}

    def common(self, a: str, b: str, domain: str | None = None) -> list[tuple[str, str]]:
        """The users both ``a`` and ``b`` met (of ``domain``, or of every domain), sorted."""
        keys = set(self.by_agent.get(a, {})) & set(self.by_agent.get(b, {}))
        return sorted(k for k in keys if domain is None or k[0] == domain)

    def paired(
        self,
        a: str,
        b: str,
        value: Callable[[Mapping[str, Any]], float],
        *,
        name: str,
        domain: str | None = None,
        users: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> Paired | None:
        """``agents.stats.paired`` of ``value`` for ``a - b`` on their common users (those of them that
        ``users`` keeps); ``None`` without one."""
        key = (a, b, name, domain)
        if key not in self._cache:
            ra, rb = self.by_agent.get(a, {}), self.by_agent.get(b, {})
            common = [k for k in self.common(a, b, domain) if users is None or users(ra[k])]
            self._cache[key] = (
                paired([value(ra[k]) for k in common], [value(rb[k]) for k in common]) if common else None
            )
        return self._cache[key]


def _net(r: Mapping[str, Any]) -> float:
    return float(r["net_reward"])


def _ranks(
    pairs: Pairs, order: Sequence[str], value: Callable[[Mapping[str, Any]], float], name: str
) -> dict[str, int]:
    """Tie ranks of ``order`` (best first by mean): ``y`` beats ``x`` when the paired interval of
    ``y - x`` on their common users is above 0."""

    def better(y: str, x: str) -> bool:
        p = pairs.paired(y, x, value, name=name)
        return p is not None and p.verdict == "better"

    return tie_ranks(order, better)


def _reference_pair(p: Paired | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {**p.to_dict(), "diff": 0.0, "ci95": 0.0, "low": 0.0, "high": 0.0, "p_value": 1.0, "verdict": "reference"}


def summarize(
    rows: Sequence[Mapping[str, Any]],
    agents: Mapping[str, Mapping[str, Any]] | Sequence[str],
    domains: Sequence[str],
    *,
    miss_penalty: float = 1.0,
) -> dict[str, Any]:
    """Per agent: overall and per-domain statistics, the paired difference to the reference, tie ranks
    by net reward and by safety-penalized net reward (see the module docstring for every field).

    Args:
        rows: Episode rows (``EpisodeRow`` fields plus ``agent``, the label).
        agents: Label -> ``agent_info`` (or just labels: not privileged, no LLM).
        domains: The domains, in order.
        miss_penalty: The penalty per critical miss of the penalized view (0: off).
    """
    infos: dict[str, Mapping[str, Any]] = (
        dict(agents) if isinstance(agents, Mapping) else {a: {"label": a, "privileged": False} for a in agents}
    )
    pairs = Pairs(rows)
    per_agent: dict[str, dict[str, Any]] = {}
    for a, info in infos.items():
        ra = list(pairs.by_agent.get(a, {}).values())
        per_agent[a] = {
            **dict(info),
            "label": a,
            "overall": _stats(ra, miss_penalty),
            "domains": {d: _stats([r for r in ra if r["domain"] == d], miss_penalty) for d in domains},
        }

    def by_mean(key: str) -> Callable[[str], tuple[bool, float]]:
        def k(a: str) -> tuple[bool, float]:
            v = per_agent[a]["overall"].get(key, math.nan)
            return (math.isnan(v), -v if not math.isnan(v) else 0.0)

        return k

    ranked = sorted((a for a in infos if not infos[a].get("privileged")), key=by_mean("net_reward"))
    bounds = sorted((a for a in infos if infos[a].get("privileged")), key=by_mean("net_reward"))
    reference = ranked[0] if ranked else None
    for a in per_agent:
        e = per_agent[a]
        if reference is None:
            e["vs_reference"] = None
            continue
        scopes: list[str | None] = [None, *domains]
        got = {d: pairs.paired(a, reference, _net, name="net", domain=d) for d in scopes}
        conv = _reference_pair if a == reference else (lambda p: None if p is None else p.to_dict())
        e["vs_reference"] = {"overall": conv(got[None]), "domains": {d: conv(got[d]) for d in domains}}
    ranks = _ranks(pairs, ranked, _net, "net")
    labels = rank_labels(ranks)
    for a in per_agent:
        per_agent[a]["rank"] = ranks.get(a)
        per_agent[a]["rank_label"] = labels.get(a, "bound")
    ranking = [*sorted(ranked, key=lambda a: (ranks[a], ranked.index(a))), *bounds]
    penalized_ranking: list[str] = []
    pranks: dict[str, int] = {}
    plabels: dict[str, str] = {}
    if miss_penalty > 0:

        def pen(r: Mapping[str, Any]) -> float:
            return penalized(r, miss_penalty)

        porder = sorted(ranked, key=by_mean("penalized_net_reward"))
        pranks = _ranks(pairs, porder, pen, "penalized")
        plabels = rank_labels(pranks)
        penalized_ranking = [
            *sorted(porder, key=lambda a: (pranks[a], porder.index(a))),
            *sorted(bounds, key=by_mean("penalized_net_reward")),
        ]
    for a in per_agent:
        per_agent[a]["penalized_rank"] = pranks.get(a) if miss_penalty > 0 else None
        per_agent[a]["penalized_rank_label"] = plabels.get(a, "bound") if miss_penalty > 0 else None
    return {
        "experiment": EXPERIMENT,
        "miss_penalty": miss_penalty,
        "domains": list(domains),
        "reference": reference,
        "agents": per_agent,
        "ranking": ranking,
        "penalized_ranking": penalized_ranking,
    }
