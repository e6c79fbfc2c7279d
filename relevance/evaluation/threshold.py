"""Decision thresholds: tuned on dev F1 (one global threshold, optionally one per language),
saved with the adapter (``threshold.json``), applied unchanged to test and by `relevance.predict`.

Tuning works on weighted rows: a weight matrix (resamples × rows) says how many times each row
counts in each resample. The same code tunes once on the dev rows (weights of one: `tune_threshold`,
`tune_thresholds`) and a thousand times inside the comparison's bootstrap
(`relevance.evaluation.bootstrap`), so an interval re-tunes exactly as the run tuned.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from relevance.evaluation.threshold_modes import THRESHOLD_MODES
from relevance.evaluation.metrics import _check_inputs, _languages_array, f1_from_counts
from relevance.files import atomic_open

__all__ = [
    "THRESHOLD_FILENAME",
    "ThresholdPolicy",
    "Thresholds",
    "TunedThresholds",
    "best_thresholds",
    "load_thresholds",
    "save_threshold",
    "tune_threshold",
    "tune_thresholds",
    "tune_thresholds_weighted",
]

THRESHOLD_FILENAME = "threshold.json"
_DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class ThresholdPolicy:
    """How a run tunes its threshold on dev (`conf/evaluation`): one global threshold, or one per
    language for the languages with at least `min_rows_per_language` dev rows of both labels (the
    others, and languages absent from dev, use the global one)."""

    mode: str = "global"
    min_rows_per_language: int = 50

    def __post_init__(self):
        if self.mode not in THRESHOLD_MODES:
            raise ValueError(f"threshold mode {self.mode!r}: use one of {THRESHOLD_MODES}")

    @classmethod
    def from_config(cls, evaluation_cfg: Mapping[str, Any] | None) -> ThresholdPolicy:
        """From a run's `evaluation` config (or its logged params); runs older than the key tuned globally."""
        evaluation_cfg = evaluation_cfg or {}
        return cls(str(evaluation_cfg.get("threshold") or "global"),
                   int(evaluation_cfg.get("min_rows_per_language") or cls.min_rows_per_language))


@dataclass(frozen=True)
class Thresholds:
    """A run's tuned thresholds: the global one, and the languages that have their own."""

    global_threshold: float
    per_language: Mapping[str, float] = field(default_factory=dict)

    def for_languages(self, languages: Any) -> np.ndarray:
        """Each row's threshold: its language's own, else the global one."""
        return np.array([self.per_language.get(str(lang), self.global_threshold) for lang in languages],
                        dtype=np.float64)


@dataclass
class TunedThresholds:
    """Thresholds tuned once per resample: arrays of shape (resamples,)."""

    global_threshold: np.ndarray
    per_language: dict[str, np.ndarray]  # NaN where the language used the global threshold in that resample

    def for_languages(self, languages: Any) -> np.ndarray:
        """(resamples × rows) thresholds: each row's language's own, else the global one."""
        langs = np.asarray([str(lang) for lang in languages], dtype=object)
        table = np.repeat(self.global_threshold[:, None], langs.shape[0], axis=1)
        for lang, values in self.per_language.items():
            columns = langs == lang
            if columns.any():
                table[:, columns] = np.where(np.isnan(values), self.global_threshold, values)[:, None]
        return table

    def first(self) -> Thresholds:
        return Thresholds(float(self.global_threshold[0]),
                          {lang: float(v[0]) for lang, v in self.per_language.items() if np.isfinite(v[0])})


def _weights(weights: Any, n: int) -> np.ndarray:
    w = np.asarray(weights)
    if w.ndim != 2 or w.shape[1] != n:
        raise ValueError(f"weights must have shape (resamples, {n}), got {w.shape}")
    if not np.issubdtype(w.dtype, np.integer):
        raise ValueError("weights must be integer row counts (exact F1 ties)")
    return w.astype(np.int64, copy=False)


