"""Each run's F1 delta against its task's baseline, with a paired bootstrap CI over the same dev rows.

Baseline: `baseline=` for its task (for the other tasks, the run of the same setting), else the
first run whose augmentation mix is `original`, else the task's first run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from relevance.evaluation import paired_bootstrap_delta
from relevance.tracking.runs import RunSelectionError, load_predictions

DELTA_COLUMNS = ("delta_f1", "ci_low", "ci_high", "p_better")


def load_run_predictions(client: MlflowClient, run_ids: list[str],
                         work_dir: Path) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Run id → dev predictions, and a note for each run without them (an older run)."""
    predictions: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    for run_id in run_ids:
        try:
            predictions[run_id] = load_predictions(client, run_id, work_dir)
        except Exception as exc:  # noqa: BLE001 - an old run without the artifact
            notes.append(f"run {run_id}: no {type(exc).__name__} dev predictions ({exc}); no delta or PR curve")
    return predictions, notes


def choose_baselines(frame: pd.DataFrame, baseline: str | None = None) -> dict[str, str]:
    """Task → baseline run id (see the module docstring)."""
    chosen: dict[str, str] = {}
    if baseline:
        match = frame[(frame["run_id"] == baseline) | (frame["run_name"] == baseline)]
        if match.empty:
            match = frame[frame["run_id"].str.startswith(baseline)]
        if match.empty:
            raise RunSelectionError(f"baseline={baseline!r} is neither the id nor the name of a compared run")
        first = match.iloc[0]
        chosen[first["task"]] = first["run_id"]
        twins = frame[(frame["setting"] == first["setting"]) & (frame["task"] != first["task"])]
        for task, group in twins.groupby("task"):
            chosen[task] = group.iloc[0]["run_id"]
    for task, group in frame.groupby("task"):
        if task in chosen:
            continue
        original = group[group["augment"] == "original"]
        chosen[task] = (original if len(original) else group).iloc[0]["run_id"]
    return chosen


def paired_delta(base: pd.DataFrame | None, other: pd.DataFrame | None, n_resamples: int,
                 seed: int) -> tuple[dict | None, str]:
    """F1(other) - F1(base) with a paired bootstrap CI, over identical dev rows only."""
    if base is None or other is None:
        return None, "no dev predictions"
    if base["id"].duplicated().any() or other["id"].duplicated().any():
        return None, "dev row ids are not unique: rows cannot be paired"
    if set(base["id"]) != set(other["id"]):
        return None, (f"different dev rows than the baseline ({len(other)} vs {len(base)} rows, "
                      f"{len(set(base['id']) & set(other['id']))} shared): not compared")
    joined = base[["id", "label", "prediction"]].merge(other[["id", "label", "prediction"]], on="id",
                                                      suffixes=("_base", "_run"))
    if not (joined["label_base"] == joined["label_run"]).all():
        return None, "the same dev row ids carry different labels: not compared"
    result = paired_bootstrap_delta(joined["label_base"].to_numpy(), joined["prediction_base"].to_numpy(), 0.5,
                                    joined["prediction_run"].to_numpy(), 0.5, n_resamples=n_resamples, seed=seed)
    return result, ""


def add_deltas(frame: pd.DataFrame, predictions: dict[str, pd.DataFrame], baselines: dict[str, str],
               n_resamples: int, seed: int) -> list[str]:
    """Fills `delta_f1`, `ci_low`, `ci_high`, `p_better` and `delta_note` in place; returns a note
    for each run that could not be paired with its baseline."""
    notes: list[str] = []
    for column in DELTA_COLUMNS:
        frame[column] = np.nan
    frame["delta_note"] = ""
    for i, row in frame.iterrows():
        base_id = baselines.get(row["task"])
        if base_id == row["run_id"]:
            frame.at[i, "delta_note"] = "baseline"
            continue
        result, note = paired_delta(predictions.get(base_id), predictions.get(row["run_id"]), n_resamples, seed)
        if result is None:
            frame.at[i, "delta_note"] = note
            notes.append(f"`{row['label']}` ({row['task']}): {note}")
            continue
        for column, key in zip(DELTA_COLUMNS, ("delta", "ci_low", "ci_high", "p_better")):
            frame.at[i, column] = result[key]
    return notes
