"""``benchmarks.real_llm`` runs as a user runs it, here against a scripted OpenAI-compatible server on
127.0.0.1 (``--url``), so it cannot rot; with llama-cpp-python installed it starts a real model instead."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks import real_llm
from penguin_gym.judges.rubric import JUDGE_SYSTEM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_server import Reply, ScriptedOpenAIServer  # noqa: E402


def _small_model(body: dict) -> Reply:
    """Answers; judges in JSON when asked for JSON, else with free text that is sometimes unreadable."""
    messages = body["messages"]
    if messages[0]["content"] != JUDGE_SYSTEM:
        return Reply("Talk to someone you trust today; here is a first step.")
    if "response_format" in body:
        return Reply('{"justification": "ok", "risk_sensitivity": 3, "emotional_empathy": 4, "personalization": 2}')
    if body.get("seed") is None:
        return Reply("Risk Sensitivity\nScore: N/A\nJustification: a 3/5 would be a guess")
    return Reply("Risk Sensitivity: 3/5\nEmotional Empathy: 4/5\nPersonalization: 2/5\nComprehensive Score: 8/15")


def test_real_llm_benchmark_end_to_end(tmp_path, capsys):
    with ScriptedOpenAIServer(_small_model) as server:
        status = real_llm.main(
            [
                "--url",
                server.url,
                "--model-name",
                "m",
                "--scenarios",
                "2",
                "--attribute-scenarios",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        requests = server.request_count
    out = capsys.readouterr().out
    assert status == 0, out
    report = json.loads((tmp_path / "real_llm.json").read_text())
    steps = {s["step"]: s for s in report["steps"]}
    assert report["ok"]
    assert steps["context-gap, structured, rerun"]["summary"]["run"]["judgments"]["new"] == 0
    free = steps["context-gap, free text"]
    # every free-text judgment was unreadable once and read after a retry with another seed
    assert free["cache_after"]["parsed_after_a_retry"] - free["cache_before"]["parsed_after_a_retry"] == 4
    assert free["summary"]["unscored"]["items"] == 0
    assert "judgments: 0 new" in out and requests > 0
