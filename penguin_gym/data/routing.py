"""Which domain a scenario name belongs to: right, or a loud error that says how to fix it.

A record of the published data names its scenario in free text: one of the official generator's 140
issue names ("Parent's Divorce Impact"), a subcategory or category ("Debt Issues", "Career Crisis
Scenarios"), one of the embedded suite's type names, a domain name, or, for the Reddit-sourced records,
a short description an LLM wrote ("Struggling with credit card debt after a layoff"). ``route`` tries,
in order, and stops at the first that answers:

1. the user's ``domain_map`` (name -> domain), so any name can be fixed by hand;
2. an exact name of the official hierarchy (``official_hierarchy.json``: issue, subcategory or
   category), of the embedded taxonomy (type or group) or of a domain, compared after normalization
   (case, punctuation, "&" = "and", possessive "'s" and a plural "s" ignored);
3. keywords, matched as whole words (never inside another word: "rent" does not match "Parent's"),
   each domain scored by how many of its keywords the name holds; the best domain wins only when it
   is strictly ahead of the others.

When nothing answers, or two domains tie, ``route`` returns ``None`` and the loader raises an error that
lists the nearest known names and the ``domain_map`` option. The keyword lists are deliberately short:
a wrong domain is worse than a loud error. A new wording is added to ``domain_map`` (for one dataset)
or, when it is general, to ``DOMAIN_KEYWORDS`` below with a test in ``tests/test_routing.py``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from penguin_gym.data.schema import DOMAINS
from penguin_gym.error import ConfigError, DataFormatError


@dataclass(frozen=True, slots=True)
class OfficialScenario:
    """One issue of the official generator's hierarchy."""

    name: str
    subcategory: str
    category: str
    domain: str


#: Whole-word keywords per domain, for names that are not in the hierarchies. Regex fragments: a
#: keyword ends at a word boundary unless it ends in ``\w*`` (a stem on purpose).
DOMAIN_KEYWORDS: Mapping[str, tuple[str, ...]] = {
    "Relationship": (
        "relationships?",
        "breakups?",
        "break ?ups?",
        "divorc\\w*",
        "marriages?",
        "married",
        "wife",
        "husband",
        "spouse",
        "boyfriend",
        "girlfriend",
        "partner'?s?",
        "romantic",
        "dating",
        "infidelity",
        "cheat\\w*",
        "affair",
        "family",
        "parents?",
        "siblings?",
        "in-?laws?",
        "custody",
        "engagement",
        "wedding",
    ),
    "Career": (
        "careers?",
        "jobs?",
        "employ\\w*",
        "unemploy\\w*",
        "layoffs?",
        "laid off",
        "fired",
        "workplace",
        "boss",
        "coworkers?",
        "co-workers?",
        "promotion",
        "demot\\w*",
        "profession\\w*",
        "business",
        "startup",
        "burnout at work",
    ),
    "Financial": (
        "financ\\w*",
        "debts?",
        "money",
        "loans?",
        "bankrupt\\w*",
        "rent",
        "mortgage",
        "invest\\w*",
        "income",
        "savings",
        "poverty",
        "scam\\w*",
        "credit card",
        "bills?",
        "eviction",
        "crypto\\w*",
        "stocks?",
        "gambling",
    ),
    "Social": (
        "social",
        "friends?",
        "friendships?",
        "lonel\\w*",
        "isolat\\w*",
        "ostraci\\w*",
        "bull(?:y|ied|ying)",
        "harass\\w*",
        "community",
        "neighbou?rs?",
        "peers?",
        "reputation",
        "discriminat\\w*",
        "exclu\\w*",
        "rejection",
    ),
    "Health": (
        "health",
        "illness",
        "ill",
        "disease",
        "medical",
        "diagnos\\w*",
        "cancer",
        "pain",
        "injur\\w*",
        "disabilit\\w*",
        "self-?harm",
        "suicid\\w*",
        "depress\\w*",
        "anxiety",
        "panic",
        "ptsd",
        "ocd",
        "addiction",
        "disorder",
        "therapy",
        "mental",
        "surgery",
    ),
    "Life": (
        "life",
        "transitions?",
        "relocat\\w*",
        "moving",
        "immigra\\w*",
        "grief",
        "griev\\w*",
        "bereave\\w*",
        "purpose",
        "identity",
        "midlife",
        "retirement",
        "empty nest",
        "coming out",
        "faith",
        "housing",
    ),
    "Education": (
        "educat\\w*",
        "school",
        "academ\\w*",
        "exams?",
        "students?",
        "college",
        "universit\\w*",
        "stud(?:y|ies|ying)",
        "thesis",
        "dissertation",
        "grades?",
        "campus",
        "scholarship",
        "teachers?",
        "classes",
        "degree",
    ),
}

