"""Three roles for evaluation rows: training rows fit the model; dev rows stop, tune the threshold
and select runs; test rows, when the run has them, only report, with dev's threshold applied
unchanged. A run's evaluation here: thresholds tuned on dev, then every role's report, MLflow
metrics (`dev_*`, `test_*`) and artifacts (`<role>_predictions.jsonl`, plots, `metrics.json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset

from relevance.evaluation.metrics import binary_metrics, evaluation_report, flatten_for_logging
from relevance.evaluation.plots import plot_confusion_matrix, plot_pr_curve
from relevance.evaluation.threshold import ThresholdPolicy, Thresholds, tune_thresholds

TUNING_ROLE = "dev"  # the rows thresholds are tuned on and runs are selected on
REPORTING_ROLE = "test"  # the rows reported only


@dataclass
class RoleEvaluation:
    role: str
    table: Dataset  # the rows as scored (inputs after the run's input strategies)
    scores: np.ndarray
    report: dict  # relevance.evaluation.metrics.evaluation_report
    metrics: dict[str, float]  # the report flattened for MLflow, `<role>_*`

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.table["label"])


@dataclass
class RunEvaluation:
    thresholds: Thresholds
    policy: ThresholdPolicy
    roles: list[RoleEvaluation]  # dev, then test when the run has one
    metrics: dict[str, float]  # every role's metrics and the tuned thresholds


def evaluate_role(role: str, table: Dataset, scores: np.ndarray, thresholds: Thresholds,
                  train_languages: list[str]) -> RoleEvaluation:
    """One role's report at the run's thresholds, flattened as `<role>_*` metrics, plus F1,
    precision and recall at 0.5 and F1 at the global threshold (beside per-language thresholds)."""
    labels = np.asarray(table["label"])
    report = evaluation_report(labels, scores, table["language"], thresholds.for_languages(table["language"]),
                               train_languages)
    metrics = flatten_for_logging(report, role)
    at_default = binary_metrics(labels, scores, 0.5)
    metrics.update({f"{role}_{key}_at_0.5": at_default[key] for key in ("f1", "precision", "recall")})
    metrics[f"{role}_f1_global_threshold"] = binary_metrics(labels, scores, thresholds.global_threshold)["f1"]
    return RoleEvaluation(role, table, scores, report, metrics)


def threshold_metrics(thresholds: Thresholds) -> dict[str, float]:
    """`dev_threshold` (the global one) and `dev_threshold_lang_<code>` for the languages with their own."""
    return {f"{TUNING_ROLE}_threshold": thresholds.global_threshold,
            **{f"{TUNING_ROLE}_threshold_lang_{lang}": value for lang, value in thresholds.per_language.items()}}


def evaluate_run(policy: ThresholdPolicy, tables: dict[str, Dataset], scores: dict[str, np.ndarray],
                 train_languages: list[str]) -> RunEvaluation:
    """Tune the thresholds on dev (`tables["dev"]`), then report every role at them."""
    dev = tables[TUNING_ROLE]
    thresholds = tune_thresholds(dev["label"], scores[TUNING_ROLE], dev["language"], policy)
    roles = [evaluate_role(role, table, scores[role], thresholds, train_languages) for role, table in tables.items()]
    metrics = {name: value for role in roles for name, value in role.metrics.items()}
    metrics.update(threshold_metrics(thresholds))
    return RunEvaluation(thresholds, policy, roles, metrics)


def write_evaluation(evaluation: RunEvaluation, eval_dir: Path) -> Path:
    """Per role: the rows with `score` and `prediction` (`<role>_predictions.jsonl`), a confusion
    matrix and a PR curve; every role's report and the thresholds in `metrics.json`."""
    eval_dir.mkdir(parents=True, exist_ok=True)
    for role in evaluation.roles:
        row_thresholds = evaluation.thresholds.for_languages(role.table["language"])
        predictions = role.table.to_pandas()
        predictions["score"] = role.scores
        predictions["prediction"] = (role.scores >= row_thresholds).astype(int)
        predictions.to_json(eval_dir / f"{role.role}_predictions.jsonl", orient="records", lines=True,
                            force_ascii=False)
        plot_confusion_matrix(role.labels, role.scores, row_thresholds, eval_dir / f"{role.role}_confusion_matrix.png",
                              f"{role.role} confusion matrix")
        plot_pr_curve(role.labels, role.scores, eval_dir / f"{role.role}_pr_curve.png", f"{role.role} precision-recall",
                      threshold=row_thresholds)
    summary = {role.role: role.report for role in evaluation.roles}
    summary["thresholds"] = {"mode": evaluation.policy.mode, "global": evaluation.thresholds.global_threshold,
                             "per_language": dict(evaluation.thresholds.per_language)}
    (eval_dir / "metrics.json").write_text(json.dumps(summary, indent=2, default=float))
    return eval_dir
