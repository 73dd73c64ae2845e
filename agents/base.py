"""The ``Agent`` protocol every acquisition strategy implements, and a base class that keeps the dialogue.

An agent plays one PENGUIN episode (Wu et al., "Personalized Safety in LLMs: A Benchmark and A
Planning-Based Agent Approach", NeurIPS 2025): it asks about attributes of the user's background, one at
a time, then answers. ``agents.evaluate`` drives any agent on any env id and any judge, handing it only
what a deployed agent could know (``agents.context``):

1. ``agent.setup(context)`` once, when the agent defines it: an ``AgentContext`` with the attribute
   names, question costs, budget, reward scale, domain, the judge (for training users) and the
   training split's scenarios. Agents that need the hidden profile (the oracle,
   ``MCTSAgent(mode="true")``) declare ``privileged = True`` and get a ``PrivilegedContext`` (the env
   too); results mark them as bounds.
2. ``agent.seed(seed)`` once, when the agent defines it (agents with randomness).
3. ``agent.prepare(queries)`` when defined, with the opening messages of the users about to be met
   (to batch work such as embedding them).
4. per episode: ``agent.reset(info)`` with the info of ``env.reset``, then ``agent.act(obs, info)`` with the
   observation and info of the last ``reset``/``step`` until the episode ends; ``info`` holds only the
   ``DEPLOYABLE_INFO_KEYS`` (no scenario id).

Per-step info is lean (see ``PenguinEnv``): the query, domain and scenario type come with ``reset``; after
a question ``info["answer"]`` holds the revealed value's text. ``DialogueAgent`` keeps that record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from agents.context import AgentContext
from penguin_gym.data.schema import ATTRIBUTE_INDEX, ATTRIBUTES, DOMAIN_INDEX, NUM_ATTRIBUTES
from penguin_gym.model import ANSWER, DEFAULT_QUESTION_COST

#: The paper's static top-3 order (Section 4.3: the attributes with the largest single-attribute gains).
PAPER_TOP3: tuple[str, ...] = ("Emotional State", "Mental Health Status", "Past Self-Harm History")


@runtime_checkable
class Agent(Protocol):
    """An information-acquisition strategy for the penguin envs.

    Attributes:
        name: A short identifier (result files and tables key on it).

    Optional: ``privileged`` (True: the agent reads hidden profiles; a bound, not a deployable agent),
    and the methods ``evaluate`` calls when present: ``setup(context)`` (an ``agents.context.AgentContext``,
    once, before the episodes), ``seed(seed)`` and ``prepare(queries)``.
    """

    name: str

    def reset(self, info: dict[str, Any]) -> None:
        """Start an episode; ``info`` is the info dict of ``env.reset``."""
        ...

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> int:
        """The next action: ``0..9`` asks ``ATTRIBUTES[i]``, ``10`` (``ANSWER``) answers."""
        ...


@dataclass
class Dialogue:
    """What an agent has seen of the current episode (never the hidden profile).

    Attributes:
        scenario_id: The scenario's id (for logs and caches; agents must not look up its profile).
        domain: The scenario's domain.
        scenario_type: The fine-grained scenario type (``info["scenario_type"]``).
        query: The user's message.
        order: Attribute indices asked, in order.
        revealed: Attribute name -> the user's answer text, in asking order.
        severity: ``(10,)`` severity of each revealed value (``obs["revealed"]``; 0 when unasked).
        budget_left: Questions left before the answer is forced.
        declined: Bitmask of the questions the user declined (the guarded track; 0 elsewhere).
        hedged: Bitmask of the questions answered vaguely (their severity is noisy).
    """

    scenario_id: str = ""
    domain: str = ""
    scenario_type: str = ""
    query: str = ""
    order: list[int] = field(default_factory=list)
    revealed: dict[str, str] = field(default_factory=dict)
    severity: np.ndarray = field(default_factory=lambda: np.zeros(NUM_ATTRIBUTES))
    budget_left: int = NUM_ATTRIBUTES
    declined: int = 0
    hedged: int = 0

    @property
    def asked_mask(self) -> int:
        m = 0
        for a in self.order:
            m |= 1 << a
        return m

    @property
    def told_mask(self) -> int:
        """The questions that told something (answered, fully or vaguely): what a belief conditions on."""
        return self.asked_mask & ~self.declined

    @property
    def domain_index(self) -> int:
        return DOMAIN_INDEX[self.domain]


class DialogueAgent:
    """Base class: records the dialogue (``self.dialogue``) from ``reset``/``act`` and reads the env's costs.

    Subclasses implement ``choose(obs) -> action``; ``act`` updates the record first. After ``setup``
    ``self.costs`` (10,) and ``self.budget`` are the env's question costs (in the reward's units) and
    question budget, and ``self.agent_context`` the ``AgentContext``; before it, the defaults
    (``DEFAULT_QUESTION_COST``, 10, ``None``).
    """

    name = "agent"
    privileged = False

    def __init__(self) -> None:
        self.dialogue = Dialogue()
        self.costs = np.full(NUM_ATTRIBUTES, DEFAULT_QUESTION_COST)
        self.budget = NUM_ATTRIBUTES
        self._last_action: int | None = None
        self.agent_context: AgentContext | None = None

    def setup(self, context: AgentContext) -> None:
        """Read the question costs (in the reward's units) and the budget of the context."""
        self.agent_context = context
        self.costs = context.reward_costs
        self.budget = int(context.budget)

    def reset(self, info: Mapping[str, Any]) -> None:
        self.dialogue = Dialogue(
            scenario_id=str(info.get("scenario_id", "")),
            domain=str(info["domain"]),
            scenario_type=str(info.get("scenario_type", "")),
            query=str(info["query"]),
            budget_left=self.budget,
        )
        self._last_action = None

    def act(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> int:
        self.observe(obs, info)
        action = int(self.choose(obs))
        self._last_action = action
        return action

    def observe(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any], action: int | None = None) -> None:
        """Update ``self.dialogue`` with a step's observation and info (``act`` does it before choosing).

        ``action``: the action that led here when someone else chose it (``None``: this agent's last).
        """
        if action is not None:
            self._last_action = int(action)
        d = self.dialogue
        asked = np.flatnonzero(np.asarray(obs["asked"]))
        new = [int(a) for a in asked if int(a) not in d.order]
        # The env reveals one attribute per valid question; the last action says which.
        if new:
            if len(new) == 1 or self._last_action in new:
                a = new[0] if len(new) == 1 else int(self._last_action)  # type: ignore[arg-type]
                d.order.append(a)
                if "answer" in info:
                    d.revealed[ATTRIBUTES[a]] = str(info["answer"])
                new = [x for x in new if x != a]
            d.order.extend(new)  # attributes revealed without our record (an agent driven from mid-episode)
        d.severity = np.asarray(obs["revealed"], dtype=np.float64).copy()
        if "declined" in obs:  # the guarded track
            d.declined = int(np.asarray(obs["declined"]) @ (1 << np.arange(NUM_ATTRIBUTES)))
            d.hedged = int(np.asarray(obs["hedged"]) @ (1 << np.arange(NUM_ATTRIBUTES)))
        d.budget_left = int(round(float(np.asarray(obs["steps_left"]).reshape(-1)[0]) * NUM_ATTRIBUTES))

    def choose(self, obs: Mapping[str, np.ndarray]) -> int:
        raise NotImplementedError


def attribute_index(name: str) -> int:
    """``ATTRIBUTES.index(name)`` with an error that lists the valid names."""
    try:
        return ATTRIBUTE_INDEX[name]
    except KeyError:
        from penguin_gym.error import ConfigError

        raise ConfigError(f"unknown attribute {name!r}; valid: {list(ATTRIBUTES)}") from None


__all__ = ["ANSWER", "PAPER_TOP3", "Agent", "Dialogue", "DialogueAgent", "attribute_index"]
