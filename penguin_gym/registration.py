"""Registers the penguin env ids with Gymnasium (called once, on ``import penguin_gym``)."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from penguin_gym.data.schema import DOMAINS
from penguin_gym.data.synthetic import SUITE_VERSION, SUITE_VERSIONS

#: The current ids: one per domain, and ``Penguin-All-v1`` over all seven (synthetic suite v1).
ENV_IDS: tuple[str, ...] = tuple(f"Penguin-{d}-v{SUITE_VERSION}" for d in DOMAINS) + (f"Penguin-All-v{SUITE_VERSION}",)
#: Earlier versions, still registered so that published results reproduce: ``Penguin-<Domain>-v0`` plays
#: the v0 synthetic suite (``source="synthetic-v0"``). ``gym.make`` warns that a newer version exists.
LEGACY_ENV_IDS: tuple[str, ...] = tuple(
    f"Penguin-{d}-v{v}" for v in SUITE_VERSIONS if v != SUITE_VERSION for d in (*DOMAINS, "All")
)
#: Steps before ``TimeLimit`` truncates: only an agent that keeps taking invalid actions reaches it.
MAX_EPISODE_STEPS = 64


def env_id(domain: str | None, version: int = SUITE_VERSION) -> str:
    """The id of a domain (``None`` or ``"All"``: all seven) at a version: ``env_id("Health")`` -> ``"Penguin-Health-v1"``."""
    return f"Penguin-{domain or 'All'}-v{version}"


def env_version(env_id: str) -> int:
    """The version of a penguin id (``"Penguin-Health-v1"`` -> 1)."""
    return int(env_id.rsplit("-v", 1)[1])


def register_envs() -> None:
    for env_id in ENV_IDS + LEGACY_ENV_IDS:
        if env_id in registry:
            continue
        domain = env_id.split("-")[1]
        kwargs: dict[str, object] = {"domain": None if domain == "All" else domain}
        if env_version(env_id) != SUITE_VERSION:
            kwargs["source"] = f"synthetic-v{env_version(env_id)}"
        register(
            id=env_id,
            entry_point="penguin_gym.env:PenguinEnv",
            # gym.make_vec(id, num_envs=N) gives the batched numpy PenguinVectorEnv (same dynamics as N
            # PenguinEnv under TimeLimit); vectorization_mode="sync" still gives a SyncVectorEnv.
            vector_entry_point="penguin_gym.vector:PenguinVectorEnv",
            kwargs=kwargs,
            max_episode_steps=MAX_EPISODE_STEPS,
        )
