"""Damaged files give one clear line naming the file (and line, field) and the fix: results folders,
score tables and judge caches; a results folder is locked while a run writes it; the CLI's exit statuses
(2 for a usage error, 1 for a failed run)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from experiments import build_table, cli
from experiments.results import ResultsDir
from penguin_gym.data import ATTRIBUTES, load_scenarios
from penguin_gym.error import ConfigError, DataFormatError, PenguinError, ResultsLockedError
from penguin_gym.judges import SimulatedJudge
from penguin_gym.judges.cache import CachedJudge, judge_names, read_judgments
from penguin_gym.judges.table import TABLE_FORMAT, ScoreTable

ROOT = Path(__file__).resolve().parents[1]
FRESH_FIX = "rerun with --fresh or choose another --out"


def _message(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, f"not one line: {msg!r}"
    return msg


# -- results folders -----------------------------------------------------------------------------------
def _results(path: Path) -> ResultsDir:
    return ResultsDir("exp", {"a": 1}, out=path, row_fields=("x",))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A results folder: config.json and rows.jsonl with rows x=1, x=2 (lines 1, 2) and u1's marker (line 3)."""
    out = tmp_path / "run"
    with _results(out) as r:
        r.append_unit("u1", [{"x": 1}, {"x": 2}])
    return out


def _set_config(text: str | bytes) -> Callable[[Path], None]:
    def corrupt(out: Path) -> None:
        p = out / "config.json"
        p.write_bytes(text.encode() if isinstance(text, str) else text)

    return corrupt


