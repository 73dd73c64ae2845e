"""The SB3 VecEnv adapter: DummyVecEnv's results over the batched env, and the VecEnv API."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3.common.vec_env import DummyVecEnv, VecCheckNan, VecEnv, VecMonitor

import penguin_gym  # noqa: F401
from agents.sb3_vec import PenguinSB3VecEnv, make_sb3_vec_env
from penguin_gym.error import ConfigError
from penguin_gym.model import ANSWER
from penguin_gym.vector import PenguinVectorEnv
from penguin_gym.wrappers import FlattenPenguinObservation

ENV_ID = "Penguin-Health-v2"
SMALL = {"n_per_domain": 120}


def _equal(x: Any, y: Any) -> bool:
    if isinstance(x, dict):
        return set(x) == set(y) and all(x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]) for k in x)
    return bool(x.dtype == y.dtype and np.array_equal(x, y))


@pytest.mark.parametrize("flatten", [False, True], ids=["dict", "flat"])
def test_adapter_returns_what_dummy_vec_env_returns(flatten: bool) -> None:
    n = 5
    ours = make_sb3_vec_env(ENV_ID, n, flatten=flatten, monitor=False, budget=6, **SMALL)

    def make() -> gym.Env:
        env = gym.make(ENV_ID, budget=6, **SMALL)
        return FlattenPenguinObservation(env) if flatten else env

    ref = DummyVecEnv([make for _ in range(n)])
    assert ours.observation_space == ref.observation_space and ours.action_space == ref.action_space
    assert ours.seed(9) == ref.seed(9)
    assert _equal(ours.reset(), ref.reset())
    assert [i["scenario_id"] for i in ours.reset_infos] == [i["scenario_id"] for i in ref.reset_infos]
    rng = np.random.default_rng(0)
    dones = truncations = 0
    for t in range(600):
        u = rng.random(n)
        # Mostly a repeated (masked, penalized) question: long episodes, some truncated at 64 steps.
        actions = np.where(u < 0.85, 0, np.where(u < 0.87, ANSWER, rng.integers(0, 10, n)))
        obs_a, rew_a, done_a, info_a = ours.step(actions)
        obs_b, rew_b, done_b, info_b = ref.step(actions)
        assert _equal(obs_a, obs_b), t
        assert rew_a.dtype == rew_b.dtype == np.float32
        np.testing.assert_allclose(rew_a, rew_b, rtol=1e-6, atol=1e-6)
        assert np.array_equal(done_a, done_b), t
        for a, b in zip(info_a, info_b, strict=True):
            assert a["TimeLimit.truncated"] == b["TimeLimit.truncated"]
            assert ("terminal_observation" in a) == ("terminal_observation" in b)
            for key in ("scenario_id", "num_questions", "invalid_action"):
                assert a[key] == b[key], (t, key)
            for key in ("total_cost", "question_cost", "safety"):
                if key in b:
                    assert abs(a[key] - b[key]) < 1e-12, (t, key)
            if "terminal_observation" in b:
                dones += 1
                truncations += b["TimeLimit.truncated"]
                assert _equal(a["terminal_observation"], b["terminal_observation"])
        assert np.array_equal(get_action_masks(ours), get_action_masks(ref)), t
    assert dones > 30 and truncations > 0, (dones, truncations)


def test_maskable_ppo_reads_the_masks_and_vec_wrappers_work() -> None:
    env = make_sb3_vec_env(ENV_ID, 4, seed=0, **SMALL)
    assert isinstance(env, VecMonitor) and is_masking_supported(env)
    checked = VecCheckNan(env, raise_exception=True)
    obs = checked.reset()
    assert obs["query"].shape == (4, 64)
    masks = get_action_masks(checked)
    assert masks.shape == (4, 11) and masks.dtype == bool and masks.all()
    episodes = 0
    for _ in range(30):
        _, _, dones, infos = checked.step(np.full(4, ANSWER))
        assert dones.all()
        episodes += sum("episode" in i for i in infos)  # VecMonitor's episode statistics
    assert episodes == 120


def test_vec_env_api() -> None:
    env = make_sb3_vec_env(ENV_ID, 3, monitor=False, **SMALL)
    assert isinstance(env, VecEnv) and isinstance(env, PenguinSB3VecEnv)
    env.reset()
    assert env.get_attr("max_episode_steps") == [64, 64, 64]
    assert env.get_attr("domain", indices=[0, 2]) == ["Health", "Health"]
    assert env.env_is_wrapped(gym.Wrapper) == [False, False, False]
    masks = env.env_method("action_masks", indices=[1])
    assert len(masks) == 1 and masks[0].shape == (11,)
    assert len(env.env_method("transcript", 0)) == 3  # a non-batched result is given to each index
    env.set_attr("render_mode", "ansi")
    assert env.get_attr("render_mode") == ["ansi"] * 3
    with pytest.raises(ConfigError, match="share their attributes"):
        env.set_attr("render_mode", None, indices=[0])
    env.set_options({"scenario_index": 3})
    env.reset()
    assert [i["scenario_index"] for i in env.reset_infos] == [3, 3, 3]
    env.set_options([{"scenario_index": 1}, {"scenario_index": 2}, {"scenario_index": 3}])
    env.reset()
    assert [i["scenario_index"] for i in env.reset_infos] == [1, 2, 3]
    env.set_options([{"scenario_index": 1}, {}, {}])
    with pytest.raises(ConfigError, match="every sub-env"):
        env.reset()
    with pytest.raises(NotImplementedError, match="text"):
        env.get_images()
    env.close()


def test_adapter_needs_the_same_step_mode() -> None:
    with pytest.raises(ConfigError, match="SAME_STEP"):
        PenguinSB3VecEnv(PenguinVectorEnv(2, "Health", **SMALL))
    with pytest.raises(ConfigError, match="PenguinVectorEnv"):
        PenguinSB3VecEnv(gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync", **SMALL))  # type: ignore[arg-type]
