"""Stable-Baselines3 ``VecEnv`` over ``PenguinVectorEnv``: SB3 (and sb3-contrib's ``MaskablePPO``)
train on the batched numpy env directly, with no per-env Python objects.

SB3's convention differs from gymnasium's vector API: a finished sub-env is reset in the same step,
its last observation is in ``infos[i]["terminal_observation"]`` and ``infos[i]["TimeLimit.truncated"]``
says a time limit ended it. The adapter runs the vector env in gymnasium's ``SAME_STEP`` autoreset mode
(the same convention) and returns what ``DummyVecEnv`` over the same ``PenguinEnv`` copies returns:
the same observations, float32 rewards, dones and infos. ``action_masks()`` (and
``env_method("action_masks")``, which sb3-contrib's ``get_action_masks`` calls) give the masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from penguin_gym.error import ConfigError, DependencyNotInstalled
from penguin_gym.vector import PenguinVectorEnv
from penguin_gym.wrappers import flat_space, flatten_observation

try:
    from stable_baselines3.common.vec_env import VecEnv
    from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise DependencyNotInstalled('agents.sb3_vec needs stable-baselines3: pip install "penguin-gym[train]"') from e


def _unbatch(info: dict[str, Any], i: int) -> dict[str, Any]:
    """Sub-env ``i``'s entries of a batched gymnasium info dict (``_key`` masks), as a plain dict."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_") or key in ("final_obs", "final_info"):
            continue
        mask = info.get("_" + key)
        if mask is None or not mask[i]:
            continue
        if isinstance(value, dict):
            out[key] = _unbatch(value, i)
        else:
            v = value[i]
            out[key] = v.item() if isinstance(v, np.generic) else v
    return out


