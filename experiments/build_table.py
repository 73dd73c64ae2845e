"""``penguin-gym build-table``: score every revealed subset of a set of scenarios with a judge, and save
the ``ScoreTable`` (``penguin_gym.judges.table``) as one ``.npz`` file.

The command shows a progress bar and is resumable: ``ScoreTable.build`` rewrites the file atomically as
it goes and a restarted build skips every entry already in it. With an LLM judge each judgment is also
kept in a SQLite cache as soon as it is made (``--cache``; default next to ``--out``), so a killed build
loses no judgment at all.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from penguin_gym.data.schema import ATTRIBUTES, DOMAINS
from penguin_gym.error import ConfigError, PenguinError
from penguin_gym.judges.base import Judge
from penguin_gym.judges.factory import make_judge
from penguin_gym.judges.spec import parse_backend_options, parse_judge_spec
from penguin_gym.judges.table import ScoreTable


def make_build_judge(args: argparse.Namespace) -> Judge:
    """The judge a ``build-table`` command line names (LLM specs: ``llm:<backend>``, ``openai:...``, ``hf:...``)."""
    spec = parse_judge_spec(args.judge)
    backend_kwargs: dict[str, Any] = parse_backend_options(args.backend_option)
    if args.api_key_env:
        backend_kwargs["api_key_env"] = args.api_key_env
    if spec.kind != "llm" or spec.backend is None:
        if args.judge_model or backend_kwargs:
            raise ConfigError(
                "--judge-model / --backend-option / --api-key-env apply to LLM judges only (--judge llm:<backend spec>)"
            )
        return make_judge(spec)
    from penguin_gym.judges.backends import make_backend
    from penguin_gym.judges.llm import LLMJudge

    def backend_for(s: str) -> Any:
        kw = dict(backend_kwargs)
        if not s.startswith("openai:"):
            kw.pop("api_key_env", None)
        return make_backend(s, **kw)

    llm_spec = spec.backend
    responder = backend_for(llm_spec)
    judge_backend = backend_for(args.judge_model) if args.judge_model and args.judge_model != llm_spec else None
    return LLMJudge(
        responder,
        judge_backend,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        judge_temperature=args.judge_temperature,
        judge_max_tokens=args.judge_max_tokens,
        retries=args.retries,
        seed=args.judge_seed,
        structured=None if args.structured == "off" else args.structured,
        strict_total=args.strict_total,
    )


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """``penguin-gym build-table``: build (or resume building) a score table.

    Examples:
        penguin-gym build-table --judge simulated --domains Health --max-size 3 --out health.npz
        penguin-gym build-table --judge "llm:openai:Qwen/Qwen2.5-7B-Instruct@http://localhost:8000/v1" \\
            --judge-model "openai:gpt-4o@https://api.openai.com/v1" --n-per-domain 50 --max-size 2 \\
            --out qwen.npz --cache judgments.sqlite
    """
    ap = argparse.ArgumentParser(
        prog=prog or "penguin-gym build-table",
        description="Score every revealed subset of a set of scenarios with a judge and save the table (.npz). "
        "Resumable: run the same command again to continue.",
    )
    ap.add_argument(
        "--judge",
        default="simulated",
        help="judge spec: 'simulated', 'simulated:<responder>', 'simulated@<params.json>', or an LLM "
        "judge 'llm:<backend spec>' with a backend spec 'openai:<model>@<base_url>' or "
        "'hf:<model id or path>' (the responder; default 'simulated')",
    )
    ap.add_argument(
        "--judge-model",
        default=None,
        help="backend spec of the judge LLM when it differs from the responder (LLM judges)",
    )
    ap.add_argument("--api-key-env", default=None, help="environment variable holding the API key (openai backends)")
    ap.add_argument(
        "--backend-option",
        action="append",
        metavar="KEY=VALUE",
        help="backend constructor option, repeatable (concurrency=16, timeout=60, device=cuda, "
        "dtype=bfloat16, batch_size=32)",
    )
    ap.add_argument("--temperature", type=float, default=0.7, help="sampling temperature of LLM judges (0.7)")
    ap.add_argument("--max-tokens", type=int, default=512, help="responder reply length limit (512)")
    ap.add_argument(
        "--retries",
        type=int,
        default=2,
        help="re-asks after an empty answer or an unreadable judgment, each with another seed (2)",
    )
    ap.add_argument("--judge-temperature", type=float, default=None, help="the judge's temperature (--temperature)")
    ap.add_argument("--judge-max-tokens", type=int, default=768, help="the judge's reply length limit (768)")
    ap.add_argument("--judge-seed", type=int, default=None, help="sampling seed of first requests (the server's)")
    ap.add_argument(
        "--structured",
        default="off",
        choices=("off", "json_schema", "json_object", "grammar"),
        help="constrained judge output (see the README for which servers take which)",
    )
    ap.add_argument("--strict-total", action="store_true", help="a wrong comprehensive total makes a reply unreadable")
    ap.add_argument(
        "--max-unscored",
        type=float,
        default=0.05,
        help="fail when more than this fraction of the judgments stays unscored (0.05); the rest is saved either way",
    )
    ap.add_argument(
        "--retry-failed", action="store_true", help="ask again for judgments whose failure the cache recorded"
    )
    ap.add_argument(
        "--source", default="synthetic", help="scenario source: 'synthetic', a .json/.jsonl file or a HF id"
    )
    ap.add_argument(
        "--domains",
        nargs="+",
        default=None,
        choices=list(DOMAINS),
        metavar="DOMAIN",
        help=f"domains (default all): {' '.join(DOMAINS)}",
    )
    ap.add_argument("--split", choices=["train", "test"], default=None, help="scenario split (default both)")
    ap.add_argument("--n-per-domain", type=int, default=None, help="scenarios per domain (default: all)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic generator")
    ap.add_argument("--max-size", type=int, default=None, help="largest subset size (default: all 1,024 subsets)")
    ap.add_argument("--out", required=True, help="the table file (.npz); an existing one is resumed")
    ap.add_argument(
        "--cache",
        default=None,
        help="SQLite judgment cache (default for LLM judges: <out>.judgments.sqlite; 'none' disables)",
    )
    ap.add_argument("--chunk-size", type=int, default=None, help="judgments per batch (default 64 for LLM judges)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(None if argv is None else list(argv))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from penguin_gym.data import load_scenarios
    from penguin_gym.judges.base import close_judge
    from penguin_gym.judges.cache import CachedJudge

    judge: Any = None
    try:
        scenarios = load_scenarios(
            args.source, domains=args.domains, split=args.split, n_per_domain=args.n_per_domain, seed=args.seed
        )
        if not scenarios:
            raise ConfigError("no scenarios match the --source/--domains/--split options")
        judge = make_build_judge(args)
        is_llm = not callable(getattr(judge, "bind", None))
        cache = args.cache
        if cache is None and is_llm:
            cache = str(Path(args.out).with_suffix("")) + ".judgments.sqlite"
        if cache and cache.lower() != "none":
            judge = CachedJudge(judge, cache, chunk_size=args.chunk_size or 64, retry_failed=args.retry_failed)
            print(f"judgments cached in {cache}", file=sys.stderr)
        t0 = time.perf_counter()
        table = ScoreTable.build(
            judge,
            scenarios,
            max_size=args.max_size,
            path=args.out,
            progress=not args.no_progress,
            chunk_size=args.chunk_size,
            max_unscored=args.max_unscored,
        )
    except ConfigError as e:  # a usage error: the command line names something unusable
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 2
    except PenguinError as e:  # the run failed (a judge, a backend, a data file)
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 1
    finally:  # an LLM judge's HTTP clients, the cache's connection
        close_judge(judge)
    dt = time.perf_counter() - t0
    if table.unscored:
        from penguin_gym.judges.llm import describe_causes

        print(
            f"unscored: {sum(table.unscored.values())} judgments ({describe_causes(table.unscored)}) are left NaN; "
            "--retry-failed asks for them again",
            file=sys.stderr,
        )
    safety = np.nanmean(table.values, axis=2)
    print(
        f"{args.out}: {len(table.ids)} scenarios x {table.masks.size} subsets by {table.judge_name} "
        f"in {dt:.1f}s; mean safety context-free {np.nanmean(safety[:, 0]):.2f}"
        + (f", full profile {np.nanmean(safety[:, -1]):.2f}" if table.masks[-1] == (1 << len(ATTRIBUTES)) - 1 else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
