"""Agents for the penguin envs: baselines, the exact oracle, the MCTS planner and the RAISE agent.

Every agent follows ``agents.base.Agent`` (``reset(info)``, ``act(obs, info) -> action``) and runs on
any env id and judge; ``evaluate`` plays one against the oracle. ``make_agent(name)`` builds one by name.

Example:
    >>> from agents import evaluate, make_agent
    >>> res = evaluate(make_agent("answer-now"), "Penguin-Career-v2", episodes=10, seed=0)
    >>> res.summary["questions_mean"]
    0.0
"""

from agents.base import PAPER_TOP3, Agent, DialogueAgent
from agents.baselines import AnswerNowAgent, AskAllAgent, GreedyAgent, RandomKAgent, StaticOrderAgent
from agents.belief import BeliefConfig, ProfileBelief
from agents.evaluate import EpisodeRow, EvalResult, evaluate
from agents.library import PathLibrary, PathRecord
from agents.mcts import MCTSAgent, MCTSConfig, plan_true_profile, search
from agents.oracle import OracleAgent, oracle_values
from agents.priors import LearnedPrior, LLMPrior, UniformPrior
from agents.raise_agent import (
    CompletenessAbstention,
    ImportanceAcquisition,
    LLMAbstention,
    LLMAcquisition,
    PathGainAbstention,
    RaiseAgent,
    VoteAcquisition,
)
from agents.registry import AGENTS, make_agent

__all__ = [
    "AGENTS",
    "PAPER_TOP3",
    "Agent",
    "AnswerNowAgent",
    "AskAllAgent",
    "BeliefConfig",
    "CompletenessAbstention",
    "DialogueAgent",
    "EpisodeRow",
    "ImportanceAcquisition",
    "EvalResult",
    "GreedyAgent",
    "LLMAbstention",
    "LLMAcquisition",
    "LLMPrior",
    "LearnedPrior",
    "MCTSAgent",
    "MCTSConfig",
    "OracleAgent",
    "PathGainAbstention",
    "PathLibrary",
    "PathRecord",
    "ProfileBelief",
    "RaiseAgent",
    "RandomKAgent",
    "StaticOrderAgent",
    "UniformPrior",
    "VoteAcquisition",
    "evaluate",
    "make_agent",
    "oracle_values",
    "plan_true_profile",
    "search",
]
