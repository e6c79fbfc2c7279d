"""Each run's F1 and ROC-AUC delta against its task's baseline, with paired bootstrap intervals that
re-tune every run's threshold inside each resample (relevance.evaluation.bootstrap), and a
two-sided bootstrap p-value.

The bootstrap draws queries, not rows: the rows of one query (its `query` column folded by
`relevance.data.text.normalise_text`, the project's "same query") come and go together. Runs
logged before predictions carried `query` are resampled row by row, with a note.

Runs pair row by row (joined on `id`) when they scored the same dev rows, and the same test rows:
F1 is then measured on test resamples at thresholds re-tuned on dev resamples. When the baseline
has no test split, runs are cross-fitted on dev (tuned in the bag, scored out of it). A run whose
rows differ from the baseline's gets no delta, and the report says so.

Baseline: `baseline=` for its task (for the other tasks, the run of the same setting), else the
first run whose augmentation mix is `original`, else the task's first run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from relevance.data.text import normalise_text
from relevance.evaluation.bootstrap import (EvaluationRows, MetricDraws, RunScores, delta_summary, point_estimates,
                                            retuned_draws)
from relevance.evaluation.threshold import ThresholdPolicy
from relevance.tracking.runs import RunSelectionError, load_predictions

DELTA_COLUMNS = ("delta_f1", "ci_low", "ci_high", "p_better", "p_f1", "delta_roc_auc", "roc_auc_ci_low",
                 "roc_auc_ci_high", "p_roc_auc")
CROSS_FIT = "dev (cross-fit)"  # where deltas are measured without a test split


@dataclass
class RunPredictions:
    """A run's scored rows, per role: dev always; test when the run has a test split."""

    dev: pd.DataFrame
    test: pd.DataFrame | None = None

    def of_role(self, role: str) -> pd.DataFrame | None:
        return self.test if role == "test" else self.dev


@dataclass
class TaskBootstrap:
    """One task's paired resamples: every paired run's point estimates and draws on the same rows."""

    measured_on: str  # "test", or CROSS_FIT
    points: dict[str, dict[str, float]]  # run id → {"f1", "roc_auc"} as logged
    draws: dict[str, MetricDraws]  # run id → per-resample values
    rows: int = 0  # rows the metrics are measured on
    queries: int = 0  # the clusters the bootstrap drew among them (= rows when not clustered)
    clustered: bool = True  # whether the bootstrap drew queries (False: rows, for runs without `query`)

    def delta(self, run_id: str, base_id: str) -> dict[str, float]:
        return delta_columns(self.points[run_id], self.draws[run_id], self.points[base_id], self.draws[base_id])


def delta_columns(points: dict[str, float], draws: MetricDraws, base_points: dict[str, float],
                  base_draws: MetricDraws) -> dict[str, float]:
    """F1 and ROC-AUC minus the baseline's, with their paired intervals, named as `DELTA_COLUMNS`
    (a run's, or a seed group's mean over its seeds)."""
    f1 = delta_summary(points["f1"], base_points["f1"], draws.f1, base_draws.f1)
    auc = delta_summary(points["roc_auc"], base_points["roc_auc"], draws.roc_auc, base_draws.roc_auc)
    return {"delta_f1": f1["delta"], "ci_low": f1["ci_low"], "ci_high": f1["ci_high"], "p_better": f1["p_better"],
            "p_f1": f1["p"], "delta_roc_auc": auc["delta"], "roc_auc_ci_low": auc["ci_low"],
            "roc_auc_ci_high": auc["ci_high"], "p_roc_auc": auc["p"]}


def load_run_predictions(client: MlflowClient, run_ids: list[str],
                         work_dir: Path) -> tuple[dict[str, RunPredictions], list[str]]:
    """Run id → its dev (and test) predictions, and a note for each run without dev predictions."""
    predictions: dict[str, RunPredictions] = {}
    notes: list[str] = []
    for run_id in run_ids:
        try:
            dev = load_predictions(client, run_id, work_dir)
        except Exception as exc:  # noqa: BLE001 - an old run without the artifact
            notes.append(f"run {run_id}: no {type(exc).__name__} dev predictions ({exc}); no delta or PR curve")
            continue
        try:
            test = load_predictions(client, run_id, work_dir, role="test")
        except Exception:  # noqa: BLE001 - a run without a test split
            test = None
        predictions[run_id] = RunPredictions(dev, test)
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


def _aligned_scores(base: pd.DataFrame, other: pd.DataFrame, role: str) -> tuple[np.ndarray | None, str]:
    """`other`'s scores in `base`'s row order, or why the rows cannot be paired."""
    if base["id"].duplicated().any() or other["id"].duplicated().any():
        return None, f"{role} row ids are not unique: rows cannot be paired"
    if set(base["id"]) != set(other["id"]):
        return None, (f"different {role} rows than the baseline ({len(other)} vs {len(base)} rows, "
                      f"{len(set(base['id']) & set(other['id']))} shared): not compared")
    aligned = other.set_index("id").loc[base["id"]]
    if not np.array_equal(aligned["label"].to_numpy(), base["label"].to_numpy()):
        return None, f"the same {role} row ids carry different labels: not compared"
    return aligned["score"].to_numpy(dtype=np.float64), ""


def query_keys(rows: pd.DataFrame | None) -> list[str] | None:
    """Each row's query, case- and space-folded (`normalise_text`): the bootstrap's clusters. None
    when the predictions lack the column (runs logged before it) or a row lacks its query."""
    if rows is None or "query" not in rows.columns or rows["query"].isna().any():
        return None
    return [normalise_text(query) for query in rows["query"]]


