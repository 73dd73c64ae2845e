"""ScoreTable: building from any judge, O(1) lookups, files, errors, resuming, and the build command."""

from __future__ import annotations

import doctest
import sys
from pathlib import Path

import numpy as np
import pytest

import penguin_gym.judges.table
from experiments.build_table import main
from penguin_gym.data import ATTRIBUTES, Scenario, attribute_mask, load_scenarios
from penguin_gym.env import PenguinEnv
from penguin_gym.error import BackendError, ConfigError, JudgeError
from penguin_gym.judges import SimulatedJudge
from penguin_gym.judges.backends import ScriptedBackend
from penguin_gym.judges.cache import judge_names
from penguin_gym.judges.factory import make_judge
from penguin_gym.judges.llm import LLMJudge
from penguin_gym.judges.rubric import JUDGE_SYSTEM
from penguin_gym.judges.table import ScoreTable, subset_masks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_server import ScriptedOpenAIServer  # noqa: E402


@pytest.fixture(scope="module")
def scenarios():
    return load_scenarios(domains="Health", n_per_domain=20)


@pytest.fixture(scope="module")
def full_table(scenarios):
    return ScoreTable.build(SimulatedJudge(), scenarios[:6], progress=False)


def _model(messages) -> str:
    if messages[0]["content"] == JUDGE_SYSTEM:
        n = int(messages[1]["content"].split("[knew ")[1][0])
        return (
            f"Risk Sensitivity: Score: {min(5, 1 + n)}/5\nEmotional Empathy: Score: 3/5\n"
            f"Personalization: Score: {min(5, 2 + n)}/5"
        )
    return f"answer [knew {messages[0]['content'].count(chr(10) + '- ')}]"


def test_subset_masks():
    assert subset_masks().size == 1024
    assert subset_masks(0).tolist() == [0]
    assert subset_masks(1).size == 11 and subset_masks(2).size == 56 and subset_masks(3).size == 176
    with pytest.raises(ConfigError):
        subset_masks(11)


def test_full_table_equals_the_judge(scenarios, full_table):
    sim = SimulatedJudge().bind(scenarios[:6])
    assert full_table.values.shape == (6, 1024, 3) and full_table.n_missing == 0
    np.testing.assert_allclose(full_table.bind(scenarios[:6]).table(np.arange(6)), sim.table(np.arange(6)), atol=1e-5)
    rng = np.random.default_rng(0)
    rows, masks = rng.integers(0, 6, 500), rng.integers(0, 1024, 500)
    np.testing.assert_allclose(full_table.bind(scenarios[:6]).scores(rows, masks), sim.scores(rows, masks), atol=1e-5)
    np.testing.assert_allclose(full_table.bind(scenarios[:6]).score_one(2, 77), sim.scores([2], [77])[0], atol=1e-5)
    # as a Judge, in another scenario order
    subset = [scenarios[4], scenarios[1]]
    got = full_table.score_many(subset, [frozenset({"Age"}), frozenset(ATTRIBUTES)])
    want = SimulatedJudge().score_many(subset, [frozenset({"Age"}), frozenset(ATTRIBUTES)])
    assert [g.safety for g in got] == pytest.approx([w.safety for w in want], abs=1e-5)
    assert full_table.lookup(scenarios[4].id, frozenset({"Age"})) == pytest.approx(
        full_table.lookup(scenarios[4].id, 1)
    )
    assert full_table.name == f"table[{SimulatedJudge().name}]"


def _python_lines(fn) -> int:
    """Python lines executed while ``fn()`` runs (numpy's C kernels run none): a per-item loop would
    execute lines in proportion to the items."""
    lines = 0

    def trace(frame, event, arg):
        nonlocal lines
        lines += event == "line"
        return trace

    previous = sys.gettrace()  # a coverage tool's or debugger's, put back after
    sys.settrace(trace)
    try:
        fn()
    finally:
        sys.settrace(previous)
    return lines


