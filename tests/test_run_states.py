"""A run never ends in a state it did not reach, and a re-run continues only a KILLED run.

A run that failed stays FAILED with its error, even when its error handler could not mark it
(a full disk: the `error` tag written, the status not): the next run of its identity ends it
FAILED, not KILLED, and starts a new run from step 0. A run whose process vanished without an
error (kill -9) is still ended KILLED and continued (tests/test_kill_resume.py holds that
through the CLI). An attempt's tags are its own: a continued run takes the new attempt's name.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.entities import Run, RunData, RunInfo, RunTag
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from relevance.tracking.interrupted import IdentityRuns, identity_runs
from relevance.tracking.mlflow_run import Resume, TrackedRun
from relevance.tracking.tags import HOST_TAG, KILL_REASON_TAG, PID_TAG, RUN_IDENTITY_TAG
from tests.conftest import run_cli, tiny_run_args

DISK_FULL = "No space left on device"
ENDED_BY_TAG = "relevance.ended_by"  # who ended a run its own process could not end, and why
PREVIOUS_RUN_NAME_TAG = "relevance.previous_run_name"  # a continued run's name before this attempt

# Fails training at step 2 with a full disk, and makes the error handler fail as it would on that disk:
# the traceback artifact cannot be written, nor (the store on the same disk) the FAILED status.
FULL_DISK_HOOK = f"""
import errno
from mlflow.tracking import MlflowClient
from relevance.training.trainer import RelevanceTrainer

def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, {DISK_FULL!r})

_compute_loss = RelevanceTrainer.compute_loss
def _compute_loss_until_the_disk_fills(self, *args, **kwargs):
    if self.state.global_step >= 2:
        _disk_full()
    return _compute_loss(self, *args, **kwargs)

_set_terminated = MlflowClient.set_terminated
def _set_terminated_unless_failed(self, run_id, status=None, end_time=None):
    if status == "FAILED":
        _disk_full()
    return _set_terminated(self, run_id, status, end_time)

RelevanceTrainer.compute_loss = _compute_loss_until_the_disk_fills
MlflowClient.log_text = _disk_full
MlflowClient.set_terminated = _set_terminated_unless_failed
"""


def runs_of(root: Path) -> tuple[MlflowClient, list[Run]]:
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    experiment = client.get_experiment_by_name("relevance-qc")
    return client, client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def with_hook(monkeypatch, folder: Path, source: str) -> None:
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(source)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))


def test_a_failed_run_left_running_is_never_continued(tmp_path, shared_cache, monkeypatch):
    """The CEO's case: a run failed on a full disk and was left RUNNING with its error; a re-run of the
    same identity under another name continued it from step 0, and it ended FINISHED with the first
    attempt's name and error. Now the failed run ends FAILED with its error, and the re-run is new."""
    args = tiny_run_args(tmp_path, shared_cache, "trainer.epochs=1", "trainer.num_threads=1")
    with_hook(monkeypatch, tmp_path / "hook", FULL_DISK_HOOK)
    first = run_cli("train", [*args, "tracking.run_name=first-attempt"], cwd=tmp_path, check=False)
    assert first.returncode != 0 and DISK_FULL in first.stderr
    _, (failed,) = runs_of(tmp_path)
    assert failed.info.status == "RUNNING" and DISK_FULL in failed.data.tags["error"]  # what the disk left

    monkeypatch.delenv("PYTHONPATH")
    run_cli("train", [*args, "tracking.run_name=second-attempt"], cwd=tmp_path)
    client, (failed, rerun) = runs_of(tmp_path)
    assert failed.info.status == "FAILED" and DISK_FULL in failed.data.tags["error"]
    assert failed.info.run_name == "first-attempt" and "process" in failed.data.tags[ENDED_BY_TAG]
    assert KILL_REASON_TAG not in failed.data.tags

    assert rerun.info.status == "FINISHED" and rerun.info.run_name == "second-attempt"
    assert "error" not in rerun.data.tags and "relevance.resumed_from_step" not in rerun.data.tags
    loss_steps = [m.step for m in client.get_metric_history(rerun.info.run_id, "train_loss")]
    assert min(loss_steps) <= 2  # trained from the start


# --------------------------------------------------------------------------- the error handler

def tracking_cfg(root: Path):
    return OmegaConf.create({"tracking_uri": f"sqlite:///{root}/mlflow.db", "experiment_name": "states",
                             "artifact_location": str(root / "artifacts"), "heartbeat_seconds": 3600,
                             "stale_after_seconds": 300})


