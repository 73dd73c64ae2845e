"""Time to generate the 14,000 synthetic scenarios, against reading the same scenarios from JSONL.

Run:
    python -m benchmarks.generator_speed

The reference is loading a JSONL file of the identical 14,000 scenarios (``save_scenarios`` then
``penguin.load``) in the same process: a ratio below 1 means generating the suite from its seed is
faster than reading it from disk. The core issue's target is under 3 s for all 14,000.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from penguin_gym.data import penguin, synthetic


def _fresh_generate() -> float:
    synthetic.type_rules.cache_clear()
    synthetic._suffixed.cache_clear()
    synthetic._value_texts.cache_clear()
    t0 = time.perf_counter()
    out = synthetic.generate()
    dt = time.perf_counter() - t0
    assert len(out) == 14_000
    return dt


def main(argv: list[str] | None = None) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suite.jsonl"
        penguin.save_scenarios(synthetic.generate(), path)
        gen, load = [], []
        for _ in range(3):
            gen.append(_fresh_generate())
            t0 = time.perf_counter()
            loaded = penguin.load(path)
            load.append(time.perf_counter() - t0)
            assert len(loaded) == 14_000
    g, r = statistics.median(gen), statistics.median(load)
    print(f"generate 14,000 scenarios: {g:.2f} s (runs: {', '.join(f'{x:.2f}' for x in gen)}; target < 3 s)")
    print(f"load the same from JSONL:  {r:.2f} s")
    print(f"ratio generate / load: {g / r:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
