"""Agent evaluations as resumable units: one (agent, domain) ``agents.evaluate`` run per unit.

Every agent of a domain meets the same users (the same seed: common random numbers), so differences
between agents are not differences between samples of users.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from experiments.args import DataArgs
from experiments.loading import make_any_agent
from experiments.results import ResultsDir
from experiments.scenarios import data_options, load_domains
from experiments.terminal import progress
from penguin_gym.registration import env_id


@dataclass(frozen=True)
class AgentUnit:
    """One evaluation: an agent (``agents.make_agent`` spec and kwargs) on one domain's env.

    Attributes:
        key: The unit's key in the results folder.
        agent: The ``make_agent`` spec (``"mcts"``, ``"static"``, ...).
        agent_kwargs: Keyword arguments of ``make_agent``.
        domain: The domain; the env is ``Penguin-<domain>-v2``.
        episodes: Episodes (distinct users, drawn with ``seed``), or ``None`` for every user once.
        seed: Seed of the user draw and of the agent; the same for every agent on a domain, so all
            agents meet the same users (common random numbers).
        env_kwargs: ``gym.make`` arguments (data source, split, judge, costs, budget).
        labels: Extra columns written on every row (the agent's label, the budget k, the responder).
        track: ``"faithful"`` (``Penguin-<domain>-v2``) or ``"guarded"`` (``Penguin-<domain>-Guarded-v0``).
    """

    key: str
    agent: str
    agent_kwargs: Mapping[str, Any]
    domain: str
    episodes: int | None
    seed: int
    env_kwargs: Mapping[str, Any]
    labels: Mapping[str, Any]
    track: str = "faithful"


def env_kwargs_for(args: DataArgs, judge: Any, **more: Any) -> dict[str, Any]:
    """``gym.make`` arguments of the data options (the env finds its training split from them)."""
    kw: dict[str, Any] = {"source": args.source, "split": None if args.split == "all" else args.split, "judge": judge}
    kw.update(data_options(args))
    if args.n_per_domain is not None:
        kw["n_per_domain"] = args.n_per_domain
    if args.data_seed:
        kw["data_seed"] = args.data_seed
    kw.update(more)
    return kw


def episodes_per_domain(args: DataArgs) -> dict[str, int | None]:
    """Episodes per domain: ``None`` (every user once) unless ``max_scenarios`` is below the domain's
    number of users."""
    sizes = {d: len(v) for d, v in load_domains(dataclasses.replace(args, max_scenarios=None)).items()}
    cap = args.max_scenarios
    return {d: (None if cap is None or cap >= n else cap) for d, n in sizes.items()}


def run_agent_units(
    results: ResultsDir,
    units: Sequence[AgentUnit],
    *,
    show_progress: bool = True,
    oracle: bool = True,
    max_fallback_rate: float | None = None,
) -> dict[str, float]:
    """Evaluate the units not in ``results`` yet (``agents.evaluate``), appending each unit's episode
    rows as soon as it finishes. Returns the seconds each computed unit took (by key).

    Each unit's meta records ``seconds`` and the ``EvalResult.meta`` of its run: ``privileged``,
    ``trained_on`` and, for LLM-driven agents, ``llm`` (calls, fallbacks, by_reason).

    Raises:
        LLMFallbackError: when an LLM-driven agent fell back on more than ``max_fallback_rate`` of its
            LLM replies (``--max-fallback-rate``); that unit's rows and meta are appended first, so
            nothing computed is lost, and the message names the agent, the domain and the counts.
    """

    import agents
    from agents.evaluate import LLMFallbackError, row_dict

    todo = [u for u in units if not results.is_done(u.key)]
    seconds: dict[str, float] = {}
    with progress(len(todo), "agents x domains evaluated", enabled=show_progress) as advance:
        for u in todo:
            t0 = time.perf_counter()
            agent = make_any_agent(u.agent, **dict(u.agent_kwargs))
            failed: LLMFallbackError | None = None
            try:
                res = agents.evaluate(
                    agent,
                    env_id(u.domain, track=u.track),
                    episodes=u.episodes,
                    seed=u.seed,
                    split=u.env_kwargs.get("split"),
                    env_kwargs={k: v for k, v in u.env_kwargs.items() if k != "split"},
                    oracle=oracle,
                    max_fallback_rate=max_fallback_rate,
                )
            except LLMFallbackError as e:
                if e.result is None:
                    raise
                failed, res = e, e.result
            seconds[u.key] = time.perf_counter() - t0
            results.append_unit(
                u.key,
                [{**dict(u.labels), **row_dict(r)} for r in res.rows],
                meta={"seconds": round(seconds[u.key], 3), **_json_safe(res.meta)},
            )
            advance(1)
            if failed is not None:
                usage = res.meta.get("llm") or {}
                reasons = ", ".join(f"{k}: {v}" for k, v in sorted((usage.get("by_reason") or {}).items()))
                raise LLMFallbackError(
                    f"agent {u.labels.get('agent', u.agent)!r} on {u.domain}: {usage.get('fallbacks')} of "
                    f"{usage.get('calls')} LLM replies fell back to the offline modules ({reasons or 'no reason recorded'}), "
                    f"above --max-fallback-rate {max_fallback_rate:g}; its rows are kept in {results.rows_path}: "
                    "fix the LLM backend or raise --max-fallback-rate"
                ) from failed
    return seconds


def _json_safe(obj: Any) -> Any:
    """``obj`` with anything JSON cannot hold (paths, sets, objects) as text: unit meta is JSON."""
    import json

    return json.loads(json.dumps(obj, default=str))
