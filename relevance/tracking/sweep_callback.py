"""Hydra callback: one MLflow parent run per multirun, every job a child run of it.

Enabled for every `python -m relevance.train -m ...` by `conf/hydra/callbacks/mlflow_sweep.yaml`.

`on_multirun_start` (launcher process, before any job) opens the parent in the experiment
of the sweep's base config, status RUNNING, named after the sweep definition and tagged
`relevance.sweep=true`, `relevance.sweep.id=<uuid>` (relevance.tracking.sweep_parents), and
exports its id in `RELEVANCE_PARENT_RUN_ID` (not `MLFLOW_RUN_ID`, which would make MLflow
resume the parent itself). Each job's `TrackedRun` reads that variable and sets
`mlflow.parentRunId`.

`on_job_start` runs in the job's own process (also in joblib's loky workers) and points the
variable at the parent of the job's experiment, created on first use: a sweep over
`task=qc,qi` has one parent per experiment. The sweep's state file, not process
inheritance, is what makes this correct for worker processes; loky workers do also
inherit the variable set in `on_multirun_start` (they are spawned after it), which
tests/test_parallel_sweep.py checks on every child.

Each job writes what it did into its folder (relevance.tracking.job, .job_record); in
multirun mode a job's error never takes the sweep down. `on_multirun_end` summarises each
parent from those records and its children and ends it (relevance.tracking.sweep_summary):
FINISHED, or FAILED when every job failed (the command then exits with status 1, so CI
notices). If the sweep itself crashes before `on_multirun_end` (an error in the sweeper,
Ctrl-C), an `atexit` hook writes the same summary and ends the parents FAILED, so no parent
stays RUNNING; when a stop signal (`tracking.stop_signals`: SIGTERM, SLURM's SIGUSR1)
stopped it, KILLED with the reason.

While the sweep runs, a heartbeat thread of the launcher process keeps its parents'
`relevance.heartbeat` fresh. A launcher that vanished (kill -9, a lost node) cannot end its
parents: the next sweep with the same definition ends them KILLED ("process vanished: …",
relevance.tracking.interrupted) before opening its own, and its jobs continue the killed
runs (relevance.tracking.training_run) as children of the new parent.

A sweep logs to one tracking store (the base config's `tracking.tracking_uri`).
"""

from __future__ import annotations

import atexit
import logging
import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from relevance.runtime import stop_on_signals, stop_requested
from relevance.tracking.heartbeat import Heartbeat
from relevance.tracking.interrupted import end_vanished_sweep_parents
from relevance.tracking.job_record import read_job_records
from relevance.tracking.mlflow_run import PARENT_RUN_ENV
from relevance.tracking.store import tracking_client
from relevance.tracking.sweep_parents import (new_sweep_state, parent_for_experiment, read_state, start_sweep,
                                              state_path, sweep_definition)
from relevance.tracking.sweep_summary import finish_parent

log = logging.getLogger(__name__)

_HEARTBEATS: dict[str, Heartbeat] = {}  # sweep dir → its parents' heartbeat (not on the callback: Hydra pickles it)


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
        stop_on_signals(config.tracking.stop_signals)
        client = tracking_client(str(config.tracking.tracking_uri))
        end_vanished_sweep_parents(client, sweep_definition(config), float(config.tracking.stale_after_seconds))
        parent = start_sweep(new_sweep_state(config, self.sweep_dir, outer_parent=self.previous_env))
        os.environ[PARENT_RUN_ENV] = parent
        atexit.register(self._end_if_aborted)
        sweep_dir = self.sweep_dir
        _HEARTBEATS[sweep_dir] = Heartbeat(client, lambda: (read_state(sweep_dir) or {}).get("parents", {}).values(),
                                           float(config.tracking.heartbeat_seconds)).start()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._end(aborted=False)

    # job process (the launcher's, or a worker's) ------------------------------
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if OmegaConf.select(config, "hydra.mode") != RunMode.MULTIRUN:
            return
        sweep_dir = str(Path(str(config.hydra.sweep.dir)).absolute())
        if not state_path(sweep_dir).exists():
            return  # not started by on_multirun_start (e.g. the callback was added mid-way)
        os.environ[PARENT_RUN_ENV] = parent_for_experiment(
            sweep_dir, str(config.tracking.experiment_name), config.tracking.artifact_location)

    # ending ------------------------------------------------------------------
    def _end_if_aborted(self) -> None:
        if not self.ended:
            self._end(aborted=True)

    def _end(self, aborted: bool) -> None:
        if self.ended or self.sweep_dir is None:
            return
        self.ended = True
        atexit.unregister(self._end_if_aborted)  # a no-op when it was not registered
        heartbeat = _HEARTBEATS.pop(self.sweep_dir, None)
        if heartbeat is not None:
            heartbeat.stop()
        state = read_state(self.sweep_dir) or {}
        records = read_job_records(self.sweep_dir)
        stop = stop_requested()
        statuses = []
        for experiment, parent in state.get("parents", {}).items():
            try:
                summary = finish_parent(MlflowClient(state["tracking_uri"]), parent, records, Path(self.sweep_dir),
                                        aborted, killed_reason=stop.reason if stop and aborted else None)
                statuses.append(summary["status"])
            except Exception:
                log.exception("could not summarise sweep parent %s (%s); ending it FAILED", parent, experiment)
                MlflowClient(state["tracking_uri"]).set_terminated(parent, "FAILED")
                statuses.append("FAILED")
        if not aborted and state.get("parents"):  # what the sweep did, and where to look next
            from relevance.tracking.runs import print_sweep_summary
            print_sweep_summary(state["tracking_uri"], list(state["parents"].values()))
        if self.previous_env is None:
            os.environ.pop(PARENT_RUN_ENV, None)
        else:
            os.environ[PARENT_RUN_ENV] = self.previous_env
        if not aborted and statuses and all(s == "FAILED" for s in statuses):
            parents = ", ".join(state["parents"].values())
            # SystemExit, not an Exception: Hydra turns a callback's exceptions into warnings.
            raise SystemExit(f"every job of the sweep failed (parent run {parents}): see the errors above "
                             f"and each child run's `error` tag")
