"""The shared experiment machinery: args as a CLI, the resumable results folder, statistics, W&B."""

from __future__ import annotations

import json
import math
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from agents.stats import mean_ci95, t975
from experiments.args import DataArgs, JudgeArgs, RunArgs, arg, config_dict, parse_args
from experiments.judging import build_judge, judge_responders
from experiments.results import ResultsDir, config_hash
from experiments.scenarios import load_domains
from experiments.tracking import wandb_mode
from penguin_gym.error import ConfigError, DataFormatError


# -- W&B offline run files -----------------------------------------------------------------------------
def read_wandb_records(run_root: Path, timeout: float = 20.0) -> dict[str, object]:
    """Read an offline W&B run under ``run_root`` (its ``.wandb`` file, a LevelDB-style log of protobuf
    records): returns ``{"config": {...}, "history": {key: [values]}, "summary": {key: value}}``.

    W&B's service process may still be writing the file when ``run.finish()`` returns, so this waits
    (up to ``timeout`` seconds) for the run's closing ``exit`` record."""
    deadline = time.monotonic() + timeout
    while True:
        records = _wandb_records(run_root)
        if any(kind == "exit" for kind, _ in records) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert any(kind == "exit" for kind, _ in records), f"the W&B run under {run_root} was never closed"
    out: dict[str, dict] = {"config": {}, "history": {}, "summary": {}}
    for kind, rec in records:
        if kind == "run":
            for item in rec.run.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "history":
            for item in rec.history.item:
                key = item.key or "/".join(item.nested_key)
                out["history"].setdefault(key, []).append(json.loads(item.value_json))
        elif kind == "summary":
            for item in rec.summary.update:
                out["summary"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return out


def _wandb_records(run_root: Path) -> list[tuple[str, object]]:
    from wandb.proto import wandb_internal_pb2 as pb

    files = sorted(run_root.glob("wandb/offline-run-*/run-*.wandb"))
    assert files, f"no offline W&B run under {run_root}"
    data = files[-1].read_bytes()
    assert data[:4] == b":W&B"
    block, pos, buf, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        if kind == 0 and length == 0:
            break
        if pos + length > len(data):
            break  # a record still being written
        chunk, pos = data[pos : pos + length], pos + length
        if kind == 1:
            records.append(chunk)
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            records.append(buf + chunk)
            buf = b""
    parsed = []
    for raw in records:
        rec = pb.Record()
        rec.ParseFromString(raw)
        parsed.append((rec.WhichOneof("record_type"), rec))
    return parsed


# -- args ----------------------------------------------------------------------------------------------
@dataclass
class _Args(DataArgs, RunArgs):
    k: int = arg(3, "an int")
    names: tuple[str, ...] = arg(("a", "b"), "names")
    ratio: float | None = arg(None, "an optional float")

    def __post_init__(self) -> None:
        self.validate_data()
        if self.k < 1:
            raise ConfigError(f"--k = {self.k} must be >= 1")


def test_parse_args_types_defaults_and_flags():
    a = parse_args(_Args, [])
    assert (a.k, a.names, a.ratio, a.wandb, a.split) == (3, ("a", "b"), None, True, "test")
    a = parse_args(_Args, ["--k", "5", "--names", "x", "y", "z", "--ratio", "0.5", "--no-wandb", "--domains", "Health"])
    assert (a.k, a.names, a.ratio, a.wandb, a.domains) == (5, ("x", "y", "z"), 0.5, False, ("Health",))


def test_parse_args_validation_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        parse_args(_Args, ["--k", "0"])
    assert e.value.code == 2
    assert "--k = 0 must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(_Args, ["--domains", "Helth"])
    assert "unknown" in capsys.readouterr().err


def test_help_groups_sections(capsys):
    with pytest.raises(SystemExit) as e:
        parse_args(_Args, ["--help"], prog="x")
    assert e.value.code == 0
    out = capsys.readouterr().out
    for section in ("experiment options:", "data:", "output:", "tracking (Weights & Biases):"):
        assert section in out


def test_config_hash_ignores_presentation_options():
    a = config_dict(parse_args(_Args, ["--no-wandb", "--no-progress"]), hashed_only=True)
    b = config_dict(parse_args(_Args, []), hashed_only=True)
    c = config_dict(parse_args(_Args, ["--k", "4"]), hashed_only=True)
    assert config_hash("e", a) == config_hash("e", b) != config_hash("e", c)


# -- statistics ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("df", "exact"), [(1, 12.706), (5, 2.571), (12, 2.179), (20, 2.086), (30, 2.042), (100, 1.984), (10_000, 1.960)]
)
def test_t975_matches_tables(df, exact):
    assert t975(df) == pytest.approx(exact, abs=2e-3)


