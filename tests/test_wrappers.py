"""Observation wrappers: the flat Box for plain MLP agents, and the text prompt for LLM agents."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import penguin_gym  # noqa: F401
from penguin_gym.data import ATTRIBUTES
from penguin_gym.error import ConfigError
from penguin_gym.model import ANSWER
from penguin_gym.wrappers import (
    FLAT_KEYS,
    FlattenPenguinObservation,
    FlattenPenguinVectorObservation,
    TextObservation,
    flatten_observation,
)

ENV_ID = "Penguin-Health-v2"
SMALL = {"n_per_domain": 100}


def test_flatten_concatenates_the_dict_in_order() -> None:
    base = gym.make(ENV_ID, **SMALL)
    env = FlattenPenguinObservation(gym.make(ENV_ID, **SMALL))
    assert env.observation_space.shape == (64 + 28,) and env.observation_space.dtype == np.float32
    d, _ = base.reset(seed=3)
    f, _ = env.reset(seed=3)
    for action in (7, 7, 2, ANSWER):
        expected = np.concatenate([np.asarray(d[k], dtype=np.float32) for k in FLAT_KEYS])
        assert f.dtype == np.float32 and np.array_equal(f, expected)
        assert f in env.observation_space
        d, *_ = base.step(action)
        f, *_ = env.step(action)
    assert np.array_equal(env.get_wrapper_attr("action_masks")(), base.get_wrapper_attr("action_masks")())


#: gymnasium's checker warns that a wrapped env is checked; checking the wrapper is the point here.
WRAPPED_OK = pytest.mark.filterwarnings("ignore:.*is different from the unwrapped version")


@WRAPPED_OK
def test_flatten_passes_gymnasium_and_sb3_checks() -> None:
    check_env(FlattenPenguinObservation(gym.make(ENV_ID, **SMALL)), skip_render_check=True)
    sb3_check_env(FlattenPenguinObservation(gym.make(ENV_ID, **SMALL)))


def test_flatten_vector_matches_the_single_wrapper() -> None:
    vec = FlattenPenguinVectorObservation(gym.make_vec(ENV_ID, num_envs=3, **SMALL))
    singles = [FlattenPenguinObservation(gym.make(ENV_ID, **SMALL)) for _ in range(3)]
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (3, 92) and obs in vec.observation_space
    ref = [e.reset(seed=i)[0] for i, e in enumerate(singles)]
    assert np.array_equal(obs, np.stack(ref))
    obs, *_ = vec.step(np.array([1, 8, ANSWER]))
    assert np.array_equal(obs, np.stack([e.step(a)[0] for e, a in zip(singles, (1, 8, ANSWER), strict=True)]))
    assert vec.action_masks().shape == (3, 11)
    assert flatten_observation({k: v[None] for k, v in gym.make(ENV_ID, **SMALL).reset(seed=0)[0].items()}).shape == (
        1,
        92,
    )


def test_flatten_refuses_other_observations() -> None:
    with pytest.raises(ConfigError, match="penguin Dict observation"):
        FlattenPenguinObservation(gym.make("CartPole-v1"))  # type: ignore[arg-type]


def test_text_observation_holds_query_revealed_facts_and_available_questions() -> None:
    env = TextObservation(gym.make(ENV_ID, **SMALL))
    prompt, info = env.reset(seed=1)
    assert isinstance(prompt, str) and prompt in env.observation_space
    assert info["query"] in prompt and info["scenario_type"] in prompt
    assert "knows nothing" in prompt
    for i, name in enumerate(ATTRIBUTES):
        assert f"{i}: ask about {name} (cost 0.08)" in prompt
    assert f"{ANSWER}: answer now" in prompt
    prompt, *_ = env.step(8)
    profile = env.unwrapped.scenario.profile
    assert f"- Past Self-Harm History: {profile['Past Self-Harm History']}" in prompt
    assert "ask about Past Self-Harm History" not in prompt
    assert "(9 left in the budget)" in prompt
    # Nothing not yet asked leaks into the prompt.
    assert f"Emotional State: {profile['Emotional State']}" not in prompt
    prompt, _, terminated, _, _ = env.step(ANSWER)
    assert terminated and "has answered after 1 question(s)" in prompt and "answer now" not in prompt


@WRAPPED_OK
def test_text_observation_budget_and_checks() -> None:
    env = TextObservation(gym.make(ENV_ID, budget=1, **SMALL), show_costs=False)
    prompt, _ = env.reset(seed=0)
    assert "(1 left in the budget)" in prompt and "(cost" not in prompt
    check_env(TextObservation(gym.make(ENV_ID, **SMALL)), skip_render_check=True)
    with pytest.raises(ConfigError, match="max_length"):
        TextObservation(gym.make(ENV_ID, **SMALL), max_length=10)
    small = TextObservation(gym.make(ENV_ID, **SMALL), max_length=300)
    with pytest.raises(ConfigError, match="pass a larger max_length"):
        small.reset(seed=0)


def test_docstring_examples_run() -> None:
    import doctest

    import penguin_gym.wrappers

    result = doctest.testmod(penguin_gym.wrappers)
    assert result.attempted > 0 and result.failed == 0