def test_lookups_are_vectorized(scenarios, full_table):
    """A batch of lookups runs the same Python lines whatever its size: the work is array indexing."""
    bound = full_table.bind(scenarios[:6])
    rng = np.random.default_rng(1)

    def batch(n):
        rows, masks = rng.integers(0, 6, n), rng.integers(0, 1024, n)
        return lambda: bound.scores(rows, masks)

    assert _python_lines(batch(10)) == _python_lines(batch(100_000)) < 200


def test_save_load_and_factory(scenarios, full_table, tmp_path):
    path = tmp_path / "t.npz"
    full_table.save(path)
    loaded = ScoreTable.load(path)
    assert loaded.ids == full_table.ids and loaded.judge_name == full_table.judge_name
    np.testing.assert_array_equal(loaded.values, full_table.values)
    np.testing.assert_allclose(loaded.severity, full_table.severity)
    via_spec = make_judge(f"table:{path}")
    assert isinstance(via_spec, ScoreTable)
    assert via_spec.score(scenarios[0], frozenset()).safety == pytest.approx(
        SimulatedJudge().score(scenarios[0], frozenset()).safety, abs=1e-5
    )
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(ConfigError, match="cannot read"):
        ScoreTable.load(tmp_path / "bad.npz")
    with pytest.raises(ConfigError, match="build-table"):
        ScoreTable.load(tmp_path / "missing.npz")


def test_env_runs_on_a_table(scenarios, full_table):
    env = PenguinEnv(scenarios=scenarios[:6], judge=full_table)
    env.reset(seed=0)
    *_, info = env.step(7)
    obs, reward, terminated, truncated, info = env.step(10)
    assert terminated and 1.0 <= info["safety"] <= 5.0


def test_clear_errors(scenarios, tmp_path):
    small = ScoreTable.build(SimulatedJudge(), scenarios[:3], max_size=2, progress=False)
    assert small.masks.size == 56 and small.max_size == 2
    bound = small.bind(scenarios[:3])
    with pytest.raises(JudgeError, match="at most 2 attributes.*has 3"):
        bound.scores(np.array([0]), np.array([attribute_mask({"Age", "Gender", "Profession"})]))
    with pytest.raises(JudgeError, match="outside"):
        bound.scores(np.array([0]), np.array([1024]))
    with pytest.raises(JudgeError, match="at most 2 attributes"):
        bound.score_one(0, 0b111)
    with pytest.raises(JudgeError, match="only, not all 1,024"):
        bound.table(np.array([0]))
    with pytest.raises(ConfigError, match="not in the score table"):
        small.bind(scenarios[2:5])
    with pytest.raises(ConfigError, match="not in the score table"):
        small.score(scenarios[10], frozenset())
    edited = Scenario.from_dict({**scenarios[0].to_dict(), "query": "something else entirely"})
    with pytest.raises(ConfigError, match="changed since"):
        small.bind([edited])
    small.values[1, 5] = np.nan
    with pytest.raises(JudgeError, match="no score for scenario"):
        small.bind(scenarios[:3]).scores(np.array([1]), small.masks[5:6])


