"""A comparison as (header, rows) tables of formatted cells, shared by the terminal report, the
Markdown report and the notebook. Metrics are the reported rows' (test, or dev without a test
split: `Comparison.report_role`), with dev's F1 and ROC-AUC beside."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from relevance.compare.aggregates import MEAN_METRICS, best_labels, mean_tasks, task_column
from relevance.compare.comparison import Comparison

Table = tuple[list[str], list[list[str]]]
REPORTED_METRICS = [("F1", "f1"), ("precision", "precision"), ("recall", "recall"), ("ROC-AUC", "roc_auc"),
                    ("unseen F1", "unseen_f1"), ("F1 lift", "f1_lift")]
DEV_BESIDE = [("dev F1", "dev_f1"), ("dev ROC-AUC", "dev_roc_auc")]
MEAN_HEADERS = {"f1": "mean F1", "precision": "mean precision", "recall": "mean recall"}
DELTA_F1_HEADER = "ΔF1 vs baseline [95% CI]"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.{digits}f}" if isinstance(value, (float, np.floating)) else str(value)


def _interval(value: float, low: float, high: float) -> str:
    """`+0.0123 [-0.0040, +0.0290]`; `n/a` without a value."""
    if not math.isfinite(value):
        return "n/a"
    return f"{value:+.4f} [{low:+.4f}, {high:+.4f}]"


def _delta_cells(row: pd.Series, baseline_note: str = "baseline") -> list[str]:
    """ΔF1 [CI], ΔROC-AUC [CI], P(better): the baseline's row says so."""
    if str(row.get("delta_note") or row.get("note") or "").startswith("baseline"):
        return [baseline_note, "", ""]
    return [_interval(row["delta_f1"], row["ci_low"], row["ci_high"]),
            _interval(row["delta_roc_auc"], row["roc_auc_ci_low"], row["roc_auc_ci_high"]), _fmt(row["p_better"], 3)]


def _language(lang: str, unseen: set[str]) -> str:
    return f"{lang}*" if lang in unseen else lang


def metric_columns(role: str) -> list[tuple[str, str]]:
    """(header, column) of the reported metrics, then dev's beside when reporting test."""
    reported = [(f"{role} {header}", f"{role}_{metric}") for header, metric in REPORTED_METRICS]
    return reported + (DEV_BESIDE if role != "dev" else [])


def run_table(comparison: Comparison) -> Table:
    columns = metric_columns(comparison.report_role)
    header = ["run", "task", "mix", *(h for h, _ in columns), DELTA_F1_HEADER, "ΔROC-AUC [95% CI]", "P(better)",
              "run id"]
    rows = []
    for _, row in comparison.runs.sort_values(["task", "start_time"]).iterrows():
        rows.append([row["label"], row["task"], str(row["augment"]), *(_fmt(row.get(c)) for _, c in columns),
                     *_delta_cells(row), row["run_id"]])
    return header, rows


def _spread(row: pd.Series, metric: str) -> str:
    """`0.7012–0.7240`: the metric's min and max over the group's seeds (one value for one seed)."""
    low, high = row[f"seed_min_{metric}"], row[f"seed_max_{metric}"]
    if not math.isfinite(low):
        return ""
    return _fmt(low) if math.isclose(low, high) else f"{low:.4f}–{high:.4f}"


def _p_cell(row: pd.Series, metric: str) -> str:
    """`0.0120 (0.0360)`: the bootstrap p and, in brackets, Holm's over the task's arms."""
    p, adjusted = row[f"p_{metric}"], row[f"p_adj_{metric}"]
    return f"{p:.4f} ({adjusted:.4f})" if math.isfinite(p) and math.isfinite(adjusted) else ""


def _arm_cells(row: pd.Series, metric: str) -> list[str]:
    """ΔF1 [CI], p (Holm), verdict, P(better) over seed pairs; the baseline group's row says so."""
    if str(row.get("note") or "").startswith("baseline"):
        return ["baseline group", "", "", ""]
    low, high = ("ci_low", "ci_high") if metric == "f1" else (f"{metric}_ci_low", f"{metric}_ci_high")
    return [_interval(row[f"delta_{metric}"], row[low], row[high]), _p_cell(row, metric),
            str(row[f"verdict_{metric}"] or ""), _fmt(row[f"p_better_seed_pairs_{metric}"], 3)]


