"""The PENGUIN loader: the published data, in every format it comes in, as ``Scenario``s.

Formats, detected by content (never by the file's extension):

* **Hugging Face records** (``wick1d/Personalized_Safety_Data``, MIT): flat objects with ``query``,
  ``scenario`` and the profile fields ``age``, ``gender``, ``marital_status``, ``profession``,
  ``economic_status``, ``health_status``, ``education_level``, ``mental_health_status``,
  ``past_self_harm_history`` (absent in the real, Reddit-sourced half) and ``emotional_state``, plus
  bookkeeping columns (``source`` real/synthetic, ``id``, ``background``, ``title``, ``subreddit``, ...).
  Keys match case- and separator-insensitively ("Mental Health Status" = ``mental_health_status``).
* **The official generator's output** (``generate_user_query.py``): a JSON array of
  ``{"Scenario", "User_Profile": {"Scenario", "Age", ...}, "Queries": [...]}``; each query is one
  scenario of that user, named by the profile's own ``Scenario`` (the sub-scenario) when it has one.
* Files of ``Scenario.to_dict`` records (``save_scenarios``).
* JSON (an array, or an object holding one under ``data``/``records``/``scenarios``) or JSON Lines,
  whatever the file is called; a folder of such files; a ``datasets.Dataset``/``DatasetDict`` object;
  a ``save_to_disk`` folder; a Hugging Face dataset id (from the local cache when the Hub is out of
  reach, or a one-line error with the fix at once). The readers of these sources are
  ``penguin_gym.data.penguin_sources`` (``read_source``).

Each record becomes a ``Scenario`` (``parse_record``):

* **Domain**: the record's ``domain`` field, else its scenario name routed by
  ``penguin_gym.data.routing`` (the user's ``domain_map``, the official and embedded hierarchies, the
  folder the file lies in when it is named after a domain, then whole-word keywords); a name that
  cannot be routed is an error naming the nearest known names and the ``domain_map`` option.
* **Missing values**: an absent field, ``null`` or a placeholder (``lexicon.PLACEHOLDERS``: "Unknown",
  "N/A", "Not specified", "Prefer not to say", "") is missing: it holds ``MISSING`` ("Unknown"), does
  not count toward the paper's inclusion rule (at least ``min_attributes`` = 7 of the 10 present), and
  asking about it in an env reveals nothing (see ``PenguinEnv``).
* **Severity** of each value from its text, by the chosen estimator (``severity.make_estimator``:
  the documented lexicon by default).
* **Users, not records, are split**: the train/test split is a stable hash of the user's profile
  (``user_id``), so every query of one user lands in the same split.
* **Strict records**: an unknown key is an error with "did you mean" (``strict=False`` ignores extra
  columns), a field spelt two ways is an error, values are text (numbers for Age), NaN and lists are
  errors. Every error is a ``DataFormatError`` naming the file, the record and the field.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from penguin_gym.data import routing
from penguin_gym.data.lexicon import is_placeholder, query_risk_cue
from penguin_gym.data.penguin_sources import read_source
from penguin_gym.data.schema import ATTRIBUTES, MISSING, Scenario
from penguin_gym.data.severity import SeverityEstimator, make_estimator
from penguin_gym.data.synthetic import split_of
from penguin_gym.error import ConfigError, DataFormatError, InvalidScenarioError

logger = logging.getLogger(__name__)

#: The published field name of each attribute.
FIELDS: dict[str, str] = {
    "Age": "age",
    "Gender": "gender",
    "Marital Status": "marital_status",
    "Profession": "profession",
    "Economic Status": "economic_status",
    "Health Status": "health_status",
    "Education Level": "education_level",
    "Mental Health Status": "mental_health_status",
    "Past Self-Harm History": "past_self_harm_history",
    "Emotional State": "emotional_state",
}
_ATTR_OF_FIELD = {f: a for a, f in FIELDS.items()}

#: Columns the published records carry besides the query, the scenario and the profile: read or ignored
#: on purpose, so they are not "unknown keys".
BOOKKEEPING_FIELDS: frozenset[str] = frozenset(
    {
        "id",
        "source",
        "background",
        "title",
        "original",
        "url",
        "subreddit",
        "created_utc",
        "score",
        "num_comments",
        "user_id",
        "split",
        "category",
        "subcategory",
    }  # fmt: skip
)
_RECORD_FIELDS = frozenset({"query", "scenario", "domain"}) | BOOKKEEPING_FIELDS | frozenset(FIELDS.values())
_NORM = re.compile(r"[^a-z0-9]+")


def _norm_key(key: str) -> str:
    return _NORM.sub("_", key.lower()).strip("_")


def domain_of(scenario: str, domain_map: Mapping[str, str] | None = None) -> str | None:
    """The domain a scenario name belongs to, or ``None`` when the routing rules cannot tell."""
    r = routing.route(scenario, domain_map)
    return None if r is None else r.domain


def user_id_of(profile: Mapping[str, str]) -> str:
    """A stable id of the user a profile describes: every record with the same ten values is one user."""
    text = "\x1f".join(" ".join(profile[a].lower().split()) for a in ATTRIBUTES)
    return "user-" + hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LoadOptions:
    """How records are read (see ``load``)."""

    min_attributes: int = 7
    domain: str | None = None
    domain_map: Mapping[str, str] = field(default_factory=dict)
    strict: bool = True
    severity: SeverityEstimator | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.min_attributes <= len(ATTRIBUTES):
            raise ConfigError(f"min_attributes = {self.min_attributes} must be in [0, 10]")
        if self.domain is not None:
            d = routing.canonical_domain(self.domain)
            if d is None:
                raise ConfigError(f"domain {self.domain!r} is not one of the seven domains")
            object.__setattr__(self, "domain", d)


@dataclass(frozen=True, slots=True)
class _Pending:
    """A record read and checked, waiting for its severities (estimated in one batch per attribute)."""

    where: str
    sid: str | None
    domain: str
    scenario_type: str
    query: str
    profile: dict[str, str]


# -- one record -------------------------------------------------------------------------------------
def _text_value(value: Any, *, where: str, key: str, attr: str) -> str:
    """A profile value as text, or ``MISSING``; errors name the field."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        raise DataFormatError(f"{where}: field {key!r} = {value!r} must be text, not a boolean")
    if isinstance(value, float) and not math.isfinite(value):
        raise DataFormatError(
            f"{where}: field {key!r} is {value!r} (a NaN from a table?); write null or leave the field out "
            "for a missing value"
        )
    if isinstance(value, (int, float)):
        if attr != "Age":
            raise DataFormatError(f"{where}: field {key!r} = {value!r} must be text (only Age may be a number)")
        return str(int(value)) if float(value).is_integer() else str(value)
    if not isinstance(value, str):
        raise DataFormatError(f"{where}: field {key!r} must be text, got {type(value).__name__} {value!r}")
    text = " ".join(value.split())
    return MISSING if is_placeholder(text, attr) else text


