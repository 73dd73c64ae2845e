"""The analyses with the paper's LLM-as-judge method, against a real local OpenAI-compatible server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from experiments import attribute_importance, cli, context_gap
from penguin_gym.judges.rubric import JUDGE_SYSTEM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_server import ScriptedOpenAIServer, Status  # noqa: E402


def _model(body: dict) -> str:
    """Answers queries; as the judge, grades by how many background facts the responder was given."""
    messages = body["messages"]
    if messages[0]["content"] == JUDGE_SYSTEM:
        n = int(messages[1]["content"].split("[knew ")[1].split("]")[0])
        a, b, c = min(5, 2 + n // 2), min(5, 2 + n // 3), min(5, 1 + n // 2)
        return (
            f"**Risk Sensitivity**\nScore: {a}/5\n\n**Emotional Empathy**\nScore: {b}/5\n\n"
            f"**Personalization**\nScore: {c}/5\n\nComprehensive Score: {a + b + c}/15"
        )
    return f"Here is my advice. [knew {messages[0]['content'].count(chr(10) + '- ')}]"


@pytest.fixture
def server():
    with ScriptedOpenAIServer(_model) as s:
        yield s


def _llm(server, tmp_path):
    spec = f"openai:test-model@{server.url}"
    return [
        "--judge",
        "llm",
        "--responder",
        spec,
        "--judge-model",
        spec,
        "--cache",
        str(tmp_path / "judgments.sqlite"),
        "--domains",
        "Health",
        "--n-per-domain",
        "60",
        "--max-scenarios",
        "4",
        "--no-progress",
        "--no-wandb",
    ]


def test_context_gap_with_an_llm_judge_and_cache(server, tmp_path, capsys):
    args = _llm(server, tmp_path)
    assert context_gap.main([*args, "--chunk", "2", "--out", str(tmp_path / "a")]) == 0
    assert server.request_count == 4 * 2 * 2  # 4 users x (context-free, context-rich) x (responder, judge)
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    (resp,) = s["responders"]
    assert resp == f"openai:test-model@{server.url}" and s["judge"][resp].startswith("llm/")
    e = s["responders"][resp]
    assert e["overall"]["n"] == 4 and e["overall"]["rich"] > e["overall"]["free"]
    # Another results folder, the same judgments: all from the SQLite cache, no request.
    assert context_gap.main([*args, "--chunk", "4", "--out", str(tmp_path / "b")]) == 0
    assert server.request_count == 16
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["responders"][resp]["overall"] == e["overall"]


def test_attribute_importance_with_an_llm_judge(server, tmp_path):
    assert (
        attribute_importance.main([*_llm(server, tmp_path), "--max-scenarios", "2", "--out", str(tmp_path / "a")]) == 0
    )
    assert server.request_count == 2 * 12 * 2  # 2 users x (baseline, 10 single attributes, full) x 2 calls
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["full"]["safety"] > s["baseline"]["safety"]


def test_llm_judge_errors_are_clear(capsys):
    assert cli.main(["context-gap", "--judge", "llm", "--no-wandb", "--no-progress", "--domains", "Health"]) == 2
    assert "--judge llm needs --responder" in capsys.readouterr().err
    assert cli.main(["attributes", "--backend-option", "concurrency=2", "--no-wandb", "--domains", "Health"]) == 2
    assert "--backend-option applies to --judge llm only" in capsys.readouterr().err


def _refusing_model(refused: set[str]):
    """``_model``, but the provider's content filter refuses the answers to some queries (HTTP 400)."""

    def script(body: dict):
        if body["messages"][0]["content"] != JUDGE_SYSTEM and body["messages"][-1]["content"] in refused:
            return Status(400, {"error": {"message": "filtered", "code": "content_filter"}})
        return _model(body)

    return script


def _health_queries(n: int) -> list[str]:
    from penguin_gym.data import load_scenarios

    return [s.query for s in load_scenarios(domains="Health", n_per_domain=60, split="test")[:n]]


