"""Read runs back from MLflow: sweeps (parents, children, reused runs), metrics, dev predictions.

Shared by `relevance.compare` and `notebooks/compare_runs.ipynb`.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from relevance.tracking.mlflow_run import search_all
from relevance.tracking.tags import CONFIG_HASH_TAG, REUSED_TAG, SWEEP_ID_TAG, SWEEP_TAG

PREDICTIONS_ARTIFACT = "evaluation/{role}_predictions.jsonl"  # role: dev, or test when the run has a test split


class RunSelectionError(LookupError):
    """Nothing to compare: the message says what was looked for where."""


def all_experiment_ids(client: MlflowClient) -> list[str]:
    return [e.experiment_id for e in client.search_experiments()]


def find_sweep_parent(client: MlflowClient, sweep: str = "latest") -> Run:
    """A sweep parent run by id, or for `latest` the newest one in any experiment."""
    if sweep != "latest":
        run = client.get_run(sweep)
        if run.data.tags.get(SWEEP_TAG) != "true":
            raise RunSelectionError(f"run {sweep} is not a sweep parent (no tag {SWEEP_TAG}=true)")
        return run
    experiments = all_experiment_ids(client)
    runs = client.search_runs(experiments, f"tags.`{SWEEP_TAG}` = 'true'",
                              order_by=["attributes.start_time DESC"], max_results=1) if experiments else []
    if not runs:
        raise RunSelectionError(f"no sweep parent run (tag {SWEEP_TAG}=true) in {client.tracking_uri}: "
                                "run a sweep first, e.g. python -m relevance.train -m experiment=smoke_sweep")
    return runs[0]


def sweep_parents(client: MlflowClient, parent: Run) -> list[Run]:
    """Every parent of the same multirun (one per experiment it touched), oldest first."""
    sweep_id = parent.data.tags.get(SWEEP_ID_TAG)
    if not sweep_id:
        return [parent]
    return search_all(client, all_experiment_ids(client), f"tags.`{SWEEP_ID_TAG}` = '{sweep_id}'",
                      order_by=["attributes.start_time ASC"])


@dataclass
class SweepRuns:
    parents: list[Run]
    runs: list[Run]  # children + reused finished runs, in start order
    reused_run_ids: list[str]


def sweep_runs(client: MlflowClient, parent: Run) -> SweepRuns:
    """The runs a sweep stands for: its children and the identical finished runs it reused."""
    parents = sweep_parents(client, parent)
    runs: dict[str, Run] = {}
    reused: list[str] = []
    for p in parents:
        for child in search_all(client, [p.info.experiment_id], f"tags.`mlflow.parentRunId` = '{p.info.run_id}'"):
            runs[child.info.run_id] = child
        for run_id in filter(None, (p.data.tags.get(REUSED_TAG) or "").split(",")):
            if run_id not in runs:
                runs[run_id] = client.get_run(run_id)
                reused.append(run_id)
    ordered = sorted(runs.values(), key=lambda r: (r.info.start_time or 0, r.info.run_id))
    return SweepRuns(parents, ordered, reused)


def experiment_runs(client: MlflowClient, names: list[str]) -> list[Run]:
    """Every training run (not sweep parents) of the named experiments, oldest first."""
    ids = []
    for name in names:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise RunSelectionError(f"no experiment named {name!r} in {client.tracking_uri}")
        ids.append(experiment.experiment_id)
    runs = search_all(client, ids, order_by=["attributes.start_time ASC"])
    return [r for r in runs if CONFIG_HASH_TAG in r.data.tags]


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run: ids, name, status, the group tags and every metric (`dev_*`, ...)."""
    rows = []
    for run in runs:
        row = {"run_id": run.info.run_id, "run_name": run.info.run_name, "status": run.info.status,
               "experiment_id": run.info.experiment_id, "start_time": run.info.start_time,
               "parent_run_id": run.data.tags.get("mlflow.parentRunId")}
        for tag in ("model", "task", "data", "quant", "peft", "head", "trainer", "augment", CONFIG_HASH_TAG):
            row[tag] = run.data.tags.get(tag)
        row["unseen_languages"] = run.data.params.get("data.unseen_languages", "")
        row.update(run.data.metrics)
        rows.append(row)
    return pd.DataFrame(rows)


def language_columns(frame: pd.DataFrame, role: str = "dev") -> list[str]:
    """Language codes with a `<role>_f1_lang_<code>` metric in any run, sorted."""
    pattern = re.compile(rf"^{role}_f1_lang_(.+)$")
    return sorted(m.group(1) for c in frame.columns if (m := pattern.match(str(c))))


def load_predictions(client: MlflowClient, run_id: str, work_dir: str | Path | None = None,
                     role: str = "dev") -> pd.DataFrame:
    """The run's `role` rows (dev, test) with `score` and `prediction` (evaluation/<role>_predictions.jsonl)."""
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="relevance-predictions-"))
    target = work_dir / run_id
    target.mkdir(parents=True, exist_ok=True)
    path = client.download_artifacts(run_id, PREDICTIONS_ARTIFACT.format(role=role), str(target))
    frame = pd.read_json(path, lines=True, dtype={"id": str})
    frame["id"] = frame["id"].astype(str)
    return frame
