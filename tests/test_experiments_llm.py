"""The analyses with the paper's LLM-as-judge method, against a real local OpenAI-compatible server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from experiments import attribute_importance, cli, context_gap
from penguin_gym.judges.rubric import JUDGE_SYSTEM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_server import ScriptedOpenAIServer  # noqa: E402


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
        "30",
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
