"""CachedJudge: keys, hits, failures, concurrent writers (processes) and a kill -9 mid-run."""

from __future__ import annotations

import doctest
import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import penguin_gym.judges.cache
from penguin_gym.data import ATTRIBUTES, Scenario, load_scenarios
from penguin_gym.error import BackendError, JudgeBatchError
from penguin_gym.judges import SimulatedJudge
from penguin_gym.judges.backends import ScriptedBackend
from penguin_gym.judges.cache import CachedJudge, judge_names, read_judgments
from penguin_gym.judges.llm import LLMJudge
from penguin_gym.judges.rubric import JUDGE_SYSTEM, PROMPT_VERSION

ROOT = Path(__file__).resolve().parents[1]


def _rubric(a: int, b: int, c: int) -> str:
    return f"Risk Sensitivity: Score: {a}/5\nEmotional Empathy: Score: {b}/5\nPersonalization: Score: {c}/5"


def _model(messages) -> str:
    """A scripted responder+judge: the judgment depends on how many attributes the answer knew."""
    if messages[0]["content"] == JUDGE_SYSTEM:
        n = int(messages[1]["content"].split("[knew ")[1][0])
        return _rubric(min(5, 1 + n), 3, 2)
    return f"answer [knew {messages[0]['content'].count(chr(10) + '- ')}]"


@pytest.fixture(scope="module")
def scenarios():
    return load_scenarios(domains="Health", n_per_domain=20)


def _items(scenarios, n):
    return [(scenarios[i % len(scenarios)], frozenset(ATTRIBUTES[: i % 4])) for i in range(n)]


def test_hits_misses_and_persistence_across_instances(scenarios, tmp_path):
    path = tmp_path / "c.sqlite"
    backend = ScriptedBackend(_model)
    cached = CachedJudge(LLMJudge(backend), path, chunk_size=3)
    items = _items(scenarios, 8)
    first = cached.score_many([s for s, _ in items], [r for _, r in items])
    assert backend.calls == 16 and cached.misses == 8 and cached.hits == 0
    assert [s.risk_sensitivity for s in first] == [1, 2, 3, 4] * 2
    assert first[1].response == "answer [knew 1]" and "Score: 2/5" in first[1].raw
    again = cached.score_many([s for s, _ in items], [r for _, r in items])
    assert again == first and backend.calls == 16 and cached.hits == 8
    # a new process/run: same file, same judge configuration -> no backend call at all
    backend2 = ScriptedBackend(_model)
    reopened = CachedJudge(LLMJudge(backend2), path)
    assert reopened.score_many([s for s, _ in items], [r for _, r in items]) == first
    assert backend2.calls == 0 and len(reopened) == 8


def test_duplicates_in_one_batch_are_judged_once(scenarios, tmp_path):
    backend = ScriptedBackend(_model)
    cached = CachedJudge(LLMJudge(backend), tmp_path / "c.sqlite")
    s = scenarios[0]
    out = cached.score_many([s, s, s], [frozenset({"Age"}), frozenset({"Age"}), frozenset()])
    assert backend.calls == 4 and out[0] == out[1]


def test_key_covers_judge_identity_sampling_prompt_and_scenario(scenarios, tmp_path):
    path = tmp_path / "c.sqlite"
    s = scenarios[0]
    base = CachedJudge(LLMJudge(ScriptedBackend(_model)), path)
    keys = {
        base.key(s, frozenset()),
        base.key(s, frozenset({"Age"})),
        base.key(scenarios[1], frozenset()),
        CachedJudge(LLMJudge(ScriptedBackend(_model), temperature=0.2), path).key(s, frozenset()),
        CachedJudge(LLMJudge(ScriptedBackend(_model), max_tokens=99), path).key(s, frozenset()),
        CachedJudge(LLMJudge(ScriptedBackend(_model), ScriptedBackend(_model, name="other")), path).key(s, frozenset()),
        CachedJudge(LLMJudge(ScriptedBackend(_model, name="resp2")), path).key(s, frozenset()),
    }
    assert len(keys) == 7
    # the prompt version is part of the judge's name, hence of the key
    assert f"{PROMPT_VERSION}+" in base.name and PROMPT_VERSION.startswith("rubric-v")
    # a scenario whose content changed under the same id is not served stale scores
    changed = Scenario.from_dict({**s.to_dict(), "query": s.query + " (edited)"})
    assert base.key(changed, frozenset()) != base.key(s, frozenset())


