"""penguin-gym: Gymnasium environments for personalized safety of LLM answers.

Which facts about a distressed user should an assistant ask before it answers? Each episode is a
scenario of the PENGUIN benchmark (Wu et al., NeurIPS 2025); the agent asks about attributes or answers,
and a judge scores the answer's personalized safety. ``import penguin_gym`` registers the env ids
``Penguin-<Domain>-v2`` and ``Penguin-All-v2`` (``ENV_IDS``; the ``train`` split by default, score on
``split="test"``), the earlier ``-v1`` and ``-v0`` ids (``LEGACY_ENV_IDS``) so that results
published with them reproduce, and the guarded track's ``Penguin-<Domain>-Guarded-v0``
(``GUARDED_ENV_IDS``: users who may decline, hedge or leave; ``penguin_gym.users``).
"""

from __future__ import annotations

from penguin_gym.data import ATTRIBUTES, DOMAINS, Scenario, load_scenarios
from penguin_gym.env import PenguinEnv
from penguin_gym.model import ANSWER, NUM_ACTIONS, EpisodeModel, EpisodeState
from penguin_gym.registration import ENV_IDS, GUARDED_ENV_IDS, LEGACY_ENV_IDS, register_envs
from penguin_gym.vector import PenguinVectorEnv

__version__ = "0.1.0"

register_envs()

__all__ = [
    "ANSWER",
    "ATTRIBUTES",
    "DOMAINS",
    "ENV_IDS",
    "GUARDED_ENV_IDS",
    "LEGACY_ENV_IDS",
    "NUM_ACTIONS",
    "EpisodeModel",
    "EpisodeState",
    "PenguinEnv",
    "PenguinVectorEnv",
    "Scenario",
    "load_scenarios",
    "__version__",
]