def test_mean_ci95():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    m, ci = mean_ci95(x)
    assert m == 2.5
    assert ci == pytest.approx(3.182 * x.std(ddof=1) / 2, rel=1e-3)
    m1, c1 = mean_ci95([3.0])
    assert m1 == 3.0 and math.isnan(c1)  # one value: no interval
    with pytest.raises(ValueError):
        mean_ci95([])


# -- results folder ------------------------------------------------------------------------------------
def test_results_dir_resumes_units(tmp_path):
    r = ResultsDir("exp", {"a": 1}, runs_dir=tmp_path)
    assert r.path == tmp_path / f"exp-{r.hash}"
    r.append_unit("u1", [{"x": 1}, {"x": 2}])
    r.append_unit("u2", [{"x": 3}])
    with pytest.raises(ValueError):
        r.append_unit("u1", [])
    again = ResultsDir("exp", {"a": 1}, runs_dir=tmp_path)
    assert again.done_units == {"u1", "u2"} and again.resumed_units == 2
    assert [row["x"] for row in again.rows(["u2", "u1"])] == [3, 1, 2]
    assert ResultsDir("exp", {"a": 2}, runs_dir=tmp_path).done_units == frozenset()  # another config, another folder


def test_results_dir_drops_cut_off_units(tmp_path):
    r = ResultsDir("exp", {"a": 1}, runs_dir=tmp_path)
    r.append_unit("u1", [{"x": 1}])
    with open(r.rows_path, "a") as fh:  # a kill: one row of u2 written, no marker, then half a line
        fh.write(json.dumps({"x": 2}) + "\n" + '{"x": 3, "y"')
    again = ResultsDir("exp", {"a": 1}, runs_dir=tmp_path)
    assert again.done_units == {"u1"}
    assert r.rows_path.read_text().count("\n") == 2  # the file was repaired: u1's row and its marker
    again.append_unit("u2", [{"x": 2}, {"x": 3}])
    assert [row["x"] for row in ResultsDir("exp", {"a": 1}, runs_dir=tmp_path).rows()] == [1, 2, 3]


def test_results_dir_errors(tmp_path):
    r = ResultsDir("exp", {"a": 1}, out=tmp_path / "here")
    with pytest.raises(ConfigError, match="another configuration"):
        ResultsDir("exp", {"a": 2}, out=tmp_path / "here")
    assert ResultsDir("exp", {"a": 2}, out=tmp_path / "here", fresh=True).done_units == frozenset()
    r = ResultsDir("exp", {"a": 3}, runs_dir=tmp_path)
    r.rows_path.write_text("not json\n")
    with pytest.raises(DataFormatError, match=r"rows.jsonl:1"):
        ResultsDir("exp", {"a": 3}, runs_dir=tmp_path)


def test_load_domains_sample_is_stable():
    a = DataArgs(domains=("Health", "Career"), n_per_domain=100, max_scenarios=7)
    one = load_domains(a)
    two = load_domains(DataArgs(domains=("Career",), n_per_domain=100, max_scenarios=7))
    assert list(one) == ["Career", "Health"]  # DOMAINS order
    assert [s.id for s in one["Career"]] == [s.id for s in two["Career"]]
    assert all(len(v) == 7 and all(s.split == "test" for s in v) for v in one.values())


def test_build_judge_specs():
    j = build_judge(JudgeArgs(responder="gpt-4o"))
    assert j.name.endswith("/gpt-4o")
    with pytest.raises(ConfigError, match="--judge llm needs"):
        build_judge(JudgeArgs(judge="llm"))
    with pytest.raises(ConfigError, match="unknown responder"):
        build_judge(JudgeArgs(responder="gpt-5"))
    assert judge_responders(JudgeArgs(), ("all",))[0] == "mean"
    assert len(judge_responders(JudgeArgs(), ("all",))) == 7


def test_wandb_mode_auto(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert wandb_mode("auto") == "offline"
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    (tmp_path / "netrc").chmod(0o600)
    assert wandb_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode("auto") is None  # W&B reads WANDB_MODE itself
    assert wandb_mode("offline") == "offline"
