"""Read runs back from MLflow: sweeps (parents, children, reused runs), metrics, dev predictions; what
`latest` means (a run for predict, a sweep for compare: docs/tour.md); the summaries train and predict end on.

Shared by `relevance.compare`, `relevance.predict`, `relevance.train` and `notebooks/compare_runs.ipynb`.
"""

from __future__ import annotations

import logging
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from relevance.tracking.mlflow_run import search_all
from relevance.tracking.tags import CONFIG_HASH_TAG, REUSED_TAG, SWEEP_ID_TAG, SWEEP_TAG

log = logging.getLogger(__name__)

PREDICTIONS_ARTIFACT = "evaluation/{role}_predictions.jsonl"  # role: dev, or test when the run has a test split


class RunSelectionError(LookupError):
    """Nothing to compare: the message says what was looked for where."""


def all_experiment_ids(client: MlflowClient) -> list[str]:
    return [e.experiment_id for e in client.search_experiments()]


def find_sweep_parent(client: MlflowClient, sweep: str = "latest") -> Run:
    """A sweep parent run by id, or for `latest` the newest FINISHED one in any experiment (a sweep still
    running, or one that failed or was killed, is passed over, and named in the log). A smoke sweep counts:
    comparing it is what `make sweep-smoke` does."""
    if sweep != "latest":
        run = client.get_run(sweep)
        if run.data.tags.get(SWEEP_TAG) != "true":
            raise RunSelectionError(f"run {sweep} is not a sweep parent (no tag {SWEEP_TAG}=true)")
        return run
    experiments = all_experiment_ids(client)
    runs = client.search_runs(experiments, f"tags.`{SWEEP_TAG}` = 'true'",
                              order_by=["attributes.start_time DESC"], max_results=100) if experiments else []
    if not runs:
        raise RunSelectionError(f"no sweep parent run (tag {SWEEP_TAG}=true) in {client.tracking_uri}: "
                                "run a sweep first, e.g. python -m relevance.train -m experiment=smoke_sweep")
    finished = [r for r in runs if r.info.status == "FINISHED"]
    passed_over = runs[:runs.index(finished[0])] if finished else runs
    if not finished:
        raise RunSelectionError("sweep=latest: no FINISHED sweep in " + client.tracking_uri + "; the newest: "
                                + "; ".join(_describe(r) for r in passed_over[:5])
                                + ": wait for it to end, or pass sweep=<parent run id>")
    if passed_over:
        log.warning("sweep=latest: %s, the newest FINISHED sweep; passed over newer sweeps that did not finish: %s",
                    _describe(finished[0]), "; ".join(_describe(r) for r in passed_over[:5]))
    return finished[0]


# --------------------------------------------------------------------------- `run=latest`

PURPOSE_TAG = "relevance.purpose"  # what a run was for: `train`, or `smoke` (a test or smoke run)
SMOKE = "smoke"
TRAIN = "train"
RANDOM_BACKBONE_SOURCES = ("tiny_random",)  # model.source values whose weights are random: scores mean nothing
LATEST_SEARCH_LIMIT = 500


def purpose_of(model_source: str) -> str:
    """`smoke` for a run whose backbone is built with random weights (the tiny test models:
    `conf/model/tiny_*.yaml`, `experiment=smoke_sweep`, the test suite), else `train`."""
    return SMOKE if str(model_source) in RANDOM_BACKBONE_SOURCES else TRAIN


def run_purpose(run: Run) -> str:
    """The run's `relevance.purpose` tag; for runs logged before the tag, inferred from `model.source`."""
    return run.data.tags.get(PURPOSE_TAG) or purpose_of(run.data.params.get("model.source", ""))


class LatestRunError(LookupError):
    """`run=latest` finds no run, or more than one it could mean: the message lists the candidates."""


