"""MLflow system metrics of training runs (`tracking.system_metrics`): a tiny training run through the
real CLI logs CPU and memory use as `system/*` metrics; with the switch off (the tracking config a
training run opens its run with) none; a run shorter than the interval still gets its last state; a bad
interval fails at compose time naming the key."""

from __future__ import annotations

import time

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from relevance.config import ConfigError, validate_config
from relevance.tracking.mlflow_run import TrackedRun
from tests.conftest import compose_train, run_cli, tiny_run_args

# the names MLflow's CPU monitor gives them (mlflow/system_metrics/metrics/cpu_monitor.py), with its prefix
CPU = "system/cpu_utilization_percentage"
MEMORY = "system/system_memory_usage_megabytes"


def training_run(root, cache, *extra: str):
    run_cli("train", tiny_run_args(root, cache, "trainer.epochs=1", "data.max_train_rows=120", *extra), cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    experiments = [e.experiment_id for e in client.search_experiments()]
    (run,) = client.search_runs(experiments)
    return client, run


def system_metrics(run) -> dict[str, float]:
    return {k: v for k, v in run.data.metrics.items() if k.startswith("system/")}


def test_a_training_run_logs_cpu_and_memory(tmp_path, shared_cache):
    client, run = training_run(tmp_path, shared_cache, "tracking.system_metrics_interval_s=1")
    logged = system_metrics(run)
    assert {CPU, MEMORY} <= set(logged), sorted(logged)
    assert 0 <= logged[CPU] <= 100 and logged[MEMORY] > 0
    steps = [m.step for m in client.get_metric_history(run.info.run_id, MEMORY)]
    assert len(steps) >= 2 and sorted(steps) == list(range(len(steps)))  # a point per second, and the last state
    assert "dev_f1" in run.data.metrics  # beside the run's own metrics, not instead of them


def test_the_switch_off_logs_none(tmp_path):
    # the tracking config a training run opens its run with, composed by Hydra from the command line
    root = tmp_path.as_posix()
    cfg = compose_train(["model=tiny_random", "trainer=smoke", f"paths.root={root}",
                         "tracking.system_metrics=false", "tracking.system_metrics_interval_s=0.1"])
    with TrackedRun(cfg.tracking, "off", {}) as run:
        time.sleep(0.5)
        run.log_metrics({"dev_f1": 0.5})
    logged = MlflowClient(cfg.tracking.tracking_uri).get_run(run.run_id).data.metrics
    assert logged == {"dev_f1": 0.5}


def test_a_run_shorter_than_the_interval_still_has_its_last_state(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = OmegaConf.create({"tracking_uri": uri, "experiment_name": "t", "artifact_location": str(tmp_path / "a"),
                            "system_metrics": True, "system_metrics_interval_s": 60})
    with TrackedRun(cfg, "short", {}) as run:
        time.sleep(0.2)
    client = MlflowClient(uri)
    logged = system_metrics(client.get_run(run.run_id))
    assert {CPU, MEMORY} <= set(logged)
    assert [m.step for m in client.get_metric_history(run.run_id, CPU)] == [0]


def test_a_bad_interval_is_refused_at_compose_time():
    cfg = compose_train(["model=tiny_random", "trainer=smoke", "tracking.system_metrics_interval_s=0"])
    with pytest.raises(ConfigError, match=r"tracking\.system_metrics_interval_s=0"):
        validate_config(cfg)
    # off, the interval is not read
    validate_config(compose_train(["model=tiny_random", "trainer=smoke", "tracking.system_metrics=false",
                                   "tracking.system_metrics_interval_s=0"]))
