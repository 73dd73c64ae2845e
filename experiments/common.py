"""Machinery every experiment shares: typed args as a CLI, a resumable results folder, statistics,
tables, plots, progress bars and W&B tracking.

An experiment is one readable script (CleanRL style): a dataclass of arguments that is also its
command line, a plan of *units* of work (a (responder, domain, chunk) of scenarios, an (agent, domain)
evaluation), and a summary computed from the rows those units wrote. This module provides the rest:

* ``parse_args(Args, argv)``: an ``argparse`` parser built from the dataclass fields (type hints, help
  text in ``field(metadata={"help": ...})``), grouped by section, with ``--x/--no-x`` for booleans.
* ``ResultsDir``: ``runs/<experiment>-<confighash>/`` with ``config.json``, ``rows.jsonl`` (appended
  unit by unit, flushed and fsynced, each unit closed by a marker line), ``summary.json``, CSV tables
  and PNG plots. Started again with the same arguments it finds the same folder and skips the units
  already written, so a run killed midway resumes where it stopped; a unit cut off by the kill (no
  marker, or a half-written last line) is dropped and computed again.
* ``Tracker``: Weights & Biases, imported only when tracking is on; ``mode="offline"`` unless an API
  key is set (``WANDB_API_KEY``) or the user is logged in (``wandb login``), ``--no-wandb`` to skip it.
  Metric keys are namespaced: ``context_gap/<responder>/<domain>/rich``,
  ``leaderboard/<agent>/<domain>/safety``.
* ``mean_ci95``: mean and the half-width of its 95% confidence interval (Student t).
* ``print_table``, ``progress``, ``write_csv`` and the plot helpers (matplotlib, Agg backend).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import sys
import threading
import time
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from penguin_gym.error import ConfigError, DataFormatError, DependencyNotInstalled, ResultsLockedError
from penguin_gym.registration import env_id

#: Bump when the meaning of a results row changes: old folders then no longer match a new run.
RESULTS_FORMAT = 1
#: Where results folders go unless ``--out`` names one.
DEFAULT_RUNS_DIR = "runs"
WANDB_PROJECT = "penguin-gym"

A = TypeVar("A")


# -- arguments ---------------------------------------------------------------------------------------
def arg(default: Any, help: str, *, hashed: bool = True, group: str | None = None, **kw: Any) -> Any:  # noqa: A002
    """A dataclass field that is also a command-line option.

    Args:
        default: The default value (tuples for list options).
        help: The ``--help`` text.
        hashed: Whether the value is part of the configuration hash (``False`` for presentation and
            tracking options, which do not change the results).
        group: The ``--help`` section (default: the experiment's own options).
        **kw: Extra ``argparse`` keywords (``choices``, ``metavar``).
    """
    return field(default=default, metadata={"help": help, "hashed": hashed, "group": group, "argparse": kw})


@dataclass
class DataArgs:
    """Which scenarios: the embedded synthetic suite by default, or the published PENGUIN data."""

    source: str = arg(
        "synthetic",
        "scenarios: 'synthetic' (the embedded suite, v1; 'synthetic-v0' for the v0 ids' suite), a PENGUIN "
        ".json/.jsonl file, or a Hugging Face id (wick1d/Personalized_Safety_Data)",
        group="data",
    )
    domain_map: str | None = arg(
        None,
        "loaded data: a JSON file of scenario name -> domain, for names the routing rules do not know",
        group="data",
        metavar="FILE.json",
    )
    severity: str = arg(
        "lexicon",
        "loaded data: how value texts become severities: 'lexicon' (documented rules) or 'embedding' "
        "(nearest labelled anchors, all-MiniLM-L6-v2)",
        group="data",
    )
    strict_records: bool = arg(
        True, "loaded data: reject records with unknown keys (--no-strict-records ignores them)", group="data"
    )
    split: str = arg("test", "split: train, test or all", group="data", choices=("train", "test", "all"))
    domains: tuple[str, ...] = arg((), "domains to run (default: all seven)", group="data", metavar="DOMAIN")
    n_per_domain: int | None = arg(None, "synthetic: scenarios generated per domain (default 2000)", group="data")
    data_seed: int = arg(0, "seed of the synthetic generator", group="data")
    max_scenarios: int | None = arg(
        None, "use at most this many scenarios per domain (a seeded sample; default: all)", group="data"
    )

    def validate_data(self) -> None:
        from penguin_gym.data import DOMAINS
        from penguin_gym.data.synthetic import suite_version

        version = suite_version(self.source)
        if version is not None:  # 'synthetic' names its version, so results of two suites never mix
            self.source = f"synthetic-v{version}"

        bad = [d for d in self.domains if d not in DOMAINS]
        if bad:
            raise ConfigError(f"--domains {bad} unknown; valid: {list(DOMAINS)}")
        if self.max_scenarios is not None and self.max_scenarios < 1:
            raise ConfigError(f"--max-scenarios = {self.max_scenarios} must be >= 1")
        if self.n_per_domain is not None and self.n_per_domain < 1:
            raise ConfigError(f"--n-per-domain = {self.n_per_domain} must be >= 1")


@dataclass
class JudgeArgs:
    """Which judge scores the answers."""

    judge: str = arg(
        "simulated",
        "judge: 'simulated' (calibrated surrogate), 'simulated:<responder>', 'simulated@<params.json>', "
        "'table:<scores.npz>', or 'llm' (a responder LLM answers, a judge LLM scores: set --responder "
        "and --judge-model)",
        group="judge",
    )
    responder: str | None = arg(
        None,
        "simulated: a responder preset (gpt-4o, llama-3.1-8b, ...); llm: the responder's backend spec "
        "('openai:<model>@<url>', 'hf:<path>')",
        group="judge",
    )
    judge_model: str | None = arg(None, "llm: the judge model's backend spec (e.g. 'openai:gpt-4o')", group="judge")
    cache: str | None = arg(
        None, "SQLite file caching judgments (llm judges: strongly advised; shared across runs)", group="judge"
    )
    backend_option: tuple[str, ...] = arg(
        (),
        "llm: backend constructor options KEY=VALUE (concurrency=16 timeout=60 api_key_env=MY_KEY device=cuda "
        "extra_body='{\"top_p\": 0.9}')",
        group="judge",
        metavar="KEY=VALUE",
    )
    temperature: float = arg(0.7, "llm: the responder's sampling temperature (the paper: 0.7)", group="judge")
    max_tokens: int = arg(512, "llm: the responder's reply length limit in tokens", group="judge")
    judge_temperature: float | None = arg(
        None, "llm: the judge's sampling temperature (default: --temperature, as in the paper)", group="judge"
    )
    judge_max_tokens: int = arg(768, "llm: the judge's reply length limit in tokens", group="judge")
    judge_retries: int = arg(
        2,
        "llm: how many more times an empty answer or an unreadable judgment is asked for (another seed each time)",
        group="judge",
    )
    judge_seed: int | None = arg(
        None, "llm: the sampling seed of first requests (default: the server's own)", group="judge"
    )
    structured: str = arg(
        "off",
        "llm: constrained judge output: off (free text, parsed strictly), json_schema (OpenAI, vLLM, SGLang, "
        "llama-server), json_object (llama-cpp-python's server), grammar (llama.cpp grammars)",
        group="judge",
        choices=("off", "json_schema", "json_object", "grammar"),
    )
    strict_total: bool = arg(
        False, "llm: a comprehensive score that is not the sum of the three makes a judgment unreadable", group="judge"
    )
    max_unscored: float = arg(
        0.05,
        "llm: stop with an error when more than this fraction of the judged items stays unscored",
        hashed=False,
        group="judge",
    )
    retry_failed: bool = arg(
        False,
        "llm: ask again for items whose failure the cache recorded (else a rerun serves the recorded failure)",
        hashed=False,
        group="judge",
    )

    def validate_judge(self) -> None:
        """Check the judge options (called by each experiment's ``__post_init__``)."""
        if not 0.0 <= self.max_unscored <= 1.0:
            raise ConfigError(f"--max-unscored = {self.max_unscored} must be a fraction in [0, 1]")
        if self.judge_retries < 0:
            raise ConfigError(f"--judge-retries = {self.judge_retries} must be >= 0")
        for label, t in (("--temperature", self.temperature), ("--judge-temperature", self.judge_temperature)):
            if t is not None and not t >= 0:
                raise ConfigError(f"{label} = {t} must be >= 0")
        for label, m in (("--max-tokens", self.max_tokens), ("--judge-max-tokens", self.judge_max_tokens)):
            if m < 1:
                raise ConfigError(f"{label} = {m} must be >= 1")

    def backend_kwargs(self) -> dict[str, Any]:
        """``--backend-option`` as keyword arguments (values parsed as JSON when they are JSON)."""
        out: dict[str, Any] = {}
        for item in self.backend_option:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"--backend-option {item!r} must be KEY=VALUE, e.g. concurrency=16")
            try:
                out[key.replace("-", "_")] = json.loads(value)
            except json.JSONDecodeError:
                out[key.replace("-", "_")] = value
        return out


@dataclass
class TrackingArgs:
    """How a run is logged to Weights & Biases (never part of the config hash)."""

    wandb: bool = arg(True, "log to Weights & Biases (offline unless logged in)", hashed=False, group="tracking")
    wandb_project: str = arg(WANDB_PROJECT, "W&B project", hashed=False, group="tracking")
    wandb_entity: str | None = arg(None, "W&B entity (team or user)", hashed=False, group="tracking")
    wandb_mode: str = arg(
        "auto",
        "W&B mode: auto (online when an API key is set or you are logged in, else offline), online, offline, disabled",
        hashed=False,
        group="tracking",
        choices=("auto", "online", "offline", "disabled"),
    )


@dataclass
class RunArgs(TrackingArgs):
    """Where results go and how the run is tracked; none of these change the results."""

    out: str | None = arg(
        None, "results folder (default: runs/<experiment>-<confighash>)", hashed=False, group="output"
    )
    runs_dir: str = arg(DEFAULT_RUNS_DIR, "parent of the default results folders", hashed=False, group="output")
    fresh: bool = arg(
        False, "discard rows already in the results folder instead of resuming", hashed=False, group="output"
    )
    plots: bool = arg(True, "write PNG plots", hashed=False, group="output")
    progress: bool = arg(True, "show progress bars", hashed=False, group="output")


_GROUP_TITLES = {
    None: "experiment options",
    "data": "data",
    "judge": "judge",
    "output": "output",
    "tracking": "tracking (Weights & Biases)",
}


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def build_parser(
    cls: type, *, prog: str | None = None, description: str | None = None, epilog: str | None = None
) -> argparse.ArgumentParser:
    """An ``argparse`` parser whose options are the fields of dataclass ``cls``."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    hints = typing.get_type_hints(cls)
    groups: dict[str | None, argparse._ArgumentGroup] = {}
    fields = sorted(dataclasses.fields(cls), key=lambda f: list(_GROUP_TITLES).index(f.metadata.get("group")))
    for f in fields:
        group_key = f.metadata.get("group")
        if group_key not in groups:
            groups[group_key] = parser.add_argument_group(_GROUP_TITLES.get(group_key, group_key))
        g = groups[group_key]
        tp, optional = _unwrap_optional(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc,operator]
        helptext = f.metadata.get("help", "").replace("%", "%%")
        extra = dict(f.metadata.get("argparse", {}))
        if tp is bool:
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=helptext)
            continue
        if typing.get_origin(tp) is tuple:
            inner = typing.get_args(tp)[0]
            if "default" not in helptext:
                helptext += f" (default: {' '.join(map(str, default)) or 'none'})"
            g.add_argument(flag, nargs="+", type=inner, default=default, help=helptext, **extra)
            continue
        if typing.get_origin(tp) is Literal:
            extra.setdefault("choices", typing.get_args(tp))
            tp = type(typing.get_args(tp)[0])
        if "default" not in helptext:
            helptext += f" (default: {'none' if default is None and optional else default})"
        g.add_argument(flag, type=tp, default=default, help=helptext, **extra)
    return parser


def parse_args(
    cls: type[A],
    argv: Sequence[str] | None,
    *,
    prog: str | None = None,
    description: str | None = None,
    epilog: str | None = None,
) -> A:
    """Parse ``argv`` into an instance of the args dataclass ``cls``.

    A ``ConfigError`` from the dataclass's validation becomes a usage error (exit status 2) that says
    what was wrong.
    """
    parser = build_parser(cls, prog=prog, description=description, epilog=epilog)
    ns = parser.parse_args(None if argv is None else list(argv))
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        v = getattr(ns, f.name)
        values[f.name] = tuple(v) if isinstance(v, list) else v
    try:
        return cls(**values)
    except ConfigError as e:
        parser.error(str(e))
    raise AssertionError("unreachable")


def config_dict(args: Any, *, hashed_only: bool = False) -> dict[str, Any]:
    """The args as a JSON-ready dict (only the fields that change results with ``hashed_only``)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(args):
        if hashed_only and not f.metadata.get("hashed", True):
            continue
        v = getattr(args, f.name)
        out[f.name] = _redacted(list(v) if isinstance(v, tuple) else v)
    return out


def _redacted(value: Any) -> Any:
    """``value`` with credentials in URLs replaced by ``***`` (in strings, lists and dicts)."""
    from penguin_gym.judges.backends import redact_credentials

    if isinstance(value, str):
        return redact_credentials(value)
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    return value


def spec_label(spec: str) -> str:
    """A backend spec as it may be shown and written: credentials in its URL redacted."""
    from penguin_gym.judges.backends import redact_credentials

    return redact_credentials(spec)


def config_hash(experiment: str, config: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> str:
    """A stable 10-hex-digit hash of what determines an experiment's results."""
    import penguin_gym

    blob = json.dumps(
        {
            "experiment": experiment,
            "config": dict(config),
            "extra": dict(extra or {}),
            "format": RESULTS_FORMAT,
            "penguin_gym": penguin_gym.__version__,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def derive_seed(*parts: object) -> int:
    """A 32-bit seed from any parts (hashlib, so it is the same on every machine and run)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


# -- results folder ----------------------------------------------------------------------------------
_UNIT_DONE = "__unit_done__"
#: The fix of every damaged results folder.
_FRESH_FIX = "rerun with --fresh or choose another --out"
_log = logging.getLogger(__name__)


@dataclass
class _FolderLock:
    """This process's hold on one results folder's ``.lock``, shared by its ``ResultsDir`` objects."""

    fd: int
    pid: int
    users: int


#: The results folders this process holds locked, by real path (see ``ResultsDir``, Locking).
_HELD_LOCKS: dict[str, _FolderLock] = {}
_HELD_LOCKS_GUARD = threading.Lock()


def _lock_folder(folder: Path) -> str | None:
    """Take ``folder``'s exclusive lock for this process, or join this process's hold on it.

    Returns:
        The key to pass to ``_unlock_folder``, or ``None`` where file locking is not available.

    Raises:
        ResultsLockedError: when another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        _log.warning(
            "%s: no file locking on this platform (no fcntl); make sure no other run writes this folder meanwhile",
            folder,
        )
        return None
    key = os.path.realpath(folder)
    with _HELD_LOCKS_GUARD:
        held = _HELD_LOCKS.get(key)
        if held is not None:
            if held.pid == os.getpid():
                held.users += 1
                return key
            # Inherited through a fork: the hold is the parent's; this process needs a lock of its own.
            del _HELD_LOCKS[key]
            os.close(held.fd)
        lock_path = folder / ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ConfigError(f"cannot create {lock_path} ({e.strerror}); choose another --out") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise ResultsLockedError(
                f"{folder} is being written by another run (pid {holder if holder.isdigit() else 'unknown'}); "
                "wait for it to finish or choose another --out"
            ) from None
        except OSError as e:  # a file system without flock (some network mounts)
            os.close(fd)
            _log.warning("%s: cannot lock %s (%s); make sure no other run writes it meanwhile", folder, lock_path, e)
            return None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD_LOCKS[key] = _FolderLock(fd=fd, pid=os.getpid(), users=1)
        return key


def _unlock_folder(key: str) -> None:
    """Drop one hold taken by ``_lock_folder``; the last one of this process releases the lock."""
    import fcntl

    with _HELD_LOCKS_GUARD:
        held = _HELD_LOCKS.get(key)
        if held is None or held.pid != os.getpid():
            return
        held.users -= 1
        if held.users > 0:
            return
        del _HELD_LOCKS[key]
        try:
            os.ftruncate(held.fd, 0)  # the file names the pid of the run writing now, none when empty
            fcntl.flock(held.fd, fcntl.LOCK_UN)
        finally:
            os.close(held.fd)


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ResultsDir:
    """A results folder that resumes: rows are appended unit by unit and skipped when present.

    Layout: ``config.json`` (the arguments and their hash), ``rows.jsonl`` (one JSON object per line;
    after each unit's rows a marker line ``{"__unit_done__": <unit>, "rows": n}``), ``summary.json``,
    ``*.csv``, ``*.png``, ``.lock`` and, with tracking, ``wandb/``.

    Reading is strict: a damaged ``config.json`` or ``rows.jsonl`` (not JSON, not UTF-8, a line that is
    not an object, a marker whose count is wrong, a row without one of ``row_fields``), or rows with no
    ``config.json`` to say which configuration wrote them, raise ``DataFormatError`` naming the file and
    line. Only what a kill leaves (a half-written last line, rows of a unit without its marker) is
    repaired, by dropping it.

    Locking: while a ``ResultsDir`` is open its process holds an exclusive ``flock`` on ``<folder>/.lock``
    (which holds its pid), so a second run on the same folder fails at once with ``ResultsLockedError``
    instead of interleaving rows. The lock is per process and re-entrant: the same process may open the
    folder again (a resumed run, a test) and the lock is released when every ``ResultsDir`` of the folder
    in that process is closed (``close()``, or ``with ResultsDir(...)``) or when the process exits. A
    forked child is another process and needs the lock of its own. Where ``fcntl`` is missing (Windows)
    or the file system refuses ``flock``, locking is skipped with a logged warning.

    Args:
        experiment: The experiment's name (``context_gap``, ``leaderboard``, ...).
        config: The arguments that determine the results (hashed).
        full_config: Every argument (recorded in ``config.json``).
        out: The folder; default ``<runs_dir>/<experiment>-<hash>``.
        runs_dir: Parent of the default folder.
        fresh: Discard what the folder holds.
        extra: Other things the results depend on (the judge's name), hashed with ``config``.
        row_fields: Fields every row must have (those the experiment's summary reads); a resumed row
            without one is a ``DataFormatError``, not a ``KeyError`` deep in the summary.

    Raises:
        ResultsLockedError: when another process is writing the folder.
        ConfigError: when the folder holds another configuration's results, or cannot be created.
        DataFormatError: when what the folder holds is damaged (the message names file and line).
    """

    def __init__(
        self,
        experiment: str,
        config: Mapping[str, Any],
        *,
        full_config: Mapping[str, Any] | None = None,
        out: str | Path | None = None,
        runs_dir: str | Path = DEFAULT_RUNS_DIR,
        fresh: bool = False,
        extra: Mapping[str, Any] | None = None,
        row_fields: Sequence[str] = (),
    ) -> None:
        self.experiment = experiment
        self.hash = config_hash(experiment, config, extra)
        self.path = Path(out) if out is not None else Path(runs_dir) / f"{experiment}-{self.hash}"
        self.rows_path = self.path / "rows.jsonl"
        self.row_fields = tuple(row_fields)
        self._units: dict[str, list[dict[str, Any]]] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._closed = False
        self._lock_key: str | None = None
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} is a file, not a results folder; choose another --out")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(
                f"cannot create the results folder {self.path} ({e.strerror}); choose another --out"
            ) from e
        self._lock_key = _lock_folder(self.path)
        try:
            self._open(config, full_config, fresh, extra)
        except BaseException:
            self.close()
            raise
        self.resumed_units = len(self._units)

    def _open(
        self,
        config: Mapping[str, Any],
        full_config: Mapping[str, Any] | None,
        fresh: bool,
        extra: Mapping[str, Any] | None,
    ) -> None:
        cfg_path = self.path / "config.json"
        if fresh:
            # rows before config: a kill in between leaves a config without rows, never rows without one
            for name in ("rows.jsonl", "summary.json", "config.json"):
                (self.path / name).unlink(missing_ok=True)
        if cfg_path.exists():
            old = self._read_config(cfg_path)
            if old["hash"] != self.hash:
                raise ConfigError(
                    f"{self.path} holds results of another configuration (hash {old['hash']}, this run "
                    f"{self.hash}): pass --fresh to overwrite it or choose another --out"
                )
        else:
            strays = [name for name in ("rows.jsonl", "summary.json") if (self.path / name).exists()]
            if strays:
                raise DataFormatError(
                    f"{self.path} holds {' and '.join(strays)} but no config.json, so nothing says which "
                    f"configuration wrote them; {_FRESH_FIX}"
                )
            self.write_json(
                "config.json",
                {
                    "experiment": self.experiment,
                    "hash": self.hash,
                    "config": dict(full_config or config),
                    "extra": dict(extra or {}),
                },
            )
        self._load()

    def close(self) -> None:
        """Stop writing: drop this object's hold on the folder's lock (released when the process's last
        ``ResultsDir`` of the folder closes). Reading still works; writing raises ``ValueError``."""
        self._closed = True
        if self._lock_key is not None:
            key, self._lock_key = self._lock_key, None
            _unlock_folder(key)

    def __enter__(self) -> ResultsDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self.path}: this ResultsDir is closed; open the folder again to write to it")

    # reading -------------------------------------------------------------------------------------
    @staticmethod
    def _read_config(cfg_path: Path) -> dict[str, Any]:
        """``config.json`` as a dict with a string ``hash``, or a ``DataFormatError`` saying what is wrong."""
        try:
            raw = cfg_path.read_bytes()
        except OSError as e:
            raise DataFormatError(f"{cfg_path}: cannot be read ({e.strerror}); {_FRESH_FIX}") from e
        if not raw.strip():
            raise DataFormatError(f"{cfg_path}: empty (a run cut off while writing it?); {_FRESH_FIX}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataFormatError(f"{cfg_path}: not UTF-8 text (byte {e.start}: {e.reason}); {_FRESH_FIX}") from e
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            early = e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated")
            what = "truncated JSON" if early else "not valid JSON"
            raise DataFormatError(f"{cfg_path}:{e.lineno}:{e.colno}: {what} ({e.msg}); {_FRESH_FIX}") from e
        if not isinstance(obj, dict):
            raise DataFormatError(
                f"{cfg_path}: holds a JSON {_JSON_KINDS.get(type(obj), type(obj).__name__)}, expected an object "
                f"with 'experiment', 'hash' and 'config'; {_FRESH_FIX}"
            )
        if "hash" not in obj:
            raise DataFormatError(f"{cfg_path}: lacks field 'hash' (it has {sorted(obj)}); {_FRESH_FIX}")
        if not isinstance(obj["hash"], str):
            raise DataFormatError(
                f"{cfg_path}: field 'hash' is {_short(obj['hash'])}, expected the configuration hash (a string); "
                f"{_FRESH_FIX}"
            )
        return obj

    def _load(self) -> None:
        """Read ``rows.jsonl``: the rows of every closed unit, checked line by line."""
        if not self.rows_path.exists():
            return
        where = self.rows_path
        try:
            original = raw = where.read_bytes()
        except OSError as e:
            raise DataFormatError(f"{where}: cannot be read ({e.strerror}); {_FRESH_FIX}") from e
        if raw and not raw.endswith(b"\n"):
            # A kill in the middle of a write: drop the half-written line.
            raw = raw[: raw.rfind(b"\n") + 1]
        pending: list[tuple[int, dict[str, Any]]] = []
        keep = bytearray()
        pending_bytes = bytearray()
        for lineno, line in enumerate(raw.splitlines(keepends=True), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as e:
                raise DataFormatError(
                    f"{where}:{lineno}: not UTF-8 text (byte {e.start} of the line: {e.reason}); {_FRESH_FIX}"
                ) from e
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{where}:{lineno}:{e.colno}: not valid JSON ({e.msg}); {_FRESH_FIX}") from e
            if not isinstance(obj, dict):
                raise DataFormatError(
                    f"{where}:{lineno}: a JSON {_JSON_KINDS.get(type(obj), type(obj).__name__)}, expected an "
                    f"object (a row or a unit marker); {_FRESH_FIX}"
                )
            if _UNIT_DONE in obj:
                unit, n, meta = obj[_UNIT_DONE], obj.get("rows"), obj.get("meta")
                if not isinstance(unit, str):
                    raise DataFormatError(
                        f"{where}:{lineno}: field {_UNIT_DONE!r} is {_short(unit)}, expected the unit's name "
                        f"(a string); {_FRESH_FIX}"
                    )
                if not isinstance(n, int) or isinstance(n, bool):
                    seen = "missing" if "rows" not in obj else f"{_short(n)} ({type(n).__name__})"
                    raise DataFormatError(
                        f"{where}:{lineno}: unit {unit!r}: field 'rows' is {seen}, expected the unit's row count "
                        f"(an integer); {_FRESH_FIX}"
                    )
                if meta is not None and not isinstance(meta, dict):
                    raise DataFormatError(
                        f"{where}:{lineno}: unit {unit!r}: field 'meta' is {_short(meta)}, expected an object; "
                        f"{_FRESH_FIX}"
                    )
                if len(pending) != n:
                    raise DataFormatError(
                        f"{where}:{lineno}: unit {unit!r} closes {n} rows but {len(pending)} precede it; {_FRESH_FIX}"
                    )
                for row_line, row in pending:
                    self._check_row(row_line, row)
                self._units.setdefault(unit, [row for _, row in pending])
                self._meta.setdefault(unit, dict(meta or {}))
                keep += pending_bytes + line
                pending, pending_bytes = [], bytearray()
            else:
                pending.append((lineno, obj))
                pending_bytes += line
        if bytes(keep) != original:
            # Rows of a unit that was never closed: rewrite the file without them, atomically.
            tmp = self.rows_path.with_suffix(".jsonl.tmp")
            with open(tmp, "wb") as fh:
                fh.write(bytes(keep))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.rows_path)

    def _check_row(self, lineno: int, row: Mapping[str, Any]) -> None:
        missing = [f for f in self.row_fields if f not in row]
        if missing:
            what = f"field {missing[0]!r}" if len(missing) == 1 else f"fields {missing}"
            raise DataFormatError(
                f"{self.rows_path}:{lineno}: row lacks {what}, which {self.experiment} needs (the row has "
                f"{_short(sorted(row), 120)}); {_FRESH_FIX}"
            )

    def is_done(self, unit: str) -> bool:
        return unit in self._units

    @property
    def done_units(self) -> frozenset[str]:
        return frozenset(self._units)

    def unit_rows(self, unit: str) -> list[dict[str, Any]]:
        return self._units[unit]

    def unit_meta(self, unit: str) -> dict[str, Any]:
        """The ``meta`` the unit was written with (timings)."""
        return self._meta[unit]

    def rows(self, units: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The rows of ``units`` in that order (default: every unit, in the order written)."""
        keys = list(self._units) if units is None else list(units)
        missing = [u for u in keys if u not in self._units]
        if missing:
            raise KeyError(f"units not computed yet: {missing[:5]}")
        return [r for u in keys for r in self._units[u]]

    # writing -------------------------------------------------------------------------------------
    def append_unit(
        self, unit: str, rows: Sequence[Mapping[str, Any]], *, meta: Mapping[str, Any] | None = None
    ) -> None:
        """Append a unit's rows and its marker (with ``meta``, e.g. timings, kept out of the rows) in one
        write, then flush and fsync."""
        self._check_open()
        if unit in self._units:
            raise ValueError(f"unit {unit!r} is already in {self.rows_path}")
        copies = [dict(r) for r in rows]
        text = "".join(json.dumps(r, default=_json_default) + "\n" for r in copies)
        text += json.dumps({_UNIT_DONE: unit, "rows": len(copies), "meta": dict(meta or {})}) + "\n"
        with open(self.rows_path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        self._units[unit] = copies
        self._meta[unit] = dict(meta or {})

    def redo_units(self, units: Iterable[str]) -> None:
        """Forget ``units`` (their rows and markers leave ``rows.jsonl``, rewritten atomically), so that
        the run computes them again: ``--retry-failed`` does so for units with unscored items."""
        self._check_open()
        drop = set(units) & set(self._units)
        if not drop:
            return
        for unit in drop:
            del self._units[unit]
            self._meta.pop(unit, None)
        text = "".join(
            "".join(json.dumps(r, default=_json_default) + "\n" for r in rows)
            + json.dumps({_UNIT_DONE: unit, "rows": len(rows), "meta": self._meta.get(unit, {})})
            + "\n"
            for unit, rows in self._units.items()
        )
        tmp = self.rows_path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.rows_path)

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as indented JSON, atomically and durably (temp file, fsync, rename): a crash
        leaves the old file or the new one, never an empty or truncated one."""
        self._check_open()
        p = self.path / name
        tmp = p.with_suffix(p.suffix + ".tmp")
        text = json.dumps(obj, indent=2, default=_json_default) + "\n"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        return p

    def write_csv(self, name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
        self._check_open()
        return write_csv(self.path / name, columns, rows)


def write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    p = Path(path)
    with open(p, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for r in rows:
            w.writerow([_csv_cell(x) for x in r])
    return p


def _csv_cell(x: Any) -> Any:
    if isinstance(x, float):
        return f"{x:.6g}"
    return x


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (frozenset, set)):
        return sorted(o)
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


# -- statistics --------------------------------------------------------------------------------------
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (table to 10, then a
    Cornish-Fisher expansion, within 1e-3 of the exact value)."""
    if df < 1:
        raise ValueError(f"df = {df} must be >= 1")
    if df in _T975:
        return _T975[df]
    z = 1.959963984540054
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def mean_ci95(x: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """The mean of ``x`` and the half-width of its 95% confidence interval (0 for one value)."""
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise ValueError("mean_ci95 of an empty sample")
    m = float(a.mean())
    if a.size == 1:
        return m, 0.0
    return m, float(t975(a.size - 1) * a.std(ddof=1) / math.sqrt(a.size))


# -- data and judges ---------------------------------------------------------------------------------
def load_domains(args: DataArgs) -> dict[str, list[Any]]:
    """The scenarios of each requested domain (in ``DOMAINS`` order), sampled to ``max_scenarios``.

    The sample is seeded per domain (hashlib), so it is the same in every run and does not depend on
    which other domains are loaded.
    """
    from penguin_gym.data import DOMAINS, load_scenarios

    domains = list(args.domains) or list(DOMAINS)
    split = None if args.split == "all" else args.split
    scenarios = load_scenarios(
        args.source,
        domains=domains,
        n_per_domain=args.n_per_domain,
        seed=args.data_seed,
        **data_options(args, loader=True),
    )
    _announce_split(args.source, scenarios)
    if split is not None:
        scenarios = [s for s in scenarios if s.split == split]
    out: dict[str, list[Any]] = {}
    for d in DOMAINS:
        if d not in domains:
            continue
        items = [s for s in scenarios if s.domain == d]
        if not items:
            if not args.domains:
                continue  # a source that covers only some domains: run on those it has
            raise ConfigError(f"no {args.split} scenarios for domain {d!r} in source {args.source!r}")
        if args.max_scenarios is not None and len(items) > args.max_scenarios:
            rng = np.random.default_rng(derive_seed("sample", args.data_seed, d))
            idx = np.sort(rng.choice(len(items), size=args.max_scenarios, replace=False))
            items = [items[i] for i in idx]
        out[d] = items
    if not out:
        raise ConfigError(
            f"no {args.split} scenarios in source {args.source!r} (split {args.split!r}; try --split all)"
        )
    return out


def data_options(args: DataArgs, *, loader: bool = False) -> dict[str, Any]:
    """The loaded-data options of ``args`` that differ from the defaults, as ``gym.make`` keywords (or as
    ``load_scenarios`` keywords with ``loader=True``)."""
    out: dict[str, Any] = {}
    if args.domain_map is not None:
        out["domain_map"] = args.domain_map
    if args.severity != "lexicon":
        out["severity"] = args.severity
    if not args.strict_records:
        out["strict" if loader else "strict_records"] = False
    return out


_ANNOUNCED: set[tuple[str, int]] = set()


def _announce_split(source: str, scenarios: Sequence[Any]) -> None:
    """Print the split sizes of a source, once per process (experiments load it several times)."""
    from penguin_gym.data import split_summary

    key = (str(source), len(scenarios))
    if key not in _ANNOUNCED:
        _ANNOUNCED.add(key)
        print(f"data: {source}: {len(scenarios):,} scenarios; {split_summary(scenarios)}")


def build_judge(args: JudgeArgs, *, responder: str | None = None) -> Any:
    """The judge the arguments name (``responder`` overrides ``args.responder``).

    ``--judge llm`` builds ``LLMJudge(responder backend, judge backend)`` and, with ``--cache``, wraps it
    in the persistent ``CachedJudge``; other specs go through ``penguin_gym.judges.factory.make_judge``.
    """
    from penguin_gym.judges.factory import make_judge

    responder = responder if responder is not None else args.responder
    if args.judge == "llm":
        if not responder or not args.judge_model:
            raise ConfigError(
                "--judge llm needs --responder <backend spec> (the model that answers) and --judge-model "
                "<backend spec> (the model that scores), e.g. --responder openai:gpt-4o-mini --judge-model openai:gpt-4o"
            )
        try:
            from penguin_gym.judges.llm import LLMJudge
        except ImportError as e:
            raise DependencyNotInstalled(
                f'the LLM judge is not available ({e}); install it with: pip install "penguin-gym[llm]"'
            ) from e
        kw = args.backend_kwargs()
        judge: Any = LLMJudge(
            responder,
            args.judge_model,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            judge_temperature=args.judge_temperature,
            judge_max_tokens=args.judge_max_tokens,
            retries=args.judge_retries,
            seed=args.judge_seed,
            structured=None if args.structured == "off" else args.structured,
            strict_total=args.strict_total,
            backend_kwargs=kw,
        )
    elif args.judge.startswith("simulated"):
        spec = args.judge
        if responder:
            base = spec.split(":", 1)[0]
            spec = f"{base}:{responder}"
        judge = make_judge(spec)
    else:
        if responder:
            raise ConfigError(
                f"--responder {responder!r} applies to simulated and llm judges, not to --judge {args.judge!r}"
            )
        judge = make_judge(args.judge)
    if args.backend_option and args.judge != "llm":
        raise ConfigError("--backend-option applies to --judge llm only")
    cache = args.cache
    if cache is None and args.judge == "llm":
        # Every LLM judgment is kept: a rerun, a crash or another experiment never pays for it twice.
        cache = str(Path(getattr(args, "runs_dir", DEFAULT_RUNS_DIR)) / "judgments.sqlite")
    if cache and cache.lower() != "none":
        try:
            from penguin_gym.judges.cache import CachedJudge
        except ImportError as e:
            raise DependencyNotInstalled(f"the judge cache is not available ({e})") from e
        judge = CachedJudge(judge, cache, retry_failed=args.retry_failed)
    return judge


# -- unscored items ----------------------------------------------------------------------------------
def score_items(
    judge: Any, scenarios: Sequence[Any], rows: np.ndarray, masks: np.ndarray
) -> tuple[np.ndarray, dict[int, dict[str, str]]]:
    """Scores of ``scenarios[rows[j]]`` with revealed set ``masks[j]``, item by item failures allowed.

    Returns:
        The scores ``(n, 3)``, NaN where an item stayed unscored, and per unscored item ``j`` its
        ``{"cause", "reason"}`` (never a default score).

    Raises:
        BackendError: when requests failed on the server's side (a later run may succeed): whatever
            was judged is in the judge's cache, and rerunning resumes.
    """
    from penguin_gym.error import BackendError, JudgeBatchError
    from penguin_gym.judges import JudgeScore, bind

    rows = np.asarray(rows, dtype=np.int64)
    masks = np.asarray(masks, dtype=np.int64)
    try:
        return bind(judge, scenarios).scores(rows, masks), {}
    except JudgeBatchError as e:
        out = np.full((len(rows), 3), np.nan)
        for j, r in enumerate(e.results):
            if isinstance(r, JudgeScore):
                out[j] = (r.risk_sensitivity, r.emotional_empathy, r.personalization)
        unscored: dict[int, dict[str, str]] = {}
        transient = []
        for f in e.failures:
            if not getattr(f, "permanent", True):
                transient.append(f)
            elif isinstance(getattr(f, "index", None), int):
                unscored[f.index] = {"cause": str(getattr(f, "cause", "unparseable")), "reason": str(f.reason)}
        if transient:
            raise BackendError(
                f"{len(transient)} requests failed on the server's side; first: {transient[0].reason}"
            ) from e
        return out, unscored


def count_unscored(
    rows: Sequence[Mapping[str, Any]], items_per_row: int, *, planned: int | None = None
) -> dict[str, Any]:
    """How many judged items stayed unscored, by cause, from the rows' ``unscored`` fields.

    Args:
        rows: Result rows; a row's ``unscored`` maps its unscored items to ``{"cause", "reason"}``.
        items_per_row: Judged items per row.
        planned: Items the whole run judges (default: those of ``rows``).
    """
    by_cause: dict[str, int] = {}
    n = 0
    for r in rows:
        for item in (r.get("unscored") or {}).values():
            n += 1
            by_cause[item["cause"]] = by_cause.get(item["cause"], 0) + 1
    judged = len(rows) * items_per_row
    return {
        "items": n,
        "judged": judged,
        "planned": judged if planned is None else planned,
        "fraction": n / judged if judged else 0.0,
        "by_cause": dict(sorted(by_cause.items())),
        "rows_left_out": sum(1 for r in rows if r.get("unscored")),
    }


def redo_unscored_units(results: ResultsDir) -> None:
    """``--retry-failed``: forget the units whose rows hold unscored items, so that the run computes them
    again (their scored items come from the judge's cache, the failed ones are asked for again)."""
    results.redo_units([u for u in results.done_units if any(r.get("unscored") for r in results.unit_rows(u))])


def check_unscored(counts: Mapping[str, Any], max_fraction: float, results: Any) -> None:
    """Stop with one clear line once more than ``max_fraction`` of the planned items stayed unscored
    (called after each unit: past the limit, no later item can bring the run back under it)."""
    from penguin_gym.error import JudgeError

    limit = max_fraction * counts["planned"]
    if counts["items"] <= limit:
        return
    from penguin_gym.judges.llm import describe_causes

    raise JudgeError(
        f"{counts['items']} of {counts['judged']} judged items stayed unscored ({describe_causes(counts['by_cause'])}), more than --max-unscored "
        f"{max_fraction:g} allows ({int(limit)} of {counts['planned']}); the reasons are in {results.rows_path} "
        "('unscored'), every judgment is cached: rerun with --retry-failed to ask again, or raise --max-unscored"
    )


def judge_responders(args: JudgeArgs, requested: Sequence[str]) -> list[str | None]:
    """The responders an experiment sweeps: ``("all",)`` means every simulated preset (simulated
    judges) or the one ``--responder`` (llm judges); ``None`` stands for the judge as configured."""
    if args.judge.startswith("simulated"):
        if tuple(requested) == ("all",):
            from penguin_gym.judges.simulated import SimulatedJudgeParams

            base = args.judge.split(":", 1)[0]
            params = base.partition("@")[2] or None
            names = list(SimulatedJudgeParams.load(params).responders)
            return names  # type: ignore[return-value]
        return list(requested)
    if args.judge == "llm":
        return [args.responder] if tuple(requested) == ("all",) else list(requested)
    if tuple(requested) not in ((), ("all",)):
        raise ConfigError(f"--responders applies to simulated and llm judges, not to --judge {args.judge!r}")
    return [None]


# -- terminal ----------------------------------------------------------------------------------------
_NUMERIC = re.compile(r"^[+\-]?\d")


def console(stderr: bool = False) -> Any:
    """A Rich console; 120 columns wide when the output is not a terminal (logs, pipes, READMEs) and
    ``COLUMNS`` does not say otherwise."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(stderr=stderr, highlight=False, width=None if tty or os.environ.get("COLUMNS") else 120)


def print_table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, caption: str | None = None
) -> None:
    """Print a Rich table (numbers right-aligned)."""
    from rich.table import Table

    rows = [list(r) for r in rows]
    t = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for j, c in enumerate(columns):
        cells = [_fmt(r[j]) for r in rows if j < len(r)]
        numeric = j > 0 and bool(cells) and all(_NUMERIC.match(x) for x in cells if x)
        t.add_column(c, justify="right" if numeric else "left")
    for r in rows:
        t.add_row(*[_fmt(x) for x in r])
    console().print(t)


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.3f}" if abs(x) < 100 else f"{x:.1f}"
    return str(x)


def pm(mean: float, ci: float, digits: int = 2) -> str:
    """``"3.12 ± 0.04"``."""
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


@contextmanager
def progress(total: int, description: str, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr; yields ``advance(n)``."""
    if not enabled or total == 0:
        yield lambda n=1: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


# -- W&B ---------------------------------------------------------------------------------------------
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
        return self.run is not None

    def log(self, metrics: Mapping[str, float]) -> None:
        if self.run is not None:
            self.run.log(dict(metrics))

    def summary(self, metrics: Mapping[str, Any]) -> None:
        if self.run is not None:
            for k, v in metrics.items():
                self.run.summary[k] = v

    def table(self, key: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        if self.run is not None:
            self.run.log({key: self._wandb.Table(columns=list(columns), data=[list(r) for r in rows])})

    def images(self, paths: Mapping[str, Path]) -> None:
        if self.run is not None and paths:
            self.run.log({k: self._wandb.Image(str(p)) for k, p in paths.items()})

    def finish(self) -> None:
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


def print_results_line(results: ResultsDir, summary: Mapping[str, Any]) -> None:
    """The last line every experiment prints: where its results are, what it computed and resumed."""
    run = summary["run"]
    unscored = summary.get("unscored")
    if unscored and unscored["items"]:
        from penguin_gym.judges.llm import describe_causes

        print(
            f"unscored: {unscored['items']} of {unscored['judged']} judged items "
            f"({describe_causes(unscored['by_cause'])}); their "
            f"{unscored['rows_left_out']} rows are left out of the means (reasons in rows.jsonl)"
        )
    calls = run.get("judgments")
    if calls:
        print(
            f"judgments: {calls['new']} made now, {calls['from_cache']} from the cache, "
            f"{calls['failed_from_cache']} recorded failures served"
        )
    print(
        f"results: {results.path}  ({run['units'] - run['resumed_units']} units computed, {run['resumed_units']} resumed);"
        f" wall time {run['wall_s']:.1f}s"
    )


def judge_calls(*judges: Any) -> dict[str, int] | None:
    """What cached judges did this run: judgments made, served from the cache, failures served."""
    cached = [j for j in judges if hasattr(j, "misses") and hasattr(j, "hits")]
    if not cached:
        return None
    return {
        "new": sum(j.misses for j in cached),
        "from_cache": sum(j.hits for j in cached),
        "failed_from_cache": sum(getattr(j, "failed_hits", 0) for j in cached),
    }


# -- plots -------------------------------------------------------------------------------------------
def _plt() -> Any:
    try:
        import matplotlib
    except ImportError as e:
        raise DependencyNotInstalled(
            'plots need matplotlib: pip install "penguin-gym[plots]" (or pass --no-plots)'
        ) from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


PALETTE = (
    "#4C72B0",
    "#DD8452",
    "#55A868",
    "#C44E52",
    "#8172B3",
    "#937860",
    "#DA8BC3",
    "#8C8C8C",
    "#CCB974",
    "#64B5CD",
    "#1B9E77",
    "#E7298A",
)


def grouped_bars(
    path: Path,
    groups: Sequence[str],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
    refs: Mapping[str, float] | None = None,
    markers: Mapping[str, Sequence[float | None]] | None = None,
) -> Path:
    """Bars per group (x) and series (colour) with 95% CI error bars; optional horizontal reference
    lines (label -> y) and point markers per series (e.g. the paper's numbers)."""
    plt = _plt()
    n = len(series)
    width = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(groups) * max(1.0, n / 3)), 4.2))
    x = np.arange(len(groups))
    for j, (name, (means, cis)) in enumerate(series.items()):
        pos = x - 0.4 + width * (j + 0.5)
        ax.bar(
            pos,
            means,
            width,
            yerr=cis,
            capsize=2,
            label=name,
            color=PALETTE[j % len(PALETTE)],
            edgecolor="white",
            linewidth=0.5,
        )
        if markers and name in markers:
            mk = [(p, m) for p, m in zip(pos, markers[name], strict=True) if m is not None]
            if mk:
                ax.scatter(
                    [p for p, _ in mk],
                    [m for _, m in mk],
                    marker="D",
                    s=18,
                    color="black",
                    zorder=5,
                    label="paper" if j == 0 else None,
                )
    for k, (label, y) in enumerate((refs or {}).items()):
        ax.axhline(y, color="0.3", linestyle=("--", ":", "-.")[k % 3], linewidth=1, label=label)
    ax.set_xticks(
        x,
        groups,
        rotation=20 if max(map(len, groups)) > 8 else 0,
        ha="right" if max(map(len, groups)) > 8 else "center",
    )
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(4, n + len(refs or {})), loc="upper left", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def heatmap(path: Path, matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], *, title: str, cbar: str) -> Path:
    """An annotated heat map (rows x cols)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.0 + 0.85 * len(cols), 1.2 + 0.45 * len(rows)))
    im = ax.imshow(matrix, cmap="viridis", aspect="auto")
    ax.set_xticks(np.arange(len(cols)), cols, rotation=35, ha="right")
    ax.set_yticks(np.arange(len(rows)), rows)
    hi = np.nanmax(matrix) if np.isfinite(matrix).any() else 1.0
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = matrix[i, j]
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black" if v > 0.6 * hi else "white")
    fig.colorbar(im, ax=ax, label=cbar)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def lines_with_bands(
    path: Path,
    x: Sequence[float],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    refs: Mapping[str, float] | None = None,
) -> Path:
    """Lines with 95% CI bands, plus horizontal reference lines."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for j, (name, (m, c)) in enumerate(series.items()):
        m_arr, c_arr = np.asarray(m), np.asarray(c)
        col = PALETTE[j % len(PALETTE)]
        ax.plot(x, m_arr, marker="o", color=col, label=name)
        ax.fill_between(x, m_arr - c_arr, m_arr + c_arr, color=col, alpha=0.2)
    for k, (label, y) in enumerate((refs or {}).items()):
        ax.axhline(y, color="0.3", linestyle=("--", ":", "-.")[k % 3], linewidth=1, label=label)
    ax.set_xticks(list(x))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def bar_panels(
    path: Path,
    panels: Mapping[str, Mapping[str, tuple[float, float]]],
    *,
    title: str,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
    ncols: int = 4,
) -> Path:
    """Small multiples: one panel per group (domain), one bar per series (agent) with its 95% CI;
    every panel has the same series in the same order and colour."""
    plt = _plt()
    names = list(panels)
    series = list(next(iter(panels.values())))
    ncols = min(ncols, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows + 0.6), sharey=True, squeeze=False)
    colours = {a: PALETTE[j % len(PALETTE)] for j, a in enumerate(series)}
    for ax, name in zip(axes.flat, names, strict=False):
        vals = panels[name]
        x = np.arange(len(series))
        ax.bar(
            x,
            [vals[a][0] for a in series],
            yerr=[vals[a][1] for a in series],
            capsize=2,
            color=[colours[a] for a in series],
            edgecolor="white",
            linewidth=0.5,
        )
        ax.set_xticks(x, series, rotation=60, ha="right", fontsize=7)
        ax.set_title(name, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if ylim:
            ax.set_ylim(*ylim)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def frontier(
    path: Path,
    points: Mapping[str, tuple[float, float, float, float]],
    *,
    title: str,
    xlabel: str = "questions per episode",
    ylabel: str = "safety (1-5)",
    cost: float | None = None,
) -> Path:
    """Each agent as a point (questions ± ci, safety ± ci) with the Pareto frontier (the most safety
    for at most that many questions) as a dashed step line. Left: every agent; right: a zoom on the
    best ones, where the labels would overlap. With ``cost``, dotted lines of equal net reward
    (safety - cost x questions) in the zoom."""
    plt = _plt()
    fig, (ax, zx) = plt.subplots(1, 2, figsize=(11.5, 4.6), gridspec_kw={"width_ratios": [1.0, 1.15]})
    colours = {a: PALETTE[j % len(PALETTE)] for j, a in enumerate(points)}
    pts = sorted(((v[0], v[2]) for v in points.values()), key=lambda p: (p[0], -p[1]))
    front, best = [], -np.inf
    for px, py in pts:
        if py > best:
            front.append((px, py))
            best = py
    top = max(v[2] for v in points.values())
    near = {a: v for a, v in points.items() if v[2] >= top - 0.25}
    for axis in (ax, zx):
        chosen = points if axis is ax else near
        for j, (name, (xm, xc, ym, yc)) in enumerate(chosen.items()):
            axis.errorbar(
                xm, ym, xerr=xc, yerr=yc, fmt="o", color=colours[name], capsize=2, label=name if axis is ax else None
            )
            if axis is ax and name in near and len(near) > 1:
                continue  # labelled in the zoom, where they do not overlap
            dy = 6 if axis is ax else (8 if j % 2 == 0 else -12)
            axis.annotate(name, (xm, ym), textcoords="offset points", xytext=(6, dy), fontsize=8)
        if len(front) > 1:
            axis.step(
                [p[0] for p in front] + [max(v[0] for v in points.values()) + 0.5],
                [p[1] for p in front] + [front[-1][1]],
                where="post",
                color="0.4",
                linestyle="--",
                linewidth=1,
                label="Pareto frontier" if axis is ax else None,
            )
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
    xs = [v[0] for v in near.values()]
    ys = [v[2] for v in near.values()]
    zx.set_xlim(min(xs) - 0.3, max(xs) + 0.5)
    zx.set_ylim(min(ys) - 0.03, max(ys) + 0.03)
    if cost:
        lo, hi = zx.get_xlim()
        grid = np.linspace(lo, hi, 10)
        for net in np.arange(np.floor((min(ys) - cost * max(xs)) * 20) / 20, max(ys), 0.05):
            zx.plot(grid, net + cost * grid, color="0.75", linestyle=":", linewidth=0.8)
        zx.set_xlim(lo, hi)
        zx.set_ylim(min(ys) - 0.03, max(ys) + 0.03)
        zx.set_title(f"zoom on the best (dotted: equal net reward, cost {cost:g}/question)", fontsize=9)
    else:
        zx.set_title("zoom on the best", fontsize=9)
    ax.set_ylabel(ylabel)
    ax.set_title("all agents", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


# -- run lifecycle -----------------------------------------------------------------------------------
class Stopwatch:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0


# -- agent evaluation units --------------------------------------------------------------------------
@dataclass(frozen=True)
class AgentUnit:
    """One evaluation: an agent (``agents.make_agent`` spec and kwargs) on one domain's env.

    Attributes:
        key: The unit's key in the results folder.
        agent: The ``make_agent`` spec (``"mcts"``, ``"static"``, ...).
        agent_kwargs: Keyword arguments of ``make_agent``.
        domain: The domain; the env is ``Penguin-<domain>-v1``.
        episodes: Episodes (distinct users, drawn with ``seed``), or ``None`` for every user once.
        seed: Seed of the user draw and of the agent; the same for every agent on a domain, so all
            agents meet the same users (common random numbers).
        env_kwargs: ``gym.make`` arguments (data source, split, judge, costs, budget).
        labels: Extra columns written on every row (the agent's label, the budget k, the responder).
    """

    key: str
    agent: str
    agent_kwargs: Mapping[str, Any]
    domain: str
    episodes: int | None
    seed: int
    env_kwargs: Mapping[str, Any]
    labels: Mapping[str, Any]


def env_kwargs_for(args: DataArgs, judge: Any, **more: Any) -> dict[str, Any]:
    """``gym.make`` arguments of the data options (the env finds its training split from them)."""
    kw: dict[str, Any] = {"source": args.source, "split": None if args.split == "all" else args.split, "judge": judge}
    kw.update(data_options(args))
    if args.n_per_domain is not None:
        kw["n_per_domain"] = args.n_per_domain
    if args.data_seed:
        kw["data_seed"] = args.data_seed
    kw.update(more)
    return kw


def episodes_per_domain(args: DataArgs) -> dict[str, int | None]:
    """Episodes per domain: ``None`` (every user once) unless ``max_scenarios`` is below the domain's
    number of users."""
    sizes = {d: len(v) for d, v in load_domains(dataclasses.replace(args, max_scenarios=None)).items()}
    cap = args.max_scenarios
    return {d: (None if cap is None or cap >= n else cap) for d, n in sizes.items()}


def is_custom_agent(spec: str) -> bool:
    """Whether ``spec`` names a user's agent class (``module:Class`` or ``path/to/file.py:Class``)."""
    return ":" in spec


def load_custom_agent(spec: str) -> Any:
    """The class or factory ``spec`` names: ``package.module:Name`` (importable, or a module in the
    current directory) or ``path/to/file.py:Name``."""
    import importlib
    import importlib.util

    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise ConfigError(f"agent {spec!r}: write a custom agent as module:Class or path/to/file.py:Class")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.exists():
            raise ConfigError(f"agent {spec!r}: no file {path}")
        mod_id = "penguin_user_agent_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
        module = sys.modules.get(mod_id)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(mod_id, path)
            assert loader_spec is not None and loader_spec.loader is not None
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[mod_id] = module
            loader_spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path and importlib.util.find_spec(module_name.split(".")[0]) is None:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            raise ConfigError(
                f"agent {spec!r}: cannot import {module_name!r} ({e}); run from its folder or give path/to/file.py:{attr}"
            ) from e
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"agent {spec!r}: {module_name} has no {attr!r}") from None


def make_any_agent(spec: str, **kwargs: Any) -> Any:
    """``agents.make_agent(spec)`` for a shipped agent, or the user's class for ``module:Class`` specs."""
    if is_custom_agent(spec):
        factory = load_custom_agent(spec)
        try:
            return factory(**kwargs)
        except TypeError as e:
            raise ConfigError(f"agent {spec!r}: bad arguments {sorted(kwargs)}: {e}") from e
    import agents

    return agents.make_agent(spec, **kwargs)


def agent_label(spec: str) -> str:
    """The name shown for an agent spec: the spec itself, or a custom class's ``name`` attribute
    (``docs/examples/risk_first_agent.py:RiskFirstAgent`` -> ``risk-first``; the class name without one)."""
    if not is_custom_agent(spec):
        return spec
    name = getattr(load_custom_agent(spec), "name", None)
    return name if isinstance(name, str) and name else spec.rpartition(":")[2]


def parse_agent_options(items: Sequence[str], agents: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--agent-option AGENT:KEY=VALUE`` items as ``{agent spec: {key: value}}``.

    ``AGENT`` is an agent's spec or its shown name (``risk-first`` for
    ``docs/examples/risk_first_agent.py:RiskFirstAgent``); values are parsed as JSON when they are JSON
    (``80``, ``true``, ``[1, 2]``), else kept as text (``openai:gpt-4o@http://host/v1``).
    """
    out: dict[str, dict[str, Any]] = {a: {} for a in agents}
    names = {**{agent_label(a): a for a in agents}, **{a: a for a in agents}}
    for item in items:
        head, eq, value = item.partition("=")
        name, colon, key = head.rpartition(":")
        if not (eq and colon and name and key):
            raise ConfigError(f"--agent-option {item!r} must be AGENT:KEY=VALUE, e.g. mcts:num_rollouts=80")
        if name not in names:
            raise ConfigError(f"--agent-option {item!r} names agent {name!r}, which is not among {sorted(names)}")
        try:
            parsed: Any = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out[names[name]][key.replace("-", "_")] = parsed
    return out


def code_fingerprint(*specs: str) -> str:
    """A hash of the ``agents`` package's source (and of custom agents' files), so a results folder
    never mixes rows computed by different agent code."""
    import agents

    h = hashlib.sha256()
    for f in sorted(Path(agents.__file__).parent.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    for spec in specs:
        if is_custom_agent(spec) and spec.rpartition(":")[0].endswith(".py") and Path(spec.rpartition(":")[0]).exists():
            h.update(Path(spec.rpartition(":")[0]).read_bytes())
    return h.hexdigest()[:12]


def run_agent_units(
    results: ResultsDir, units: Sequence[AgentUnit], *, show_progress: bool = True, oracle: bool = True
) -> dict[str, float]:
    """Evaluate the units not in ``results`` yet (``agents.evaluate``), appending each unit's episode
    rows as soon as it finishes. Returns the seconds each computed unit took (by key)."""
    from dataclasses import asdict

    import agents

    todo = [u for u in units if not results.is_done(u.key)]
    seconds: dict[str, float] = {}
    with progress(len(todo), "agents x domains evaluated", enabled=show_progress) as advance:
        for u in todo:
            t0 = time.perf_counter()
            agent = make_any_agent(u.agent, **dict(u.agent_kwargs))
            res = agents.evaluate(
                agent,
                env_id(u.domain),
                episodes=u.episodes,
                seed=u.seed,
                split=u.env_kwargs.get("split"),
                env_kwargs={k: v for k, v in u.env_kwargs.items() if k != "split"},
                oracle=oracle,
            )
            seconds[u.key] = time.perf_counter() - t0
            results.append_unit(
                u.key, [{**dict(u.labels), **asdict(r)} for r in res.rows], meta={"seconds": round(seconds[u.key], 3)}
            )
            advance(1)
    return seconds