def best_thresholds(labels: Any, scores: Any, weights: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `weights` (resamples × rows, integer counts), the threshold maximising positive-class
    F1 on the weighted rows, and that F1.

    Candidates are the distinct scores of the rows present (weight > 0): prediction is
    ``score >= threshold``, so any other threshold predicts as one of them. Ties go to the
    candidate closest to 0.5 (the lower one when two are equally close): equally good thresholds at
    the extremes usually sit on a handful of rows and transfer worse to unseen data, while 0.5 is
    the calibrated default. Degenerate resamples (no positives, or one distinct score) get 0.5 and
    the F1 at 0.5. Counts are integers, so equal F1s compare equal.
    """
    y, s = _check_inputs(labels, scores)
    w = _weights(weights, y.shape[0])
    order = np.argsort(-s, kind="stable")
    s_desc, y_desc, w_desc = s[order], y[order], w[:, order]
    last_of_each_score = np.flatnonzero(np.r_[s_desc[1:] != s_desc[:-1], True])
    candidates = s_desc[last_of_each_score]  # distinct scores, high to low
    predicted_positive = np.cumsum(w_desc, axis=1)[:, last_of_each_score]
    tp = np.cumsum(w_desc * y_desc, axis=1)[:, last_of_each_score]
    positives = tp[:, -1:]
    present = np.diff(predicted_positive, axis=1, prepend=0) > 0
    f1 = np.where(present, f1_from_counts(tp, predicted_positive, positives), -1.0)
    candidates, f1 = candidates[::-1], f1[:, ::-1]  # low to high: the lower of two equally close wins
    best = f1.max(axis=1)
    distance = np.where(f1 == best[:, None], np.abs(candidates - _DEFAULT_THRESHOLD), np.inf)
    thresholds = candidates[np.argmin(distance, axis=1)]

    degenerate = (positives[:, 0] == 0) | (present.sum(axis=1) <= 1)
    if degenerate.any():
        at_default = s >= _DEFAULT_THRESHOLD
        f1_at_default = f1_from_counts(w @ (y * at_default), w @ at_default.astype(np.int64), w @ y)
        thresholds = np.where(degenerate, _DEFAULT_THRESHOLD, thresholds)
        best = np.where(degenerate, f1_at_default, best)
    return thresholds.astype(np.float64), best.astype(np.float64)


def tune_threshold(labels: Any, scores: Any) -> tuple[float, float]:
    """Threshold maximising positive-class F1 on these rows, and that F1 (see `best_thresholds`)."""
    n = np.asarray(labels).ravel().shape[0]
    thresholds, f1 = best_thresholds(labels, scores, np.ones((1, n), dtype=np.int64))
    return float(thresholds[0]), float(f1[0])


def tune_thresholds_weighted(labels: Any, scores: Any, languages: Any, weights: Any,
                             policy: ThresholdPolicy = ThresholdPolicy()) -> TunedThresholds:
    """The policy's thresholds for each resample (row of `weights`). A language gets its own
    threshold in a resample where it has at least `min_rows_per_language` rows, of both labels."""
    y, s = _check_inputs(labels, scores)
    w = _weights(weights, y.shape[0])
    global_threshold, _ = best_thresholds(y, s, w)
    per_language: dict[str, np.ndarray] = {}
    if policy.mode == "per_language":
        langs = _languages_array(languages, y.shape[0])
        for lang in sorted(set(langs.tolist())):
            columns = langs == lang
            rows, positives = w[:, columns].sum(axis=1), w[:, columns] @ y[columns]
            own = (rows >= policy.min_rows_per_language) & (positives > 0) & (positives < rows)
            if own.any():
                tuned, _ = best_thresholds(y[columns], s[columns], w[:, columns])
                per_language[lang] = np.where(own, tuned, np.nan)
    return TunedThresholds(global_threshold, per_language)


def tune_thresholds(labels: Any, scores: Any, languages: Any,
                    policy: ThresholdPolicy = ThresholdPolicy()) -> Thresholds:
    """The policy's thresholds tuned on these rows (dev)."""
    n = np.asarray(labels).ravel().shape[0]
    return tune_thresholds_weighted(labels, scores, languages, np.ones((1, n), dtype=np.int64), policy).first()


def _finite_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def save_threshold(directory: str | os.PathLike[str], thresholds: Thresholds | float, metric_name: str,
                   metric_value: float, policy: ThresholdPolicy = ThresholdPolicy()) -> Path:
    """Atomically write ``directory/threshold.json`` and return its path."""
    if not isinstance(thresholds, Thresholds):
        thresholds = Thresholds(float(thresholds))
    values = [thresholds.global_threshold, *thresholds.per_language.values()]
    if not all(_finite_number(float(v)) for v in values):
        raise ValueError(f"thresholds must be finite, got {thresholds!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / THRESHOLD_FILENAME
    payload = {"threshold": float(thresholds.global_threshold), "tuned_on": str(metric_name),
               "value": float(metric_value), "mode": policy.mode,
               "min_rows_per_language": policy.min_rows_per_language,
               "per_language": {str(k): float(v) for k, v in sorted(thresholds.per_language.items())}}
    with atomic_open(path) as fh:
        json.dump(payload, fh, indent=2)
        fh.write("\n")
    return path


def load_thresholds(directory: str | os.PathLike[str]) -> Thresholds:
    """Read ``directory/threshold.json`` (files written before per-language thresholds have no
    ``per_language``: every language uses the global threshold).

    Raises ValueError naming the file (and the field) when the file is missing, is not valid
    JSON, has no finite numeric ``threshold``, or a ``per_language`` that is not a map of
    language codes to finite numbers.
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
    if not _finite_number(value):
        raise ValueError(f"{path}: field 'threshold' must be a finite number, got {value!r}")
    per_language = payload.get("per_language") or {}
    if not isinstance(per_language, dict) or not all(_finite_number(v) for v in per_language.values()):
        raise ValueError(f"{path}: field 'per_language' must map language codes to finite numbers, "
                         f"got {per_language!r}")
    return Thresholds(float(value), {str(k): float(v) for k, v in per_language.items()})
