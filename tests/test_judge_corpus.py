"""The judge parser over a corpus of real and realistic replies (``tests/data/judge_replies.jsonl``):
63 replies SmolLM2-135M-Instruct wrote as a judge (served by llama-cpp-python on 127.0.0.1; how they
were collected is in ``tests/data/judge_replies_README.md``) and 63 written to imitate what larger models
write, each with the outcome the parsing rules give. No reply without a valid score for every dimension
may become a number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from penguin_gym.error import JudgeParseError
from penguin_gym.judges.base import DIMENSIONS
from penguin_gym.judges.parse import parse_judge_output

CORPUS = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "judge_replies.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]

#: What the parser's message says for each expected outcome.
_REASONS = {
    "empty": "empty",
    "refusal": "refused",
    "no scores": "Risk Sensitivity|refused",
    "risk_sensitivity": "Risk Sensitivity",
    "emotional_empathy": "Emotional Empathy",
    "personalization": "Personalization",
}


def test_the_corpus_is_large_and_varied():
    assert len(CORPUS) >= 60 and len({c["id"] for c in CORPUS}) == len(CORPUS)
    assert sum(c["source"].startswith("smollm2") for c in CORPUS) >= 40
    assert sum(c["expected"] is not None for c in CORPUS) >= 20
    assert sum(c["expected"] is None for c in CORPUS) >= 20


@pytest.mark.parametrize("case", CORPUS, ids=[c["id"] for c in CORPUS])
def test_parser_on_the_corpus(case):
    if case["expected"] is None:
        with pytest.raises(JudgeParseError, match=_REASONS.get(case["unscored"], case["unscored"])):
            parse_judge_output(case["reply"])
        return
    parsed = parse_judge_output(case["reply"])
    assert {d: getattr(parsed, d) for d in DIMENSIONS} == case["expected"], case["why"]
    assert parsed.total_mismatch == case["total_mismatch"], case["why"]
