"""The deployable-information protocol: what ``evaluate`` hands an agent holds no test user's profile.

A spy agent records everything ``evaluate`` gives it (the context, ``prepare``'s arguments, every
observation and info); a walk over every object reachable from those finds no test-split scenario, no
env or episode model, and no test scenario id. A cheating agent that tries each route gets nothing or
an error. Privileged agents get the env and are marked; agents trained on a split are refused on it;
LLM-driven agents report their fallbacks and fail above a threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import penguin_gym  # noqa: F401
from agents import evaluate, make_agent
from agents.base import DialogueAgent
from agents.context import DEPLOYABLE_INFO_KEYS, AgentContext, PrivilegedContext
from agents.evaluate import LeakageError, LLMFallbackError
from penguin_gym.data import load_scenarios
from penguin_gym.data.schema import Scenario
from penguin_gym.env import PenguinEnv
from penguin_gym.error import ConfigError
from penguin_gym.model import ANSWER, EpisodeModel

ENV_ID = "Penguin-Health-v2"
SMALL = {"n_per_domain": 60}


def reachable(*roots: Any, limit: int = 200_000) -> list[Any]:
    """Every object reachable from ``roots`` through attributes, slots, dataclass fields, mappings,
    sequences, sets and object arrays (each once)."""
    seen: set[int] = set()
    out: list[Any] = []
    stack = list(roots)
    while stack and len(out) < limit:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None), type)):
            if isinstance(obj, str) and id(obj) not in seen:
                seen.add(id(obj))
                out.append(obj)
            continue
        seen.add(id(obj))
        out.append(obj)
        if isinstance(obj, Mapping):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend(obj.reshape(-1).tolist())
            continue
        if hasattr(obj, "__dict__"):  # classes were skipped above
            stack.extend(vars(obj).values())
        for name in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, name):
                stack.append(getattr(obj, name))
        closure = getattr(obj, "__closure__", None)
        if closure:
            stack.extend(c.cell_contents for c in closure if c.cell_contents is not None)
    return out


class Spy(DialogueAgent):
    """Answers after one question and keeps everything it was given."""

    name = "spy"

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Any] = []
        self.infos: list[dict[str, Any]] = []

    def setup(self, context: AgentContext) -> None:
        super().setup(context)
        self.received.append(context)

    def prepare(self, queries: list[str]) -> None:
        self.received.append(list(queries))

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        self.infos.append(dict(info))
        self.received.append(dict(info))

    def choose(self, obs: Mapping[str, np.ndarray]) -> int:
        self.received.append({k: np.array(v) for k, v in obs.items()})
        return 7 if not self.dialogue.order else ANSWER

    def act(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> int:
        self.infos.append(dict(info))
        self.received.append(dict(info))
        return super().act(obs, info)


def test_a_non_privileged_agent_receives_no_test_profile() -> None:
    spy = Spy()
    res = evaluate(spy, ENV_ID, env_kwargs=SMALL)
    assert res.meta["privileged"] is False
    test = [s for s in load_scenarios(domains="Health", **SMALL) if s.split == "test"]
    test_ids = {s.id for s in test}
    assert len(test_ids) == len(res.rows) > 5
    objs = reachable(spy.received, spy)
    scenarios = [o for o in objs if isinstance(o, Scenario)]
    assert scenarios and all(s.split == "train" for s in scenarios)  # the training split, profiles included
    assert not [o for o in objs if isinstance(o, (gym.Env, EpisodeModel, PenguinEnv))]
    assert not test_ids & {o for o in objs if isinstance(o, str)}  # not even an id to look one up by
    assert spy.infos and all(set(i) <= DEPLOYABLE_INFO_KEYS for i in spy.infos)
    assert any("answer" in i for i in spy.infos) and all("scenario_id" not in i for i in spy.infos)


class Cheater(DialogueAgent):
    """Tries every route ``evaluate`` offers to a test user's profile; records what each gave."""

    name = "cheater"

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, Any] = {}
        self.errors: dict[str, str] = {}

    def _try(self, route: str, fn: Any) -> None:
        try:
            value = fn()
        except Exception as e:  # noqa: BLE001 - every failure is the route closing
            self.errors[route] = f"{type(e).__name__}: {e}"
        else:
            if value:
                self.found[route] = value

    def setup(self, context: AgentContext) -> None:
        super().setup(context)
        self.ctx = context
        self._try("context.env", lambda: context.env)  # type: ignore[attr-defined]
        self._try("context.model", lambda: context.model)  # type: ignore[attr-defined]
        self._try("context test scenarios", lambda: [s for s in context.train_scenarios if s.split != "train"])

    def prepare(self, queries: list[str]) -> None:
        self.queries = list(queries)

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        self._try("info scenario_id", lambda: info["scenario_id"])
        self._try("info scenario_index", lambda: info["scenario_index"])
        import dataclasses

        fake = dataclasses.replace(
            self.ctx.train_scenarios[0], id="guess", query=str(info["query"]), split="test"
        )  # a guessed user, marked as the test user it stands for
        self._try("judge on a test user", lambda: self.ctx.judge.score(fake, frozenset()))
        self._try("judge bound to a test user", lambda: self.ctx.judge.bind([fake]))

    def choose(self, obs: Mapping[str, np.ndarray]) -> int:
        return ANSWER


