"""Every benchmark runs once at its ``--quick`` size, as a user runs it, so that none rots; and its exit
status says whether a target was missed.

No timing is asserted. A speed target is gated only at the size it was set for (``benchmarks.targets``),
so a quick run reports it and exits 0 however slow the machine; the wiring from a missed target to exit
status 1 is checked with a target given explicitly that no run can meet (an explicit target is gated at
any size). The machine-independent targets (the judge's calibration, the planner's sample efficiency)
are gated at the quick size too, which they meet.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.targets import Target, check, goal, parse

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
IMPOSSIBLE = ["--min-ratio", "1e12"]

# module -> (a line fragment its quick run prints with its measurement, the options of a run that must
# miss a gated target, or None where that run is left to the unit tests of benchmarks.targets because
# the benchmark is among the slow ones: training or a transformers model).
QUICK = {
    "generator_speed": ("generate 350 scenarios:", ["--max-seconds", "0"]),
    "vector_throughput": ("PenguinVectorEnv (numpy)", ["--min-rate", "1e12"]),
    "mcts_speed": ("fast path / reference:", IMPOSSIBLE),
    "mcts_sample_efficiency": ("median rollouts to the best set: guided", IMPOSSIBLE),
    "judge_calibration": ("all calibration targets met", None),  # a miss: test_calibration_miss_exits_1
    "ppo_oracle": ("held-out test split, oracle mean net reward", None),
    "judge_cache": ("speed-up cached / first: new run", None),
    "judge_batching": ("speed-up batched / one at a time:", None),
}
NEEDS_TRANSFORMERS = {"judge_cache", "judge_batching"}
# Run by another test: the real LLM needs a server (its test scripts one on 127.0.0.1).
ELSEWHERE = {"real_llm": "tests/test_real_llm_benchmark.py"}
SUBPROCESS = {"env_throughput"}  # test_env_throughput_quick_run


def _main(name: str) -> Callable[[list[str] | None], int]:
    if name in NEEDS_TRANSFORMERS:
        pytest.importorskip("torch")
        pytest.importorskip("transformers")
        pytest.importorskip("tokenizers")
    return importlib.import_module(f"benchmarks.{name}").main


def test_every_benchmark_is_run_by_a_test() -> None:
    scripts = {p.stem for p in BENCHMARKS.glob("*.py")} - {"__init__", "targets"}
    assert scripts == set(QUICK) | set(ELSEWHERE) | SUBPROCESS, "a benchmark no test runs would rot: add it"
    for test in ELSEWHERE.values():
        assert (BENCHMARKS.parent / test).exists(), test


@pytest.mark.parametrize("name", sorted(QUICK))
def test_quick_run_reports_its_measurement_and_exits_0(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    main = _main(name)
    status = main(["--quick"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert QUICK[name][0] in out, out
    if name not in ("judge_calibration", "mcts_sample_efficiency"):
        # a speed target missed or met at the quick size does not count: said, not gated
        assert "not gated: a run smaller than the target's size" in out, out
        assert "MISSED" not in out


@pytest.mark.parametrize("name", sorted(n for n, (_, miss) in QUICK.items() if miss is not None))
def test_a_missed_target_exits_1_and_says_which(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    miss = QUICK[name][1]
    assert miss is not None
    status = _main(name)(["--quick", *miss])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "NOT met" in out and "MISSED: " in out, out


def test_calibration_miss_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from penguin_gym.judges import SimulatedJudgeParams

    params = SimulatedJudgeParams.load().to_dict()
    params["kappa"] = 0.5  # far weaker diminishing returns: the gains leave the paper's range
    path = tmp_path / "params.json"
    path.write_text(json.dumps(params))
    status = _main("judge_calibration")(["--quick", "--params", str(path)])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "MISSED:" in out and "gain" in out


def test_quick_sizes_are_defaults_that_explicit_options_override() -> None:
    import argparse

    def parser() -> argparse.ArgumentParser:
        ap = argparse.ArgumentParser()
        ap.add_argument("--users", type=int, default=1024)
        ap.add_argument("--rollouts", type=int, default=300)
        ap.add_argument("--baselines", default="a,b,c")
        return ap

    quick = {"users": 16, "rollouts": 20, "baselines": "a"}
    args, full = parse(parser(), [], quick)
    assert (args.users, args.rollouts, args.quick, full) == (1024, 300, False, True)
    args, full = parse(parser(), ["--quick"], quick)
    assert (args.users, args.rollouts, args.baselines, full) == (16, 20, "a", False)
    args, full = parse(parser(), ["--quick", "--users", "2048", "--rollouts", "300"], quick)
    assert (args.users, args.rollouts, full) == (2048, 300, True)  # a string option is not a size
    _, full = parse(parser(), ["--users", "512"], quick)
    assert not full
    _, full = parse(parser(), ["--rollouts", "20"], quick, sizes=("users",))  # rollouts named no size
    assert full


def test_goal_gates_explicit_targets_at_any_size() -> None:
    assert goal(None, 50.0, full_size=True) == (50.0, True)
    assert goal(None, 50.0, full_size=False) == (50.0, False)
    assert goal(7.0, 50.0, full_size=False) == (7.0, True)


def test_check_fails_only_on_a_gated_miss(capsys: pytest.CaptureFixture[str]) -> None:
    met = Target("speed", 60.0, 50.0, unit="x")
    missed = Target("rate", 9.0, 20.0, unit="x")
    slow = Target("time", 4.0, 3.0, unit=" s", at_most=True)
    reported = Target("rate", 9.0, 20.0, unit="x", gated=False)
    assert check([met, reported]) == 0
    out = capsys.readouterr().out
    assert "target speed >= 50.0x: met (60.0x)" in out
    assert "target rate >= 20.0x: NOT met (9.0x); not gated" in out and "MISSED" not in out
    assert check([met, missed, slow]) == 1
    out = capsys.readouterr().out
    assert "target time <= 3.0 s: NOT met (4.0 s)" in out and "MISSED: rate, time" in out
    assert not Target("never reached", float("inf"), 300.0, at_most=True).met
    assert not Target("no measurement", float("nan"), 1.0).met


def test_a_benchmark_run_as_a_script_returns_its_status_to_the_shell() -> None:
    """``python -m benchmarks.<name>`` exits with main's status (here the lightest benchmark, missing)."""
    import subprocess

    cmd = [sys.executable, "-m", "benchmarks.generator_speed", "--quick", "--max-seconds", "0"]
    run = subprocess.run(cmd, capture_output=True, cwd=BENCHMARKS.parent)
    assert run.returncode == 1 and b"MISSED: seconds to generate 350 scenarios" in run.stdout, run.stderr.decode()


def test_env_throughput_quick_run() -> None:
    """Run as a script: its quick run exits 0 with both cases' ratios printed (not gated at that size),
    and an impossible explicit target exits 1."""
    import subprocess

    cmd = [sys.executable, "-m", "benchmarks.env_throughput"]
    run = subprocess.run([*cmd, "--quick"], capture_output=True, text=True, cwd=BENCHMARKS.parent)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("/ CartPole-v1:") >= 2 and "as agents play" in run.stdout, run.stdout
    miss = subprocess.run(
        [*cmd, "--quick", "--min-ratio", "1e9"], capture_output=True, text=True, cwd=BENCHMARKS.parent
    )
    assert miss.returncode == 1 and "NOT met" in miss.stdout, miss.stdout + miss.stderr
