"""`hydra/launcher=slurm` (hydra-submitit-launcher) on a real one-node SLURM cluster started by
the test (munged + slurmctld + slurmd on loopback, tests/servers.py): a 2-job sweep runs as a job
array, and a job preempted (SIGUSR2, as SLURM signals it) while it trains, or before it trains, is
requeued by submitit with the same overrides, and its re-run continues the job's MLflow run to the end.
`hydra/launcher=submitit_local` runs the same submitit path as local processes, without a cluster.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from relevance.tracking.tags import ERROR_TAG, RESUMED_AFTER_TAG
from tests.conftest import cli_env
from tests.requirements import require_module
from tests.servers import loopback_network, slurm_cluster, wait_for
from tests.sweep_fixtures import children_of, parents_of, run_sweep

pytestmark = pytest.mark.integration  # submitit's local executor and a real SLURM cluster: make test-integration

@pytest.fixture(autouse=True)
def _launcher_plugin():
    require_module("hydra_plugins.hydra_submitit_launcher", "make install (pyproject's cluster extra)")

# the cluster is one node with 2 CPUs and no GPU
CPU_JOB = ["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=null", "hydra.launcher.mem_gb=null",
           "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=30", "trainer.num_threads=1"]


def sweep_state(root: Path):
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    [parent] = parents_of(client, [e.experiment_id for e in client.search_experiments()])
    return client.get_run(parent.info.run_id), children_of(client, parent)


def job_logs(root: Path, pattern: str) -> str:
    return "".join(p.read_text(errors="replace") for p in root.rglob(f".submitit/*/{pattern}"))


@pytest.mark.slow  # a SLURM cluster, a job array and two requeues: about 90 s
def test_a_sweep_runs_as_a_job_array_and_a_preempted_job_is_requeued(tmp_path, shared_cache):
    """Job 1 is preempted before it trains (its run is open, its data still being read), job 0 while it trains:
    each is requeued by submitit and its re-run continues its MLflow run to the end. The early case is SLURM's
    requeue race: submitit ends the process with sys.exit and SLURM's SIGTERM for the requeue arrives while that
    exit ends the run (relevance.runtime: a signal during an exit no longer raises inside its clean-up)."""
    with loopback_network() as netns, slurm_cluster(cpus=2, prefix=netns) as cluster:
        # four epochs (about 10 s of training): time to preempt job 0 while it runs
        args = ["-m", "experiment=smoke_sweep", f"paths.cache_dir={shared_cache}", "trainer.epochs=4", *CPU_JOB]
        sweep = subprocess.Popen([*netns, sys.executable, "-m", "relevance.train", *args], cwd=tmp_path,
                                 env={**cli_env(), **cluster.env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
        try:
            # no deadlines (a busy machine is slow, not wrong); the sweep ending first fails the test below
            def preempt(job: int, when: str, what: str) -> str:
                wait_for(lambda: when in job_logs(tmp_path, f"*_{job}_0_log.*") or sweep.poll() is not None,
                         what, math.inf)
                assert sweep.poll() is None, f"the sweep ended before {what}:\n{sweep.stdout.read()[-6000:]}"
                array_id = cluster.run("squeue", "--noheader", "--format=%F").split()[0]
                cluster.run("scancel", "--signal=USR2", f"{array_id}_{job}")
                return array_id

            # job 1 once its run is open (its log names the MLflow run), before it trains (the pipeline logs its
            # compile choice just before training)
            array_id = preempt(1, "MLflow run", "job 1's run")
            assert "torch.compile" not in job_logs(tmp_path, "*_1_0_log.*").split("Caught signal")[0], \
                "job 1 was already training when preempted"
            preempt(0, "torch.compile", "job 0's training")
            for job in (0, 1):
                wait_for(lambda: "Requeued job" in job_logs(tmp_path, f"*_{job}_0_log.*") or sweep.poll() is not None,
                         f"job {job}'s requeue", math.inf)
            restarts = [cluster.run("scontrol", "show", "job", f"{array_id}_{job}") for job in (0, 1)]
            output, _ = sweep.communicate()
        finally:
            if sweep.poll() is None:
                sweep.kill()
    assert sweep.returncode == 0, output[-6000:]
    assert all("Restarts=1" in r for r in restarts), restarts

    parent, children = sweep_state(tmp_path)
    assert parent.data.tags["relevance.sweep.launcher"] == "SlurmLauncher"
    assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_finished"] == 2
    # each re-run continued its preempted job's MLflow run (relevance.tracking: resume after a kill)
    assert sorted(float(c.data.params["trainer.lr"]) for c in children) == [0.001, 0.003]
    assert all(c.info.status == "FINISHED" for c in children)
    assert all(RESUMED_AFTER_TAG in c.data.tags for c in children)


def test_submitit_local_runs_the_sweep_in_subprocesses(tmp_path, shared_cache):
    sweep = run_sweep(tmp_path, shared_cache, "experiment=smoke_sweep", "hydra/launcher=submitit_local",
                      "hydra.launcher.timeout_min=30", "trainer.num_threads=1")
    assert sweep.parent.data.tags["relevance.sweep.launcher"] == "LocalLauncher"
    assert sweep.parent.info.status == "FINISHED"
    assert sorted(c.info.status for c in sweep.children) == ["FINISHED", "FINISHED"], unfinished_jobs(sweep)


def unfinished_jobs(sweep) -> str:
    """Each child that did not finish: its status and error tag, then the jobs' logs (the test's failure text)."""
    lines = [f"{c.info.run_id} {c.info.status}: {c.data.tags.get(ERROR_TAG, '(no error tag)')}"
             for c in sweep.children if c.info.status != "FINISHED"]
    return "\n".join([*lines, job_logs(sweep.root, "*_log.out")[-6000:], job_logs(sweep.root, "*_log.err")[-3000:]])
