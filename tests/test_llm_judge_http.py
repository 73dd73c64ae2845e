"""LLMJudge and the OpenAI-compatible backend against a real local HTTP server that misbehaves on cue.

The server (tests/llm_server.py) listens on 127.0.0.1 and answers from a script: good replies, slow
replies, 500s, 429s, hangs past the client's timeout, truncated JSON and garbage. No network, no key:
the "key" is a fake the tests put in the environment, and they check it never reaches a log line, a
judge name, a pickle or the cache file.
"""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from penguin_gym.data import ATTRIBUTES, load_scenarios
from penguin_gym.error import BackendError, ConfigError, DependencyNotInstalled, JudgeBatchError, RequestError
from penguin_gym.judges.backends import OpenAICompatible, make_backend
from penguin_gym.judges.cache import CachedJudge
from penguin_gym.judges.llm import LLMJudge
from penguin_gym.judges.rubric import JUDGE_SYSTEM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_server import Behaviour, Disconnect, Hang, Raw, Reply, ScriptedOpenAIServer, Status  # noqa: E402

SECRET = "sk-test-SECRET-9f8e7d6c5b4a"
KEY_ENV = "PENGUIN_TEST_API_KEY"
USER = [{"role": "user", "content": "hello"}]


def _rubric(a: int, b: int, c: int) -> str:
    return (
        f"**Risk Sensitivity**\nScore: {a}/5\nJustification: ok.\n\n**Emotional Empathy**\nScore: {b}/5\n\n"
        f"**Personalization**\nScore: {c}/5\n\nComprehensive Score: {a + b + c}/15"
    )


def _answer_or_grade(body: dict) -> str:
    """A well-behaved model: answers queries, grades answers by how much background the responder had."""
    messages = body["messages"]
    if messages[0]["content"] == JUDGE_SYSTEM:
        n = int(messages[1]["content"].split("[knew ")[1].split("]")[0])
        return _rubric(min(5, 2 + n), 3, min(5, 1 + n))
    return f"Here is my advice. [knew {messages[0]['content'].count(chr(10) + '- ')}]"


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


@pytest.fixture(scope="module")
def scenarios():
    return load_scenarios(domains="Health", n_per_domain=20)


def _backend(server: ScriptedOpenAIServer, **kwargs) -> OpenAICompatible:
    kwargs.setdefault("api_key_env", KEY_ENV)
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("timeout", 5.0)
    return OpenAICompatible("test-model", server.url, **kwargs)


