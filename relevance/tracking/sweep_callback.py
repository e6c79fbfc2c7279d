"""Hydra callback: one MLflow parent run per multirun, every job a child run of it.

Enabled for every `python -m relevance.train -m ...` by `conf/hydra/callbacks/mlflow_sweep.yaml`.

Parent and children
    `on_multirun_start` (launcher process, before any job) opens the parent in the
    experiment of the sweep's base config, status RUNNING, named after the sweep
    definition (command-line overrides + `hydra.sweeper.params`), tagged
    `relevance.sweep=true` and `relevance.sweep.id=<uuid>`, and exports its id in
    `RELEVANCE_PARENT_RUN_ID` (not `MLFLOW_RUN_ID`, which would make MLflow resume the
    parent itself). Each job's `TrackedRun` reads that variable and sets
    `mlflow.parentRunId`.

One parent per experiment touched
    MLflow nests children under a parent only within one experiment, and the experiment
    follows the task (`relevance-qc`, `relevance-qi`). So a sweep over `task=qc,qi` gets
    one parent per experiment, all sharing the `relevance.sweep.id` tag: `on_job_start`
    (which runs in the job's own process, also in joblib's loky workers) looks the job's
    experiment up in `<sweep dir>/.relevance_sweep.json`, creates the missing parent
    under a file lock (parallel workers create it once), and points the variable at the
    right parent for that job. The registry file, not process inheritance, is what makes
    this correct for worker processes; loky workers do also inherit the variable set in
    `on_multirun_start` (they are spawned after it), which tests/test_parallel_sweep.py
    checks on every child.

Job outcomes
    `relevance.train` writes `relevance_job.json` into each job's output folder
    (`write_job_record`): finished (its run id), skipped (the identical FINISHED run it
    reused, see `relevance.tracking.resume`; no child is created for it) or failed (the
    error; the child run, if one was opened, is FAILED already). In multirun mode a job's
    error never takes the sweep down.

`on_multirun_end`
    For each parent: the best run by `dev_f1` among its finished children and reused runs
    (tag `best_run_id`, `best_run_name`, metric `best_dev_f1`), counts (metrics
    `jobs_total`, `jobs_finished`, `jobs_failed`, `jobs_skipped`), the reused run ids
    (tag `relevance.sweep.reused_run_ids`), a table of runs x key metrics
    (`sweep_summary.json`, `sweep_summary.md`), the sweep's `multirun.yaml` and Optuna's
    `optimization_results.yaml` when present (under `sweep/`); then the parent ends
    FINISHED, or FAILED when every job failed (the command then exits with status 1, so
    CI notices). If the sweep itself crashes before
    `on_multirun_end` (an error in the sweeper, Ctrl-C), an `atexit` hook writes the same
    summary and ends the parents FAILED, so no parent stays RUNNING.

A sweep logs to one tracking store (the base config's `tracking.tracking_uri`).
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import time
import uuid
from pathlib import Path
from typing import Any

from filelock import FileLock
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from relevance.text_tables import markdown_table
from relevance.tracking.mlflow_run import PARENT_RUN_ENV, get_or_create_experiment, search_all

log = logging.getLogger(__name__)

SWEEP_TAG = "relevance.sweep"
SWEEP_ID_TAG = "relevance.sweep.id"
REUSED_TAG = "relevance.sweep.reused_run_ids"
STATE_FILE = ".relevance_sweep.json"  # in the sweep dir: tracking store + {experiment: parent run id}
JOB_RECORD_FILE = "relevance_job.json"  # in each job's output dir, written by relevance.train
SUMMARY_METRICS = ("dev_f1", "dev_precision", "dev_recall", "dev_roc_auc", "dev_unseen_f1", "dev_threshold")
MAX_RUN_NAME = 250
STORAGE_KEYS = ("paths.", "tracking.", "hydra.")


# --------------------------------------------------------------------------- job records

def write_job_record(output_dir: str | Path, status: str, **fields: Any) -> Path:
    """What one sweep job did (finished | skipped | failed), for the parent's summary."""
    record = {"status": status, "parent_run_id": os.environ.get(PARENT_RUN_ENV), "time": time.time(), **fields}
    path = Path(output_dir) / JOB_RECORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str))
    return path


