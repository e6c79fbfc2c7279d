"""One MLflow run per training job: params, tags, metrics, datasets, artifacts; its end
(FINISHED, FAILED, KILLED with the reason), its heartbeat, and its continuation after a kill.

Faults (docs/failures.md): a store locked by another process is waited on (relevance.tracking.store_retry);
once training has finished (`TrackedRun.training_finished`), what the store still refuses is kept in a
pending record in the run's output folder (relevance.tracking.pending), never lost; a full disk ends the
run FAILED with a message naming the disk (relevance.files.full_disk_error)."""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from relevance.files import DiskFullError, disk_full_in, full_disk_error
from relevance.runtime import RunInterrupted
from relevance.tracking import store_retry
from relevance.tracking.heartbeat import Heartbeat, liveness_tags
from relevance.tracking.pending import COMMAND as PENDING_COMMAND
from relevance.tracking.pending import PendingResults
from relevance.tracking.store import sqlite_path, tracking_client
from relevance.tracking.system_metrics import SystemMetrics
from relevance.tracking.tags import (ERROR_TAG, KILL_REASON_TAG, MAX_PARAMS_PER_CALL, OUTPUT_DIR_TAG,
                                     PREVIOUS_PARENT_TAG, PREVIOUS_RUN_NAME_TAG, RESUMED_AFTER_TAG,
                                     RESUMED_FROM_STEP_TAG)

log = logging.getLogger(__name__)

MAX_PARAM_VALUE = 6000
PARENT_RUN_ENV = "RELEVANCE_PARENT_RUN_ID"  # set by the sweep callback; MLFLOW_RUN_ID would resume that run instead
GROUP_TAGS = ("model", "task", "data", "quant", "peft", "head", "trainer")
PARENT_TAG = "mlflow.parentRunId"
DEFAULT_HEARTBEAT_SECONDS = 30.0  # tracking.heartbeat_seconds


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """{"model": {"name": "x"}} → {"model.name": "x"}; lists stay whole values."""
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: node}


def config_params(cfg: DictConfig) -> dict[str, str]:
    resolved = OmegaConf.to_container(cfg, resolve=True)
    return {key: _param_value(value) for key, value in flatten(resolved).items()}


def _param_value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value)
    return text if len(text) <= MAX_PARAM_VALUE else text[: MAX_PARAM_VALUE - 3] + "..."


def augment_mix_name(cfg: DictConfig) -> str:
    return "+".join(cfg.augment.keys())


def group_tags(cfg: DictConfig) -> dict[str, str]:
    """Tags the MLflow UI can group and filter by: the option chosen in each config group,
    and the run's identity (config, data, code: relevance.tracking.identity)."""
    # imported here: the identity reads the data and strategy modules, which the readers of
    # runs (relevance.tracking.runs, compare) that import this module don't need
    from relevance.tracking.identity import run_identity

    tags = {group: str(cfg[group].name) for group in GROUP_TAGS}
    tags["augment"] = augment_mix_name(cfg)
    tags.update(run_identity(cfg).tags())
    return tags


def run_name_from_overrides(overrides: list[str], cfg: DictConfig) -> str:
    """The overrides that make this run different (`model=x,augment=[a,b]`), or its main choices."""
    kept = [o for o in overrides if not o.split("=", 1)[0].lstrip("+~").startswith(("paths.", "tracking.", "hydra."))]
    if kept:
        return ",".join(kept)
    return f"{cfg.model.name}-{cfg.task.key}-{augment_mix_name(cfg)}"


def search_all(client: MlflowClient, experiment_ids: list[str], filter_string: str = "",
               order_by: list[str] | None = None) -> list:
    """Every run matching the filter, page after page (search_runs returns at most 1000 at a time)."""
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=1000, order_by=order_by,
                                  page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def get_or_create_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    from relevance.tracking.links import experiment_tags, mark_experiment  # the UI's runs pages (links.py)

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        mark_experiment(client, experiment.experiment_id, experiment.tags or {})
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location, tags=experiment_tags())
    except mlflow.exceptions.MlflowException:
        # A parallel job of the same sweep created it first.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


class ResultsPendingError(RuntimeError):
    """Training finished, but the store could not take its results: they wait in a pending record."""


@dataclass(frozen=True)
class Resume:
    """Continue this KILLED run (relevance.tracking.interrupted) from this optimizer step (0: the start)."""

    run_id: str
    step: int = 0