_PROFILE_FIELDS = frozenset(FIELDS.values()) | {"scenario"}
_GENERATOR_FIELDS = frozenset({"scenario", "user_profile", "queries", "domain"})


def _fields(
    record: Mapping[str, Any], *, where: str, strict: bool, known: frozenset[str] = _RECORD_FIELDS
) -> dict[str, Any]:
    """The record's keys normalized, each spelt once, each in ``known`` (unless ``strict`` is off)."""
    out: dict[str, Any] = {}
    spelt: dict[str, str] = {}
    for raw, value in record.items():
        if not isinstance(raw, str):
            raise DataFormatError(f"{where}: key {raw!r} must be text")
        key = _norm_key(raw)
        if key in spelt:
            raise DataFormatError(
                f"{where}: field {key!r} is spelt two ways ({spelt[key]!r} and {raw!r}); keep one of them"
            )
        if key not in known:
            if strict:
                close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
                mean = f" (did you mean {close[0]!r}?)" if close else ""
                raise DataFormatError(
                    f"{where}: unknown field {raw!r}{mean}; known fields: {sorted(known)}. Pass strict=False "
                    "(--no-strict-records on the command line) to ignore extra columns"
                )
            continue
        spelt[key] = raw
        out[key] = value
    return out


def _domain(value: Any, name: str | None, options: LoadOptions, *, where: str, hint: str | None) -> str:
    """A record's domain: its ``domain`` field, the loader's ``domain=``, else its scenario name routed."""
    return _domain_field(value, where=where) or options.domain or _route(name, options, where=where, hint=hint)