def read_job_records(sweep_dir: str | Path) -> list[dict]:
    records = []
    for path in sorted(Path(sweep_dir).rglob(JOB_RECORD_FILE)):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("unreadable job record %s: %s", path, exc)
    return records


# --------------------------------------------------------------------------- naming

def _is_storage_override(override: str) -> bool:
    key = override.split("=", 1)[0].lstrip("+~")
    return key.startswith(STORAGE_KEYS)


def sweep_definition(config: DictConfig) -> dict[str, str]:
    """{key: value} of the sweep: the command-line overrides, then `hydra.sweeper.params`
    for keys the command line leaves alone (it wins, as in Hydra's sweepers), without
    storage paths (paths.*, tracking.*, hydra.*)."""
    definition: dict[str, str] = {}
    for override in OmegaConf.to_container(config.hydra.overrides.task, resolve=False):
        if not _is_storage_override(override):
            key, _, value = override.partition("=")
            definition[key] = value
    params = OmegaConf.select(config, "hydra.sweeper.params")
    params = OmegaConf.to_container(params, resolve=False) if params is not None else {}
    for key, value in params.items():
        definition.setdefault(str(key), str(value))
    return definition


def sweep_run_name(config: DictConfig) -> str:
    definition = sweep_definition(config)
    name = "sweep " + " ".join(f"{k}={v}" for k, v in definition.items()) if definition else "sweep"
    return name if len(name) <= MAX_RUN_NAME else name[: MAX_RUN_NAME - 3] + "..."


# --------------------------------------------------------------------------- state file

def _state_path(sweep_dir: str | Path) -> Path:
    return Path(sweep_dir) / STATE_FILE


def _read_state(sweep_dir: str | Path) -> dict | None:
    path = _state_path(sweep_dir)
    return json.loads(path.read_text()) if path.exists() else None


def _write_state(sweep_dir: str | Path, state: dict) -> None:
    path = _state_path(sweep_dir)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, path)


def _lock(sweep_dir: str | Path) -> FileLock:
    return FileLock(str(_state_path(sweep_dir)) + ".lock", timeout=120)


def _open_parent(state: dict, experiment_name: str, artifact_location: str | None) -> str:
    client = MlflowClient(state["tracking_uri"])
    experiment_id = get_or_create_experiment(client, experiment_name, artifact_location)
    tags = {SWEEP_TAG: "true", SWEEP_ID_TAG: state["sweep_id"], "relevance.sweep.dir": state["sweep_dir"],
            "relevance.sweep.sweeper": state["sweeper"], "relevance.sweep.launcher": state["launcher"],
            "relevance.sweep.definition": json.dumps(state["definition"])[:5000]}
    if state.get("outer_parent"):
        tags["mlflow.parentRunId"] = state["outer_parent"]
    if state.get("parents"):
        tags["relevance.sweep.first_parent"] = next(iter(state["parents"].values()))
    run = client.create_run(experiment_id, run_name=state["run_name"], tags=tags)
    log.info("sweep parent run %s (%s) in experiment %s", run.info.run_id, state["run_name"], experiment_name)
    return run.info.run_id


def _short_target(config: DictConfig, key: str) -> str:
    target = OmegaConf.select(config, f"hydra.{key}._target_") or "?"
    return str(target).rsplit(".", 1)[-1]


# --------------------------------------------------------------------------- the callback

