from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks.judge_calibration import POPCOUNT, greedy_mask
from penguin_gym.data import ATTRIBUTES, DOMAINS, load_scenarios
from penguin_gym.error import ConfigError
from penguin_gym.judges import Judge, JudgeScore, SimulatedJudge, SimulatedJudgeParams, bind
from penguin_gym.judges.base import _ProtocolBound
from penguin_gym.judges.factory import make_judge

FULL = (1 << 10) - 1


@pytest.fixture(scope="module")
def scenarios():
    return load_scenarios(n_per_domain=300, seed=0)


@pytest.fixture(scope="module")
def tables(scenarios):
    b = SimulatedJudge().bind(scenarios)
    return np.concatenate(
        [b.table(np.arange(i, min(i + 500, len(scenarios)))).mean(axis=2) for i in range(0, len(scenarios), 500)]
    )


def test_judge_score_validates_and_averages():
    s = JudgeScore(4, 3, 5)
    assert s.safety == 4.0 and s.as_dict()["safety"] == 4.0
    with pytest.raises(ValueError, match="personalization = 6"):
        JudgeScore(4, 3, 6)


def test_all_scoring_paths_agree(scenarios):
    judge = SimulatedJudge()
    assert isinstance(judge, Judge)
    rng = np.random.default_rng(0)
    rows = rng.integers(len(scenarios), size=64)
    masks = rng.integers(1 << 10, size=64)
    bound = judge.bind(scenarios)
    batch = bound.scores(rows, masks)
    table = bound.table(rows)
    one = np.array([bound.score_one(int(r), int(m)) for r, m in zip(rows, masks, strict=False)])
    named = judge.score_many(
        [scenarios[r] for r in rows], [frozenset(a for i, a in enumerate(ATTRIBUTES) if m >> i & 1) for m in masks]
    )
    generic = _ProtocolBound(judge, scenarios).scores(rows, masks)
    # Bit for bit: the env (score_one), the VectorEnv (scores) and the oracle (table) must agree exactly.
    np.testing.assert_array_equal(batch, table[np.arange(64), masks])
    np.testing.assert_array_equal(batch, one)
    np.testing.assert_allclose(batch, generic, rtol=1e-12)
    np.testing.assert_allclose(batch[:, 0], [s.risk_sensitivity for s in named], rtol=1e-12)
    assert batch.min() >= 1.0 and batch.max() <= 5.0


def test_context_gap_matches_the_paper(scenarios, tables):
    dom = np.array([s.domain_index for s in scenarios])
    free, rich = tables[:, 0].mean(), tables[:, FULL].mean()
    assert 2.7 < free < 3.0 and 3.9 < rich < 4.3
    assert abs(100 * (rich / free - 1) - 43.2) < 5
    for d in range(len(DOMAINS)):
        gain = 100 * (tables[dom == d, FULL].mean() / tables[dom == d, 0].mean() - 1)
        assert 35 <= gain <= 48, DOMAINS[d]


def test_single_attribute_effects_follow_the_paper(tables):
    single = {a: tables[:, 1 << i].mean() for i, a in enumerate(ATTRIBUTES)}
    order = sorted(single, key=single.get, reverse=True)
    assert set(order[:3]) == {"Mental Health Status", "Emotional State", "Past Self-Harm History"}
    assert order[3] == "Health Status"
    assert all(single[a] > tables[:, 0].mean() for a in ATTRIBUTES)  # every fact helps a little alone


def test_saturation_a_few_attributes_beat_all_ten(tables):
    best = {k: tables[:, POPCOUNT == k].max(axis=1).mean() for k in range(4)}
    full = tables[:, FULL].mean()
    assert best[3] > full  # ask everything is not optimal even when questions are free
    assert best[1] - best[0] > 0.5 * (best[3] - best[0])  # the first attribute brings most of the gain
    assert best[0] < best[1] < best[2] < best[3]


def test_best_subset_varies_and_greedy_is_good_but_not_optimal(tables):
    cols3 = np.flatnonzero(POPCOUNT == 3)
    best3 = cols3[tables[:, cols3].argmax(axis=1)]
    assert np.bincount(best3).max() / len(best3) < 0.5
    opt = tables.max(axis=1)
    greedy = np.array([t[greedy_mask(t)] for t in tables])
    share = np.isclose(greedy, opt).mean()
    assert 0.5 < share < 1.0
    assert np.all(greedy <= opt + 1e-12)


