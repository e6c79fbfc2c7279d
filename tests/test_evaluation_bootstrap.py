
import numpy as np
import pytest
from sklearn.metrics import f1_score

from relevance.evaluation import paired_bootstrap_delta


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
