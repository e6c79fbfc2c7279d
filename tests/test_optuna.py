"""Optuna (TPE) over learning rate x LoRA rank with the tiny model: every trial is a child
run of the sweep's parent, the best trial is on the parent, and a failing trial does not
stop the search (it returns -inf: Optuna refuses NaN)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.sweep_fixtures import run_sweep

pytestmark = pytest.mark.integration  # Optuna sweeps: make test-integration

TINY = ["model=tiny_random", "trainer=smoke", "trainer.epochs=1", "data.max_train_rows=240"]


def test_trials_are_child_runs_with_the_best_on_the_parent(tmp_path, shared_cache):
    sweep = run_sweep(tmp_path, shared_cache, "experiment=optuna_lr_rank", *TINY,
                      "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=1")
    parent, children, client = sweep.parent, sweep.children, sweep.client
    assert parent.data.tags["relevance.sweep.sweeper"] == "OptunaSweeper"
    assert "peft.r=choice(4, 8, 16, 32)" in parent.info.run_name
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert int(child.data.params["peft.r"]) in (4, 8, 16, 32)
        assert 1e-5 <= float(child.data.params["trainer.lr"]) <= 1e-3
        assert "trainer.lr=" in child.info.run_name and "peft.r=" in child.info.run_name
    best = max(children, key=lambda c: c.data.metrics["dev_f1"])
    assert parent.data.metrics["best_dev_f1"] == pytest.approx(best.data.metrics["dev_f1"])
    results = client.download_artifacts(parent.info.run_id, "sweep/optimization_results.yaml")
    with open(results) as handle:
        optimum = yaml.safe_load(handle)
    assert optimum["best_value"] == pytest.approx(best.data.metrics["dev_f1"])


def test_a_failing_trial_does_not_stop_the_search(tmp_path, shared_cache):
    # two random start-up trials at this seed draw both ranks (the test checks it did): rank -1 fails its
    # trial, refused before training, and rank 4 trains
    sweep = run_sweep(tmp_path, shared_cache, "experiment=optuna_lr_rank", *TINY, "hydra.sweeper.n_trials=2",
                      "hydra.sweeper.sampler.seed=0", "hydra.sweeper.sampler.n_startup_trials=2",
                      "hydra.sweeper.params={peft.r:'choice(-1,4)'}")
    parent, children, client = sweep.parent, sweep.children, sweep.client
    assert [int(c.data.params["peft.r"]) for c in children] == [4]  # the failed trial never became a run
    assert children[0].info.status == "FINISHED" and parent.info.status == "FINISHED"
    records = [json.loads(p.read_text()) for p in sweep.root.rglob("relevance_job.json")]
    failed = [r for r in records if r["status"] == "failed"]
    assert len(records) == 2 and len(failed) == 1 and "peft.r=-1" in failed[0]["error"]
    assert parent.data.metrics["jobs_failed"] == 1 and parent.data.metrics["jobs_finished"] == 1
    results = client.download_artifacts(parent.info.run_id, "sweep/optimization_results.yaml")
    with open(results) as handle:
        optimum = yaml.safe_load(handle)
    # the failed trial's -inf (Optuna refuses NaN) lost to the trial that trained
    assert optimum["best_params"]["peft.r"] == 4
    assert optimum["best_value"] == pytest.approx(children[0].data.metrics["dev_f1"])
    assert parent.data.metrics["best_dev_f1"] == pytest.approx(children[0].data.metrics["dev_f1"])
