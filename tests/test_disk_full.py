"""A full disk, wherever it is: the artifact store, the cache (models, checkpoints), the run's output folder,
the tracking store's own disk, predict's output and download folders; and a crash while writing a cache entry.

Each ends with a message naming the disk that filled (never a raw safetensors, SQLAlchemy or "Failed to
download artifacts" error), a FAILED run (never RUNNING, never FINISHED without its model), nothing earlier
damaged, and a re-run (or `python -m relevance.tracking.pending`) that completes. The disks are real: a
2 MiB tmpfs mounted for the test (root, or CAP_SYS_ADMIN), filled to leave what the case needs. Without
the right to mount, the tests skip, saying why; with CI=true they fail instead, naming what is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from relevance.artifacts import fetch_model_folder
from relevance.tracking.store import tracking_client
from tests.conftest import cli_env, run_cli, tiny_run_args

KiB = 1024


class SmallDisk:
    """A tmpfs of `size` mounted at `path`; `leave(n)` fills it to n bytes free, `free_all()` empties the filler."""

    def __init__(self, path: Path, size: str = "2m"):
        self.path = path
        path.mkdir(parents=True)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            reason = (f"cannot mount a tmpfs for the disk-full tests (mount: {mounted.stderr.strip()}): they need "
                      "root or CAP_SYS_ADMIN")
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI=true: {reason}")
            pytest.skip(reason)

    def leave(self, free_bytes: int) -> None:
        filler = self.path / "filler"
        filler.unlink(missing_ok=True)
        size = shutil.disk_usage(self.path).free - free_bytes
        with open(filler, "wb") as out:
            out.write(b"\0" * max(size, 0))

    def free_all(self) -> None:
        (self.path / "filler").unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    disks: list[SmallDisk] = []

    def make(name: str = "disk", size: str = "2m") -> SmallDisk:
        disks.append(SmallDisk(tmp_path / name, size))
        return disks[-1]

    yield make
    for disk in disks:
        disk.unmount()


def store_of(root: Path, uri: str | None = None) -> MlflowClient:
    return MlflowClient(uri or f"sqlite:///{root}/mlflow.db")


def runs_of(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("relevance-qc")
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"]) if experiment else []


def last_line(stderr: str) -> str:
    """The error the command ends with (Hydra's last traceback line)."""
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("Set the environment")]
    return lines[-1]


def assert_failed_naming(result, client: MlflowClient, disk: str) -> None:
    """The command failed with a DiskFullError naming `disk`; its run FAILED with that error, no model."""
    assert result.returncode != 0
    error = last_line(result.stderr)
    assert error.startswith("relevance.files.DiskFullError: no space left on the device") and disk in error, error
    (run,) = runs_of(client)
    assert run.info.status == "FAILED", run.info.status
    assert run.data.tags["error"].startswith("DiskFullError: no space left on the device") and disk in run.data.tags[
        "error"]


def assert_a_rerun_completes(tmp_path: Path, shared_cache: Path, client: MlflowClient, *extra: str) -> None:
    run_cli("train", tiny_run_args(tmp_path, shared_cache, "trainer.num_threads=1", *extra), cwd=tmp_path)
    latest = runs_of(client)[-1]
    assert latest.info.status == "FINISHED" and latest.data.tags["relevance.has_model"] == "true"


# --------------------------------------------------------------------------- training

@pytest.mark.integration
def test_a_full_output_folder_fails_the_run_naming_it(tmp_path, shared_cache, small_disk):
    """The issue's case: FAILED with a raw safetensors error. Room for the config and lineage, not the model."""
    disk = small_disk()
    disk.leave(100 * KiB)
    args = tiny_run_args(tmp_path, shared_cache, "trainer.num_threads=1", f"hydra.run.dir={disk.path}/run")
    result = run_cli("train", args, cwd=tmp_path, check=False)
    assert_failed_naming(result, store_of(tmp_path), f"the run's output folder ({disk.path}/run")
    assert "SafetensorError" in result.stderr  # the cause is kept, under the message
    disk.free_all()
    assert_a_rerun_completes(tmp_path, shared_cache, store_of(tmp_path), f"hydra.run.dir={disk.path}/rerun")


