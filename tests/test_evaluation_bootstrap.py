
import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from relevance.evaluation import (EvaluationRows, RunScores, ThresholdPolicy, binary_metrics, hierarchical_mean,
                                  paired_bootstrap_delta, percentile_interval, point_estimates, retuned_draws,
                                  tune_threshold)
from relevance.evaluation.bootstrap import MetricDraws, weighted_roc_auc


def _data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    weak = np.clip(0.15 * labels + 0.85 * rng.random(n), 0, 1)
    strong = np.clip(0.5 * labels + 0.5 * rng.random(n), 0, 1)
    return labels, weak, strong


def test_identical_runs_give_zero():
    labels, weak, _ = _data()
    r = paired_bootstrap_delta(labels, weak, 0.5, weak, 0.5, n_resamples=200)
    assert r["delta"] == 0.0
    assert r["ci_low"] == 0.0 and r["ci_high"] == 0.0
    assert r["p_better"] == 0.0
    assert r["n_resamples"] == 200


def test_clearly_better_run():
    labels, weak, strong = _data()
    r = paired_bootstrap_delta(labels, weak, 0.5, strong, 0.5)
    expected = f1_score(labels, strong >= 0.5) - f1_score(labels, weak >= 0.5)
    assert r["delta"] == pytest.approx(expected)
    assert r["f1_b"] == pytest.approx(f1_score(labels, strong >= 0.5))
    assert r["ci_low"] > 0
    assert r["p_better"] > 0.95
    assert r["ci_low"] <= r["delta"] <= r["ci_high"]
    # swapping the runs mirrors the result
    s = paired_bootstrap_delta(labels, strong, 0.5, weak, 0.5)
    assert s["delta"] == pytest.approx(-r["delta"])
    assert s["ci_high"] < 0 and s["p_better"] < 0.05


def test_ci_contains_delta_for_close_runs():
    labels, weak, _ = _data(seed=3)
    rng = np.random.default_rng(7)
    other = np.clip(weak + rng.normal(0, 0.05, weak.shape), 0, 1)
    r = paired_bootstrap_delta(labels, weak, 0.5, other, 0.5, n_resamples=500, confidence=0.9)
    assert r["ci_low"] <= r["delta"] <= r["ci_high"]
    assert r["ci_low"] < r["ci_high"]


def test_deterministic_by_seed():
    labels, weak, strong = _data()
    a = paired_bootstrap_delta(labels, weak, 0.5, strong, 0.4, n_resamples=300, seed=11)
    b = paired_bootstrap_delta(labels, weak, 0.5, strong, 0.4, n_resamples=300, seed=11)
    c = paired_bootstrap_delta(labels, weak, 0.5, strong, 0.4, n_resamples=300, seed=12)
    assert a == b
    assert (a["ci_low"], a["ci_high"]) != (c["ci_low"], c["ci_high"])


def test_mismatched_lengths_raise():
    labels, weak, strong = _data(n=100)
    with pytest.raises(ValueError, match="scores_b"):
        paired_bootstrap_delta(labels, weak, 0.5, strong[:-1], 0.5)
    with pytest.raises(ValueError, match="scores_a"):
        paired_bootstrap_delta(labels[:-1], weak, 0.5, strong[:-1], 0.5)


# --------------------------------------------------------------------------- re-tuned intervals

def noisy_threshold_scores(labels, rng):
    """Weakly separated scores: F1 is nearly flat over a wide range of thresholds, so the threshold
    tuned on a few hundred dev rows wanders from one resample to the next."""
    return np.clip(0.5 + 0.08 * (2 * labels - 1) + rng.normal(0, 0.2, labels.shape[0]), 0, 1)


def stable_threshold_scores(labels, rng):
    """Two score levels and a clear optimum between them: every resample tunes the same threshold."""
    return np.where(rng.random(labels.shape[0]) < np.where(labels == 1, 0.9, 0.15), 0.8, 0.2)


def two_models(make_scores, n_dev=200, n_test=2000, seed=0):
    """Dev rows (few: the threshold's noise shows) and test rows, scored by two independent runs."""
    rng = np.random.default_rng(seed)
    dev_y, test_y = rng.integers(0, 2, n_dev), rng.integers(0, 2, n_test)
    runs = {name: RunScores(make_scores(dev_y, rng), make_scores(test_y, rng)) for name in "ab"}
    return EvaluationRows.of(dev_y, ["en"] * n_dev, test_y, ["en"] * n_test), runs


