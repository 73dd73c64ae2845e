"""Typed arguments that are also the command line: an experiment's options are one dataclass.

CleanRL's pattern (a typed args dataclass is the script's CLI), on the standard library: each field is
declared with ``arg(default, help, group=...)`` and ``parse_args(Args, argv)`` builds an ``argparse``
parser from the fields (their type hints, help texts and defaults), grouped into ``--help`` sections
(experiment options, data, judge, output, tracking), with ``--x/--no-x`` for booleans and ``nargs="+"``
for tuples. A ``ConfigError`` raised by the dataclass's ``__post_init__`` becomes a usage error.

Why not tyro (CleanRL's choice; tried on these dataclasses, tyro 1.0): its ``--help`` puts every option
of a flat dataclass in one box (sections come only from nested dataclasses, which would rename the
options ``--data.source`` or, with prefixes omitted, change the fields ``config_dict`` hashes into the
results folder's name), drops the ``choices`` and metavars (``--split STR``), says each default twice
and turns ``nargs="+"`` into ``*``. ``build_parser`` and ``parse_args`` (about 100 lines) keep every
option name, help text and hash.

``DataArgs``, ``JudgeArgs``, ``TrackingArgs`` and ``RunArgs`` are the shared option sets an experiment's
``Args`` inherits; ``config_dict`` turns args into the JSON a results folder records (and hashes, with
``hashed_only=True``: presentation and tracking options never change where results go).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from experiments.results import DEFAULT_RUNS_DIR
from experiments.tracking import WANDB_PROJECT
from penguin_gym.error import ConfigError

A = TypeVar("A")


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
        """Check the data options and name the synthetic suite's version (called by ``__post_init__``)."""
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
        from penguin_gym.judges.spec import parse_backend_options

        return parse_backend_options(self.backend_option)


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