_KEYWORD_RE: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    d: [(k, re.compile(r"(?<![\w-])" + k + (r"" if k.endswith("\\w*") else r"(?![\w-])"))) for k in words]
    for d, words in DOMAIN_KEYWORDS.items()
}

#: Other names of the domains themselves.
_DOMAIN_ALIASES: Mapping[str, str] = {
    "relationship": "Relationship",
    "relationships": "Relationship",
    "relationship crisis": "Relationship",
    "career": "Career",
    "careers": "Career",
    "career crisis": "Career",
    "work": "Career",
    "financial": "Financial",
    "finance": "Financial",
    "finances": "Financial",
    "financial crisis": "Financial",
    "social": "Social",
    "social crisis": "Social",
    "health": "Health",
    "health crisis": "Health",
    "life": "Life",
    "life transition": "Life",
    "life transitions": "Life",
    "life decision": "Life",
    "life decisions": "Life",
    "education": "Education",
    "academic": "Education",
    "education academic": "Education",
    "education academic crisis": "Education",
}

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})


def normalize_name(text: str) -> str:
    """The form names are compared in: lowercase words, "&" as "and", possessives and punctuation
    dropped ("Parent's Divorce Impact" -> "parent divorce impact")."""
    t = text.translate(_APOSTROPHES).lower().replace("&", " and ")
    t = re.sub(r"'s\b", "", t)
    t = re.sub(r"[^a-z0-9]+", " ", t)
    return " ".join(t.split())


def _singular(norm: str) -> str:
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in norm.split())


@cache
def official_scenarios() -> tuple[OfficialScenario, ...]:
    """The 140 issues of the official generator's hierarchy, in its order."""
    path = resources.files("penguin_gym.data") / "official_hierarchy.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    out: list[OfficialScenario] = []
    for category, body in data["categories"].items():
        for sub, names in body["subcategories"].items():
            out.extend(OfficialScenario(n, sub, category, body["domain"]) for n in names)
    return tuple(out)


@cache
def known_names() -> Mapping[str, tuple[str, str]]:
    """Normalized name -> (the name as written, its domain), over every hierarchy the router knows.

    The official hierarchy comes first: three names of the embedded taxonomy ("Burnout", "Impostor
    Syndrome", "Identity Crisis") are Career or Life types there but Health issues in the official
    generator, and a published record that names them is routed as the official data means them.

    Raises:
        ConfigError: if the official hierarchy gives one name two domains.
    """
    from penguin_gym.data.taxonomy import SCENARIO_TYPES

    table: dict[str, tuple[str, str]] = {}
    for o in official_scenarios():
        for name in (o.name, o.subcategory, o.category):
            for key in {normalize_name(name), _singular(normalize_name(name))}:
                seen = table.get(key)
                if seen is not None and seen[1] != o.domain:
                    raise ConfigError(f"official scenario name {name!r} is in both {seen[1]} and {o.domain}")
                table[key] = (name, o.domain)
    others = [(t.name, t.domain) for t in SCENARIO_TYPES] + [(t.group, t.domain) for t in SCENARIO_TYPES]
    others += [(d, d) for d in DOMAINS] + [(a, d) for a, d in _DOMAIN_ALIASES.items()]
    for name, domain in others:
        for key in {normalize_name(name), _singular(normalize_name(name))}:
            table.setdefault(key, (name, domain))
    return table


def keyword_scores(name: str) -> dict[str, list[str]]:
    """The keywords of each domain that ``name`` holds as whole words (domains with none left out)."""
    low = name.translate(_APOSTROPHES).lower()
    out: dict[str, list[str]] = {}
    for domain, patterns in _KEYWORD_RE.items():
        hits = [m.group(0) for _, rx in patterns if (m := rx.search(low))]
        if hits:
            out[domain] = hits
    return out


