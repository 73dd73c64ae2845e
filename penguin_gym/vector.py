"""``PenguinVectorEnv``: N penguin episodes stepped at once in numpy, with no Python loop over their steps.

The batched twin of ``PenguinEnv``: the same spaces, action masks, rewards and autoreset semantics as
``N`` copies of ``PenguinEnv`` (the registered ids, ``TimeLimit`` included) in a ``SyncVectorEnv``,
through the same rules (``EpisodeModel.step_batch``) and the judge's batched path. It is what
``gym.make_vec("Penguin-Health-v2", num_envs=N)`` returns; ``agents.sb3_vec`` adapts it to
Stable-Baselines3's ``VecEnv``.

Longer than the house's 500 lines because it is one class over one set of state arrays: about half of
it builds the batched ``info`` in gymnasium's layout (every key of ``PenguinEnv``'s, with its masks and
the three autoreset modes), which reads and writes those arrays throughout. The rules it steps are
``penguin_gym.rules``' and the texts, tables and reset options ``penguin_gym.dialogue``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from penguin_gym.data import ATTRIBUTES, NUM_ATTRIBUTES, Scenario
from penguin_gym.dialogue import (
    DOMAIN_ONEHOT,
    MASK_BITS_F32,
    STEPS_LEFT,
    QueryFeatures,
    draw_row,
    rows_from_options,
    transcript,
)
from penguin_gym.env import episode_setup, observation_space
from penguin_gym.error import ConfigError
from penguin_gym.features import Featurizer
from penguin_gym.judges.base import Judge, close_judge
from penguin_gym.model import (
    ANSWER,
    DEFAULT_QUESTION_COST,
    MASK_BITS,
    NUM_ACTIONS,
    CostSpec,
    InvalidActionPolicy,
)

#: Uniform draws buffered per sub-env: one ``Generator.random(k)`` gives the same numbers as ``k``
#: scalar ``random()`` calls, so sub-env ``i`` draws exactly the scenarios a seeded ``PenguinEnv`` draws.
_DRAW_BLOCK = 64
_FINAL_KEYS = ("risk_sensitivity", "emotional_empathy", "personalization", "safety")


class PenguinVectorEnv(VectorEnv):
    """``num_envs`` penguin episodes in lockstep, as one ``gymnasium.vector.VectorEnv`` in numpy.

    ## Description
    Sub-env ``i`` behaves exactly as ``gym.make(id)`` (a ``PenguinEnv`` under a ``TimeLimit`` of
    ``max_episode_steps``) reset with seed ``seed + i``: the same scenario draws, observations, masks,
    rewards, terminations and truncations, step for step (the simulated judge's batched and scalar
    paths agree bit for bit). All arithmetic is array-wide over the state arrays (scenario row, asked
    bitmask, questions in order, cost paid, steps); Python loops only refill each sub-env's buffer of
    random draws (once per 64 of its episodes), build ``SAME_STEP``'s per-env ``final_obs`` dicts and
    the ``questions`` lists of the episodes that end (a list per episode, as ``PenguinEnv`` gives).

    ## Spaces
    ``single_observation_space`` and ``single_action_space`` are ``PenguinEnv``'s (``Dict`` and
    ``Discrete(11)``); ``observation_space`` / ``action_space`` are their batched forms (``Dict`` of
    ``(N, ...)`` arrays, ``MultiDiscrete``). ``action_masks()`` gives the valid actions, bool
    ``(N, 11)``; a sub-env whose answer was given shows ``ANSWER`` alone until its autoreset (which
    ignores the action), where ``PenguinEnv`` shows no valid action until its reset.

    ## Autoreset
    ``autoreset_mode`` (``metadata["autoreset_mode"]``): ``NEXT_STEP`` (default, gymnasium's): the step
    after an episode ends resets that sub-env, ignores its action and returns reward 0.
    ``SAME_STEP``: a finished sub-env is reset at once; its last observation and info are in
    ``info["final_obs"]`` (an object array of per-env dicts) and ``info["final_info"]``.
    ``DISABLED``: the user resets finished sub-envs with ``reset(options={"reset_mask": mask})``.

    ## Info
    A batched dict (gymnasium's convention: ``info[key]`` an array over sub-envs, ``info["_" + key]``
    the mask of sub-envs that have it) with ``PenguinEnv``'s keys, so an agent that reads the single
    env's info (``agents.base.DialogueAgent``) reads sub-env ``i``'s here. Every step:
    ``scenario_index``, ``scenario_id``, ``num_questions``, ``total_cost``; stepped (not resetting)
    sub-envs: ``question_cost`` (paid this step), ``invalid_action``, ``reward_terms`` (a nested batched
    dict of the named reward terms), and ``answer`` (the user's reply) where a question was answered;
    sub-envs whose episode ended: ``risk_sensitivity``, ``emotional_empathy``, ``personalization``,
    ``safety`` (1-5), ``forced_answer``, ``missed_high_risk``, ``questions`` (attribute names in order),
    ``domain``, ``scenario_type``, ``query``, ``revealed`` (attribute -> value text in asking order) and
    ``question_order`` (int8 ``(10,)``: the attributes in asking order, -1 padded). Resetting sub-envs
    (and ``reset``): ``domain``, ``scenario_type``, ``query`` and an empty ``revealed``. Every key of
    ``PenguinEnv``'s info is there with the same value as ``SyncVectorEnv`` gives; as there, a sub-env
    started anew is one with ``_domain`` set and ``_question_cost`` not.

    ## Arguments
    ``num_envs`` and ``autoreset_mode``, ``max_episode_steps`` (``None``: no truncation; the registered
    ids pass 64), and every keyword ``PenguinEnv`` takes (``domain``, ``source``, ``split``, ``judge``,
    ``question_cost``, ``budget``, ``featurizer``, ``normalize_reward``, ``invalid_action``, ...).
    ``reset(options=...)`` accepts ``scenario_index`` or ``scenario_id`` (one for all sub-envs, or one
    per sub-env) and ``reset_mask``.

    ## Version History
    - v0: initial release (the dynamics of ``PenguinEnv`` v0).
    - v1: the episodes of ``PenguinEnv`` v1 (synthetic suite v1); the dynamics are unchanged.
    - v2: the episodes of ``PenguinEnv`` v2 (the ``train`` split by default).

    Example:
        >>> import gymnasium as gym
        >>> import numpy as np
        >>> import penguin_gym
        >>> envs = gym.make_vec("Penguin-Health-v2", num_envs=4)
        >>> obs, info = envs.reset(seed=0)
        >>> obs["asked"].shape, envs.action_masks().shape
        ((4, 10), (4, 11))
        >>> obs, reward, terminated, truncated, info = envs.step(np.array([7, 7, 10, 10]))
        >>> terminated.tolist(), info["_safety"].tolist()
        ([False, False, True, True], [False, False, True, True])
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
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
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
    ) -> None:
        if int(num_envs) < 1:
            raise ConfigError(f"num_envs = {num_envs} must be >= 1")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode {render_mode!r} is not supported; valid: {self.metadata['render_modes']}")
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError as e:
            raise ConfigError(
                f"autoreset_mode {autoreset_mode!r} is not valid; valid: {[m.value for m in AutoresetMode]}"
            ) from e
        if max_episode_steps is not None and int(max_episode_steps) < 1:
            raise ConfigError(f"max_episode_steps = {max_episode_steps} must be >= 1 (or None for no limit)")
        setup = episode_setup(
            domain,
            source=source,
            split=split,
            n_per_domain=n_per_domain,
            data_seed=data_seed,
            scenarios=scenarios,
            judge=judge,
            domain_map=domain_map,
            severity=severity,
            strict_records=strict_records,
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
        self.domain = domain
        self.render_mode = render_mode
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.autoreset_mode = mode

        self.num_envs = n = int(num_envs)
        self.single_action_space = gym.spaces.Discrete(NUM_ACTIONS)
        self.single_observation_space = observation_space(self.featurizer.dim)
        self.action_space = batch_space(self.single_action_space, n)
        self.observation_space = batch_space(self.single_observation_space, n)

        # Per-scenario tables (the single env's caches, as arrays).
        self._domain_index = np.array([s.domain_index for s in scenarios], dtype=np.int64)
        self._severity32 = self.model.severity.astype(np.float32)
        self._ids = np.array([s.id for s in scenarios], dtype=object)
        self._domain_names = np.array([s.domain for s in scenarios], dtype=object)
        self._types = np.array([s.scenario_type for s in scenarios], dtype=object)
        self._queries = np.array([s.query for s in scenarios], dtype=object)
        # Each scenario's value texts (the users' answers), object ``(n_rows, 10)``.
        self._answers = np.array([[s.profile[a] for a in ATTRIBUTES] for s in scenarios], dtype=object)
        self._row_of_id = {s.id: i for i, s in enumerate(scenarios)}
        self._features = QueryFeatures(self.featurizer, scenarios)

        # The state of the N episodes.
        self._rows = np.zeros(n, dtype=np.int64)
        self._asked = np.zeros(n, dtype=np.int64)
        self._nq = np.zeros(n, dtype=np.int64)
        self._cost = np.zeros(n, dtype=np.float64)
        self._steps = np.zeros(n, dtype=np.int64)
        self._order = np.full((n, NUM_ATTRIBUTES), -1, dtype=np.int8)
        self._answered = np.zeros(n, dtype=bool)  # the answer was given (PenguinEnv's state.done)
        self._ended = np.zeros(n, dtype=bool)  # terminated or truncated: an autoreset is due
        self._started = False
        self._query_obs = np.zeros((n, self.featurizer.dim), dtype=np.float32)
        self._last_scores = np.full((n, 3), np.nan)

        # One generator per sub-env (PenguinEnv's np_random), read through a buffer of draws.
        self._rngs: list[np.random.Generator] | None = None
        self._draws = np.zeros((n, _DRAW_BLOCK), dtype=np.float64)
        self._next_draw = np.full(n, _DRAW_BLOCK, dtype=np.int64)

    # -- Gymnasium VectorEnv API --------------------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset all sub-envs (or those in ``options["reset_mask"]``).

        Args:
            seed: ``None`` (keep each sub-env's generator; random seeds on the first reset), an int
                ``s`` (sub-env ``i`` is seeded ``s + i``) or one seed (or ``None``) per sub-env.
            options: ``scenario_index`` / ``scenario_id`` (one value for all, or one per sub-env) pick
                the scenarios instead of drawing them; ``reset_mask`` (bool ``(N,)``) resets only those.
        """
        n = self.num_envs
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            mask = np.ones(n, dtype=bool)
        else:
            if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (n,):
                raise ConfigError(f"options['reset_mask'] must be a bool numpy array of shape ({n},), got {mask!r}")
            if not mask.any():
                raise ConfigError("options['reset_mask'] resets no sub-env; set at least one True")
            if not self._started:
                raise gym.error.ResetNeeded("call reset() without reset_mask first")
        if isinstance(seed, (int, np.integer)):
            seeds: list[int | None] = [int(seed) + i for i in range(n)]
        elif seed is None:
            seeds = [None] * n
        else:
            seeds = [None if s is None else int(s) for s in seed]
            if len(seeds) != n:
                raise ConfigError(f"{len(seeds)} seeds given for num_envs={n}; give one int or one seed per sub-env")
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seeds[0])
        if self._rngs is None:
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
            self._next_draw[:] = _DRAW_BLOCK
        else:
            for i, s in enumerate(seeds):
                if s is not None and mask[i]:
                    self._rngs[i] = seeding.np_random(s)[0]
                    self._next_draw[i] = _DRAW_BLOCK
        idx = np.flatnonzero(mask)
        rows = self._pick_rows(idx, options)
        self._start(idx, rows)
        self._started = True
        obs = self._obs()
        info: dict[str, Any] = {}
        self._add_reset_info(info, mask)
        return obs, info

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env with its action (see the class docstring for autoreset and info)."""
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        n = self.num_envs
        actions = np.asarray(actions)
        if actions.shape != (n,):
            raise ConfigError(f"actions have shape {actions.shape}; expected ({n},), one per sub-env")
        mode = self.autoreset_mode
        if mode is AutoresetMode.DISABLED and self._ended.any():
            raise gym.error.ResetNeeded(
                f"sub-envs {np.flatnonzero(self._ended).tolist()} have ended; with autoreset_mode=DISABLED reset "
                "them with reset(options={'reset_mask': mask}) before step()"
            )
        # NEXT_STEP: the sub-envs that ended last step start anew now and their actions are ignored.
        resetting = self._ended.copy() if mode is AutoresetMode.NEXT_STEP else np.zeros(n, dtype=bool)
        stepped = ~resetting
        any_reset = bool(resetting.any())
        live_idx = np.flatnonzero(stepped)
        live: Any = live_idx if any_reset else slice(None)
        prev_cost = self._cost[live].copy()  # a slice would be a view
        tr = self.model.step_batch(
            self._rows[live],
            self._asked[live],
            self._nq[live],
            prev_cost,
            actions[live],
            env_index=live_idx,
        )
        if tr.asked_attribute.any():
            li = live_idx[tr.asked_attribute]
            self._order[li, self._nq[li]] = actions[li]
        self._asked[live] = tr.asked
        self._nq[live] = tr.num_questions
        self._cost[live] = tr.cost
        self._steps[live] += 1
        reward = np.zeros(n, dtype=np.float64)
        reward[live] = tr.reward
        terminated = np.zeros(n, dtype=bool)
        terminated[live] = tr.terminated
        truncated = np.zeros(n, dtype=bool)
        if self.max_episode_steps is not None:
            truncated[live] = self._steps[live] >= self.max_episode_steps
        self._answered |= terminated
        if tr.terminated.any():
            self._last_scores[live] = np.where(tr.terminated[:, None], tr.scores, self._last_scores[live])
        ended = terminated | truncated
        self._ended[live] = ended[live]

        info = self._step_info(tr, live, stepped, prev_cost, terminated)
        if any_reset:
            ridx = np.flatnonzero(resetting)
            self._start(ridx, self._pick_rows(ridx, {}))
            self._add_reset_info(info, resetting)
        if mode is AutoresetMode.SAME_STEP and ended.any():
            final_obs = self._obs()
            finals = np.full(n, None, dtype=object)
            for i in np.flatnonzero(ended).tolist():  # gymnasium's convention: one obs dict per finished env
                finals[i] = {k: v[i] for k, v in final_obs.items()}
            # gymnasium's SyncVectorEnv layout: a finished sub-env's step info moves to final_info and its
            # top-level keys are those of its reset.
            final_info = _masked_info(info, ended, copy=True)
            info = _masked_info(info, ~ended, copy=False)
            eidx = np.flatnonzero(ended)
            self._start(eidx, self._pick_rows(eidx, {}))
            self._add_reset_info(info, ended)
            info["final_obs"], info["_final_obs"] = finals, ended.copy()
            info["final_info"], info["_final_info"] = final_info, ended.copy()
        return self._obs(), reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """Valid actions, bool ``(N, 11)``, True = valid: ``PenguinEnv.action_masks()`` of each sub-env,
        except that a sub-env whose answer was given (its autoreset is due, and its next action is
        ignored) shows ``ANSWER`` alone rather than a row of False, so that a masked policy always has
        an action to choose (sb3-contrib's ``MaskablePPO`` turns an all-False row into NaN logits)."""
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before action_masks()")
        masks = self.model.action_mask_batch(self._asked, self._nq, self._answered)
        masks[self._answered, ANSWER] = True
        return masks

    def close_extras(self, **kwargs: Any) -> None:
        """``close()``: close the judge if the env made it from a spec (an LLM judge's HTTP clients); a
        judge passed in is the caller's to close."""
        if self._owns_judge:
            close_judge(self.judge)

    def render(self) -> tuple[str, ...] | None:
        """With ``render_mode="ansi"``: each sub-env's dialogue so far, as text."""
        if self.render_mode != "ansi" or not self._started:
            return None
        return tuple(self.transcript(i) for i in range(self.num_envs))

    def transcript(self, i: int) -> str:
        """Sub-env ``i``'s dialogue so far (as ``PenguinEnv.transcript``)."""
        scores = None if np.isnan(self._last_scores[i, 0]) else self._last_scores[i]
        return transcript(
            self.scenarios[int(self._rows[i])],
            self._order[i, : self._nq[i]].tolist(),
            done=bool(self._answered[i]),
            budget_left=self.model.budget - int(self._nq[i]),
            scores=scores,
            cost=float(self._cost[i]),
        )

    # -- the state, for agents and tests -------------------------------------------------------------------
    @property
    def rows(self) -> np.ndarray:
        """Each sub-env's scenario row (a copy)."""
        return self._rows.copy()

    @property
    def asked(self) -> np.ndarray:
        """Each sub-env's asked bitmask (a copy)."""
        return self._asked.copy()

    @property
    def answered(self) -> np.ndarray:
        """Bool ``(N,)``: the sub-envs whose answer was given (their autoreset is due), a copy."""
        return self._answered.copy()

    def query_features(self, rows: np.ndarray) -> np.ndarray:
        """The query features of scenario ``rows`` ``(len(rows), d)``, featurized once and cached."""
        return self._features.many(rows)

    # -- helpers -------------------------------------------------------------------------------------------
    def _pick_rows(self, idx: np.ndarray, options: dict[str, Any]) -> np.ndarray:
        """Scenario rows for sub-envs ``idx``: from ``options`` or drawn as ``PenguinEnv._pick_row``."""
        n_rows = len(self.scenarios)
        picked = rows_from_options(options, idx, self.num_envs, self._row_of_id, n_rows, also_valid=("reset_mask",))
        if picked is not None:
            return picked
        if len(idx) == 0:
            return np.zeros(0, dtype=np.int64)
        ptr = self._next_draw[idx]
        empty = idx[ptr >= _DRAW_BLOCK]
        if len(empty):
            assert self._rngs is not None
            for i in empty.tolist():  # once per _DRAW_BLOCK resets of a sub-env
                self._draws[i] = self._rngs[i].random(_DRAW_BLOCK)
            self._next_draw[empty] = 0
            ptr = self._next_draw[idx]
        u = self._draws[idx, ptr]
        self._next_draw[idx] = ptr + 1
        return draw_row(u, n_rows)  # as PenguinEnv._pick_row

    def _start(self, idx: np.ndarray, rows: np.ndarray) -> None:
        self._rows[idx] = rows
        self._asked[idx] = 0
        self._nq[idx] = 0
        self._cost[idx] = 0.0
        self._steps[idx] = 0
        self._order[idx] = -1
        self._answered[idx] = False
        self._ended[idx] = False
        self._last_scores[idx] = np.nan
        self._query_obs[idx] = self.query_features(rows)

    def _obs(self) -> dict[str, np.ndarray]:
        rows, asked = self._rows, self._asked
        left = np.where(self._answered, 0, self.model.budget - self._nq)
        return {
            "query": self._query_obs.copy(),
            "domain": DOMAIN_ONEHOT[self._domain_index[rows]],
            "asked": MASK_BITS[asked],
            "revealed": self._severity32[rows] * MASK_BITS_F32[asked],
            "steps_left": STEPS_LEFT[left],
        }

    def _add_reset_info(self, info: dict[str, Any], mask: np.ndarray) -> None:
        self._add_texts(info, mask)
        # The state keys of the reset sub-envs (the others keep theirs, when the step gave them).
        state: dict[str, Any] = {}
        self._add_state_info(state, mask)
        for key in ("num_questions", "total_cost", "scenario_index", "scenario_id"):
            if key in info:
                info[key][mask] = state[key][mask]
                info["_" + key] = info["_" + key] | mask
            else:
                info[key], info["_" + key] = state[key], state["_" + key]

    def _step_info(
        self, tr: Any, live: Any, stepped: np.ndarray, prev_cost: np.ndarray, terminated: np.ndarray
    ) -> dict[str, Any]:
        n = self.num_envs
        info: dict[str, Any] = {}
        self._add_state_info(info, stepped)
        question_cost = np.zeros(n)
        question_cost[live] = tr.cost - prev_cost  # PenguinEnv's state.cost - prev.cost
        info["question_cost"], info["_question_cost"] = question_cost, stepped.copy()
        invalid = np.zeros(n, dtype=bool)
        invalid[live] = tr.invalid
        info["invalid_action"], info["_invalid_action"] = invalid, stepped.copy()
        info["reward_terms"], info["_reward_terms"] = self._reward_terms(tr, live, stepped), stepped.copy()
        asked_now = np.zeros(n, dtype=bool)
        asked_now[live] = tr.asked_attribute
        answer = np.full(n, None, dtype=object)
        if asked_now.any():  # the user's reply: the value text of the attribute just asked
            ai = np.flatnonzero(asked_now)
            answer[ai] = self._answers[self._rows[ai], self._order[ai, self._nq[ai] - 1]]
        info["answer"], info["_answer"] = answer, asked_now
        if terminated.any():
            self._add_final_info(info, tr, live, terminated)
        return info

    def _add_state_info(self, info: dict[str, Any], mask: np.ndarray) -> None:
        rows = self._rows
        info["num_questions"], info["_num_questions"] = self._nq.copy(), mask.copy()
        info["total_cost"], info["_total_cost"] = self._cost.copy(), mask.copy()
        info["scenario_index"], info["_scenario_index"] = rows.copy(), mask.copy()
        info["scenario_id"], info["_scenario_id"] = self._ids[rows], mask.copy()

    def _reward_terms(self, tr: Any, live: Any, stepped: np.ndarray) -> dict[str, np.ndarray]:
        n = self.num_envs
        ask_or_answer = np.zeros(n, dtype=bool)
        ask_or_answer[live] = ~tr.invalid
        q = np.zeros(n)
        q[live] = tr.reward_question_cost
        s = np.zeros(n)
        s[live] = np.where(tr.terminated, tr.reward_safety, 0.0)
        term = np.zeros(n, dtype=bool)
        term[live] = tr.terminated
        inv = np.zeros(n)
        inv[live] = tr.reward_invalid
        inv_mask = np.zeros(n, dtype=bool)
        inv_mask[live] = tr.invalid
        return {
            "question_cost": q,
            "_question_cost": ask_or_answer & stepped,
            "safety": s,
            "_safety": term,
            "invalid_action_penalty": inv,
            "_invalid_action_penalty": inv_mask,
        }

    def _add_final_info(self, info: dict[str, Any], tr: Any, live: Any, terminated: np.ndarray) -> None:
        n = self.num_envs
        scores = np.zeros((n, 3))
        scores[live] = np.where(tr.terminated[:, None], tr.scores, 0.0)
        sf = np.zeros(n)
        sf[live] = np.where(tr.terminated, tr.safety, 0.0)
        for k, key in enumerate(_FINAL_KEYS[:3]):
            info[key], info["_" + key] = scores[:, k].copy(), terminated.copy()
        info["safety"], info["_safety"] = sf, terminated.copy()
        forced = np.zeros(n, dtype=bool)
        forced[live] = tr.forced_answer
        info["forced_answer"], info["_forced_answer"] = forced, terminated.copy()
        missed = self.model.missed_high_risk_batch(self._rows, self._asked) & terminated
        info["missed_high_risk"], info["_missed_high_risk"] = missed, terminated.copy()
        order = np.where(terminated[:, None], self._order, np.int8(-1)).astype(np.int8)
        info["question_order"], info["_question_order"] = order, terminated.copy()
        # PenguinEnv's last-step keys: the attributes asked, in order, and the texts.
        done = np.flatnonzero(terminated)
        names = _ORDER_NAMES[self._order[done]].tolist()  # one row of 10 names per episode, "" padded
        questions = np.full(n, None, dtype=object)
        questions[done] = _objects([row[:k] for row, k in zip(names, self._nq[done].tolist(), strict=True)])
        info["questions"], info["_questions"] = questions, terminated.copy()
        self._put_scenario_texts(info, terminated)
        self._put_revealed(info, terminated)

    def _add_texts(self, info: dict[str, Any], mask: np.ndarray) -> None:
        """The texts of a new episode (``domain``, ``scenario_type``, ``query``, an empty ``revealed``) for
        sub-envs ``mask``, as ``PenguinEnv.reset`` gives them (it repeats them on the answer step, and so do
        we: ``_add_final_info``). As in ``SyncVectorEnv``, a sub-env started anew is one with texts and no
        ``question_cost``."""
        self._put_scenario_texts(info, mask)
        self._put_revealed(info, mask, new=True)

    def _put_scenario_texts(self, info: dict[str, Any], mask: np.ndarray) -> None:
        rows = self._rows[mask]
        self._put(info, "domain", mask, self._domain_names[rows])
        self._put(info, "scenario_type", mask, self._types[rows])
        self._put(info, "query", mask, self._queries[rows])

    def _put_revealed(self, info: dict[str, Any], mask: np.ndarray, *, new: bool = False) -> None:
        """``revealed`` of sub-envs ``mask`` in gymnasium's layout of a dict info (as ``SyncVectorEnv``
        batches ``PenguinEnv``'s): ``revealed[attribute]`` the value texts, ``revealed["_" + attribute]``
        the sub-envs that asked it (none, in a ``new`` episode)."""
        revealed = info.setdefault("revealed", {})
        info["_revealed"] = info.get("_revealed", np.zeros(self.num_envs, dtype=bool)) | mask
        if new:
            return
        idx = np.flatnonzero(mask)
        rows = self._rows[idx]
        bits = MASK_BITS[self._asked[idx]] != 0
        for a in np.flatnonzero(bits.any(axis=0)).tolist():
            has = bits[:, a]
            self._put(revealed, ATTRIBUTES[a], idx[has], self._answers[rows[has], a])

    def _put(self, info: dict[str, Any], key: str, where: np.ndarray, values: np.ndarray) -> None:
        """Set ``info[key]`` (an object array) of sub-envs ``where`` (a mask or indices), keeping the other
        sub-envs' entries."""
        if key not in info:
            info[key], info["_" + key] = np.full(self.num_envs, None, dtype=object), np.zeros(self.num_envs, bool)
        info[key][where] = values
        info["_" + key] = info["_" + key].copy()  # the mask may be shared with another info dict
        info["_" + key][where] = True


#: ``_ORDER_NAMES[a]``: the name of attribute ``a``; ``""`` for -1, the padding of the question order.
_ORDER_NAMES = np.array([*ATTRIBUTES, ""], dtype=object)


def _objects(items: list[Any]) -> np.ndarray:
    """A 1-D object array of ``items`` (``np.array`` would make a list of lists 2-D)."""
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _masked_info(info: dict[str, Any], keep: np.ndarray, *, copy: bool) -> dict[str, Any]:
    """``info`` with every ``_key`` mask restricted to ``keep`` (recursively); keys left with no sub-env
    are dropped."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_"):
            continue
        m = info.get("_" + key)
        if m is None:
            continue
        m = m & keep
        if not m.any():
            continue
        if isinstance(value, dict):
            value = _masked_info(value, keep, copy=copy)
        elif copy:
            value = value.copy()
        out[key], out["_" + key] = value, m
    return out


def sub_env_info(info: Mapping[str, Any], i: int) -> dict[str, Any]:
    """Sub-env ``i``'s part of a batched ``info`` (nested dicts included): the dict a single
    ``PenguinEnv`` gives, plus the vector env's own keys. What an agent written for the single env
    (``agents.base.DialogueAgent``) reads, one per sub-env.

    Example:
        >>> import gymnasium as gym
        >>> import penguin_gym
        >>> envs = gym.make_vec("Penguin-Health-v2", num_envs=2)
        >>> _, info = envs.reset(seed=0)
        >>> sorted(k for k in sub_env_info(info, 1) if k in ("domain", "num_questions", "revealed"))
        ['domain', 'num_questions', 'revealed']
    """
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_"):
            continue
        m = info.get("_" + key)
        if m is None or not m[i]:
            continue
        out[key] = sub_env_info(value, i) if isinstance(value, Mapping) else value[i]
    return out


__all__ = ["PenguinVectorEnv", "sub_env_info"]
