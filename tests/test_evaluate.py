"""``evaluate``: episode selection, the summary's statistics, the oracle reference, files, errors."""

from __future__ import annotations

import csv
import json
import math

import gymnasium as gym
import numpy as np
import pytest

from agents import EvalResult, evaluate, make_agent
from agents.evaluate import EpisodeRow, summarize
from penguin_gym.error import ConfigError, InvalidActionError
from penguin_gym.model import DEFAULT_QUESTION_COST

SMALL = {"n_per_domain": 40}


def test_every_scenario_once_in_order() -> None:
    env = gym.make("Penguin-Career-v2", split="test", **SMALL)
    ids = [s.id for s in env.unwrapped.scenarios]
    res = evaluate(make_agent("static"), "Penguin-Career-v2", env_kwargs=SMALL)
    assert [r.scenario_id for r in res.rows] == ids
    assert res.summary["episodes"] == len(ids)
    assert res.agent == "static" and res.env_id == "Penguin-Career-v2" and res.judge.startswith("simulated")


def test_sampled_episodes_are_seeded() -> None:
    a = evaluate(make_agent("answer-now"), "Penguin-All-v2", episodes=15, seed=4, env_kwargs=SMALL)
    b = evaluate(make_agent("answer-now"), "Penguin-All-v2", episodes=15, seed=4, env_kwargs=SMALL)
    c = evaluate(make_agent("answer-now"), "Penguin-All-v2", episodes=15, seed=5, env_kwargs=SMALL)
    assert [r.scenario_id for r in a.rows] == [r.scenario_id for r in b.rows]
    assert [r.scenario_id for r in a.rows] != [r.scenario_id for r in c.rows]
    assert len({r.scenario_id for r in a.rows}) == 15  # without replacement while there are enough


def test_summary_statistics() -> None:
    res = evaluate(make_agent("random-k"), "Penguin-Health-v2", env_kwargs=SMALL)
    s = res.summary
    saf = np.array([r.safety for r in res.rows])
    assert s["safety_mean"] == pytest.approx(saf.mean())
    from scipy import stats

    # Student t, the interval of every experiment (agents.stats), not the normal approximation
    t = stats.t.ppf(0.975, len(saf) - 1)
    assert s["safety_ci95"] == pytest.approx(t * saf.std(ddof=1) / math.sqrt(len(saf)))
    net = np.array([r.net_reward for r in res.rows])
    assert s["net_reward_mean"] == pytest.approx(net.mean())
    np.testing.assert_allclose(net, saf - 3 * DEFAULT_QUESTION_COST)  # three questions at the default cost
    reg = np.array([r.oracle_net_reward - r.net_reward for r in res.rows])
    assert s["regret_mean"] == pytest.approx(reg.mean())
    norm = [
        (r.net_reward - r.answer_now_net_reward) / (r.oracle_net_reward - r.answer_now_net_reward) for r in res.rows
    ]
    assert s["normalized_mean"] == pytest.approx(np.mean(norm))
    high = [r for r in res.rows if r.high_risk]
    assert s["high_risk_episodes"] == len(high) > 0
    assert s["critical_miss_rate"] == pytest.approx(np.mean([r.missed_high_risk for r in high]))
    assert s["questions_mean"] == 3.0
    for key in (
        "safety_mean",
        "safety_ci95",
        "net_reward_mean",
        "net_reward_ci95",
        "questions_mean",
        "regret_mean",
        "regret_ci95",
        "normalized_mean",
        "normalized_ci95",
        "critical_miss_rate",
        "episodes",
    ):
        assert key in s


def test_critical_misses() -> None:
    now = evaluate(make_agent("answer-now"), "Penguin-Health-v2", env_kwargs=SMALL).summary
    assert now["critical_miss_rate"] == 1.0
    both = make_agent("static", order=["Mental Health Status", "Past Self-Harm History"])
    assert evaluate(both, "Penguin-Health-v2", env_kwargs=SMALL).summary["critical_miss_rate"] == 0.0


def test_without_oracle() -> None:
    res = evaluate(make_agent("static"), "Penguin-Life-v2", episodes=4, env_kwargs=SMALL, oracle=False)
    assert all(r.oracle_net_reward is None and r.regret is None and r.normalized is None for r in res.rows)
    assert "regret_mean" not in res.summary and "safety_mean" in res.summary


def test_env_object_and_errors() -> None:
    env = gym.make("Penguin-Social-v2", split="train", **SMALL)
    res = evaluate(make_agent("answer-now"), env, episodes=3)
    assert res.env_id == "Penguin-Social-v2" and len(res.rows) == 3
    with pytest.raises(ConfigError, match="env_kwargs"):
        evaluate(make_agent("answer-now"), env, episodes=3, env_kwargs={"budget": 2})
    with pytest.raises(ConfigError, match="episodes"):
        evaluate(make_agent("answer-now"), env, episodes=0)


class _Stubborn:
    """Asks the same attribute forever (masked after the first time)."""

    name = "stubborn"

    def reset(self, info):  # type: ignore[no-untyped-def]
        pass

    def act(self, obs, info):  # type: ignore[no-untyped-def]
        return 0


def test_an_agent_that_never_answers_is_reported() -> None:
    with pytest.raises(InvalidActionError, match="did not answer"):
        evaluate(_Stubborn(), "Penguin-Career-v2", episodes=1, env_kwargs=SMALL)


def test_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    res = evaluate(make_agent("static"), "Penguin-Financial-v2", episodes=5, env_kwargs=SMALL)
    text = res.to_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data == json.loads(text)
    assert data["summary"]["episodes"] == 5 and len(data["rows"]) == 5
    assert data["rows"][0]["questions"] == ["Emotional State", "Mental Health Status", "Past Self-Harm History"]
    res.to_csv(tmp_path / "r.csv")
    with open(tmp_path / "r.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5 and rows[0]["agent"] == "static"
    assert rows[0]["questions"] == "Emotional State|Mental Health Status|Past Self-Harm History"
    assert float(rows[0]["safety"]) == pytest.approx(res.rows[0].safety)
    by = res.by_domain()
    assert list(by) == ["Financial"] and by["Financial"]["episodes"] == 5
    assert isinstance(res, EvalResult)


def test_summarize_edge_cases() -> None:
    row = EpisodeRow("x", "Health", "t", [], 0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 0.0, None, False, False)
    s = summarize([row])
    assert s["safety_mean"] == 3.0 and math.isnan(s["safety_ci95"])  # one episode: no interval
    assert math.isnan(s["critical_miss_rate"]) and s["normalized_excluded"] == 1.0
    assert json.loads(EvalResult([row], s).to_json())["summary"]["safety_ci95"] is None


def test_docstring_examples() -> None:
    import doctest
    import importlib

    # ``agents.evaluate`` is the function (re-exported by the package); the module is in sys.modules.
    for module in (importlib.import_module("agents"), importlib.import_module("agents.evaluate")):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0
