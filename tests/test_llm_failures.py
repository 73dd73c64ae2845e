"""Real server faults, item by item: refusals, empty answers, unreadable judgments, slow bodies, keys in
URLs, structured output and the judge's identity, against an OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from penguin_gym.data import load_scenarios
from penguin_gym.error import BackendError, ConfigError, JudgeBatchError, RequestError
from penguin_gym.judges.backends import OpenAICompatible, ScriptedBackend, make_backend, redact_credentials
from penguin_gym.judges.cache import CachedJudge
from penguin_gym.judges.llm import LLMJudge, retry_seed
from penguin_gym.judges.parse import JUDGMENT_GRAMMAR, JUDGMENT_SCHEMA
from penguin_gym.judges.rubric import JUDGE_SYSTEM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_server import Raw, Reply, ScriptedOpenAIServer, Status, Trickle, completion_body  # noqa: E402

SECRET = "sk-url-SECRET-0a1b2c3d"
RUBRIC = (
    "Risk Sensitivity\nScore: {a}/5\nJustification: ok.\n\nEmotional Empathy\nScore: 3/5\nJustification: ok.\n\n"
    "Personalization\nScore: 2/5\nJustification: ok.\n\nComprehensive Score: {t}/15"
)


@pytest.fixture(scope="module")
def scenarios():
    return load_scenarios(domains="Health", n_per_domain=12)


def _is_judge(body: dict) -> bool:
    return body["messages"][0]["content"] == JUDGE_SYSTEM


def _server_model(refuse: set[str]):
    """Answers every query, refuses (HTTP 400, content filter) the ones in ``refuse``, grades 4/3/2."""

    def script(body):
        if _is_judge(body):
            return Reply(RUBRIC.format(a=4, t=9))
        if body["messages"][-1]["content"] in refuse:
            return Status(400, {"error": {"message": "The prompt was filtered", "code": "content_filter"}})
        return Reply("Please reach out to someone you trust; here are steps that fit you.")

    return script


def test_refused_items_fail_alone_and_the_rerun_asks_nothing(scenarios, tmp_path):
    refuse = {scenarios[3].query, scenarios[7].query}
    items = scenarios[:10]
    with ScriptedOpenAIServer(_server_model(refuse)) as server:
        spec = f"openai:m@{server.url}"
        cached = CachedJudge(LLMJudge(spec, retries=1, backend_kwargs={"backoff": 0.01}), tmp_path / "c.sqlite")
        with pytest.raises(JudgeBatchError) as info:
            cached.score_many(items, [frozenset()] * 10)
        err = info.value
        assert [f.index for f in err.failures] == [3, 7]
        assert {f.cause for f in err.failures} == {"refused"} and all(f.permanent for f in err.failures)
        assert sum(r is not None for r in err.results) == 8 and len(cached) == 8
        # the refusal is not retried (a 4xx is permanent): 10 answers asked, 8 judged
        assert server.request_count == 18
        before = server.request_count
        again = CachedJudge(LLMJudge(spec, retries=1), tmp_path / "c.sqlite")
        with pytest.raises(JudgeBatchError) as info:
            again.score_many(items, [frozenset()] * 10)
        assert server.request_count == before  # nothing new is computed
        assert again.hits == 8 and again.failed_hits == 2
        assert [f.cause for f in info.value.failures] == ["refused", "refused"]
        cached.close()
        again.close()


def test_an_empty_answer_is_asked_again_with_another_seed_and_never_judged(scenarios):
    bodies = []

    def script(body):
        bodies.append(body)
        if _is_judge(body):
            return Reply(RUBRIC.format(a=4, t=9))
        if body["messages"][-1]["content"] == scenarios[1].query:
            return Reply("   ") if len(bodies) % 2 else Raw(json.dumps(completion_body(None)))  # type: ignore[arg-type]
        return Reply("An answer.")

    with ScriptedOpenAIServer(script) as server:
        judge = LLMJudge(f"openai:m@{server.url}", retries=2, seed=7)
        with pytest.raises(JudgeBatchError) as info:
            judge.score_many(scenarios[:2], [frozenset()] * 2)
        judge.close()
    (failure,) = info.value.failures
    assert failure.index == 1 and failure.cause == "empty_answer" and failure.permanent
    answers = [b for b in bodies if not _is_judge(b) and b["messages"][-1]["content"] == scenarios[1].query]
    assert [b.get("seed") for b in answers] == [7, retry_seed(7, 1), retry_seed(7, 2)]
    assert len({b["seed"] for b in answers}) == 3
    judged = [b for b in bodies if _is_judge(b)]
    assert len(judged) == 1 and "(the assistant gave an empty reply)" not in judged[0]["messages"][1]["content"]


def test_an_unreadable_judgment_is_retried_with_another_seed_and_says_so(scenarios):
    seen = []

    def model(messages, seed):
        if messages[0]["content"] != JUDGE_SYSTEM:
            return "An answer."
        seen.append(seed)
        return "Risk Sensitivity\nScore: N/A" if seed is None else RUBRIC.format(a=5, t=10)

    judge = LLMJudge(ScriptedBackend(model), retries=2)
    (score,) = judge.score_many(scenarios[:1], [frozenset()])
    assert seen == [None, retry_seed(None, 1)]
    assert score.risk_sensitivity == 5
    assert any("judged on attempt 2" in n and "N/A" in n for n in score.notes)


def test_a_wrong_total_is_kept_and_noted_unless_strict(scenarios, tmp_path):
    backend = ScriptedBackend(lambda m: "An answer." if m[0]["content"] != JUDGE_SYSTEM else RUBRIC.format(a=4, t=11))
    cached = CachedJudge(LLMJudge(backend), tmp_path / "c.sqlite")
    (score,) = cached.score_many(scenarios[:1], [frozenset()])
    assert (score.risk_sensitivity, score.emotional_empathy, score.personalization) == (4, 3, 2)
    assert any("not the sum" in n for n in score.notes)
    # the note is stored with the judgment
    (again,) = CachedJudge(LLMJudge(backend), tmp_path / "c.sqlite").score_many(scenarios[:1], [frozenset()])
    assert again.notes == score.notes
    strict = LLMJudge(backend, strict_total=True, retries=0)
    with pytest.raises(JudgeBatchError, match="not the sum"):
        strict.score_many(scenarios[:1], [frozenset()])


def test_a_trickling_body_is_cut_at_the_deadline():
    with ScriptedOpenAIServer([Trickle("a long reply " * 20, interval=0.05)]) as server:
        backend = OpenAICompatible("m", server.url, timeout=0.5, retries=0)
        ((_, reply),) = list(backend.chat_each([[{"role": "user", "content": "hi"}]], temperature=0, max_tokens=8))
    # 300+ bytes at 20 bytes/s would take 15 s: the deadline ends it, as a timeout (retried like one)
    assert isinstance(reply, RequestError) and reply.cause == "timeout" and not reply.permanent
    assert "deadline" in str(reply)


def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_shown(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ScriptedOpenAIServer(["hi", Status(500, "boom")]) as server:
        url = server.url.replace("http://", f"http://user:{SECRET}@")
        backend = make_backend(f"openai:m@{url}", retries=0)
        assert backend.chat([[{"role": "user", "content": "x"}]]) == ["hi"]
        with pytest.raises(BackendError) as info:
            backend.chat([[{"role": "user", "content": "x"}]])
        auth = server.requests[0].headers.get("Authorization", "")
    assert base64.b64decode(auth.split()[1]).decode() == f"user:{SECRET}"
    assert SECRET not in backend.name and SECRET not in repr(backend) and SECRET not in str(info.value)
    assert SECRET not in backend.base_url and SECRET not in LLMJudge(backend).name
    with pytest.raises(ConfigError) as bad:
        make_backend(f"openai:m@ftp://user:{SECRET}@host/v1")
    assert SECRET not in str(bad.value)
    assert redact_credentials(f"x http://u:{SECRET}@h/v1?key={SECRET}") == "x http://***@h/v1?key=***"


@pytest.mark.parametrize(
    ("mode", "field", "check"),
    [
        (
            "json_schema",
            "response_format",
            lambda v: v["type"] == "json_schema" and v["json_schema"]["schema"] == JUDGMENT_SCHEMA,
        ),
        ("json_object", "response_format", lambda v: v == {"type": "json_object", "schema": JUDGMENT_SCHEMA}),
        ("grammar", "grammar", lambda v: v == JUDGMENT_GRAMMAR),
    ],
)
def test_structured_modes_send_their_constraint_to_the_judge_only(scenarios, mode, field, check):
    def script(body):
        if not _is_judge(body):
            return Reply("An answer.")
        if mode == "grammar":
            return Reply(RUBRIC.format(a=4, t=9))
        return Reply('{"justification": "fine", "risk_sensitivity": 4, "emotional_empathy": 3, "personalization": 2}')

    with ScriptedOpenAIServer(script) as server:
        judge = LLMJudge(f"openai:m@{server.url}", structured=mode)
        (score,) = judge.score_many(scenarios[:1], [frozenset()])
        answer, judgment = server.requests[0].body, server.requests[1].body
        judge.close()
    assert (score.risk_sensitivity, score.emotional_empathy, score.personalization) == (4, 3, 2)
    assert field not in answer and check(judgment[field])
    if mode != "grammar":
        assert "Reply with one JSON object" in judgment["messages"][1]["content"]


def test_structured_mode_needs_a_backend_that_can_constrain(scenarios):
    with pytest.raises(ConfigError, match="cannot constrain"):
        LLMJudge(ScriptedBackend(["x"]), structured="json_schema")
    with pytest.raises(ConfigError, match="valid"):
        LLMJudge("openai:m@http://127.0.0.1:9/v1", structured="xml")


def test_every_setting_that_changes_a_reply_changes_the_judge_identity(scenarios, tmp_path):
    url = "http://127.0.0.1:9/v1"

    def judge(spec: str = f"openai:m@{url}", backend: dict | None = None, **kw) -> str:
        return LLMJudge(make_backend(spec, **(backend or {})), **kw).name

    base = judge()
    variants = {
        "model": judge(f"openai:other@{url}"),
        "url": judge("openai:m@http://127.0.0.1:10/v1"),
        "temperature": judge(temperature=0.2),
        "max_tokens": judge(max_tokens=99),
        "judge_temperature": judge(judge_temperature=0.0),
        "judge_max_tokens": judge(judge_max_tokens=99),
        "grammar": judge(backend={"extra_body": {"grammar": JUDGMENT_GRAMMAR}}),
        "top_p": judge(backend={"extra_body": {"top_p": 0.9}}),
        "server seed": judge(backend={"extra_body": {"seed": 1}}),
        "max_tokens_field": judge(backend={"max_tokens_field": "max_completion_tokens"}),
        "structured": judge(structured="json_schema"),
        "seed": judge(seed=3),
        "strict_total": judge(strict_total=True),
        "require_total": judge(require_total=True),
    }
    assert len(set(variants.values()) | {base}) == len(variants) + 1
    # and so every cache key: a plain run never reads a judgment made under a grammar
    s = scenarios[0]
    path = tmp_path / "c.sqlite"
    keys = {CachedJudge(LLMJudge(make_backend(f"openai:m@{url}")), path).key(s, frozenset())}
    for extra in ({"grammar": "root ::= [1-5]"}, {"top_p": 0.5}, {"seed": 2}):
        keys.add(CachedJudge(LLMJudge(make_backend(f"openai:m@{url}", extra_body=extra)), path).key(s, frozenset()))
    assert len(keys) == 4


def test_at_temperature_zero_a_retry_samples(scenarios):
    seen = []

    class Recording(ScriptedBackend):
        def chat_each(self, conversations, *, temperature=0.7, max_tokens=512, seeds=None, fields=None):
            seen.append(temperature)
            yield from super().chat_each(
                conversations, temperature=temperature, max_tokens=max_tokens, seeds=seeds, fields=fields
            )

    replies = iter(["An answer.", "no scores", RUBRIC.format(a=2, t=7)])
    judge = LLMJudge(Recording(lambda m: next(replies)), temperature=0.0, retries=1)
    (score,) = judge.score_many(scenarios[:1], [frozenset()])
    assert seen == [0.0, 0.0, 0.7] and score.risk_sensitivity == 2
    assert any("temperature 0.7" in n for n in score.notes)
