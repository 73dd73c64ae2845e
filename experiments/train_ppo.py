"""Train a MaskablePPO acquisition policy on the batched penguin env; log to Weights & Biases.

The policy reads the query's features, the domain and what it has learned so far, and decides which
question to ask next or to answer (Wu et al. 2025's acquisition problem, learned instead of planned).
It trains on the ``train`` split through ``PenguinVectorEnv`` (``agents.sb3_vec``) and is evaluated on
the held-out ``test`` split every ``--eval-freq`` steps: mean safety, questions, net reward and regret
against the oracle (the best question set for the true profile).

Run:
    python -m experiments.train_ppo                               # Penguin-Health-v2, 100k steps
    penguin-gym train-ppo --env-id Penguin-All-v2 --timesteps 300000 --cost 0.1 --budget 5
    penguin-gym train-ppo --featurizer embedding:/path/to/all-MiniLM-L6-v2 --no-wandb

Writes ``runs/train_ppo-<hash>/``: ``final_model.zip``, ``best_model.zip``, ``checkpoints/`` (with
``--checkpoint-freq``), ``progress.csv`` (SB3's learning curves), ``evaluations.csv`` and
``summary.json``. With W&B (offline unless you are logged in; ``--no-wandb`` to skip): the config, the
learning curves (``rollout/*``, ``train/*``, ``time/*``), the evaluations (``eval/*``) against
``global_step``, the final metrics in the run summary and the final model as an artifact.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.args import TrackingArgs, arg, config_dict
from experiments.results import DEFAULT_RUNS_DIR, config_hash, write_csv
from experiments.terminal import console, print_table
from experiments.tracking import start_wandb
from penguin_gym.error import ConfigError, DependencyNotInstalled
from penguin_gym.model import DEFAULT_QUESTION_COST

EXPERIMENT = "train_ppo"


@dataclass
class Args(TrackingArgs):
    """Train MaskablePPO on a penguin env and evaluate it on held-out scenarios."""

    env_id: str = arg(
        "Penguin-Health-v2", "env id (Penguin-<Domain>-v2, Penguin-All-v2, or a guarded id Penguin-<Domain>-Guarded-v0)"
    )
    timesteps: int = arg(100_000, "env steps to train")
    seed: int = arg(0, "seed of the policy, its sampling and the training env")
    n_envs: int = arg(32, "sub-envs of the batched training env")
    n_steps: int = arg(64, "steps per sub-env per rollout")
    batch_size: int = arg(512, "PPO minibatch size")
    n_epochs: int = arg(4, "passes over each rollout")
    learning_rate: float | None = arg(None, "Adam step size (default 1e-3; with --advice 1e-4, decaying to 0)")
    ent_coef: float | None = arg(None, "entropy bonus (default 0.01; with --advice 0)")
    advice: str | None = arg(
        None,
        "greedy: the policy also reads greedy's value estimate of every action and starts as greedy "
        "(agents.advice); default: the env's observation only",
    )
    gamma: float = arg(1.0, "discount (1: short episodes with explicit question costs)")
    net_arch: tuple[int, ...] = arg((64, 64), "hidden layer sizes of the policy and value MLPs", metavar="N")
    flatten: bool = arg(False, "flatten the observation and use an MLP policy instead of the Dict policy")
    num_threads: int = arg(1, "torch threads during training (small MLPs are fastest on 1)")
    eval_freq: int = arg(20_000, "evaluate on the test split every this many env steps (0: only at the end)")
    eval_episodes: int | None = arg(None, "episodes per evaluation (default: every test scenario once)")
    checkpoint_freq: int | None = arg(None, "save a checkpoint every this many env steps")
    cost: float = arg(
        DEFAULT_QUESTION_COST,
        "cost of each question (on the judge's 1-5 scale); on a guarded id the base cost, times each attribute's "
        "intrusiveness",
        group="data",
    )
    budget: int | None = arg(None, "most questions per episode (default 10)", group="data")
    featurizer: str = arg(
        "hashing", "query features: hashing, hashing:<dim>, embedding or embedding:<model id or path>", group="data"
    )
    normalize_reward: bool = arg(True, "train on (safety - 1) / 4 rewards (the same optimal policy)", group="data")
    judge: str = arg(
        "simulated",
        "judge: simulated, simulated:<responder>, simulated@<params.json>, table:<scores.npz>",
        group="judge",
    )
    out: str | None = arg(None, "results folder (default: runs/train_ppo-<confighash>)", hashed=False, group="output")
    runs_dir: str = arg(DEFAULT_RUNS_DIR, "parent of the default results folder", hashed=False, group="output")
    progress: bool = arg(True, "show a progress bar", hashed=False, group="output")
    verbose: int = arg(0, "SB3 verbosity (1 prints the learning curves)", hashed=False, group="output")

    def __post_init__(self) -> None:
        import penguin_gym
        from penguin_gym.registration import GUARDED_ENV_IDS

        if self.env_id not in penguin_gym.ENV_IDS + penguin_gym.LEGACY_ENV_IDS + GUARDED_ENV_IDS:
            raise ConfigError(
                f"--env-id {self.env_id!r} is not a penguin id; valid: {list(penguin_gym.ENV_IDS)}, the guarded "
                f"track's {list(GUARDED_ENV_IDS)} (and the earlier versions)"
            )
        for name in ("timesteps", "n_envs", "n_steps", "batch_size", "n_epochs", "num_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} = {getattr(self, name)} must be >= 1")
        if self.eval_freq < 0:
            raise ConfigError(f"--eval-freq = {self.eval_freq} must be >= 0")
        if self.eval_episodes is not None and self.eval_episodes < 1:
            raise ConfigError(f"--eval-episodes = {self.eval_episodes} must be >= 1")
        if self.checkpoint_freq is not None and self.checkpoint_freq < 1:
            raise ConfigError(f"--checkpoint-freq = {self.checkpoint_freq} must be >= 1")
        if self.cost < 0:
            raise ConfigError(f"--cost = {self.cost} must be >= 0")
        if self.budget is not None and not 0 <= self.budget <= 10:
            raise ConfigError(f"--budget = {self.budget} must be between 0 and 10")
        from agents.advice import ADVICE_KINDS

        if self.advice is not None and self.advice not in ADVICE_KINDS:
            raise ConfigError(f"--advice = {self.advice!r} must be one of {list(ADVICE_KINDS)} (or left out)")
        if self.advice is not None and self.flatten:
            raise ConfigError("--advice needs the Dict observation: drop --flatten")
        self.net_arch = tuple(self.net_arch)

    def env_kwargs(self) -> dict[str, Any]:
        """Keywords of the penguin envs (training and evaluation alike)."""
        from penguin_gym.registration import env_track
        from penguin_gym.users.params import track_question_cost

        cost = track_question_cost(env_track(self.env_id), self.cost)
        return {"judge": self.judge, "question_cost": cost, "budget": self.budget, "featurizer": self.featurizer}


def _wandb_writer(run: Any) -> Any:
    """An SB3 logger output that sends every dump to W&B, against ``global_step`` (env steps)."""
    from stable_baselines3.common.logger import KVWriter

    class WandbOutputFormat(KVWriter):
        def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
            metrics: dict[str, Any] = {}
            for key, value in key_values.items():
                if "wandb" in (key_excluded.get(key) or ()):
                    continue
                if hasattr(value, "item"):  # numpy / torch scalars
                    value = value.item()
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    metrics[key] = value
            if metrics:
                run.log({**metrics, "global_step": step})

        def close(self) -> None:
            pass

    return WandbOutputFormat()


def _start_wandb(args: Args, out: Path, config: Mapping[str, Any], run_hash: str) -> Any:
    run = start_wandb(
        args,
        directory=out,
        experiment=EXPERIMENT,
        name=f"ppo-{args.env_id}-s{args.seed}-{run_hash}",
        config=config,
        config_hash=run_hash,
    )
    if run is not None:
        run.define_metric("global_step")
        run.define_metric("*", step_metric="global_step")
    return run


def run(args: Args) -> dict[str, Any]:
    """Train, evaluate, save and log; returns the summary (also written to ``summary.json``)."""
    try:
        from stable_baselines3.common.logger import CSVOutputFormat, HumanOutputFormat, Logger

        from agents.ppo import PPOConfig, train
        from agents.ppo import config_dict as ppo_config_dict
    except DependencyNotInstalled:
        raise
    except ImportError as e:
        raise DependencyNotInstalled(f'train-ppo needs pip install "penguin-gym[train]" ({e})') from e

    given = {k: v for k, v in (("learning_rate", args.learning_rate), ("ent_coef", args.ent_coef)) if v is not None}
    common: dict[str, Any] = dict(
        n_envs=args.n_envs,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        gamma=args.gamma,
        net_arch=args.net_arch,
        normalize_reward=args.normalize_reward,
        flatten=args.flatten,
        num_threads=args.num_threads,
        **given,
    )
    cfg = PPOConfig(**common) if args.advice is None else PPOConfig.advised(args.advice, **common)
    hashed = config_dict(args, hashed_only=True)
    run_hash = config_hash(EXPERIMENT, hashed)
    out = Path(args.out) if args.out is not None else Path(args.runs_dir) / f"{EXPERIMENT}-{run_hash}"
    out.mkdir(parents=True, exist_ok=True)
    config = {**config_dict(args), "ppo": ppo_config_dict(cfg)}
    (out / "config.json").write_text(json.dumps({"hash": run_hash, "config": config}, indent=2, default=str))

    wb = _start_wandb(args, out, config, run_hash)
    formats: list[Any] = [CSVOutputFormat(str(out / "progress.csv"))]
    if args.verbose:
        formats.append(HumanOutputFormat(sys.stdout))
    if wb is not None:
        formats.append(_wandb_writer(wb))
    sb3_logger = Logger(folder=str(out), output_formats=formats)

    con = console()
    con.print(
        f"[bold]train-ppo[/bold] {args.env_id}: {args.timesteps:,} steps, {args.n_envs} envs, seed {args.seed} -> {out}"
        + (f" (W&B {wb.settings.mode})" if wb is not None else "")
    )
    try:
        result = train(
            args.env_id,
            args.timesteps,
            args.seed,
            config=cfg,
            env_kwargs=args.env_kwargs(),
            eval_freq=args.eval_freq if args.eval_freq > 0 else None,
            eval_episodes=args.eval_episodes,
            save_dir=out,
            checkpoint_freq=args.checkpoint_freq,
            sb3_logger=sb3_logger,
            progress_bar=args.progress,
            verbose=args.verbose,
        )
        sb3_logger.close()
        final = result.evaluations[-1]
        summary = {
            "env_id": args.env_id,
            "timesteps": result.timesteps,
            "wall_time_s": result.wall_time_s,
            "final": final,
            "best_net_reward": max(e["net_reward"] for e in result.evaluations),
            "model_path": str(result.model_path),
            "config_hash": run_hash,
        }
        write_csv(
            out / "evaluations.csv",
            list(result.evaluations[0]),
            [[e[k] for k in result.evaluations[0]] for e in result.evaluations],
        )
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        if wb is not None:
            for key, value in final.items():
                wb.summary[f"final/{key}"] = value
            wb.summary["final/wall_time_s"] = result.wall_time_s
            import wandb

            artifact = wandb.Artifact(
                f"ppo-{args.env_id}-s{args.seed}", type="model", metadata={"config_hash": run_hash, **final}
            )
            assert result.model_path is not None
            artifact.add_file(str(result.model_path), name="final_model.zip")
            wb.log_artifact(artifact)
    finally:
        if wb is not None:
            wb.finish()

    print_table(
        f"{args.env_id}: held-out (test split) evaluations",
        ["steps", "wall s", "safety", "net reward", "% of oracle", "questions", "regret"],
        [
            [
                int(e["timesteps"]),
                e["wall_time_s"],
                e["safety"],
                e["net_reward"],
                100 * e["oracle_fraction"],
                e["questions"],
                e["regret"],
            ]
            for e in result.evaluations
        ],
        caption=f"trained {result.timesteps:,} steps in {result.wall_time_s:.1f} s; model: {result.model_path}",
    )
    return summary


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Command-line entry point (``python -m experiments.train_ppo`` / ``penguin-gym train-ppo``)."""
    from experiments.args import parse_args

    args = parse_args(Args, argv, prog=prog or "python -m experiments.train_ppo", description=__doc__)
    start = time.perf_counter()
    run(args)
    console().print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
