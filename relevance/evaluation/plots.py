"""PNG plots for evaluation artifacts.

Figures are built with ``matplotlib.figure.Figure`` directly (rendered by the
Agg canvas), never through pyplot, so no global figure state is created and
nothing needs a GUI backend.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_curve

from relevance.evaluation.metrics import _check_inputs

__all__ = ["plot_confusion_matrix", "plot_pr_curve", "plot_pr_curves", "plot_per_language_f1"]

_CLASS_NAMES = ("not relevant", "relevant")


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, format="png", bbox_inches="tight")
    finally:
        fig.clear()
    return path


def _pr_points(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(precision, recall, average precision); AP is NaN without positives."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when y has no positives
        precision, recall, _ = precision_recall_curve(y, s, pos_label=1)
        ap = float(average_precision_score(y, s)) if y.any() else float("nan")
    return precision, recall, ap


def _threshold_text(threshold: Any) -> str:
    """`threshold=0.437`, or `per-language thresholds` when rows have different ones."""
    t = np.asarray(threshold, dtype=np.float64)
    return f"threshold={float(t.flat[0]):.3f}" if np.all(t == t.flat[0]) else "per-language thresholds"


def _operating_point(y: np.ndarray, s: np.ndarray, threshold: Any) -> tuple[float, float]:
    pred = s >= threshold
    tp = float(np.sum(pred & (y == 1)))
    precision = tp / pred.sum() if pred.any() else 0.0
    recall = tp / y.sum() if y.any() else 0.0
    return float(precision), float(recall)


def _style_pr_axes(ax: Any, title: str) -> None:
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")


def plot_confusion_matrix(
    labels: Any, scores: Any, threshold: Any, path: str | os.PathLike[str], title: str
) -> Path:
    """Confusion matrix (rows = true, columns = predicted) with annotated counts; `threshold` is
    one number or one per row."""
    y, s = _check_inputs(labels, scores)
    cm = confusion_matrix(y, (s >= threshold).astype(np.int64), labels=[0, 1])
    fig = _new_figure((4.5, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(cm, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    peak = cm.max() if cm.max() > 0 else 1
    for i in range(2):
        for j in range(2):
            ax.text(
                j, i, f"{cm[i, j]:d}", ha="center", va="center",
                color="white" if cm[i, j] > peak / 2 else "black", fontsize=12,
            )
    ax.set_xticks([0, 1], labels=list(_CLASS_NAMES))
    ax.set_yticks([0, 1], labels=list(_CLASS_NAMES))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\n({_threshold_text(threshold)})")
    return _save(fig, path)


def plot_pr_curve(
    labels: Any,
    scores: Any,
    path: str | os.PathLike[str],
    title: str,
    threshold: Any = None,
) -> Path:
    """Precision-recall curve with AP in the legend; marks the operating point (`threshold`: one
    number or one per row)."""
    y, s = _check_inputs(labels, scores)
    precision, recall, ap = _pr_points(y, s)
    fig = _new_figure((5.0, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(recall, precision, drawstyle="steps-post", label=f"PR (AP={ap:.3f})")
    ax.axhline(float(y.mean()), color="grey", linestyle=":", label=f"base rate={y.mean():.3f}")
    if threshold is not None:
        p, r = _operating_point(y, s, threshold)
        ax.plot([r], [p], "o", color="red", label=f"{_threshold_text(threshold)} (P={p:.3f}, R={r:.3f})")
    _style_pr_axes(ax, title)
    return _save(fig, path)


def plot_pr_curves(
    curves: Mapping[str, tuple[Any, Any]], path: str | os.PathLike[str], title: str
) -> Path:
    """Overlay PR curves of several runs: ``{name: (labels, scores)}``."""
    if not curves:
        raise ValueError("plot_pr_curves needs at least one curve")
    fig = _new_figure((5.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for name, (labels, scores) in curves.items():
        y, s = _check_inputs(labels, scores, name=f"scores of {name!r}")
        precision, recall, ap = _pr_points(y, s)
        ax.plot(recall, precision, drawstyle="steps-post", label=f"{name} (AP={ap:.3f})")
    _style_pr_axes(ax, title)
    return _save(fig, path)


def plot_per_language_f1(
    table: Mapping[str, Mapping[str, float]], path: str | os.PathLike[str], title: str
) -> Path:
    """Grouped bars: one group per language, one bar per run/mix (outer key).

    Languages missing for a run are left empty rather than drawn as zero.
    """
    if not table:
        raise ValueError("plot_per_language_f1 needs at least one run")
    runs = list(table)
    languages = sorted({lang for row in table.values() for lang in row})
    x = np.arange(len(languages), dtype=float)
    width = 0.8 / len(runs)
    fig = _new_figure((max(5.0, 0.6 * len(languages) * max(1, len(runs)) / 2 + 3), 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for k, run in enumerate(runs):
        values = np.array([float(table[run].get(lang, np.nan)) for lang in languages])
        ax.bar(x - 0.4 + width * (k + 0.5), values, width=width, label=str(run))
    ax.set_xticks(x, labels=languages)
    ax.set_xlabel("language")
    ax.set_ylabel("F1 (relevant)")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small", ncol=min(len(runs), 3))
    return _save(fig, path)
