"""Decision-threshold tuning and persistence (``threshold.json``)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_curve

from relevance.evaluation.metrics import _check_inputs
from relevance.files import atomic_open

__all__ = ["tune_threshold", "save_threshold", "load_threshold", "THRESHOLD_FILENAME"]

THRESHOLD_FILENAME = "threshold.json"
_DEFAULT_THRESHOLD = 0.5


def _f1_at(y: np.ndarray, s: np.ndarray, threshold: float) -> float:
    pred = s >= threshold
    tp = float(np.sum(pred & (y == 1)))
    denom = float(pred.sum() + (y == 1).sum())
    return 2.0 * tp / denom if denom > 0 else 0.0


def tune_threshold(labels: Any, scores: Any) -> tuple[float, float]:
    """Threshold maximising positive-class F1 on these rows, and that F1.

    Candidates are the distinct scores (prediction is ``score >= threshold``,
    so any other threshold gives the same predictions as one of them).
    Ties are broken towards the candidate closest to 0.5: equally good
    thresholds at the extremes usually sit on a handful of rows and transfer
    worse to unseen data, while 0.5 is the calibrated default, so this is the
    more stable choice. Degenerate inputs (no positives, or all scores equal)
    return ``(0.5, F1 at 0.5)``.
    """
    y, s = _check_inputs(labels, scores)
    n_pos = int(y.sum())
    if n_pos == 0 or np.all(s == s[0]):
        return _DEFAULT_THRESHOLD, _f1_at(y, s, _DEFAULT_THRESHOLD)

    precision, recall, thresholds = precision_recall_curve(y, s, pos_label=1)
    # The last (precision=1, recall=0) point has no threshold.
    precision, recall = precision[:-1], recall[:-1]
    # Recover integer counts so F1 is computed exactly as 2TP/(2TP+FP+FN):
    # ties between candidates then compare equal instead of differing by
    # floating-point noise from 2PR/(P+R).
    tp = np.rint(recall * n_pos)
    with np.errstate(divide="ignore", invalid="ignore"):
        predicted_pos = np.where(precision > 0, np.rint(tp / precision), 0.0)
    denom = predicted_pos + n_pos
    f1 = np.where(tp > 0, 2.0 * tp / np.where(denom > 0, denom, 1.0), 0.0)

    best = f1.max()
    candidates = np.flatnonzero(f1 == best)
    pick = candidates[np.argmin(np.abs(thresholds[candidates] - _DEFAULT_THRESHOLD))]
    return float(thresholds[pick]), float(best)


def save_threshold(
    directory: str | os.PathLike[str], threshold: float, metric_name: str, metric_value: float
) -> Path:
    """Atomically write ``directory/threshold.json`` and return its path."""
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / THRESHOLD_FILENAME
    payload = {"threshold": threshold, "tuned_on": str(metric_name), "value": float(metric_value)}
    with atomic_open(path) as fh:
        json.dump(payload, fh, indent=2)
        fh.write("\n")
    return path


def load_threshold(directory: str | os.PathLike[str]) -> float:
    """Read the threshold from ``directory/threshold.json``.

    Raises ValueError naming the file (and the field) when the file is
    missing, is not valid JSON, or has no finite numeric ``threshold``.
    """
    path = Path(directory) / THRESHOLD_FILENAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: file not found (expected field 'threshold')") from exc
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON, cannot read field 'threshold': {exc}") from exc
    if not isinstance(payload, dict) or "threshold" not in payload:
        raise ValueError(f"{path}: missing field 'threshold'")
    value = payload["threshold"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{path}: field 'threshold' must be a finite number, got {value!r}")
    return float(value)
