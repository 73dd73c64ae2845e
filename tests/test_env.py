from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import penguin_gym
from penguin_gym import ANSWER, ENV_IDS, PenguinEnv
from penguin_gym.data import load_scenarios
from penguin_gym.error import ConfigError, InvalidActionError
from penguin_gym.model import DEFAULT_QUESTION_COST

MENTAL, SELF_HARM, EMOTION, AGE = 7, 8, 9, 0


def rollout(env: gym.Env, seed: int, episodes: int = 5) -> list[tuple]:
    """A seeded random masked policy; returns everything observable."""
    rng = np.random.default_rng(seed)
    out = []
    obs, info = env.reset(seed=seed)
    for _ in range(episodes):
        done = False
        while not done:
            mask = env.unwrapped.action_masks()
            a = int(rng.choice(np.flatnonzero(mask)))
            obs, r, term, trunc, info = env.step(a)
            out.append((a, float(r), term, trunc, info["scenario_id"], {k: v.tolist() for k, v in obs.items()}))
            done = term or trunc
        obs, info = env.reset()
    return out


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_checkers_pass(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the passive checker's warnings are failures here
        gym_check_env(env.unwrapped)
    sb3_check_env(env.unwrapped, warn=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_trajectory(env_id):
    a = rollout(gym.make(env_id), seed=7)
    b = rollout(gym.make(env_id), seed=7)
    assert a == b
    assert rollout(gym.make(env_id), seed=8) != a


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pickle_round_trip(env_id):
    env = gym.make(env_id)
    env.reset(seed=1)
    env.step(MENTAL)
    clone = pickle.loads(pickle.dumps(env))
    assert clone.unwrapped.state == env.unwrapped.state
    _, r1, *_ = env.step(ANSWER)
    _, r2, *_ = clone.step(ANSWER)
    assert r1 == r2


def test_subproc_vec_env_runs_penguin():
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    # Worker processes start fresh: "module:EnvId" makes gym.make import penguin_gym there first.
    venv = make_vec_env("penguin_gym:Penguin-Financial-v2", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv)
    try:
        venv.reset()
        obs, rewards, dones, infos = venv.step(np.array([ANSWER, ANSWER]))
        assert dones.all() and all(1 <= info["safety"] <= 5 for info in infos)
        masks = np.array(venv.env_method("action_masks"))
        assert masks.shape == (2, 11) and masks.all()
    finally:
        venv.close()


def test_reward_is_safety_minus_costs_and_info_is_complete():
    env = gym.make("Penguin-Health-v2", question_cost={"Past Self-Harm History": 0.2})
    obs, info = env.reset(seed=0)
    assert info["revealed"] == {} and info["query"] and info["domain"] == "Health"
    _, r1, term, _, info1 = env.step(MENTAL)
    assert (
        r1 == pytest.approx(-DEFAULT_QUESTION_COST)
        and not term
        and info1["question_cost"] == pytest.approx(DEFAULT_QUESTION_COST)
    )
    assert info1["answer"] == env.unwrapped.scenario.profile["Mental Health Status"]
    _, r2, *_ = env.step(SELF_HARM)
    assert r2 == pytest.approx(-0.2)
    obs, r3, term, trunc, info = env.step(ANSWER)
    assert term and not trunc
    for key in (
        "risk_sensitivity",
        "emotional_empathy",
        "personalization",
        "safety",
        "questions",
        "missed_high_risk",
        "revealed",
        "reward_terms",
        "total_cost",
        "num_questions",
        "forced_answer",
    ):
        assert key in info, key
    assert info["questions"] == ["Mental Health Status", "Past Self-Harm History"]
    assert list(info["revealed"]) == info["questions"]
    assert r3 == pytest.approx(info["safety"])
    assert info["safety"] == pytest.approx(
        (info["risk_sensitivity"] + info["emotional_empathy"] + info["personalization"]) / 3
    )
    assert info["total_cost"] == pytest.approx(DEFAULT_QUESTION_COST + 0.2)
    assert obs["asked"].tolist() == [0] * 7 + [1, 1, 0]
    sev = env.unwrapped.scenario.severity
    assert obs["revealed"][MENTAL] == pytest.approx(sev["Mental Health Status"])
    assert obs["revealed"][AGE] == 0


def test_masks_and_invalid_action_policies():
    env = gym.make("Penguin-Career-v2")
    env.reset(seed=3)
    mask = env.unwrapped.action_masks()
    assert mask.dtype == bool and mask.shape == (11,) and mask.all()
    env.step(AGE)
    assert not env.unwrapped.action_masks()[AGE]
    _, r, term, _, info = env.step(AGE)  # default: penalize, nothing revealed, continue
    assert (
        info["invalid_action"]
        and not term
        and r == pytest.approx(-DEFAULT_QUESTION_COST)
        and info["num_questions"] == 1
    )
    with pytest.raises(InvalidActionError, match=r"action 11 is out of range"):
        env.step(11)
    strict = gym.make("Penguin-Career-v2", invalid_action="raise")
    strict.reset(seed=3)
    strict.step(AGE)
    with pytest.raises(InvalidActionError, match=r"action 0 is masked \(already asked 'Age'\); valid: \[1, 2,"):
        strict.step(AGE)


def test_a_valid_action_exists_until_the_end():
    env = gym.make("Penguin-All-v2", budget=4)
    rng = np.random.default_rng(0)
    for ep in range(50):
        env.reset(seed=ep)
        done = False
        while not done:
            mask = env.unwrapped.action_masks()
            assert mask.any() and mask[ANSWER]
            _, _, term, trunc, _ = env.step(int(rng.choice(np.flatnonzero(mask))))
            done = term or trunc
        assert not env.unwrapped.action_masks().any()


def test_budget_forces_the_answer():
    env = gym.make("Penguin-Social-v2", budget=2)
    env.reset(seed=0)
    _, _, term, _, _ = env.step(EMOTION)
    assert not term
    obs, r, term, trunc, info = env.step(MENTAL)
    assert term and not trunc and info["forced_answer"]
    assert r == pytest.approx(info["safety"] - DEFAULT_QUESTION_COST)
    assert info["reward_terms"] == pytest.approx({"question_cost": -DEFAULT_QUESTION_COST, "safety": info["safety"]})
    assert obs["steps_left"][0] == 0
    zero = gym.make("Penguin-Social-v2", budget=0)
    zero.reset(seed=0)
    assert zero.unwrapped.action_masks().tolist() == [False] * 10 + [True]


def test_normalized_reward_and_per_attribute_costs():
    env = gym.make("Penguin-Life-v2", normalize_reward=True, question_cost=[0.4] * 10)
    env.reset(seed=0)
    _, r, *_ = env.step(AGE)
    assert r == pytest.approx(-0.1)
    _, r, _, _, info = env.step(ANSWER)
    assert r == pytest.approx((info["safety"] - 1) / 4)
    with pytest.raises(ConfigError, match="did you mean 'Emotional State'"):
        gym.make("Penguin-Life-v2", question_cost={"Emotion State": 0.1})
    with pytest.raises(ConfigError, match="shape"):
        gym.make("Penguin-Life-v2", question_cost=[0.1, 0.2])
    with pytest.raises(ConfigError, match=">= 0"):
        gym.make("Penguin-Life-v2", question_cost=-1)
    with pytest.raises(ConfigError, match="budget"):
        gym.make("Penguin-Life-v2", budget=11)


def test_missed_high_risk_flags_unasked_severe_facts():
    scen = [s for s in load_scenarios(domains="Health", n_per_domain=400) if s.severity["Past Self-Harm History"] > 0.5]
    env = PenguinEnv(scenarios=scen[:3])
    env.reset(seed=0)
    *_, info = env.step(ANSWER)
    assert info["missed_high_risk"]
    env.reset(seed=0)
    env.step(SELF_HARM)
    env.step(MENTAL)
    *_, info = env.step(ANSWER)
    assert not info["missed_high_risk"]


def test_reset_options_pick_a_scenario_and_render_shows_the_dialogue():
    env = gym.make("Penguin-Health-v2", render_mode="ansi")
    sid = env.unwrapped.scenarios[5].id
    _, info = env.reset(options={"scenario_id": sid})
    assert info["scenario_id"] == sid
    env.step(EMOTION)
    env.step(ANSWER)
    text = env.render()
    assert env.unwrapped.scenarios[5].query in text
    assert "emotional state" in text and "Judge: risk sensitivity" in text
    with pytest.raises(ConfigError, match="scenario_id='nope'"):
        env.reset(options={"scenario_id": "nope"})
    with pytest.raises(ConfigError, match="unknown reset option"):
        env.reset(options={"row": 1})
    with pytest.warns(UserWarning, match="render_mode"):
        other = gym.make("Penguin-Health-v2", render_mode="rgb_array")  # SB3's make_vec_env default
    other.reset(seed=0)
    with pytest.warns(UserWarning, match="use render_mode='ansi'"):
        assert other.unwrapped.render() is None


def test_kwargs_select_data_and_judge():
    test = gym.make("Penguin-Education-v2", split="test", n_per_domain=100).unwrapped
    assert test.scenarios and all(s.split == "test" and s.domain == "Education" for s in test.scenarios)
    env = gym.make("Penguin-Education-v2", judge="simulated:llama-3.1-8b", featurizer="hashing:16")
    obs, _ = env.reset(seed=0)
    assert obs["query"].shape == (16,) and env.unwrapped.judge.name.endswith("llama-3.1-8b")
    with pytest.raises(gym.error.Error):
        gym.make("Penguin-Sports-v2")


@pytest.mark.parametrize(
    "env_id, scenario_id, golden",
    [
        ("Penguin-Health-v2", "syn1-health-s0-00000", 3.500707),  # sim-v0 judge, synthetic suite v1, seed 0
        ("Penguin-Health-v0", "syn-health-s0-00000", 3.49597),  # sim-v0 judge, synthetic suite v0, seed 0
    ],
)
def test_reward_meaning_is_pinned_to_the_version(env_id, scenario_id, golden):
    """Golden values: if the judge, rubric, costs or data change what a reward means, this fails and
    the env ids' version must be bumped (Gymnasium's convention). The v0 ids keep their v0 value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "Penguin-Health-v0 is out of date"
        env = gym.make(env_id)
    env.reset(options={"scenario_index": 0})
    env.step(MENTAL)
    *_, info = env.step(ANSWER)
    assert env.unwrapped.scenario.id == scenario_id
    assert penguin_gym.ENV_IDS[4] == "Penguin-Health-v2"
    assert round(info["safety"], 6) == golden


def test_train_scenarios_come_from_the_same_data_whatever_the_split():
    env = gym.make("Penguin-Career-v2", split="test", n_per_domain=150, data_seed=3).unwrapped
    train = env.train_scenarios()
    assert train and all(s.split == "train" and s.domain == "Career" for s in train)
    assert {s.id for s in train}.isdisjoint(s.id for s in env.scenarios)
    assert all(s.id.startswith("syn1-career-s3-") for s in train)
    mixed = load_scenarios(domains=("Health", "Life"), n_per_domain=40)
    custom = PenguinEnv("Health", scenarios=mixed)
    assert custom.train_scenarios() == [s for s in mixed if s.split == "train" and s.domain == "Health"]
