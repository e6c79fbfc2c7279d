"""Paired bootstrap intervals for comparing runs on the same rows.

`retuned_draws` is what `relevance.compare` uses: every resample draws dev rows and test rows
(the same rows for every run: pairing), re-tunes each run's threshold on the dev resample exactly
as the run tuned it (`relevance.evaluation.threshold`, global or per language), then scores F1
and ROC-AUC on the test resample. Rows are drawn by query (cluster): a query's rows share its
difficulty and are scored by the same model, so they are not independent, and drawing them one by
one makes the interval too narrow. Each resample draws queries with replacement and every row of a
drawn query comes along (`EvaluationRows` carries each row's cluster; rows without one are their
own cluster, which is the row bootstrap). The interval so includes the noise of choosing the threshold,
which a fixed-threshold bootstrap (`paired_bootstrap_delta`) leaves out and so is too narrow.
Runs without a test split are cross-fitted instead: the threshold is tuned on the dev resample
and F1 is scored on the dev rows that resample left out (out of bag).

`hierarchical_mean` averages runs that differ only by their seed: each resample also draws the
seeds with replacement (then the queries, shared by every run), so a group's interval holds
seed-to-seed variation too. `bootstrap_p_value` turns a delta's draws into a two-sided p-value.
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
    "bootstrap_p_value",
    "cluster_codes",
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


def _cluster_resample_counts(rng: np.random.Generator, m: int, clusters: np.ndarray) -> np.ndarray:
    """(m, rows): each row's weight in each of m resamples that draw the clusters (codes 0..k-1)
    with replacement, k of them; a row counts as often as its cluster was drawn. With every row its
    own cluster (codes 0..n-1 in order) this is `_resample_counts`, draw for draw."""
    per_cluster = _resample_counts(rng, m, int(clusters.max()) + 1 if clusters.size else 0)
    return per_cluster[:, clusters]


def cluster_codes(keys: Any) -> np.ndarray | None:
    """Each row's cluster as a code 0..k-1 (in order of first appearance) from its key (a query's
    normalised text); None without keys, or when any row lacks one (then rows are resampled alone)."""
    if keys is None:
        return None
    values = np.asarray(keys, dtype=object)
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in values):
        return None
    _, first, codes = np.unique(values.astype(str), return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # renumber by first appearance: stable and readable
    return order[codes.reshape(-1)].astype(np.int64)


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
    test (F1 is reported there), or no test (cross-fit on dev). `dev_clusters` / `test_clusters`:
    each row's query as a code 0..k-1 (`cluster_codes`), drawn together; None: each row alone."""

    dev_labels: np.ndarray
    dev_languages: np.ndarray
    test_labels: np.ndarray | None = None
    test_languages: np.ndarray | None = None
    dev_clusters: np.ndarray | None = None
    test_clusters: np.ndarray | None = None

    @classmethod
    def of(cls, dev_labels: Any, dev_languages: Any, test_labels: Any = None,
           test_languages: Any = None, dev_queries: Any = None, test_queries: Any = None) -> EvaluationRows:
        """From columns; `dev_queries` / `test_queries` are the rows' cluster keys (normalised queries)."""
        dev_y = np.asarray(dev_labels).astype(np.int64)
        test_y = None if test_labels is None else np.asarray(test_labels).astype(np.int64)
        return cls(dev_y, _languages_array(dev_languages, dev_y.shape[0]), test_y,
                   None if test_y is None else _languages_array(test_languages, test_y.shape[0]),
                   cluster_codes(dev_queries), None if test_y is None else cluster_codes(test_queries))

    @property
    def has_test(self) -> bool:
        return self.test_labels is not None

    @property
    def clustered(self) -> bool:
        """Whether every side the bootstrap draws has its rows' queries."""
        return self.dev_clusters is not None and (not self.has_test or self.test_clusters is not None)

    def scored_size(self) -> tuple[int, int]:
        """(rows, clusters) where metrics are measured: test, else dev; clusters = rows without queries."""
        labels, clusters = (self.test_labels, self.test_clusters) if self.has_test else \
            (self.dev_labels, self.dev_clusters)
        n = int(labels.shape[0])
        return n, (int(clusters.max()) + 1 if clusters is not None and n else n)

    def resample_clusters(self, cluster: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(dev, scored side) cluster codes the bootstrap draws: the queries, or each row alone
        (`cluster=False`, or a side without queries)."""
        def codes(clusters: np.ndarray | None, n: int) -> np.ndarray:
            return clusters if cluster and clusters is not None else np.arange(n, dtype=np.int64)

        dev = codes(self.dev_clusters, self.dev_labels.shape[0])
        return dev, (codes(self.test_clusters, self.test_labels.shape[0]) if self.has_test else dev)


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
                  seed: int = 0, cluster: bool = True) -> dict[str, MetricDraws]:
    """Each run's F1 and ROC-AUC in every resample, its threshold re-tuned on the resample's dev
    rows (see the module docstring). Every run sees the same resampled rows, so the draws of two
    runs are paired: subtract them for a delta's distribution. `cluster`: draw whole queries (rows
    without queries are drawn alone); False draws rows one by one, which is too narrow when a
    query's rows are correlated, and is kept to show how much."""
    n_resamples = _check_resamples(n_resamples)
    dev_clusters, scored_clusters = rows.resample_clusters(cluster)
    n_dev, n_scored = dev_clusters.shape[0], scored_clusters.shape[0]
    draws = {name: MetricDraws(np.empty(n_resamples), np.empty(n_resamples)) for name in runs}
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CELLS // max(n_dev, n_scored))
    for start in range(0, n_resamples, chunk):
        m = min(chunk, n_resamples - start)
        dev_weights = _cluster_resample_counts(rng, m, dev_clusters)
        if rows.has_test:
            score_weights = auc_weights = _cluster_resample_counts(rng, m, scored_clusters)
        else:  # cross-fit: tuned in the bag, scored out of it; ROC-AUC needs no threshold
            score_weights, auc_weights = (dev_weights == 0).astype(np.int64), dev_weights
        for name, run in runs.items():
            f1, auc = _f1_and_auc(rows, run, dev_weights, score_weights, auc_weights)
            draws[name].f1[start : start + m] = f1
            draws[name].roc_auc[start : start + m] = auc
    return draws


