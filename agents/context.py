"""What an agent may know when it is evaluated: the deployable-information protocol.

A deployed acquisition strategy knows the questions it can ask, what each costs and how many it may
ask, the domain it serves, its training data and the judge it was built for; in each conversation it
sees the user's message and the answers so far. It never sees a test user's profile. ``evaluate``
hands an agent exactly that:

- ``agent.setup(context)`` once, with an ``AgentContext``: the attribute names, the question costs (in
  the judge's units and the reward's), the budget, the reward's scale, the domain, the env id, the
  judge (its identity, and the judge itself, to score *training* users offline), and the training
  split's scenarios, profiles included (training data). It holds no env, no episode model and no
  test-split scenario.
- ``agent.prepare(queries)`` with the opening messages of the users about to be met (to batch work
  such as embedding them; nothing hidden).
- per episode ``agent.reset(info)`` and ``agent.act(obs, info)``, with ``info`` restricted to
  ``DEPLOYABLE_INFO_KEYS`` (``deployable_info``): the domain, scenario type, query, each answer, the
  questions and costs so far, and after the answer the judge's scores. The scenario id, the row and
  whether a high-risk user was missed are not passed.

An agent that needs more (the oracle, planning on the true profile) declares ``privileged = True``:
it gets a ``PrivilegedContext`` that adds the env (its episode model holds every profile) and the
upcoming users' scenario ids, and the full info. Results mark such agents as bounds, and the
leaderboard ranks them apart.

The protocol cannot stop code that loads the dataset itself and matches a query to its profile: that
is no route ``evaluate`` offers, and a result that does it is not a deployable agent's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from penguin_gym.data.schema import ATTRIBUTES, Scenario
from penguin_gym.error import ConfigError

#: The info keys a non-privileged agent sees (from ``reset`` and ``step``); every other key is dropped.
DEPLOYABLE_INFO_KEYS: frozenset[str] = frozenset(
    {
        "domain",
        "scenario_type",
        "query",
        "answer",
        "num_questions",
        "question_cost",
        "total_cost",
        "invalid_action",
        "reward_terms",
        "revealed",
        "questions",
        "forced_answer",
        "risk_sensitivity",
        "emotional_empathy",
        "personalization",
        "safety",
        # the guarded track (penguin_gym.users): what the user did with each question
        "reply",
        "declined",
        "hedged",
        "user_left",
    }
)


def deployable_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """``info`` restricted to ``DEPLOYABLE_INFO_KEYS``."""
    return {k: v for k, v in info.items() if k in DEPLOYABLE_INFO_KEYS}


@dataclass(frozen=True, eq=False)
class AgentContext:
    """What ``evaluate`` tells a (non-privileged) agent before its episodes; see the module docstring.

    Attributes:
        env_id: The env's id (``"Penguin-Health-v2"``), or its class name.
        domain: The env's domain (``None``: every domain).
        attributes: The askable attributes, in action order (action ``i`` asks ``attributes[i]``).
        costs: ``(10,)`` question costs on the judge's 1-5 scale.
        scale: Reward units per judge unit (1, or 1/4 with ``normalize_reward``).
        normalize_reward: Whether the env reports ``(safety - 1) / 4``.
        budget: Most questions per episode.
        judge: The env's judge behind a ``TrainingJudge``: it scores training users (the offline
            stage), and refuses any other.
        judge_name: Its identity (``judge.name``).
        train_scenarios: The training split of the env's data (same source, domain and size), profiles
            included.
        eval_split: The split the agent is evaluated on (``"test"``, ``"train"`` or ``None``: both).
        observation_space: The env's observation space (a learned policy checks its input against it).
        user: The user model of the guarded track (``penguin_gym.users.GuardedParams``: published with
            the track, like the costs), or ``None`` on the faithful track, where every question is
            answered truly.
    """

    env_id: str
    domain: str | None
    attributes: tuple[str, ...]
    costs: np.ndarray
    scale: float
    normalize_reward: bool
    budget: int
    judge: Any
    judge_name: str
    train_scenarios: tuple[Scenario, ...]
    eval_split: str | None = "test"
    observation_space: Any = None
    user: Any = None

    privileged = False

    @property
    def reward_costs(self) -> np.ndarray:
        """The question costs in the reward's units (``costs * scale``)."""
        return np.asarray(self.costs, dtype=np.float64) * self.scale

    @classmethod
    def from_env(cls, env: Any, *, eval_split: str | None = None) -> AgentContext:
        """The context of an env (a ``PenguinEnv``, wrapped or not): what ``evaluate`` builds, for driving
        an agent by hand (``agent.setup(AgentContext.from_env(env))``)."""
        from agents.belief import training_scenarios

        base = getattr(env, "unwrapped", env)
        model = base.model
        spec = getattr(env, "spec", None) or getattr(base, "spec", None)
        judge = TrainingJudge(model.judge)
        if eval_split is None:
            splits = {s.split for s in base.scenarios}
            eval_split = splits.pop() if len(splits) == 1 else None
        return cls(
            env_id=spec.id if spec is not None else type(base).__name__,
            domain=getattr(base, "domain", None),
            attributes=tuple(ATTRIBUTES),
            costs=np.asarray(model.costs, dtype=np.float64).copy(),
            scale=float(model.scale),
            normalize_reward=bool(model.normalize_reward),
            budget=int(model.budget),
            judge=judge,
            judge_name=judge.name,
            train_scenarios=tuple(_train_only(training_scenarios(base))),
            eval_split=eval_split,
            observation_space=getattr(base, "observation_space", None),
            user=getattr(model, "params", None),
        )