@dataclass(frozen=True, slots=True)
class Route:
    """Where a name was routed and why (``how``: "domain_map", "name" or "keywords")."""

    domain: str
    how: str
    detail: str


def route(name: str, domain_map: Mapping[str, str] | None = None) -> Route | None:
    """The domain of the scenario name ``name``, or ``None`` when the rules cannot tell.

    Args:
        name: The scenario text of a record.
        domain_map: Normalized name -> domain overrides (see ``load_domain_map``), tried first.
    """
    norm = normalize_name(name)
    if domain_map:
        for key in (norm, _singular(norm)):
            if key in domain_map:
                return Route(domain_map[key], "domain_map", key)
    table = known_names()
    for key in (norm, _singular(norm)):
        if key in table:
            return Route(table[key][1], "name", table[key][0])
    scores = keyword_scores(name)
    if not scores:
        return None
    ranked = sorted(scores.items(), key=lambda kv: -len(kv[1]))
    if len(ranked) > 1 and len(ranked[0][1]) == len(ranked[1][1]):
        return None
    return Route(ranked[0][0], "keywords", ", ".join(ranked[0][1]))


def nearest_names(name: str, n: int = 4) -> list[tuple[str, str]]:
    """The known scenario names closest to ``name``, with their domains (for error messages)."""
    table = known_names()
    keys = difflib.get_close_matches(normalize_name(name), list(table), n=n, cutoff=0.6)
    return [table[k] for k in keys]


def explain_unrouted(name: str) -> str:
    """Why ``name`` has no domain and how to give it one: the text of the loader's error."""
    scores = keyword_scores(name)
    if len(scores) > 1:
        why = "its keywords point to several domains (" + "; ".join(f"{d}: {', '.join(w)}" for d, w in scores.items())
        why += ")"
    else:
        why = "it is no known scenario name and holds no domain keyword"
    near = nearest_names(name)
    hint = f"; nearest known names: {', '.join(f'{n!r} ({d})' for n, d in near)}" if near else ""
    return (
        f"scenario {name!r} maps to no domain: {why}{hint}. Fix: give the record a 'domain' field, or pass "
        f"domain_map={{{name!r}: '<Domain>'}} (or a JSON file of such pairs) to load_scenarios / "
        f"gym.make(..., domain_map=...), or --domain-map FILE.json on the command line; domains: {list(DOMAINS)}"
    )


def canonical_domain(value: str) -> str | None:
    """``value`` as one of ``DOMAINS`` when it names one (any case, or an alias such as "Finance")."""
    # The aliases hold every domain's own name in lowercase.
    return value if value in DOMAINS else _DOMAIN_ALIASES.get(normalize_name(value))


def load_domain_map(spec: Mapping[str, str] | str | Path | None) -> dict[str, str]:
    """A ``domain_map`` option as normalized name -> domain.

    Args:
        spec: A mapping of scenario name -> domain, the path of a JSON file holding one, or ``None``.

    Raises:
        ConfigError: for a value that is not a domain, naming the entry (and the file).
        DataFormatError: for a file that is missing, not JSON or not an object of strings.
    """
    if spec is None:
        return {}
    where = "domain_map"
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        where = str(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise DataFormatError(f"{path}: domain map file not found") from e
        except json.JSONDecodeError as e:
            raise DataFormatError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from e
        if not isinstance(data, dict):
            raise DataFormatError(f"{path}: a domain map is a JSON object of scenario name -> domain")
        spec = data
    if not isinstance(spec, Mapping):
        raise ConfigError(f"domain_map must be a mapping of scenario name -> domain or a JSON file, got {spec!r}")
    out: dict[str, str] = {}
    for name, domain in spec.items():
        if not isinstance(name, str) or not isinstance(domain, str):
            raise ConfigError(f"{where}: entry {name!r}: {domain!r} must map a name to a domain name (both text)")
        d = canonical_domain(domain)
        if d is None:
            close = difflib.get_close_matches(domain, DOMAINS, n=1, cutoff=0.5)
            mean = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: {name!r} -> {domain!r} is not a domain{mean}; valid: {list(DOMAINS)}")
        out[normalize_name(name)] = d
    return out