def _route(name: str | None, options: LoadOptions, *, where: str, hint: str | None) -> str:
    if not name:
        if hint:
            return hint
        raise DataFormatError(f"{where}: neither 'scenario' nor 'domain' is given (or pass domain= to the loader)")
    r = routing.route(name, options.domain_map)
    if r is not None and r.how != "keywords":
        return r.domain
    if hint:  # the folder a file lies in names its domain: better evidence than keywords
        return hint
    if r is not None:
        return r.domain
    raise DataFormatError(f"{where}: field 'scenario': {routing.explain_unrouted(name)}")


def _profile(fields: Mapping[str, Any], *, where: str, options: LoadOptions) -> dict[str, str]:
    profile = {
        attr: _text_value(fields.get(key), where=where, key=key, attr=attr) if key in fields else MISSING
        for attr, key in FIELDS.items()
    }
    present = sum(v != MISSING for v in profile.values())
    if present < options.min_attributes:
        missing = [FIELDS[a] for a in ATTRIBUTES if profile[a] == MISSING]
        raise DataFormatError(
            f"{where}: only {present} of 10 attributes present (need {options.min_attributes}, the paper's rule; "
            f"placeholders such as 'Unknown' or 'N/A' count as missing); missing fields {missing}"
        )
    return profile


def _pending_records(
    record: Any, *, where: str, options: LoadOptions, hint: str | None
) -> Iterator[Scenario | _Pending]:
    """The scenarios of one record (the generator's records hold several queries)."""
    if not isinstance(record, Mapping):
        raise DataFormatError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "profile" in record and "severity" in record:  # a Scenario.to_dict record
        try:
            yield Scenario.from_dict(record)
        except (InvalidScenarioError, TypeError, ValueError, AttributeError) as e:
            raise DataFormatError(f"{where}: {e}") from e
        return
    if {"user_profile", "queries"} & {_norm_key(str(k)) for k in record}:
        yield from _generator_record(record, where=where, options=options, hint=hint)
        return
    fields = _fields(record, where=where, strict=options.strict)
    query = fields.get("query")
    if query is None and any(f in fields for f in FIELDS.values()):
        raise DataFormatError(
            f"{where}: field 'query' is missing: this looks like a profile without queries (the output of the "
            "official generate_user_data.py); run generate_user_query.py on it, or add a 'query' field"
        )
    if not isinstance(query, str) or not query.strip():
        raise DataFormatError(f"{where}: field 'query' is missing, empty or not text")
    scenario = fields.get("scenario")
    if scenario is not None and not isinstance(scenario, str):
        raise DataFormatError(f"{where}: field 'scenario' must be text, got {scenario!r}")
    domain = _domain(fields.get("domain"), scenario, options, where=where, hint=hint)
    profile = _profile(fields, where=where, options=options)
    sid = fields.get("id")
    if sid is not None and not isinstance(sid, (str, int)):
        raise DataFormatError(f"{where}: field 'id' must be text or an integer, got {sid!r}")
    yield _Pending(
        where, None if sid is None else str(sid), domain, scenario or domain, " ".join(query.split()), profile
    )