def test_judge_end_to_end_and_key_never_logged(key, scenarios, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    with ScriptedOpenAIServer(_answer_or_grade) as server:
        backend = make_backend(f"openai:test-model@{server.url}", api_key_env=KEY_ENV, backoff=0.01)
        judge = LLMJudge(backend, temperature=0.7, max_tokens=128)
        revealed = [
            frozenset(),
            frozenset({"Age"}),
            frozenset({"Age", "Mental Health Status"}),
            frozenset({"Age", "Gender", "Profession"}),
        ]
        out = judge.score_many(scenarios[:4], revealed)
        assert [s.risk_sensitivity for s in out] == [2, 3, 4, 5]
        assert [s.personalization for s in out] == [1, 2, 3, 4]
        assert out[1].response == "Here is my advice. [knew 1]" and "Comprehensive Score: 8/15" in out[1].raw
        assert server.request_count == 8
        first = server.requests[0]
        assert first.path == "/v1/chat/completions"
        assert first.headers["Authorization"] == f"Bearer {key}"  # the key is used...
        assert first.body["model"] == "test-model" and first.body["temperature"] == 0.7
        assert first.body["max_tokens"] == 128
        # ...and stored nowhere: not in the name, the repr, a pickle, the logs or the cache file.
        cached = CachedJudge(judge, tmp_path / "judgments.sqlite")
        cached.score_many(scenarios[4:6], revealed[:2])
        cached.close()
    assert key not in judge.name and key not in repr(backend) and key.encode() not in pickle.dumps(backend)
    assert key not in caplog.text
    assert all(key not in str(r.args) for r in caplog.records)
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log; without the key
    for f in tmp_path.iterdir():
        assert key.encode() not in f.read_bytes(), f


def test_concurrent_requests_respect_the_limit(key):
    # Each request waits at the server until 4 are in flight together: 8 requests pass only as two full
    # rounds of 4 (sent one at a time, the first would wait alone until the barrier's deadline and
    # break it), and the peak shows no more than 4 were ever sent at once. No clock is read.
    rounds = threading.Barrier(4, timeout=10.0)
    arrivals: list[int] = []

    def wait_for_a_full_round(body: dict) -> Behaviour:
        try:
            arrivals.append(rounds.wait())
        except threading.BrokenBarrierError:
            return Status(500, {"error": {"message": "fewer than 4 requests in flight"}})
        return "together"

    with ScriptedOpenAIServer(wait_for_a_full_round) as server:
        backend = _backend(server, concurrency=4, retries=0, timeout=20.0)
        replies = backend.chat([USER] * 8)
    assert replies == ["together"] * 8
    assert sorted(arrivals) == [0, 0, 1, 1, 2, 2, 3, 3]  # two rounds of 4
    assert server.peak_in_flight == 4


def test_retries_on_500_429_timeouts_truncated_json_and_garbage(key, caplog):
    caplog.set_level(logging.WARNING)
    script = [
        Status(500, {"error": {"message": "internal"}}),
        Status(429, {"error": {"message": "rate limited"}}, headers={"Retry-After": "0"}),
        Hang(2.0),
        Raw('{"choices": [{"message": {"content": "Risk Sens'),  # truncated JSON
        Raw("<html><body>502 Bad Gateway</body></html>", content_type="text/html"),
        Raw(json.dumps({"choices": []})),  # valid JSON, not a completion
        Disconnect(),
        Status(503, "upstream unavailable"),
        "finally",
    ]
    with ScriptedOpenAIServer(script) as server:
        backend = _backend(server, retries=8, timeout=0.3, max_backoff=0.05)
        assert backend.chat([USER]) == ["finally"]
        assert server.request_count == 9
    text = caplog.text
    for expected in ("HTTP 500", "HTTP 429", "timed out", "malformed response", "connection error", "HTTP 503"):
        assert expected in text, expected
    assert key not in text


def test_failure_after_retries_is_loud(key):
    with ScriptedOpenAIServer(default=Status(500, "boom")) as server:
        backend = _backend(server, retries=2)
        with pytest.raises(BackendError, match=r"failed after 3 attempts: HTTP 500"):
            backend.chat([USER])
        assert server.request_count == 3


def test_client_errors_are_not_retried_and_redacted(key):
    with ScriptedOpenAIServer(
        default=Status(401, {"error": {"message": f"Incorrect API key provided: {SECRET}"}})
    ) as s:
        backend = _backend(s, retries=3)
        with pytest.raises(BackendError) as info:
            backend.chat([USER])
        assert s.request_count == 1
    message = str(info.value)
    assert "HTTP 401" in message and KEY_ENV in message and SECRET not in message


def test_one_failed_request_leaves_the_others_of_its_batch(key):
    def script(body):
        return Status(500, "nope") if body["messages"][0]["content"] == "bad" else Reply("ok")

    with ScriptedOpenAIServer(script) as server:
        backend = _backend(server, retries=1, concurrency=2)
        convs = [USER, [{"role": "user", "content": "bad"}], USER]
        out = dict(backend.chat_each(convs, temperature=0.7, max_tokens=8))
        assert out[0] == out[2] == "ok"
        assert isinstance(out[1], RequestError) and out[1].cause == "server_error" and not out[1].permanent
        # chat() keeps its all-or-nothing contract and says how many failed
        with pytest.raises(BackendError, match=r"1 of 3 requests failed"):
            backend.chat(convs)


def test_missing_dependencies_give_the_install_hint(monkeypatch, key):
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(DependencyNotInstalled, match=r'pip install "penguin-gym\[llm\]"'):
        OpenAICompatible("m", "http://localhost:8000/v1")
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(DependencyNotInstalled, match=r'pip install "penguin-gym\[llm\]"'):
        make_backend("hf:some/model")


def test_judges_pickle_without_the_key(key, scenarios, tmp_path):
    with ScriptedOpenAIServer(_answer_or_grade) as server:
        cached = CachedJudge(LLMJudge(_backend(server)), tmp_path / "c.sqlite")
        blob = pickle.dumps(cached)
        assert key.encode() not in blob
        clone = pickle.loads(blob)  # e.g. in a SubprocVecEnv worker: the key is read from its environment
        assert clone.score(scenarios[0], frozenset({"Age"})).risk_sensitivity == 3
        assert server.requests[-1].headers["Authorization"] == f"Bearer {key}"
        assert clone.name == cached.name
        cached.close()  # the store's connection and the judge's HTTP client
        clone.close()


def test_garbage_judge_replies_become_recorded_failures(key, scenarios, caplog):
    def script(body):
        messages = body["messages"]
        if messages[0]["content"] != JUDGE_SYSTEM:
            return Reply("An answer.")
        if scenarios[1].query in messages[1]["content"]:
            return Reply("lorem ipsum dolor sit amet, 42!")  # valid HTTP, unparseable judgment
        return Reply(_rubric(4, 4, 4))

    caplog.set_level(logging.INFO)
    with ScriptedOpenAIServer(script) as server:
        judge = LLMJudge(_backend(server), retries=2)
        with pytest.raises(JudgeBatchError) as info:
            judge.score_many(scenarios[:3], [frozenset()] * 3)
        assert server.request_count == 3 + 3 + 2  # answers, judgments, two retries of the bad one
        judge.close()
    err = info.value
    assert err.results[0].safety == 4 and err.results[1] is None and err.results[2].safety == 4
    assert err.failures[0].raw == ("lorem ipsum dolor sit amet, 42!",) * 3
    assert scenarios[1].id in str(err) and scenarios[1].id in caplog.text


def test_missing_key_fails_in_the_constructor_naming_the_variable(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_VAR"):
        OpenAICompatible("gpt-4o", "https://api.example.com/v1", api_key_env="NO_SUCH_KEY_VAR")
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_VAR"):
        make_backend("openai:gpt-4o", api_key_env="NO_SUCH_KEY_VAR")


def test_localhost_needs_no_key(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with ScriptedOpenAIServer(["hi"]) as server:
        backend = OpenAICompatible("m", server.url, api_key_env="NO_SUCH_KEY_VAR")
        assert backend.chat([USER]) == ["hi"]
        assert "Authorization" not in server.requests[0].headers


def test_spec_strings_and_urls(key):
    b = make_backend("openai:meta-llama/Llama-3.1-8B-Instruct@http://localhost:8000/v1", api_key_env=KEY_ENV)
    assert b.model == "meta-llama/Llama-3.1-8B-Instruct" and b.url == "http://localhost:8000/v1/chat/completions"
    assert b.name == "openai:meta-llama/Llama-3.1-8B-Instruct@http://localhost:8000/v1"
    assert make_backend("openai:m@http://localhost:11434").url == "http://localhost:11434/v1/chat/completions"
    azure = OpenAICompatible(
        "my-deployment", "https://res.openai.azure.com", api_key_env=KEY_ENV, api_version="2024-06-01"
    )
    assert azure.url.endswith("/openai/deployments/my-deployment/chat/completions?api-version=2024-06-01")
    assert azure._request_headers()["api-key"] == key and "Authorization" not in azure._request_headers()
    with pytest.raises(ConfigError, match="base_url"):
        OpenAICompatible("m", "localhost:8000")


def test_env_with_an_llm_judge_spec(scenarios):
    import gymnasium as gym
    import numpy as np

    import penguin_gym  # noqa: F401
    from penguin_gym.judges.factory import make_judge

    with ScriptedOpenAIServer(_answer_or_grade) as server:
        env = gym.make("Penguin-Health-v2", judge=f"llm:openai:test-model@{server.url}")
        assert isinstance(env.unwrapped.judge, LLMJudge) and "test-model" in env.unwrapped.judge.name
        env.reset(seed=0)
        _, cost, *_ = env.step(ATTRIBUTES.index("Age"))
        _, reward, terminated, *_ = env.step(10)
        assert env.unwrapped.judge.responder._client is not None
        env.close()  # the env made the judge from its spec: it closes its HTTP client
        assert env.unwrapped.judge.responder._client is None
        venv = gym.make_vec(
            "Penguin-Health-v2", num_envs=2, vectorization_mode="vector_entry_point",
            judge=f"llm:openai:test-model@{server.url}",
        )  # fmt: skip
        venv.reset(seed=0)
        venv.step(np.array([10, 10]))
        assert venv.unwrapped.judge.responder._client is not None
        venv.close()
        assert venv.unwrapped.judge.responder._client is None
    # One attribute known: the scripted grader gives (3, 3, 2) -> 8/3.
    assert cost < 0 and terminated and reward == pytest.approx(8 / 3)
    with pytest.raises(ConfigError, match="backend spec"):
        make_judge("llm:")
    with pytest.raises(ConfigError, match="llm:<backend spec>"):
        make_judge("gpt-4o")


def test_penguin_gym_import_stays_light():
    code = (
        "import sys, penguin_gym, penguin_gym.judges, penguin_gym.judges.backends, penguin_gym.judges.llm, "
        "penguin_gym.judges.cache, penguin_gym.judges.table, penguin_gym.judges.fitting\n"
        "from penguin_gym.judges import LLMJudge, CachedJudge, ScoreTable, refit, make_backend\n"
        "heavy = [m for m in ('httpx', 'torch', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
