"""experiments/train_ppo.py end to end with a tiny budget: files, and W&B offline runs read back."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from experiments.train_ppo import Args, main

TINY = ["--timesteps", "1024", "--n-envs", "8", "--n-steps", "64", "--batch-size", "128", "--eval-freq", "512"]
TINY += ["--eval-episodes", "40", "--no-progress"]


def _wandb_records(path: Path) -> Iterator[Any]:
    """The records of a ``.wandb`` transaction log (W&B's LevelDB-style log of protobuf ``Record``s).

    wandb 0.31 has no Python reader of its own (its core is in Go), so this follows the format: a 7-byte
    header (``:W&B``, magic 0xBEE1, version), then 32 KiB blocks of chunks, each with a 7-byte header
    (crc32, length, type: 1 full, 2 first, 3 middle, 4 last).
    """
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    ident, magic, _version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B" and magic == 0xBEE1, (ident, magic)
    pos, block, buf = 7, 32 * 1024, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:  # zero padding to the end of the block
            pos += left
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(buf)
            yield record


def _read_run(out: Path) -> dict[str, Any]:
    files = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    config: dict[str, Any] = {}
    artifacts: list[tuple[str, str, list[str]]] = []
    for r in _wandb_records(files[0]):
        kind = r.WhichOneof("record_type")
        if kind == "history":
            history.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item})
        elif kind == "summary":
            summary.update({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.summary.update})
        elif kind == "run":
            config.update({i.key: json.loads(i.value_json) for i in r.run.config.update})
        elif kind == "artifact":
            artifacts.append((r.artifact.name, r.artifact.type, [m.path for m in r.artifact.manifest.contents]))
    return {"history": history, "summary": summary, "config": config, "artifacts": artifacts}


def test_train_ppo_logs_config_curves_evals_and_the_model_to_wandb_offline(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main([*TINY, "--out", str(out), "--wandb-mode", "offline", "--checkpoint-freq", "512"]) == 0
    for name in ("final_model.zip", "best_model.zip", "progress.csv", "evaluations.csv", "summary.json", "config.json"):
        assert (out / name).exists(), name
    assert len(list((out / "checkpoints").glob("ppo_*_steps.zip"))) == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["timesteps"] == 1024 and 1.0 <= summary["final"]["safety"] <= 5.0

    run = _read_run(out)
    # The config, with the command line's values.
    assert run["config"]["timesteps"] == 1024 and run["config"]["env_id"] == "Penguin-Health-v2"
    assert run["config"]["ppo"]["n_envs"] == 8 and run["config"]["eval_freq"] == 512
    # Learning curves and evaluations, against the env steps.
    evals = [h for h in run["history"] if "eval/net_reward" in h]
    assert [h["global_step"] for h in evals] == [512, 1024]
    assert evals[-1]["eval/net_reward"] == pytest.approx(summary["final"]["net_reward"])
    for key in ("eval/safety", "eval/questions", "eval/regret", "eval/oracle_fraction"):
        assert key in evals[-1]
    for key in ("rollout/ep_rew_mean", "rollout/ep_len_mean", "time/fps", "train/value_loss", "train/entropy_loss"):
        assert any(key in h for h in run["history"]), key
    # Final metrics in the summary; the final model as an artifact.
    assert run["summary"]["final/net_reward"] == pytest.approx(summary["final"]["net_reward"])
    assert run["summary"]["final/wall_time_s"] > 0
    assert run["artifacts"] == [("ppo-Penguin-Health-v2-s0", "model", ["final_model.zip"])]


def test_no_wandb_writes_no_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "plain"
    assert main([*TINY, "--out", str(out), "--no-wandb", "--eval-freq", "0", "--cost", "0.1", "--budget", "3"]) == 0
    assert not (out / "wandb").exists()
    assert (out / "final_model.zip").exists()
    # --eval-freq 0: the final policy only is evaluated, once.
    assert len((out / "evaluations.csv").read_text().strip().splitlines()) == 2
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["cost"] == 0.1 and config["budget"] == 3
    printed = capsys.readouterr().out
    assert "held-out (test split) evaluations" in printed and "% of oracle" in printed


def test_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "--featurizer" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["--env-id", "Penguin-Nowhere-v2"])
    assert e.value.code == 2
    assert "not a penguin id" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--timesteps", "0"])


def test_args_dataclass_defaults() -> None:
    args = Args()
    assert args.env_id == "Penguin-Health-v2" and args.wandb and args.featurizer == "hashing"
    assert args.env_kwargs() == {"judge": "simulated", "question_cost": 0.08, "budget": None, "featurizer": "hashing"}


def test_train_ppo_with_advice_trains_an_advised_policy_with_its_defaults(tmp_path: Path) -> None:
    from agents.ppo import PPOAgent

    out = tmp_path / "advised"
    argv = [*TINY, "--env-id", "Penguin-Health-Guarded-v0", "--advice", "greedy", "--out", str(out), "--no-wandb"]
    assert main(argv) == 0
    ppo = json.loads((out / "config.json").read_text())["config"]["ppo"]
    assert ppo["advice"] == "greedy" and ppo["learning_rate"] == 1e-4 and ppo["lr_schedule"] == "linear"
    assert ppo["ent_coef"] == 0.0
    assert PPOAgent.load(out / "final_model.zip").advice == "greedy"
    curves = (out / "progress.csv").read_text().splitlines()
    col = curves[0].split(",").index("train/advice_scale")
    betas = [float(line.split(",")[col]) for line in curves[1:] if line.split(",")[col]]
    assert betas and all(30 < b < 50 for b in betas)  # beta is logged each rollout, near its initial 40
    # an explicit option wins over the advised default
    out2 = tmp_path / "advised-lr"
    assert main([*argv[:-3], "--out", str(out2), "--no-wandb", "--learning-rate", "3e-4", "--eval-freq", "0"]) == 0
    assert json.loads((out2 / "config.json").read_text())["config"]["ppo"]["learning_rate"] == 3e-4


def test_train_ppo_advice_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--advice", "oracle"])
    assert e.value.code == 2 and "--advice = 'oracle'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--advice", "greedy", "--flatten"])
    assert "drop --flatten" in capsys.readouterr().err
