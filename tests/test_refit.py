"""Refitting the SimulatedJudge: recovering perturbed parameters from a table, a cache, or triples."""

from __future__ import annotations

import dataclasses
import doctest
import json
import warnings

import numpy as np
import pytest

import experiments.refit_judge
import penguin_gym.judges.fitting as fitting
from penguin_gym.data import ATTRIBUTES, load_scenarios, mask_attributes
from penguin_gym.error import ConfigError, UnderdeterminedFitWarning
from penguin_gym.judges import SimulatedJudge, SimulatedJudgeParams
from penguin_gym.judges.cache import CachedJudge
from penguin_gym.judges.factory import make_judge
from penguin_gym.judges.fit_quality import FitReport, scenario_folds, spearman_by_scenario
from penguin_gym.judges.fitting import refit
from penguin_gym.judges.observations import fit_data, predict
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
    # a subsample fitted, all 1,024 subsets scored; cross-validation is tested below, on fewer judgments
    params, report = refit(table, out=out, name="recovered", max_obs=4000, folds=0)
    assert isinstance(report, FitReport)
    assert report.initial_r2 < 0.9  # the default judge is a poor model of this one...
    fit = report.in_sample
    assert fit.r2 > 0.99 and min(fit.r2_dimensions.values()) > 0.98  # ...the refitted one a good one
    assert fit.spearman_mean > 0.95 and fit.n_spearman == len(scenarios)
    assert report.n_observations == len(scenarios) * 1024 and report.n_fit_observations == 4000 and report.converged
    assert report.held_out is None and report.cross_validation is None and report.warnings == ()
    assert "held-out: none (cross-validation off (folds=0))" in str(report) and "in-sample" in str(report)
    # the preset loads into the judge and reproduces the table through the judge's own code
    judge = SimulatedJudge(params=out)
    assert judge.params.name == "recovered"
    refitted = judge.bind(scenarios).table(np.arange(len(scenarios))).mean(axis=2)
    target = table.values.mean(axis=2)
    r2 = 1 - ((refitted - target) ** 2).sum() / ((target - target.mean()) ** 2).sum()
    assert r2 > 0.99
    assert make_judge(f"simulated@{out}").params.name == "recovered"
    saved = json.loads(out.read_text())
    assert saved["_fit"]["in_sample"]["r2"] == pytest.approx(fit.r2) and "perturbed" in saved["_about"]
    assert saved["_fit"]["held_out"] is None and saved["_fit"]["held_out_note"] == "cross-validation off (folds=0)"
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
    params, report = refit(tmp_path / "judgments.sqlite", scenarios, max_iter=30, folds=0)
    assert report.n_observations == len(pairs)
    assert report.in_sample.r2 > 0.9 and report.in_sample.spearman_mean > 0.85
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
    with pytest.warns(UnderdeterminedFitWarning, match="72 judgments for 47 fitted parameters"):
        params, report = refit(triples, fixed=("domain_boost", "synergies", "cue_coverage"), max_iter=10, folds=0)
    assert "synergies" not in report.fitted and "attribute_weight" in report.fitted and report.n_parameters == 47
    assert [s for *_, s in params.synergies] == [s for *_, s in SimulatedJudgeParams.load().synergies]
    with pytest.raises(ConfigError, match="unknown parameter groups"):
        refit(triples, fixed=("nope",))
    with pytest.raises(ConfigError, match="no judgments"):
        refit([])
    with pytest.raises(ConfigError, match="folds = 1; use 0"):
        refit(triples, folds=1)


