"""The reproduction check (``experiments.reproduce_raise``) runs end to end with a tiny budget."""

from __future__ import annotations

import json

from experiments import reproduce_raise


def test_quick_run_writes_the_tables(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "repro.json"
    assert reproduce_raise.main(["--quick", "--domains", "Health", "Career", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [r["domain"] for r in data["table2"]] == ["Health", "Career"]
    for r in data["table2"]:
        assert r["vanilla_questions"] == 0.0 and 1.0 <= r["+agent_questions"] <= 5.0
        assert r["vanilla_safety"] < r["+agent_safety"] and r["+planner_net"] <= r["oracle_net"] + 1e-9
    k3 = {r["agent"]: r for r in data["k3"]}
    assert set(k3) == {"oracle (best 3-subset)", "MCTS (true profile)", "MCTS (belief)", "static top-3", "random 3"}
    assert all(k3["oracle (best 3-subset)"]["safety"] >= r["safety"] - 1e-9 for r in k3.values())
    printed = capsys.readouterr().out
    assert "Budget k = 3" in printed and "checks:" in printed


def test_strict_exit_status_and_bad_domain(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import pytest

    with pytest.raises(SystemExit) as e:
        reproduce_raise.main(["--domains", "Space"])
    assert e.value.code == 2
    assert "unknown" in capsys.readouterr().err
