"""MaskablePPO: a 16,384-step run beats random-k on held-out scenarios; the agent, saving and checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import penguin_gym  # noqa: F401
from agents.baselines import AnswerNowAgent, RandomKAgent
from agents.context import AgentContext
from agents.evaluate import evaluate
from agents.ppo import PPOAgent, PPOConfig, TrainResult, eval_metrics, masks_from_obs, train
from agents.registry import make_agent
from penguin_gym.error import ConfigError
from penguin_gym.model import ANSWER
from penguin_gym.vector import PenguinVectorEnv

ENV_ID = "Penguin-Health-v2"
FAST = PPOConfig(n_envs=16, n_steps=64, batch_size=256)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    out = tmp_path_factory.mktemp("ppo")
    return train(
        ENV_ID, 16_384, seed=0, config=FAST, eval_freq=8_192, eval_episodes=100, save_dir=out, checkpoint_freq=8_192
    )


def test_a_short_run_beats_random_k_on_held_out_scenarios(trained: TrainResult) -> None:
    # How long it takes is measured by benchmarks/ppo_oracle.py, not asserted here.
    assert trained.timesteps == 16_384
    # invalid_action="raise": a masked action would raise, so this also checks the masks are obeyed.
    kwargs = {"invalid_action": "raise"}
    ppo = evaluate(trained.agent, ENV_ID, episodes=200, seed=1, split="test", env_kwargs=kwargs).summary
    rnd = evaluate(RandomKAgent(3), ENV_ID, episodes=200, seed=1, split="test", env_kwargs=kwargs).summary
    now = evaluate(AnswerNowAgent(), ENV_ID, episodes=200, seed=1, split="test", env_kwargs=kwargs).summary
    assert ppo["net_reward_mean"] > rnd["net_reward_mean"] + 0.2, (ppo, rnd)
    assert ppo["net_reward_mean"] > now["net_reward_mean"] + 0.5
    assert ppo["regret_mean"] < rnd["regret_mean"]
    assert 1.0 <= ppo["questions_mean"] <= 8.0


def test_the_eval_callback_recorded_held_out_metrics(trained: TrainResult) -> None:
    evals = trained.evaluations
    assert [int(e["timesteps"]) for e in evals] == [8_192, 16_384]
    for e in evals:
        assert {"safety", "net_reward", "questions", "regret", "oracle_fraction", "oracle_net_reward"} <= set(e)
        assert 1.0 <= e["safety"] <= 5.0 and e["regret"] >= 0
        assert e["oracle_fraction"] == pytest.approx(e["net_reward"] / e["oracle_net_reward"])
    assert evals[-1]["oracle_fraction"] > 0.9


def test_saved_models_and_checkpoints_load_as_agents(trained: TrainResult) -> None:
    assert trained.model_path is not None and trained.model_path.exists()
    out = trained.model_path.parent
    assert (out / "best_model.zip").exists()
    checkpoints = sorted(p.name for p in (out / "checkpoints").glob("ppo_*_steps.zip"))
    assert len(checkpoints) == 2, checkpoints
    loaded = PPOAgent.load(trained.model_path)
    vec = PenguinVectorEnv(64, "Health", split="test")
    obs, _ = vec.reset(seed=0)
    for _ in range(4):
        masks = vec.action_masks()
        a = loaded.act_batch(obs, masks)
        assert np.array_equal(a, trained.agent.act_batch(obs, masks))
        assert (masks[np.arange(64), a] | ~masks.any(axis=1)).all()  # valid, or a finished sub-env
        obs, *_ = vec.step(a)
    with pytest.raises(ConfigError, match="no saved PPO model"):
        PPOAgent.load(out / "missing.zip")
    by_name = make_agent("ppo", path=out / "best_model.zip")
    assert isinstance(by_name, PPOAgent) and by_name.name == "ppo"


def test_act_batch_matches_act_on_single_envs(trained: TrainResult) -> None:
    n = 6
    vec = PenguinVectorEnv(n, "Health", split="test")
    singles = [gym.make(ENV_ID, split="test") for _ in range(n)]
    agent = trained.agent
    obs_v, _ = vec.reset(seed=3)
    obs_s = [e.reset(seed=3 + i)[0] for i, e in enumerate(singles)]
    for _ in range(6):
        actions = agent.act_batch(obs_v, vec.action_masks())
        for i, e in enumerate(singles):
            single = agent.act(obs_s[i], {})
            if not vec.answered[i]:  # a live episode (a finished one awaits its autoreset)
                assert single == actions[i]
                obs_s[i], _, term, trunc, _ = e.step(single)
                if term or trunc:
                    obs_s[i], _ = e.reset()
        obs_v, *_ = vec.step(actions)


def test_masks_from_obs_equal_the_env_masks() -> None:
    env = gym.make(ENV_ID, budget=3)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    for _ in range(300):
        mask = env.unwrapped.action_masks()
        assert np.array_equal(masks_from_obs(obs), mask)
        action = int(rng.choice(np.flatnonzero(mask)))
        obs, _, term, trunc, _ = env.step(action)
        if term or trunc:
            obs, _ = env.reset()


def test_training_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    cfg = PPOConfig(n_envs=8, n_steps=32, batch_size=64, n_epochs=2)

    def params(seed: int) -> list[Any]:
        res = train(ENV_ID, 512, seed=seed, config=cfg, eval_freq=0)
        assert res.evaluations == []
        return [p.detach().numpy().copy() for p in res.model.policy.parameters()]

    a, b, c = params(0), params(0), params(1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    # Evaluating during training leaves the training run as it was.
    evaluated = train(ENV_ID, 512, seed=0, config=cfg, eval_freq=256, eval_episodes=10)
    assert len(evaluated.evaluations) == 2
    d = [p.detach().numpy() for p in evaluated.model.policy.parameters()]
    assert all(np.array_equal(x, y) for x, y in zip(a, d, strict=True))


def test_flattened_training_gives_an_mlp_policy_the_agent_can_run() -> None:
    res = train(ENV_ID, 512, seed=0, config=PPOConfig(n_envs=8, n_steps=32, batch_size=64, flatten=True), eval_freq=0)
    assert isinstance(res.model.observation_space, gym.spaces.Box)
    result = evaluate(res.agent, ENV_ID, episodes=20, seed=0, env_kwargs={"invalid_action": "raise"})
    assert result.summary["episodes"] == 20


def test_agent_refuses_an_env_with_other_features(trained: TrainResult) -> None:
    other = gym.make(ENV_ID, featurizer="hashing:32")
    with pytest.raises(ConfigError, match="query features have 32 dimensions but the policy was trained on 64"):
        trained.agent.setup(AgentContext.from_env(other))


def test_act_batch_answers_for_finished_sub_envs(trained: TrainResult) -> None:
    vec = PenguinVectorEnv(2, "Health")
    obs, _ = vec.reset(seed=0)
    obs, *_ = vec.step(np.array([ANSWER, 7]))
    masks = vec.action_masks()
    assert vec.answered.tolist() == [True, False]
    assert masks[0].tolist() == [False] * ANSWER + [True]  # ANSWER alone, never a row of False
    assert trained.agent.act_batch(obs, masks)[0] == ANSWER


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_envs": 0}, "n_envs"),
        ({"batch_size": 4096}, "exceeds the rollout size"),
        ({"gamma": 1.5}, "gamma"),
        ({"net_arch": ()}, "net_arch"),
        ({"learning_rate": 0.0}, "learning_rate"),
    ],
)
def test_config_errors_say_what_to_fix(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PPOConfig(**kwargs)


def test_train_argument_errors() -> None:
    with pytest.raises(ConfigError, match="timesteps"):
        train(ENV_ID, 0)
    with pytest.raises(ConfigError, match="save_dir"):
        train(ENV_ID, 100, checkpoint_freq=50)
    with pytest.raises(ConfigError, match="lacks 'regret_mean'"):
        eval_metrics({"net_reward_mean": 1.0, "safety_mean": 3.0, "questions_mean": 1.0})


def test_a_checkpoint_records_its_training_split_and_is_refused_on_it(trained: TrainResult) -> None:
    from agents.evaluate import LeakageError
    from agents.ppo_agent import TRAINED_ON_ATTR

    assert trained.model_path is not None
    loaded = PPOAgent.load(trained.model_path)
    assert loaded.trained_on == getattr(trained.model, TRAINED_ON_ATTR)
    assert loaded.trained_on["split"] == "train" and loaded.trained_on["env_id"] == ENV_ID
    checkpoint = sorted((trained.model_path.parent / "checkpoints").glob("*.zip"))[0]
    assert PPOAgent.load(checkpoint).trained_on == loaded.trained_on  # every checkpoint carries the record
    assert evaluate(loaded, ENV_ID, episodes=5, seed=0).meta["trained_on"]["split"] == "train"
    with pytest.raises(LeakageError, match=r"trained on split 'train'.*\['train'\] users"):
        evaluate(loaded, ENV_ID, episodes=5, seed=0, split="train")


def test_a_policy_trains_on_the_guarded_track_and_plays_only_there(trained: TrainResult) -> None:
    # the faithful policy on a guarded id: refused, naming the observation keys it never saw
    with pytest.raises(ConfigError, match=r"keys the policy never saw: \['declined', 'hedged'\]"):
        evaluate(trained.agent, "Penguin-Health-Guarded-v0", episodes=2, seed=0, split="test")
    cfg = PPOConfig(n_envs=4, n_steps=32, batch_size=64)
    guarded = train("Penguin-Health-Guarded-v0", 256, seed=0, config=cfg, eval_freq=0)
    assert set(guarded.model.observation_space.spaces) >= {"declined", "hedged"}
    assert guarded.agent.trained_on["env_id"] == "Penguin-Health-Guarded-v0"
    res = evaluate(guarded.agent, "Penguin-Health-Guarded-v0", episodes=5, seed=0, split="test")
    assert len(res.rows) == 5 and all(r.declined is not None for r in res.rows)
    with pytest.raises(ConfigError, match=r"keys the env lacks: \['declined', 'hedged'\]"):
        evaluate(guarded.agent, "Penguin-Health-v2", episodes=2, seed=0, split="test")