class MlflowSweepCallback(Callback):
    """See the module docstring. Holds only plain data: Hydra pickles it into joblib workers."""

    def __init__(self) -> None:
        self.sweep_dir: str | None = None
        self.previous_env: str | None = None
        self.ended = False

    # launcher process ------------------------------------------------------
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra sets HydraConfig only per job, so before the first job `${hydra:runtime.cwd}`
        # (paths.root's default, hence hydra.sweep.dir and tracking_uri) cannot resolve, in
        # this callback or in the sweeper/launcher that read hydra.sweep.dir next. The master
        # config is what they should see.
        HydraConfig.instance().set_config(config)
        self.sweep_dir = str(Path(str(config.hydra.sweep.dir)).absolute())
        Path(self.sweep_dir).mkdir(parents=True, exist_ok=True)
        self.previous_env = os.environ.get(PARENT_RUN_ENV)
        self.ended = False
        state = {
            "sweep_id": uuid.uuid4().hex, "sweep_dir": self.sweep_dir,
            "tracking_uri": str(config.tracking.tracking_uri),
            "artifact_location": config.tracking.artifact_location,
            "run_name": sweep_run_name(config), "definition": sweep_definition(config),
            "sweeper": _short_target(config, "sweeper"), "launcher": _short_target(config, "launcher"),
            "outer_parent": self.previous_env, "primary_experiment": str(config.tracking.experiment_name),
            "parents": {},
        }
        with _lock(self.sweep_dir):
            parent = _open_parent(state, state["primary_experiment"], state["artifact_location"])
            state["parents"][state["primary_experiment"]] = parent
            _write_state(self.sweep_dir, state)
        os.environ[PARENT_RUN_ENV] = parent
        atexit.register(self._end_if_aborted)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._end(aborted=False)

    # job process (the launcher's, or a worker's) ------------------------------
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if OmegaConf.select(config, "hydra.mode") != RunMode.MULTIRUN:
            return
        sweep_dir = str(Path(str(config.hydra.sweep.dir)).absolute())
        if not _state_path(sweep_dir).exists():
            return  # not started by on_multirun_start (e.g. the callback was added mid-way)
        experiment = str(config.tracking.experiment_name)
        with _lock(sweep_dir):
            state = _read_state(sweep_dir)
            parent = state["parents"].get(experiment)
            if parent is None:
                parent = _open_parent(state, experiment, config.tracking.artifact_location)
                state["parents"][experiment] = parent
                _write_state(sweep_dir, state)
        os.environ[PARENT_RUN_ENV] = parent

    # ending ------------------------------------------------------------------
    def _end_if_aborted(self) -> None:
        if not self.ended:
            self._end(aborted=True)

    def _end(self, aborted: bool) -> None:
        if self.ended or self.sweep_dir is None:
            return
        self.ended = True
        atexit.unregister(self._end_if_aborted)  # a no-op when it was not registered
        state = _read_state(self.sweep_dir) or {}
        records = read_job_records(self.sweep_dir)
        statuses = []
        for experiment, parent in state.get("parents", {}).items():
            try:
                summary = finish_parent(MlflowClient(state["tracking_uri"]), parent, records, Path(self.sweep_dir),
                                        aborted)
                statuses.append(summary["status"])
            except Exception:
                log.exception("could not summarise sweep parent %s (%s); ending it FAILED", parent, experiment)
                MlflowClient(state["tracking_uri"]).set_terminated(parent, "FAILED")
                statuses.append("FAILED")
        if self.previous_env is None:
            os.environ.pop(PARENT_RUN_ENV, None)
        else:
            os.environ[PARENT_RUN_ENV] = self.previous_env
        if not aborted and statuses and all(s == "FAILED" for s in statuses):
            parents = ", ".join(state["parents"].values())
            # SystemExit, not an Exception: Hydra turns a callback's exceptions into warnings.
            raise SystemExit(f"every job of the sweep failed (parent run {parents}): see the errors above "
                             f"and each child run's `error` tag")


# --------------------------------------------------------------------------- the summary

