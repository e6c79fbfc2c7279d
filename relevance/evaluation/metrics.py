"""Binary relevance metrics.

The competition metric is F1 of the positive class (label 1, "relevant").
``scores`` are probabilities of the positive class; a row is predicted
positive when ``score >= threshold``. A threshold is one number, or one per
row (per-language thresholds: `relevance.evaluation.threshold.Thresholds`).
Every F1 comes with the F1 of predicting everything relevant (``f1_all_relevant``,
what a model that learned nothing scores) and the lift over it (``f1_lift``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

__all__ = [
    "binary_metrics",
    "f1_all_relevant",
    "per_language_metrics",
    "evaluation_report",
    "flatten_for_logging",
]

ThresholdLike = float | np.ndarray  # one threshold, or one per row

# Per-language / seen / unseen blocks are logged with this subset to keep the
# number of MLflow metrics manageable (overall gets every key).
_GROUP_KEYS = ("f1", "precision", "recall", "roc_auc", "support")

_UNSAFE_METRIC_CHARS = re.compile(r"[^A-Za-z0-9_\-. /]")


def _check_inputs(labels: Any, scores: Any, name: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    """Return (labels as int64 0/1, scores as float64) after validating them."""
    y = np.asarray(labels).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape[0] != s.shape[0]:
        raise ValueError(f"labels has {y.shape[0]} rows but {name} has {s.shape[0]}")
    if y.shape[0] == 0:
        raise ValueError("cannot evaluate an empty set of rows")
    if not np.all((y == 0) | (y == 1)):
        bad = sorted({str(v) for v in np.unique(y) if v not in (0, 1)})[:5]
        raise ValueError(f"labels must be 0/1, found {bad}")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return y.astype(np.int64), s


def _row_thresholds(threshold: ThresholdLike, n: int) -> np.ndarray:
    """The threshold of each of `n` rows."""
    t = np.asarray(threshold, dtype=np.float64)
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != n):
        raise ValueError(f"threshold must be one number or one per row ({n}), got shape {t.shape}")
    return np.broadcast_to(t, (n,))


def f1_from_counts(tp: Any, predicted_positive: Any, positives: Any) -> np.ndarray:
    """2TP / (predicted positive + actual positive), elementwise; 0 without a true positive
    (sklearn's zero_division=0). Integer counts keep equal F1s exactly equal."""
    tp = np.asarray(tp)
    denom = np.asarray(predicted_positive) + np.asarray(positives)
    return np.where(tp > 0, 2.0 * tp / np.where(denom > 0, denom, 1), 0.0)


def f1_all_relevant(labels: Any) -> float:
    """F1 of predicting every row relevant: 2P / (2P + N), the floor a useful model beats."""
    y = np.asarray(labels).ravel()
    positives = float(np.sum(y == 1))
    return 2 * positives / (2 * positives + float(np.sum(y == 0))) if positives else 0.0


def binary_metrics(labels: Any, scores: Any, threshold: ThresholdLike) -> dict[str, float]:
    """Positive-class metrics at ``threshold`` (all values are plain floats).

    ``roc_auc`` is NaN when only one class is present in ``labels``; ``threshold`` is NaN
    when the rows have different thresholds (per language).
    """
    y, s = _check_inputs(labels, scores)
    t = _row_thresholds(threshold, y.shape[0])
    pred = (s >= t).astype(np.int64)
    if np.unique(y).size < 2:
        auc = float("nan")
    else:
        auc = float(roc_auc_score(y, s))
    f1 = float(f1_score(y, pred, pos_label=1, zero_division=0))
    floor = f1_all_relevant(y)
    return {
        "f1": f1,
        "precision": float(precision_score(y, pred, pos_label=1, zero_division=0)),
        "recall": float(recall_score(y, pred, pos_label=1, zero_division=0)),
        "accuracy": float(accuracy_score(y, pred)),
        "roc_auc": auc,
        "positive_rate": float(pred.mean()),
        "support": float(y.shape[0]),
        "threshold": float(t[0]) if np.all(t == t[0]) else float("nan"),
        "f1_all_relevant": floor,
        "f1_lift": f1 - floor,
    }


def _languages_array(languages: Any, n: int) -> np.ndarray:
    langs = np.asarray([str(x) for x in languages], dtype=object)
    if langs.shape[0] != n:
        raise ValueError(f"labels has {n} rows but languages has {langs.shape[0]}")
    return langs


def per_language_metrics(
    labels: Any, scores: Any, languages: Any, threshold: ThresholdLike
) -> dict[str, dict[str, float]]:
    """``binary_metrics`` for each language, keyed and ordered by language code."""
    y, s = _check_inputs(labels, scores)
    langs = _languages_array(languages, y.shape[0])
    t = _row_thresholds(threshold, y.shape[0])
    out: dict[str, dict[str, float]] = {}
    for lang in sorted(set(langs.tolist())):
        mask = langs == lang
        out[lang] = binary_metrics(y[mask], s[mask], t[mask])
    return out


def evaluation_report(
    labels: Any,
    scores: Any,
    languages: Any,
    threshold: ThresholdLike,
    train_languages: Iterable[str],
) -> dict[str, Any]:
    """Overall, per-language and seen/unseen-language metrics.

    A dev language is "unseen" when it does not occur in ``train_languages``;
    ``unseen``/``seen`` are ``None`` when the corresponding row set is empty.
    """
    y, s = _check_inputs(labels, scores)
    langs = _languages_array(languages, y.shape[0])
    t = _row_thresholds(threshold, y.shape[0])
    train = {str(x) for x in train_languages}
    unseen_langs = sorted(set(langs.tolist()) - train)
    unseen_set = set(unseen_langs)
    unseen_mask = np.fromiter((lang in unseen_set for lang in langs), dtype=bool, count=langs.shape[0])

    def _subset(mask: np.ndarray) -> dict[str, float] | None:
        return binary_metrics(y[mask], s[mask], t[mask]) if mask.any() else None

    return {
        "overall": binary_metrics(y, s, t),
        "per_language": per_language_metrics(y, s, langs, t),
        "unseen_languages": unseen_langs,
        "unseen": _subset(unseen_mask),
        "seen": _subset(~unseen_mask),
    }


def _metric_name(*parts: str) -> str:
    name = "_".join(p for p in parts if p)
    return _UNSAFE_METRIC_CHARS.sub("_", name)


def _finite_items(metrics: Mapping[str, Any], keys: Sequence[str] | None = None):
    for key in keys if keys is not None else list(metrics):
        if key not in metrics or metrics[key] is None:
            continue
        value = float(metrics[key])
        if math.isfinite(value):
            yield key, value


def flatten_for_logging(report: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """Flatten an ``evaluation_report`` into MLflow metric names.

    ``{prefix}_{metric}`` for overall, ``{prefix}_{metric}_lang_{code}`` per
    language and ``{prefix}_unseen_{metric}`` / ``{prefix}_seen_{metric}``.
    Non-finite values (e.g. roc_auc on a single-class subset) are dropped so
    charts stay clean; characters MLflow rejects are replaced by ``_``.
    """
    flat: dict[str, float] = {}
    for key, value in _finite_items(report.get("overall") or {}):
        flat[_metric_name(prefix, key)] = value
    for lang, metrics in (report.get("per_language") or {}).items():
        for key, value in _finite_items(metrics, _GROUP_KEYS):
            flat[_metric_name(prefix, key, "lang", str(lang))] = value
    for group in ("unseen", "seen"):
        metrics = report.get(group)
        if not metrics:
            continue
        for key, value in _finite_items(metrics, _GROUP_KEYS):
            flat[_metric_name(prefix, group, key)] = value
    return flat
