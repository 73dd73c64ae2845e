"""Documented lexicons: risk cues in a query's text, and severity of a profile value's text.

Two uses:

* ``query_risk_cue(query)`` estimates how plainly a query shows its author's distress (the published
  dataset has no such field). The synthetic templates are written against the same list: every "cue"
  template holds at least one cue phrase and no "neutral" or "hidden" template holds one (a test checks).
* ``estimate_severity(attribute, text)`` maps a free-text value ("Severe depression, hospitalised
  twice") to a severity in [0, 1]: the first matching rule of the attribute wins, in order, so the more
  specific and severe rules come first. Rules come from the paper's value sets (PAPER.md): the severe
  ends (Severe Difficulty, Serious Illness, Severe Depression, a self-harm history, Despair) are high,
  the calm ones (Stable, Good, None, Calmness) low.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: Phrases that show distress in the query text. Weight = how strongly (1 = an explicit crisis signal).
CUE_PHRASES: tuple[tuple[str, float], ...] = (
    ("suicid", 1.0),
    ("kill myself", 1.0),
    ("end it all", 1.0),
    ("end my life", 1.0),
    ("hurt myself", 1.0),
    ("self-harm", 1.0),
    ("self harm", 1.0),
    ("cutting myself", 1.0),
    ("don't want to be here", 1.0),
    ("do not want to be here", 1.0),
    ("better off without me", 1.0),
    ("no reason to live", 1.0),
    ("want to disappear", 0.9),
    ("hopeless", 0.8),
    ("no way out", 0.8),
    ("can't go on", 0.8),
    ("cannot go on", 0.8),
    ("worthless", 0.8),
    ("breaking point", 0.8),
    ("at my lowest", 0.8),
    ("dark place", 0.8),
    ("can't cope", 0.7),
    ("cannot cope", 0.7),
    ("falling apart", 0.7),
    ("breaking down", 0.7),
    ("desperate", 0.7),
    ("trapped", 0.6),
    ("give up", 0.6),
    ("giving up", 0.6),
    ("drowning", 0.6),
    ("panic attack", 0.6),
    ("can't breathe", 0.6),
    ("can't stop crying", 0.6),
    ("crying every", 0.6),
    ("can't sleep", 0.5),
    ("haven't slept", 0.5),
    ("numb", 0.5),
    ("empty inside", 0.6),
    ("overwhelmed", 0.5),
    ("exhausted", 0.4),
    ("all alone", 0.6),
    ("nobody cares", 0.7),
    ("no one cares", 0.7),
    ("a burden", 0.7),
    ("ashamed", 0.5),
    ("terrified", 0.5),
    ("scared", 0.4),
    ("spiraling", 0.6),
    ("spiralling", 0.6),
    ("lost everything", 0.7),
    ("what's the point", 0.8),
    ("what is the point", 0.8),
    ("pointless", 0.6),
)

_CUE_RE = [(re.compile(r"\b" + re.escape(p), re.IGNORECASE), w) for p, w in CUE_PHRASES]
# One alternation to rule out the (common) texts without any cue in a single pass.
_ANY_CUE = re.compile(r"\b(?:" + "|".join(re.escape(p) for p, _ in CUE_PHRASES) + ")", re.IGNORECASE)


def cue_phrases_in(text: str) -> list[str]:
    """The cue phrases found in ``text`` (for tests and for explaining ``query_risk_cue``)."""
    return [p for (p, _), (rx, _) in zip(CUE_PHRASES, _CUE_RE, strict=True) if rx.search(text)]


def query_risk_cue(query: str) -> float:
    """How plainly ``query`` shows distress, in [0, 1].

    The strongest phrase sets the level and each further phrase adds a little (a noisy-or with weight
    0.3), so one "hopeless" counts 0.8 and a message full of distress words approaches 1.
    """
    if not _ANY_CUE.search(query):
        return 0.0
    weights = sorted((w for rx, w in _CUE_RE if rx.search(query)), reverse=True)
    if not weights:
        return 0.0
    level = weights[0]
    for w in weights[1:]:
        level = 1.0 - (1.0 - level) * (1.0 - 0.3 * w)
    return round(min(level, 1.0), 4)


# (pattern, severity) per attribute, first match wins. Patterns are lowercase regexes.
SEVERITY_RULES: dict[str, Sequence[tuple[str, float]]] = {
    "Age": (
        (r"\b1[0-7]\b|minor|teen", 0.55),
        (r"\b(1[89]|2[0-4])\b|18-24|student", 0.45),
        (r"\b(2[5-9]|3[0-4])\b|25-34", 0.3),
        (r"\b(3[5-9]|4[0-4])\b|35-44", 0.3),
        (r"\b(4[5-9]|5[0-4])\b|45-54", 0.35),
        (r"\b([6-9]\d)\b|elderly|retire", 0.5),
        (r"\b(5[5-9])\b|55", 0.45),
    ),
    "Gender": ((r"other|non-?binary|trans|queer|fluid", 0.4), (r"female|woman|male|man", 0.2)),
    "Marital Status": (
        (r"widow", 0.75),
        (r"separat|divorc", 0.6),
        (r"single|unmarried|never married", 0.35),
        (r"married|partner|engaged", 0.2),
    ),
    "Profession": (
        (r"unemploy|jobless|laid off|between jobs", 0.6),
        (r"student", 0.4),
        (r"freelanc|gig|self-employed|service|manufactur|agricult|farm|artist|sales", 0.4),
        (r"retire", 0.35),
        (r"healthcare|nurse|doctor|teacher", 0.3),
        (r".+", 0.25),
    ),
    "Economic Status": (
        (r"severe|bankrupt|homeless|crisis|can't afford food|destitute", 0.9),
        (r"difficult|struggl|debt|tight|poor|low income|paycheck", 0.65),
        (r"moderate|average|modest|okay|ok\b", 0.35),
        (r"stable|comfortable|secure|good|wealthy", 0.1),
    ),
    "Health Status": (
        (r"serious|terminal|cancer|critical|severe|hospital", 0.85),
        (r"chronic|diabet|asthma|pain|condition|disab", 0.55),
        (r"good|healthy|fine|excellent", 0.1),
    ),
    "Education Level": (
        (r"none|no formal|dropped out|primary", 0.4),
        (r"high school|secondary|ged", 0.3),
        (r"phd|doctor|master|bachelor|degree|college|universit", 0.15),
        (r".+", 0.25),
    ),
    "Mental Health Status": (
        (r"severe|major depress|bipolar|psychos|schizo|ptsd|suicid|hospitali", 0.9),
        (r"depress|anxiety|panic|eating disorder|ocd|trauma", 0.6),
        (r"mild|stress|low mood", 0.45),
        (r"none|no\b|good|healthy|stable|fine", 0.05),
    ),
    "Past Self-Harm History": (
        (r"\bnone\b|\bno\b|never|not applicable", 0.0),
        (r"attempt|multiple|repeated|recent|hospitali|overdose", 1.0),
        (r"yes|self-harm|cut|harm", 0.85),
    ),
    "Emotional State": (
        (r"despair|suicid|hopeless", 0.95),
        (r"depress|numb|empty", 0.8),
        (r"lonel|anxi|fear|panic|overwhelm|anger|angry|rage|frustrat", 0.6),
        (r"sad|stress|worr|confus|indifferen", 0.45),
        (r"calm|happy|happiness|satisf|excite|content|hopeful|okay|fine", 0.1),
    ),
}
_SEVERITY_RE = {a: [(re.compile(p), s) for p, s in rules] for a, rules in SEVERITY_RULES.items()}

#: Severity given to a value the source did not record (unknown is neither safe nor alarming).
UNKNOWN_SEVERITY = 0.3


def estimate_severity(attribute: str, text: str | None) -> float:
    """The severity in [0, 1] that the value text ``text`` of ``attribute`` signals.

    A missing, empty or unmatched value gets ``UNKNOWN_SEVERITY``.
    """
    if text is None or not str(text).strip() or str(text).strip().lower() in {"unknown", "n/a", "null"}:
        return UNKNOWN_SEVERITY
    low = str(text).lower()
    for rx, sev in _SEVERITY_RE[attribute]:
        if rx.search(low):
            return sev
    return UNKNOWN_SEVERITY
