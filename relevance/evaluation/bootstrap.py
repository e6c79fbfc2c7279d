"""Paired bootstrap intervals for comparing runs on the same rows.

`retuned_draws` is what `relevance.compare` uses: every resample draws dev rows and test rows
(the same rows for every run: pairing), re-tunes each run's threshold on the dev resample exactly
as the run tuned it (`relevance.evaluation.threshold`, global or per language), then scores F1
and ROC-AUC on the test resample. The interval so includes the noise of choosing the threshold,
which a fixed-threshold bootstrap (`paired_bootstrap_delta`) leaves out and so is too narrow.
Runs without a test split are cross-fitted instead: the threshold is tuned on the dev resample
and F1 is scored on the dev rows that resample left out (out of bag).

`hierarchical_mean` averages runs that differ only by their seed: each resample also draws the
seeds with replacement, so a group's interval holds seed-to-seed variation too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from relevance.evaluation.metrics import _check_inputs, _languages_array, f1_from_counts
from relevance.evaluation.threshold import ThresholdPolicy, tune_thresholds_weighted

__all__ = [
    "EvaluationRows",
    "MetricDraws",
    "RunScores",
    "delta_summary",
    "hierarchical_mean",
    "paired_bootstrap_delta",
    "percentile_interval",
    "point_estimates",
    "retuned_draws",
    "weighted_roc_auc",
]

# Upper bound on the number of (resample, row) cells materialised at once;
# 4M int64 indices is ~32 MB.
_MAX_CELLS = 4_000_000
METRICS = ("f1", "roc_auc")


def _check_confidence(confidence: float) -> float:
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(confidence)


def _check_resamples(n_resamples: int) -> int:
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    return int(n_resamples)


def _resample_counts(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """(m, n): how many times each of n rows is drawn in each of m resamples of n rows."""
    idx = rng.integers(0, n, size=(m, n))
    offsets = (np.arange(m, dtype=np.int64) * n)[:, None]
    return np.bincount((offsets + idx).ravel(), minlength=m * n).reshape(m, n)


def paired_bootstrap_delta(
    labels: Any,
    scores_a: Any,
    threshold_a: float,
    scores_b: Any,
    threshold_b: float,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """F1(b) - F1(a) at fixed thresholds with a paired percentile bootstrap CI.

    Each resample draws row indices with replacement and applies the same
    indices to both runs, so row difficulty cancels out. Returns ``delta``
    (on the full set), ``ci_low``, ``ci_high``, ``p_better`` (fraction of
    resamples where b beats a), ``n_resamples``, plus ``f1_a`` and ``f1_b``.
    The thresholds stay fixed: when they were tuned on these or related rows,
    use `retuned_draws`, whose interval also holds the threshold's noise.

    Vectorised: every row gets a code for its (run a, run b) outcome
    (TN/FP/FN/TP each), so one bincount over ``resample * 16 + code`` gives
    all per-resample confusion counts at once.
    """
    y, sa = _check_inputs(labels, scores_a, name="scores_a")
    _, sb = _check_inputs(labels, scores_b, name="scores_b")
    n_resamples = _check_resamples(n_resamples)
    confidence = _check_confidence(confidence)
    n = y.shape[0]

    # outcome per run: 0=TN, 1=FP, 2=FN, 3=TP  (2*label + prediction)
    cat_a = 2 * y + (sa >= threshold_a)
    cat_b = 2 * y + (sb >= threshold_b)
    codes = (4 * cat_a + cat_b).astype(np.int64)

    # (16, 6) map from joint code to [TP_a, predicted positive_a, positives, TP_b, predicted positive_b, positives].
    code_ids = np.arange(16)
    ca, cb = code_ids // 4, code_ids % 4
    to_counts = np.stack([ca == 3, ca % 2 == 1, ca >= 2, cb == 3, cb % 2 == 1, cb >= 2], axis=1).astype(np.int64)

    full = np.bincount(codes, minlength=16) @ to_counts
    f1_a = float(f1_from_counts(*full[:3]))
    f1_b = float(f1_from_counts(*full[3:]))

    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CELLS // n)
    deltas = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, chunk):
        m = min(chunk, n_resamples - start)
        idx = rng.integers(0, n, size=(m, n))
        offsets = (np.arange(m, dtype=np.int64) * 16)[:, None]
        joint = np.bincount((offsets + codes[idx]).ravel(), minlength=16 * m).reshape(m, 16)
        counts = joint @ to_counts  # (m, 6)
        deltas[start : start + m] = f1_from_counts(*counts[:, 3:].T) - f1_from_counts(*counts[:, :3].T)

    ci_low, ci_high = percentile_interval(deltas, confidence)
    return {
        "delta": f1_b - f1_a,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "p_better": float(np.mean(deltas > 0)),
        "n_resamples": n_resamples,
        "f1_a": f1_a,
        "f1_b": f1_b,
    }


def weighted_roc_auc(labels: Any, scores: Any, weights: Any) -> np.ndarray:
    """ROC-AUC of the weighted rows, per row of `weights` (resamples × rows, counts); tied scores
    count one half, as sklearn's `roc_auc_score`. NaN where a resample has one label only."""
    y, s = _check_inputs(labels, scores)
    w = np.asarray(weights, dtype=np.float64)
    order = np.argsort(s, kind="stable")
    s_asc, y_asc, w_asc = s[order], y[order], w[:, order]
    starts = np.flatnonzero(np.r_[True, s_asc[1:] != s_asc[:-1]])
    positives = np.add.reduceat(w_asc * y_asc, starts, axis=1)  # per distinct score
    negatives = np.add.reduceat(w_asc * (1 - y_asc), starts, axis=1)
    negatives_below = np.cumsum(negatives, axis=1) - negatives
    ranked = (positives * (negatives_below + 0.5 * negatives)).sum(axis=1)
    pairs = positives.sum(axis=1) * negatives.sum(axis=1)
    return np.where(pairs > 0, ranked / np.where(pairs > 0, pairs, 1.0), np.nan)