def hierarchical_mean(member_draws: list[MetricDraws], seed: int = 0) -> MetricDraws:
    """The mean over runs that differ only by seed, per resample, with the seeds themselves
    resampled (with replacement) in each resample; the queries were drawn by `retuned_draws`, the
    same for every run. One run: its own draws."""
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


def bootstrap_p_value(deltas: Any) -> float:
    """Two-sided bootstrap p-value of "no difference": 2 × the smaller share of draws on either
    side of 0 (draws at 0 count on both sides), at most 1, and at least 1/(draws + 1), since a
    finite bootstrap cannot show a smaller p. NaN draws are ignored; NaN when none is left."""
    finite = np.asarray(deltas, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return float("nan")
    two_sided = 2.0 * min(float(np.mean(finite <= 0)), float(np.mean(finite >= 0)))
    return float(min(1.0, max(two_sided, 1.0 / (finite.size + 1))))


def delta_summary(point_b: float, point_a: float, draws_b: np.ndarray, draws_a: np.ndarray,
                  confidence: float = 0.95) -> dict[str, float]:
    """b - a on the full rows, its paired interval, the share of resamples where b beats a, and the
    two-sided bootstrap p-value (`bootstrap_p_value`)."""
    deltas = np.asarray(draws_b) - np.asarray(draws_a)
    low, high = percentile_interval(deltas, confidence)
    finite = deltas[np.isfinite(deltas)]
    return {"delta": float(point_b - point_a), "ci_low": low, "ci_high": high,
            "p_better": float(np.mean(finite > 0)) if finite.size else float("nan"),
            "p": bootstrap_p_value(deltas)}