def test_spearman_by_scenario():
    rows = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])
    observed = np.array([1.0, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0, 5.0, 5.0])
    predicted = np.array([0.1, 0.2, 0.3, 0.4, 1.0, 2.0, 3.0, 1.0, 2.0])
    rho = spearman_by_scenario(rows, observed, predicted)
    np.testing.assert_allclose(rho, [1.0, -1.0])  # scenario 2 has too few points (and is constant)
    ties = spearman_by_scenario(np.zeros(4, dtype=int), np.array([1.0, 1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert ties[0] == pytest.approx(3 / np.sqrt(10))  # tied values share their mean rank


def test_refit_command(scenarios, perturbed, tmp_path, capsys):
    table_path, out = tmp_path / "t.npz", tmp_path / "fit.json"
    ScoreTable.build(SimulatedJudge(params=perturbed), scenarios, max_size=2, progress=False).save(table_path)
    assert experiments.refit_judge.main([str(table_path), "--out", str(out), "--max-iter", "3", "--name", "cli"]) == 0
    assert SimulatedJudgeParams.load(out).name == "cli"
    printed = capsys.readouterr().out
    # held-out first, in-sample after it and so labelled
    assert 0 < printed.index("held-out (5-fold cross-validation by scenario") < printed.index("in-sample (")
    assert "WARNING" not in printed  # 1,008 judgments for 56 parameters
    saved = json.loads(out.read_text())["_fit"]
    assert list(saved)[:4] == ["held_out", "held_out_note", "cross_validation", "in_sample"]
    assert saved["held_out"]["r2"] > 0.95 and saved["cross_validation"]["folds"] == 5
    # fewer parameters, no folds
    argv = [str(table_path), "--out", str(out), "--max-iter", "1", "--fix", "attribute_weight", "synergies"]
    assert experiments.refit_judge.main([*argv, "--folds", "0"]) == 0
    printed = capsys.readouterr().out
    assert "fit of 20 parameters" in printed and "held-out: none (cross-validation off" in printed


def test_docstring_examples():
    result = doctest.testmod(fitting, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------------------------------
# Held-out quality: cross-validation by scenario, and the warnings of an underdetermined fit


def _judged(judge, scenarios, n_subsets, seed=1):
    """``n_subsets`` random subsets of each scenario, judged: (scenario, revealed, JudgeScore) triples."""
    rng = np.random.default_rng(seed)
    pairs = [(s, mask_attributes(int(m))) for s in scenarios for m in rng.choice(1024, n_subsets, replace=False)]
    scen, revealed = [s for s, _ in pairs], [r for _, r in pairs]
    return list(zip(scen, revealed, judge.score_many(scen, revealed), strict=True))


def test_held_out_of_a_well_determined_fit(scenarios, perturbed):
    """18 scenarios x 40 subsets = 720 judgments for 56 parameters: held-out close to in-sample, no warning."""
    triples = _judged(SimulatedJudge(params=perturbed), scenarios, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnderdeterminedFitWarning)
        _, report = refit(triples, max_iter=20)
    held, fit, cv = report.held_out, report.in_sample, report.cross_validation
    assert held is not None and cv is not None and report.warnings == () and report.held_out_note == ""
    assert report.initial_r2 < 0.5  # the truth is far from the start...
    assert held.r2 > 0.99 and min(held.r2_dimensions.values()) > 0.99  # ...and recovered on unseen scenarios
    assert abs(held.r2 - fit.r2) < 0.005 and held.rmse < 2 * fit.rmse
    assert set(held.rmse_dimensions) == set(held.r2_dimensions) and held.n_observations == 720
    assert held.spearman_mean > 0.99 and held.n_spearman == len(scenarios)
    assert cv.folds == 5 and sorted(cv.fold_scenarios) == [3, 3, 4, 4, 4] and sum(cv.fold_observations) == 720
    assert len(cv.fold_r2) == len(cv.iterations) == len(cv.converged) == 5
    text, d = str(report), report.to_dict()
    assert text.index("held-out (5-fold cross-validation by scenario, seed 0") < text.index("in-sample (")
    assert list(d)[:4] == ["held_out", "held_out_note", "cross_validation", "in_sample"]
    assert d["held_out"]["r2"] == held.r2 and d["in_sample"]["r2"] == fit.r2
    json.dumps(d)


def test_an_overparameterized_fit_warns_and_its_held_out_r2_is_lower(scenarios, perturbed):
    """4 scenarios x 3 subsets = 12 judgments for 56 parameters: in-sample R^2 ~ 1 that does not hold up."""
    triples = _judged(SimulatedJudge(params=perturbed), scenarios[:4], 3)
    with pytest.warns(UnderdeterminedFitWarning) as caught:
        _, report = refit(triples, max_iter=20)
    messages = [str(w.message) for w in caught]
    assert any(
        "12 judgments for 56 fitted parameters" in m and "Judge more scenarios or subsets" in m for m in messages
    )
    assert any("4 scenarios for 5 folds: cross-validating with 4 folds" in m for m in messages)
    assert [f"refit: {w}" for w in report.warnings] == messages
    held, fit = report.held_out, report.in_sample
    assert held is not None and report.cross_validation is not None and report.cross_validation.folds == 4
    assert fit.r2 > 0.99  # the in-sample number alone would pass any check...
    assert held.r2 < fit.r2 - 0.05 and held.rmse > 5 * fit.rmse  # ...the held-out one shows the gap
    assert "WARNING: 12 judgments for 56 fitted parameters" in str(report)


def test_no_held_out_numbers_from_one_scenario(scenarios, perturbed):
    triples = _judged(SimulatedJudge(params=perturbed, noise=0.1), scenarios[:1], 11)
    with pytest.warns(UnderdeterminedFitWarning) as caught:
        _, report = refit(triples, max_iter=10)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "11 judgments for 56" in messages[0] and "Judge at least 5 scenarios" in messages[1]
    assert report.held_out is None and report.cross_validation is None
    assert report.held_out_note.startswith("cross-validation impossible: the judgments are of 1 scenario")
    assert report.in_sample.r2 > 0.95  # noise fitted: a number that says nothing about other scenarios
    assert "held-out: none (cross-validation impossible" in str(report)
    assert report.to_dict()["held_out"] is None


def test_cross_validation_is_deterministic(scenarios, perturbed):
    triples = _judged(SimulatedJudge(params=perturbed), scenarios[:6], 4)

    def run(seed):
        with pytest.warns(UnderdeterminedFitWarning):
            params, report = refit(triples, max_iter=3, folds=3, seed=seed)
        d = report.to_dict()
        d.pop("seconds")
        return params, d

    (p1, d1), (p2, d2) = run(0), run(0)
    assert d1 == d2 and np.array_equal(p1.attribute_weight, p2.attribute_weight)
    _, d3 = run(1)
    assert d3["cross_validation"]["seed"] == 1 and d3["held_out"] != d1["held_out"]  # other folds
    assert d3["in_sample"] == d1["in_sample"]  # the fit itself does not depend on the folds


def test_scenario_folds_never_split_a_scenario():
    rows = np.repeat(np.arange(23), np.arange(1, 24))  # scenarios with 1 to 23 judgments
    fold = scenario_folds(rows, 5, seed=3)
    assert fold.shape == rows.shape
    for s in range(23):
        assert np.unique(fold[rows == s]).size == 1
    per_fold = [np.unique(rows[fold == k]).size for k in range(5)]
    assert sorted(per_fold) == [4, 4, 5, 5, 5]
    np.testing.assert_array_equal(fold, scenario_folds(rows, 5, seed=3))
    assert not np.array_equal(fold, scenario_folds(rows, 5, seed=4))
    np.testing.assert_array_equal(np.sort(np.unique(scenario_folds(rows[::-1], 23))), np.arange(23))
    with pytest.raises(ConfigError, match="2 <= folds <= scenarios"):
        scenario_folds(rows, 24)
    with pytest.raises(ConfigError, match="2 <= folds <= scenarios"):
        scenario_folds(rows, 1)


def test_each_fold_fit_leaves_its_scenarios_out_whole(scenarios, perturbed, monkeypatch):
    """The folds' fits run through the one fitting function, never on a judgment of a held-out scenario."""
    triples = _judged(SimulatedJudge(params=perturbed), scenarios[:7], 5)
    seen = []
    fit = fitting._fit

    def spy(layout, data, **kwargs):
        seen.append((frozenset(data.rows.tolist()), len(data.rows)))
        return fit(layout, data, **kwargs)

    monkeypatch.setattr(fitting, "_fit", spy)
    with pytest.warns(UnderdeterminedFitWarning):
        _, report = refit(triples, max_iter=1, folds=3)
    everything = frozenset(range(7))
    assert seen[0] == (everything, 35)  # the fit returned, then one per fold
    left_out = [everything - trained for trained, _ in seen[1:]]
    assert len(left_out) == 3 and all(left_out) and sum(len(s) for s in left_out) == 7
    assert frozenset().union(*left_out) == everything  # each scenario held out exactly once, whole
    assert [n for _, n in seen[1:]] == [35 - 5 * len(s) for s in left_out]
    assert list(report.cross_validation.fold_scenarios) == [len(s) for s in left_out]
