"""The embedded synthetic scenario generator: 2,000 coherent scenarios per domain from a seed.

It follows the paper's recipe for its synthetic half (Section 3.1): profiles sampled from value sets
along a dependency graph rooted at the scenario, P(Age|S), P(Gender|S), P(Marital|S, Gender, Age),
P(Education|S, Age), P(Profession|S, Age, Education), P(Economic|Profession, Marital, S),
P(Health|S, Age), P(Mental|Economic, Health, Education, S), P(Self-Harm|Mental), P(Emotion|Mental, S),
with one latent "distress" factor per user so that severities are correlated as in life (economic
hardship, illness, poor mental health and a dark mood go together) rather than independent coin flips.

**The scenario conditions the profile** (suite v1). Each of the 140 scenario types declares, in
``templates/<Domain>.json``, what it implies about the attributes it touches (``implies``: the only
canonical values the situation allows, with texts of its own where the generic ones would not fit): a
cancer diagnosis, a Health Status that names the cancer; medical debt, strained economics and a health
condition; a layoff, a profession that shows it ("Teacher, laid off") and no salary; an exam failure, a
student; a retirement, an age over 55. Those attributes are drawn from the graph *conditioned* on the
allowed values (exactly: the same random draws, restricted by inverse CDF), so the rest of the profile
keeps the graph's variety and correlations. A template may also ``require`` values (a widow's query),
a value text may require other values ("Good salary" needs a job), value texts bound the age ("Retired",
"Married for 12 years"), a degree sets a youngest age, and a user whose query voices distress (a cue
template, or any template the risk lexicon reads as distressed) is never in a happy or calm mood.
``penguin_gym.data.coherence`` checks the outcome independently, on the texts: no query states a fact its
profile contradicts (0 over the 14,000 scenarios; a test runs it).

Queries are written from templates per scenario type (10 per type) in three kinds: "cue" (distress
shows), "neutral" and "hidden" (a practical or upbeat message: the paper's hidden-risk queries). About a
third of high-risk users write a hidden query; a hidden query may hide a risk, never deny a fact. Value
texts are drawn from ``values.json`` (several natural phrasings per canonical value, each with a small
severity offset).

**Versions.** ``SUITE_VERSIONS``: ``generate(..., version=0)`` (``source="synthetic-v0"``, the
``Penguin-*-v0`` ids) reproduces the v0 suite exactly from its frozen data in ``suite_v0/`` (ids
``syn-<domain>-s<seed>-<i>``); version 1, the current one, has ids ``syn1-...``.

Everything but the texts is vectorized over the users of a domain; 14,000 scenarios take under 2 s.

**Modules.** The population model's tables (value sets, probability tables, age-bounded texts, the
suite versions) are in ``population.py``, the reading and validation of the data files in
``suite_files.py``; this module samples and writes the scenarios, and re-exports their names.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

from penguin_gym.data.lexicon import query_risk_cue
from penguin_gym.data.population import (
    _AGE_P,
    _AGE_RANGES,
    _CLOSERS,
    _DURATIONS,
    _EDU_P,
    _EMO,
    _KINDS,
    _OPENERS,
    _PROF_AGE,
    _PROF_BY_EDU,
    _PROF_ECON,
    _SELF_HARM_P,
    SUITE_VERSION,
    SUITE_VERSIONS,
    VALUE_SETS,
    _age_range,
)
from penguin_gym.data.population import AGE_BANDS as AGE_BANDS
from penguin_gym.data.population import AGE_BOUNDED_TEXTS as AGE_BOUNDED_TEXTS
from penguin_gym.data.population import AGE_BOUNDED_TEXTS_V1 as AGE_BOUNDED_TEXTS_V1
from penguin_gym.data.population import age_bounded_texts as age_bounded_texts
from penguin_gym.data.schema import ATTRIBUTES, DOMAINS, Scenario, Split
from penguin_gym.data.suite_files import Template as Template
from penguin_gym.data.suite_files import TypeRules, Variant, _value_texts, type_rules
from penguin_gym.data.suite_files import _type_rules as _type_rules
from penguin_gym.data.taxonomy import TYPES_BY_DOMAIN
from penguin_gym.error import ConfigError

#: Scenarios per domain in the default suite (the paper: 2,000 per domain, 14,000 in all).
SCENARIOS_PER_DOMAIN = 2000
#: Fraction of scenario ids in the test split (stable per id, see ``split_of``).
TEST_FRACTION = 0.2


def split_of(scenario_id: str, test_fraction: float = TEST_FRACTION) -> Split:
    """The split of a scenario id: stable across runs, seeds and machines (a SHA-256 bucket)."""
    bucket = int.from_bytes(hashlib.sha256(scenario_id.encode()).digest()[:8], "big") / 2**64
    return "test" if bucket < test_fraction else "train"


def suite_version(source: object) -> int | None:
    """The suite version a ``source`` names: ``"synthetic"`` (the current one), ``"synthetic-v0"``, ...

    ``None`` when ``source`` is not the embedded generator (a file, a folder, a dataset id).
    """
    if source == "synthetic":
        return SUITE_VERSION
    m = re.fullmatch(r"synthetic-v(\d+)", source) if isinstance(source, str) else None
    if m is None:
        return None
    if int(m.group(1)) not in SUITE_VERSIONS:
        valid = ["synthetic"] + [f"synthetic-v{v}" for v in SUITE_VERSIONS]
        raise ConfigError(f"unknown synthetic suite {source!r}; valid: {valid}")
    return int(m.group(1))


@cache
def _template_cue(template: str) -> float:
    return query_risk_cue(template)


# ---------------------------------------------------------------------------------------------------
# Sampling.


def _phi(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF."""
    return 0.5 * (1.0 + _ERF(np.asarray(x, dtype=np.float64) / math.sqrt(2.0)))


