"""The comparison of a set of runs: labels, deltas against the baselines, seed groups, per-language
and per-setting summaries, gathered in one object that the reports (CLI, notebook) format.

Runs are selected on dev and reported on test: the baseline, the sweep's best run and the winner of
each language are chosen by dev metrics, while the tables' F1, ROC-AUC and deltas are the test
split's (`report_role`), when every run has one; otherwise dev's, cross-fitted, with a note.
Each seed group (arm) gets its verdict against the baseline's group at `alpha`, Holm-adjusted over the
task's arms, and a note when its delta is below what its seeds and rows can detect (docs/comparison.md).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from relevance.compare.aggregates import (language_winners, per_language_f1, report_role, task_means,
                                          unseen_languages)
from relevance.compare.config_diff import ConfigDiff, config_diff
from relevance.compare.deltas import add_deltas, choose_baselines, load_run_predictions
from relevance.compare.labels import label_runs
from relevance.compare.sample_size import Noise, PowerSettings, undetectable_notes
from relevance.compare.seeds import seed_groups, task_noise
from relevance.compare.selection import finished_runs
from relevance.tracking.runs import language_columns

DEV_ONLY_NOTE = ("some runs have no test split: every table reports dev rows, where thresholds were tuned and runs "
                 "selected (optimistic); deltas are cross-fitted on dev (tuned in the bag, scored out of it)")


@dataclass
class Comparison:
    title: str
    tracking_uri: str
    runs: pd.DataFrame  # one row per compared (FINISHED) run, with label, delta and CI columns
    per_language: dict[str, pd.DataFrame]  # task → label × language F1 on the reported rows
    winners: dict[str, dict[str, str]]  # task → language → winning label(s), chosen on dev
    unseen: dict[str, list[str]]  # task → unseen languages
    task_means: pd.DataFrame  # settings run on two tasks or more (see aggregates.task_means)
    baselines: dict[str, str]  # task → run id
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]  # task → label → (labels, scores), reported rows
    notes: list[str] = field(default_factory=list)
    parent_run_ids: list[str] = field(default_factory=list)
    n_resamples: int = 1000
    report_role: str = "test"  # the rows results are reported on: test, or dev when a run has no test split
    per_language_dev: dict[str, pd.DataFrame] = field(default_factory=dict)  # the winners are chosen on these
    groups: pd.DataFrame = field(default_factory=pd.DataFrame)  # seed groups = arms (relevance.compare.seeds)
    alpha: float = 0.05  # verdicts: Holm-adjusted p below alpha
    noise: dict[str, dict[str, Noise]] = field(default_factory=dict)  # task → metric → seed and row noise
    power: PowerSettings = field(default_factory=PowerSettings)
    config_diff: ConfigDiff = field(default_factory=lambda: ConfigDiff([]))  # the config keys that differ, per run

    @property
    def tasks(self) -> list[str]:
        return sorted(self.runs["task"].unique())

    @property
    def has_seed_groups(self) -> bool:
        """Whether any runs differ only by seed (then the seed-group table is worth showing)."""
        return bool(len(self.groups)) and bool((self.groups["runs"] > 1).any())

    @property
    def has_arms(self) -> bool:
        """Whether any seed group (one run alone is a group of one) is compared with a baseline."""
        return bool(len(self.groups)) and bool(self.groups["delta_f1"].notna().any())


def build_comparison(client: MlflowClient, runs: list[Run], title: str = "", baseline: str | None = None,
                     n_resamples: int = 1000, seed: int = 0, parent_run_ids: list[str] | None = None,
                     work_dir: str | Path | None = None, alpha: float = 0.05,
                     power: PowerSettings = PowerSettings()) -> Comparison:
    frame, notes = finished_runs(runs, title)
    frame = label_runs(frame)
    role = report_role(frame)
    if role == "dev":
        notes.append(DEV_ONLY_NOTE)
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="relevance-compare-"))
    predictions, missing = load_run_predictions(client, list(frame["run_id"]), work_dir)
    notes += missing
    baselines = choose_baselines(frame, baseline)
    bootstraps, delta_notes = add_deltas(frame, predictions, baselines, n_resamples, seed)
    notes += delta_notes
    noise = task_noise(frame, bootstraps, baselines)
    groups = seed_groups(frame, bootstraps, baselines, role, seed, alpha, noise, power.level)
    notes += undetectable_notes(groups, noise, role, alpha, power.level)

    per_language, per_language_dev, winners, unseen, curves = {}, {}, {}, {}, {}
    for task, group in frame.groupby("task", sort=True):
        per_language[task] = per_language_f1(group, language_columns(frame, role), role)
        per_language_dev[task] = per_language_f1(group, language_columns(frame, "dev"), "dev")
        winners[task] = language_winners(per_language_dev[task])
        unseen[task] = unseen_languages(group)
        reported = {row.label: predictions[row.run_id].of_role(role) for row in group.itertuples()
                    if row.run_id in predictions}
        curves[task] = {label: (rows["label"].to_numpy(), rows["score"].to_numpy())
                        for label, rows in reported.items() if rows is not None}
    return Comparison(title=title, tracking_uri=client.tracking_uri, runs=frame, per_language=per_language,
                      winners=winners, unseen=unseen, task_means=task_means(frame, role), baselines=baselines,
                      curves=curves, notes=notes, parent_run_ids=list(parent_run_ids or []),
                      n_resamples=n_resamples, report_role=role, per_language_dev=per_language_dev,
                      groups=groups, alpha=alpha, noise=noise, power=power, config_diff=config_diff(runs, frame))
