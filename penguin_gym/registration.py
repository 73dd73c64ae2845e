"""Registers the penguin env ids with Gymnasium (called once, on ``import penguin_gym``)."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from penguin_gym.data.schema import DOMAINS

#: Every registered id: one per domain, and ``Penguin-All-v0`` over all seven.
ENV_IDS: tuple[str, ...] = tuple(f"Penguin-{d}-v0" for d in DOMAINS) + ("Penguin-All-v0",)
#: Steps before ``TimeLimit`` truncates: only an agent that keeps taking invalid actions reaches it.
MAX_EPISODE_STEPS = 64


def register_envs() -> None:
    for env_id in ENV_IDS:
        if env_id in registry:
            continue
        domain = env_id.split("-")[1]
        register(
            id=env_id,
            entry_point="penguin_gym.env:PenguinEnv",
            # gym.make_vec(id, num_envs=N) gives the batched numpy PenguinVectorEnv (same dynamics as N
            # PenguinEnv under TimeLimit); vectorization_mode="sync" still gives a SyncVectorEnv.
            vector_entry_point="penguin_gym.vector:PenguinVectorEnv",
            kwargs={"domain": None if domain == "All" else domain},
            max_episode_steps=MAX_EPISODE_STEPS,
        )
