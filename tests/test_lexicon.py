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