@dataclass(frozen=True)
class EvaluationRows:
    """The rows every compared run scored, in one order: dev (thresholds are tuned there) and
    test (F1 is reported there), or no test (cross-fit on dev)."""

    dev_labels: np.ndarray
    dev_languages: np.ndarray
    test_labels: np.ndarray | None = None
    test_languages: np.ndarray | None = None

    @classmethod
    def of(cls, dev_labels: Any, dev_languages: Any, test_labels: Any = None,
           test_languages: Any = None) -> EvaluationRows:
        dev_y = np.asarray(dev_labels).astype(np.int64)
        test_y = None if test_labels is None else np.asarray(test_labels).astype(np.int64)
        return cls(dev_y, _languages_array(dev_languages, dev_y.shape[0]), test_y,
                   None if test_y is None else _languages_array(test_languages, test_y.shape[0]))

    @property
    def has_test(self) -> bool:
        return self.test_labels is not None


@dataclass(frozen=True)
class RunScores:
    """One run's scores on the shared rows, and how it tunes its threshold."""

    dev: np.ndarray
    test: np.ndarray | None = None
    policy: ThresholdPolicy = ThresholdPolicy()


@dataclass
class MetricDraws:
    """A run's (or a seed group's) metric in each resample."""

    f1: np.ndarray
    roc_auc: np.ndarray

    def get(self, metric: str) -> np.ndarray:
        return getattr(self, metric)


def _scored_side(rows: EvaluationRows, run: RunScores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, scores, languages) where F1 and ROC-AUC are measured: test, else dev."""
    if rows.has_test:
        if run.test is None:
            raise ValueError("the rows have a test split but the run has no test scores")
        return rows.test_labels, np.asarray(run.test, dtype=np.float64), rows.test_languages
    return rows.dev_labels, np.asarray(run.dev, dtype=np.float64), rows.dev_languages


def _f1_and_auc(rows: EvaluationRows, run: RunScores, tune_weights: np.ndarray, score_weights: np.ndarray,
                auc_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per resample: thresholds tuned on `tune_weights` of dev, F1 on `score_weights` of the scored
    side, ROC-AUC on its `auc_weights`."""
    tuned = tune_thresholds_weighted(rows.dev_labels, run.dev, rows.dev_languages, tune_weights, run.policy)
    labels, scores, languages = _scored_side(rows, run)
    predicted = scores[None, :] >= tuned.for_languages(languages)
    tp = (score_weights * (predicted & (labels == 1))).sum(axis=1)
    predicted_positive = (score_weights * predicted).sum(axis=1)
    f1 = f1_from_counts(tp, predicted_positive, score_weights @ labels)
    return f1, weighted_roc_auc(labels, scores, auc_weights)


