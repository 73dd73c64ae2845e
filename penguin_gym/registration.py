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
#: Steps before ``TimeLimit`` truncates: only an agent that keeps taking invalid actions reaches it.
MAX_EPISODE_STEPS = 64
assert set(ENV_VERSIONS[ENV_VERSION]) == {"suite", "split"} and all(
    ENV_VERSIONS[v]["suite"] in SUITE_VERSIONS for v in ENV_VERSIONS
)


def env_id(domain: str | None, version: int = ENV_VERSION) -> str:
    """The id of a domain (``None`` or ``"All"``: all seven) at a version: ``env_id("Health")`` -> ``"Penguin-Health-v2"``."""
    return f"Penguin-{domain or 'All'}-v{version}"


def env_version(env_id: str) -> int:
    """The version of a penguin id (``"Penguin-Health-v2"`` -> 2)."""
    return int(env_id.rsplit("-v", 1)[1])


def default_split(env_id: str) -> str | None:
    """The split ``gym.make(env_id)`` plays by default (``"train"`` for the current ids)."""
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