def _truncate_config(out: Path) -> None:
    p = out / "config.json"
    text = p.read_text()
    p.write_text(text[: len(text) // 2])


def _drop_hash(out: Path) -> None:
    p = out / "config.json"
    cfg = json.loads(p.read_text())
    del cfg["hash"]
    p.write_text(json.dumps(cfg))


def _no_config(out: Path) -> None:
    (out / "config.json").unlink()


def _summary_no_config(out: Path) -> None:
    (out / "config.json").unlink()
    (out / "rows.jsonl").unlink()
    (out / "summary.json").write_text("{}\n")


def _set_line(lineno: int, text: bytes) -> Callable[[Path], None]:
    def corrupt(out: Path) -> None:
        p = out / "rows.jsonl"
        lines = p.read_bytes().splitlines(keepends=True)
        lines[lineno - 1] = text + b"\n"
        p.write_bytes(b"".join(lines))

    return corrupt


CONFIG_CASES = {
    "not-json": (
        _set_config("{experiment: exp}\n"),
        "config.json:1:2: not valid JSON (Expecting property name enclosed in double quotes)",
    ),
    "empty": (_set_config(""), "config.json: empty"),
    "truncated": (_truncate_config, "truncated JSON"),
    "not-an-object": (_set_config("[1, 2]\n"), "config.json: holds a JSON array, expected an object"),
    "no-hash": (_drop_hash, "config.json: lacks field 'hash'"),
    "hash-not-text": (_set_config('{"hash": 3}'), "config.json: field 'hash' is 3"),
    "not-utf8": (_set_config(b'{"hash": "\xff\xfe"}'), "config.json: not UTF-8 text"),
    "rows-without-config": (_no_config, "holds rows.jsonl but no config.json"),
    "summary-without-config": (_summary_no_config, "holds summary.json but no config.json"),
}

ROWS_CASES = {
    "not-json": (_set_line(1, b"not json"), "rows.jsonl:1:1: not valid JSON (Expecting value)"),
    "not-an-object": (_set_line(2, b"[1, 2]"), "rows.jsonl:2: a JSON array, expected an object"),
    "not-utf8": (_set_line(1, b'{"x": "\xff\xfe"}'), "rows.jsonl:1: not UTF-8 text"),
    "count-not-int": (
        _set_line(3, b'{"__unit_done__": "u1", "rows": "2"}'),
        "rows.jsonl:3: unit 'u1': field 'rows' is '2' (str), expected the unit's row count",
    ),
    "count-missing": (_set_line(3, b'{"__unit_done__": "u1"}'), "rows.jsonl:3: unit 'u1': field 'rows' is missing"),
    "count-wrong": (_set_line(3, b'{"__unit_done__": "u1", "rows": 3}'), "rows.jsonl:3: unit 'u1' closes 3 rows but 2"),
    "unit-not-text": (_set_line(3, b'{"__unit_done__": 7, "rows": 2}'), "rows.jsonl:3: field '__unit_done__' is 7"),
    "meta-not-object": (
        _set_line(3, b'{"__unit_done__": "u1", "rows": 2, "meta": [1]}'),
        "rows.jsonl:3: unit 'u1': field 'meta' is [1]",
    ),
    "row-lacks-field": (_set_line(2, b'{"y": 2}'), "rows.jsonl:2: row lacks field 'x'"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES) + [f"rows:{c}" for c in ROWS_CASES])
def test_a_damaged_results_folder_is_one_clear_error(folder, case):
    corrupt, expected = ROWS_CASES[case[5:]] if case.startswith("rows:") else CONFIG_CASES[case]
    corrupt(folder)
    with pytest.raises(DataFormatError) as e:
        _results(folder)
    msg = _message(e)
    assert expected in msg and str(folder) in msg and msg.endswith(FRESH_FIX)
    if sys.platform != "win32":  # the failed open released its lock (an empty .lock: nobody writes)
        assert (folder / ".lock").read_text() == ""
    # --fresh is the fix
    with ResultsDir("exp", {"a": 1}, out=folder, row_fields=("x",), fresh=True) as fresh:
        assert fresh.done_units == frozenset()


def test_what_a_kill_leaves_is_still_repaired(folder):
    with open(folder / "rows.jsonl", "ab") as fh:  # rows of a unit cut off before its marker, then half a line
        fh.write(b'{"y": "lacks x but never closed"}\n{"x": 3, "y"')
    with _results(folder) as r:
        assert r.done_units == {"u1"} and [row["x"] for row in r.rows()] == [1, 2]
    assert (folder / "rows.jsonl").read_bytes().count(b"\n") == 3


def test_a_file_in_place_of_the_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError) as e:
        _results(tmp_path / "f")
    assert "is a file, not a results folder; choose another --out" in _message(e)


def test_a_closed_results_dir_refuses_to_write(tmp_path):
    r = _results(tmp_path / "run")
    r.close()
    r.close()  # twice is fine
    with pytest.raises(ValueError, match="is closed"):
        r.append_unit("u1", [{"x": 1}])
    with pytest.raises(ValueError, match="is closed"):
        r.write_json("summary.json", {})


# -- locking -------------------------------------------------------------------------------------------
needs_flock = pytest.mark.skipif(sys.platform == "win32", reason="no fcntl.flock on Windows (locking is skipped)")

OPEN_IN_ANOTHER_PROCESS = textwrap.dedent(
    """
    import sys
    from experiments.results import ResultsDir
    from penguin_gym.error import ResultsLockedError

    try:
        r = ResultsDir("exp", {"a": 1}, out=sys.argv[1])
    except ResultsLockedError as e:
        print(e)
        sys.exit(3)
    r.append_unit("from-" + sys.argv[2], [{"x": 1}])
    if sys.argv[2] == "holder":  # keep the folder until told to go (stdin closed); exit without close()
        print("holding", flush=True)
        sys.stdin.read()
    """
)


def _python(*args: str, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return [sys.executable, "-c", OPEN_IN_ANOTHER_PROCESS, *args], env


def _try_in_another_process(out: Path) -> subprocess.CompletedProcess[str]:
    cmd, env = _python(str(out), "other")
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


@needs_flock
def test_a_locked_folder_cannot_be_opened_by_another_process_until_closed(tmp_path):
    out = tmp_path / "run"
    first = ResultsDir("exp", {"a": 1}, out=out)
    assert (out / ".lock").read_text().strip() == str(os.getpid())
    again = ResultsDir("exp", {"a": 1}, out=out)  # the same process may reopen (a resumed run)
    again.close()  # ...and closing that does not release the first's hold
    proc = _try_in_another_process(out)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.strip() == (
        f"{out} is being written by another run (pid {os.getpid()}); wait for it to finish or choose another --out"
    )
    first.close()
    assert (out / ".lock").read_text() == ""
    proc = _try_in_another_process(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with ResultsDir("exp", {"a": 1}, out=out) as r:  # the other process exited without close(): released
        assert r.done_units == {"from-other"}


@needs_flock
def test_a_folder_held_by_another_process_fails_the_command_with_status_1(tmp_path, capsys):
    out = tmp_path / "run"
    cmd, env = _python(str(out), "holder")
    holder = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(ResultsLockedError) as e:
            ResultsDir("exp", {"a": 1}, out=out)
        assert f"(pid {holder.pid})" in _message(e)
        assert cli.main([*CONTEXT_GAP, "--out", str(out)]) == 1
        err = capsys.readouterr().err.strip()
        assert err == f"penguin-gym context-gap: error: {e.value}"
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.wait(timeout=60)
        holder.stdout.close()  # or its pipe is closed by the garbage collector, with a ResourceWarning
    with ResultsDir("exp", {"a": 1}, out=out) as r:
        assert r.done_units == {"from-holder"}


def _open_in_forked_child(out: str, queue) -> None:
    try:
        ResultsDir("exp", {"a": 1}, out=out)
        queue.put("opened")
    except ResultsLockedError as e:
        queue.put(str(e))


@needs_flock
@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="no fork on this platform")
def test_a_forked_child_is_another_process(tmp_path):
    out = tmp_path / "run"
    with ResultsDir("exp", {"a": 1}, out=out):
        ctx = mp.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_open_in_forked_child, args=(str(out), queue))
        child.start()
        seen = queue.get(timeout=60)
        child.join(timeout=60)
    assert "is being written by another run" in seen
    with ResultsDir("exp", {"a": 1}, out=out):  # the child's exit released nothing of ours; ours is closed
        pass


# -- score tables ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def table_bytes(tmp_path_factory) -> bytes:
    table = ScoreTable.build(
        SimulatedJudge(), load_scenarios(domains="Health", n_per_domain=3), max_size=1, progress=False
    )
    path = tmp_path_factory.mktemp("table") / "t.npz"
    table.save(path)
    return path.read_bytes()


def _arrays(data: bytes) -> dict[str, np.ndarray]:
    import io

    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _npy(_: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.arange(3))
    return buf.getvalue()


def _damaged(data: bytes) -> bytes:
    mid = len(data) // 3
    return data[:mid] + bytes(b ^ 0xFF for b in data[mid : mid + 16]) + data[mid + 16 :]


TABLE_CASES = {
    "not-a-zip": (lambda d: b"not a zip file", "not a .npz archive (it starts with b'not '"),
    "empty": (lambda d: b"", "the file is empty"),
    "an-npy-file": (_npy, "not a .npz archive"),
    "truncated": (lambda d: d[: len(d) // 2], "the zip archive is truncated or damaged"),
    "damaged": (_damaged, "cannot read the score table"),
    "missing-array": (
        lambda d: _npz({k: v for k, v in _arrays(d).items() if k != "masks"}),
        "array(s) ['masks'] missing",
    ),
    "foreign-format": (
        lambda d: _npz({**_arrays(d), "format": np.array("someone-elses-v3")}),
        "is not a score table (format tag 'someone-elses-v3', expected 'penguin-score-table-v1')",
    ),
    "no-format": (lambda d: _npz({"x": np.arange(2)}), "is not a score table (format tag None"),
    "wrong-shape": (
        lambda d: _npz({**_arrays(d), "scores": np.zeros((1, 2, 3), np.float32)}),
        "inconsistent arrays (ScoreTable: values have shape (1, 2, 3)",
    ),
}


@pytest.mark.parametrize("case", list(TABLE_CASES))
def test_a_damaged_score_table_is_one_clear_error(table_bytes, tmp_path, case):
    make, expected = TABLE_CASES[case]
    path = tmp_path / "scores.npz"
    path.write_bytes(make(table_bytes))
    with pytest.raises(ConfigError) as e:
        ScoreTable.load(path)
    msg = _message(e)
    assert msg.startswith(str(path)) and expected in msg
    assert msg.endswith(
        f"move it away and build it again (`penguin-gym build-table --out {path}`), or pass another table"
    )


def test_the_good_table_still_loads(table_bytes, tmp_path):
    assert TABLE_FORMAT in str(_arrays(table_bytes)["format"])
    (tmp_path / "t.npz").write_bytes(table_bytes)
    assert ScoreTable.load(tmp_path / "t.npz").masks.size == 1 + len(ATTRIBUTES)


BUILD = ["--judge", "simulated", "--domains", "Health", "--n-per-domain", "2", "--max-size", "1", "--no-progress"]


def test_build_table_exit_statuses(tmp_path, capsys):
    bad_table = tmp_path / "bad.npz"
    bad_table.write_bytes(b"not a zip file")
    assert build_table.main([*BUILD, "--out", str(bad_table)]) == 2  # --out names a file that is no table
    assert capsys.readouterr().err.strip().startswith(f"penguin-gym build-table: error: {bad_table}: cannot read")
    bad_cache = tmp_path / "bad.sqlite"
    bad_cache.write_bytes(b"hello, not sqlite " * 40)
    assert build_table.main([*BUILD, "--out", str(tmp_path / "t.npz"), "--cache", str(bad_cache)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        f"penguin-gym build-table: error: {bad_cache}: not a penguin-gym judge cache (file is not a database); "
        "move it away or pass another --cache"
    )
    assert build_table.main([*BUILD, "--out", str(tmp_path / "t.npz")]) == 0


# -- judge caches --------------------------------------------------------------------------------------
def _garbage(path: Path) -> None:
    path.write_bytes(b"hello, not sqlite " * 40)


def _truncated_cache(path: Path) -> None:
    scenarios = load_scenarios(domains="Health", n_per_domain=30)
    cached = CachedJudge(SimulatedJudge(), path, chunk_size=500)
    items = [(s, frozenset(ATTRIBUTES[:k])) for s in scenarios for k in range(6)]
    cached.score_many([s for s, _ in items], [r for _, r in items])
    cached.close()
    data = path.read_bytes()
    assert len(data) > 8 * 4096 and not Path(f"{path}-wal").exists()
    path.write_bytes(data[: len(data) // 2])


def _sqlite(*statements: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        conn = sqlite3.connect(path)
        for s in statements:
            conn.execute(s)
        conn.commit()
        conn.close()

    return make


CACHE_CASES = {
    "not-sqlite": (_garbage, "(file is not a database)"),
    "truncated": (_truncated_cache, "(database disk image is malformed)"),
    "another-database": (
        _sqlite("CREATE TABLE users (id INTEGER)", "INSERT INTO users VALUES (1)"),
        "(an SQLite database with tables ['users'] and no 'judgments' table)",
    ),
    "meta-without-schema-row": (
        _sqlite("CREATE TABLE meta (key TEXT, value TEXT)", "CREATE TABLE judgments (key TEXT)"),
        "(its meta table has no 'schema' row)",
    ),
    "meta-of-other-columns": (
        _sqlite("CREATE TABLE meta (a TEXT)", "CREATE TABLE judgments (key TEXT)"),
        "(its meta table is not ours: no such column: value)",
    ),
}

OPENERS: dict[str, Callable[[Path], object]] = {
    "CachedJudge": lambda p: CachedJudge(SimulatedJudge(), p),
    "judge_names": judge_names,
    "read_judgments": lambda p: list(read_judgments(p)),
}


@pytest.mark.parametrize("opener", list(OPENERS))
@pytest.mark.parametrize("case", list(CACHE_CASES))
def test_a_damaged_judge_cache_is_one_clear_error(tmp_path, case, opener):
    make, what = CACHE_CASES[case]
    path = tmp_path / "judgments.sqlite"
    make(path)
    before = path.read_bytes()
    with pytest.raises(DataFormatError) as e:
        OPENERS[opener](path)
    msg = _message(e)
    assert msg == f"{path}: not a penguin-gym judge cache {what}; move it away or pass another --cache"
    assert path.read_bytes() == before  # a file that is not ours is left as it was


def test_an_empty_file_is_a_new_cache(tmp_path):
    path = tmp_path / "new.sqlite"
    path.write_bytes(b"")
    assert judge_names(path) == {} and list(read_judgments(path)) == []
    cached = CachedJudge(SimulatedJudge(), path)
    s = load_scenarios(domains="Health", n_per_domain=1)[0]
    cached.score(s, frozenset())
    cached.close()
    assert judge_names(path) == {SimulatedJudge().name: 1}


def test_an_unopenable_cache_path_is_a_config_error(tmp_path):
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(ConfigError) as e:
        CachedJudge(SimulatedJudge(), tmp_path / "a-folder")
    assert "pass another --cache" in _message(e)


# -- exit statuses of the penguin-gym command --------------------------------------------------------------
CONTEXT_GAP = ["context-gap", "--domains", "Health", "--responders", "mean", "--max-scenarios", "2"]
CONTEXT_GAP += ["--no-wandb", "--no-plots", "--no-progress"]


@pytest.mark.parametrize(
    "argv",
    [
        ["context-gap", "--wandb-mode", "sometimes"],  # argparse: an invalid choice
        ["context-gap", "--max-scenarios", "0"],  # the args dataclass's validation
        ["context-gap", "--judge", "table:no-such-table.npz", "--no-wandb", "--no-progress"],  # ConfigError in the run
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    assert "error:" in capsys.readouterr().err


def test_a_damaged_results_folder_fails_the_command_with_status_1(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main([*CONTEXT_GAP, "--out", str(out)]) == 0
    capsys.readouterr()
    rows = out / "rows.jsonl"
    lines = rows.read_text().splitlines(keepends=True)
    first = json.loads(lines[0])
    del first["domain"]  # a field the summary reads
    rows.write_text(json.dumps(first) + "\n" + "".join(lines[1:]))
    assert cli.main([*CONTEXT_GAP, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"penguin-gym context-gap: error: {rows}:1: row lacks field 'domain'") and "\n" not in err
    (out / "config.json").write_text("{")
    assert cli.main([*CONTEXT_GAP, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"penguin-gym context-gap: error: {out / 'config.json'}:1:2: truncated JSON "
        f"(Expecting property name enclosed in double quotes); {FRESH_FIX}"
    )
    assert cli.main([*CONTEXT_GAP, "--out", str(out), "--fresh"]) == 0


def test_attributes_rows_are_checked_for_what_its_summary_reads(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["attributes", "--domains", "Health", "--max-scenarios", "2", "--no-wandb", "--no-plots", "--no-progress"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    rows = out / "rows.jsonl"
    lines = rows.read_text().splitlines(keepends=True)
    second = json.loads(lines[1])
    del second["single_dims"]
    rows.write_text(lines[0] + json.dumps(second) + "\n" + "".join(lines[2:]))
    capsys.readouterr()
    assert cli.main([*argv, "--out", str(out)]) == 1
    assert f"{rows}:2: row lacks field 'single_dims'" in capsys.readouterr().err


def test_penguin_errors_are_the_base_of_every_error_here():
    assert issubclass(ResultsLockedError, PenguinError) and issubclass(ResultsLockedError, RuntimeError)
    assert not issubclass(ResultsLockedError, ConfigError)
