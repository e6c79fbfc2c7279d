"""`hydra/launcher=ray_cpu` on a real Ray head (loopback, 2 CPUs): a 3-job sweep runs as Ray
tasks in Ray's worker processes, one job made to fail (a dev sample of one row: its run ends
FAILED) fails alone, and the parent and children land in MLflow as with the basic launcher.

The sweep is started from one folder with RELEVANCE_ROOT pointing to another: Ray workers don't
inherit the submitting shell's environment, so the children reach the sweep's store and parent
only because the preset hands the resolved root and tracking URI to the workers."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from tests.conftest import CONF_DIR
from tests.requirements import require_module
from tests.servers import loopback_network, ray_head, relevance_cli
from tests.sweep_fixtures import children_of, parents_of

pytestmark = pytest.mark.integration  # a Ray cluster: make test-integration

@pytest.fixture(autouse=True)
def _launcher_plugin():
    require_module("hydra_plugins.hydra_ray_launcher", "make install (installs hydra-ray-launcher)")


@pytest.mark.slow  # a Ray cluster and a 3-job sweep: about 70 s
def test_a_sweep_runs_as_ray_tasks_and_a_failing_job_fails_alone(tmp_path, shared_cache):
    submit_dir, root = tmp_path / "submit", tmp_path / "root"
    submit_dir.mkdir()
    with loopback_network() as netns, ray_head(num_cpus=2, prefix=netns) as head:
        relevance_cli("train", ["-m", "experiment=smoke_sweep", "hydra/launcher=ray_cpu",
                                f"hydra.launcher.ray.init.address={head.address}", f"paths.cache_dir={shared_cache}",
                                "trainer.lr=3e-3", "trainer.num_threads=1", "data.max_dev_rows=120,240,1"],
                      cwd=submit_dir, env={"RELEVANCE_ROOT": str(root)}, prefix=netns)
        worker_logs = "".join(p.read_text(errors="replace") for p in head.logs.glob("worker-*"))

    assert not (submit_dir / "mlflow.db").exists()
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    [parent] = parents_of(client, [e.experiment_id for e in client.search_experiments()])
    children = children_of(client, parent)
    assert parent.data.tags["relevance.sweep.launcher"] == "RayLauncher"
    assert parent.info.status == "FINISHED"
    assert sorted(c.info.status for c in children) == ["FAILED", "FINISHED", "FINISHED"]
    failed = next(c for c in children if c.info.status == "FAILED")
    assert failed.info.run_name.endswith("data.max_dev_rows=1") and "dev rows" in failed.data.tags["error"]
    assert parent.data.metrics["jobs_finished"] == 2 and parent.data.metrics["jobs_failed"] == 1
    # the jobs ran in Ray's workers: their logs name every child run
    assert all(c.info.run_id in worker_logs for c in children)


def test_the_gpu_preset_asks_one_gpu_per_job_and_hands_the_store_to_workers():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["hydra/launcher=ray_gpu", "paths.root=/shared/project"],
                      return_hydra_config=True)
    ray = cfg.hydra.launcher.ray
    assert cfg.hydra.launcher._target_ == "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"
    assert ray.remote.num_gpus == 1 and ray.remote.max_calls == 1
    assert ray.init.object_store_memory is None  # Ray refuses it when joining a running cluster
    assert ray.init.runtime_env.env_vars == {"MLFLOW_TRACKING_URI": cfg.tracking.tracking_uri,
                                             "RELEVANCE_ROOT": "/shared/project",
                                             "RELEVANCE_CACHE": "/shared/project/.cache"}
