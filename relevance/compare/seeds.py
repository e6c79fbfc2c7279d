"""Runs that differ only by `seed` (model initialisation, data order, dropout) form a group: its
mean F1 and ROC-AUC over the seeds, with an interval that resamples the rows (paired across every
run, as they share dev and test rows: `data.seed`) and the seeds, and its delta against the
baseline's group."""

from __future__ import annotations

import numpy as np
import pandas as pd

from relevance.compare.deltas import TaskBootstrap, delta_columns
from relevance.evaluation.bootstrap import hierarchical_mean, percentile_interval

GROUP_COLUMNS = ["group", "task", "mix", "runs", "seeds", "f1", "f1_ci_low", "f1_ci_high", "roc_auc", "dev_f1",
                 "delta_f1", "ci_low", "ci_high", "p_better", "delta_roc_auc", "roc_auc_ci_low", "roc_auc_ci_high",
                 "measured_on", "note", "run_ids"]


def _seeds(members: pd.DataFrame) -> str:
    values = sorted({str(s) for s in members.get("seed", pd.Series(dtype=object)).dropna()},
                    key=lambda s: (len(s), s))
    return ",".join(values)


def _mean(members: pd.DataFrame, column: str) -> float:
    return float(members[column].mean()) if column in members.columns else float("nan")


def _group_row(members: pd.DataFrame, task: str, report_role: str, paired: list[str]) -> dict:
    """A group's logged-metric means (replaced by the bootstrap's points when its runs are paired)."""
    unpaired = len(members) - len(paired)
    return {**dict.fromkeys(GROUP_COLUMNS, np.nan), "group": members["group_label"].iloc[0], "task": task,
            "mix": str(members["augment"].iloc[0]), "runs": len(members), "seeds": _seeds(members),
            "run_ids": ",".join(members["run_id"]), "f1": _mean(members, f"{report_role}_f1"),
            "roc_auc": _mean(members, f"{report_role}_roc_auc"), "dev_f1": _mean(members, "dev_f1"),
            "measured_on": "", "note": f"{unpaired} run(s) not paired" if unpaired else ""}


def seed_groups(frame: pd.DataFrame, bootstraps: dict[str, TaskBootstrap], baselines: dict[str, str],
                report_role: str, seed: int = 0) -> pd.DataFrame:
    """One row per (task, seed group): seeds, mean F1 [interval], mean ROC-AUC, mean dev F1, and the
    delta against the group holding the task's baseline run. Runs without paired predictions count
    in the means of logged metrics, not in the intervals."""
    rows, estimates = [], {}
    for index, ((task, key), members) in enumerate(frame.groupby(["task", "seed_group"], sort=False)):
        boot = bootstraps.get(task)
        paired = [run_id for run_id in members["run_id"] if boot is not None and run_id in boot.draws]
        row = _group_row(members, task, report_role, paired)
        if paired:
            points = {m: float(np.mean([boot.points[run_id][m] for run_id in paired])) for m in ("f1", "roc_auc")}
            draws = hierarchical_mean([boot.draws[run_id] for run_id in paired], seed + index)
            estimates[task, key] = points, draws
            row.update(points, measured_on=boot.measured_on)
            row["f1_ci_low"], row["f1_ci_high"] = percentile_interval(draws.f1)
        rows.append((key, row))
    base_keys = {task: frame.loc[frame["run_id"] == run_id, "seed_group"].iloc[0]
                 for task, run_id in baselines.items() if (frame["run_id"] == run_id).any()}
    for key, row in rows:
        if key == base_keys.get(row["task"]):
            row["note"] = "; ".join(filter(None, ["baseline", row["note"]]))
        elif (row["task"], key) in estimates and (row["task"], base_keys.get(row["task"])) in estimates:
            row.update(delta_columns(*estimates[row["task"], key], *estimates[row["task"], base_keys[row["task"]]]))
    return pd.DataFrame([row for _, row in rows], columns=GROUP_COLUMNS)
