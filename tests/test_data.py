from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from penguin_gym.data import (
    ATTRIBUTES,
    DOMAINS,
    SCENARIO_TYPES,
    TYPES_BY_DOMAIN,
    Scenario,
    attribute_mask,
    load_scenarios,
    mask_attributes,
    synthetic,
)
from penguin_gym.data.lexicon import cue_phrases_in
from penguin_gym.error import ConfigError, InvalidScenarioError


@pytest.fixture(scope="module")
def suite() -> list[Scenario]:
    return load_scenarios()


def test_vocabularies_follow_the_paper():
    assert ATTRIBUTES[0] == "Age" and ATTRIBUTES[-1] == "Emotional State" and len(ATTRIBUTES) == 10
    assert DOMAINS == ("Relationship", "Career", "Financial", "Social", "Health", "Life", "Education")
    assert len(SCENARIO_TYPES) == 140
    for d in DOMAINS:
        groups = Counter(t.group for t in TYPES_BY_DOMAIN[d])
        assert len(groups) == 2 and set(groups.values()) == {10}
    assert any(t.name == "Medical Debt" and t.group == "Debt Issues" for t in SCENARIO_TYPES)
    assert any(t.name == "Self-harm Urges" and t.group == "Mental Health" for t in SCENARIO_TYPES)


def test_masks_round_trip():
    names = frozenset({"Age", "Emotional State"})
    assert attribute_mask(names) == 1 | 1 << 9
    assert mask_attributes(attribute_mask(names)) == names
    with pytest.raises(InvalidScenarioError, match="did you mean 'Emotional State'"):
        attribute_mask({"Emotional Stat"})


def test_full_suite_size_and_unique_ids(suite):
    assert len(suite) == 14_000
    assert Counter(s.domain for s in suite) == {d: 2000 for d in DOMAINS}
    assert len({s.id for s in suite}) == 14_000


def test_generation_is_deterministic_and_prefix_stable():
    a = load_scenarios(domains="Financial", n_per_domain=300, seed=3)
    b = load_scenarios(domains="Financial", n_per_domain=300, seed=3)
    assert [s.to_dict() for s in a] == [s.to_dict() for s in b]
    small = load_scenarios(domains="Financial", n_per_domain=100, seed=3)
    assert [s.to_dict() for s in small] == [s.to_dict() for s in a[:100]]
    other = load_scenarios(domains="Financial", n_per_domain=100, seed=4)
    assert [s.query for s in other] != [s.query for s in small]


def test_split_is_stable_per_id_and_both_splits_non_empty(suite):
    counts = Counter(s.split for s in suite)
    assert 0.15 < counts["test"] / len(suite) < 0.25
    for s in suite[:200]:
        assert s.split == synthetic.split_of(s.id)
    for d in DOMAINS:
        assert load_scenarios(domains=d, split="test", n_per_domain=200)
        assert load_scenarios(domains=d, split="train", n_per_domain=200)


def _col(suite, attr):
    return [s.profile[attr] for s in suite]


def test_profiles_are_coherent(suite):
    for s in suite:
        age = int(s.profile["Age"].split()[0])
        edu = s.profile["Education Level"].lower()
        if age <= 24:
            assert "phd" not in edu and "doctor" not in edu, s
        assert set(s.profile) == set(ATTRIBUTES)
        assert all(0.0 <= v <= 1.0 for v in s.severity.values())
    # Severities are correlated as in life (one latent distress factor), not independent coin flips.
    sev = np.array([s.severity_vector for s in suite])
    mental, econ, emotion = sev[:, 7], sev[:, 4], sev[:, 9]
    assert np.corrcoef(mental, econ)[0, 1] > 0.1
    assert np.corrcoef(mental, emotion)[0, 1] > 0.2
    # A self-harm history is far more common with severe depression than with none.
    severe = sev[:, 7] >= 0.8
    assert (sev[severe, 8] > 0.5).mean() > 3 * (sev[sev[:, 7] < 0.2, 8] > 0.5).mean()
    # Students are young.
    ages = [int(s.profile["Age"].split()[0]) for s in suite if "student" in s.profile["Profession"].lower()]
    assert np.median(ages) < 26


