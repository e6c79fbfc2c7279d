"""The comparison of a set of runs: labels, deltas against the baselines, per-language and
per-setting summaries, gathered in one object that the reports (CLI, notebook) format."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from relevance.compare.aggregates import language_winners, per_language_f1, task_means, unseen_languages
from relevance.compare.deltas import add_deltas, choose_baselines, load_run_predictions
from relevance.compare.labels import label_runs
from relevance.compare.selection import finished_runs
from relevance.tracking.runs import language_columns


@dataclass
class Comparison:
    title: str
    tracking_uri: str
    runs: pd.DataFrame  # one row per compared (FINISHED) run, with label, delta and CI columns
    per_language: dict[str, pd.DataFrame]  # task → label × language F1
    winners: dict[str, dict[str, str]]  # task → language → winning label(s)
    unseen: dict[str, list[str]]  # task → unseen languages
    task_means: pd.DataFrame  # settings run on two tasks or more (see aggregates.task_means)
    baselines: dict[str, str]  # task → run id
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]  # task → label → (labels, scores)
    notes: list[str] = field(default_factory=list)
    parent_run_ids: list[str] = field(default_factory=list)
    n_resamples: int = 1000

    @property
    def tasks(self) -> list[str]:
        return sorted(self.runs["task"].unique())


def build_comparison(client: MlflowClient, runs: list[Run], title: str = "", baseline: str | None = None,
                     n_resamples: int = 1000, seed: int = 0, parent_run_ids: list[str] | None = None,
                     work_dir: str | Path | None = None) -> Comparison:
    frame, notes = finished_runs(runs, title)
    frame = label_runs(frame)
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="relevance-compare-"))
    predictions, missing = load_run_predictions(client, list(frame["run_id"]), work_dir)
    notes += missing
    baselines = choose_baselines(frame, baseline)
    notes += add_deltas(frame, predictions, baselines, n_resamples, seed)

    languages = language_columns(frame)
    per_language, winners, unseen, curves = {}, {}, {}, {}
    for task, group in frame.groupby("task", sort=True):
        per_language[task] = per_language_f1(group, languages)
        winners[task] = language_winners(per_language[task])
        unseen[task] = unseen_languages(group)
        curves[task] = {row.label: (predictions[row.run_id]["label"].to_numpy(),
                                    predictions[row.run_id]["score"].to_numpy())
                        for row in group.itertuples() if row.run_id in predictions}
    return Comparison(title=title, tracking_uri=client.tracking_uri, runs=frame, per_language=per_language,
                      winners=winners, unseen=unseen, task_means=task_means(frame), baselines=baselines,
                      curves=curves, notes=notes, parent_run_ids=list(parent_run_ids or []),
                      n_resamples=n_resamples)
