"""Agents by name, so CLIs, configs and experiments can ask for them: ``make_agent("raise")``.

========================  ==============================================================================
name                      agent
========================  ==============================================================================
``answer-now``            ``AnswerNowAgent``: context-free (the paper's vanilla)
``ask-all``               ``AskAllAgent``: context-rich (every attribute)
``random-k``              ``RandomKAgent(k=3, seed=0)``
``static``                ``StaticOrderAgent(order=PAPER_TOP3, k=None)``
``greedy``                ``GreedyAgent``: one-step value of information under a learned belief
``greedy-blind``          ``GreedyAgent(use_user_model=False)``: on the guarded track, blind to the user model
``oracle``                ``OracleAgent(budget=None, exact=False)``: the true best set (privileged)
``mcts``                  ``MCTSAgent(mode="belief", prior="learned")``: PUCT with a prior
``uct``                   ``MCTSAgent(config=MCTSConfig(use_prior=False))``: plain UCT (vanilla MCTS)
``raise``                 ``RaiseAgent(variant="planner")``: full RAISE (+planner)
``raise-agent``           ``RaiseAgent(variant="agent")``: acquisition + abstention, no path library
``ppo``                   ``agents.ppo.PPOAgent.load(path)`` (needs ``path=...``; ``pip install "penguin-gym[train]"``)
========================  ==============================================================================

Keyword arguments go to the constructor. ``mcts``/``uct`` also take the ``MCTSConfig`` fields directly
(``make_agent("mcts", num_rollouts=80, mode="true")``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from agents.base import Agent
from penguin_gym.error import ConfigError

AGENTS: tuple[str, ...] = (
    "answer-now",
    "ask-all",
    "random-k",
    "static",
    "greedy",
    "greedy-blind",
    "oracle",
    "mcts",
    "uct",
    "raise",
    "raise-agent",
    "ppo",
)


def _mcts(use_prior: bool) -> Callable[..., Agent]:
    def make(**kwargs: Any) -> Agent:
        from agents.mcts import MCTSAgent, MCTSConfig

        names = {f.name for f in dataclasses.fields(MCTSConfig)}
        cfg_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
        config = kwargs.pop("config", None)
        if config is not None and cfg_kwargs:
            raise ConfigError(f"give either config= or MCTSConfig fields {sorted(cfg_kwargs)}, not both")
        if config is None:
            config = MCTSConfig(**{"use_prior": use_prior, **cfg_kwargs})
        elif config.use_prior != use_prior:
            config = dataclasses.replace(config, use_prior=use_prior)
        return MCTSAgent(config=config, **kwargs)

    return make


def _greedy_blind(**kwargs: Any) -> Agent:
    from agents.baselines import GreedyAgent

    agent = GreedyAgent(use_user_model=False, **kwargs)
    agent.name = "greedy-blind"
    return agent


def _ppo(**kwargs: Any) -> Agent:
    if "path" not in kwargs:
        raise ConfigError("make_agent('ppo') needs path=<saved PPO model> (train one with the PPO experiment)")
    try:
        from agents.ppo import PPOAgent
    except ImportError as e:
        from penguin_gym.error import DependencyNotInstalled

        raise DependencyNotInstalled(
            f'the PPO agent needs torch and sb3-contrib: pip install "penguin-gym[train]" ({e})'
        ) from e
    path = kwargs.pop("path")
    return PPOAgent.load(path, **kwargs)  # type: ignore[no-any-return]


def _factories() -> dict[str, Callable[..., Agent]]:
    from agents.baselines import AnswerNowAgent, AskAllAgent, GreedyAgent, RandomKAgent, StaticOrderAgent
    from agents.oracle import OracleAgent
    from agents.raise_agent import RaiseAgent

    return {
        "answer-now": AnswerNowAgent,
        "ask-all": AskAllAgent,
        "random-k": RandomKAgent,
        "static": StaticOrderAgent,
        "greedy": GreedyAgent,
        "greedy-blind": _greedy_blind,
        "oracle": OracleAgent,
        "mcts": _mcts(True),
        "uct": _mcts(False),
        "raise": lambda **kw: RaiseAgent(variant="planner", **kw),
        "raise-agent": lambda **kw: RaiseAgent(variant="agent", **kw),
        "ppo": _ppo,
    }


def make_agent(spec: str, **kwargs: Any) -> Agent:
    """An agent by name (see the module docstring); ``kwargs`` go to its constructor.

    Raises:
        ConfigError: for an unknown name (with the closest valid one) or bad arguments.
    """
    factories = _factories()
    if spec not in factories:
        import difflib

        close = difflib.get_close_matches(spec, AGENTS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown agent {spec!r}{hint}; valid: {list(AGENTS)}")
    try:
        return factories[spec](**kwargs)
    except TypeError as e:
        raise ConfigError(f"make_agent({spec!r}): bad arguments {sorted(kwargs)}: {e}") from e


__all__ = ["AGENTS", "make_agent"]