class PenguinSB3VecEnv(VecEnv):
    """An SB3 ``VecEnv`` over a ``PenguinVectorEnv``.

    Args:
        venv: A ``PenguinVectorEnv`` in ``SAME_STEP`` autoreset mode (``make_sb3_vec_env`` builds one).
        flatten: Flat float32 ``Box`` observations (``penguin_gym.wrappers.flatten_observation``, as
            ``FlattenPenguinObservation`` gives for one env) for plain ``"MlpPolicy"`` algorithms.

    Sub-env ``i`` is reset with seed ``s + i`` after ``seed(s)``, as in ``DummyVecEnv``.
    """

    def __init__(self, venv: PenguinVectorEnv, *, flatten: bool = False) -> None:
        base = venv.unwrapped
        if not isinstance(base, PenguinVectorEnv):
            raise ConfigError(f"PenguinSB3VecEnv adapts a PenguinVectorEnv, got {base!r}")
        if base.autoreset_mode is not AutoresetMode.SAME_STEP:
            raise ConfigError(
                f"PenguinSB3VecEnv needs the vector env in autoreset_mode=SAME_STEP (SB3's convention), got "
                f"{base.autoreset_mode}; build it with make_sb3_vec_env(...) or PenguinVectorEnv(..., "
                "autoreset_mode='SameStep')"
            )
        self.venv = venv
        self.base = base
        self._flat = bool(flatten)
        space = cast(gym.spaces.Dict, base.single_observation_space)
        super().__init__(base.num_envs, flat_space(space) if flatten else space, base.single_action_space)
        self._actions: np.ndarray | None = None

    # -- the VecEnv API ------------------------------------------------------------------------------
    def reset(self) -> Any:
        seeds: list[int | None] | None = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, info = self.venv.reset(seed=seeds, options=self._reset_options_arg())
        self.reset_infos = [_unbatch(info, i) for i in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return flatten_observation(obs) if self._flat else obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async(actions)")
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        dones = terminated | truncated
        infos: list[dict[str, Any]] = []
        final_info = info.get("final_info", {})
        final_obs = info.get("final_obs")
        for i in range(self.num_envs):
            if dones[i]:
                d = _unbatch(final_info, i)
                assert final_obs is not None
                d["terminal_observation"] = flatten_observation(final_obs[i]) if self._flat else final_obs[i]
                self.reset_infos[i] = _unbatch(info, i)
            else:
                d = _unbatch(info, i)
            d["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            infos.append(d)
        return (flatten_observation(obs) if self._flat else obs), reward.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def action_masks(self) -> np.ndarray:
        """Valid actions of every sub-env, bool ``(N, 11)``."""
        return self.base.action_masks()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute of the vector env, once per index (the sub-envs share their configuration)."""
        value = getattr(self.base, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the vector env: all sub-envs share it, so ``indices`` must select all."""
        idx = list(self._get_indices(indices))
        if sorted(idx) != list(range(self.num_envs)):
            raise ConfigError(
                f"set_attr({attr_name!r}) on sub-envs {idx}: the sub-envs of a PenguinVectorEnv share their "
                "attributes; set it on all of them (indices=None)"
            )
        setattr(self.base, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of the vector env; a result with one row per sub-env is split by sub-env."""
        idx = list(self._get_indices(indices))
        result = getattr(self.base, method_name)(*method_args, **method_kwargs)
        if isinstance(result, np.ndarray) and result.ndim >= 1 and result.shape[0] == self.num_envs:
            return [result[i] for i in idx]
        if isinstance(result, tuple) and len(result) == self.num_envs:
            return [result[i] for i in idx]
        return [result for _ in idx]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """No sub-env is a wrapped ``gym.Env`` (there are no per-env objects)."""
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        raise NotImplementedError("penguin envs render text (render_mode='ansi'), not images")

    # -- helpers -------------------------------------------------------------------------------------
    def _reset_options_arg(self) -> dict[str, Any] | None:
        if not any(self._options):
            return None
        keys = {k for o in self._options for k in o}
        if not keys <= {"scenario_index", "scenario_id"} or len(keys) != 1:
            raise ConfigError(
                f"reset options {sorted(keys)}: PenguinSB3VecEnv passes one of scenario_index / scenario_id, "
                "given for every sub-env"
            )
        key = keys.pop()
        if not all(key in o for o in self._options):
            raise ConfigError(f"reset option {key!r} must be given for every sub-env (set_options(dict) does)")
        values = [o[key] for o in self._options]
        return {key: values if key == "scenario_id" else np.asarray(values, dtype=np.int64)}


def make_sb3_vec_env(
    env_id: str = "Penguin-Health-v2",
    n_envs: int = 16,
    *,
    seed: int | None = None,
    flatten: bool = False,
    monitor: bool = True,
    advice: str | None = None,
    **env_kwargs: Any,
) -> VecEnv:
    """An SB3 ``VecEnv`` of ``n_envs`` penguin episodes, stepped as one ``PenguinVectorEnv``.

    Args:
        env_id: A registered penguin id (``Penguin-<Domain>-v2``, ``Penguin-All-v2``).
        n_envs: Sub-envs.
        seed: Seeds the first reset (sub-env ``i`` gets ``seed + i``).
        flatten: Flat float32 ``Box`` observations for ``"MlpPolicy"`` (see ``PenguinSB3VecEnv``).
        monitor: Wrap in SB3's ``VecMonitor`` (episode returns and lengths in ``infos[i]["episode"]``).
        advice: ``"greedy"``: add greedy's value estimates to the observation (``agents.advice``); the
            advice follows each dialogue, so the sub-envs are single envs in SB3's ``DummyVecEnv``.
        **env_kwargs: ``PenguinEnv`` keywords (``split``, ``judge``, ``question_cost``, ``budget``, ...).
    """
    from agents.advice import check_advice
    from penguin_gym.registration import env_track

    check_advice(advice, flatten=flatten)
    if advice is not None or env_track(env_id) == "guarded":
        # no batched vector env for the guarded track yet, and advice follows each dialogue: SB3's
        # DummyVecEnv of single envs
        return _dummy_vec_env(env_id, n_envs, seed=seed, flatten=flatten, monitor=monitor, advice=advice, **env_kwargs)
    venv = gym.make_vec(
        env_id,
        num_envs=n_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode=AutoresetMode.SAME_STEP,
        **env_kwargs,
    )
    if not isinstance(venv, PenguinVectorEnv):
        raise ConfigError(f"{env_id!r} did not make a PenguinVectorEnv (got {type(venv).__name__}); use a penguin id")
    env: VecEnv = PenguinSB3VecEnv(venv, flatten=flatten)
    if seed is not None:
        env.seed(seed)
    if monitor:
        from stable_baselines3.common.vec_env import VecMonitor

        env = VecMonitor(env)
    return env


def _dummy_vec_env(
    env_id: str,
    n_envs: int,
    *,
    seed: int | None,
    flatten: bool,
    monitor: bool,
    advice: str | None = None,
    **env_kwargs: Any,
) -> VecEnv:
    """``n_envs`` single envs of ``env_id`` in SB3's ``DummyVecEnv`` (masks through ``env_method``)."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from penguin_gym.features import make_featurizer

    # one featurizer for all sub-envs (a sentence-embedding model is loaded once, not n_envs times)
    env_kwargs = {**env_kwargs, "featurizer": make_featurizer(env_kwargs.get("featurizer", "hashing"))}
    shared: dict[str, Any] = {}

    def make() -> gym.Env:
        env = gym.make(env_id, **env_kwargs)
        if advice is not None:
            from agents.advice import AdviceObservation
            from agents.context import AgentContext

            # one agent context (the training split, loaded once) for every sub-env's advice
            if "context" not in shared:
                shared["context"] = AgentContext.from_env(env)
            return AdviceObservation(env, context=shared["context"])
        return gym.wrappers.FlattenObservation(env) if flatten else env

    env: VecEnv = DummyVecEnv([make for _ in range(n_envs)])
    if seed is not None:
        env.seed(seed)
    return VecMonitor(env) if monitor else env


__all__ = ["PenguinSB3VecEnv", "make_sb3_vec_env"]
