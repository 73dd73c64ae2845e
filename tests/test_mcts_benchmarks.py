"""The MCTS benchmarks run as a user would run them (tiny sizes; no timing is asserted)."""

from __future__ import annotations

from benchmarks import mcts_sample_efficiency, mcts_speed


def test_speed_benchmark_prints_ratios(capsys) -> None:  # type: ignore[no-untyped-def]
    assert mcts_speed.main(["--users", "16", "--reference-users", "2", "--rollouts", "20"]) == 0
    out = capsys.readouterr().out
    assert "fast path / reference:" in out and "reference made 40 judge calls for 40 rollouts" in out


def test_sample_efficiency_benchmark(capsys) -> None:  # type: ignore[no-untyped-def]
    assert mcts_sample_efficiency.main(["--users", "20", "--n-per-domain", "40", "--max-rollouts", "100"]) == 0
    out = capsys.readouterr().out
    assert "median rollouts to the best set: guided" in out and "plain UCT (no prior)" in out
