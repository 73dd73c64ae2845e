"""Registers the penguin env ids with Gymnasium (called once, on ``import penguin_gym``)."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from penguin_gym.data.schema import DOMAINS
from penguin_gym.data.synthetic import SUITE_VERSION, SUITE_VERSIONS

#: The env versions: the synthetic suite each plays and the split ``gym.make`` gives by default.
#: v2 (current): suite v1, the ``train`` split by default (learn on it; ``agents.evaluate`` and the
#: experiments score on ``split="test"``). v1: suite v1, both splits mixed by default. v0: suite v0.
ENV_VERSIONS: dict[int, dict[str, object]] = {
    0: {"suite": 0, "split": None},
    1: {"suite": 1, "split": None},
    2: {"suite": SUITE_VERSION, "split": "train"},
}
ENV_VERSION = 2
#: The current ids: one per domain, and ``Penguin-All-v2`` over all seven.
ENV_IDS: tuple[str, ...] = tuple(f"Penguin-{d}-v{ENV_VERSION}" for d in (*DOMAINS, "All"))
#: Earlier versions, still registered so that published results reproduce (``gym.make`` warns that a
#: newer version exists): ``-v1`` (both splits by default) and ``-v0`` (the v0 suite,
#: ``source="synthetic-v0"``).
LEGACY_ENV_IDS: tuple[str, ...] = tuple(
    f"Penguin-{d}-v{v}" for v in sorted(ENV_VERSIONS, reverse=True) if v != ENV_VERSION for d in (*DOMAINS, "All")
)
#: The guarded track (``penguin_gym.users``): users who may decline, hedge or leave, per-attribute
#: costs by intrusiveness; its own version, the train split by default, suite v1.
GUARDED_VERSION = 0
GUARDED_ENV_IDS: tuple[str, ...] = tuple(f"Penguin-{d}-Guarded-v{GUARDED_VERSION}" for d in (*DOMAINS, "All"))
#: The tracks: ``faithful`` (the paper's assumptions: every question answered truly, one cost) and
#: ``guarded``.
TRACKS = ("faithful", "guarded")
#: Steps before ``TimeLimit`` truncates: only an agent that keeps taking invalid actions reaches it.
MAX_EPISODE_STEPS = 64
assert set(ENV_VERSIONS[ENV_VERSION]) == {"suite", "split"} and all(
    ENV_VERSIONS[v]["suite"] in SUITE_VERSIONS for v in ENV_VERSIONS
)


def env_id(domain: str | None, version: int | None = None, *, track: str = "faithful") -> str:
    """The id of a domain (``None`` or ``"All"``: all seven) on a track, at a version (default the
    current one): ``env_id("Health")`` -> ``"Penguin-Health-v2"``, ``env_id("Health", track="guarded")``
    -> ``"Penguin-Health-Guarded-v0"``."""
    if track not in TRACKS:
        raise ValueError(f"track {track!r} is not one of {TRACKS}")
    if track == "guarded":
        return f"Penguin-{domain or 'All'}-Guarded-v{GUARDED_VERSION if version is None else version}"
    return f"Penguin-{domain or 'All'}-v{ENV_VERSION if version is None else version}"


def env_version(env_id: str) -> int:
    """The version of a penguin id (``"Penguin-Health-v2"`` -> 2)."""
    return int(env_id.rsplit("-v", 1)[1])


def env_track(env_id: str) -> str:
    """The track of a penguin id: ``"guarded"`` for ``Penguin-<Domain>-Guarded-v<k>``, else ``"faithful"``."""
    return "guarded" if "-Guarded-v" in env_id else "faithful"


def default_split(env_id: str) -> str | None:
    """The split ``gym.make(env_id)`` plays by default (``"train"`` for the current ids)."""
    if env_track(env_id) == "guarded":
        return "train"
    return ENV_VERSIONS[env_version(env_id)]["split"]  # type: ignore[return-value]


def register_envs() -> None:
    for env_id in ENV_IDS + LEGACY_ENV_IDS:
        if env_id in registry:
            continue
        domain = env_id.split("-")[1]
        version = ENV_VERSIONS[env_version(env_id)]
        kwargs: dict[str, object] = {"domain": None if domain == "All" else domain}
        if version["suite"] != SUITE_VERSION:
            kwargs["source"] = f"synthetic-v{version['suite']}"
        if version["split"] is not None:
            kwargs["split"] = version["split"]
        register(
            id=env_id,
            entry_point="penguin_gym.env:PenguinEnv",
            # gym.make_vec(id, num_envs=N) gives the batched numpy PenguinVectorEnv (same dynamics as N
            # PenguinEnv under TimeLimit); vectorization_mode="sync" still gives a SyncVectorEnv.
            vector_entry_point="penguin_gym.vector:PenguinVectorEnv",
            kwargs=kwargs,
            max_episode_steps=MAX_EPISODE_STEPS,
        )
    for env_id in GUARDED_ENV_IDS:
        if env_id in registry:
            continue
        domain = env_id.split("-")[1]
        register(
            id=env_id,
            entry_point="penguin_gym.users.env:GuardedPenguinEnv",
            # No batched vector env yet: gym.make_vec gives a SyncVectorEnv of GuardedPenguinEnv.
            kwargs={"domain": None if domain == "All" else domain, "split": "train"},
            max_episode_steps=MAX_EPISODE_STEPS,
        )
