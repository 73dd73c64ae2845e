"""The agent experiments end to end on a tiny configuration: leaderboard (benchmark), budget, RAISE table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_experiments_common import read_wandb_records

from experiments import budget, leaderboard, raise_table
from experiments.results import ResultsDir
from penguin_gym.error import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "risk_first_agent.py"
TINY = ["--domains", "Health", "Financial", "--n-per-domain", "150", "--max-scenarios", "12", "--no-progress"]


def _summary(path: Path) -> dict:
    s = json.loads((path / "summary.json").read_text())
    s.pop("run")
    return s


def test_leaderboard_end_to_end(tmp_path, capsys):
    out = tmp_path / "lb"
    agents = ["answer-now", "ask-all", "static", "greedy", "mcts", "raise", "oracle", f"{EXAMPLE}:RiskFirstAgent"]
    rc = leaderboard.main(
        [
            *TINY,
            "--out",
            str(out),
            "--agents",
            *agents,
            "--agent-option",
            "mcts:num_rollouts=30",
            "--wandb-mode",
            "offline",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "Leaderboard: 8 agents x 2 domains" in printed and "risk-first" in printed
    s = json.loads((out / "summary.json").read_text())
    ag = s["agents"]
    assert set(ag) == {"answer-now", "ask-all", "static", "greedy", "mcts", "raise", "oracle", "risk-first"}
    for name, e in ag.items():
        assert e["overall"]["episodes"] == 24
        assert e["overall"]["regret"] >= -1e-9, name  # nobody beats the exact oracle
        assert e["domains"]["Health"]["episodes"] == 12
    assert ag["oracle"]["overall"]["regret"] == pytest.approx(0.0, abs=1e-9)
    assert s["ranking"][-1] == "oracle" and ag["oracle"]["rank_label"] == "bound"  # a bound, after the ranked agents
    assert ag["answer-now"]["overall"]["num_questions"] == 0 and ag["ask-all"]["overall"]["num_questions"] == 10
    # Context-rich above context-free; a planner above both once questions cost something.
    assert ag["ask-all"]["overall"]["safety"] > ag["answer-now"]["overall"]["safety"] + 0.8
    assert ag["greedy"]["overall"]["net_reward"] > ag["ask-all"]["overall"]["net_reward"]
    # Every agent met the same users (common random numbers).
    rows = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines() if "__unit_done__" not in x]
    users = {a: sorted(r["scenario_id"] for r in rows if r["agent"] == a) for a in ag}
    assert len({tuple(u) for u in users.values()}) == 1
    with open(out / "leaderboard.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [r["agent"] for r in table] == s["ranking"]
    assert {p.name for p in out.glob("*.png")} == {"leaderboard_safety.png", "frontier.png", "regret.png"}
    wb = read_wandb_records(out)
    assert wb["history"]["leaderboard/greedy/Health/safety"] == [
        pytest.approx(ag["greedy"]["domains"]["Health"]["safety"])
    ]
    assert wb["summary"]["leaderboard/best_agent"] == s["ranking"][0] == s["reference"]


def test_leaderboard_resume_equals_uninterrupted(tmp_path, monkeypatch):
    args = [*TINY, "--no-wandb", "--no-plots", "--agents", "random-k", "static", "greedy", "oracle"]
    assert leaderboard.main([*args, "--out", str(tmp_path / "whole")]) == 0
    real = ResultsDir.append_unit
    calls = {"n": 0}

    def killed(self, unit, rows, **kw):
        if calls["n"] == 3:
            raise KeyboardInterrupt
        calls["n"] += 1
        real(self, unit, rows, **kw)

    monkeypatch.setattr(ResultsDir, "append_unit", killed)
    with pytest.raises(KeyboardInterrupt):
        leaderboard.main([*args, "--out", str(tmp_path / "resumed")])
    monkeypatch.setattr(ResultsDir, "append_unit", real)
    assert leaderboard.main([*args, "--out", str(tmp_path / "resumed")]) == 0
    run = json.loads((tmp_path / "resumed" / "summary.json").read_text())["run"]
    assert run["resumed_units"] == 3 and run["units"] == 8
    assert _summary(tmp_path / "resumed") == _summary(tmp_path / "whole")


def test_leaderboard_args_validation():
    with pytest.raises(ConfigError, match="unknown"):
        leaderboard.Args(agents=("gredy",))
    with pytest.raises(ConfigError, match="--ppo-path"):
        leaderboard.Args(agents=("ppo",))
    with pytest.raises(ConfigError, match="AGENT:KEY=VALUE"):
        leaderboard.Args(agent_option=("mcts-num_rollouts=3",))
    with pytest.raises(ConfigError, match="not among"):
        leaderboard.Args(agents=("greedy",), agent_option=("mcts:num_rollouts=3",))
    custom = f"{EXAMPLE}:RiskFirstAgent"
    a = leaderboard.Args(agents=(custom,), agent_option=("risk-first:threshold=0.8",))  # by its shown name
    assert a.agent_kwargs() == {custom: {"threshold": 0.8}}
    a = leaderboard.Args(agents=("raise",), agent_option=("raise:backend=openai:m@http://h:1/v1",))
    assert a.agent_kwargs()["raise"]["backend"] == "openai:m@http://h:1/v1"  # values may hold colons
    a = leaderboard.Args(agents=("mcts", "raise"), agent_option=("mcts:num_rollouts=30",), max_scenarios=0)
    assert a.max_scenarios is None
    assert a.agent_kwargs() == {"mcts": {"num_rollouts": 30}, "raise": {"embedding": "hashing"}}


def test_budget_end_to_end(tmp_path, capsys):
    out = tmp_path / "b"
    rc = budget.main(
        [
            "--domains",
            "Health",
            "--n-per-domain",
            "150",
            "--max-scenarios",
            "20",
            "--no-progress",
            "--no-wandb",
            "--ks",
            "1",
            "3",
            "--methods",
            "oracle",
            "mcts",
            "static",
            "random-k",
            "--num-rollouts",
            "40",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert "Safety with k questions" in capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    m = s["methods"]
    for k in ("1", "3"):
        assert m["oracle"][k]["safety"] >= max(m[x][k]["safety"] for x in ("mcts", "static", "random-k")) - 1e-9
        assert m["oracle"][k]["questions"] == int(k) and m["random-k"][k]["questions"] == int(k)
    assert m["static"]["3"]["safety"] > m["random-k"]["3"]["safety"]
    assert m["oracle"]["3"]["safety"] > s["context_rich"]["safety"] > s["context_free"]["safety"]  # a few beat all ten
    assert s["static_order"][:3] == ["Mental Health Status", "Emotional State", "Past Self-Harm History"]
    assert (out / "budget.png").exists()


def test_raise_table_end_to_end(tmp_path, capsys):
    out = tmp_path / "r"
    rc = raise_table.main([*TINY, "--responders", "mean", "mistral-7b", "--no-wandb", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "RAISE ablation per domain" in printed and "paper vanilla" in printed
    s = json.loads((out / "summary.json").read_text())
    for resp in ("mean", "mistral-7b"):
        o = s["responders"][resp]["overall"]
        assert o["+agent"]["safety"] > o["vanilla"]["safety"] + 0.5
        assert o["+planner"]["safety"] > o["vanilla"]["safety"] + 0.5
        assert o["vanilla"]["questions"] == 0 and 1 <= o["+planner"]["questions"] <= 10
    assert (
        s["responders"]["mistral-7b"]["overall"]["vanilla"]["safety"]
        < s["responders"]["mean"]["overall"]["vanilla"]["safety"]
    )
    assert {p.name for p in out.glob("*.png")} == {"raise_domains.png", "raise_responders.png"}


def test_experiments_on_a_scenario_file(tmp_path, capsys):
    """The same commands on data from a file (the published PENGUIN records load the same way)."""
    from penguin_gym.data import load_scenarios
    from penguin_gym.data.penguin import save_scenarios

    path = tmp_path / "scenarios.jsonl"
    save_scenarios(load_scenarios(domains=("Career", "Life"), n_per_domain=80, seed=3), path)
    common = ["--source", str(path), "--no-progress", "--no-wandb", "--no-plots"]
    assert context_gap_main([*common, "--responders", "mean", "--out", str(tmp_path / "cg")]) == 0
    s = json.loads((tmp_path / "cg" / "summary.json").read_text())
    assert set(s["responders"]["mean"]["domains"]) == {"Career", "Life"}
    rc = leaderboard.main(
        [*common, "--agents", "static", "greedy", "oracle", "--max-scenarios", "10", "--out", str(tmp_path / "lb")]
    )
    assert rc == 0
    lb = json.loads((tmp_path / "lb" / "summary.json").read_text())
    assert lb["ranking"][-1] == "oracle" and lb["agents"]["greedy"]["overall"]["episodes"] == 20


def context_gap_main(argv):
    from experiments import context_gap

    return context_gap.main(argv)
