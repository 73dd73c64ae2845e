"""Scenario names -> domains: the official 140 route right, words match as words, the rest is loud."""

from __future__ import annotations

import pytest

from penguin_gym.data import DOMAINS, SCENARIO_TYPES
from penguin_gym.data.routing import (
    canonical_domain,
    explain_unrouted,
    keyword_scores,
    known_names,
    load_domain_map,
    normalize_name,
    official_scenarios,
    route,
)
from penguin_gym.error import ConfigError


def test_the_official_hierarchy_is_seven_by_two_by_ten():
    names = official_scenarios()
    assert len(names) == 140 and len({o.name for o in names}) == 140
    assert {o.domain for o in names} == set(DOMAINS)
    for d in DOMAINS:
        mine = [o for o in names if o.domain == d]
        assert len(mine) == 20 and len({o.subcategory for o in mine}) == 2


@pytest.mark.parametrize("official", official_scenarios(), ids=lambda o: o.name)
def test_every_official_name_routes_to_its_domain(official):
    for spelling in (official.name, official.name.upper(), official.name.lower().replace("'", "")):
        r = route(spelling)
        assert r is not None and r.domain == official.domain and r.how == "name", spelling
    assert route(official.subcategory).domain == official.domain
    assert route(official.category).domain == official.domain


def test_the_names_the_old_router_got_wrong():
    # Keywords used to match inside words and the first domain in a fixed order won.
    assert route("Parent's Divorce Impact").domain == "Relationship"  # "rent"
    assert route("Workplace Ostracism").domain == "Social"  # "work"
    assert route("Real Estate Loss").domain == "Financial"  # "loss"
    assert route("Sports Career-Ending Injury").domain == "Health"  # "career"
    assert route("Career Identity Loss").domain == "Life"
    assert route("Burnout").domain == "Health"  # the official domain, over the embedded taxonomy's


def test_embedded_types_and_domains_route_too():
    official = {normalize_name(o.name) for o in official_scenarios()}
    for t in SCENARIO_TYPES:
        if normalize_name(t.name) not in official:
            assert route(t.name).domain == t.domain, t.name
    for d in DOMAINS:
        assert route(d).domain == d and route(d.upper()).domain == d
        assert canonical_domain(d.lower()) == d and canonical_domain(f" {d.upper()} ") == d
    assert canonical_domain("Finance") == "Financial" and canonical_domain("Sports") is None
    assert route("Life Transition Scenarios").domain == "Life"
    assert route("Gambling Debt").domain == "Financial"  # the plural "Debts" is the official name


def test_keywords_are_whole_words_and_ties_are_unrouted():
    assert keyword_scores("apparent parents") == {"Relationship": ["parents"]}  # "parent" in "apparent": no
    assert "Financial" not in keyword_scores("Parenthood and current events")  # no "rent" inside words
    assert route("struggling with credit card debt").domain == "Financial"
    assert route("Dealing with loneliness after moving to a new city") is None  # Social vs Life: a tie
    assert route("Knitting club") is None


def test_unrouted_names_say_how_to_fix_them():
    msg = explain_unrouted("Career ending injury")
    assert "several domains" in msg and "Career: career" in msg and "Health: injury" in msg
    assert "'Sports Career-Ending Injury' (Health)" in msg
    assert "domain_map=" in msg and "--domain-map" in msg


def test_domain_map_is_tried_first_and_checked():
    dm = load_domain_map({"Knitting Club": "social", "Burnout": "Career"})
    assert route("knitting club", dm).domain == "Social"
    assert route("Burnout", dm).domain == "Career" and route("Burnout", dm).how == "domain_map"
    with pytest.raises(ConfigError, match="not a domain"):
        load_domain_map({"x": "Hobbies"})
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_domain_map(["x"])  # type: ignore[arg-type]


def test_no_name_has_two_domains():
    table = known_names()
    assert len(table) > 280
    assert all(d in DOMAINS for _, d in table.values())
