"""Evaluation: metrics, thresholds (global or per language), the three roles of rows (train, dev,
test), paired bootstrap intervals, plots."""

from relevance.evaluation.bootstrap import (
    EvaluationRows,
    MetricDraws,
    RunScores,
    delta_summary,
    hierarchical_mean,
    paired_bootstrap_delta,
    percentile_interval,
    point_estimates,
    retuned_draws,
)
from relevance.evaluation.metrics import (
    binary_metrics,
    evaluation_report,
    f1_all_relevant,
    flatten_for_logging,
    per_language_metrics,
)
from relevance.evaluation.plots import (
    plot_confusion_matrix,
    plot_per_language_f1,
    plot_pr_curve,
    plot_pr_curves,
)
from relevance.evaluation.threshold import (
    ThresholdPolicy,
    Thresholds,
    load_thresholds,
    save_threshold,
    tune_threshold,
    tune_thresholds,
)

__all__ = [
    "EvaluationRows",
    "MetricDraws",
    "RunScores",
    "ThresholdPolicy",
    "Thresholds",
    "binary_metrics",
    "delta_summary",
    "evaluation_report",
    "f1_all_relevant",
    "flatten_for_logging",
    "hierarchical_mean",
    "load_thresholds",
    "paired_bootstrap_delta",
    "per_language_metrics",
    "percentile_interval",
    "plot_confusion_matrix",
    "plot_per_language_f1",
    "plot_pr_curve",
    "plot_pr_curves",
    "point_estimates",
    "retuned_draws",
    "save_threshold",
    "tune_threshold",
    "tune_thresholds",
]
