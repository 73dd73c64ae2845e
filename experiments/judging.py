"""The judge an experiment's arguments name, and what to do with the items it could not score.

``build_judge`` turns ``JudgeArgs`` into a judge (``--judge llm``: an ``LLMJudge`` of two backends,
cached on disk; other specs: ``penguin_gym.judges.make_judge``). An unscored item (an unreadable
judgment, an empty answer) is never given a default score: ``score_items`` returns NaN and the cause,
the rows record it, ``count_unscored`` / ``check_unscored`` stop a run past ``--max-unscored``, and
``--retry-failed`` recomputes the units that hold such items.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np

from experiments.args import JudgeArgs
from experiments.results import DEFAULT_RUNS_DIR, ResultsDir
from penguin_gym.error import ConfigError, DependencyNotInstalled
from penguin_gym.judges.base import close_judge
from penguin_gym.judges.spec import JudgeSpec, parse_judge_spec


def _two_models(spec: JudgeSpec) -> bool:
    """Whether the spec is the bare ``llm``: a responder LLM answers (``--responder``), a judge LLM
    scores (``--judge-model``)."""
    return spec.kind == "llm" and spec.backend is None


def build_judge(args: JudgeArgs, *, responder: str | None = None) -> Any:
    """The judge the arguments name (``responder`` overrides ``args.responder``).

    ``--judge llm`` builds ``LLMJudge(responder backend, judge backend)`` and, with ``--cache``, wraps it
    in the persistent ``CachedJudge``; other specs (parsed by ``penguin_gym.judges.spec``) go through
    ``penguin_gym.judges.factory.make_judge``.
    """
    from penguin_gym.judges.factory import make_judge

    responder = responder if responder is not None else args.responder
    spec = parse_judge_spec(args.judge)
    two_models = _two_models(spec)
    if two_models:
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
    elif spec.kind == "simulated":
        judge = make_judge(spec.with_responder(responder or None))
    else:
        if responder:
            raise ConfigError(
                f"--responder {responder!r} applies to simulated and llm judges, not to --judge {args.judge!r}"
            )
        judge = make_judge(spec)
    if args.backend_option and not two_models:
        raise ConfigError("--backend-option applies to --judge llm only")
    cache = args.cache
    if cache is None and two_models:
        # Every LLM judgment is kept: a rerun, a crash or another experiment never pays for it twice.
        cache = str(Path(getattr(args, "runs_dir", DEFAULT_RUNS_DIR)) / "judgments.sqlite")
    if cache and cache.lower() != "none":
        try:
            from penguin_gym.judges.cache import CachedJudge
        except ImportError as e:
            raise DependencyNotInstalled(f"the judge cache is not available ({e})") from e
        judge = CachedJudge(judge, cache, retry_failed=args.retry_failed)
    made = _OPEN.get()
    if made is not None:
        made.append(judge)
    return judge


_OPEN: ContextVar[list[Any] | None] = ContextVar("penguin_open_judges", default=None)


@contextmanager
def closing_judges() -> Iterator[None]:
    """Close, when the block ends (finished, failed or interrupted), every judge ``build_judge`` made in
    it: an LLM judge's HTTP clients and threads, a cache's database connection. Each experiment's
    ``run`` is one such block."""
    made: list[Any] = []
    token = _OPEN.set(made)
    try:
        yield
    finally:
        _OPEN.reset(token)
        for judge in made:
            close_judge(judge)


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
        transient: list[Any] = []
        failures: list[Any] = e.failures  # ``JudgeFailure`` records (penguin_gym.judges.llm)
        for f in failures:
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
    spec = parse_judge_spec(args.judge)
    if spec.kind == "simulated":
        if tuple(requested) == ("all",):
            from penguin_gym.judges.simulated import SimulatedJudgeParams

            names = list(SimulatedJudgeParams.load(spec.params).responders)
            return names  # type: ignore[return-value]
        return list(requested)
    if _two_models(spec):
        return [args.responder] if tuple(requested) == ("all",) else list(requested)
    if tuple(requested) not in ((), ("all",)):
        raise ConfigError(f"--responders applies to simulated and llm judges, not to --judge {args.judge!r}")
    return [None]


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
