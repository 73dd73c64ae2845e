"""The ``penguin-gym`` command: help for every command, dispatch, errors, and a piped game of ``play``."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from experiments import cli, play

SCRIPT = Path(sys.executable).parent / "penguin-gym"


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], input=stdin, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is not installed in this environment")
def test_console_script_help_lists_every_command():
    res = _run("--help")
    assert res.returncode == 0, res.stderr
    for name in cli.COMMANDS:
        assert name in res.stdout
    assert "penguin-gym benchmark" in res.stdout  # the examples
    sub = _run("context-gap", "--help")
    assert sub.returncode == 0 and "usage: penguin-gym context-gap" in sub.stdout and "--responders" in sub.stdout


def test_top_level_help_and_version(capsys):
    assert cli.main([]) == 0
    assert "commands:" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
    assert "penguin-gym 0." in capsys.readouterr().out


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_command_has_help(name, capsys):
    module = cli.COMMANDS[name].module
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not in this checkout yet")
    assert cli.main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage:" in out and "--help" in out


def test_aliases_and_unknown_commands(capsys):
    assert cli.main(["leaderboard", "--help"]) == 0
    assert "usage: penguin-gym benchmark" in capsys.readouterr().out
    assert cli.main(["contxt-gap"]) == cli.USAGE_ERROR
    assert "did you mean 'context-gap'" in capsys.readouterr().err


def test_a_missing_module_is_reported(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "train-ppo", cli.Command("experiments.no_such_module", "x"))
    assert cli.main(["train-ppo", "--help"]) == 1
    assert "experiments.no_such_module is not part of this installation" in capsys.readouterr().err


def test_usage_and_config_errors_exit_2(capsys):
    assert cli.main(["context-gap", "--domains", "Helth"]) == 2
    assert "unknown" in capsys.readouterr().err
    assert (
        cli.main(["attributes", "--no-progress", "--no-wandb", "--judge", "simulated:gpt-5", "--domains", "Health"])
        == 2
    )
    err = capsys.readouterr().err
    assert "penguin-gym attributes: error: unknown responder preset 'gpt-5'" in err


def test_envs_command(capsys):
    assert cli.main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "Penguin-Health-v2" in out and "Penguin-All-v2" in out


def test_context_gap_through_the_cli(tmp_path, capsys):
    rc = cli.main(
        [
            "context-gap",
            "--domains",
            "Health",
            "--n-per-domain",
            "100",
            "--responders",
            "mean",
            "--no-progress",
            "--no-wandb",
            "--no-plots",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert rc == 0
    assert (tmp_path / "r" / "summary.json").exists()


# -- play ----------------------------------------------------------------------------------------------
def _expected(actions):
    env = gym.make("Penguin-Health-v2", split="test")
    env.reset(seed=0)
    total = 0.0
    for a in actions:
        _, r, term, _, info = env.step(a)
        total += r
        if term:
            return info, total
    raise AssertionError("episode did not end")


def test_play_in_process_matches_the_env():
    args = play.Args(env="Penguin-Health-v2", seed=0)
    res = play.play(args, stdin=io.StringIO("7\nself\nnonsense\n7\n10\n"))
    info, total = _expected([7, 8, 10])  # 'self' = Past Self-Harm History; the bad and repeated moves are refused
    assert res["questions"] == ["Mental Health Status", "Past Self-Harm History"]
    assert res["safety"] == pytest.approx(info["safety"])
    assert res["return"] == pytest.approx(total)
    assert res["best"]["return"] >= res["return"] - 1e-9  # the oracle's best set is at least as good


def test_play_end_of_input_answers():
    res = play.play(play.Args(env="Penguin-Health-v2", seed=0), stdin=io.StringIO("9\n"))
    assert res["questions"] == ["Emotional State"]


def test_parse_move():
    assert play.parse_move("10", set()) == 10 and play.parse_move("a", set()) == 10
    assert play.parse_move("mental", set()) == 7 and play.parse_move(" 3 ", set()) == 3
    with pytest.raises(ValueError, match="already asked"):
        play.parse_move("7", {7})
    with pytest.raises(ValueError, match="matches"):
        play.parse_move("status", set())  # ambiguous
    with pytest.raises(ValueError, match="not a move"):
        play.parse_move("11", set())


@pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is not installed in this environment")
def test_play_console_script_with_piped_answers():
    res = _run("play", "--env", "Penguin-Health-v2", "--seed", "0", stdin="7\n8\n10\n")
    assert res.returncode == 0, res.stderr
    info, total = _expected([7, 8, 10])
    assert "Could you tell me about your mental health status?" in res.stdout
    assert f"{info['safety']:.2f}" in res.stdout and f"{total:.2f}" in res.stdout
    assert "The user's background" in res.stdout