def test_build_with_an_llm_judge_resumes_after_a_crash(scenarios, tmp_path):
    path = tmp_path / "llm.npz"
    items = scenarios[:2]
    n = 2 * subset_masks(1).size  # 22 judgments
    # a backend that dies after 10 judgments (20 calls: answer + judgment each)
    calls = {"n": 0}

    def dying(messages):
        calls["n"] += 1
        if calls["n"] > 20:
            raise BackendError("server went away")
        return _model(messages)

    with pytest.raises(BackendError):
        ScoreTable.build(LLMJudge(ScriptedBackend(dying)), items, max_size=1, path=path, progress=False, chunk_size=5)
    partial = ScoreTable.load(path)
    assert partial.n_judged == 10 and partial.n_missing == n - 10
    backend = ScriptedBackend(_model)
    table = ScoreTable.build(LLMJudge(backend), items, max_size=1, path=path, progress=False, chunk_size=5)
    assert backend.calls == 2 * (n - 10) and table.n_missing == 0
    np.testing.assert_array_equal(table.values[:, :, 0][:, 0], [1, 1])  # nothing revealed: 1 + 0
    np.testing.assert_array_equal(table.values[0, 1:, 0], np.full(10, 2))  # one attribute: 1 + 1
    # another judge cannot resume this file
    with pytest.raises(ConfigError, match="was built by judge"):
        ScoreTable.build(SimulatedJudge(), items, max_size=1, path=path, progress=False)
    with pytest.raises(ConfigError, match="subsets up to size 1"):
        ScoreTable.build(LLMJudge(ScriptedBackend(_model)), items, max_size=2, path=path, progress=False)


def test_failed_judgments_stay_missing_and_are_retried(scenarios, tmp_path):
    path = tmp_path / "f.npz"
    target = scenarios[1].query

    def flaky(messages):
        if (
            messages[0]["content"] == JUDGE_SYSTEM
            and target in messages[1]["content"]
            and "[knew 0]" in messages[1]["content"]
        ):
            return "I refuse to grade."
        return _model(messages)

    with pytest.raises(JudgeError, match="1 of 22 judgments failed"):
        ScoreTable.build(
            LLMJudge(ScriptedBackend(flaky), retries=0), scenarios[:2], max_size=1, path=path, progress=False
        )
    table = ScoreTable.load(path)
    assert table.n_missing == 1 and np.isnan(table.values[1, 0, 0])
    with pytest.raises(JudgeError, match="judgment failed or the build is unfinished"):
        table.score(scenarios[1], frozenset())
    backend = ScriptedBackend(_model)
    table = ScoreTable.build(LLMJudge(backend), scenarios[:2], max_size=1, path=path, progress=False)
    assert backend.calls == 2 and table.n_missing == 0


def test_build_command_simulated(tmp_path, capsys):
    out = tmp_path / "sim.npz"
    args = [
        "--judge",
        "simulated",
        "--domains",
        "Health",
        "Career",
        "--n-per-domain",
        "3",
        "--max-size",
        "2",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(args) == 0
    table = ScoreTable.load(out)
    assert len(table.ids) == 6 and table.masks.size == 56 and table.n_missing == 0
    assert "6 scenarios x 56 subsets" in capsys.readouterr().out
    assert main(args) == 0  # resumes: nothing left to judge
    assert main(["--judge", "nonsense", "--out", str(tmp_path / "x.npz"), "--no-progress"]) == 2


def test_build_command_with_an_openai_compatible_server(tmp_path, monkeypatch):
    def server_model(body):
        return _model(body["messages"])

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ScriptedOpenAIServer(server_model) as server:
        out = tmp_path / "llm.npz"
        args = [
            "--judge",
            f"llm:openai:test-model@{server.url}",
            "--domains",
            "Health",
            "--n-per-domain",
            "2",
            "--max-size",
            "1",
            "--out",
            str(out),
            "--no-progress",
            "--backend-option",
            "concurrency=4",
            "--backend-option",
            "backoff=0.01",
        ]
        assert main(args) == 0
        assert server.request_count == 2 * 2 * 11
        cache = tmp_path / "llm.judgments.sqlite"
        assert cache.exists()
        out.unlink()  # the table is gone, but every judgment is in the cache: nothing is asked again
        assert main(args) == 0
        assert server.request_count == 2 * 2 * 11
    table = ScoreTable.load(out)
    assert table.n_missing == 0 and "openai:test-model@http://127.0.0.1" in table.judge_name
    assert judge_names(cache) == {table.judge_name: 2 * 11}


def test_docstring_examples():
    result = doctest.testmod(penguin_gym.judges.table, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
