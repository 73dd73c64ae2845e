"""Cached re-judging vs first judging, through ``CachedJudge`` (SQLite) over a local transformers model.

Run:
    python -m benchmarks.judge_cache              # 128 judgments
    python -m benchmarks.judge_cache --n 512
    python -m benchmarks.judge_cache --quick     # a smoke test: 4 judgments, the target not gated

The judge is ``LLMJudge`` over the tiny local Llamas of ``benchmarks.judge_batching`` (built from a
config, no download; the responder writes a realistic answer and the judge a well-formed rubric
judgment, so every judgment is real: answer generation, judgment generation, parse), batched 32 at a
time: the fastest way this machine can judge. Judgments go through ``CachedJudge`` into a fresh SQLite
file. Then the same judgments are asked for again (a) by a new ``CachedJudge`` on the same file, as a
new run or another process would, and (b) by the same instance; the backends must not be called again.
Prints the wall times and the ratios (target: first / cached >= 1000x for a new run; the exit status is 1
when it is missed, gated at the default ``--n`` and ``--batch-size`` or larger, or at any size with ``--min-ratio``: see
``benchmarks.targets``). Re-judging is timed as the
best of ``--repeats`` runs, since sub-millisecond timings on a shared machine are otherwise scheduling
noise. With a real model, first judging costs seconds per judgment, and the ratio grows by as much.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.judge_batching import ANSWER, JUDGE_REPLY, tiny_chat_model
from benchmarks.targets import Target, check, goal, parse
from penguin_gym.data import ATTRIBUTES, load_scenarios


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=128, help="judgments")
    ap.add_argument("--batch-size", type=int, default=32, help="generation batch size of the first judging")
    ap.add_argument("--repeats", type=int, default=5, help="re-judging runs; the best is reported")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: steadiest for a tiny model on a shared machine)"
    )
    ap.add_argument(
        "--min-ratio", type=float, default=None, help="target of first / cached, new run (default 1000; gated)"
    )
    args, full_size = parse(ap, argv, {"n": 4, "batch_size": 4, "repeats": 1}, sizes=("n", "batch_size"))

    import torch

    torch.set_num_threads(args.threads)

    from penguin_gym.judges.backends import Transformers
    from penguin_gym.judges.cache import CachedJudge
    from penguin_gym.judges.llm import LLMJudge

    responder_model, responder_tokenizer = tiny_chat_model(ANSWER)
    model, tokenizer = tiny_chat_model(JUDGE_REPLY)
    responder = Transformers(
        responder_model,
        tokenizer=responder_tokenizer,
        device="cpu",
        batch_size=args.batch_size,
        name="hf:tiny-responder",
    )
    backend = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=args.batch_size, name="hf:tiny-judge")
    judge = LLMJudge(responder, backend, temperature=0.7, max_tokens=256, judge_max_tokens=256)
    scenarios = load_scenarios(domains=["Health", "Financial", "Career", "Social"], n_per_domain=args.n // 4 + 1)
    rng = np.random.default_rng(0)
    items = [(scenarios[i], frozenset(a for a in ATTRIBUTES if rng.random() < 0.3)) for i in range(args.n)]
    scen, revealed = [s for s, _ in items], [r for _, r in items]
    judge.score(*items[0])  # warm-up, straight to the LLMJudge: nothing is cached yet

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "judgments.sqlite"
        first_judge = CachedJudge(judge, path, chunk_size=args.batch_size)
        backend.generate_calls = responder.generate_calls = 0
        t0 = time.perf_counter()
        first = first_judge.score_many(scen, revealed)
        t_first = time.perf_counter() - t0
        calls_first = backend.generate_calls + responder.generate_calls

        # Best of `repeats`: sub-millisecond timings on a shared machine are otherwise scheduling noise.
        t_new = t_warm = float("inf")
        for _ in range(args.repeats):
            new_run = CachedJudge(judge, path, chunk_size=args.batch_size)  # a new run: new connection, no memo
            t0 = time.perf_counter()
            again = new_run.score_many(scen, revealed)
            t_new = min(t_new, time.perf_counter() - t0)
            t0 = time.perf_counter()
            warm = new_run.score_many(scen, revealed)
            t_warm = min(t_warm, time.perf_counter() - t0)
            new_run.close()
        assert again == first and warm == first, "cached judgments differ from the first ones"
        assert backend.generate_calls + responder.generate_calls == calls_first, "the cache called a backend again"
        size = path.stat().st_size + sum(p.stat().st_size for p in Path(tmp).glob("judgments.sqlite-*"))

    print(
        f"judge: CachedJudge(LLMJudge over tiny local Llamas, batch {args.batch_size}); {args.n} judgments; "
        f"cache file {size / 1024:.0f} KiB"
    )
    print(
        f"first judging (generation + parse + SQLite commit): {t_first:9.4f} s  "
        f"({t_first / args.n * 1e3:8.3f} ms/judgment, {calls_first} generate calls)"
    )
    print(
        f"re-judging, new CachedJudge on the file (new run):  {t_new:9.4f} s  "
        f"({t_new / args.n * 1e6:8.1f} us/judgment, 0 generate calls)"
    )
    print(
        f"re-judging, same instance:                         {t_warm:9.4f} s  "
        f"({t_warm / args.n * 1e6:8.1f} us/judgment)"
    )
    ratio_new, ratio_warm = t_first / t_new, t_first / t_warm
    print(
        f"speed-up cached / first: new run {ratio_new:,.0f}x, same instance {ratio_warm:,.0f}x "
        f"(re-judging: best of {args.repeats})"
    )
    bound, gated = goal(args.min_ratio, 1000.0, full_size=full_size)
    return check([Target("first / cached judging, new run", ratio_new, bound, unit="x", fmt=",.0f", gated=gated)])


if __name__ == "__main__":
    raise SystemExit(main())
