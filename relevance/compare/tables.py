"""A comparison as (header, rows) tables of formatted cells, shared by the terminal report, the
Markdown report and the notebook."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from relevance.compare.aggregates import MEAN_METRICS, mean_tasks, task_column
from relevance.compare.comparison import Comparison

Table = tuple[list[str], list[list[str]]]
MAIN_COLUMNS = [("f1", "dev_f1"), ("precision", "dev_precision"), ("recall", "dev_recall"),
                ("roc_auc", "dev_roc_auc"), ("unseen_f1", "dev_unseen_f1")]
MEAN_HEADERS = {"f1": "mean F1", "precision": "mean precision", "recall": "mean recall"}


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.{digits}f}" if isinstance(value, (float, np.floating)) else str(value)


def _delta_text(row: pd.Series) -> str:
    if row["delta_note"] == "baseline":
        return "baseline"
    if not math.isfinite(row["delta_f1"]):
        return "n/a"
    return f"{row['delta_f1']:+.4f} [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]"


def _language(lang: str, unseen: set[str]) -> str:
    return f"{lang}*" if lang in unseen else lang


def run_table(comparison: Comparison) -> Table:
    header = ["run", "task", "mix", "F1", "precision", "recall", "ROC-AUC", "unseen F1",
              "ΔF1 vs baseline [95% CI]", "P(better)", "run id"]
    rows = []
    for _, row in comparison.runs.sort_values(["task", "start_time"]).iterrows():
        rows.append([row["label"], row["task"], str(row["augment"]),
                     *(_fmt(row.get(metric)) for _, metric in MAIN_COLUMNS),
                     _delta_text(row), _fmt(row["p_better"], 3), row["run_id"]])
    return header, rows


def language_table(comparison: Comparison, task: str) -> Table:
    table = comparison.per_language[task]
    unseen = set(comparison.unseen.get(task, []))
    header = ["run"] + [_language(lang, unseen) for lang in table.columns]
    rows = [[str(label), *(_fmt(v, 3) for v in values)] for label, values in zip(table.index, table.to_numpy())]
    return header, rows


def winners_table(comparison: Comparison, task: str) -> Table:
    table = comparison.per_language[task]
    unseen = set(comparison.unseen.get(task, []))
    rows = [[_language(lang, unseen), winner, _fmt(table[lang].max(), 3)]
            for lang, winner in comparison.winners[task].items()]
    return ["language", "best run", "F1"], rows


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