@dataclass
class LatestRun:
    run: Run
    passed_over: list[Run]  # newer finished smoke/test runs with a model, not chosen
    smoke_only: bool  # no real run of the task: the newest smoke run, said so

    def describe(self) -> str:
        text = f"run=latest: {_describe(self.run)}"
        if self.smoke_only:
            return (text + f"; a {SMOKE} run (random tiny model: its scores mean nothing), the only kind of "
                    "finished run with a model here")
        if self.passed_over:
            text += (f"; passed over {len(self.passed_over)} newer {SMOKE}/test run(s) (random tiny models): "
                     + ", ".join(f"{r.info.run_name} ({r.info.run_id[:8]})" for r in self.passed_over[:3])
                     + (", ..." if len(self.passed_over) > 3 else ""))
        return text


def latest_model_run(client: MlflowClient, task_name: str | None = None) -> LatestRun:
    """What `run=latest` means (docs/tour.md): the FINISHED run with a logged model that ended last, of
    the task `task_name` when given, that is not a smoke or test run (`run_purpose`). When no such run
    exists, the newest smoke run, said so. Refused (LatestRunError, listing the candidates) when there is
    none, or when no task is given and the newest runs of the chosen kind belong to different tasks."""
    experiments = all_experiment_ids(client)
    query = "attributes.status = 'FINISHED' and tags.`relevance.has_model` = 'true'"
    if task_name:
        query += f" and tags.task = '{task_name}'"
    runs = client.search_runs(experiments, query, order_by=["attributes.end_time DESC"],
                              max_results=LATEST_SEARCH_LIMIT) if experiments else []
    if not runs:
        raise LatestRunError(f"run=latest: no finished run with a logged model in {client.tracking_uri}"
                             + (f" for task {task_name}" if task_name else "")
                             + ": train one first (python -m relevance.train ...) or pass run=<run id>")
    real = [r for r in runs if run_purpose(r) != SMOKE]
    pool = real or runs
    if not task_name:
        newest_by_task: dict[str, Run] = {}
        for run in pool:
            newest_by_task.setdefault(run.data.tags.get("task", "?"), run)
        if len(newest_by_task) > 1:
            raise LatestRunError(
                "run=latest is ambiguous: the newest finished runs with a model are of different tasks: "
                + "; ".join(f"{task}: {_describe(run)}" for task, run in newest_by_task.items())
                + ". Pass task=" + " or task=".join(t.lower() for t in newest_by_task) + ", or run=<run id>")
    chosen = pool[0]
    passed_over = [r for r in runs if r is not chosen and (r.info.end_time or 0) > (chosen.info.end_time or 0)]
    return LatestRun(chosen, passed_over, smoke_only=not real)


def _describe(run: Run) -> str:
    """`'name' (id), <status> <when>`: a run as a person recognises it."""
    when = run.info.end_time or run.info.start_time
    return f"'{run.info.run_name}' ({run.info.run_id}), {run.info.status.lower()} {format_time(when)}"


def format_time(millis: int | None) -> str:
    if not millis:
        return "at an unknown time"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(millis / 1000))


# --------------------------------------------------------------------------- summaries a person can act on

def metrics_lines(metrics: dict[str, float], indent: str = "  ") -> list[str]:
    """One line per role (dev, test) that has metrics: F1 and ROC-AUC beside predicting every row relevant."""
    lines = []
    for role in ("dev", "test"):
        if f"{role}_f1" not in metrics:
            continue
        text = f"{indent}{role:<5} F1 {metrics[f'{role}_f1']:.4f}"
        if f"{role}_roc_auc" in metrics:
            text += f"  ROC-AUC {metrics[f'{role}_roc_auc']:.4f}"
        if f"{role}_f1_all_relevant" in metrics:
            lift = metrics[f"{role}_f1"] - metrics[f"{role}_f1_all_relevant"]
            text += f"  (every row relevant: F1 {metrics[f'{role}_f1_all_relevant']:.4f}; lift {lift:+.4f})"
        lines.append(text)
    return lines


def python_command() -> str:
    """How this interpreter is typed from here: `.venv/bin/python` inside the project, else `python`."""
    executable = Path(sys.executable)
    try:
        return str(executable.relative_to(Path.cwd()))
    except ValueError:
        return "python"


def predict_command(run: Run) -> str:
    """`predict` with this run on the file it was tuned on (its dev file), as a person types it."""
    source = run.data.params.get("data.dev_path") or "<file.jsonl>"
    try:
        source = str(Path(source).relative_to(Path.cwd()))
    except ValueError:
        pass
    return (f"{python_command()} -m relevance.predict run={run.info.run_id} input={source} "
            f"output=outputs/predictions/{run.info.run_id[:8]}.jsonl")