def _domain_field(value: Any, *, where: str) -> str | None:
    if value is None:
        return None
    d = routing.canonical_domain(value) if isinstance(value, str) else None
    if d is None:
        raise DataFormatError(
            f"{where}: field 'domain' = {value!r} is not one of the seven domains "
            "(Relationship, Career, Financial, Social, Health, Life, Education)"
        )
    return d


def _generator_record(
    record: Mapping[str, Any], *, where: str, options: LoadOptions, hint: str | None
) -> Iterator[_Pending]:
    top = _fields(record, where=where, strict=options.strict, known=_GENERATOR_FIELDS)
    raw_profile, queries = top.get("user_profile"), top.get("queries")
    if not isinstance(raw_profile, Mapping):
        raise DataFormatError(f"{where}: field 'User_Profile' must be an object of the ten attributes")
    if not isinstance(queries, list) or not queries:
        raise DataFormatError(f"{where}: field 'Queries' must be a non-empty list of query texts")
    pwhere = f"{where}, User_Profile"
    fields = _fields(raw_profile, where=pwhere, strict=options.strict, known=_PROFILE_FIELDS)
    names = [fields.get("scenario"), top.get("scenario")]
    for n in names:
        if n is not None and not isinstance(n, str):
            raise DataFormatError(f"{where}: field 'Scenario' must be text, got {n!r}")
    name = next((n for n in names if n), None)
    domain = _domain(top.get("domain"), name, options, where=where, hint=hint)
    profile = _profile(fields, where=pwhere, options=options)
    for j, q in enumerate(queries):
        qwhere = f"{where}, Queries[{j}]"
        if not isinstance(q, str) or not q.strip():
            raise DataFormatError(f"{qwhere}: a query must be non-empty text, got {q!r}")
        yield _Pending(qwhere, None, domain, name or domain, " ".join(q.split()), profile)


def parse_record(
    record: Mapping[str, Any], *, where: str, min_attributes: int = 7, domain: str | None = None
) -> Scenario:
    """One flat published record -> ``Scenario`` (``where``, e.g. "file:line", prefixes every error)."""
    out = parse_records([(where, record)], options=LoadOptions(min_attributes=min_attributes, domain=domain))
    if len(out) != 1:
        raise DataFormatError(f"{where}: holds {len(out)} scenarios; use parse_records for generator records")
    return out[0]


# -- many records -----------------------------------------------------------------------------------
@dataclass
class LoadReport:
    """What a load did: records read, scenarios made, exact duplicates dropped, missing values."""

    records: int = 0
    scenarios: int = 0
    duplicates: int = 0
    missing: dict[str, int] = field(default_factory=dict)


def parse_records(
    records: Iterable[tuple[str, Any]] | Iterable[tuple[str, Any, str | None]],
    *,
    options: LoadOptions | None = None,
    report: LoadReport | None = None,
) -> list[Scenario]:
    """Parse ``(where, record)`` pairs (or ``(where, record, domain hint)``); ids must be unique.

    A record repeated word for word (same query and profile, no id of its own) is dropped once and
    counted in ``report.duplicates``; two different records with one id are an error.
    """
    options = options or LoadOptions()
    report = report if report is not None else LoadReport()
    estimator = options.severity or make_estimator("lexicon")
    items: list[Scenario | _Pending] = []
    for entry in records:
        where, rec = entry[0], entry[1]
        hint = entry[2] if len(entry) > 2 else None  # type: ignore[misc]
        report.records += 1
        items.extend(_pending_records(rec, where=where, options=options, hint=hint))
    pending = [p for p in items if isinstance(p, _Pending)]
    severities = _estimate(pending, estimator)
    out: list[Scenario] = []
    seen: dict[str, str] = {}
    for item in items:
        if isinstance(item, _Pending):
            uid = user_id_of(item.profile)
            content = hashlib.sha1((item.query + "\x00" + uid + "\x00" + item.scenario_type).encode()).hexdigest()
            sid = item.sid or f"penguin-{item.domain.lower()}-{content[:12]}"
            if sid in seen and item.sid is None:
                report.duplicates += 1
                logger.info("%s: the same query and profile as %s: dropped", item.where, seen[sid])
                continue
            try:
                scenario = Scenario(
                    id=sid,
                    domain=item.domain,
                    scenario_type=item.scenario_type,
                    query=item.query,
                    profile=item.profile,
                    severity=severities[id(item)],
                    source="penguin",
                    split=split_of(uid),
                    risk_cue=query_risk_cue(item.query),
                    user_id=uid,
                )
            except InvalidScenarioError as e:
                raise DataFormatError(f"{item.where}: {e}") from e
            where = item.where
        else:
            scenario, where = item, f"scenario {item.id!r}"
        if scenario.id in seen:
            raise DataFormatError(f"{where}: duplicate scenario id {scenario.id!r} (first at {seen[scenario.id]})")
        seen[scenario.id] = where
        for a in scenario.missing:
            report.missing[a] = report.missing.get(a, 0) + 1
        out.append(scenario)
    report.scenarios = len(out)
    return out


