"""The MCTS planner: golden results on tiny problems, the oracle's best set, determinism, both
implementations, the priors (learned, uniform, an LLM over HTTP), and the agent's two modes."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from agents import evaluate
from agents.mcts import MCTSAgent, MCTSConfig, plan_true_profile, search
from agents.oracle import oracle_values
from agents.priors import STOP, LearnedPrior, LLMPrior, UniformPrior, make_prior
from agents.scoring import JudgeValues, TableValues, net_tables
from penguin_gym.data import ATTRIBUTES, load_scenarios
from penguin_gym.error import ConfigError
from penguin_gym.judges import SimulatedJudge
from penguin_gym.model import MASK_BITS, POPCOUNT, EpisodeModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_server import Reply, ScriptedOpenAIServer  # noqa: E402


def _bits(*attrs: int) -> int:
    return sum(1 << a for a in attrs)


def _synergy_table() -> np.ndarray:
    """Values where greedy fails: attribute 0 alone is best, but {1, 2} together beat any pair with 0."""
    t = np.zeros(1024)
    t[_bits(0)] = 1.0
    t[_bits(1)] = t[_bits(2)] = 0.5
    t[_bits(1, 2)] = 2.0
    t[_bits(0, 1)] = t[_bits(0, 2)] = 1.1
    return t


@pytest.mark.parametrize("vectorized", [True, False])
def test_golden_synergy_problem(vectorized: bool) -> None:
    cfg = MCTSConfig(num_rollouts=300, budget=2, allow_stop=False)
    res = search(
        TableValues(_synergy_table()[None, :]),
        UniformPrior(),
        roots=[0],
        limits=[2],
        config=cfg,
        rng=np.random.default_rng(0),
        vectorized=vectorized,
    )
    assert res.masks[0] == _bits(1, 2)
    assert set(res.paths[0]) == {1, 2}
    assert res.q[0] == pytest.approx(2.0)


@pytest.mark.parametrize("vectorized", [True, False])
def test_stop_when_nothing_is_worth_asking(vectorized: bool) -> None:
    t = np.full((1, 1024), -1.0)
    t[0, 0] = 0.5  # answering now is best
    res = search(
        TableValues(t),
        UniformPrior(),
        roots=[0],
        limits=[3],
        config=MCTSConfig(num_rollouts=100),
        rng=np.random.default_rng(0),
        vectorized=vectorized,
    )
    assert res.masks[0] == 0 and res.paths[0] == ()
    assert res.root_visits[0, STOP] > 0


def _health(n: int = 120, **kw: object) -> tuple[EpisodeModel, np.ndarray]:
    sc = load_scenarios(domains="Health", n_per_domain=n)
    model = EpisodeModel(sc, SimulatedJudge(), **kw)  # type: ignore[arg-type]
    prior = LearnedPrior.from_tables(net_tables(model, np.arange(len(sc))), np.full(len(sc), 4), model.budget)
    return model, prior  # type: ignore[return-value]


def test_finds_the_oracles_best_set_on_small_instances() -> None:
    # Budget 3 (176 sets), with the learned prior and T = 1000: the oracle's best set, without and with
    # question costs (then stopping early is part of the plan).
    for kw in ({"question_cost": 0.0, "budget": 3}, {"question_cost": 0.05, "budget": 3}):
        model, prior = _health(60, **kw)
        rows = np.arange(len(model.scenarios))
        exact = kw["question_cost"] == 0.0
        best, best_v = oracle_values(model, rows, budget=3, exact=exact)
        cfg = MCTSConfig(num_rollouts=1000, budget=3, allow_stop=not exact)
        res = plan_true_profile(model, rows, prior=prior, config=cfg, seed=0)
        assert np.mean(res.masks == best) >= 0.95
        got = model.net_value(rows, res.masks)
        assert np.all(got >= best_v - 0.05) and np.all(got <= best_v + 1e-9)
        assert np.all(POPCOUNT[res.masks] == 3) if exact else np.all(POPCOUNT[res.masks] <= 3)


def test_guided_search_beats_uniform_at_few_rollouts() -> None:
    model, prior = _health(100, question_cost=0.0, budget=3)
    rows = np.arange(len(model.scenarios))
    best, _ = oracle_values(model, rows, budget=3, exact=True)
    hits = {}
    for name, p, use in (("learned", prior, True), ("uct", UniformPrior(), False)):
        cfg = MCTSConfig(num_rollouts=60, budget=3, allow_stop=False, use_prior=use)
        hits[name] = np.mean(plan_true_profile(model, rows, prior=p, config=cfg, seed=1).masks == best)
    assert hits["learned"] > hits["uct"]


@pytest.mark.parametrize(
    "cfg",
    [
        MCTSConfig(eps0=0.0),
        MCTSConfig(eps0=0.0, budget=3, allow_stop=False),
        MCTSConfig(eps0=0.0, extract="visits", c_puct=1.0),
    ],
)
def test_scalar_and_vectorized_implementations_agree(cfg: MCTSConfig) -> None:
    model, prior = _health(40)
    tables = net_tables(model, np.arange(8))
    for r in range(8):
        out = [
            search(
                TableValues(tables[[r]]),
                prior.bind(["q"], [4]),
                roots=[0],
                limits=[cfg.budget],
                config=cfg,
                rng=np.random.default_rng(0),
                vectorized=v,
            )
            for v in (True, False)
        ]
        assert out[0].paths == out[1].paths
        np.testing.assert_allclose(out[0].q, out[1].q)
        np.testing.assert_array_equal(out[0].root_visits, out[1].root_visits)


def test_batched_search_is_deterministic_and_seed_dependent() -> None:
    model, prior = _health(60)
    rows = np.arange(30)
    cfg = MCTSConfig(num_rollouts=50, use_prior=False)
    a = plan_true_profile(model, rows, prior=prior, config=cfg, seed=7)
    b = plan_true_profile(model, rows, prior=prior, config=cfg, seed=7)
    c = plan_true_profile(model, rows, prior=prior, config=cfg, seed=8)
    assert a.paths == b.paths and np.array_equal(a.root_visits, b.root_visits)
    assert not np.array_equal(a.root_visits, c.root_visits)
    assert a.value_calls == 50  # one batched value call per simulation step, for all searches


def test_judge_values_cache_and_batch() -> None:
    model, prior = _health(20)
    rows = np.arange(5)
    cfg = MCTSConfig(num_rollouts=40)
    cached = JudgeValues(model, rows)
    res = search(
        cached,
        prior.bind(["q"] * 5, [4] * 5),
        roots=np.zeros(5, int),
        limits=np.full(5, 5),
        config=cfg,
        rng=np.random.default_rng(0),
    )
    assert cached.judge_calls <= 40 and cached.judged == len(cached.cache)  # one call per step, each set once
    table = search(
        TableValues(net_tables(model, rows)),
        prior.bind(["q"] * 5, [4] * 5),
        roots=np.zeros(5, int),
        limits=np.full(5, 5),
        config=cfg,
        rng=np.random.default_rng(0),
    )
    assert res.paths == table.paths  # the same values either way
    direct = JudgeValues(model, rows[:1], cache=False, batch=False)
    search(
        direct, UniformPrior(), roots=[0], limits=[3], config=MCTSConfig(num_rollouts=30), rng=np.random.default_rng(0)
    )
    assert direct.judge_calls == 30  # one judge call per rollout


def test_first_hit_tracking() -> None:
    t = _synergy_table()[None, :]
    res = search(
        TableValues(t),
        UniformPrior(),
        roots=[0],
        limits=[2],
        config=MCTSConfig(budget=2, allow_stop=False),
        rng=np.random.default_rng(0),
        targets=np.array([_bits(1, 2)]),
    )
    assert res.first_hit is not None and 1 <= res.first_hit[0] <= 300


def test_priors() -> None:
    masks = np.array([0, _bits(0, 1), 1023])
    p = UniformPrior().probs(np.zeros(3, int), masks, np.array([3, 3, 0]), True)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p[0, STOP] == pytest.approx(1 / 11) and p[1, 0] == 0 and p[2, STOP] == 1.0
    p = UniformPrior().probs(np.zeros(1, int), np.array([0]), np.array([3]), False)
    assert p[0, STOP] == 0 and p[0, :10].sum() == pytest.approx(1.0)
    best = np.array([_bits(7, 9), _bits(7), _bits(7, 8, 9), 0])
    lp = LearnedPrior.from_best_masks(best, np.array([4, 4, 4, 4]))
    assert lp.ranking(4)[0] == 7
    b = lp.bind(["q"], [4]).probs(np.array([0]), np.array([0]), np.array([5]), True)
    assert b[0, STOP] == pytest.approx((1 + 1) / (4 + 2))  # one best set of size 0 among 4, smoothed
    assert b[0, :10].argmax() == 7 and b[0].sum() == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        LearnedPrior(np.ones((7, 9)), np.zeros((7, 11)))
    with pytest.raises(ConfigError, match="unknown prior"):
        make_prior("magic")


def test_config_validation() -> None:
    for bad in ({"num_rollouts": 0}, {"budget": 11}, {"c_puct": -1}, {"eps0": 2}, {"extract": "best"}):
        with pytest.raises(ConfigError):
            MCTSConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="mode"):
        MCTSAgent(mode="psychic")  # type: ignore[arg-type]


def test_agent_modes() -> None:
    kw = {"n_per_domain": 120}
    true = evaluate(MCTSAgent(mode="true", config=MCTSConfig(budget=4)), "Penguin-Social-v2", env_kwargs=kw)
    assert true.summary["normalized_mean"] > 0.97  # plans with the true profile: near the oracle
    belief = evaluate(MCTSAgent(config=MCTSConfig(num_rollouts=100)), "Penguin-Social-v2", episodes=20, env_kwargs=kw)
    assert 0.5 < belief.summary["normalized_mean"] < true.summary["normalized_mean"]
    assert MCTSAgent(mode="true").privileged and not MCTSAgent().privileged


def _ranking_reply(body: dict) -> Reply:  # type: ignore[type-arg]
    prompt = body["messages"][-1]["content"]
    if "Profession" in prompt.split("still be asked:")[1]:
        return Reply("1. Mental Health Status\n2. Wellbeing Index\n3. Emotional State")
    return Reply("I cannot rank these.")


def test_llm_prior_over_http(caplog: pytest.LogCaptureFixture) -> None:
    with ScriptedOpenAIServer(_ranking_reply) as server:
        prior = LLMPrior(f"openai:test-model@{server.url}")
        bound = prior.bind(["My exam went badly.", "My exam went badly."], [6, 6])
        with caplog.at_level(logging.WARNING, logger="agents.llm"):
            p = bound.probs(np.array([0, 1]), np.array([0, 0]), np.array([5, 5]), True)
            again = bound.probs(np.array([0]), np.array([0]), np.array([5]), True)
            q = bound.probs(np.array([0]), np.array([_bits(3)]), np.array([5]), True)
        assert server.request_count == 2  # one prompt per distinct node, cached across calls
    mental, emotion = ATTRIBUTES.index("Mental Health Status"), ATTRIBUTES.index("Emotional State")
    assert p[0].argmax() == mental and p[0, mental] > p[0, emotion] > p[0, 0] > 0
    np.testing.assert_allclose(p[0], p[1])
    np.testing.assert_allclose(p[0], again[0])
    assert prior.stats["prior:unknown_attribute"] == 2  # "Wellbeing Index" dropped; the refusal is no name
    assert prior.stats["prior:no_valid_ranking"] == 1  # "I cannot rank these." fell back
    assert "unusable LLM reply" in caplog.text
    np.testing.assert_allclose(
        q[0], UniformPrior().probs(np.zeros(1, int), np.array([_bits(3)]), np.array([5]), True)[0]
    )
    assert MASK_BITS.shape == (1024, 10) and POPCOUNT[1023] == 10
