"""Refitting the SimulatedJudge: recovering perturbed parameters from a table, a cache, or triples."""

from __future__ import annotations

import dataclasses
import doctest
import json

import numpy as np
import pytest

import penguin_gym.judges.refit as refit_module
from penguin_gym.data import ATTRIBUTES, load_scenarios, mask_attributes
from penguin_gym.error import ConfigError
from penguin_gym.judges import SimulatedJudge, SimulatedJudgeParams
from penguin_gym.judges.cache import CachedJudge
from penguin_gym.judges.factory import make_judge
from penguin_gym.judges.refit import FitReport, fit_data, predict, refit, spearman_by_scenario
from penguin_gym.judges.table import ScoreTable


@pytest.fixture(scope="module")
def scenarios():
    return load_scenarios(domains=["Health", "Career", "Financial"], n_per_domain=6)


@pytest.fixture(scope="module")
def perturbed():
    """A judge unlike the default: other weights, levels, curvature and dilution."""
    p = SimulatedJudgeParams.load()
    rng = np.random.default_rng(7)
    return dataclasses.replace(
        p,
        name="perturbed",
        attribute_weight=p.attribute_weight * np.exp(rng.normal(0.0, 0.35, p.attribute_weight.shape)),
        base_need=0.4,
        kappa=2.6,
        ceiling=p.ceiling - np.array([0.2, 0.1, 0.3]),
        context_free=p.context_free + np.array([0.25, -0.1, 0.2]),
        risk_penalty=p.risk_penalty * 0.6,
        dilution=p.dilution * 1.6,
        attention_cost=p.attention_cost * 0.5,
        synergies=tuple((a, b, w, s * 0.5) for a, b, w, s in p.synergies),
    )


@pytest.fixture(scope="module")
def table(scenarios, perturbed):
    return ScoreTable.build(SimulatedJudge(params=perturbed), scenarios, progress=False)


def test_predict_is_the_simulated_judge(scenarios, perturbed, table):
    data = fit_data(table)
    np.testing.assert_allclose(predict(perturbed, data), data.y, atol=1e-5)
    rng = np.random.default_rng(0)
    rows, masks = rng.integers(0, len(scenarios), 300), rng.integers(0, 1024, 300)
    bound = SimulatedJudge(params=perturbed).bind(scenarios)
    sub = dataclasses.replace(data, rows=rows, masks=masks, y=np.zeros((300, 3)))
    np.testing.assert_allclose(predict(perturbed, sub), bound.scores(rows, masks), atol=1e-12)


def test_refit_recovers_a_perturbed_judge_from_a_table(scenarios, perturbed, table, tmp_path):
    out = tmp_path / "fit.json"
    params, report = refit(table, out=out, name="recovered")
    assert isinstance(report, FitReport)
    assert report.initial_r2 < 0.9  # the default judge is a poor model of this one...
    assert report.r2 > 0.95  # ...the refitted one a good one
    assert report.r2 > 0.99 and min(report.r2_dimensions.values()) > 0.98
    assert report.spearman_mean > 0.95 and report.n_spearman == len(scenarios)
    assert report.n_observations == len(scenarios) * 1024 and report.converged
    assert "R^2 safety" in str(report)
    # the preset loads into the judge and reproduces the table through the judge's own code
    judge = SimulatedJudge(params=out)
    assert judge.params.name == "recovered"
    refitted = judge.bind(scenarios).table(np.arange(len(scenarios))).mean(axis=2)
    target = table.values.mean(axis=2)
    r2 = 1 - ((refitted - target) ** 2).sum() / ((target - target.mean()) ** 2).sum()
    assert r2 > 0.99
    assert make_judge(f"simulated@{out}").params.name == "recovered"
    saved = json.loads(out.read_text())
    assert saved["_fit"]["r2"] == pytest.approx(report.r2) and "perturbed" in saved["_about"]
    # the kappa and levels move toward the truth
    assert abs(params.kappa - perturbed.kappa) < abs(SimulatedJudgeParams.load().kappa - perturbed.kappa)


def test_refit_from_cached_noisy_judgments(scenarios, perturbed, tmp_path):
    """A 'GPU-day' of judging: random subsets of each scenario, with judge noise, through the cache."""
    judge = CachedJudge(SimulatedJudge(params=perturbed, noise=0.1), tmp_path / "judgments.sqlite", chunk_size=500)
    rng = np.random.default_rng(3)
    pairs = [(s, mask_attributes(int(m))) for s in scenarios for m in rng.choice(1024, 120, replace=False)]
    judge.score_many([s for s, _ in pairs], [r for _, r in pairs])
    with pytest.raises(ConfigError, match="needs the judged scenarios"):
        refit(judge)
    params, report = refit(tmp_path / "judgments.sqlite", scenarios, max_iter=30)
    assert report.n_observations == len(pairs)
    assert report.r2 > 0.9 and report.spearman_mean > 0.85
    assert report.source == judge.name
    # the noise-free truth is recovered better than the noisy data is fitted
    exact = fit_data(ScoreTable.build(SimulatedJudge(params=perturbed), scenarios, max_size=3, progress=False))
    pred = predict(params, exact)
    ys, ps = exact.y.mean(axis=1), pred.mean(axis=1)
    assert 1 - ((ys - ps) ** 2).sum() / ((ys - ys.mean()) ** 2).sum() > 0.95


def test_refit_from_triples_and_options(scenarios, perturbed):
    sim = SimulatedJudge(params=perturbed)
    revealed = [frozenset(ATTRIBUTES[: k % 11]) for k in range(len(scenarios) * 4)]
    scen = [scenarios[k % len(scenarios)] for k in range(len(revealed))]
    triples = list(zip(scen, revealed, sim.score_many(scen, revealed), strict=True))
    params, report = refit(triples, fixed=("domain_boost", "synergies", "cue_coverage"), max_iter=10)
    assert "synergies" not in report.fitted and "attribute_weight" in report.fitted
    assert [s for *_, s in params.synergies] == [s for *_, s in SimulatedJudgeParams.load().synergies]
    with pytest.raises(ConfigError, match="unknown parameter groups"):
        refit(triples, fixed=("nope",))
    with pytest.raises(ConfigError, match="no judgments"):
        refit([])


def test_spearman_by_scenario():
    rows = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])
    observed = np.array([1.0, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0, 5.0, 5.0])
    predicted = np.array([0.1, 0.2, 0.3, 0.4, 1.0, 2.0, 3.0, 1.0, 2.0])
    rho = spearman_by_scenario(rows, observed, predicted)
    np.testing.assert_allclose(rho, [1.0, -1.0])  # scenario 2 has too few points (and is constant)
    ties = spearman_by_scenario(np.zeros(4, dtype=int), np.array([1.0, 1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert ties[0] == pytest.approx(0.9486832980505138)  # scipy.stats.spearmanr


def test_refit_command(table, tmp_path, capsys):
    table_path, out = tmp_path / "t.npz", tmp_path / "fit.json"
    table.save(table_path)
    assert refit_module.main([str(table_path), "--out", str(out), "--max-iter", "5", "--name", "cli"]) == 0
    assert SimulatedJudgeParams.load(out).name == "cli"
    assert "R^2 safety" in capsys.readouterr().out


def test_docstring_examples():
    result = doctest.testmod(refit_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