def shared_rows(base: RunPredictions) -> EvaluationRows:
    """The rows the baseline scored, in its order: every run of the task is aligned to them. Their
    queries are the clusters the bootstrap draws (the baseline's: every paired run has the same ids)."""
    test = base.test
    return EvaluationRows.of(base.dev["label"], base.dev["language"],
                             None if test is None else test["label"], None if test is None else test["language"],
                             query_keys(base.dev), query_keys(test))


def unclustered_note(task: str, rows: EvaluationRows) -> str:
    """Why a task's intervals resample rows rather than queries ("" when they resample queries)."""
    if rows.clustered:
        return ""
    return (f"{task}: the baseline's predictions have no `query` column (a run logged before it was kept): "
            "the bootstrap resamples rows one by one, not queries, so intervals are too narrow when a query's "
            "rows are correlated")


def paired_scores(base: RunPredictions, other: RunPredictions | None,
                  policy: ThresholdPolicy = ThresholdPolicy()) -> tuple[RunScores | None, str]:
    """`other`'s scores on the baseline's rows (dev, and test when the baseline has it), or why not."""
    if other is None:
        return None, "no dev predictions"
    dev, note = _aligned_scores(base.dev, other.dev, "dev")
    if dev is None:
        return None, note
    if base.test is None:
        return RunScores(dev, None, policy), ""
    if other.test is None:
        return None, "no test split, unlike the baseline: not compared"
    test, note = _aligned_scores(base.test, other.test, "test")
    return (RunScores(dev, test, policy), "") if test is not None else (None, note)


def run_policy(row: pd.Series) -> ThresholdPolicy:
    """How the run tuned its threshold, from its logged params (global for runs older than the key)."""
    logged = {key: row.get(f"evaluation.{key}") for key in ("threshold", "min_rows_per_language")}
    return ThresholdPolicy.from_config({key: value for key, value in logged.items() if pd.notna(value)})


def task_bootstrap(runs: dict[str, RunScores], rows: EvaluationRows, n_resamples: int, seed: int,
                   cluster: bool = True) -> TaskBootstrap:
    """Every run's points and paired draws on the task's rows (queries drawn together unless `cluster=False`)."""
    n_rows, n_queries = rows.scored_size()
    clustered = cluster and rows.clustered
    return TaskBootstrap("test" if rows.has_test else CROSS_FIT,
                         {run_id: point_estimates(rows, scores) for run_id, scores in runs.items()},
                         retuned_draws(rows, runs, n_resamples, seed, cluster=cluster),
                         n_rows, n_queries if cluster else n_rows, clustered)


def paired_delta(base: RunPredictions | None, other: RunPredictions | None, n_resamples: int, seed: int,
                 base_policy: ThresholdPolicy = ThresholdPolicy(),
                 other_policy: ThresholdPolicy = ThresholdPolicy()) -> tuple[dict | None, str]:
    """F1 and ROC-AUC of `other` minus the baseline's, with re-tuned paired bootstrap intervals, over
    identical rows only: `DELTA_COLUMNS` and `measured_on` (test, or dev cross-fitted)."""
    if base is None:
        return None, "no dev predictions"
    scores, note = paired_scores(base, other, other_policy)
    if scores is None:
        return None, note
    rows = shared_rows(base)
    boot = task_bootstrap({"base": paired_scores(base, base, base_policy)[0], "other": scores}, rows,
                          n_resamples, seed)
    return {**boot.delta("other", "base"), "measured_on": boot.measured_on}, ""


def add_deltas(frame: pd.DataFrame, predictions: dict[str, RunPredictions], baselines: dict[str, str],
               n_resamples: int, seed: int) -> tuple[dict[str, TaskBootstrap], list[str]]:
    """Fills the delta columns (`DELTA_COLUMNS`, `delta_on`, `delta_note`) in place; returns each
    task's bootstrap (for the seed groups) and a note for each run that could not be paired."""
    notes: list[str] = []
    for column in DELTA_COLUMNS:
        frame[column] = np.nan
    frame["delta_on"] = ""
    frame["delta_note"] = ""
    bootstraps: dict[str, TaskBootstrap] = {}
    for task, group in frame.groupby("task", sort=True):
        base_id = baselines.get(task)
        base = predictions.get(base_id)
        paired: dict[str, RunScores] = {}
        for i, row in group.iterrows():
            scores, note = paired_scores(base, predictions.get(row["run_id"]), run_policy(row)) if base is not None \
                else (None, "the baseline has no dev predictions")
            if scores is None:
                frame.at[i, "delta_note"] = note
                notes.append(f"`{row['label']}` ({row['task']}): {note}")
            else:
                paired[row["run_id"]] = scores
        if base_id not in paired:
            continue
        rows = shared_rows(base)
        notes += [note for note in [unclustered_note(task, rows)] if note]
        boot = bootstraps[task] = task_bootstrap(paired, rows, n_resamples, seed)
        for i, row in group.iterrows():
            if row["run_id"] not in paired:
                continue
            frame.at[i, "delta_on"] = boot.measured_on
            if row["run_id"] == base_id:
                frame.at[i, "delta_note"] = "baseline"
                continue
            for column, value in boot.delta(row["run_id"], base_id).items():
                frame.at[i, column] = value
    return bootstraps, notes