@pytest.mark.integration
def test_a_full_cache_fails_the_run_naming_paths_cache_dir_and_keeps_no_partial_model(tmp_path, small_disk):
    """Room for the demo data, not for the tiny model the run builds into the cache."""
    disk = small_disk()
    disk.leave(300 * KiB)
    args = tiny_run_args(tmp_path, disk.path, "trainer.num_threads=1")
    result = run_cli("train", args, cwd=tmp_path, check=False)
    assert_failed_naming(result, store_of(tmp_path), f"paths.cache_dir (models, caches, checkpoints) ({disk.path}")
    assert not list((disk.path / "models").rglob("*.safetensors"))  # no half-written model to load next time
    disk.free_all()
    assert_a_rerun_completes(tmp_path, disk.path, store_of(tmp_path))


@pytest.mark.integration
def test_a_full_artifact_store_at_the_start_fails_the_run_naming_it(tmp_path, shared_cache, small_disk):
    disk = small_disk()
    disk.leave(0)
    location = f"tracking.artifact_location={disk.path}/mlartifacts"
    result = run_cli("train", tiny_run_args(tmp_path, shared_cache, "trainer.num_threads=1", location), cwd=tmp_path,
                     check=False)
    assert_failed_naming(result, store_of(tmp_path), "the artifact store (tracking.artifact_location)")
    disk.free_all()
    assert_a_rerun_completes(tmp_path, shared_cache, store_of(tmp_path), location)