def test_value_texts_are_varied(suite):
    for attr, least in (
        ("Mental Health Status", 20),
        ("Past Self-Harm History", 10),
        ("Economic Status", 20),
        ("Profession", 60),
    ):
        assert len(set(_col(suite, attr))) >= least, attr


def test_queries_are_varied_and_some_hide_the_risk(suite):
    assert len({s.query for s in suite}) > 0.8 * len(suite)
    high = [s for s in suite if s.severity["Past Self-Harm History"] > 0.5 or s.severity["Mental Health Status"] >= 0.8]
    hidden = [s for s in high if s.risk_cue == 0.0]
    assert 0.3 < len(hidden) / len(high) < 0.45  # about a third of high-risk users hide it
    cued = [s for s in suite if s.risk_cue > 0]
    assert all(cue_phrases_in(s.query) for s in cued[:500])
    lengths = [len(s.query.split()) for s in suite]
    assert min(lengths) < 15 and max(lengths) > 50


@pytest.mark.parametrize("version", synthetic.SUITE_VERSIONS)
def test_every_template_file_follows_the_lexicon_contract(version):
    for d in DOMAINS:
        for t, rules in synthetic.type_rules(d, version).items():
            kinds = {k: [tp.text for tp in pool] for k, pool in rules.kinds.items()}
            assert len(kinds["cue"]) >= 3 and len(kinds["hidden"]) >= 2, (d, t)
            for q in kinds["cue"]:
                assert cue_phrases_in(q), (d, t, q)
            for q in kinds["neutral"] + kinds["hidden"]:
                assert not cue_phrases_in(q), (d, t, q)


def test_scenario_validation_names_the_problem():
    good = load_scenarios(domains="Health", n_per_domain=1)[0].to_dict()
    assert Scenario.from_dict(good) == load_scenarios(domains="Health", n_per_domain=1)[0]
    with pytest.raises(InvalidScenarioError, match="domain 'Helth'.*did you mean 'Health'"):
        Scenario.from_dict({**good, "domain": "Helth"})
    bad = {**good, "severity": {**good["severity"], "Age": 1.5}}
    with pytest.raises(InvalidScenarioError, match=r"severity\['Age'\] = 1.5"):
        Scenario.from_dict(bad)
    prof = dict(good["profile"])
    del prof["Gender"]
    with pytest.raises(InvalidScenarioError, match=r"missing \['Gender'\]"):
        Scenario.from_dict({**good, "profile": prof})
    with pytest.raises(ConfigError, match="unknown domain"):
        load_scenarios(domains="Sports")
    with pytest.raises(ConfigError, match="split"):
        load_scenarios(split="validation")


def test_scenarios_are_immutable():
    s = load_scenarios(domains="Life", n_per_domain=1)[0]
    with pytest.raises(TypeError):
        s.profile["Age"] = "99"  # type: ignore[index]
    with pytest.raises(AttributeError):
        s.query = "x"  # type: ignore[misc]


def test_value_texts_agree_with_age(suite):
    import re

    for s in suite:
        age = int(s.profile["Age"].split()[0])
        prof, marital = s.profile["Profession"].lower(), s.profile["Marital Status"].lower()
        if re.search(r"\bretired\b", prof):
            assert age >= 55, s
        if "senior" in prof or "manager" in prof:
            assert age >= 26, s
        if "married for" in marital or "kids" in marital:
            assert age >= 24, s


def test_risk_cue_is_the_lexicon_reading_of_the_query(suite):
    from penguin_gym.data.lexicon import query_risk_cue

    for s in suite[::37]:
        assert s.risk_cue == query_risk_cue(s.query), s.query
