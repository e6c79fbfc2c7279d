"""One MLflow run per training job: params, tags, metrics, datasets, artifacts; its end
(FINISHED, FAILED, KILLED with the reason), its heartbeat, and its continuation after a kill."""

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

from relevance.runtime import RunInterrupted
from relevance.tracking.heartbeat import Heartbeat, liveness_tags
from relevance.tracking.store import tracking_client
from relevance.tracking.tags import (KILL_REASON_TAG, PREVIOUS_PARENT_TAG, PREVIOUS_RUN_NAME_TAG, RESUMED_AFTER_TAG,
                                     RESUMED_FROM_STEP_TAG)

log = logging.getLogger(__name__)

MAX_PARAMS_PER_CALL = 100
MAX_PARAM_VALUE = 6000
PARENT_RUN_ENV = "RELEVANCE_PARENT_RUN_ID"  # set by the sweep callback; MLFLOW_RUN_ID would resume that run instead
GROUP_TAGS = ("model", "task", "data", "quant", "peft", "head", "trainer")
PARENT_TAG = "mlflow.parentRunId"
DEFAULT_HEARTBEAT_SECONDS = 30.0  # tracking.heartbeat_seconds
ERROR_TAG = "error"  # a FAILED run's error; relevance.tracking.interrupted reads it


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
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except mlflow.exceptions.MlflowException:
        # A parallel job of the same sweep created it first.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


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
    earlier attempt's kill reason and error."""

    def __init__(self, tracking_cfg: DictConfig, run_name: str, tags: dict[str, str], resume: Resume | None = None):
        mlflow.set_tracking_uri(tracking_cfg.tracking_uri)
        self.client = tracking_client(tracking_cfg.tracking_uri)
        self.experiment_id = get_or_create_experiment(
            self.client, tracking_cfg.experiment_name, tracking_cfg.artifact_location)
        self.run_name = run_name
        self.tags = dict(tags)
        parent = os.environ.get(PARENT_RUN_ENV)
        if parent:
            self.tags[PARENT_TAG] = parent
        self.resume = resume
        self.heartbeat_seconds = float(tracking_cfg.get("heartbeat_seconds") or DEFAULT_HEARTBEAT_SECONDS)
        self.run_id: str | None = None
        self._heartbeat: Heartbeat | None = None
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
        self._heartbeat = Heartbeat(self.client, lambda: [self.run_id], self.heartbeat_seconds).start()
        return self

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
        if exc is None:
            self.client.set_terminated(self.run_id, "FINISHED")
        elif isinstance(exc, Exception):
            self._end_failed(exc_type, exc, tb)
        else:  # a stop signal (RunInterrupted), Ctrl-C, sys.exit
            reason = exc.reason if isinstance(exc, RunInterrupted) else f"{exc_type.__name__}: {exc}".rstrip(": ")
            self.client.set_tag(self.run_id, KILL_REASON_TAG, reason[:5000])
            self.client.set_terminated(self.run_id, "KILLED")
            log.warning("MLflow run %s KILLED: %s", self.run_id, reason)
        return False

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

    def log_params(self, params: dict[str, Any]) -> None:
        """Batched; a continued run keeps the params it has (MLflow never changes one: only
        storage paths, such as the new output folder, can differ between the same identity's jobs)."""
        items = [Param(k, _param_value(v)) for k, v in params.items() if k not in self._logged_params]
        for start in range(0, len(items), MAX_PARAMS_PER_CALL):
            self.client.log_batch(self.run_id, params=items[start:start + MAX_PARAMS_PER_CALL])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for start in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[start:start + 1000])

    def set_tags(self, tags: dict[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_artifacts(self, directory: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(directory), artifact_path)

    def log_dict(self, data: dict, artifact_file: str) -> None:
        self.client.log_dict(self.run_id, data, artifact_file)

    def log_table(self, frame, artifact_file: str) -> None:
        self.client.log_table(self.run_id, frame, artifact_file)

    def log_dataset(self, frame, name: str, source: str, context: str) -> None:
        """The table as an MLflow dataset (with its digest) attached to this run as an input."""
        from mlflow.entities import DatasetInput, InputTag

        dataset = mlflow.data.from_pandas(frame, source=source, name=name,
                                          targets="label" if "label" in frame.columns else None)
        entity = dataset._to_mlflow_entity()
        if (entity.name, entity.digest) in self._logged_datasets:  # a continued run has it already
            return
        self.client.log_inputs(self.run_id, [DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])])
