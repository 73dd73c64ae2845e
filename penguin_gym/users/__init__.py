"""User models beyond the paper's: the guarded track's user, who may decline, hedge or leave.

``params`` reads the user model's documented data file, ``model`` is the episode model that plays it,
``planning`` is its exact planner (the track's oracle and regret reference) and ``env`` the Gymnasium
env of the ``Penguin-<Domain>-Guarded-v0`` ids.
"""

from __future__ import annotations

from penguin_gym.users.model import REPLIES, GuardedDraws, GuardedModel, GuardedState
from penguin_gym.users.params import DEFAULT_USER_FILE, GuardedParams, load_params

__all__ = [
    "DEFAULT_USER_FILE",
    "REPLIES",
    "GuardedDraws",
    "GuardedModel",
    "GuardedParams",
    "GuardedState",
    "load_params",
]