def test_synergy_and_redundancy_break_additivity(scenarios):
    import dataclasses

    params = SimulatedJudgeParams.load()
    additive = SimulatedJudge(params=dataclasses.replace(params, synergies=())).bind(scenarios)
    bound = SimulatedJudge(params=params).bind(scenarios)
    sev = np.array([s.severity_vector for s in scenarios])
    row = np.array([int(np.argmax(sev[:, 7] + sev[:, 8]))])  # severe depression and a self-harm history
    t, t0 = bound.table(row)[0].mean(axis=1), additive.table(row)[0].mean(axis=1)
    m, sh, emo = 1 << 7, 1 << 8, 1 << 9
    # Complements: the pair is worth more beyond its best member with the synergy than without.
    assert t[m | sh] - max(t[m], t[sh]) > t0[m | sh] - max(t0[m], t0[sh])
    # Redundancy: a dark mood adds less once the diagnosis is known.
    assert t[m | emo] - t[m] < t0[m | emo] - t0[m]


def test_responder_presets_shift_the_context_free_level(scenarios):
    zeros = np.zeros(len(scenarios), dtype=np.int64)
    rows = np.arange(len(scenarios))
    params = SimulatedJudgeParams.load()
    for name, level in params.responders.items():
        free = SimulatedJudge(responder=name).bind(scenarios).scores(rows, zeros).mean()
        assert abs(free - level) < 0.1, name
    with pytest.raises(ConfigError, match="did you mean 'gpt-4o'"):
        SimulatedJudge(responder="gpt4o")


def test_noise_is_a_fixed_function_of_scenario_and_set(scenarios):
    judge = SimulatedJudge(noise=0.2)
    s = scenarios[0]
    a = judge.score(s, frozenset({"Age"}))
    assert a == judge.score(s, frozenset({"Age"}))
    assert a != SimulatedJudge().score(s, frozenset({"Age"}))
    assert judge.name.endswith("noise=0.2")


def test_params_round_trip_and_errors(tmp_path):
    params = SimulatedJudgeParams.load()
    again = SimulatedJudgeParams.from_dict(params.to_dict())
    assert again.fingerprint() == params.fingerprint()
    path = tmp_path / "p.json"
    path.write_text(json.dumps(params.to_dict()))
    assert SimulatedJudge(params=path).bind(load_scenarios(domains="Health", n_per_domain=3)) is not None
    path.write_text('{"name": "x",\n "kappa": }')
    with pytest.raises(ConfigError, match=r"p.json:2: not valid JSON"):
        SimulatedJudgeParams.load(path)
    broken = params.to_dict()
    del broken["kappa"]
    with pytest.raises(ConfigError, match="missing or unknown key 'kappa'"):
        SimulatedJudgeParams.from_dict(broken)


def test_make_judge_specs():
    assert make_judge(None).name == "simulated/sim-v0/mean"
    assert make_judge("simulated:gpt-4o").name == "simulated/sim-v0/gpt-4o"
    j = SimulatedJudge()
    assert make_judge(j) is j
    with pytest.raises(ConfigError, match="unknown judge spec"):
        make_judge("gpt-5")
    with pytest.raises(ConfigError, match="no score table file"):
        make_judge("table:/nonexistent.npz")
    with pytest.raises(ConfigError, match="Judge protocol"):
        make_judge(object())  # type: ignore[arg-type]


def test_bind_uses_the_generic_adapter_for_plain_judges(scenarios):
    class Constant:
        name = "constant"

        def score(self, scenario, revealed):
            return JudgeScore(3, 3, 3 + len(revealed) / 10)

        def score_many(self, scenarios, revealed):
            return [self.score(s, r) for s, r in zip(scenarios, revealed, strict=False)]

    b = bind(Constant(), scenarios[:5])
    out = b.scores(np.array([0, 1]), np.array([0, 0b111]))
    assert math.isclose(out[1, 2], 3.3) and math.isclose(out[0, 2], 3.0)