class TrackedRun:
    """Context manager around one MLflow run, new or continued (`resume`). While open, a
    heartbeat thread keeps its `relevance.heartbeat` tag fresh (relevance.tracking.heartbeat).
    Ends FINISHED; FAILED on an error, with it as a tag and the traceback as an artifact;
    KILLED on a stop signal or an interrupt, with the reason (`relevance.kill_reason`): a
    run never stays RUNNING once its process ends. A continued run is this attempt's: it takes
    this attempt's name (the earlier one in `relevance.previous_run_name`) and sheds the
    earlier attempt's kill reason and error.

    With an `output_dir` (the run's local folder, tagged `relevance.output_dir`): once the caller says
    `training_finished()`, a call the store refuses (busy through every retry, its disk or the artifact
    disk full) and every call after it go to a pending record there (relevance.tracking.pending), and the
    run ends by raising ResultsPendingError, which names the record and the command that logs it. A full
    disk anywhere ends the run FAILED with a DiskFullError naming the disk (`disk_folders`: what else the
    run writes to, e.g. {"paths.cache_dir": ...})."""

    def __init__(self, tracking_cfg: DictConfig, run_name: str, tags: dict[str, str], resume: Resume | None = None,
                 output_dir: Path | None = None, disk_folders: dict[str, Any] | None = None):
        mlflow.set_tracking_uri(tracking_cfg.tracking_uri)
        store_retry.configure(tracking_cfg)
        self.tracking_uri = str(tracking_cfg.tracking_uri)
        self.client = tracking_client(tracking_cfg.tracking_uri)
        self.experiment_id = get_or_create_experiment(
            self.client, tracking_cfg.experiment_name, tracking_cfg.artifact_location)
        self.run_name = run_name
        self.tags = dict(tags)
        self.output_dir = Path(output_dir).absolute() if output_dir is not None else None
        if self.output_dir is not None:
            self.tags[OUTPUT_DIR_TAG] = str(self.output_dir)
        store_file = sqlite_path(self.tracking_uri)
        self.disk_folders = {"the run's output folder": self.output_dir, **(disk_folders or {}),
                             "the artifact store (tracking.artifact_location)": tracking_cfg.artifact_location,
                             "the tracking store (tracking.tracking_uri)": store_file.parent if store_file else None}
        self._training_finished = False
        self._pending: PendingResults | None = None
        self._pending_store_answers = False  # the store took calls after it refused (a full artifact disk)
        parent = os.environ.get(PARENT_RUN_ENV)
        if parent:
            self.tags[PARENT_TAG] = parent
        self.resume = resume
        self.heartbeat_seconds = float(tracking_cfg.get("heartbeat_seconds") or DEFAULT_HEARTBEAT_SECONDS)
        self.run_id: str | None = None
        self._heartbeat: Heartbeat | None = None
        self._system_metrics = SystemMetrics(tracking_cfg)  # system/* metrics while open (tracking.system_metrics)
        self._logged_params: dict[str, str] = {}  # a continued run's params: logged once, never changed
        self._logged_datasets: set[tuple[str, str]] = set()

    def __enter__(self) -> "TrackedRun":
        if self.resume is None:
            run = self.client.create_run(self.experiment_id, run_name=self.run_name,
                                         tags={**self.tags, **liveness_tags()})
            self.run_id = run.info.run_id
            log.info("MLflow run %s (%s) in experiment %s", self.run_id, self.run_name, self.experiment_id)
        else:
            self._continue(self.resume)
        # the heartbeat never waits out a busy store: a missed beat is tried again at the next one
        self._heartbeat = Heartbeat(getattr(self.client, "unwrapped", self.client), lambda: [self.run_id],
                                    self.heartbeat_seconds).start()
        self._system_metrics.start(self.run_id, resumed=self.resume is not None)
        return self

    def training_finished(self) -> None:
        """From now on, results the store refuses are kept in a pending record, not lost (see the class)."""
        self._training_finished = True

    @property
    def pending(self) -> PendingResults | None:
        return self._pending

    def _store(self, what: str, call, record) -> None:
        """`call()`; once the store refused a finished training's results, `record(pending record)` instead.
        A full disk before training finished is a DiskFullError naming the disk."""
        if self._pending is None:
            try:
                call()
                return
            except Exception as exc:
                busy = isinstance(exc, store_retry.StoreBusyError | store_retry.StoreFullError)
                full = disk_full_in(exc) is not None
                if not (busy or full) or not self._training_finished or self.output_dir is None:
                    if full and not isinstance(exc, DiskFullError):
                        raise full_disk_error(exc, self._folders(), f"logging {what}") from exc
                    raise
                cause = str(exc) if isinstance(exc, DiskFullError) else (
                    str(full_disk_error(exc, self._folders(), f"logging {what}")) if full else str(exc))
                self._pending = PendingResults(self.output_dir, self.run_id, self.tracking_uri, cause)
                self._pending_store_answers = not busy  # the artifact disk is full, the store itself answers
                log.error("training finished, but the tracking store refused %s (%s): keeping the run's results in "
                          "%s", what, cause, self._pending.folder)
        record(self._pending)

    def _folders(self) -> dict[str, Any]:
        return {label: folder for label, folder in self.disk_folders.items() if folder}

    def _continue(self, resume: Resume) -> None:
        """The KILLED run RUNNING again, here, tagged with where it resumes from and after what;
        a sweep re-run adopts it as a child of its own parent."""
        run = self.client.get_run(resume.run_id)
        self.run_id = resume.run_id
        self._logged_params = dict(run.data.params)
        self._logged_datasets = {(i.dataset.name, i.dataset.digest) for i in run.inputs.dataset_inputs}
        old = run.data.tags
        tags = {**self.tags, **liveness_tags(), RESUMED_FROM_STEP_TAG: str(resume.step),
                RESUMED_AFTER_TAG: old.get(KILL_REASON_TAG, "interrupted")}
        if old.get(PARENT_TAG) and tags.get(PARENT_TAG, old[PARENT_TAG]) != old[PARENT_TAG]:
            tags[PREVIOUS_PARENT_TAG] = old[PARENT_TAG]
        earlier_name = run.info.run_name
        if not self.run_name or self.run_name == earlier_name:
            self.run_name = earlier_name
        elif earlier_name:
            tags[PREVIOUS_RUN_NAME_TAG] = earlier_name
        self.client.update_run(self.run_id, status="RUNNING", name=self.run_name)
        self.set_tags(tags)
        for earlier_attempts in (KILL_REASON_TAG, ERROR_TAG):  # what happened to that attempt, not to this one
            if earlier_attempts in old:
                self.client.delete_tag(self.run_id, earlier_attempts)
        log.info("MLflow run %s (%s) continues from step %d after: %s", self.run_id, self.run_name, resume.step,
                 tags[RESUMED_AFTER_TAG])

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._heartbeat is not None:
            self._heartbeat.stop()
        self._system_metrics.stop()
        if exc is None:
            self._store("its FINISHED status", lambda: self.client.set_terminated(self.run_id, "FINISHED"),
                        lambda pending: None)
            if self._pending is not None:
                self._end_pending()
        elif isinstance(exc, Exception):
            if self._pending is not None:  # it failed after all: nothing of it is to be logged as finished
                self._pending.discard()
                self._pending = None
            if disk_full_in(exc) is not None and not isinstance(exc, DiskFullError):
                clear = full_disk_error(exc, self._folders(), f"run {self.run_id} was writing")
                self._end_failed(type(clear), clear, tb)
                raise clear from exc
            self._end_failed(exc_type, exc, tb)
        else:  # a stop signal (RunInterrupted), Ctrl-C, sys.exit
            if self._pending is not None:  # not finished after all: a re-run continues it from its checkpoint
                self._pending.discard()
                self._pending = None
            reason = exc.reason if isinstance(exc, RunInterrupted) else f"{exc_type.__name__}: {exc}".rstrip(": ")
            self.client.set_tag(self.run_id, KILL_REASON_TAG, reason[:5000])
            self.client.set_terminated(self.run_id, "KILLED")
            log.warning("MLflow run %s KILLED: %s", self.run_id, reason)
        return False

    def _end_pending(self) -> None:
        """The record finished (to end FINISHED once logged); meanwhile the run FAILED if the store answers
        (a full artifact disk) or left RUNNING (busy, its disk full); ResultsPendingError says where and
        what to run."""
        self._pending.finish("FINISHED")
        cause = self._pending.record["cause"]
        state = "RUNNING"
        if self._pending_store_answers:
            try:
                self.client.log_batch(self.run_id, tags=[RunTag(ERROR_TAG, f"results pending in "
                                                                f"{self._pending.folder}: {cause}"[:5000])])
                self.client.set_terminated(self.run_id, "FAILED")
                state = "FAILED"
            except Exception as failure:  # noqa: BLE001 - the record holds everything; the message says it
                log.error("run %s: could not be marked FAILED meanwhile: %s: %s", self.run_id,
                          type(failure).__name__, failure)
        message = (f"training finished, but the tracking store could not take its results: {cause}. Nothing is "
                   f"lost: they are kept in {self._pending.folder} (metrics, params, tags, the model and evaluation "
                   f"artifacts). Run {self.run_id} stays {state} until they are logged, by the next run of this "
                   f"config or by: {PENDING_COMMAND} {self.output_dir}")
        log.error(message)
        raise ResultsPendingError(message)

    def _end_failed(self, exc_type, exc, tb) -> None:
        """FAILED with the error: the tag first (a run left RUNNING with it is known to have failed:
        relevance.tracking.interrupted), then the status, then the traceback artifact, each tried on its own,
        so a full artifact disk cannot leave the run RUNNING. A step that fails is logged: the run's own
        error is what propagates."""
        message = f"{exc_type.__name__}: {exc}"
        steps = (("its error tag", lambda: self.client.set_tag(self.run_id, ERROR_TAG, message[:5000])),
                 ("its FAILED status", lambda: self.client.set_terminated(self.run_id, "FAILED")),
                 ("its traceback (error.txt)", lambda: self.client.log_text(
                     self.run_id, "".join(traceback.format_exception(exc_type, exc, tb)), "error.txt")))
        for what, step in steps:
            try:
                step()
            except Exception as failure:  # noqa: BLE001 - the run's own error must propagate, not this one
                log.error("MLflow run %s failed (%s) and %s could not be recorded: %s: %s", self.run_id,
                          message[:200], what, type(failure).__name__, failure)
                if isinstance(failure, store_retry.StoreBusyError | store_retry.StoreFullError):
                    break  # the store takes nothing now: the next run of the identity ends this one

    def log_params(self, params: dict[str, Any]) -> None:
        """Batched; a continued run keeps the params it has (MLflow never changes one: only
        storage paths, such as the new output folder, can differ between the same identity's jobs)."""
        items = [Param(k, _param_value(v)) for k, v in params.items() if k not in self._logged_params]
        for start in range(0, len(items), MAX_PARAMS_PER_CALL):
            batch = items[start:start + MAX_PARAMS_PER_CALL]
            self._store("params", lambda: self.client.log_batch(self.run_id, params=batch),
                        lambda pending: pending.add("log_params", params={p.key: p.value for p in batch}))

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for start in range(0, len(items), 1000):
            batch = items[start:start + 1000]
            self._store("metrics", lambda: self.client.log_batch(self.run_id, metrics=batch),
                        lambda pending: pending.add("log_metrics", metrics={m.key: m.value for m in batch},
                                                    timestamp=now, step=step))

    def set_tags(self, tags: dict[str, str]) -> None:
        items = [RunTag(k, str(v)) for k, v in tags.items()]
        self._store("tags", lambda: self.client.log_batch(self.run_id, tags=items),
                    lambda pending: pending.add("set_tags", tags={t.key: t.value for t in items}))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self._store(f"the artifact {path}", lambda: self.client.log_artifact(self.run_id, str(path), artifact_path),
                    lambda pending: pending.add("log_artifact", path=str(Path(path).absolute()),
                                                artifact_path=artifact_path))

    def log_artifacts(self, directory: Path, artifact_path: str | None = None) -> None:
        self._store(f"the artifacts {directory}",
                    lambda: self.client.log_artifacts(self.run_id, str(directory), artifact_path),
                    lambda pending: pending.add("log_artifacts", path=str(Path(directory).absolute()),
                                                artifact_path=artifact_path))

    def log_dict(self, data: dict, artifact_file: str) -> None:
        self._store(f"the artifact {artifact_file}", lambda: self.client.log_dict(self.run_id, data, artifact_file),
                    lambda pending: self._keep_for_later(pending, artifact_file,
                                                         lambda out: json.dump(data, out, indent=2)))

    def log_table(self, frame, artifact_file: str) -> None:
        self._store(f"the table {artifact_file}", lambda: self.client.log_table(self.run_id, frame, artifact_file),
                    lambda pending: self._keep_for_later(pending, artifact_file,
                                                         lambda out: out.write(frame.to_json(orient="split"))))

    @staticmethod
    def _keep_for_later(pending: PendingResults, artifact_file: str, write) -> None:
        kept = pending.keep_file(artifact_file, write)
        folder = str(Path(artifact_file).parent)
        pending.add("log_artifact", path=str(kept), artifact_path=None if folder == "." else folder)

    def log_dataset(self, frame, name: str, source: str, context: str) -> None:
        """The table as an MLflow dataset (with its digest) attached to this run as an input."""
        from mlflow.entities import DatasetInput, InputTag

        dataset = mlflow.data.from_pandas(frame, source=source, name=name,
                                          targets="label" if "label" in frame.columns else None)
        entity = dataset._to_mlflow_entity()
        if (entity.name, entity.digest) in self._logged_datasets:  # a continued run has it already
            return
        self.client.log_inputs(self.run_id, [DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])])