def _estimate(pending: Sequence[_Pending], estimator: SeverityEstimator) -> dict[int, dict[str, float]]:
    """Severities of every pending record, one estimator call per attribute (a model embeds in batches)."""
    out: dict[int, dict[str, float]] = {id(p): {} for p in pending}
    for attr in ATTRIBUTES:
        texts = sorted({p.profile[attr] for p in pending if p.profile[attr] != MISSING})
        values = dict(zip(texts, estimator(attr, texts), strict=True)) if texts else {}
        for p in pending:
            text = p.profile[attr]
            out[id(p)][attr] = float(values[text]) if text != MISSING else estimator.missing_severity
    return out


def load(
    source: Any,
    *,
    min_attributes: int = 7,
    domain: str | None = None,
    domain_map: Mapping[str, str] | str | Path | None = None,
    strict: bool = True,
    severity: str | SeverityEstimator = "lexicon",
    hf_split: str | None = None,
    report: LoadReport | None = None,
) -> list[Scenario]:
    """Scenarios from a file, a folder, a ``datasets`` object or a Hugging Face dataset id.

    Args:
        source: A JSON/JSONL file or a folder of them, a ``datasets.Dataset``/``DatasetDict`` or a
            ``save_to_disk`` folder, or a dataset id such as ``"wick1d/Personalized_Safety_Data"``.
        min_attributes: Least number of the 10 attributes a record must hold (placeholders do not count).
        domain: The domain of records that name none (e.g. a file of one domain's posts).
        domain_map: Scenario name -> domain, or a JSON file of such pairs: routes names the rules do not
            know (tried before them).
        strict: Reject unknown keys (``False``: ignore extra columns).
        severity: How value texts become severities: ``"lexicon"`` (default), ``"embedding"``
            (``"embedding:<model>"``), or a ``SeverityEstimator``.
        hf_split: The split of a Hub dataset loaded over the network (``None``: all of them).
        report: Filled with counts of what the load did.
    """
    if domain is not None and routing.canonical_domain(domain) is None:
        raise ConfigError(f"domain {domain!r} is not one of the seven domains (Relationship, Career, ..., Education)")
    options = LoadOptions(
        min_attributes=min_attributes,
        domain=routing.canonical_domain(domain) if domain is not None else None,
        domain_map=routing.load_domain_map(domain_map),
        strict=strict,
        severity=make_estimator(severity),
    )
    return parse_records(read_source(source, hf_split=hf_split), options=options, report=report)


def save_scenarios(scenarios: Sequence[Scenario], path: str | Path) -> None:
    """Write scenarios as JSONL of ``Scenario.to_dict`` records (loadable with ``load``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as f:
        for s in scenarios:
            f.write(json.dumps(s.to_dict(), ensure_ascii=False) + "\n")
