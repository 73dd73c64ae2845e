"""The rules are written once (``penguin_gym.rules``): every consumer gives the same legality, costs and
values, and the vector env's info carries the single env's keys."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import penguin_gym  # noqa: F401  (registers the ids)
from agents.scoring import JudgeValues, net_tables
from penguin_gym.data import load_scenarios
from penguin_gym.judges import SimulatedJudge
from penguin_gym.model import EpisodeModel, EpisodeState
from penguin_gym.rules import (
    ANSWER,
    NUM_ACTIONS,
    NUM_SETS,
    POPCOUNT,
    action_masks,
    apply,
    net_value,
    outcome_table,
    safety_of,
    safety_reward,
)

ENV_ID = "Penguin-Health-v2"
SMALL: dict[str, Any] = {"n_per_domain": 120}


def test_the_outcome_table_is_apply_on_every_set_and_action() -> None:
    costs = (0.1, 0.2, 0.05, 0.0, 0.3, 0.1, 0.1, 0.4, 0.2, 0.15)
    table = outcome_table(costs, 3, True, None)
    rng = np.random.default_rng(0)
    m = rng.integers(0, NUM_SETS, 500)
    a = rng.integers(0, NUM_ACTIONS, 500)
    o = apply(m, POPCOUNT[m], a, costs=np.array(costs), budget=3, normalize=True, repeat_penalty=None)
    for j, (mj, aj) in enumerate(zip(m.tolist(), a.tolist(), strict=True)):
        t = table[mj][aj]
        assert t.asked == o.asked[j] and t.paid == o.paid[j] and t.invalid == o.invalid[j]
        assert t.question_term == o.question_term[j] and t.invalid_term == o.invalid_term[j]
        assert t.terminated == o.terminated[j] and t.forced_answer == o.forced_answer[j]


def test_legality_is_one_definition_for_the_model_scalar_and_batched() -> None:
    model = EpisodeModel(load_scenarios(domains="Health", n_per_domain=20), SimulatedJudge(), budget=4)
    rng = np.random.default_rng(1)
    for _ in range(200):
        order = tuple(int(x) for x in rng.permutation(10)[: int(rng.integers(0, 5))])
        state = EpisodeState(0, sum(1 << x for x in order), order)
        mask = model.action_mask(state)
        assert model.legal_actions(state) == tuple(np.flatnonzero(mask).tolist())
        assert np.array_equal(mask, model.action_mask_batch(np.array([state.asked]), np.array([len(order)]))[0])
        assert mask[ANSWER] and mask.sum() == (1 if len(order) >= 4 else 11 - len(order))
    done = EpisodeState(0, 1, (0,), 0.08, 1, True)
    assert not model.action_mask(done).any() and model.is_terminal(done) and model.legal_actions(done) == ()
    assert not action_masks(np.array([3, 5]), np.array([2, 2]), np.array([True, False]))[0].any()


def test_ppo_masks_are_the_rules_masks() -> None:
    pytest.importorskip("sb3_contrib")
    from agents.ppo import masks_from_obs

    env: Any = gym.make(ENV_ID, budget=3, **SMALL)
    obs, _ = env.reset(seed=0)
    for a in (4, 4, 2, 9):
        assert np.array_equal(masks_from_obs(obs), env.unwrapped.action_masks())
        obs, *_ = env.step(a)


@pytest.mark.parametrize("normalize", [False, True])
def test_net_values_agree_across_scoring_paths(normalize: bool) -> None:
    model = EpisodeModel(
        load_scenarios(domains="Health", n_per_domain=10), SimulatedJudge(), normalize_reward=normalize
    )
    rows = np.array([0, 3])
    tables = net_tables(model, rows)
    masks = np.array([0, 5, 1023, 77])
    for i, r in enumerate(rows.tolist()):
        direct = model.net_value(np.full(len(masks), r), masks)
        np.testing.assert_allclose(tables[i, masks], direct, rtol=0, atol=1e-12)
        one = JudgeValues(model, [r], cache=False, batch=False).values(np.zeros(len(masks), np.int64), masks, None)  # type: ignore[arg-type]
        np.testing.assert_allclose(one, direct, rtol=0, atol=1e-12)
    # The episode's return of asking a set then answering is the net value of that set.
    env: Any = gym.make(ENV_ID, normalize_reward=normalize, **SMALL)
    env.reset(seed=0, options={"scenario_index": 3})
    total = sum(float(env.step(a)[1]) for a in (0, 2, ANSWER))
    assert abs(total - float(_net_of(env, 3, 0b101))) < 1e-12


def _net_of(env: Any, row: int, mask: int) -> float:
    model = env.unwrapped.model
    s = model.scores(row, mask).tolist()
    cost = float(model.costs[0] + model.costs[2])
    return float(net_value(safety_of(*s), cost, model.normalize_reward))


def test_safety_reward_scale() -> None:
    assert safety_reward(5.0, True) == 1.0 and safety_reward(1.0, True) == 0.0 and safety_reward(3.0, False) == 3.0
    assert np.array_equal(safety_reward(np.array([1.0, 5.0]), True), [0.0, 1.0])


def test_the_vector_env_info_carries_the_single_env_keys() -> None:
    n = 4
    vec = gym.make_vec(ENV_ID, num_envs=n, **SMALL)
    ref = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="sync", **SMALL)
    _, iv = vec.reset(seed=3)
    _, ir = ref.reset(seed=3)
    _same(iv, ir, ("revealed", "domain", "query", "scenario_type"))
    rng = np.random.default_rng(3)
    seen: set[str] = set()
    for t in range(120):
        a = np.where(rng.random(n) < 0.25, ANSWER, rng.integers(0, 10, n))
        *_, iv = vec.step(a)
        *_, ir = ref.step(a)
        keys = {k for k in ir if not k.startswith("_")}
        seen |= keys
        # The scenario's texts come with each reset only (PenguinVectorEnv's docstring says why).
        assert keys - {"domain", "query", "scenario_type"} <= set(iv), (t, keys - set(iv))
        _same(iv, ir, ("answer", "questions", "revealed", "scenario_id", "num_questions"))
    assert {"answer", "questions", "revealed", "missed_high_risk"} <= seen


def _same(iv: dict[str, Any], ir: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key not in ir:
            assert not iv.get("_" + key, np.zeros(1, bool)).any(), key
            continue
        m = ir["_" + key]
        if key in ("domain", "query", "scenario_type"):  # the vector env gives the texts on resets only
            m = m & iv["_" + key]
        else:
            assert np.array_equal(iv["_" + key], m), key
        if isinstance(ir[key], dict):  # gymnasium's layout of a dict info: one batched entry per key
            assert set(iv[key]) == set(ir[key]), key
            _same(iv[key], ir[key], tuple(k for k in ir[key] if not k.startswith("_")))
        else:
            assert list(iv[key][m]) == list(ir[key][m]), key
