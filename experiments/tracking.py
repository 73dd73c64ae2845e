"""Weights & Biases tracking, imported only when tracking is on (CleanRL's pattern).

``mode="offline"`` unless an API key is set (``WANDB_API_KEY``) or the user is logged in
(``wandb login``); ``--no-wandb`` skips it. Metric keys are namespaced by experiment:
``context_gap/<responder>/<domain>/rich``, ``leaderboard/<agent>/<domain>/safety``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from penguin_gym.error import DependencyNotInstalled

if TYPE_CHECKING:
    from experiments.args import RunArgs, TrackingArgs
    from experiments.results import ResultsDir

WANDB_PROJECT = "penguin-gym"


def wandb_mode(requested: str) -> str | None:
    """The W&B mode to run in. ``auto``: ``online`` when ``WANDB_API_KEY`` is set or ``wandb login``
    stored a key (netrc), else ``offline``; ``WANDB_MODE`` in the environment wins (returns ``None``
    so W&B reads it)."""
    if requested != "auto":
        return requested
    if os.environ.get("WANDB_MODE"):
        return None
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    import netrc

    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    try:
        rc = netrc.netrc(os.environ.get("NETRC"))
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return "offline"
    return "online" if rc.authenticators(host) else "offline"


def start_wandb(
    args: TrackingArgs,
    *,
    directory: str | Path,
    experiment: str,
    name: str,
    config: Mapping[str, Any],
    config_hash: str,
) -> Any:
    """Start the W&B run of an experiment, or return ``None`` when tracking is off (``wandb`` is then
    never imported). Offline unless the user is logged in (``wandb_mode``); files go under ``directory``."""
    if not args.wandb or args.wandb_mode == "disabled":
        return None
    try:
        import wandb
    except ImportError as e:
        raise DependencyNotInstalled(
            'W&B tracking needs wandb: pip install "penguin-gym[wandb]" (or pass --no-wandb)'
        ) from e
    # wandb mistakes our ``agents`` package for OpenAI's Agents SDK and advertises Weave at init.
    os.environ.setdefault("WANDB_DISABLE_WEAVE", "true")
    return wandb.init(
        project=args.wandb_project,
        entity=args.wandb_entity,
        mode=wandb_mode(args.wandb_mode),  # type: ignore[arg-type]
        dir=str(directory),
        group=experiment,
        job_type=experiment,
        name=name,
        config={**dict(config), "config_hash": config_hash},
        settings=wandb.Settings(silent=True, console="off"),
        reinit="finish_previous",
    )


class Tracker:
    """W&B logging for one run; a no-op when tracking is off (``wandb`` is then never imported).

    Args:
        args: The run's ``RunArgs`` (``wandb``, ``wandb_project``, ``wandb_entity``, ``wandb_mode``).
        experiment: Used as the W&B group and job type.
        results: The results folder: W&B writes its files under ``<folder>/wandb``.
        config: Logged as the run's config.
    """

    def __init__(self, args: RunArgs, experiment: str, results: ResultsDir, config: Mapping[str, Any]) -> None:
        self.run: Any = start_wandb(
            args,
            directory=results.path,
            experiment=experiment,
            name=f"{experiment}-{results.hash}",
            config=config,
            config_hash=results.hash,
        )
        if self.run is not None:
            import wandb

            self._wandb = wandb

    @property
    def enabled(self) -> bool:
        """Whether a W&B run is open."""
        return self.run is not None

    def log(self, metrics: Mapping[str, float]) -> None:
        """Log ``metrics`` as one history step."""
        if self.run is not None:
            self.run.log(dict(metrics))

    def summary(self, metrics: Mapping[str, Any]) -> None:
        """Set ``metrics`` in the run's summary."""
        if self.run is not None:
            for k, v in metrics.items():
                self.run.summary[k] = v

    def table(self, key: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Log a ``wandb.Table`` under ``key``."""
        if self.run is not None:
            self.run.log({key: self._wandb.Table(columns=list(columns), data=[list(r) for r in rows])})

    def images(self, paths: Mapping[str, Path]) -> None:
        """Log the PNG files ``paths`` (key -> file) as images."""
        if self.run is not None and paths:
            self.run.log({k: self._wandb.Image(str(p)) for k, p in paths.items()})

    def finish(self) -> None:
        """Close the run (W&B then syncs or keeps its offline files)."""
        if self.run is not None:
            self.run.finish()
            self.run = None

    def report(
        self,
        metrics: Mapping[str, float],
        tables: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]],
        plots: Mapping[str, Path],
        *,
        summary: Mapping[str, Any] | None = None,
    ) -> None:
        """An experiment's close: log its metrics (also as the run summary, with ``summary`` added), its
        tables and plots, then finish the run."""
        self.log(metrics)
        self.summary({**metrics, **(summary or {})})
        for key, columns, rows in tables:
            self.table(key, columns, rows)
        self.images(plots)
        self.finish()
