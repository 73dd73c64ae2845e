"""Time to generate the 14,000 synthetic scenarios, against reading the same scenarios from JSONL.

Run:
    python -m benchmarks.generator_speed
    python -m benchmarks.generator_speed --quick    # a smoke test: 50 per domain, the target not gated

The reference is loading a JSONL file of the identical scenarios (``save_scenarios`` then
``penguin.load``) in the same process: a ratio below 1 means generating the suite from its seed is
faster than reading it from disk. The core issue's target is under 3 s for all 14,000; the exit status
is 1 when it is missed, gated at the full suite, or at any size with ``--max-seconds``
(``benchmarks.targets``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.targets import Target, check, goal, parse
from penguin_gym.data import DOMAINS, penguin, synthetic


def _fresh_generate(n_per_domain: int) -> float:
    synthetic.type_rules.cache_clear()
    synthetic._suffixed.cache_clear()
    synthetic._value_texts.cache_clear()
    t0 = time.perf_counter()
    out = synthetic.generate(n_per_domain=n_per_domain)
    dt = time.perf_counter() - t0
    assert len(out) == len(DOMAINS) * n_per_domain
    return dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-per-domain", type=int, default=synthetic.SCENARIOS_PER_DOMAIN, help="scenarios per domain")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each; the medians are reported")
    ap.add_argument("--max-seconds", type=float, default=None, help="target generation time (default 3; gated)")
    args, full_size = parse(ap, argv, {"n_per_domain": 50, "repeats": 1}, sizes=("n_per_domain",))
    n = len(DOMAINS) * args.n_per_domain
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suite.jsonl"
        penguin.save_scenarios(synthetic.generate(n_per_domain=args.n_per_domain), path)
        gen, load = [], []
        for _ in range(max(1, args.repeats)):
            gen.append(_fresh_generate(args.n_per_domain))
            t0 = time.perf_counter()
            loaded = penguin.load(path)
            load.append(time.perf_counter() - t0)
            assert len(loaded) == n
    g, r = statistics.median(gen), statistics.median(load)
    print(f"generate {n:,} scenarios: {g:.2f} s (runs: {', '.join(f'{x:.2f}' for x in gen)})")
    print(f"load the same from JSONL:  {r:.2f} s")
    print(f"ratio generate / load: {g / r:.2f}x")
    max_s, gated = goal(args.max_seconds, 3.0, full_size=full_size)
    return check(
        [Target(f"seconds to generate {n:,} scenarios", g, max_s, unit=" s", fmt=".2f", at_most=True, gated=gated)]
    )


if __name__ == "__main__":
    sys.exit(main())