def test_failures_are_recorded_served_and_retried_only_when_asked(scenarios, tmp_path):
    path = tmp_path / "c.sqlite"
    bad = {scenarios[2].id}

    def flaky(messages):
        if messages[0]["content"] == JUDGE_SYSTEM and any(
            scenarios[i].query in messages[1]["content"] for i in range(len(scenarios)) if scenarios[i].id in bad
        ):
            return "no scores here"
        return _model(messages)

    cached = CachedJudge(LLMJudge(ScriptedBackend(flaky), retries=1), path, chunk_size=2)
    items = scenarios[:4]
    with pytest.raises(JudgeBatchError) as info:
        cached.score_many(items, [frozenset()] * 4)
    err = info.value
    assert [r is None for r in err.results] == [False, False, True, False]
    assert err.failures[0].index == 2  # re-indexed into the caller's batch
    assert len(cached) == 3
    (record,) = cached.failures()
    assert record["scenario_id"] == scenarios[2].id and record["raw"] == ["no scores here"] * 2
    assert record["cause"] == "unparseable" and record["permanent"]
    # the second attempt asked with another seed, and the record says which
    assert record["seeds"][0] is None and isinstance(record["seeds"][1], int)
    # a rerun asks for nothing: the recorded failure is served as the item's failure
    backend = ScriptedBackend(_model)
    again = CachedJudge(LLMJudge(backend, retries=1), path)
    with pytest.raises(JudgeBatchError) as info:
        again.score_many(items, [frozenset()] * 4)
    assert backend.calls == 0 and again.failed_hits == 1
    assert [f.index for f in info.value.failures] == [2] and info.value.failures[0].cause == "unparseable"
    # asked to retry the failures, it judges only the failed item
    fixed = CachedJudge(LLMJudge(backend, retries=1), path, retry_failed=True)
    out = fixed.score_many(items, [frozenset()] * 4)
    assert backend.calls == 2 and len(out) == 4 and len(fixed) == 4


def test_backend_error_keeps_completed_chunks(scenarios, tmp_path):
    path = tmp_path / "c.sqlite"
    replies = ["answer [knew 0]", _rubric(1, 3, 2)] * 2 + [BackendError("down")]
    cached = CachedJudge(LLMJudge(ScriptedBackend(replies)), path, chunk_size=1)
    with pytest.raises(BackendError, match="down"):
        cached.score_many(scenarios[:4], [frozenset()] * 4)
    assert len(cached) == 2


def test_wraps_any_judge_and_reads_back(scenarios, tmp_path):
    path = tmp_path / "c.sqlite"
    sim = SimulatedJudge()
    cached = CachedJudge(sim, path)
    revealed = [frozenset(ATTRIBUTES[:k]) for k in range(5)]
    out = cached.score_many(scenarios[:5], revealed)
    assert out == sim.score_many(scenarios[:5], revealed)
    assert judge_names(path) == {sim.name: 5}
    rows = list(read_judgments(path))
    assert {(r.scenario_id, r.mask) for r in rows} == {(s.id, (1 << k) - 1) for k, s in enumerate(scenarios[:5])}


# --------------------------------------------------------------------------------------------------
# Several processes writing one file