@pytest.mark.integration
def test_a_full_artifact_store_after_training_keeps_the_results_until_they_are_logged(tmp_path, shared_cache,
                                                                                      small_disk):
    """The issue's case: left RUNNING, later FINISHED without its model. Now FAILED meanwhile, its results
    kept in the output folder, then logged by the command once there is room: FINISHED with its model."""
    disk = small_disk()
    disk.leave(120 * KiB)  # the config and lineage artifacts fit, the model does not
    args = tiny_run_args(tmp_path, shared_cache, "trainer.num_threads=1", "hydra.run.dir=outputs/full",
                         f"tracking.artifact_location={disk.path}/mlartifacts")
    result = run_cli("train", args, cwd=tmp_path, check=False)
    assert result.returncode != 0
    error = last_line(result.stderr)
    assert "ResultsPendingError: training finished, but the tracking store could not take its results" in error
    assert "the artifact store (tracking.artifact_location)" in error and "Nothing is lost" in error
    output_dir = tmp_path / "outputs" / "full"
    assert f"python -m relevance.tracking.pending {output_dir}" in error
    client = store_of(tmp_path)
    (run,) = runs_of(client)
    assert run.info.status == "FAILED" and "results pending in" in run.data.tags["error"]  # never FINISHED so

    disk.free_all()
    logged = subprocess.run([sys.executable, "-m", "relevance.tracking.pending", str(output_dir)], cwd=tmp_path,
                            env=cli_env(), capture_output=True, text=True)
    assert logged.returncode == 0, logged.stderr[-3000:]
    run = client.get_run(run.info.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["relevance.has_model"] == "true"
    assert "error" not in run.data.tags and "no space left" in run.data.tags["relevance.logged_late"]
    fetch_model_folder(client, run.info.run_id, tmp_path / "fetched")  # whole, as its digests say


@pytest.mark.integration
def test_the_stores_own_full_disk_is_named_and_a_rerun_completes(tmp_path, shared_cache, small_disk):
    """The issue's case: a raw SQLAlchemy flush error."""
    disk = small_disk()
    uri = f"sqlite:///{disk.path}/mlflow.db"
    tracking_client(uri).search_experiments()  # the store exists, then its disk fills
    disk.leave(0)
    args = tiny_run_args(tmp_path, shared_cache, "trainer.num_threads=1", f"tracking.tracking_uri={uri}")
    result = run_cli("train", args, cwd=tmp_path, check=False)
    assert result.returncode != 0
    error = last_line(result.stderr)
    assert error.startswith("relevance.tracking.store_retry.StoreFullError: the tracking store's disk is full"), error
    assert uri in error and "database or disk is full" in error
    assert all(run.info.status != "RUNNING" for run in runs_of(store_of(tmp_path, uri)))
    disk.free_all()
    assert_a_rerun_completes(tmp_path, shared_cache, store_of(tmp_path, uri), f"tracking.tracking_uri={uri}")


# --------------------------------------------------------------------------- predict

@pytest.mark.integration
def test_predict_names_its_full_output_or_download_disk_and_keeps_the_old_output(tmp_path, shared_cache, small_disk):
    """The issue's case: "Failed to download artifacts from path 'model'" (the wrong cause)."""
    run_cli("train", tiny_run_args(tmp_path, shared_cache, "trainer.num_threads=1"), cwd=tmp_path)
    disk = small_disk()
    output = disk.path / "predictions.jsonl"
    output.write_text('{"earlier": "output"}\n')
    data = next(shared_cache.glob("demo/*/qc_dev.jsonl"))
    args = ["run=latest", f"input={data}", f"output={output}", f"paths.root={tmp_path}",
            f"paths.cache_dir={shared_cache}"]

    disk.leave(8 * KiB)  # the output cannot be written
    result = run_cli("predict", args, cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert last_line(result.stderr).startswith(f"relevance.files.DiskFullError: no space left on the device while "
                                               f"writing {output}")
    assert output.read_text() == '{"earlier": "output"}\n' and not list(disk.path.glob(".predictions*.tmp"))

    env = {**cli_env(), "TMPDIR": str(disk.path)}  # nor the model downloaded
    result = subprocess.run([sys.executable, "-m", "relevance.predict", *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode != 0
    error = last_line(result.stderr)
    assert error.startswith("relevance.files.DiskFullError: no space left on the device while downloading run"), error
    assert f"the download folder (TMPDIR for predict) ({disk.path}" in error
    assert output.read_text() == '{"earlier": "output"}\n'


# --------------------------------------------------------------------------- a crash while writing a cache entry

CRASH_MID_WRITE = """
import os, signal, sys
from relevance.augment.cache import ContentCache

cache = ContentCache(sys.argv[1])

def write_half_then_die(handle, value, kind):
    handle.write(b'{"translations": {"half of it')
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)

ContentCache._write = staticmethod(write_half_then_die)
cache.update_json(sys.argv[2], {"b": "the entry being written"})
"""


def test_a_crash_while_writing_a_cache_entry_leaves_the_old_entry_and_a_rerun_completes(tmp_path):
    from relevance.augment.cache import ContentCache, make_key

    root, key = tmp_path / "translations", make_key("test", "crash")
    cache = ContentCache(root)
    cache.update_json(key, {"a": "an earlier entry"})
    before = cache.path(key).read_bytes()
    script = tmp_path / "crash.py"
    script.write_text(CRASH_MID_WRITE)
    crashed = subprocess.run([sys.executable, str(script), str(root), key], env=cli_env(), capture_output=True)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    assert cache.path(key).read_bytes() == before  # never half an entry
    assert list(cache.path(key).parent.glob(".*.tmp"))  # what the crash left beside it...

    assert ContentCache(root).update_json(key, {"b": "the entry being written"}) == {
        "a": "an earlier entry", "b": "the entry being written"}  # ...and the next writer completes
    assert json.loads(cache.path(key).read_text())["b"] == "the entry being written"
    assert not list(cache.path(key).parent.glob(".*.tmp"))  # and cleans up
