"""`report.json`: what a comparison decided, machine-readable, beside `report.md`.

Per task, the baseline's seed group and every arm compared with it: for F1 and ROC-AUC the mean over
the arm's seeds, the delta against the baseline group with its 95 % interval (seeds, then queries,
resampled), the two-sided bootstrap p, Holm's p over the task's arms, the verdict at `alpha`,
P(better) over seed pairs, the per-seed min and max, and the minimal detectable effect (MDE) for the
arm's seeds and rows. Then every run's row, the power figures per task (`sample_size`), the notes, and
`config_diff`: the resolved config keys whose values differ among the runs, each run's values
(`relevance.compare.config_diff`; `keys`, `left_out`, `runs`: run_id, label, task, values).
Missing values (no pairing, no test split) are null.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from relevance.compare.comparison import Comparison
from relevance.compare.sample_size import power_summary
from relevance.compare.significance import METRIC_NAMES

JSON_RUN_COLUMNS = ["run_id", "run_name", "label", "task", "augment", "model", "seed", "data.seed",
                    "evaluation.threshold", "group_label",
                    *(f"{role}_{metric}" for role in ("test", "dev") for metric in
                      ("f1", "precision", "recall", "roc_auc", "unseen_f1", "f1_all_relevant", "f1_lift")),
                    "test_f1_global_threshold", "delta_f1", "ci_low", "ci_high", "p_better", "p_f1", "delta_roc_auc",
                    "roc_auc_ci_low", "roc_auc_ci_high", "p_roc_auc", "delta_on", "delta_note"]
# where each metric's delta interval lives in a seed-group row
INTERVAL_COLUMNS = {"f1": ("ci_low", "ci_high"), "roc_auc": ("roc_auc_ci_low", "roc_auc_ci_high")}


def plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python numbers, NaN and None as null, containers recursively."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value


def _seed_values(text: str) -> list[int | str]:
    """`0,1,2` → [0, 1, 2] (seeds that are not integers stay strings)."""
    return [int(s) if s.lstrip("-").isdigit() else s for s in str(text or "").split(",") if s]


def arm_metric(row: pd.Series, metric: str) -> dict:
    """One metric of one arm (see the module docstring)."""
    low, high = INTERVAL_COLUMNS[metric]
    return {"mean": row[metric], "delta": row[f"delta_{metric}"], "ci_low": row[low], "ci_high": row[high],
            "p": row[f"p_{metric}"], "p_adj": row[f"p_adj_{metric}"], "verdict": row[f"verdict_{metric}"] or None,
            "p_better_seed_pairs": row[f"p_better_seed_pairs_{metric}"], "seed_min": row[f"seed_min_{metric}"],
            "seed_max": row[f"seed_max_{metric}"], "mde": row[f"mde_{metric}"]}


def arm_entry(row: pd.Series) -> dict:
    return {"arm": row["group"], "mix": row["mix"], "run_ids": str(row["run_ids"]).split(","),
            "seeds": _seed_values(row["seeds"]), "rows": row["rows"], "queries": row["queries"],
            "paired_runs": row["paired_runs"], "measured_on": row["measured_on"] or None, "note": row["note"] or None,
            "metrics": {metric: arm_metric(row, metric) for metric in METRIC_NAMES}}


def task_entry(groups: pd.DataFrame) -> dict:
    """One task: its baseline group and its arms."""
    is_base = groups["note"].fillna("").str.startswith("baseline")
    base = groups[is_base].iloc[0] if is_base.any() else None
    return {"baseline_group": None if base is None else base["group"],
            "baseline_run_ids": [] if base is None else str(base["run_ids"]).split(","),
            "baseline_seeds": [] if base is None else _seed_values(base["seeds"]),
            "baseline_metrics": {} if base is None else {m: {"mean": base[m], "seed_min": base[f"seed_min_{m}"],
                                                             "seed_max": base[f"seed_max_{m}"]} for m in METRIC_NAMES},
            "arms": [arm_entry(row) for _, row in groups[~is_base].iterrows()]}


def task_power(comparison: Comparison, task: str) -> dict:
    """The power figures of one task (`sample_size.power_summary`) with the rows they hold for."""
    groups = comparison.groups[comparison.groups["task"] == task]
    measured = groups.dropna(subset=["rows"])
    settings = comparison.power
    return {"rows": measured["rows"].iloc[0] if len(measured) else None,
            "queries": measured["queries"].iloc[0] if len(measured) else None,
            **power_summary(comparison.noise[task], settings.seeds, settings.delta, comparison.alpha, settings.level,
                            settings.max_seeds)}


def report_json(comparison: Comparison) -> dict:
    """Everything `report.json` holds (plain JSON values)."""
    groups = comparison.groups
    return plain({
        "title": comparison.title, "tracking_uri": comparison.tracking_uri, "alpha": comparison.alpha,
        "n_resamples": comparison.n_resamples, "report_role": comparison.report_role,
        "resampling": "seeds, then queries (a query's rows together; rows alone where predictions lack `query`)",
        "multiplicity": "Holm, over the arms compared with each task's baseline, per metric",
        "tasks": {task: task_entry(groups[groups["task"] == task]) for task in comparison.tasks
                  if len(groups) and (groups["task"] == task).any()},
        "runs": json.loads(comparison.runs.reindex(columns=JSON_RUN_COLUMNS).to_json(orient="records")),
        "power": {task: task_power(comparison, task) for task in sorted(comparison.noise)},
        "notes": comparison.notes, "parent_run_ids": comparison.parent_run_ids,
        "config_diff": comparison.config_diff.as_json(),
    })
