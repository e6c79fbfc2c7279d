"""A SLURM job preempted before it trains (SIGUSR2 while it still reads its data, right after its MLflow run
opens) is requeued by submitit like one preempted mid-training: its requeued attempt continues the same MLflow
run to the end and the sweep counts both jobs. Found 2026-12-02: submitit's requeue ends the process with
`sys.exit`, SLURM's SIGTERM for the requeue arrived while that exit was ending the run, and the stop handler
raised inside it."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from relevance.tracking.tags import RESUMED_AFTER_TAG
from tests.conftest import cli_env
from tests.requirements import require_module
from tests.servers import loopback_network, slurm_cluster, wait_for
from tests.test_slurm_launcher import CPU_JOB, job_logs, sweep_state

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _launcher_plugin():
    require_module("hydra_plugins.hydra_submitit_launcher", "make install (pyproject's cluster extra)")


@pytest.mark.slow  # a SLURM cluster, a job array and a requeue: about 75 s
def test_a_job_preempted_before_it_trains_is_requeued_and_finishes(tmp_path, shared_cache):
    with loopback_network() as netns, slurm_cluster(cpus=2, prefix=netns) as cluster:
        args = ["-m", "experiment=smoke_sweep", f"paths.cache_dir={shared_cache}", *CPU_JOB]
        sweep = subprocess.Popen([*netns, sys.executable, "-m", "relevance.train", *args], cwd=tmp_path,
                                 env={**cli_env(), **cluster.env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
        try:
            wait_for(lambda: "MLflow run" in job_logs(tmp_path, "*_0_0_log.*") or sweep.poll() is not None,
                     "job 0's run", math.inf)
            assert sweep.poll() is None, f"the sweep ended before job 0 started:\n{sweep.stdout.read()[-6000:]}"
            assert "torch.compile" not in job_logs(tmp_path, "*_0_0_log.*"), "job 0 trains already"
            array_id = cluster.run("squeue", "--noheader", "--format=%F").split()[0]
            cluster.run("scancel", "--signal=USR2", f"{array_id}_0")
            wait_for(lambda: "Requeued job" in job_logs(tmp_path, "*_0_0_log.*") or sweep.poll() is not None,
                     "the requeue", math.inf)
            output, _ = sweep.communicate()
        finally:
            if sweep.poll() is None:
                sweep.kill()
    logs = job_logs(tmp_path, "*_0_0_log.*")
    assert sweep.returncode == 0, output[-6000:]
    parent, children = sweep_state(tmp_path)
    assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_finished"] == 2, logs[-6000:]
    assert sorted(c.info.status for c in children) == ["FINISHED", "FINISHED"], logs[-6000:]
    preempted = next(c for c in children if float(c.data.params["trainer.lr"]) == 0.001)
    assert RESUMED_AFTER_TAG in preempted.data.tags