def test_a_cheating_agent_gets_nothing_through_any_route() -> None:
    cheater = Cheater()
    evaluate(cheater, ENV_ID, episodes=3, env_kwargs=SMALL)
    assert cheater.found == {}
    assert set(cheater.errors) == {
        "context.env",
        "context.model",
        "info scenario_id",
        "info scenario_index",
        "judge on a test user",
        "judge bound to a test user",
    }
    assert "training users only" in cheater.errors["judge on a test user"]
    assert "AttributeError" in cheater.errors["context.env"]


def test_privileged_agents_get_the_env_and_are_marked() -> None:
    res = evaluate(make_agent("oracle"), ENV_ID, env_kwargs=SMALL)
    assert res.meta["privileged"] is True
    assert res.summary["regret_mean"] == pytest.approx(0.0, abs=1e-12)
    true = evaluate(make_agent("mcts", mode="true", num_rollouts=30), ENV_ID, env_kwargs=SMALL)
    assert true.meta["privileged"] is True
    env = gym.make(ENV_ID, split="test", **SMALL)
    ctx = PrivilegedContext.from_env(env, scenario_ids=["a"])
    assert ctx.env is env.unwrapped and ctx.scenario_ids == ("a",) and ctx.privileged


def test_an_agent_of_the_old_protocol_is_told_what_changed() -> None:
    class Old:
        name = "old"

        def attach(self, env: Any) -> None:
            self.model = env.model

        def reset(self, info: Any) -> None: ...

        def act(self, obs: Any, info: Any) -> int:
            return ANSWER

    with pytest.raises(ConfigError, match=r"attach\(env\), the old protocol.*setup\(context\)"):
        evaluate(Old(), ENV_ID, episodes=2, env_kwargs=SMALL)


@pytest.mark.parametrize(
    ("trained_split", "eval_split", "refused"),
    [("train", "test", False), ("test", "test", True), (None, "test", True), ("train", "train", True)],
)
def test_an_agent_trained_on_the_split_it_meets_is_refused(trained_split: Any, eval_split: str, refused: bool) -> None:
    agent = make_agent("answer-now")
    agent.trained_on = {"env_id": ENV_ID, "split": trained_split}  # type: ignore[attr-defined]
    if refused:
        with pytest.raises(LeakageError, match="users it trained on"):
            evaluate(agent, ENV_ID, episodes=3, split=eval_split, env_kwargs=SMALL)
    else:
        assert (
            evaluate(agent, ENV_ID, episodes=3, split=eval_split, env_kwargs=SMALL).meta["trained_on"]["split"]
            == "train"
        )


def test_llm_fallbacks_are_counted_and_fail_above_the_threshold() -> None:
    from agents.raise_agent import RaiseAgent
    from penguin_gym.judges.backends import make_backend

    def agent(reply: str) -> RaiseAgent:
        return RaiseAgent(variant="agent", backend=make_backend("scripted", replies=lambda messages: reply))

    res = evaluate(agent("no idea"), ENV_ID, episodes=4, env_kwargs=SMALL)
    usage = res.meta["llm"]
    assert usage["calls"] > 0 and usage["fallbacks"] == usage["calls"]  # every reply was unusable
    assert sum(usage["by_reason"].values()) == usage["fallbacks"]
    with pytest.raises(LLMFallbackError, match=r"fell back to its offline modules on \d+ of \d+ LLM replies") as err:
        evaluate(agent("no idea"), ENV_ID, episodes=4, env_kwargs=SMALL, max_fallback_rate=0.1)
    assert err.value.result is not None and len(err.value.result.rows) == 4  # nothing computed is lost

    def sensible(messages: list[dict[str, str]]) -> str:  # a usable rating, and a usable first question
        text = messages[-1]["content"]
        if "how complete is this background" in text:
            return "5" if "Emotional State" in text else "1"
        return "Emotional State"

    good = RaiseAgent(variant="agent", backend=make_backend("scripted", replies=sensible))
    ok = evaluate(good, ENV_ID, episodes=4, env_kwargs=SMALL, max_fallback_rate=0.0)
    assert ok.meta["llm"]["calls"] > 0 and ok.meta["llm"]["fallbacks"] == 0
    assert evaluate(make_agent("static"), ENV_ID, episodes=2, env_kwargs=SMALL).meta.get("llm") is None