def groups_table(comparison: Comparison) -> Table:
    """One row per seed group (arm): the mean over its seeds with a 95 % interval over seeds and
    queries, the per-seed spread, and against the baseline's group the delta, p, Holm's p, the
    verdict and P(better) over seed pairs, for F1 then ROC-AUC."""
    role = comparison.report_role
    header = ["seed group", "task", "mix", "runs", "seeds", f"{role} F1 (mean) [95% CI]", "F1 per seed (min–max)",
              "ΔF1 vs baseline group [95% CI]", "F1 p (Holm)", "F1 verdict", "F1 P(better) seed pairs",
              f"{role} ROC-AUC (mean)", "ROC-AUC per seed (min–max)", "ΔROC-AUC [95% CI]", "ROC-AUC p (Holm)",
              "ROC-AUC verdict", "ROC-AUC P(better) seed pairs", "dev F1 (mean)"]
    rows = []
    for _, row in comparison.groups.iterrows():
        f1 = (f"{row['f1']:.4f} [{row['f1_ci_low']:.4f}, {row['f1_ci_high']:.4f}]"
              if math.isfinite(row["f1_ci_low"]) else _fmt(row["f1"]))
        rows.append([row["group"], row["task"], row["mix"], str(row["runs"]), row["seeds"], f1, _spread(row, "f1"),
                     *_arm_cells(row, "f1"), _fmt(row["roc_auc"]), _spread(row, "roc_auc"),
                     *_arm_cells(row, "roc_auc"), _fmt(row["dev_f1"])])
    return header, rows


def language_table(comparison: Comparison, task: str) -> Table:
    table = comparison.per_language[task]
    unseen = set(comparison.unseen.get(task, []))
    header = ["run"] + [_language(lang, unseen) for lang in table.columns]
    rows = [[str(label), *(_fmt(v, 3) for v in values)] for label, values in zip(table.index, table.to_numpy())]
    return header, rows


def winners_table(comparison: Comparison, task: str) -> Table:
    """Per language: the best run chosen on dev, its dev F1 and (when reporting test) its test F1 (the
    range of them when runs tie on dev)."""
    dev = comparison.per_language_dev.get(task, comparison.per_language[task])
    reported = comparison.per_language[task]
    role = comparison.report_role
    unseen = set(comparison.unseen.get(task, []))
    header = ["language", "best run (on dev)", "dev F1"] + ([f"{role} F1"] if role != "dev" else [])
    rows = []
    for lang, winner in comparison.winners[task].items():
        row = [_language(lang, unseen), winner, _fmt(dev[lang].max(), 3)]
        if role != "dev":
            row.append(_values_text([reported.at[label, lang] for label in best_labels(dev, lang)
                                     if lang in reported.columns and label in reported.index]))
        rows.append(row)
    return header, rows


def _values_text(values: list[float]) -> str:
    """One value, or the range of several (the reported F1s of runs tied on dev)."""
    values = [float(v) for v in values if pd.notna(v)]
    if not values:
        return ""
    low, high = min(values), max(values)
    return _fmt(low, 3) if math.isclose(low, high) else f"{low:.3f}–{high:.3f}"


def means_title(comparison: Comparison) -> str:
    """`Mean over QC and QI` (or over however many tasks the settings ran on)."""
    tasks = mean_tasks(comparison.task_means, comparison.tasks)
    return "Mean over " + (" and ".join([", ".join(tasks[:-1]), tasks[-1]]) if len(tasks) > 1 else "tasks")


def means_table(comparison: Comparison) -> Table:
    """One row per setting run on two tasks or more; a task the setting did not run on stays blank."""
    tasks = mean_tasks(comparison.task_means, comparison.tasks)
    header = ["setting", *(f"{task} F1" for task in tasks), *(MEAN_HEADERS[m] for m in MEAN_METRICS)]
    rows = [[row["label"], *(_fmt(row[task_column(task, "f1")]) for task in tasks),
             *(_fmt(row[f"mean_{m}"]) for m in MEAN_METRICS)]
            for _, row in comparison.task_means.iterrows()]
    return header, rows
