"""Advice features (agents.advice) and the advised PPO policy (agents.ppo_policy) on both tracks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import penguin_gym  # noqa: F401
from agents.advice import ADVICE_KEY, AdviceObservation, GreedyAdvice
from agents.base import DialogueAgent
from agents.baselines import GreedyAgent
from agents.belief import fit_belief_cached
from agents.context import AgentContext
from agents.evaluate import evaluate
from agents.ppo import PPOAgent, PPOConfig, train
from penguin_gym.data import ATTRIBUTES, DOMAINS
from penguin_gym.error import ConfigError
from penguin_gym.rules import ANSWER, NUM_ACTIONS

FAITHFUL, GUARDED = "Penguin-Health-v2", "Penguin-Health-Guarded-v0"


class FollowAdvice(DialogueAgent):
    """Asks the question of largest advised gain while one is positive, else answers: greedy, if the
    advice is greedy's values."""

    name = "follow-advice"

    def __init__(self) -> None:
        super().__init__()
        self.advice = GreedyAdvice()
        self.seen: list[np.ndarray] = []

    def setup(self, context: AgentContext) -> None:
        super().setup(context)
        self.advice.setup(context)

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        self.advice.reset(info)

    def act(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> int:
        feats = self.advice(obs, info, self._last_action)
        self.seen.append(feats)
        valid = np.flatnonzero(np.asarray(obs["asked"]) == 0) if obs["steps_left"][0] > 0 else np.empty(0, int)
        best = int(valid[np.argmax(feats[valid])]) if len(valid) else ANSWER
        self._last_action = best if len(valid) and feats[best] > 0 else ANSWER
        return self._last_action


@pytest.mark.parametrize("env_id", [FAITHFUL, GUARDED])
def test_following_the_advice_plays_greedy_episode_for_episode(env_id: str) -> None:
    follower = FollowAdvice()
    a = evaluate(follower, env_id, episodes=80, seed=3, split="test")
    g = evaluate(GreedyAgent(), env_id, episodes=80, seed=3, split="test")
    assert [r.questions for r in a.rows] == [r.questions for r in g.rows]
    assert [r.net_reward for r in a.rows] == [r.net_reward for r in g.rows]
    feats = np.array(follower.seen)
    assert feats.shape[1] == NUM_ACTIONS and feats.dtype == np.float32
    # the answer entry is the value of answering now, (net - 1) / 4 on the 1-5 scale
    assert 0.0 < feats[:, ANSWER].min() and feats[:, ANSWER].max() < 1.0
    assert (feats[:, :ANSWER] > 0).any() and (feats[:, :ANSWER] < 0).any()


def test_the_advice_does_not_depend_on_the_reward_scale() -> None:
    def first_advice(normalize: bool) -> np.ndarray:
        env = gym.make(GUARDED, split="test", normalize_reward=normalize)
        adv = GreedyAdvice()
        adv.setup(AgentContext.from_env(env))
        obs, info = env.reset(seed=5)
        adv.reset(info)
        return adv(obs, info)

    np.testing.assert_allclose(first_advice(True), first_advice(False), atol=1e-5)


def test_leave_one_out_drops_the_users_own_particle() -> None:
    env = gym.make(FAITHFUL, split="train")
    ctx = AgentContext.from_env(env)
    belief = fit_belief_cached(ctx.train_scenarios, ctx.judge, rules=ctx)
    s = ctx.train_scenarios[0]
    severity = np.asarray(s.severity_vector, dtype=np.float64)
    args = (s.domain_index, s.scenario_type, s.query, severity, 0b1111)
    idx, w = belief.weights(*args)
    own = belief.ids.index(s.id)
    assert own in idx and w[idx == own][0] > 0
    idx2, w2 = belief.weights(*args, exclude=s.id)
    assert np.array_equal(idx, idx2) and w2[idx2 == own][0] == 0.0
    assert w2.sum() == pytest.approx(1.0)
    keep = idx != own
    np.testing.assert_allclose(w2[keep], w[keep] / w[keep].sum())
    # an id that is no particle (a test user's) changes nothing
    np.testing.assert_array_equal(belief.weights(*args, exclude="no-such-user")[1], w)


def test_on_the_training_split_the_advice_is_leave_one_out() -> None:
    env = AdviceObservation(gym.make(GUARDED, split="train"))
    env.reset(seed=11)
    greedy = env.advice.greedy
    assert greedy.belief is not None
    # a training user among the belief's particles (it subsamples the training split)
    particle = next(
        i for i, d in zip(greedy.belief.ids, greedy.belief.domains, strict=True) if d == DOMAINS.index("Health")
    )
    obs, info = env.reset(options={"scenario_id": particle})
    assert info["scenario_id"] == particle
    _, now_loo, asks_loo = greedy.action_values(exclude=info["scenario_id"])
    _, now_all, asks_all = greedy.action_values()
    assert not np.allclose(asks_all - now_all, asks_loo - now_loo)  # the own particle mattered
    scale = AgentContext.from_env(env.env).scale
    np.testing.assert_allclose(obs[ADVICE_KEY][:ANSWER], (asks_loo - now_loo) / scale, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*is different from the unwrapped version")
@pytest.mark.parametrize("env_id", [FAITHFUL, GUARDED])
def test_the_wrapped_env_passes_both_checkers(env_id: str) -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = AdviceObservation(gym.make(env_id, split="test"))
    check_env(env, skip_render_check=True)
    sb3_check_env(AdviceObservation(gym.make(env_id, split="test")), warn=False)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    done = False
    while not done:
        obs, _, term, trunc, _ = env.step(ANSWER)
        done = term or trunc
    assert not obs[ADVICE_KEY].any()  # nothing to advise after the answer
    np.testing.assert_array_equal(env.action_masks(), env.unwrapped.action_masks())


def test_wrapper_and_advice_errors_say_what_to_fix() -> None:
    with pytest.raises(ConfigError, match="wrapped twice"):
        AdviceObservation(AdviceObservation(gym.make(FAITHFUL)))
    with pytest.raises(ConfigError, match="Dict observation"):
        AdviceObservation(gym.wrappers.FlattenObservation(gym.make(FAITHFUL)))
    with pytest.raises(ConfigError, match="not set up"):
        GreedyAdvice().reset({"domain": "Health", "query": "q"})
    with pytest.raises(ConfigError, match="advice"):
        PPOConfig(advice="oracle")
    with pytest.raises(ConfigError, match="flatten=False"):
        PPOConfig(advice="greedy", flatten=True)
    with pytest.raises(ConfigError, match="advice_scale"):
        PPOConfig(advice="greedy", advice_scale=0.0)


@pytest.mark.parametrize("env_id", [FAITHFUL, GUARDED])
def test_an_untrained_advised_policy_with_a_sharp_prior_plays_greedy(env_id: str) -> None:
    # action_net starts near zero, so with a large beta the logits' argmax is the advice's: the
    # policy's distribution reads the advice (the bias is wired into every way SB3 builds it).
    cfg = PPOConfig(n_envs=4, n_steps=16, batch_size=64, advice="greedy", advice_scale=1e4, learning_rate=1e-12)
    res = train(env_id, 64, seed=0, config=cfg, eval_freq=0)
    assert type(res.model.policy).__name__ == "AdvisedPolicy"
    assert res.agent.advice == "greedy"
    ppo = evaluate(res.agent, env_id, episodes=60, seed=2, split="test")
    greedy = evaluate(GreedyAgent(), env_id, episodes=60, seed=2, split="test")
    assert [r.questions for r in ppo.rows] == [r.questions for r in greedy.rows]


@pytest.fixture(scope="module")
def advised(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cfg = PPOConfig(n_envs=8, n_steps=64, batch_size=256, advice="greedy")
    return train(GUARDED, 2048, seed=0, config=cfg, eval_freq=1024, eval_episodes=40,
                 save_dir=tmp_path_factory.mktemp("advised"))  # fmt: skip


def test_an_advised_policy_trains_saves_and_loads(advised: Any) -> None:
    assert [int(e["timesteps"]) for e in advised.evaluations] == [1024, 2048]
    beta = advised.model.policy.advice_scale
    assert beta != pytest.approx(20.0, abs=1e-9)  # beta is trained with the rest
    loaded = PPOAgent.load(advised.model_path)
    assert loaded.advice == "greedy"
    assert loaded.model.policy.advice_scale == pytest.approx(beta)
    a = evaluate(advised.agent, GUARDED, episodes=40, seed=4, split="test", env_kwargs={"invalid_action": "raise"})
    b = evaluate(loaded, GUARDED, episodes=40, seed=4, split="test")
    assert [r.questions for r in a.rows] == [r.questions for r in b.rows]
    assert a.summary["net_reward_mean"] == b.summary["net_reward_mean"]


def test_an_advised_policy_plays_episode_by_episode_only(advised: Any) -> None:
    env = gym.make(GUARDED, split="test")
    obs, _ = env.reset(seed=0)
    batch = {k: v[None] for k, v in obs.items()}
    with pytest.raises(ConfigError, match="episode by episode"):
        advised.agent.act_batch(batch)
    with pytest.raises(ConfigError, match="keys the env lacks"):
        evaluate(advised.agent, FAITHFUL, episodes=2, seed=0, split="test")


def test_advised_training_is_deterministic_for_a_seed() -> None:
    cfg = PPOConfig(n_envs=4, n_steps=32, batch_size=64, advice="greedy")
    one = train(GUARDED, 256, seed=7, config=cfg, eval_freq=0)
    two = train(GUARDED, 256, seed=7, config=cfg, eval_freq=0)
    for p, q in zip(one.model.policy.parameters(), two.model.policy.parameters(), strict=True):
        assert np.array_equal(p.detach().numpy(), q.detach().numpy())


def test_critic_warmup_trains_the_value_net_alone_first() -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    class Snapshot(BaseCallback):
        def _on_training_start(self) -> None:
            pol = self.model.policy
            self.actor = [p.detach().clone() for p in pol.action_net.parameters()] + [
                pol.log_advice_scale.detach().clone()
            ]
            self.critic = [p.detach().clone() for p in pol.value_net.parameters()]

        def _on_step(self) -> bool:
            return True

    def run(warmup: int) -> tuple[Snapshot, Any]:
        snap = Snapshot()
        cfg = PPOConfig.advised(n_envs=4, n_steps=32, batch_size=64, critic_warmup=warmup, lr_schedule="constant")
        res = train(GUARDED, 2 * 4 * 32, seed=0, config=cfg, eval_freq=0, callbacks=[snap])
        return snap, res.model.policy

    snap, pol = run(2)  # both rollouts' updates train the critic only
    after = [p.detach() for p in pol.action_net.parameters()] + [pol.log_advice_scale.detach()]
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(snap.actor, after, strict=True))
    assert not all(
        np.array_equal(a.numpy(), b.detach().numpy())
        for a, b in zip(snap.critic, pol.value_net.parameters(), strict=True)
    )
    assert all(p.requires_grad for p in pol.action_net.parameters())  # unfrozen at the end of training
    snap, pol = run(1)  # the second rollout's update trains the actor too
    after = [p.detach() for p in pol.action_net.parameters()] + [pol.log_advice_scale.detach()]
    assert not all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(snap.actor, after, strict=True))


def test_expected_gains_are_the_action_values_gains() -> None:
    env = gym.make(GUARDED, split="test")
    greedy = GreedyAgent()
    greedy.setup(AgentContext.from_env(env))
    obs, info = env.reset(seed=1)
    greedy.reset(info)
    greedy.observe(obs, info)
    gains = greedy.expected_gains()
    cands, now, asks = greedy.action_values()
    assert list(gains) == [ATTRIBUTES[a] for a in cands] and len(gains) == 10
    assert gains == pytest.approx({ATTRIBUTES[a]: v - now for a, v in zip(cands, asks, strict=True)})
    best = max(gains, key=gains.__getitem__)
    assert greedy.choose(obs) == (ATTRIBUTES.index(best) if gains[best] > 0 else ANSWER)
