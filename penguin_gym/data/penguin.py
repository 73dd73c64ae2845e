"""The PENGUIN loader: the published dataset (Hugging Face or a local JSON/JSONL file) as ``Scenario``s.

The published records (``wick1d/Personalized_Safety_Data``, MIT) hold a user's ``query``, the
``scenario`` it belongs to and the profile fields ``age``, ``gender``, ``marital_status``,
``profession``, ``economic_status``, ``health_status``, ``education_level``, ``mental_health_status``,
``past_self_harm_history`` (missing in the real, Reddit-sourced half) and ``emotional_state``. Keys
are matched case- and separator-insensitively, so ``"Mental Health Status"`` works as well.

Each record becomes a ``Scenario``: the domain comes from a ``domain`` field when present, else from
the scenario text (an exact taxonomy type, or the keywords below); each value's severity is estimated
from its text by ``lexicon.estimate_severity``; the query's risk cue by ``lexicon.query_risk_cue``; a
missing attribute holds ``"Unknown"``. Following the paper's inclusion rule for real posts, a record
needs at least ``min_attributes`` (7) of the 10 attributes. Files of ``Scenario.to_dict`` records (as
written by ``save_scenarios``) load too.

Every problem raises ``DataFormatError`` naming the file, the record (line for JSONL, index for JSON)
and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from penguin_gym.data.lexicon import estimate_severity, query_risk_cue
from penguin_gym.data.schema import ATTRIBUTES, DOMAINS, Scenario
from penguin_gym.data.synthetic import split_of
from penguin_gym.data.taxonomy import TYPE_BY_NAME
from penguin_gym.error import DataFormatError, DependencyNotInstalled, InvalidScenarioError

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

#: Scenario keywords -> domain, tried in order (the first domain with a matching keyword wins).
DOMAIN_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Health",
        (
            "health",
            "illness",
            "disease",
            "medical",
            "diagnos",
            "cancer",
            "pain",
            "self-harm",
            "suicid",
            "depress",
            "anxiety",
            "addiction",
            "disorder",
            "therapy",
        ),
    ),
    (
        "Financial",
        (
            "financ",
            "debt",
            "money",
            "loan",
            "bankrupt",
            "rent",
            "mortgage",
            "invest",
            "income",
            "econom",
            "poverty",
            "scam",
        ),
    ),
    (
        "Career",
        (
            "career",
            "job",
            "work",
            "employ",
            "layoff",
            "laid off",
            "fired",
            "burnout",
            "boss",
            "promotion",
            "retire",
            "business",
        ),
    ),
    (
        "Education",
        ("educat", "school", "academ", "exam", "student", "college", "universit", "study", "thesis", "grade", "campus"),
    ),
    (
        "Relationship",
        (
            "relationship",
            "breakup",
            "break-up",
            "divorce",
            "marriage",
            "romantic",
            "partner",
            "dating",
            "family",
            "parent",
            "infidel",
            "love",
        ),
    ),
    (
        "Social",
        (
            "social",
            "friend",
            "lonel",
            "isolat",
            "bully",
            "harass",
            "community",
            "neighbo",
            "peer",
            "reputation",
            "discriminat",
        ),
    ),
    (
        "Life",
        (
            "life",
            "transition",
            "relocat",
            "moving",
            "grief",
            "loss",
            "death",
            "bereave",
            "purpose",
            "identity",
            "immigra",
            "disaster",
            "midlife",
        ),
    ),
)

_NORM = re.compile(r"[^a-z0-9]+")


def _norm_key(key: str) -> str:
    return _NORM.sub("_", key.lower()).strip("_")


def domain_of(scenario: str) -> str | None:
    """The domain a scenario text belongs to, or ``None`` when nothing matches."""
    if scenario in TYPE_BY_NAME:
        return TYPE_BY_NAME[scenario].domain
    for d in DOMAINS:
        if _norm_key(scenario) == d.lower():
            return d
    low = scenario.lower()
    for domain, words in DOMAIN_KEYWORDS:
        if any(w in low for w in words):
            return domain
    return None


def parse_record(
    record: Mapping[str, Any], *, where: str, min_attributes: int = 7, domain: str | None = None
) -> Scenario:
    """One published record -> ``Scenario``. ``where`` ("file:line") prefixes every error."""
    if not isinstance(record, Mapping):
        raise DataFormatError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "profile" in record and "severity" in record:  # a Scenario.to_dict record
        try:
            return Scenario.from_dict(record)
        except (InvalidScenarioError, TypeError, ValueError) as e:
            raise DataFormatError(f"{where}: {e}") from e
    fields = {_norm_key(str(k)): v for k, v in record.items()}
    query = fields.get("query")
    if not isinstance(query, str) or not query.strip():
        raise DataFormatError(f"{where}: field 'query' is missing or empty")
    scenario_text = fields.get("scenario")
    if scenario_text is not None and not isinstance(scenario_text, str):
        raise DataFormatError(f"{where}: field 'scenario' must be a string, got {scenario_text!r}")
    rec_domain = fields.get("domain") or domain
    if rec_domain is not None:
        if rec_domain not in DOMAINS:
            match = domain_of(str(rec_domain))
            if match is None:
                raise DataFormatError(f"{where}: field 'domain' = {rec_domain!r} is not one of {list(DOMAINS)}")
            rec_domain = match
    elif scenario_text:
        rec_domain = domain_of(scenario_text)
        if rec_domain is None:
            raise DataFormatError(
                f"{where}: field 'scenario' = {scenario_text!r} maps to no domain; add a 'domain' field "
                f"(one of {list(DOMAINS)}) or pass domain= to the loader"
            )
    else:
        raise DataFormatError(f"{where}: neither 'scenario' nor 'domain' is given")
    profile: dict[str, str] = {}
    present = 0
    for attr, field in FIELDS.items():
        value = fields.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            profile[attr] = "Unknown"
            continue
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise DataFormatError(f"{where}: field {field!r} must be text or a number, got {value!r}")
        profile[attr] = str(value).strip()
        present += 1
    if present < min_attributes:
        missing = [FIELDS[a] for a in ATTRIBUTES if profile[a] == "Unknown"]
        raise DataFormatError(
            f"{where}: only {present} of 10 attributes present (need {min_attributes}, the paper's rule); "
            f"missing fields {missing}"
        )
    sid = fields.get("id")
    if sid is None:
        digest = hashlib.sha1((query + "\x00" + json.dumps(profile, sort_keys=True)).encode()).hexdigest()[:12]
        sid = f"penguin-{str(rec_domain).lower()}-{digest}"
    sid = str(sid)
    try:
        return Scenario(
            id=sid,
            domain=str(rec_domain),
            scenario_type=str(scenario_text or rec_domain),
            query=query.strip(),
            profile=profile,
            severity={a: estimate_severity(a, None if profile[a] == "Unknown" else profile[a]) for a in ATTRIBUTES},
            source="penguin",
            split=split_of(sid),
            risk_cue=query_risk_cue(query),
        )
    except InvalidScenarioError as e:
        raise DataFormatError(f"{where}: {e}") from e


def _iter_file(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    if path.suffix.lower() == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{lineno}", json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{path}:{lineno}: not valid JSON ({e.msg}, column {e.colno})") from e
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataFormatError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from e
        if isinstance(data, Mapping):
            for key in ("data", "records", "scenarios"):
                if isinstance(data.get(key), list):
                    data = data[key]
                    break
        if not isinstance(data, list):
            raise DataFormatError(
                f"{path}: expected a list of records (or {{'data': [...]}}), got {type(data).__name__}"
            )
        for i, rec in enumerate(data):
            yield f"{path}: record {i}", rec


def parse_records(
    records: Iterable[tuple[str, Any]], *, min_attributes: int = 7, domain: str | None = None
) -> list[Scenario]:
    """Parse ``(where, record)`` pairs; ids must be unique."""
    out: list[Scenario] = []
    seen: dict[str, str] = {}
    for where, rec in records:
        s = parse_record(rec, where=where, min_attributes=min_attributes, domain=domain)
        if s.id in seen:
            raise DataFormatError(f"{where}: duplicate scenario id {s.id!r} (first at {seen[s.id]})")
        seen[s.id] = where
        out.append(s)
    return out


def load(
    source: str | Path, *, min_attributes: int = 7, domain: str | None = None, hf_split: str = "train"
) -> list[Scenario]:
    """Scenarios from a local ``.json``/``.jsonl`` file or a Hugging Face dataset id.

    Args:
        source: A file path, or a dataset id such as ``"wick1d/Personalized_Safety_Data"`` (needs
            ``pip install "penguin-gym[data]"`` and the network or a local Hugging Face cache).
        min_attributes: Least number of the 10 attributes a record must hold.
        domain: The domain of records that name none (e.g. a file of one domain's posts).
        hf_split: The dataset split to read from the Hub.
    """
    path = Path(source)
    if path.exists():
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".json", ".jsonl"))
            if not files:
                raise DataFormatError(f"{path}: directory holds no .json or .jsonl files")
            return parse_records(
                (item for f in files for item in _iter_file(f)), min_attributes=min_attributes, domain=domain
            )
        return parse_records(_iter_file(path), min_attributes=min_attributes, domain=domain)
    src = str(source)
    if src.endswith((".json", ".jsonl")) or src.startswith((".", "/")) or src.count("/") != 1:
        raise DataFormatError(f"{src}: no such file (and not a Hugging Face dataset id of the form 'owner/name')")
    try:
        import datasets
    except ImportError as e:
        raise DependencyNotInstalled(
            f'loading the Hugging Face dataset {src!r} needs the datasets package: pip install "penguin-gym[data]"'
        ) from e
    ds = datasets.load_dataset(src, split=hf_split)
    return parse_records(
        ((f"{src}[{hf_split}]: record {i}", rec) for i, rec in enumerate(ds)),
        min_attributes=min_attributes,
        domain=domain,
    )


def save_scenarios(scenarios: Sequence[Scenario], path: str | Path) -> None:
    """Write scenarios as JSONL of ``Scenario.to_dict`` records (loadable with ``load``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as f:
        for s in scenarios:
            f.write(json.dumps(s.to_dict(), ensure_ascii=False) + "\n")
