"""Check that every user's story holds together: the facts a query states that its profile contradicts.

Runs ``penguin_gym.data.coherence`` over a suite (the embedded synthetic one by default, or the
published data) and prints each contradiction, then a count per rule. Exit status 1 when any is found,
so a script or CI can gate on it.

Run:
    penguin-gym check-data                              # the current synthetic suite (14,000 scenarios)
    penguin-gym check-data --source synthetic-v0        # the v0 suite, for comparison
    penguin-gym check-data --domains Health --rules own-cancer own-condition
    penguin-gym check-data --source ordered_user_generated_queries.json --limit 0
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    from penguin_gym.data import DOMAINS, load_scenarios
    from penguin_gym.data.coherence import RULES, check, count_by_rule
    from penguin_gym.error import ConfigError

    parser = argparse.ArgumentParser(
        prog=prog or "penguin-gym check-data",
        description="List the facts a query states that its user's profile contradicts (penguin_gym.data.coherence).",
    )
    parser.add_argument(
        "--source",
        default="synthetic",
        help="'synthetic' (the current suite), 'synthetic-v0', a PENGUIN file or folder",
    )
    parser.add_argument("--domains", nargs="+", choices=DOMAINS, default=None, help="domains to check (default: all)")
    parser.add_argument("--domain", dest="domains", nargs=1, choices=DOMAINS, help=argparse.SUPPRESS)
    parser.add_argument("--rules", nargs="+", default=None, metavar="RULE", help="only these rules (default: all)")
    parser.add_argument("--limit", type=int, default=50, help="contradictions to print in full (default 50; 0: none)")
    args = parser.parse_args(None if argv is None else list(argv))
    rules = RULES
    if args.rules:
        names = {r.name for r in RULES}
        unknown = [r for r in args.rules if r not in names]
        if unknown:
            raise ConfigError(f"unknown rule(s) {unknown}; valid: {sorted(names)}")
        rules = tuple(r for r in RULES if r.name in args.rules)
    from penguin_gym.data.synthetic import suite_version

    version = suite_version(args.source)
    label = args.source if version is None else f"synthetic-v{version}"
    scenarios = load_scenarios(args.source, domains=args.domains)
    found = check(scenarios, rules)
    by_id = {s.id: s for s in scenarios}
    for c in found[: max(args.limit, 0)]:
        s = by_id[c.scenario_id]
        print(f"{c.scenario_id} [{s.scenario_type}] {c.rule}: {c.fact!r} but {c.attribute} = {c.value!r}")
        print(f"    query: {s.query}")
    if 0 < args.limit < len(found):
        print(f"... {len(found) - max(args.limit, 0)} more")
    counts = count_by_rule(found)
    per_rule = ", ".join(f"{k} {v}" for k, v in counts.items())
    users = len({c.scenario_id for c in found})
    print(
        f"{len(found)} contradictions in {users} of {len(scenarios):,} scenarios ({label}){': ' + per_rule if per_rule else ''}"
    )
    return 1 if found else 0