def widths(make_scores):
    """(re-tuned, fixed-threshold) 95 % interval widths of F1(b) - F1(a) on test."""
    rows, runs = two_models(make_scores)
    draws = retuned_draws(rows, runs, n_resamples=400, seed=1)
    low, high = percentile_interval(draws["b"].f1 - draws["a"].f1)
    thresholds = {name: tune_threshold(rows.dev_labels, run.dev)[0] for name, run in runs.items()}
    fixed = paired_bootstrap_delta(rows.test_labels, runs["a"].test, thresholds["a"], runs["b"].test, thresholds["b"],
                                   n_resamples=400, seed=1)
    return high - low, fixed["ci_high"] - fixed["ci_low"]


def test_the_interval_widens_when_the_tuned_threshold_is_noisy():
    noisy_retuned, noisy_fixed = widths(noisy_threshold_scores)
    stable_retuned, stable_fixed = widths(stable_threshold_scores)
    assert noisy_retuned > 1.5 * noisy_fixed  # the fixed-threshold interval ignores the threshold's noise
    assert stable_retuned == pytest.approx(stable_fixed, rel=0.1)  # nothing to add when the threshold is stable


def test_point_estimates_are_the_logged_metrics():
    rows, runs = two_models(noisy_threshold_scores, n_dev=300, n_test=300)
    run = runs["a"]
    threshold, _ = tune_threshold(rows.dev_labels, run.dev)
    point = point_estimates(rows, run)
    assert point["f1"] == pytest.approx(binary_metrics(rows.test_labels, run.test, threshold)["f1"])
    assert point["roc_auc"] == pytest.approx(roc_auc_score(rows.test_labels, run.test))
    # without a test split: dev F1 at dev's threshold (the cross-fit only shapes the interval)
    dev_only = EvaluationRows.of(rows.dev_labels, rows.dev_languages)
    dev_f1 = tune_threshold(rows.dev_labels, run.dev)[1]
    assert point_estimates(dev_only, RunScores(run.dev))["f1"] == pytest.approx(dev_f1)


def test_cross_fit_without_a_test_split_is_paired_and_deterministic():
    rows, runs = two_models(stable_threshold_scores, n_dev=300, n_test=300)
    dev_only = EvaluationRows.of(rows.dev_labels, rows.dev_languages)
    dev_runs = {name: RunScores(run.dev, None, ThresholdPolicy()) for name, run in runs.items()}
    first = retuned_draws(dev_only, dev_runs, n_resamples=200, seed=3)
    again = retuned_draws(dev_only, dev_runs, n_resamples=200, seed=3)
    assert np.array_equal(first["a"].f1, again["a"].f1) and np.array_equal(first["b"].roc_auc, again["b"].roc_auc)
    same = retuned_draws(dev_only, {"a": dev_runs["a"], "a2": dev_runs["a"]}, n_resamples=50, seed=3)
    assert np.array_equal(same["a"].f1, same["a2"].f1)  # the same rows for every run
    low, high = percentile_interval(first["a"].f1)
    assert 0.5 < low < high < 1.0


def test_weighted_roc_auc_is_sklearns_on_the_resampled_rows():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 80)
    scores = np.round(rng.random(80) * 0.6 + 0.3 * labels, 1)  # ties
    picks = rng.integers(0, 80, size=(20, 80))
    weights = np.stack([np.bincount(row, minlength=80) for row in picks])
    expected = [roc_auc_score(labels[row], scores[row]) for row in picks]
    assert np.allclose(weighted_roc_auc(labels, scores, weights), expected)
    assert np.isnan(weighted_roc_auc([1, 0], [0.3, 0.2], [[1, 0]])[0])  # one label drawn


def test_a_seed_group_resamples_its_seeds():
    a = MetricDraws(np.zeros(1000), np.zeros(1000))
    b = MetricDraws(np.ones(1000), np.ones(1000))
    assert hierarchical_mean([a]) is a
    mean = hierarchical_mean([a, b], seed=0)
    assert set(np.unique(mean.f1)) == {0.0, 0.5, 1.0}  # both seeds drawn, or one of them twice
    assert 0.4 < mean.f1.mean() < 0.6


def test_a_querys_rows_are_drawn_together():
    from relevance.evaluation.bootstrap import _cluster_resample_counts, cluster_codes

    codes = cluster_codes(["b", "a", "b", "c", "a", "b"])
    assert codes.tolist() == [0, 1, 0, 2, 1, 0]  # numbered by first appearance
    assert cluster_codes(["a", None]) is None and cluster_codes(None) is None  # a row without a query: rows alone
    weights = _cluster_resample_counts(np.random.default_rng(0), 500, codes)
    for cluster in range(3):
        members = weights[:, codes == cluster]
        assert (members == members[:, :1]).all()  # every row of a query counts as often as the query was drawn
    per_query = weights[:, [0, 1, 3]]
    assert (per_query.sum(axis=1) == 3).all()  # three queries drawn per resample, rows following
    assert set(np.unique(weights.sum(axis=1))) > {6}  # so the number of rows varies