def test_a_failure_whose_traceback_cannot_be_written_still_ends_failed(tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, DISK_FULL)

    monkeypatch.setattr(MlflowClient, "log_text", disk_full)
    with pytest.raises(RuntimeError, match="the run's own error"):  # not the handler's OSError
        with TrackedRun(tracking_cfg(tmp_path), "fails", {RUN_IDENTITY_TAG: "x"}) as run:
            raise RuntimeError("the run's own error")
    ended = run.client.get_run(run.run_id)
    assert ended.info.status == "FAILED" and ended.data.tags["error"] == "RuntimeError: the run's own error"


# --------------------------------------------------------------------------- which run ends how, which continues

def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def left_running(client: MlflowClient, experiment_id: str, name: str, **tags: str) -> str:
    """A RUNNING run of identity `x` whose process is gone, as kill -9 leaves one."""
    import socket

    run = client.create_run(experiment_id, run_name=name, tags={RUN_IDENTITY_TAG: "x", HOST_TAG: socket.gethostname(),
                                                                 PID_TAG: str(dead_pid()), **tags})
    return run.info.run_id


def test_a_vanished_run_ends_killed_and_continues_but_a_vanished_failure_ends_failed(tmp_path):
    cfg = tracking_cfg(tmp_path)
    client = MlflowClient(cfg.tracking_uri)
    experiment = client.create_experiment(cfg.experiment_name)

    killed_id = left_running(client, experiment, "kill -9")
    runs = identity_runs(client, cfg, "x")
    assert runs.killed is not None and runs.killed.info.run_id == killed_id  # the kill -9 resume
    assert runs.killed.data.tags[KILL_REASON_TAG].startswith("process vanished")

    failed_id = left_running(client, experiment, "full disk", error=f"OSError: [Errno 28] {DISK_FULL}")
    runs = identity_runs(client, cfg, "x")
    assert runs.killed is None  # the newest run failed: a new run, from the start
    failed = client.get_run(failed_id)
    assert failed.info.status == "FAILED" and failed.data.tags["error"].endswith(DISK_FULL)
    assert KILL_REASON_TAG not in failed.data.tags and failed.data.tags[ENDED_BY_TAG].startswith("ended FAILED")


def a_run(status: str, **tags: str) -> Run:
    info = RunInfo(run_id="r", experiment_id="0", user_id="", status=status, start_time=0, end_time=None,
                   lifecycle_stage="active")
    return Run(info, RunData(tags=[RunTag(k, v) for k, v in tags.items()]))


def test_a_killed_run_carrying_an_error_is_half_ended_and_never_continued():
    """Ended KILLED by earlier code although it had failed (its `error` tag): not a run to continue."""
    vanished = {KILL_REASON_TAG: "process vanished"}
    assert IdentityRuns([a_run("KILLED", **vanished)]).killed is not None
    assert IdentityRuns([a_run("KILLED", error="OSError: full", **vanished)]).killed is None
    assert IdentityRuns([a_run("FAILED", error="OSError: full")]).killed is None


# --------------------------------------------------------------------------- an attempt's tags are its own

def test_a_continued_run_takes_the_new_attempts_name_and_sheds_the_old_attempts_tags(tmp_path):
    cfg = tracking_cfg(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with TrackedRun(cfg, "first-attempt", {RUN_IDENTITY_TAG: "x"}) as first:
            raise KeyboardInterrupt
    killed = first.client.get_run(first.run_id)
    assert killed.info.status == "KILLED"

    with TrackedRun(cfg, "second-attempt", {RUN_IDENTITY_TAG: "x"}, resume=Resume(first.run_id, 4)) as second:
        pass
    continued = second.client.get_run(first.run_id)
    assert continued.info.status == "FINISHED" and continued.info.run_name == "second-attempt"
    tags = continued.data.tags
    assert tags["mlflow.runName"] == "second-attempt" and tags[PREVIOUS_RUN_NAME_TAG] == "first-attempt"
    assert KILL_REASON_TAG not in tags and tags["relevance.resumed_after"] == "KeyboardInterrupt"
    assert tags["relevance.resumed_from_step"] == "4"


def test_a_continued_run_under_the_same_name_keeps_it_without_a_previous_name(tmp_path):
    cfg = tracking_cfg(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with TrackedRun(cfg, "same", {RUN_IDENTITY_TAG: "x"}) as first:
            raise KeyboardInterrupt
    with TrackedRun(cfg, "same", {RUN_IDENTITY_TAG: "x"}, resume=Resume(first.run_id)) as second:
        pass
    continued = second.client.get_run(first.run_id)
    assert continued.info.run_name == "same" and PREVIOUS_RUN_NAME_TAG not in continued.data.tags