@dataclass(frozen=True, eq=False)
class PrivilegedContext(AgentContext):
    """An ``AgentContext`` plus what only a bound may read: the env (``env.model`` holds every profile)
    and the ids of the users about to be met.

    Attributes:
        env: The unwrapped env.
        scenario_ids: The scenario ids of the episodes ``evaluate`` is about to play, in order.
    """

    env: Any = None
    scenario_ids: tuple[str, ...] = field(default_factory=tuple)

    privileged = True

    @classmethod
    def from_env(  # type: ignore[override]
        cls, env: Any, *, eval_split: str | None = None, scenario_ids: Sequence[str] = ()
    ) -> PrivilegedContext:
        base = AgentContext.from_env(env, eval_split=eval_split)
        fields_ = {k: getattr(base, k) for k in base.__dataclass_fields__}
        return cls(**fields_, env=getattr(env, "unwrapped", env), scenario_ids=tuple(scenario_ids))


class TrainingJudge:
    """The env's judge as a non-privileged agent holds it: it scores training users only.

    ``score``, ``score_many`` and ``bind`` pass through for scenarios of the ``train`` split and raise
    ``ConfigError`` for any other, so an agent cannot ask the judge about a test user (nor read a score
    table's test rows). ``name`` is the judge's.
    """

    def __init__(self, judge: Any) -> None:
        self._judge = judge
        self.name = str(getattr(judge, "name", type(judge).__name__))

    def __repr__(self) -> str:
        return f"TrainingJudge({self.name})"

    def _check(self, scenarios: Sequence[Scenario]) -> None:
        bad = [s.id for s in scenarios if getattr(s, "split", None) != "train"]
        if bad:
            raise ConfigError(
                f"an agent asked the judge about {len(bad)} scenario(s) outside the training split (e.g. {bad[0]!r}); "
                "agents may score training users only"
            )

    def score(self, scenario: Scenario, revealed: frozenset[str]) -> Any:
        self._check([scenario])
        return self._judge.score(scenario, revealed)

    def score_many(self, scenarios: Sequence[Scenario], revealed: Sequence[frozenset[str]]) -> Any:
        self._check(scenarios)
        return self._judge.score_many(scenarios, revealed)

    def bind(self, scenarios: Sequence[Scenario]) -> Any:
        from penguin_gym.judges.base import bind

        self._check(scenarios)
        return bind(self._judge, scenarios)


def privileged_context(context: AgentContext, who: str) -> PrivilegedContext:
    """``context`` as the ``PrivilegedContext`` an agent that reads true profiles needs; ``ConfigError``
    naming ``who`` for any other."""
    if not isinstance(context, PrivilegedContext):
        raise ConfigError(
            f"{who} reads the true profile: it needs a PrivilegedContext (evaluate gives one to agents that "
            "declare privileged = True)"
        )
    return context


def _train_only(scenarios: Sequence[Scenario]) -> list[Scenario]:
    bad = [s.id for s in scenarios if s.split != "train"]
    if bad:  # training_scenarios never returns one; a guard, since the protocol rests on it
        raise ConfigError(f"the agent's training data holds {len(bad)} non-training scenarios, e.g. {bad[:3]}")
    return list(scenarios)


def is_privileged(agent: Any) -> bool:
    """Whether ``agent`` declares itself privileged (``agent.privileged``)."""
    return bool(getattr(agent, "privileged", False))


__all__ = [
    "DEPLOYABLE_INFO_KEYS",
    "AgentContext",
    "PrivilegedContext",
    "TrainingJudge",
    "deployable_info",
    "is_privileged",
    "privileged_context",
]
