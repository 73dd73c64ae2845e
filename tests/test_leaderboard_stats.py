"""The leaderboard's statistics (paired differences, tie ranks, bounds, the safety-penalized view), its
versioned summary schema, ``penguin-gym compare`` and ``penguin-gym leaderboard --from``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.stats import paired, rank_labels, tie_ranks
from experiments import cli, leaderboard

TINY = ["--domains", "Health", "--n-per-domain", "150", "--max-scenarios", "30", "--no-progress", "--no-wandb"]
TINY += ["--no-plots"]


def _run(tmp_path: Path, name: str, *agents: str, extra: tuple[str, ...] = ()) -> Path:
    out = tmp_path / name
    assert leaderboard.main([*TINY, "--out", str(out), "--agents", *agents, *extra]) == 0
    return out


def _rows(folder: Path) -> list[dict]:
    lines = (folder / "rows.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if "__unit_done__" not in x]


def _net(rows: list[dict], a: str, b: str) -> tuple[list[float], list[float]]:
    ra = {(r["domain"], r["scenario_id"]): r for r in rows if r["agent"] == a}
    rb = {(r["domain"], r["scenario_id"]): r for r in rows if r["agent"] == b}
    common = sorted(set(ra) & set(rb))
    return [ra[k]["net_reward"] for k in common], [rb[k]["net_reward"] for k in common]


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("lb"), "a", "answer-now", "static", "greedy", "random-k", "oracle")


def test_paired_differences_and_tie_ranks_agree_with_the_rows(board):
    s = json.loads((board / "summary.json").read_text())
    rows = _rows(board)
    ag = s["agents"]
    ref = s["reference"]
    assert ref == max((a for a in ag if not ag[a]["privileged"]), key=lambda a: ag[a]["overall"]["net_reward"])
    assert ag[ref]["vs_reference"]["overall"]["verdict"] == "reference"
    assert ag[ref]["vs_reference"]["overall"]["diff"] == 0.0
    for a in ag:
        if a == ref:
            continue
        want = paired(*_net(rows, a, ref))
        got = ag[a]["vs_reference"]["overall"]
        assert got["n"] == want.n == ag[a]["overall"]["episodes"] > 20
        assert got["diff"] == pytest.approx(want.diff) and got["ci95"] == pytest.approx(want.ci95)
        assert got["p_value"] == pytest.approx(want.p_value, nan_ok=True)
        assert got["prob_improvement"] == pytest.approx(want.prob_improvement)
        assert got["verdict"] == want.verdict
        assert ag[a]["vs_reference"]["domains"]["Health"]["diff"] == pytest.approx(want.diff)
    ranked = [a for a in s["ranking"] if not ag[a]["privileged"]]
    order = sorted(ranked, key=lambda a: -ag[a]["overall"]["net_reward"])
    ranks = tie_ranks(order, lambda y, x: paired(*_net(rows, y, x)).verdict == "better")
    assert {a: ag[a]["rank"] for a in ranked} == ranks
    assert {a: ag[a]["rank_label"] for a in ranked} == rank_labels(ranks)
    assert ag["answer-now"]["rank"] == len(ranked)  # everyone beats answering at once


def test_the_oracle_is_a_bound_not_ranked(board, capsys):
    s = json.loads((board / "summary.json").read_text())
    o = s["agents"]["oracle"]
    assert o["privileged"] is True and o["rank"] is None and o["rank_label"] == "bound"
    assert s["ranking"][-1] == "oracle" and s["ranking"][0] == s["reference"]
    assert all(not s["agents"][a]["privileged"] for a in s["ranking"][:-1])
    assert leaderboard.main(["--from", str(board)]) == 0
    printed = capsys.readouterr().out
    assert "│ bound │ oracle" in printed and "Safety-penalized ranking (penalty 1 per critical miss)" in printed
    words = " ".join(printed.split())
    assert "rank = 1 + the number of agents significantly better (paired 95% interval above 0)" in words


def test_schema_fields(board):
    s = json.loads((board / "summary.json").read_text())
    assert s["schema"] == "penguin-gym/leaderboard" and s["schema_version"] == 1
    from penguin_gym.registration import ENV_VERSION, env_id

    assert s["env"] == {"ids": {"Health": env_id("Health")}, "version": ENV_VERSION}
    assert s["judge"].startswith("simulated") and s["question_cost"] == 0.08 and s["budget"] is None
    assert s["data"]["source"] == "synthetic-v1" and s["data"]["split"] == "test"
    sizes = s["data"]["split_sizes"]["Health"]
    assert sizes["train"] > 0 and sizes["test"] > 0 and sizes["train"] + sizes["test"] == 150
    n = s["agents"]["greedy"]["overall"]["episodes"]
    assert n == min(30, sizes["test"]) and s["episodes_per_domain"] == {"Health": n}
    assert s["seed"] == 0 and s["miss_penalty"] == 1.0
    g = s["agents"]["greedy"]
    assert g["spec"] == "greedy" and g["label"] == "greedy" and isinstance(g["options"], dict)
    assert len(g["code_version"]) == 12 and g["llm"] is None and g["privileged"] is False
    o = g["overall"]
    assert o["critical_miss_low"] <= o["critical_miss_rate"] <= o["critical_miss_high"]
    assert "penalized_net_reward" in o and "net_reward_ci95" in o
    meta = [json.loads(x)["meta"] for x in (board / "rows.jsonl").read_text().splitlines() if "__unit_done__" in x]
    assert all("privileged" in m and "trained_on" in m for m in meta)
    header = (board / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert {"vs_best_diff", "vs_best_verdict", "critical_miss_low", "penalized_net_reward", "privileged"} <= set(header)


def test_a_huge_miss_penalty_drops_the_agent_that_misses(tmp_path):
    out = _run(tmp_path, "p", "static", "random-k", extra=("--miss-penalty", "50"))
    s = json.loads((out / "summary.json").read_text())
    ag = s["agents"]
    assert ag["random-k"]["overall"]["critical_misses"] > 0 == ag["static"]["overall"]["critical_misses"]
    assert s["penalized_ranking"][0] == "static" and ag["random-k"]["penalized_rank"] == 2
    # the same rows without the view: no penalized ranking
    assert leaderboard.main([*TINY, "--out", str(out), "--agents", "static", "random-k", "--miss-penalty", "0"]) == 0
    s0 = json.loads((out / "summary.json").read_text())
    assert s0["penalized_ranking"] == [] and "penalized_net_reward" not in s0["agents"]["static"]["overall"]


def test_compare_runs_both_and_prints_a_verdict(tmp_path, capsys):
    argv = ["compare", "greedy", "mcts", *TINY, "--agent-option", "mcts:num_rollouts=20", "--runs-dir", str(tmp_path)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if x.strip().startswith("net reward: greedy - mcts = "))
    assert line.endswith(("greedy better", "mcts better", "no significant difference"))
    assert "P(greedy > mcts) = " in line and "users both met):" in printed and "overall (" in printed


def test_compare_from_one_folder(board, capsys):
    assert cli.main(["compare", "greedy", "random-k", "--from", str(board)]) == 0
    printed = capsys.readouterr().out
    rows = _rows(board)
    want = paired(*_net(rows, "greedy", "random-k"))
    assert f"net reward: greedy - random-k = {want.diff:+.3f}" in printed
    assert cli.main(["compare", "greedy", "mcts", "--from", str(board)]) == 2
    err = capsys.readouterr().err
    assert "'mcts' is not an agent of" in err and "'greedy'" in err and len(err.strip().splitlines()) == 1


def test_leaderboard_from_two_folders_ranks_the_union(tmp_path, board, capsys):
    other = _run(tmp_path, "b", "ask-all", "greedy")
    merged = tmp_path / "merged"
    assert cli.main(["leaderboard", "--from", str(board), str(other), "--out", str(merged)]) == 0
    printed = capsys.readouterr().out
    assert "ask-all" in printed
    s = json.loads((merged / "summary.json").read_text())
    assert set(s["agents"]) == {"answer-now", "static", "random-k", "oracle", "ask-all", "greedy@a", "greedy@b"}
    assert s["ranking"][-1] == "oracle" and len(s["ranking"]) == 7
    assert s["agents"]["greedy@a"]["rank"] == s["agents"]["greedy@b"]["rank"]  # the same agent on the same users
    assert not (board / "merged").exists() and sorted(p.name for p in other.iterdir()) == sorted(
        ["config.json", "rows.jsonl", "summary.json", "leaderboard.csv", "leaderboard_domains.csv", ".lock"]
    )
    # two folders, A from the first and B from the second
    assert cli.main(["compare", "ask-all", "static", "--from", str(other), str(board)]) == 0
    assert "net reward: ask-all - static = " in capsys.readouterr().out


def test_incompatible_folders_are_refused(tmp_path, board, capsys):
    other = _run(tmp_path, "c", "greedy", extra=("--question-cost", "0.2"))
    assert cli.main(["leaderboard", "--from", str(board), str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "question_cost 0.2 vs 0.08" in err and str(other) in err
    assert cli.main(["compare", "greedy", "greedy", "--from", str(board), str(other)]) == 2
    assert "question_cost" in capsys.readouterr().err
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "summary.json").write_text('{"agents": {}}')
    assert cli.main(["leaderboard", "--from", str(tmp_path / "old")]) == 1
    assert "no 'schema_version'" in capsys.readouterr().err


AGENT = """
from agents import RaiseAgent
from penguin_gym.judges.backends import make_backend


class Unusable(RaiseAgent):
    name = "unusable-llm"

    def __init__(self):
        super().__init__(
            variant="agent", backend=make_backend("scripted", replies=lambda messages: "no idea"), embedding="hashing"
        )
"""


def test_max_fallback_rate_stops_and_keeps_the_rows(tmp_path, capsys):
    path = tmp_path / "unusable.py"
    path.write_text(AGENT)
    out = tmp_path / "f"
    argv = ["benchmark", *TINY, "--max-scenarios", "5", "--out", str(out), "--agents", f"{path}:Unusable"]
    assert cli.main([*argv, "--max-fallback-rate", "0.5"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "'unusable-llm' on Health" in err and "--max-fallback-rate 0.5" in err and "LLM replies" in err
    lines = (out / "rows.jsonl").read_text().splitlines()
    marker = json.loads(lines[-1])
    assert marker["__unit_done__"] == f"{path}:Unusable|Health" and marker["rows"] == 5
    assert marker["meta"]["llm"]["fallbacks"] > 0 and marker["meta"]["privileged"] is False
    # the rows are kept: without the limit the run resumes and records the usage
    assert cli.main(argv) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["run"]["resumed_units"] == 1 and s["agents"]["unusable-llm"]["llm"]["calls"] > 0
