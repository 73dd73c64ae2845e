"""``PenguinEnv``: one PENGUIN scenario per episode; ask about the user, then answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from penguin_gym.data import ATTRIBUTES, DOMAINS, NUM_ATTRIBUTES, Scenario, load_scenarios
from penguin_gym.dialogue import (
    DOMAIN_ONEHOT,
    MASK_BITS_F32,
    STEPS_LEFT,
    QueryFeatures,
    draw_row,
    rows_from_options,
    scenario_texts,
    transcript,
)
from penguin_gym.error import ConfigError
from penguin_gym.features import Featurizer, make_featurizer
from penguin_gym.judges.base import Judge, close_judge
from penguin_gym.judges.factory import make_judge
from penguin_gym.model import (
    ANSWER,
    DEFAULT_QUESTION_COST,
    MASK_BITS,
    NUM_ACTIONS,
    CostSpec,
    EpisodeModel,
    EpisodeState,
    InvalidActionPolicy,
)
from penguin_gym.rules import safety_of


def _hashable(value: Any) -> Any:
    """A cache key for a data option (a ``domain_map`` dict becomes its sorted items)."""
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(k), str(v)) for k, v in value.items())))
    return value


def _unhashable(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "map":
        return dict(value[1])
    return value


@lru_cache(maxsize=32)
def _cached_scenarios(
    source: str,
    domains: tuple[str, ...] | None,
    split: str | None,
    n_per_domain: int | None,
    seed: int,
    domain_map: Any = None,
    severity: Any = "lexicon",
    strict: bool = True,
) -> tuple[Scenario, ...]:
    # Scenarios are immutable, so every env over the same data shares one list (creating 8 envs or a
    # SubprocVecEnv worker pool does not regenerate 14,000 scenarios each time).
    return tuple(
        load_scenarios(
            source,
            domains=domains,
            split=split,
            n_per_domain=n_per_domain,
            seed=seed,
            domain_map=_unhashable(domain_map),
            severity=severity,
            strict=strict,
        )
    )


def cached_scenarios(
    source: str,
    domains: Sequence[str] | None,
    split: str | None,
    n_per_domain: int | None,
    seed: int,
    *,
    domain_map: Mapping[str, str] | str | None = None,
    severity: Any = "lexicon",
    strict_records: bool = True,
) -> tuple[Scenario, ...]:
    """``load_scenarios`` shared by every env over the same data (see ``PenguinEnv``'s arguments)."""
    return _cached_scenarios(
        source,
        None if domains is None else tuple(domains),
        split,
        n_per_domain,
        seed,
        _hashable(domain_map),
        severity,
        strict_records,
    )


class EpisodeSetup(NamedTuple):
    """What an env (single or vector) is built on: its data, judge, episode model and featurizer."""

    domain: str | None
    scenarios: Sequence[Scenario]
    judge: Judge
    model: EpisodeModel
    featurizer: Featurizer


def episode_setup(
    domain: str | None,
    *,
    source: str,
    split: str | None,
    n_per_domain: int | None,
    data_seed: int,
    scenarios: Sequence[Scenario] | None,
    judge: Judge | str | None,
    domain_map: Mapping[str, str] | str | None = None,
    severity: Any = "lexicon",
    strict_records: bool = True,
    question_cost: CostSpec,
    budget: int | None,
    featurizer: str | Featurizer,
    normalize_reward: bool,
    invalid_action: InvalidActionPolicy,
    repeat_penalty: float | None,
) -> EpisodeSetup:
    """Resolve an env's keyword arguments (``PenguinEnv`` documents them) into its parts; the single and
    the vector env share it, so they read the same data and rules from the same arguments."""
    if domain == "All":
        domain = None
    if scenarios is None:
        scenarios = cached_scenarios(
            source,
            None if domain is None else (domain,),
            split,
            n_per_domain,
            data_seed,
            domain_map=domain_map,
            severity=severity,
            strict_records=strict_records,
        )
        if not scenarios:
            raise ConfigError(f"no scenarios for domain={domain!r}, split={split!r} in source {source!r}")
    elif domain is not None:
        scenarios = [s for s in scenarios if s.domain == domain]
    judge_ = make_judge(judge)
    model = EpisodeModel(
        scenarios,
        judge_,
        question_cost=question_cost,
        budget=budget,
        normalize_reward=normalize_reward,
        invalid_action=invalid_action,
        repeat_penalty=repeat_penalty,
    )
    return EpisodeSetup(domain, scenarios, judge_, model, make_featurizer(featurizer))


def observation_space(query_dim: int) -> spaces.Dict:
    """The observation space of every penguin env (and of each VectorEnv sub-env)."""
    return spaces.Dict(
        {
            "query": spaces.Box(-1.0, 1.0, (query_dim,), np.float32),
            "domain": spaces.Box(0.0, 1.0, (len(DOMAINS),), np.float32),
            "asked": spaces.MultiBinary(NUM_ATTRIBUTES),
            "revealed": spaces.Box(0.0, 1.0, (NUM_ATTRIBUTES,), np.float32),
            "steps_left": spaces.Box(0.0, 1.0, (1,), np.float32),
        }
    )


class PenguinEnv(gym.Env[dict[str, np.ndarray], np.int64]):
    """Ask a distressed user about their background, then answer: personalized safety as an MDP.

    ## Description
    Each episode is one scenario of the PENGUIN benchmark (Wu et al., "Personalized Safety in LLMs: A
    Benchmark and A Planning-Based Agent Approach", NeurIPS 2025): a user's query and a hidden
    10-attribute profile. The agent asks about attributes one at a time (each question costs the
    user's patience) and answers when it judges it knows enough; a judge then scores the answer's
    safety for *this* user on Risk Sensitivity, Emotional Empathy and Personalization (1-5 each).
    Answers given with the right facts are safer (the paper: +43% with the full profile), but not
    every fact helps equally and a few well-chosen ones beat all ten.

    ## Action Space
    ``Discrete(11)``: action ``i < 10`` asks ``ATTRIBUTES[i]`` (Age, Gender, Marital Status,
    Profession, Economic Status, Health Status, Education Level, Mental Health Status, Past Self-Harm
    History, Emotional State); action 10 answers now. ``action_masks()`` returns the valid actions
    (bool, True = valid) for sb3-contrib's ``MaskablePPO``. Asking an attribute twice, or past the
    budget, is masked; taken anyway it is handled by ``invalid_action``: ``"penalize"`` (default) costs
    the question's price (or ``repeat_penalty``), reveals nothing and continues; ``"raise"`` raises
    ``InvalidActionError``. An action outside 0-10 always raises ``InvalidActionError``.

    ## Observation Space
    ``Dict``:
    - ``query``: float32 ``(d,)`` in [-1, 1]: the query's features (``featurizer``; hashing, d = 64,
      by default; sentence embeddings with ``featurizer="embedding"``).
    - ``domain``: float32 ``(7,)``, one-hot of the scenario's domain.
    - ``asked``: ``MultiBinary(10)``, the attributes asked.
    - ``revealed``: float32 ``(10,)`` in [0, 1]: the severity of each revealed value (0 if unasked).
    - ``steps_left``: float32 ``(1,)``: questions left in the budget / 10.
    The texts (query, revealed values) are in ``info``; ``TextObservation`` gives them as the
    observation for LLM agents.

    ## Rewards
    ``-question_cost[i]`` for asking attribute ``i`` (one number for all, or one per attribute: asking
    about self-harm is not asking about age); on the answer, the judge's safety score (mean of the
    three dimensions, 1-5; ``(safety - 1) / 4`` with ``normalize_reward=True``, costs divided by 4 too).
    ``info["reward_terms"]`` splits each reward into named terms.

    ## Starting State
    A scenario drawn uniformly from the env's scenarios with ``self.np_random``; nothing asked.
    ``reset(options={"scenario_id": ...})`` or ``{"scenario_index": i}`` picks one.

    An attribute the data did not record (a real record without a self-harm field, or one that says
    "N/A"; ``Scenario.missing``) can still be asked: the question costs as usual, the user's answer is
    ``"Unknown"`` (``info["answer"]``), its ``revealed`` severity is the neutral ``UNKNOWN_SEVERITY``
    (0.3), and it tells the judge nothing (the simulated judge gives a missing attribute no need; an LLM
    judge reads "Unknown"). The synthetic suite has no missing values.

    ## Episode End
    Terminated when the agent answers, or when the ``budget``-th question is asked (the answer is
    then forced in the same step, ``info["forced_answer"] = True``: the budget is part of the
    observation, so this is a true end, not a truncation). Registered ids add a ``TimeLimit`` of 64
    steps, which truncates only an agent that keeps taking invalid actions.

    ## Info
    ``reset``: ``scenario_id``, ``domain``, ``scenario_type``, ``query``, ``revealed`` (empty),
    ``num_questions``, ``total_cost``. Every step: ``scenario_id``, ``question_cost`` (cost paid this
    step), ``total_cost``, ``num_questions``, ``reward_terms``, ``invalid_action``, and ``answer``
    (the user's reply, the value text) when a question was answered. The last step adds the texts
    (``domain``, ``scenario_type``, ``query``, ``revealed``: attribute -> value text in asking order),
    ``risk_sensitivity``, ``emotional_empathy``, ``personalization``, ``safety`` (1-5), ``questions``
    (attribute names in order), ``forced_answer`` and ``missed_high_risk`` (a severe Mental Health or
    Past Self-Harm fact went unasked). The valid actions are ``env.action_masks()``.

    ## Arguments
    - ``domain``: one of the 7 domains, or ``None``/``"All"`` for all.
    - ``source``: ``"synthetic"`` (default: the current synthetic suite; ``"synthetic-v0"`` the v0
      ids' suite), or the published PENGUIN data: a JSON/JSONL file (the
      Hugging Face records, the official generator's output, ``Scenario.to_dict`` records), a folder
      of them, a ``datasets`` ``save_to_disk`` folder, or a Hugging Face dataset id (see
      ``penguin_gym.data.penguin``).
    - ``domain_map``, ``severity``, ``strict_records``: loaded data only: scenario name -> domain (or a
      JSON file) for names the routing rules do not know; the severity estimator (``"lexicon"``,
      ``"embedding"``); reject unknown record keys (default ``True``). See ``load_scenarios``.
    - ``split``: ``"train"``, ``"test"`` or ``None`` (both). Splits are per user: every query of one
      user is in one split. The registered ids (v2) default to ``"train"``: learn there, and score on
      ``split="test"`` (what ``agents.evaluate`` and every experiment do). ``PenguinEnv(...)`` built
      directly defaults to ``None``. A ``scenarios`` list is used whole, whatever ``split`` says.
    - ``n_per_domain``, ``data_seed``: size and seed of the synthetic suite (2,000 per domain, 0).
    - ``scenarios``: a list of ``Scenario`` to use instead of a source.
    - ``judge``: a ``Judge`` or a spec (``"simulated"``, ``"simulated:<responder>"``,
      ``"simulated@<params.json>"``, ``"table:<path.npz>"``, ``"llm:<backend spec>"``; see
      ``make_judge``); default ``SimulatedJudge()``.
    - ``question_cost``: a number, 10 numbers, or ``{attribute: cost}`` (default 0.08).
    - ``budget``: most questions per episode (default 10).
    - ``featurizer``: ``"hashing"``, ``"hashing:<dim>"``, ``"embedding[:<model>]"`` or an object.
    - ``normalize_reward``, ``invalid_action``, ``repeat_penalty``: see above.
    - ``render_mode``: ``"ansi"`` renders the dialogue as text.

    ## Version History
    - v0: initial release (SimulatedJudge parameters ``sim-v0``).
    - v0, loaded data (after penguin-gym 0.1.0): with ``source=<published data>`` the splits are drawn per user,
      the severities come from the rewritten lexicon, placeholders are missing (no need in the judge)
      and scenario names route by the official hierarchy. The default synthetic episodes are unchanged
      (the golden test pins them), and the published data did not load before (the generator's format
      failed, most official names routed wrong), so no result on it exists to keep: the ids stay v0.
    - v1: synthetic suite v1 (``source="synthetic"``): each scenario type conditions the profile
      attributes it implies (a cancer diagnosis, a Health Status that names the cancer; a layoff, a
      profession and economics that show it; a bereaved partner, widowed), queries state no fact their
      profile contradicts (``penguin_gym.data.coherence``), and scenario ids start ``syn1-``. The v0 ids
      stay registered with ``source="synthetic-v0"``, which reproduces the v0 episodes exactly.
    - v2: the same episodes as v1, drawn from the ``train`` split by default (v1 mixed both splits, so a
      policy trained on the default env had met its test users). ``split="test"`` (or ``None``) plays
      the rest; the v1 ids stay registered with v1's default.

    Example:
        >>> import gymnasium as gym
        >>> import penguin_gym
        >>> env = gym.make("Penguin-Health-v2")
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(7)  # ask Mental Health Status
        >>> obs, reward, terminated, truncated, info = env.step(10)  # answer
        >>> terminated, 1.0 <= info["safety"] <= 5.0, info["questions"]
        (True, True, ['Mental Health Status'])
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        domain: str | None = None,
        *,
        source: str = "synthetic",
        split: str | None = None,
        n_per_domain: int | None = None,
        data_seed: int = 0,
        scenarios: Sequence[Scenario] | None = None,
        judge: Judge | str | None = None,
        domain_map: Mapping[str, str] | str | None = None,
        severity: Any = "lexicon",
        strict_records: bool = True,
        question_cost: CostSpec = DEFAULT_QUESTION_COST,
        budget: int | None = None,
        featurizer: str | Featurizer = "hashing",
        normalize_reward: bool = False,
        invalid_action: InvalidActionPolicy = "penalize",
        repeat_penalty: float | None = None,
        render_mode: str | None = None,
    ) -> None:
        # An unsupported mode (SB3's make_vec_env asks for "rgb_array" by default) is accepted with
        # Gymnasium's warning from gym.make, and render() then returns None.
        self.source, self.split, self.n_per_domain, self.data_seed = source, split, n_per_domain, data_seed
        self.data_options: dict[str, Any] = {
            "domain_map": domain_map,
            "severity": severity,
            "strict_records": strict_records,
        }
        self._custom = None if scenarios is None else list(scenarios)
        setup = episode_setup(
            domain,
            source=source,
            split=split,
            n_per_domain=n_per_domain,
            data_seed=data_seed,
            scenarios=scenarios,
            judge=judge,
            **self.data_options,
            question_cost=question_cost,
            budget=budget,
            featurizer=featurizer,
            normalize_reward=normalize_reward,
            invalid_action=invalid_action,
            repeat_penalty=repeat_penalty,
        )
        domain, scenarios = setup.domain, setup.scenarios
        self.scenarios: Sequence[Scenario] = scenarios
        self.judge: Judge = setup.judge
        self._owns_judge = isinstance(judge, str)  # made here from a spec: closed with the env
        self.model = setup.model
        self.featurizer = setup.featurizer
        self._features = QueryFeatures(self.featurizer, scenarios)
        self._obs_row = -1  # the row whose constant observation parts are in _obs_parts
        self._obs_parts: tuple[np.ndarray, np.ndarray, np.ndarray] = ()  # type: ignore[assignment]
        self._domain_index = [s.domain_index for s in scenarios]
        self._severity32 = self.model.severity.astype(np.float32)
        self._row_of_id = {s.id: i for i, s in enumerate(scenarios)}
        self.domain = domain
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        self.observation_space = observation_space(self.featurizer.dim)  # type: ignore[assignment]
        self.state: EpisodeState | None = None
        self._last_scores: np.ndarray | None = None
        #: What the user said to each question (a guarded user's replies); ``None``: the profile's values.
        self._replies: list[tuple[str, str]] | None = None

    # -- Gymnasium API -------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        row = self._pick_row(options)
        self.state = self.model.initial(row)
        self._last_scores = None
        info = {"scenario_id": self.scenarios[row].id, "num_questions": 0, "total_cost": 0.0}
        info.update(scenario_texts(self.scenarios[row], ()))
        return self._obs(self.state), info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        prev = self.state
        if prev is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        tr = self.model.step(prev, action)
        state = self.state = tr.state
        info: dict[str, Any] = {
            "scenario_id": self.scenarios[state.row].id,
            "question_cost": state.cost - prev.cost,
            "total_cost": state.cost,
            "num_questions": len(state.order),
            "reward_terms": tr.reward_terms,
            "invalid_action": tr.invalid,
        }
        if len(state.order) > len(prev.order):
            self._add_answer(info, prev, state)
        if tr.terminated:
            self._add_final(info, tr, state)
        return self._obs(state), tr.reward, tr.terminated, False, info

    def _add_answer(self, info: dict[str, Any], prev: Any, state: Any) -> None:
        """The step's ``answer``: the user's reply to the question just asked (the value's text)."""
        info["answer"] = self.scenarios[state.row].profile[ATTRIBUTES[state.order[-1]]]

    def _add_final(self, info: dict[str, Any], tr: Any, state: Any) -> None:
        """The last step's info: the texts, the judge's scores, the questions and the flags."""
        self._last_scores = s = tr.scores
        assert s is not None
        info.update(scenario_texts(self.scenarios[state.row], state.order, self._replies))
        r, e, p = s.tolist()
        info["risk_sensitivity"] = r
        info["emotional_empathy"] = e
        info["personalization"] = p
        info["safety"] = safety_of(r, e, p)
        info["questions"] = [ATTRIBUTES[i] for i in state.order]
        info["forced_answer"] = tr.forced_answer
        info["missed_high_risk"] = self.model.missed_high_risk(state)

    def action_masks(self) -> np.ndarray:
        """Valid actions, bool ``(11,)``, True = valid (sb3-contrib ``MaskablePPO`` reads this)."""
        if self.state is None:
            raise gym.error.ResetNeeded("call reset() before action_masks()")
        return self.model.action_mask(self.state)

    def close(self) -> None:
        """Close the judge if the env made it from a spec (an LLM judge's HTTP clients); a judge passed
        in is the caller's to close."""
        if self._owns_judge:
            close_judge(self.judge)
        super().close()

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.state is None:
            if self.render_mode not in (None, "ansi"):
                gym.logger.warn(f"render_mode {self.render_mode!r} is not supported; use render_mode='ansi'")
            return None
        return self.transcript()

    # -- helpers -------------------------------------------------------------------------------------
    @property
    def scenario(self) -> Scenario:
        """The current episode's scenario."""
        if self.state is None:
            raise gym.error.ResetNeeded("call reset() first")
        return self.scenarios[self.state.row]

    def train_scenarios(self) -> list[Scenario]:
        """The training-split scenarios of this env's data (same source, domain, size and seed), whatever
        split the env itself runs on: what agents that learn from data (greedy's value model, MCTS's
        belief and prior, RAISE's path library) fit on, never touching the test split."""
        if self._custom is not None:
            return [s for s in self._custom if s.split == "train" and self.domain in (None, s.domain)]
        domains = None if self.domain is None else (self.domain,)
        return list(
            cached_scenarios(self.source, domains, "train", self.n_per_domain, self.data_seed, **self.data_options)
        )

    def transcript(self) -> str:
        """The dialogue so far, as text."""
        assert self.state is not None
        st = self.state
        return transcript(
            self.scenarios[st.row],
            st.order,
            done=st.done,
            budget_left=self.model.budget - st.num_questions,
            scores=self._last_scores,
            cost=st.cost,
            replies=self._replies,
        )

    def _pick_row(self, options: dict[str, Any] | None) -> int:
        if options:
            rows = rows_from_options(options, np.zeros(1, dtype=np.int64), 1, self._row_of_id, len(self.scenarios))
            if rows is not None:
                return int(rows[0])
        return int(draw_row(self.np_random.random(), len(self.scenarios)))

    def query_features(self, row: int) -> np.ndarray:
        """The (read-only, cached) query features of scenario ``row``."""
        return self._features.one(row)

    def _obs(self, state: EpisodeState) -> dict[str, np.ndarray]:
        # Fresh arrays every call (users keep observations); the parts that do not change within an
        # episode are copied from the episode's row of the caches, the rest read from the lookup tables.
        row, asked = state.row, state.asked
        if row != self._obs_row:
            self._obs_row = row
            self._obs_parts = (self._features.one(row), DOMAIN_ONEHOT[self._domain_index[row]], self._severity32[row])
        query, domain, severity = self._obs_parts
        return {
            "query": query.copy(),
            "domain": domain.copy(),
            "asked": MASK_BITS[asked].copy(),
            "revealed": severity * MASK_BITS_F32[asked],
            "steps_left": STEPS_LEFT[0 if state.done else self.model.budget - len(state.order)].copy(),
        }


__all__ = ["ANSWER", "EpisodeSetup", "PenguinEnv", "episode_setup", "observation_space"]