def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def summarize_parent(client: MlflowClient, parent_id: str, records: list[dict]) -> dict:
    """Children and reused runs of one parent, with counts and the best run by dev_f1."""
    parent = client.get_run(parent_id)
    children = search_all(client, [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'")
    mine = [r for r in records if r.get("parent_run_id") == parent_id]
    reused_ids = list(dict.fromkeys(r["reused_run_id"] for r in mine if r["status"] == "skipped"))
    no_run_failures = [r for r in mine if r["status"] == "failed" and r.get("stage") == "setup"]
    rows = [_row(run, "child") for run in sorted(children, key=lambda r: r.info.start_time or 0)]
    child_ids = {row["run_id"] for row in rows}
    rows += [_row(client.get_run(run_id), "reused") for run_id in reused_ids if run_id not in child_ids]
    for record in no_run_failures:
        rows.append({"run_id": None, "run_name": ",".join(record.get("overrides") or []), "status": "FAILED",
                     "source": "no run", "error": record.get("error")})
    counts = {
        "jobs_finished": sum(r["source"] == "child" and r["status"] == "FINISHED" for r in rows),
        "jobs_failed": sum(r["status"] == "FAILED" for r in rows),
        "jobs_skipped": sum(r["status"] == "skipped" for r in mine),
        "jobs_running": sum(r["source"] == "child" and r["status"] == "RUNNING" for r in rows),
    }
    counts["jobs_total"] = sum(counts.values())
    scored = [r for r in rows if r["status"] == "FINISHED" and _finite(r.get("dev_f1")) is not None]
    best = max(scored, key=lambda r: r["dev_f1"]) if scored else None
    return {"parent_run_id": parent_id, "experiment_id": parent.info.experiment_id, "run_name": parent.info.run_name,
            "sweep_id": parent.data.tags.get(SWEEP_ID_TAG), "counts": counts, "reused_run_ids": reused_ids,
            "best": {k: best[k] for k in ("run_id", "run_name", "dev_f1")} if best else None, "runs": rows}


def _row(run, source: str) -> dict:
    row = {"run_id": run.info.run_id, "run_name": run.info.run_name, "status": run.info.status, "source": source}
    for key in SUMMARY_METRICS:
        row[key] = _finite(run.data.metrics.get(key))
    for tag in ("task", "augment"):
        row[tag] = run.data.tags.get(tag)
    if run.info.status == "FAILED":
        row["error"] = run.data.tags.get("error")
    return row


def summary_markdown(summary: dict) -> str:
    counts = summary["counts"]
    lines = [f"# {summary['run_name']}", "",
             (f"finished {counts['jobs_finished']}, skipped (identical finished run reused) {counts['jobs_skipped']}, "
              f"failed {counts['jobs_failed']}, total {counts['jobs_total']}"), ""]
    if summary["best"]:
        best = summary["best"]
        lines += [f"best: `{best['run_name']}` ({best['run_id']}), dev_f1 {best['dev_f1']:.4f}", ""]
    header = ["run", "status", "source", *SUMMARY_METRICS, "run id"]
    rows = [[row.get("run_name") or "", row["status"], row["source"],
             *(f"{row[k]:.4f}" if row.get(k) is not None else "" for k in SUMMARY_METRICS), row.get("run_id") or ""]
            for row in summary["runs"]]
    lines.append(markdown_table(header, rows))
    failed = [r for r in summary["runs"] if r["status"] == "FAILED" and r.get("error")]
    if failed:
        lines += ["", "## errors", ""] + [f"- `{r['run_name']}`: {r['error'][:500]}" for r in failed]
    return "\n".join(lines) + "\n"


def finish_parent(client: MlflowClient, parent_id: str, records: list[dict], sweep_dir: Path,
                  aborted: bool = False) -> dict:
    summary = summarize_parent(client, parent_id, records)
    counts = summary["counts"]
    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, 0) for k, v in counts.items()]
    tags = [RunTag(REUSED_TAG, ",".join(summary["reused_run_ids"])[:8000])] if summary["reused_run_ids"] else []
    if summary["best"]:
        metrics.append(Metric("best_dev_f1", summary["best"]["dev_f1"], now, 0))
        tags += [RunTag("best_run_id", summary["best"]["run_id"]), RunTag("best_run_name", summary["best"]["run_name"])]
    if aborted:
        tags.append(RunTag("relevance.sweep.error", "the sweep stopped before its end (an error or an interrupt): "
                                                    "see the console; finished jobs are kept and a rerun resumes"))
    client.log_batch(parent_id, metrics=metrics, tags=tags)
    client.log_dict(parent_id, summary, "sweep_summary.json")
    client.log_text(parent_id, summary_markdown(summary), "sweep_summary.md")
    for name in ("multirun.yaml", "optimization_results.yaml"):
        if (sweep_dir / name).exists():
            client.log_artifact(parent_id, str(sweep_dir / name), "sweep")
    all_failed = counts["jobs_total"] > 0 and counts["jobs_finished"] + counts["jobs_skipped"] == 0
    status = "FAILED" if aborted or all_failed else "FINISHED"
    client.set_terminated(parent_id, status)
    log.info("sweep parent %s %s: %s; best %s", parent_id, status, counts, summary["best"])
    summary["status"] = status
    return summary
