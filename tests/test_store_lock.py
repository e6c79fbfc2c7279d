"""A SQLite store held by another process (`BEGIN EXCLUSIVE` in a sqlite3 connection): waited on with
bounded, logged retries; a training that finished never loses its result to the store being busy.

The lock is real: a separate process holds it (`hold_store_lock`). A run that starts while it is held
retries, logging each wait, and completes once it is released; a run whose store stays busy through the
retries fails with a message naming the cause and the keys that wait longer. A run whose training has
finished when the store locks keeps its results in a pending record in its output folder, says so and
names the command that logs it; that command, or the next run of the same config, logs it: the run ends
FINISHED with its model, never before. SQLite itself waits 20 s before "database is locked", so each
refused call costs 20 s: these tests use `tracking.store_retries=0` or a lock released on the first retry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from relevance.artifacts import fetch_model_folder
from relevance.tracking.store import tracking_client
from tests.conftest import REPO, cli_env, run_cli, tiny_run_args

HOLDER = """
import pathlib, sqlite3, sys, time
db, ready, release = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
connection = sqlite3.connect(db, isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
ready.write_text("held")
deadline = time.time() + 900
while not release.exists() and time.time() < deadline:
    time.sleep(0.05)
connection.execute("ROLLBACK")
"""

# Another process takes the store's lock the moment training finishes (before anything after it is logged).
LOCK_WHEN_TRAINING_ENDS = """
import os, pathlib, subprocess, sys, time
from relevance.training.trainer import RelevanceTrainer

_train = RelevanceTrainer.train
def _train_then_lock_the_store(self, *args, **kwargs):
    result = _train(self, *args, **kwargs)
    ready = pathlib.Path(os.environ["LOCKTEST_READY"])
    subprocess.Popen([sys.executable, os.environ["LOCKTEST_HOLDER"], os.environ["LOCKTEST_DB"], str(ready),
                      os.environ["LOCKTEST_RELEASE"]], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)  # never holds this run's output open
    while not ready.exists():
        time.sleep(0.05)
    return result
RelevanceTrainer.train = _train_then_lock_the_store
"""


class StoreLock:
    """The store's lock, held by another process until `release()`."""

    def __init__(self, folder: Path, db: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.holder, self.ready, self.release_file = folder / "holder.py", folder / "ready", folder / "release"
        self.holder.write_text(HOLDER)
        self.db = db
        self.process: subprocess.Popen | None = None

    def hold(self) -> "StoreLock":
        self.process = subprocess.Popen([sys.executable, str(self.holder), str(self.db), str(self.ready),
                                         str(self.release_file)])
        deadline = time.time() + 60
        while not self.ready.exists():
            assert time.time() < deadline and self.process.poll() is None, "the lock holder did not start"
            time.sleep(0.05)
        return self

    def release(self) -> None:
        self.release_file.write_text("go")
        if self.process is not None:
            self.process.wait(timeout=60)  # bound: stopping the lock holder


@pytest.fixture
def store(tmp_path):
    """A ready (created, migrated) SQLite store under tmp_path, and its lock; the lock released at the end."""
    db = tmp_path / "mlflow.db"
    tracking_client(f"sqlite:///{db}").search_experiments()
    lock = StoreLock(tmp_path / "lock", db)
    yield lock
    lock.release()


def runs_of(root: Path) -> list:
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    experiment = client.get_experiment_by_name("relevance-qc")
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"]) if experiment else []


def start_train(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "relevance.train", *args], cwd=cwd, env=env or cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_until(process: subprocess.Popen, text: str) -> list[str]:
    """The process's output lines up to and with the first that contains `text`."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"the process ended without {text!r}:\n{''.join(lines)[-4000:]}")


@pytest.mark.integration
def test_a_run_starting_while_the_store_is_locked_waits_with_logged_retries(tmp_path, shared_cache, store):
    """The issue's case: a run starting under a held lock failed after 24 s with a raw sqlite3 error."""
    store.hold()
    process = start_train([*tiny_run_args(tmp_path, shared_cache, "trainer.num_threads=1"),
                           "tracking.store_retry_seconds=1"], tmp_path)
    try:
        seen = read_until(process, "store busy (database is locked): retry 1/5 in 1 s")
        store.release()
        rest = process.communicate()[0]
    finally:
        process.kill()
    assert process.returncode == 0, (''.join(seen) + rest)[-6000:]
    assert "OperationalError" not in "".join(seen) + rest
    (run,) = runs_of(tmp_path)
    assert run.info.status == "FINISHED" and run.data.tags["relevance.has_model"] == "true"


@pytest.mark.integration
def test_a_store_busy_through_every_retry_fails_the_start_naming_the_cause(tmp_path, shared_cache, store):
    store.hold()
    result = run_cli("train", [*tiny_run_args(tmp_path, shared_cache), "tracking.store_retries=0"], cwd=tmp_path,
                     check=False)
    store.release()
    assert result.returncode != 0
    assert "StoreBusyError: the tracking store" in result.stderr and "stayed busy (database is locked)" in result.stderr
    assert "tracking.store_retries" in result.stderr  # what waits longer
    assert not runs_of(tmp_path)  # nothing trained, nothing half-recorded


def lock_when_training_ends(tmp_path: Path, store: StoreLock) -> dict[str, str]:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(LOCK_WHEN_TRAINING_ENDS)
    env = cli_env()
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(hook), str(REPO), env.get("PYTHONPATH")])),
               LOCKTEST_READY=str(store.ready), LOCKTEST_HOLDER=str(store.holder), LOCKTEST_DB=str(store.db),
               LOCKTEST_RELEASE=str(store.release_file))
    return env