def scored_with(run: Run) -> str:
    """What `predict` ends on: the run it scored with (name, id, task, when it finished) and the metrics
    that run logged when it was trained."""
    task = run.data.tags.get("task", "?")
    lines = [f"scored with run '{run.info.run_name}' ({run.info.run_id}), task {task}, "
             f"finished {format_time(run.info.end_time)}; its metrics when trained:", *metrics_lines(run.data.metrics)]
    return "\n".join(lines)


def ui_hint(tracking_uri: str) -> str:
    """How the links open: a tracking server serves its UI; a local store needs `make ui` running."""
    if tracking_uri.startswith(("http://", "https://")):
        return "(links into the tracking server's UI)"
    return (f"(the links open while `make ui` runs ({python_command()} -m relevance.ui): "
            "it prints its port if 5000 is busy)")


def run_summary(client: MlflowClient, run_id: str, ui_url: str | None = None) -> str:
    """What `train` ends on: the run, its key metrics, its page in the UI, the next command."""
    from relevance.tracking.links import experiment_runs_link, run_url, ui_base_url

    run = client.get_run(run_id)
    base = ui_base_url(client.tracking_uri, ui_url)
    experiment = client.get_experiment(run.info.experiment_id)
    kind = f", a {SMOKE} run (random tiny model: `run=latest` passes it over)" if run_purpose(run) == SMOKE else ""
    lines = [f"run '{run.info.run_name}' ({run.info.run_id}) {run.info.status} in experiment {experiment.name}{kind}",
             *metrics_lines(run.data.metrics),
             f"  run:   {run_url(base, run.info.experiment_id, run.info.run_id)}",
             f"  runs:  {experiment_runs_link(client, run.info.experiment_id, base)}",
             f"  {ui_hint(client.tracking_uri)}",
             f"  next:  {predict_command(run)}"]
    return "\n".join(lines)


def sweep_summary(client: MlflowClient, parent_ids: list[str], ui_url: str | None = None) -> str:
    """What a sweep ends on: per parent, its jobs, the best run chosen on dev with its metrics, the
    sweep's runs table, and the next commands (compare it; predict with its best run)."""
    from relevance.tracking.links import sweep_runs_link, ui_base_url

    base = ui_base_url(client.tracking_uri, ui_url)
    lines = []
    for parent_id in parent_ids:
        parent = client.get_run(parent_id)
        m = parent.data.metrics
        counts = ", ".join(f"{int(m[f'jobs_{k}'])} {k}" for k in ("finished", "skipped", "failed", "killed")
                           if m.get(f"jobs_{k}"))
        lines.append(f"sweep '{parent.info.run_name}' ({parent_id}) {parent.info.status}: {counts or 'no jobs'}")
        best_id = parent.data.tags.get("best_run_id")
        best = client.get_run(best_id) if best_id else None
        if best is not None:
            lines.append(f"  best on dev F1: '{best.info.run_name}' ({best_id})")
            lines += metrics_lines(best.data.metrics, indent="    ")
        lines.append(f"  runs:  {sweep_runs_link(client, parent.info.experiment_id, parent_id, base)}")
        lines.append(f"  next:  {python_command()} -m relevance.compare sweep={parent_id}")
        if best is not None:
            lines.append(f"         {predict_command(best)}")
    lines.append(f"  {ui_hint(client.tracking_uri)}")
    return "\n".join(lines)


def print_sweep_summary(tracking_uri: str, parent_ids: list[str]) -> None:
    """Print `sweep_summary` at a sweep's end; a summary that cannot be built never fails the sweep."""
    try:
        text = sweep_summary(MlflowClient(tracking_uri), parent_ids)
    except Exception as exc:  # noqa: BLE001 - the sweep is logged; only its summary is missing
        log.warning("sweep parent(s) %s ended; the summary could not be built: %s", ", ".join(parent_ids), exc)
        return
    print("\n" + text, flush=True)


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