def _writer(path: str, worker: int, n: int, queue) -> None:
    scenarios = load_scenarios(domains="Health", n_per_domain=20)

    def reply(messages):  # each worker judges differently: the stored (first) judgment must win everywhere
        if messages[0]["content"] == JUDGE_SYSTEM:
            return _rubric(1 + worker % 5, 3, 2)
        return f"answer from worker {worker}"

    cached = CachedJudge(LLMJudge(ScriptedBackend(reply)), path, chunk_size=2)
    items = [(scenarios[i % 20], frozenset(ATTRIBUTES[: (i // 20) % 3])) for i in range(worker * 5, worker * 5 + n)]
    out = cached.score_many([s for s, _ in items], [r for _, r in items])
    queue.put(
        (worker, [(s.id, sorted(r), sc.risk_sensitivity, sc.response) for (s, r), sc in zip(items, out, strict=True)])
    )


def test_concurrent_writers_share_one_file(scenarios, tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(path, w, 20, queue)) for w in range(4)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    # overlapping items (workers w and w+1 share 15 of 20): every process saw the one stored judgment
    seen: dict[tuple, tuple] = {}
    for rows in results.values():
        for sid, rev, rs, response in rows:
            assert seen.setdefault((sid, tuple(rev)), (rs, response)) == (rs, response)
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM judgments").fetchone()
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    assert count == len(seen) == 35 and mode == "wal"


# --------------------------------------------------------------------------------------------------
# kill -9 mid-run, then resume

SCRIPT = textwrap.dedent(
    """
    import hashlib, sys, time
    from penguin_gym.data import ATTRIBUTES, load_scenarios
    from penguin_gym.judges.backends import ScriptedBackend
    from penguin_gym.judges.cache import CachedJudge
    from penguin_gym.judges.llm import LLMJudge
    from penguin_gym.judges.rubric import JUDGE_SYSTEM

    cache, log, delay, chunk = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])

    def note(line):
        with open(log, "a") as f:
            f.write(line + "\\n")

    def model(messages):
        note("start")
        time.sleep(delay)  # a slow model: the kill lands here
        if messages[0]["content"] == JUDGE_SYSTEM:
            note("done " + messages[1]["content"].split("[item ")[1].split("]")[0])
            return "Risk Sensitivity: Score: 4/5\\nEmotional Empathy: Score: 4/5\\nPersonalization: Score: 3/5"
        tag = hashlib.sha256("|".join(m["content"] for m in messages).encode()).hexdigest()[:12]
        return "answer [item " + tag + "]"

    scenarios = load_scenarios(domains="Health", n_per_domain=12)
    # each judgment is committed as soon as it is made, whatever the chunk
    cached = CachedJudge(LLMJudge(ScriptedBackend(model)), cache, chunk_size=chunk)
    out = cached.score_many(scenarios, [frozenset(ATTRIBUTES[:3])] * len(scenarios))
    note("finished %d" % len(out))
    """
)


@pytest.mark.parametrize("chunk", [1, 32])
def test_kill_dash_nine_loses_nothing_and_judges_nothing_twice(tmp_path, chunk):
    (tmp_path / "run.py").write_text(SCRIPT)
    cache, log = tmp_path / "judge.sqlite", tmp_path / "calls.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "run.py"), str(cache), str(log), "0.1", str(chunk)], env=env
    )
    deadline = time.monotonic() + 60
    while True:  # wait until 4 items are judged and the 5th is inside the (slow) model call
        lines = log.read_text().splitlines() if log.exists() else []
        done = sum(1 for x in lines if x.startswith("done"))
        if done >= 4 and lines[-1] == "start":
            break
        assert proc.poll() is None and time.monotonic() < deadline, "the judging run ended or hung early"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done_first = [x for x in log.read_text().splitlines() if x.startswith("done")]
    with sqlite3.connect(cache) as conn:
        (stored,) = conn.execute("SELECT COUNT(*) FROM judgments").fetchone()
    assert stored == len(done_first) >= 4  # every judgment made before the kill is in the file

    log.write_text("")
    subprocess.run(
        [sys.executable, str(tmp_path / "run.py"), str(cache), str(log), "0.0", str(chunk)],
        env=env,
        check=True,
        timeout=60,
    )
    lines = log.read_text().splitlines()
    done_second = [x for x in lines if x.startswith("done")]
    assert lines[-1] == "finished 12"
    assert len(done_first) + len(done_second) == 12  # nothing judged twice...
    assert len(set(done_first) | set(done_second)) == 12  # ...and every item judged once
    with sqlite3.connect(cache) as conn:
        (stored,) = conn.execute("SELECT COUNT(*) FROM judgments").fetchone()
    assert stored == 12


def test_docstring_examples():
    result = doctest.testmod(penguin_gym.judges.cache, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