def point_estimates(rows: EvaluationRows, run: RunScores) -> dict[str, float]:
    """The run's F1 and ROC-AUC as it logged them: thresholds tuned on every dev row, measured on
    every test row (every dev row without a test split)."""
    ones_dev = np.ones((1, rows.dev_labels.shape[0]), dtype=np.int64)
    scored = np.ones((1, _scored_side(rows, run)[0].shape[0]), dtype=np.int64)
    f1, auc = _f1_and_auc(rows, run, ones_dev, scored, scored)
    return {"f1": float(f1[0]), "roc_auc": float(auc[0])}


def retuned_draws(rows: EvaluationRows, runs: Mapping[str, RunScores], n_resamples: int = 1000,
                  seed: int = 0) -> dict[str, MetricDraws]:
    """Each run's F1 and ROC-AUC in every resample, its threshold re-tuned on the resample's dev
    rows (see the module docstring). Every run sees the same resampled rows, so the draws of two
    runs are paired: subtract them for a delta's distribution."""
    n_resamples = _check_resamples(n_resamples)
    n_dev = rows.dev_labels.shape[0]
    n_scored = rows.test_labels.shape[0] if rows.has_test else n_dev
    draws = {name: MetricDraws(np.empty(n_resamples), np.empty(n_resamples)) for name in runs}
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CELLS // max(n_dev, n_scored))
    for start in range(0, n_resamples, chunk):
        m = min(chunk, n_resamples - start)
        dev_weights = _resample_counts(rng, m, n_dev)
        if rows.has_test:
            score_weights = auc_weights = _resample_counts(rng, m, n_scored)
        else:  # cross-fit: tuned in the bag, scored out of it; ROC-AUC needs no threshold
            score_weights, auc_weights = (dev_weights == 0).astype(np.int64), dev_weights
        for name, run in runs.items():
            f1, auc = _f1_and_auc(rows, run, dev_weights, score_weights, auc_weights)
            draws[name].f1[start : start + m] = f1
            draws[name].roc_auc[start : start + m] = auc
    return draws


def hierarchical_mean(member_draws: list[MetricDraws], seed: int = 0) -> MetricDraws:
    """The mean over runs that differ only by seed, per resample, with the seeds themselves
    resampled (with replacement) in each resample. One run: its own draws."""
    if len(member_draws) == 1:
        return member_draws[0]
    n_resamples = member_draws[0].f1.shape[0]
    picks = np.random.default_rng(seed).integers(0, len(member_draws), size=(n_resamples, len(member_draws)))
    columns = np.arange(n_resamples)[:, None]

    def mean_of(metric: str) -> np.ndarray:
        stacked = np.stack([d.get(metric) for d in member_draws])  # (members, resamples)
        return stacked[picks, columns].mean(axis=1)

    return MetricDraws(*(mean_of(metric) for metric in METRICS))


def percentile_interval(draws: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The central `confidence` interval of the draws (NaN draws ignored; NaNs when none is left)."""
    alpha = 1.0 - _check_confidence(confidence)
    finite = np.asarray(draws, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def delta_summary(point_b: float, point_a: float, draws_b: np.ndarray, draws_a: np.ndarray,
                  confidence: float = 0.95) -> dict[str, float]:
    """b - a on the full rows, its paired interval, and the share of resamples where b beats a."""
    deltas = np.asarray(draws_b) - np.asarray(draws_a)
    low, high = percentile_interval(deltas, confidence)
    finite = deltas[np.isfinite(deltas)]
    return {"delta": float(point_b - point_a), "ci_low": low, "ci_high": high,
            "p_better": float(np.mean(finite > 0)) if finite.size else float("nan")}
