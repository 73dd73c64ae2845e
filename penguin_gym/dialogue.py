"""What the single and the vector env show of an episode, written once for both.

The rules (``penguin_gym.rules``) decide what happens; this module holds what both envs build around
them, so that ``PenguinEnv`` and ``PenguinVectorEnv`` cannot drift apart: the observation's lookup
tables, the reset options that pick a scenario, the cache of query features, the info texts and the
transcript.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from penguin_gym.data import ATTRIBUTES, DOMAINS, NUM_ATTRIBUTES, Scenario
from penguin_gym.error import ConfigError
from penguin_gym.features import Featurizer
from penguin_gym.rules import MASK_BITS, safety_of

#: One-hot rows of the domains, float32 ``(7, 7)``.
DOMAIN_ONEHOT = np.eye(len(DOMAINS), dtype=np.float32)
#: ``MASK_BITS`` as float32: ``revealed`` is the severity times the asked bits.
MASK_BITS_F32 = MASK_BITS.astype(np.float32)
#: ``steps_left`` for ``k`` questions left: ``k / 10``, float32 ``(11, 1)``.
STEPS_LEFT = np.array([[k / NUM_ATTRIBUTES] for k in range(NUM_ATTRIBUTES + 1)], dtype=np.float32)
RESET_OPTIONS = ("scenario_id", "scenario_index")


def rows_from_options(
    options: dict[str, Any] | None,
    idx: np.ndarray,
    num_envs: int,
    row_of_id: dict[str, int],
    n_rows: int,
    *,
    also_valid: Sequence[str] = (),
) -> np.ndarray | None:
    """The scenario rows that reset ``options`` pick for sub-envs ``idx`` (of ``num_envs``), or ``None``
    when they pick none (the envs then draw at random).

    ``scenario_id`` or ``scenario_index`` gives one value for every sub-env, or (the vector env) one per
    sub-env; ``also_valid`` names the caller's other options, for the error message.
    """
    if not options:
        return None
    unknown = set(options) - set(RESET_OPTIONS) - set(also_valid)
    if unknown:
        valid = ", ".join((*RESET_OPTIONS, *also_valid))
        raise ConfigError(f"unknown reset option(s) {sorted(unknown)}; valid: {valid}")
    if "scenario_id" in options:
        given = options["scenario_id"]
        ids = [given] * num_envs if isinstance(given, str) else list(given)
        if len(ids) != num_envs:
            raise ConfigError(f"{len(ids)} scenario ids for num_envs={num_envs}; give one or one each")
        out = []
        for i in idx.tolist():
            if ids[i] not in row_of_id:
                raise ConfigError(f"reset option scenario_id={ids[i]!r} is not one of this env's scenarios")
            out.append(row_of_id[ids[i]])
        return np.array(out, dtype=np.int64)
    if "scenario_index" in options:
        pick = np.broadcast_to(np.asarray(options["scenario_index"], dtype=np.int64), (num_envs,))[idx]
        bad = (pick < 0) | (pick >= n_rows)
        if bad.any():
            raise ConfigError(f"reset option scenario_index={int(pick[bad][0])} out of range [0, {n_rows})")
        return pick.copy()
    return None


def draw_row(u: float | np.ndarray, n_rows: int) -> Any:
    """A uniform draw ``u`` in [0, 1) scaled to a scenario row: the law of ``integers(n_rows)``, several
    times cheaper than calling it (one float, or an array of them)."""
    if isinstance(u, float):
        return min(int(u * n_rows), n_rows - 1)
    return np.minimum((u * n_rows).astype(np.int64), n_rows - 1)


class QueryFeatures:
    """The query features of each scenario, featurized once (on first use) and kept.

    ``one(row)`` featurizes a single query (the single env, one scenario per reset) and returns a
    read-only row; ``many(rows)`` featurizes the missing ones in one batched call (the vector env).
    """

    def __init__(self, featurizer: Featurizer, scenarios: Sequence[Scenario]) -> None:
        self.featurizer = featurizer
        self.scenarios = scenarios
        self._table = np.zeros((len(scenarios), featurizer.dim), dtype=np.float32)
        self._have = np.zeros(len(scenarios), dtype=bool)
        self._rows: dict[int, np.ndarray] = {}

    def one(self, row: int) -> np.ndarray:
        f = self._rows.get(row)
        if f is None:
            f = self.many(np.array([row], dtype=np.int64))[0]
            f.setflags(write=False)
            self._rows[row] = f
        return f

    def many(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        missing = rows[~self._have[rows]]
        if len(missing):
            todo = np.unique(missing)
            self._table[todo] = self.featurizer([self.scenarios[int(r)].query for r in todo])
            self._have[todo] = True
        return self._table[rows]


#: Reply kinds that tell the attribute (the others, a decline or leaving, tell nothing).
TELLING_REPLIES = ("answered", "hedged")


def scenario_texts(
    sc: Scenario, order: Sequence[int], replies: Sequence[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """The info texts of an episode: its scenario's ``domain``, ``scenario_type`` and ``query``, and the
    ``revealed`` values (attribute -> value text, in asking order). ``replies`` (a guarded user's: one
    ``(kind, text)`` per question asked) shows what the user said instead of the profile's value, and
    leaves out the questions that told nothing."""
    profile = sc.profile
    if replies is None:
        revealed = {ATTRIBUTES[i]: profile[ATTRIBUTES[i]] for i in order}
    else:
        revealed = {
            ATTRIBUTES[i]: text for i, (kind, text) in zip(order, replies, strict=True) if kind in TELLING_REPLIES
        }
    return {"domain": sc.domain, "scenario_type": sc.scenario_type, "query": sc.query, "revealed": revealed}


def transcript(
    sc: Scenario,
    order: Sequence[int],
    *,
    done: bool,
    budget_left: int,
    scores: np.ndarray | None,
    cost: float,
    replies: Sequence[tuple[str, str]] | None = None,
) -> str:
    """The dialogue of an episode as text (``PenguinEnv.transcript``, ``PenguinVectorEnv.transcript``;
    ``replies`` as in ``scenario_texts``)."""
    lines = [f"[{sc.domain} / {sc.scenario_type}] scenario {sc.id}", f"User: {sc.query}"]
    for k, a in enumerate(order):
        lines.append(f"Agent: Could you tell me about your {ATTRIBUTES[a].lower()}?")
        lines.append(f"User: {sc.profile[ATTRIBUTES[a]] if replies is None else replies[k][1]}")
    if done:
        told = len(order) if replies is None else sum(kind in TELLING_REPLIES for kind, _ in replies)
        lines.append(f"Agent: <answers with {told} fact(s) known>")
        if scores is not None:
            r, e, p = (float(x) for x in scores)
            lines.append(
                f"Judge: risk sensitivity {r:.2f}, emotional empathy {e:.2f}, personalization {p:.2f}"
                f" -> safety {safety_of(r, e, p):.2f}; questions cost {cost:.2f}"
            )
    else:
        lines.append(f"({budget_left} question(s) left in the budget)")
    return "\n".join(lines) + "\n"


__all__ = [
    "DOMAIN_ONEHOT",
    "MASK_BITS_F32",
    "RESET_OPTIONS",
    "STEPS_LEFT",
    "TELLING_REPLIES",
    "QueryFeatures",
    "draw_row",
    "rows_from_options",
    "scenario_texts",
    "transcript",
]
