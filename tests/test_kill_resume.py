"""Runs that survive being killed, with the real CLI and the tiny model.

SIGTERM (what `timeout`, SLURM and Kubernetes send) mid-training: the run ends KILLED with
the reason, after a checkpoint, and the process exits 143; running the same command again
continues the same MLflow run from that checkpoint and ends exactly where an uninterrupted
run ends. kill -9 of a sweep: its parent and child stay RUNNING until the sweep's re-run
finds their processes gone, ends them KILLED and continues the child under its own parent.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow.entities import Run, RunInfo, RunData, RunTag
from mlflow.tracking import MlflowClient

from relevance.tracking.heartbeat import utc_iso, vanished_reason
from relevance.tracking.identity import run_identity
from relevance.training.checkpoints import checkpoints_root
from tests.conftest import cli_env, compose_train, run_cli, tiny_run_args
from tests.sweep_fixtures import children_of, parents_of, sweep_args

pytestmark = pytest.mark.integration  # killed runs and sweeps (SIGTERM, kill -9) and their resumption: make test-integration

# three epochs of ~31 optimizer steps, a resumable checkpoint every 2 steps
RESUMABLE = ["trainer.epochs=3", "trainer.save_checkpoints=true", "trainer.checkpoint_every_steps=2",
             "trainer.num_threads=1"]
KILL_AFTER_STEP = 36  # in the second epoch: the resumed epoch is not the first
FINAL_METRICS = ("dev_f1", "dev_roc_auc", "dev_precision", "dev_recall", "dev_threshold")


def start_cli(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    """`python -m relevance.train args...` in the background (output to `log`)."""
    return subprocess.Popen([sys.executable, "-m", "relevance.train", *args], cwd=cwd, env=cli_env(),
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_for_checkpoint(folder: Path, min_step: int, process: subprocess.Popen) -> int:
    """The step of the first complete checkpoint at or after `min_step` in `folder`, however long training
    takes to get there (no deadline: a busy machine is slow, not wrong); fails if training ends first."""
    while True:
        steps = [int(p.parent.name.split("-")[1]) for p in folder.glob("checkpoint-*/trainer_state.json")]
        if any(step >= min_step for step in steps):
            return min(step for step in steps if step >= min_step)
        assert process.poll() is None, f"training ended before a checkpoint at step {min_step} in {folder}"
        time.sleep(0.1)


def identity_folder(cache: Path, args: list[str]) -> Path:
    return checkpoints_root(cache) / run_identity(compose_train(args)).digest


def only_run(root: Path) -> tuple[MlflowClient, Run]:
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    return client, run


def dev_scores(client: MlflowClient, run: Run) -> list[float]:
    path = client.download_artifacts(run.info.run_id, "evaluation/dev_predictions.jsonl")
    return pd.read_json(path, lines=True)["score"].tolist()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, shared_cache):
    root = tmp_path_factory.mktemp("uninterrupted")
    run_cli("train", tiny_run_args(root, shared_cache, *RESUMABLE), cwd=root)
    return only_run(root)


def test_sigterm_ends_the_run_killed_and_a_rerun_continues_it_to_the_same_result(tmp_path, shared_cache,
                                                                              uninterrupted):
    args = tiny_run_args(tmp_path, shared_cache, *RESUMABLE)
    folder = identity_folder(shared_cache, args)
    process = start_cli(args, tmp_path, tmp_path / "killed.log")
    wait_for_checkpoint(folder, KILL_AFTER_STEP, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait() == 128 + signal.SIGTERM, (tmp_path / "killed.log").read_text()[-3000:]

    client, killed = only_run(tmp_path)
    assert killed.info.status == "KILLED"
    reason = killed.data.tags["relevance.kill_reason"]
    assert reason.startswith("SIGTERM received at step ") and "checkpoint saved" in reason
    stopped_at = int(reason.removeprefix("SIGTERM received at step ").split(":")[0])
    assert stopped_at >= KILL_AFTER_STEP
    assert json.loads((folder / "owner.json").read_text())["run_id"] == killed.info.run_id
    assert (folder / f"checkpoint-{stopped_at}" / "optimizer.pt").exists()  # resumable, not weights only
    assert "dev_f1" not in killed.data.metrics

    run_cli("train", args, cwd=tmp_path)  # the same command again
    client, resumed = only_run(tmp_path)  # the same MLflow run, not a new one
    assert resumed.info.run_id == killed.info.run_id and resumed.info.status == "FINISHED"
    tags = resumed.data.tags
    assert tags["relevance.resumed_from_step"] == str(stopped_at) and tags["relevance.resumed_after"] == reason
    assert "relevance.kill_reason" not in tags
    assert not folder.exists()  # a finished run's checkpoints are deleted
    # it continued from the checkpoint, not from the start: no step was trained (and logged) twice
    loss_steps = [m.step for m in client.get_metric_history(resumed.info.run_id, "train_loss")]
    assert len(loss_steps) == len(set(loss_steps)) and min(loss_steps) < stopped_at < max(loss_steps)
    datasets = [(i.dataset.name, i.dataset.digest) for i in resumed.inputs.dataset_inputs]
    assert datasets and len(datasets) == len(set(datasets))  # logged once, not once per attempt

    reference_client, reference = uninterrupted
    for name in FINAL_METRICS:
        assert resumed.data.metrics[name] == reference.data.metrics[name], name
    assert dev_scores(client, resumed) == dev_scores(reference_client, reference)
    epochs = [m.step for m in client.get_metric_history(resumed.info.run_id, "epoch_dev_f1")]
    assert sorted(set(epochs)) == [m.step for m in reference_client.get_metric_history(reference.info.run_id,
                                                                                        "epoch_dev_f1")]


def test_kill_9_of_a_sweep_is_found_and_its_rerun_continues_the_killed_run(tmp_path, shared_cache):
    args = sweep_args(shared_cache, "experiment=smoke_sweep", "trainer.lr=0.003", *RESUMABLE)
    folder = identity_folder(shared_cache, ["experiment=smoke_sweep", "trainer.lr=0.003", *RESUMABLE])
    process = start_cli(args, tmp_path, tmp_path / "sweep.log")
    checkpoint_step = wait_for_checkpoint(folder, 2, process)
    process.kill()
    process.wait()

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiments = [e.experiment_id for e in client.search_experiments()]
    (old_parent,) = parents_of(client, experiments)
    (child,) = children_of(client, old_parent)
    assert old_parent.info.status == child.info.status == "RUNNING"  # nothing could end them

    rerun = run_cli("train", args, cwd=tmp_path)
    old_parent, new_parent = (client.get_run(p.info.run_id) for p in parents_of(client, experiments))
    assert old_parent.info.status == "KILLED"
    assert old_parent.data.tags["relevance.kill_reason"].startswith(
        f"process vanished: pid {old_parent.data.tags['relevance.pid']} on ")
    assert new_parent.info.status == "FINISHED" and new_parent.data.metrics["jobs_finished"] == 1

    (continued,) = children_of(client, new_parent)
    assert continued.info.run_id == child.info.run_id and continued.info.status == "FINISHED"
    tags = continued.data.tags
    assert tags["relevance.resumed_after"].startswith("process vanished: pid ")
    assert int(tags["relevance.resumed_from_step"]) >= checkpoint_step
    assert tags["relevance.previous_parent"] == old_parent.info.run_id
    assert "process vanished" in rerun.stderr + rerun.stdout
    assert children_of(client, old_parent) == []


def test_sigterm_ends_a_sweep_and_its_parent_killed(tmp_path, shared_cache):
    args = sweep_args(shared_cache, "experiment=smoke_sweep", "trainer.lr=0.001", *RESUMABLE)
    folder = identity_folder(shared_cache, ["experiment=smoke_sweep", "trainer.lr=0.001", *RESUMABLE])
    process = start_cli(args, tmp_path, tmp_path / "sweep.log")
    wait_for_checkpoint(folder, 2, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait() == 128 + signal.SIGTERM

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (parent,) = parents_of(client, [e.experiment_id for e in client.search_experiments()])
    (child,) = children_of(client, parent)
    assert child.info.status == "KILLED" and "checkpoint saved" in child.data.tags["relevance.kill_reason"]
    assert parent.info.status == "KILLED"
    assert parent.data.tags["relevance.kill_reason"].startswith("SIGTERM received")
    assert parent.data.metrics["jobs_killed"] == 1
    run_cli("train", args, cwd=tmp_path)  # and the re-run finishes it
    assert client.get_run(child.info.run_id).info.status == "FINISHED"


# --------------------------------------------------------------------------- when a RUNNING run has vanished

def running(tags: dict[str, str], start_seconds: float) -> Run:
    info = RunInfo(run_id="r", experiment_id="0", user_id="", status="RUNNING",
                   start_time=int(start_seconds * 1000), end_time=None, lifecycle_stage="active")
    return Run(info, RunData(tags=[RunTag(k, v) for k, v in tags.items()]))


def test_a_run_elsewhere_vanishes_only_once_its_heartbeat_is_stale():
    now = time.time()
    fresh = running({"relevance.host": "another-node", "relevance.pid": "1", "relevance.heartbeat": utc_iso(now - 60)},
                    now - 3600)
    assert vanished_reason(fresh, stale_after_seconds=300, now=now) is None
    stale = running({"relevance.host": "another-node", "relevance.pid": "1",
                     "relevance.heartbeat": utc_iso(now - 400)}, now - 3600)
    reason = vanished_reason(stale, stale_after_seconds=300, now=now)
    assert reason.startswith(f"process vanished: last heartbeat {utc_iso(now - 400)} (pid 1 on another-node)")


def test_a_live_process_on_this_machine_has_not_vanished():
    import os
    import socket

    me = running({"relevance.host": socket.gethostname(), "relevance.pid": str(os.getpid()),
                  "relevance.heartbeat": utc_iso()}, time.time())
    assert vanished_reason(me, stale_after_seconds=300) is None