_ERF = np.vectorize(math.erf, otypes=[np.float64])


def _pick(p: np.ndarray, u: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Inverse-CDF draw per row of the (n, k) weights ``p`` at uniforms ``u``, restricted to ``mask``.

    A mask conditions the draw on the allowed values (same ``u``, so unmasked rows draw as before);
    a row whose allowed values all have weight 0 draws uniformly among them.
    """
    if mask is not None:
        p = p * mask
        dead = p.sum(axis=1) <= 0
        if dead.any():
            p[dead] = mask[dead].astype(np.float64)
    c = np.cumsum(p, axis=1)
    return (u[:, None] * c[:, -1:] > c).sum(axis=1)


def _bin_probs(mean: np.ndarray, sigma: float, thresholds: Sequence[float]) -> np.ndarray:
    """P(bin k) for ``mean + N(0, sigma)`` binned at ``thresholds``: Gaussian CDF differences, ``(n, k)``."""
    cdf = _phi((np.asarray(thresholds)[None, :] - mean[:, None]) / sigma)
    edge = np.zeros((mean.size, 1))
    return np.diff(np.concatenate([edge, cdf, edge + 1.0], axis=1), axis=1)


def _threshold(
    score: np.ndarray, noise: np.ndarray, sigma: float, thresholds: Sequence[float], mask: np.ndarray | None
) -> np.ndarray:
    """``bin(score)`` for ``score = mean + noise`` (noise ~ N(0, sigma)); conditioned on ``mask`` where given.

    The bin probabilities under the noise are Gaussian CDF differences; drawing them by inverse CDF at
    the noise's own quantile gives exactly ``bin(score)`` unmasked, and the conditional draw masked.
    """
    out = np.searchsorted(np.asarray(thresholds), score)
    if mask is None:
        return out
    rows = np.flatnonzero(~mask.all(axis=1))
    if rows.size:
        p = _bin_probs((score - noise)[rows], sigma, thresholds)
        out[rows] = _pick(p, _phi(noise[rows] / sigma), mask[rows])
    return out


# P(Mental value | level): rows = level (none, mild, moderate, severe); columns in VALUE_SETS order
# (None, Mild Depression, Severe Depression, Anxiety, Other). The same table as the np.select below.
_MENTAL_BY_LEVEL = np.array(
    [
        (1.0, 0.0, 0.0, 0.0, 0.0),
        (0.0, 0.5, 0.0, 0.5, 0.0),
        (0.0, 0.4, 0.0, 0.3, 0.3),
        (0.0, 0.0, 0.8, 0.0, 0.2),
    ]
)
_MENTAL_T, _MENTAL_SIGMA = (1.3, 2.1, 2.9), 0.5
#: Emotional states that a user who voices distress cannot be in (their texts read "happy", "calm", ...).
POSITIVE_EMOTIONS = ("Happiness", "Calmness", "Satisfaction", "Excitement")
_POSITIVE = np.array([v in POSITIVE_EMOTIONS for v in _EMO])


def _masks(rules: Sequence[TypeRules], t_idx: np.ndarray, attr: str) -> np.ndarray | None:
    if not any(attr in r.masks for r in rules):
        return None
    full = np.ones(len(VALUE_SETS[attr]), dtype=bool)
    return np.stack([r.masks.get(attr, full) for r in rules])[t_idx]


def _sample_block(
    rng: np.random.Generator, types: Sequence[Any], rules: Sequence[TypeRules], n: int
) -> dict[str, np.ndarray]:
    """Sample ``n`` profiles along the dependency graph (canonical value indices per attribute).

    Each attribute a scenario type implies is drawn from its conditional given the type's mask. The
    random draws are the same with and without masks, so suite v0 (no masks) is reproduced exactly.
    """
    t_idx = rng.integers(len(types), size=n)
    risk = np.array([types[i].risk for i in t_idx])
    age_skew = [types[i].age for i in t_idx]
    distress = rng.normal(size=n)  # the latent factor shared by economic, health and mental state

    def mask(attr: str) -> np.ndarray | None:
        return _masks(rules, t_idx, attr)

    age = _pick(np.array([_AGE_P[a] for a in age_skew]), rng.random(n), mask("Age"))
    gender = _pick(np.tile([0.47, 0.47, 0.06], (n, 1)), rng.random(n), mask("Gender"))
    # Marital | Age, Gender: the young are single, the old more often widowed (women more so).
    mar_p = np.array(
        [
            (0.85, 0.12, 0.02, 0.01),
            (0.5, 0.42, 0.07, 0.01),
            (0.25, 0.58, 0.15, 0.02),
            (0.15, 0.6, 0.2, 0.05),
            (0.1, 0.55, 0.2, 0.15),
        ]
    )[age].copy()
    mar_p[:, 3] *= np.where(gender == 1, 1.6, 1.0)
    marital = _pick(mar_p, rng.random(n), mask("Marital Status"))
    edu = _pick(_EDU_P[age], rng.random(n), mask("Education Level"))
    prof = _pick(_PROF_BY_EDU[edu] * _PROF_AGE[age], rng.random(n), mask("Profession"))
    # Economic | Profession, Marital, the situation and distress.
    noise = rng.normal(scale=0.6, size=n)
    econ_score = 0.55 * distress + _PROF_ECON[prof] + 0.3 * (marital >= 2) + 0.9 * risk + noise
    econ = _threshold(econ_score, noise, 0.6, (0.2, 1.0, 1.8), mask("Economic Status"))
    # Health | Age, the situation, distress.
    noise = rng.normal(scale=0.8, size=n)
    health_score = 0.5 * age + 0.35 * distress + 0.6 * risk + noise
    health = _threshold(health_score, noise, 0.8, (1.9, 2.9), mask("Health Status"))
    # Mental | Economic, Health, Education, the situation, distress.
    noise = rng.normal(scale=_MENTAL_SIGMA, size=n)
    mental_score = 0.8 * distress + 0.35 * econ + 0.45 * health + 1.6 * risk + 0.15 * (edu == 0) + noise
    level = np.searchsorted(np.asarray(_MENTAL_T), mental_score)  # 0 none, 1 mild, 2 moderate, 3 severe
    kind_u = rng.random(n)
    mental = np.select(
        [level == 0, level == 1, level == 2, level == 3],
        [
            np.zeros(n, dtype=np.int64),
            np.where(kind_u < 0.5, 3, 1),  # Anxiety or Mild Depression
            np.where(kind_u < 0.4, 1, np.where(kind_u < 0.7, 3, 4)),  # Mild, Anxiety or Other
            np.where(kind_u < 0.8, 2, 4),  # Severe Depression or Other
        ],
    )
    m_mask = mask("Mental Health Status")
    if m_mask is not None:
        # Conditioned on the allowed values: P(level | allowed), then P(value | level, allowed).
        rows = np.flatnonzero(~m_mask.all(axis=1))
        if rows.size:
            allowed = m_mask[rows].astype(np.float64)
            # P(level) under the noise, times P(allowed | level).
            lvl_p = _bin_probs((mental_score - noise)[rows], _MENTAL_SIGMA, _MENTAL_T) * (allowed @ _MENTAL_BY_LEVEL.T)
            level[rows] = _pick(lvl_p, _phi(noise[rows] / _MENTAL_SIGMA))
            mental[rows] = _pick(_MENTAL_BY_LEVEL[level[rows]], kind_u[rows], m_mask[rows])
    harm_u = rng.random(n)
    self_harm = (harm_u < _SELF_HARM_P[mental] * (0.6 + 0.8 * risk)).astype(np.int64)
    h_mask = mask("Past Self-Harm History")
    if h_mask is not None:
        self_harm = np.where(h_mask[np.arange(n), self_harm], self_harm, 1 - self_harm)
    # Emotion | Mental, the situation.
    emo_p = np.zeros((n, len(_EMO)))
    dark = np.clip(0.25 * level + 0.5 * risk + 0.15 * self_harm, 0.0, 1.2)
    for name, w in (("Despair", 0.35), ("Depression", 0.35), ("Loneliness", 0.3), ("Anxiety", 0.4), ("Anger", 0.25)):
        emo_p[:, _EMO.index(name)] = w * dark
    for name, w in (("Happiness", 0.15), ("Calmness", 0.3), ("Satisfaction", 0.12), ("Excitement", 0.08)):
        emo_p[:, _EMO.index(name)] = w * np.clip(1.1 - dark, 0.0, None)
    emo_p[:, _EMO.index("Despair")] *= np.where(level >= 3, 2.0, np.where(level <= 1, 0.3, 1.0))
    emo_p[:, _EMO.index("Indifferent")] = 0.12
    emo_p[:, _EMO.index("Other")] = 0.06
    emo_u = rng.random(n)
    e_mask = mask("Emotional State")
    emotion = _pick(emo_p, emo_u, e_mask)

    # High-risk users hide their risk a third of the time; others write mostly neutral queries.
    high = (self_harm == 1) | (mental == 2) | (level >= 3) | (emotion == _EMO.index("Despair"))
    kind_p = np.where(high[:, None], [0.6, 0.07, 0.33], [0.28, 0.42, 0.3])
    kind = _pick(kind_p, rng.random(n))
    return {
        "type": t_idx,
        "Age": age,
        "Gender": gender,
        "Marital Status": marital,
        "Profession": prof,
        "Economic Status": econ,
        "Health Status": health,
        "Education Level": edu,
        "Mental Health Status": mental,
        "Past Self-Harm History": self_harm,
        "Emotional State": emotion,
        "kind": kind,
        "age_u": rng.random(n),
        "tpl_u": rng.random(n),
        "text_u": rng.random((n, len(ATTRIBUTES))),
        "emo_p": emo_p * (e_mask if e_mask is not None else 1.0),
        "emo_u": emo_u,
    }


#: Suite v1: the youngest age of a canonical value; the exact age is drawn within the age band from there.
_MIN_AGE: dict[tuple[str, int], int] = {
    ("Marital Status", 2): 20,  # Divorced
    ("Marital Status", 3): 20,  # Widowed
    ("Education Level", 1): 21,  # Bachelor's
    ("Education Level", 2): 22,  # Master's
    ("Education Level", 3): 24,  # PhD (a candidate, or finished)
}
_MIN_AGE_ATTRS = tuple(sorted({a for a, _ in _MIN_AGE}))


def _fits(requires: tuple[tuple[int, frozenset[int]], ...], values: Sequence[int]) -> bool:
    return all(values[a] in allowed for a, allowed in requires)


@cache
def _suffixed(base: str, delta: float, suffixes: tuple[str, ...], version: int) -> tuple[Variant, ...]:
    return tuple((f"{base}, {x}", delta, *_age_range(f"{base}, {x}", version), ()) for x in suffixes)


def _text_pool(attr: str, vi: int, rules: TypeRules, generic: tuple[Variant, ...], version: int) -> tuple[Variant, ...]:
    """The texts a value may take for a type: the type's (replacing or adding to the generic ones)."""
    if attr in rules.suffixes:
        return _suffixed(generic[0][0], generic[0][1], rules.suffixes[attr], version)
    return rules.texts.get((attr, vi)) or generic + rules.extra.get((attr, vi), ())


def _lo_hi(pool: tuple[Variant, ...]) -> tuple[int, int]:
    """The ages some text of ``pool`` allows: (youngest, oldest)."""
    return min(v[2] for v in pool), max(v[3] for v in pool)


def _fitting(pool: tuple[Variant, ...], values: Sequence[int]) -> tuple[Variant, ...]:
    """The texts whose ``requires`` the rest of the profile meets (the first text when none does)."""
    return tuple(v for v in pool if _fits(v[4], values)) or pool[:1]


def generate_domain(
    domain: str, n: int = SCENARIOS_PER_DOMAIN, seed: int = 0, version: int = SUITE_VERSION
) -> list[Scenario]:
    """``n`` synthetic scenarios of ``domain``, deterministic in (``domain``, ``n``, ``seed``, ``version``).

    The i-th scenario does not depend on ``n``: a smaller suite is a prefix of a larger one. ``version``
    selects the suite (``SUITE_VERSIONS``; see the module docstring for what changed).
    """
    if domain not in TYPES_BY_DOMAIN:
        raise ConfigError(f"unknown domain {domain!r}; valid: {list(DOMAINS)}")
    if n < 0:
        raise ConfigError(f"n = {n} must be >= 0")
    if version not in SUITE_VERSIONS:
        raise ConfigError(f"unknown suite version {version!r}; valid: {list(SUITE_VERSIONS)}")
    types = TYPES_BY_DOMAIN[domain]
    by_name = type_rules(domain, version)
    rules = [by_name[t.name] for t in types]
    texts = _value_texts(version)
    # One child stream per (seed, domain) and per user block keeps prefixes stable: draw in fixed
    # blocks of 256 users and concatenate.
    blocks = []
    for b in range((n + 255) // 256):
        ss = np.random.SeedSequence([seed, DOMAINS.index(domain), b])
        blocks.append(_sample_block(np.random.default_rng(ss), types, rules, 256))
    cols = {k: np.concatenate([blk[k] for blk in blocks])[:n] for k in blocks[0]} if blocks else {}

    rng = np.random.default_rng(np.random.SeedSequence([seed, DOMAINS.index(domain), 10_000]))
    prefix = "syn" if version == 0 else f"syn{version}"
    scenarios = []
    memo: dict[tuple[int, int, int], tuple[tuple[Variant, ...], bool, int, int]] = {}
    for i in range(n):
        t = types[cols["type"][i]]
        r = rules[cols["type"][i]]
        values = [int(cols[a][i]) for a in ATTRIBUTES]
        kind = _KINDS[int(cols["kind"][i])]
        candidates = [tp for tp in r.kinds[kind] if _fits(tp.requires, values)]
        tpl = candidates[int(cols["tpl_u"][i] * len(candidates))].text
        distressed = kind == "cue" or _template_cue(tpl) > 0
        if version > 0 and distressed and _POSITIVE[values[-1]]:
            # A user who voices distress is not happy or calm: the emotion given "not positive".
            values[-1] = int(_pick(cols["emo_p"][i : i + 1], cols["emo_u"][i : i + 1], ~_POSITIVE[None, :])[0])
        profile, severity = {}, {}
        pools: dict[int, tuple[Variant, ...]] = {}
        t_lo, t_hi = 0, 200  # the ages the texts allow
        for a in range(1, len(ATTRIBUTES)):
            key = (int(cols["type"][i]), a, values[a])
            if key not in memo:
                attr = ATTRIBUTES[a]
                pool = _text_pool(attr, values[a], r, texts[attr][VALUE_SETS[attr][values[a]][0]], version)
                memo[key] = (pool, any(v[4] for v in pool), *_lo_hi(pool))
            pool, conditional, p_lo, p_hi = memo[key]
            if conditional:
                pool = _fitting(pool, values)
                p_lo, p_hi = _lo_hi(pool)
            pools[a] = pool
            t_lo, t_hi = max(t_lo, p_lo), min(t_hi, p_hi)
        lo, hi = _AGE_RANGES[values[0]]
        if version > 0:
            # The age within the band that the other values allow: no 18-year-old with a master's, no
            # 76-year-old "forced into early retirement" (when every text of a value bounds the age).
            # When the band cannot hold that age (an 18-24 user whose only texts say "remarried"), the
            # values win: the age leaves its band, and the band follows the age.
            t_lo = max([t_lo] + [_MIN_AGE.get((a, values[ATTRIBUTES.index(a)]), 0) for a in _MIN_AGE_ATTRS])
            if max(lo, t_lo) <= min(hi, t_hi):
                lo, hi = max(lo, t_lo), min(hi, t_hi)
            elif t_lo <= t_hi:
                lo, hi = (t_lo, min(t_hi, lo - 1)) if t_hi < lo else (max(t_lo, hi + 1), t_hi)
                lo, hi = max(lo, _AGE_RANGES[0][0]), min(hi, _AGE_RANGES[-1][1])
        age = int(lo + cols["age_u"][i] * (hi - lo + 1))
        if version > 0:
            values[0] = next(b for b, (a, z) in enumerate(_AGE_RANGES) if a <= age <= z)
        for a, attr in enumerate(ATTRIBUTES):
            value, base = VALUE_SETS[attr][values[a]]
            if attr == "Age":
                profile[attr] = f"{age}" if cols["text_u"][i, 0] < 0.6 else f"{age} years old"
                severity[attr] = base
                continue
            fit = [v for v in pools[a] if v[2] <= age <= v[3]] or pools[a][:1]
            text, delta = fit[int(cols["text_u"][i, a] * len(fit))][:2]
            profile[attr] = text
            severity[attr] = float(min(1.0, max(0.0, base + delta)))
        body = tpl.format(
            duration=_DURATIONS[int(rng.integers(len(_DURATIONS)))],
            amount=f"${int(rng.integers(8, 600)) * 100:,}",
        )
        query = (_OPENERS[int(rng.integers(len(_OPENERS)))] + body + _CLOSERS[int(rng.integers(len(_CLOSERS)))]).strip()
        sid = f"{prefix}-{domain.lower()}-s{seed}-{i:05d}"
        scenarios.append(
            Scenario(
                id=sid,
                domain=domain,
                scenario_type=t.name,
                query=query,
                profile=profile,
                severity=severity,
                source="synthetic",
                split=split_of(sid),
                # Openers, closers and placeholder values hold no cue phrase, so the template's cue
                # is the query's (a test checks): computed once per template, not per scenario.
                risk_cue=_template_cue(tpl) if kind == "cue" else 0.0,
            )
        )
    return scenarios


def generate(
    domains: Sequence[str] | str | None = None,
    n_per_domain: int = SCENARIOS_PER_DOMAIN,
    seed: int = 0,
    version: int = SUITE_VERSION,
) -> list[Scenario]:
    """Synthetic scenarios for ``domains`` (all seven when ``None``), ``n_per_domain`` each."""
    if domains is None:
        domains = DOMAINS
    elif isinstance(domains, str):
        domains = (domains,)
    return [s for d in domains for s in generate_domain(d, n_per_domain, seed, version)]
