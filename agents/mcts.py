"""``MCTSAgent``: the paper's MCTS planner (``agents.mcts_search``) as an agent, and its offline search.

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

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from agents import guarded, llm
from agents.base import DialogueAgent
from agents.belief import BeliefConfig, ParticleSampler, ProfileBelief, fit_belief_cached
from agents.context import AgentContext, privileged_context
from agents.mcts_search import MCTSConfig, SearchResult, search
from agents.priors import LearnedPrior, LLMPrior, Prior, UniformPrior
from agents.scoring import JudgeValues, TableValues, ValueSource, net_tables
from penguin_gym.data.schema import Scenario
from penguin_gym.error import ConfigError
from penguin_gym.judges.base import Judge
from penguin_gym.model import ANSWER, DEFAULT_QUESTION_COST, POPCOUNT, CostSpec, EpisodeModel


class BeliefValues:
    """Net values under sampled profiles: each call draws, per search, one particle (a training user)
    from that search's weights and returns that user's net value of the set."""

    def __init__(self, belief: ProfileBelief, particles: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        self.tables = belief.tables
        self.sampler = ParticleSampler(particles)

    def values(self, idx: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.tables[self.sampler.draw(idx, rng.random(len(idx))), masks]


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

    Training data (the belief, the learned prior): ``fit(scenarios, judge)``, or built in ``setup`` from
    the context's training split (about a second on the simulated judge).
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
        self._upcoming: tuple[str, ...] = ()

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

    def setup(self, context: AgentContext) -> None:
        super().setup(context)
        self._plans = {}
        self._upcoming = ()
        if self.mode == "true":
            privileged = privileged_context(context, "MCTSAgent(mode='true')")
            self._model = privileged.env.model
            self._row_of_id = {s.id: i for i, s in enumerate(self._model.scenarios)}
            self._upcoming = privileged.scenario_ids
        needs_training = (
            self.prior_spec == "learned" or isinstance(self.prior_spec, str) and self.prior_spec.startswith("llm:")
        )
        if (self.belief is None or self._auto) and (self.mode == "belief" or needs_training):
            # Learned from this context's training split (refreshed for each; a ``fit`` model is kept).
            self.belief = fit_belief_cached(
                context.train_scenarios, context.judge, rules=context, config=self.belief_config
            )
            self._auto = True
            self.prior = None
        if self.prior is None:
            if self.belief is None:
                self.prior = UniformPrior() if self.prior_spec == "uniform" else self.prior_spec  # type: ignore[assignment]
            else:
                self._set_prior()

    def llm_usage(self) -> dict[str, Any] | None:
        """The LLM prior's replies and fallbacks (``evaluate`` records them; ``None`` without an LLM)."""
        return llm.usage(self.prior)

    def seed(self, seed: int) -> None:
        self._seed = seed
        self.rng = np.random.default_rng(seed)
        self._plans = {}

    def prepare(self, queries: Sequence[str]) -> None:
        """Privileged mode: plan all the upcoming users (the context's ``scenario_ids``) in one batched
        search (``evaluate`` calls this)."""
        self._plan_ids(self._upcoming)

    def _plan_ids(self, scenario_ids: Sequence[str]) -> None:
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
        if self.prior is None or (self.mode == "true" and self._model is None):
            raise ConfigError("MCTSAgent needs its context: call agent.setup(context) first (evaluate does)")
        if self.mode == "true":
            row = self._row_of_id[str(info["scenario_id"])]
            if row not in self._plans:
                self._plan_ids([str(info["scenario_id"])])
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
        user = None if self.agent_context is None else self.agent_context.user
        if user is not None:  # the guarded track: the belief learns from declines (agents.guarded)
            idx, w = guarded.weights(self.belief, d, user)
            values: Any = guarded.ReplyValues(self.belief, d, user, self.costs, [(idx, w)])
        else:
            idx, w = self.belief.weights(d.domain_index, d.scenario_type, d.query, d.severity, d.asked_mask)
            values = BeliefValues(self.belief, [(idx, w)])
        res = search(
            values,
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
