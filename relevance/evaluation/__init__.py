"""Evaluation: metrics, threshold tuning, plots and paired bootstrap."""

from relevance.evaluation.bootstrap import paired_bootstrap_delta
from relevance.evaluation.metrics import (
    binary_metrics,
    evaluation_report,
    flatten_for_logging,
    per_language_metrics,
)
from relevance.evaluation.plots import (
    plot_confusion_matrix,
    plot_per_language_f1,
    plot_pr_curve,
    plot_pr_curves,
)
from relevance.evaluation.threshold import load_threshold, save_threshold, tune_threshold

__all__ = [
    "binary_metrics",
    "evaluation_report",
    "flatten_for_logging",
    "load_threshold",
    "paired_bootstrap_delta",
    "per_language_metrics",
    "plot_confusion_matrix",
    "plot_per_language_f1",
    "plot_pr_curve",
    "plot_pr_curves",
    "save_threshold",
    "tune_threshold",
]
