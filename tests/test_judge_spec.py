"""The one judge-spec parser: every form, the canonical round trip, the errors, and backend options."""

from __future__ import annotations

import doctest

import pytest

import penguin_gym.judges.spec
from penguin_gym.error import ConfigError
from penguin_gym.judges.factory import make_judge
from penguin_gym.judges.spec import JudgeSpec, parse_backend_options, parse_judge_spec

FORMS = {
    "simulated": JudgeSpec("simulated"),
    "simulated:gpt-4o": JudgeSpec("simulated", responder="gpt-4o"),
    "simulated@fit.json": JudgeSpec("simulated", params="fit.json"),
    "simulated@fit.json:gpt-4o": JudgeSpec("simulated", responder="gpt-4o", params="fit.json"),
    "table:runs/scores.npz": JudgeSpec("table", path="runs/scores.npz"),
    "llm": JudgeSpec("llm"),
    "llm:openai:m@http://localhost:8000/v1": JudgeSpec("llm", backend="openai:m@http://localhost:8000/v1"),
    "llm:hf:Qwen/Qwen2.5-0.5B-Instruct": JudgeSpec("llm", backend="hf:Qwen/Qwen2.5-0.5B-Instruct"),
}


@pytest.mark.parametrize("text", list(FORMS))
def test_every_form_parses_and_round_trips(text):
    spec = parse_judge_spec(text)
    assert spec == FORMS[text] and str(spec) == text and parse_judge_spec(spec) is spec


def test_a_backend_spec_alone_is_an_llm_judge():
    spec = parse_judge_spec("openai:gpt-4o-mini@http://localhost:8000/v1")
    assert spec == JudgeSpec("llm", backend="openai:gpt-4o-mini@http://localhost:8000/v1")
    assert str(spec) == "llm:openai:gpt-4o-mini@http://localhost:8000/v1"
    assert parse_judge_spec("hf:some/model").backend == "hf:some/model"


@pytest.mark.parametrize(
    "text, message",
    [
        ("gpt-5", "unknown judge spec 'gpt-5'; valid: 'simulated'"),
        ("simulatedX", "unknown judge spec"),
        ("openai:", "unknown judge spec"),
        ("table", "no score table file named"),
        ("table:", "no score table file named"),
        ("llm:", "give a backend spec"),
    ],
)
def test_malformed_specs_name_the_valid_forms(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_judge_spec(text)


def test_a_non_string_is_refused():
    with pytest.raises(ConfigError, match="is a int, not a string"):
        parse_judge_spec(5)  # type: ignore[arg-type]


def test_with_responder():
    assert (
        str(parse_judge_spec("simulated@fit.json:gpt-4o").with_responder("mistral-7b"))
        == "simulated@fit.json:mistral-7b"
    )
    assert parse_judge_spec("llm").with_responder("openai:gpt-4o").backend == "openai:gpt-4o"
    table = parse_judge_spec("table:t.npz")
    assert table.with_responder(None) is table
    with pytest.raises(ConfigError, match="applies to simulated and llm judges"):
        table.with_responder("gpt-4o")


def test_make_judge_builds_what_the_parser_reads():
    parsed = parse_judge_spec("simulated:gpt-4o")
    assert make_judge(parsed).name == make_judge("simulated:gpt-4o").name == "simulated/sim-v0/gpt-4o"
    with pytest.raises(ConfigError, match="give a backend spec"):
        make_judge("llm")  # the bare form names its backends apart (a command's --responder, --judge-model)


def test_backend_options():
    got = parse_backend_options(["concurrency=16", "device=cuda", 'extra-body={"top_p": 0.9}', "api_key_env=K"])
    assert got == {"concurrency": 16, "device": "cuda", "extra_body": {"top_p": 0.9}, "api_key_env": "K"}
    assert parse_backend_options(None) == {} and parse_backend_options(["x="]) == {"x": ""}
    with pytest.raises(ConfigError, match="--backend-option 'concurrency' must be KEY=VALUE"):
        parse_backend_options(["concurrency"])
    with pytest.raises(ConfigError, match="--opt '=3' must be KEY=VALUE"):
        parse_backend_options(["=3"], option="--opt")


def test_docstring_examples():
    result = doctest.testmod(penguin_gym.judges.spec, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