def train_until_the_store_locks(tmp_path: Path, shared_cache: Path, store: StoreLock) -> tuple[str, Path]:
    """A run whose store locks when its training finishes, busy through its retries: its output, its folder."""
    args = [*tiny_run_args(tmp_path, shared_cache, "trainer.num_threads=1"), "tracking.store_retries=0",
            "hydra.run.dir=outputs/locked"]
    result = subprocess.run([sys.executable, "-m", "relevance.train", *args], cwd=tmp_path,
                            env=lock_when_training_ends(tmp_path, store), capture_output=True, text=True)
    assert result.returncode != 0
    return result.stderr, tmp_path / "outputs" / "locked"


def assert_finished_with_its_model(tmp_path: Path, run) -> None:
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(run.info.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["relevance.has_model"] == "true"
    assert "dev_f1" in run.data.metrics and "error" not in run.data.tags
    assert "database is locked" in run.data.tags["relevance.logged_late"]
    fetch_model_folder(client, run.info.run_id, tmp_path / "fetched")  # every file, as its digests say


@pytest.mark.integration
@pytest.mark.parametrize("logged_by", ["the command", "the next run"])
def test_a_finished_training_is_never_lost_to_a_busy_store(tmp_path, shared_cache, store, logged_by):
    """The issue's case: a run *ending* under a held lock stayed RUNNING forever, its results unrecorded."""
    stderr, output_dir = train_until_the_store_locks(tmp_path, shared_cache, store)
    assert "training finished, but the tracking store could not take its results" in stderr
    assert "stayed busy (database is locked)" in stderr and "Nothing is lost" in stderr
    assert f"python -m relevance.tracking.pending {output_dir}" in stderr
    record = json.loads((output_dir / "pending_results" / "record.json").read_text())
    assert record["end_status"] == "FINISHED"
    assert {call["op"] for call in record["calls"]} >= {"log_metrics", "log_artifacts", "set_tags"}
    store.release()
    (run,) = runs_of(tmp_path)
    assert run.info.status == "RUNNING"  # the store could not be told anything; never FINISHED without its model

    if logged_by == "the command":
        result = subprocess.run([sys.executable, "-m", "relevance.tracking.pending", str(tmp_path / "outputs")],
                                cwd=tmp_path, env=cli_env(), capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"run {run.info.run_id} is FINISHED" in result.stdout
    else:
        run_cli("train", tiny_run_args(tmp_path, shared_cache, "trainer.num_threads=1"), cwd=tmp_path)
        latest = runs_of(tmp_path)[-1]
        assert latest.info.run_id != run.info.run_id and latest.info.status == "FINISHED"
    assert_finished_with_its_model(tmp_path, run)
    assert (output_dir / "pending_results" / "logged.json").is_file()
    assert not (output_dir / "pending_results" / "record.json").exists()  # never logged twice


# --------------------------------------------------------------------------- the policy, on a real lock, fast

def test_retries_are_bounded_logged_and_end_once_the_lock_is_released(tmp_path, caplog, request):
    """SQLite's own 20 s wait left out (`timeout=0`): the retry loop itself, on a lock another process holds."""
    import logging
    import sqlite3

    from relevance.tracking.store_retry import RetryPolicy, StoreBusyError, call_with_retries

    db = tmp_path / "store.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)")
    lock = StoreLock(tmp_path / "lock", db).hold()

    def write():
        connection = sqlite3.connect(db, timeout=0, isolation_level=None)  # bound: SQLite's own busy wait turned off, not a limit
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO t VALUES (1)")
        connection.execute("COMMIT")

    caplog.set_level(logging.WARNING, "relevance.tracking.store_retry")
    request.addfinalizer(lock.release)
    with pytest.raises(StoreBusyError, match=r"stayed busy \(database is locked\) during insert .* through 3 retries"):
        call_with_retries(write, "insert", str(db), RetryPolicy(3, 0.01))
    waits = [r.getMessage() for r in caplog.records]
    assert waits == [f"store busy (database is locked): retry {n}/3 in {w:g} s (insert)"
                     for n, w in ((1, 0.01), (2, 0.02), (3, 0.04))]

    caplog.clear()
    call_with_retries(write, "insert", str(db), RetryPolicy(3, 0.01), sleep=lambda seconds: lock.release())
    assert len(caplog.records) == 1  # one wait, then the lock was free
    assert sqlite3.connect(db).execute("SELECT count(*) FROM t").fetchone() == (1,)


@pytest.mark.parametrize("setting", ["store_retries=-1", "store_retries=1.5", "store_retry_seconds=-2"])
def test_a_refused_retry_setting_names_its_key(setting):
    from omegaconf import OmegaConf

    from relevance.tracking.store_retry import policy_from

    key, value = setting.split("=")
    with pytest.raises(ValueError, match=rf"^tracking\.{key}={value}"):
        policy_from(OmegaConf.create({key: float(value) if "." in value else int(value)}))