def test_refused_items_are_counted_left_out_and_never_asked_again(tmp_path, capsys):
    refused = set(_health_queries(8)[:1])
    with ScriptedOpenAIServer(_refusing_model(refused)) as server:
        args = [*_llm(server, tmp_path), "--max-scenarios", "8", "--chunk", "3", "--max-unscored", "0.2"]
        assert context_gap.main([*args, "--out", str(tmp_path / "a")]) == 0
        out = capsys.readouterr().out
        s = json.loads((tmp_path / "a" / "summary.json").read_text())
        assert s["unscored"]["items"] == 2 and s["unscored"]["by_cause"] == {"refused": 2}
        assert s["responders"][next(iter(s["responders"]))]["overall"]["n"] == 7  # left out of the means
        assert "unscored: 2 of 16 judged items (refused: 2)" in out
        rows = [json.loads(line) for line in (tmp_path / "a" / "rows.jsonl").read_text().splitlines()]
        (bad,) = [r for r in rows if r.get("unscored")]
        assert bad["free"] is None and bad["unscored"]["free"]["cause"] == "refused"
        n = server.request_count
        # a rerun into a new folder: every judgment and every failure comes from the cache
        assert context_gap.main([*args, "--out", str(tmp_path / "b")]) == 0
        assert server.request_count == n
        assert "judgments: 0 made now, 14 from the cache, 2 recorded failures served" in capsys.readouterr().out
        # --retry-failed asks again for the refused items only (here: refused again)
        assert context_gap.main([*args, "--out", str(tmp_path / "a"), "--retry-failed"]) == 0
        assert server.request_count == n + 2


def test_too_many_unscored_items_stop_the_run_with_one_line(tmp_path, capsys):
    refused = set(_health_queries(4)[:2])
    with ScriptedOpenAIServer(_refusing_model(refused)) as server:
        argv = ["context-gap", *_llm(server, tmp_path), "--max-scenarios", "4", "--out", str(tmp_path / "a")]
        assert cli.main(argv) == 1  # a runtime failure, not a usage error
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "4 of 8 judged items stayed unscored (refused: 4), more than --max-unscored 0.05" in err[0]


def test_a_key_in_a_url_is_in_no_file_a_run_writes(tmp_path, capsys, monkeypatch):
    secret = "sk-live-TOPSECRET-123456"
    monkeypatch.chdir(tmp_path)
    with ScriptedOpenAIServer(_model) as server:
        spec = f"openai:test-model@{server.url.replace('http://', f'http://user:{secret}@')}"
        args = [*_llm(server, tmp_path), "--responder", spec, "--judge-model", spec, "--max-scenarios", "2"]
        assert context_gap.main([*args, "--out", str(tmp_path / "run"), "--wandb", "--wandb-mode", "offline"]) == 0
        assert server.requests and all("Authorization" in r.headers for r in server.requests)
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "rows.jsonl" for p in written) and any("wandb" in p.parts for p in written)
    leaks = [p for p in written if secret.encode() in p.read_bytes()]
    assert not leaks
    assert "***@127.0.0.1" in (tmp_path / "run" / "config.json").read_text()


def test_a_run_closes_its_llm_judges_connections(server, tmp_path):
    import gc
    import warnings

    from experiments import judging

    made: list = []
    real = judging.build_judge

    def spy(*a, **k):
        made.append(real(*a, **k))
        return made[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(context_gap, "build_judge", spy)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            assert context_gap.main([*_llm(server, tmp_path), "--out", str(tmp_path / "a")]) == 0
            gc.collect()
    assert made and server.request_count > 0
    backends = [made[0].judge.responder, made[0].judge.judge]  # CachedJudge(LLMJudge(responder, judge))
    assert all(b._client is None and b._pool is None for b in backends)  # closed
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning) and "socket" in str(w.message)]
    assert not leaks, [str(w.message) for w in leaks]
