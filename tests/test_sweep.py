"""Real multiruns of the tiny model: a parent run per sweep with its jobs as children, the
best child on the parent, a crashing job that does not take the sweep down, and resume
(a rerun skips finished jobs and retries failed ones; a job whose data or strategy code
changed trains again)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from relevance.config import validate_config
from relevance.tracking.sweep_parents import sweep_definition, sweep_run_name
from tests.conftest import CONF_DIR, compose_train
from tests.sweep_fixtures import children_of, parents_of, run_sweep, smoke_sweep  # noqa: F401

pytestmark = pytest.mark.integration  # multirun sweeps through the real CLI (parents, crashes, resume): make test-integration

BASIC_SWEEP_EXPERIMENTS = sorted(
    p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")
    if "hydra/sweeper" not in p.read_text() and "sweeper:" in p.read_text())


# --------------------------------------------------------------------------- configs

def sweep_jobs(experiment: str) -> list[list[str]]:
    """The job overrides Hydra's basic sweeper expands from the experiment's sweeper params."""
    params = OmegaConf.load(CONF_DIR / "experiment" / f"{experiment}.yaml").hydra.sweeper.params
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    (batch,) = BasicSweeper.split_arguments(parsed, None)
    return batch


@pytest.mark.parametrize("experiment", BASIC_SWEEP_EXPERIMENTS)
def test_every_job_of_every_sweep_experiment_composes(experiment):
    """Each job of the grid is a valid run (the ablations need the augmentation strategies
    of conf/augment/: this fails until they exist)."""
    jobs = sweep_jobs(experiment)
    assert len(jobs) >= 2
    for job in jobs:
        validate_config(compose_train([f"experiment={experiment}", *job]))


def test_paper_ablation_grids():
    gpu = sweep_jobs("paper_ablation_gpu")
    assert len(gpu) == 2 * 5 * 2
    assert {j for job in gpu for j in job if j.startswith("augment=")} == {
        "augment=[original]", "augment=[original,translated]", "augment=[original,translated,easy_neg]",
        "augment=[original,translated,hard_neg]", "augment=[original,translated,balance]"}
    cpu = sweep_jobs("paper_ablation_cpu")
    assert len(cpu) == 5 * 3
    assert {j for job in cpu for j in job} == {
        "augment=[original]", "augment=[original,easy_neg]", "augment=[original,hard_neg]",
        "augment=[original,balance]", "augment=[original,translated_cpu]", "seed=1", "seed=2", "seed=3"}
    cfg = compose_train(["experiment=paper_ablation_cpu"])
    assert (cfg.model.name, cfg.trainer.name, cfg.data.name, cfg.task.key) == ("gemma3_270m", "cpu", "competition", "qc")
    assert cfg.quant.name == "none"  # bf16 base on CPU, as the CPU recipe (experiments/paper_ablation_cpu.md)
    translating = compose_train(["experiment=paper_ablation_cpu", "augment=[original,translated_cpu]"])
    assert list(translating.augment) == ["original", "translated"]  # translated_cpu is `translated`, capped
    assert translating.augment.translated.max_rows_per_language == 250
    assert translating.translator.name == "gemma3_270m" and translating.augment.translated.target_languages is None


def test_sweep_name_is_the_sweep_definition_without_storage_paths():
    config = OmegaConf.create({"hydra": {
        "overrides": {"task": ["experiment=smoke_sweep", "paths.root=/tmp/x", "trainer.lr=0.1,0.2"]},
        "sweeper": {"params": {"trainer.lr": "1e-3,3e-3", "augment": "[original],[original,easy_neg]"}}}})
    assert sweep_definition(config) == {"experiment": "smoke_sweep", "trainer.lr": "0.1,0.2",
                                        "augment": "[original],[original,easy_neg]"}
    assert sweep_run_name(config) == ("sweep experiment=smoke_sweep trainer.lr=0.1,0.2 "
                                      "augment=[original],[original,easy_neg]")


# --------------------------------------------------------------------------- a real sweep

def test_parent_run_with_finished_children(smoke_sweep):  # noqa: F811
    parent, children, client = smoke_sweep.parent, smoke_sweep.children, smoke_sweep.client
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "sweep experiment=smoke_sweep trainer.lr=1e-3,3e-3"
    tags = parent.data.tags
    assert tags["relevance.sweep"] == "true" and tags["relevance.sweep.sweeper"] == "BasicSweeper"
    assert client.get_experiment(parent.info.experiment_id).name == "relevance-qc"

    assert [c.info.status for c in children] == ["FINISHED", "FINISHED"]
    assert sorted(c.info.run_name for c in children) == ["trainer.lr=0.001", "trainer.lr=0.003"]
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["model"] == "tiny_random" and child.data.tags["augment"] == "original"
        assert "dev_f1" in child.data.metrics

    best = max(children, key=lambda c: c.data.metrics["dev_f1"])
    assert tags["best_run_id"] == best.info.run_id and tags["best_run_name"] == best.info.run_name
    assert parent.data.metrics["best_dev_f1"] == pytest.approx(best.data.metrics["dev_f1"])
    assert parent.data.metrics["jobs_finished"] == 2 and parent.data.metrics["jobs_failed"] == 0
    assert parent.data.metrics["jobs_skipped"] == 0

    summary = json.loads(Path(client.download_artifacts(parent.info.run_id, "sweep_summary.json")).read_text())
    assert {r["run_id"] for r in summary["runs"]} == {c.info.run_id for c in children}
    assert all(r["dev_f1"] is not None and r["status"] == "FINISHED" for r in summary["runs"])
    markdown = Path(client.download_artifacts(parent.info.run_id, "sweep_summary.md")).read_text()
    assert "trainer.lr=0.003" in markdown and "| dev_f1 |" in markdown
    assert "sweep/multirun.yaml" in {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}


def test_a_crashing_job_fails_alone_and_a_rerun_resumes(tmp_path, shared_cache):
    args = ["experiment=smoke_sweep", "trainer.lr=0.003", "data.dev_file=${task.key}_dev.jsonl,missing_dev.jsonl"]
    first = run_sweep(tmp_path, shared_cache, *args)
    assert first.parent.info.status == "FINISHED"
    by_status = {c.info.status: c for c in first.children}
    assert sorted(c.info.status for c in first.children) == ["FAILED", "FINISHED"]
    assert "missing_dev.jsonl" in by_status["FAILED"].data.tags["error"]
    assert by_status["FINISHED"].info.run_name == "trainer.lr=0.003,data.dev_file=${task.key}_dev.jsonl"
    assert first.parent.data.metrics["jobs_failed"] == 1 and first.parent.data.metrics["jobs_finished"] == 1
    assert first.parent.data.tags["best_run_id"] == by_status["FINISHED"].info.run_id

    second = run_sweep(tmp_path, shared_cache, *args)
    assert second.parent.info.run_id != first.parent.info.run_id
    finished_id = by_status["FINISHED"].info.run_id
    assert f"skipping: identical finished run {finished_id}" in second.result.stdout + second.result.stderr
    assert identity_reason(by_status["FINISHED"]) in second.result.stdout + second.result.stderr
    # the finished job is not trained again; the failed one is
    assert [c.info.status for c in second.children] == ["FAILED"]
    assert second.parent.data.metrics["jobs_skipped"] == 1 and second.parent.data.metrics["jobs_failed"] == 1
    assert second.parent.data.tags["relevance.sweep.reused_run_ids"] == finished_id
    assert second.parent.data.tags["best_run_id"] == finished_id
    assert second.parent.info.status == "FINISHED"
    all_runs = second.client.search_runs([second.parent.info.experiment_id])
    assert sum(r.info.status == "FINISHED" and "relevance.config_hash" in r.data.tags for r in all_runs) == 1


def test_a_sweep_whose_every_job_fails_ends_its_parent_failed(tmp_path, shared_cache):
    sweep = run_sweep(tmp_path, shared_cache, "experiment=smoke_sweep", "data.dev_file=nope1.jsonl,nope2.jsonl",
                      check=False)
    assert sweep.result.returncode != 0
    assert "every job of the sweep failed" in sweep.result.stderr
    assert sweep.parent.info.status == "FAILED"
    assert len(sweep.children) == 4 and {c.info.status for c in sweep.children} == {"FAILED"}
    assert "best_run_id" not in sweep.parent.data.tags
    experiments = [e.experiment_id for e in sweep.client.search_experiments()]
    assert len(parents_of(sweep.client, experiments)) == 1


def test_a_sweep_that_crashes_midway_still_ends_its_parent(tmp_path, shared_cache):
    """A job config that does not compose aborts Hydra's sweep before on_multirun_end: the
    atexit hook ends the parent FAILED instead of leaving it RUNNING."""
    sweep = run_sweep(tmp_path, shared_cache, "experiment=smoke_sweep", "trainer.lr=oops,0.001", check=False)
    assert sweep.result.returncode != 0
    assert sweep.parent.info.status == "FAILED"
    assert "stopped before its end" in sweep.parent.data.tags["relevance.sweep.error"]
    assert sweep.children == []


def test_a_sweep_over_both_tasks_has_a_parent_in_each_task_experiment(tmp_path, shared_cache):
    """MLflow nests children only within one experiment, and the experiment follows the task:
    one parent per experiment, sharing the sweep id; compare pairs QC with QI."""
    from relevance.compare import build_comparison, select_runs

    sweep = run_sweep(tmp_path, shared_cache, "experiment=smoke_sweep", "trainer.lr=0.003", "task=qc,qi")
    client = sweep.client
    experiments = {e.name: e.experiment_id for e in client.search_experiments()}
    parents = parents_of(client, list(experiments.values()))
    assert sorted(client.get_experiment(p.info.experiment_id).name for p in parents) == ["relevance-qc", "relevance-qi"]
    assert len({p.data.tags["relevance.sweep.id"] for p in parents}) == 1
    for parent in parents:
        (child,) = children_of(client, parent)
        assert child.info.status == "FINISHED" and child.info.experiment_id == parent.info.experiment_id
        assert child.data.tags["task"] == {"relevance-qc": "QC", "relevance-qi": "QI"}[
            client.get_experiment(parent.info.experiment_id).name]
        assert parent.info.status == "FINISHED" and parent.data.tags["best_run_id"] == child.info.run_id

    runs, title, parent_ids = select_runs(client, "latest")
    assert sorted(parent_ids) == sorted(p.info.run_id for p in parents)
    comparison = build_comparison(client, runs, title, n_resamples=50, parent_run_ids=parent_ids)
    assert set(comparison.baselines) == {"QC", "QI"}
    (mean,) = comparison.task_means.itertuples()
    assert mean.mean_f1 == pytest.approx((mean.qc_f1 + mean.qi_f1) / 2)


# --------------------------------------------------------------------------- resume: a run is its config, data and code

def identity_reason(run) -> str:
    """What the skip message says made `run` reusable."""
    tags = run.data.tags
    strategies = ", ".join(f"{name} v{v}" for name, v in json.loads(tags["relevance.strategy_versions"]).items())
    numerics = ", ".join(f"{k} {v}" for k, v in sorted(json.loads(tags["relevance.numerics"]).items()))
    return (f"identical config {tags['relevance.config_hash']}, data digest {tags['relevance.data_digest']}, "
            f"code {tags['relevance.code_digest']}, strategies {strategies}, numerics {numerics}")


def write_qc_rows(path: Path, count: int, first_id: int = 1) -> None:
    """Hand-made competition rows (two languages, both labels), appended to `path`."""
    products = [("red running shoes", "sports,shoes,running shoes"), ("phone case", "phones,accessories,cases")]
    with open(path, "a") as handle:
        for row_id in range(first_id, first_id + count):
            query, path_ = products[row_id % 2]
            label = int(row_id % 3 != 0)
            target = path_ if label else products[(row_id + 1) % 2][1]
            handle.write(json.dumps({"id": row_id, "task": "QC", "language": ("en", "es")[row_id % 4 // 2],
                                     "origin_query": f"{query} {row_id}", "category_path": target,
                                     "label": label}) + "\n")


def test_new_rows_in_the_same_data_file_train_again(tmp_path, shared_cache):
    data = tmp_path / "data"
    data.mkdir()
    write_qc_rows(data / "train.jsonl", 60)
    write_qc_rows(data / "dev.jsonl", 24, first_id=1000)
    args = ["experiment=smoke_sweep", "trainer.lr=0.003", "data=competition", f"data.dir={data}"]
    (first,) = run_sweep(tmp_path, shared_cache, *args).children

    unchanged = run_sweep(tmp_path, shared_cache, *args)
    assert unchanged.children == [] and unchanged.parent.data.metrics["jobs_skipped"] == 1
    assert (f"skipping: identical finished run {first.info.run_id} (dev_f1={first.data.metrics['dev_f1']:.4f}): "
            f"{identity_reason(first)}") in unchanged.result.stdout + unchanged.result.stderr

    write_qc_rows(data / "train.jsonl", 12, first_id=500)  # new rows, same path, same config
    grown = run_sweep(tmp_path, shared_cache, *args)
    (second,) = grown.children
    assert second.info.status == "FINISHED" and grown.parent.data.metrics["jobs_skipped"] == 0
    assert "skipping" not in grown.result.stdout + grown.result.stderr
    assert second.data.tags["relevance.config_hash"] == first.data.tags["relevance.config_hash"]
    assert second.data.tags["relevance.data_digest"] != first.data.tags["relevance.data_digest"]
    assert second.data.params["data.train_rows"] != first.data.params["data.train_rows"]


# Loaded at interpreter start from PYTHONPATH: the `original` strategy as if a fix had bumped its version.
BUMP_ORIGINAL = """
from relevance.augment.base import STRATEGIES, load_strategy_modules

load_strategy_modules()
STRATEGIES["original"].version += "-fixed"
"""


def test_a_bumped_strategy_version_trains_again(tmp_path, shared_cache, monkeypatch):
    args = ["experiment=smoke_sweep", "trainer.lr=0.003"]
    (first,) = run_sweep(tmp_path, shared_cache, *args).children
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(BUMP_ORIGINAL)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])))

    rerun = run_sweep(tmp_path, shared_cache, *args)
    (second,) = rerun.children
    assert second.info.status == "FINISHED" and rerun.parent.data.metrics["jobs_skipped"] == 0
    versions = json.loads(first.data.tags["relevance.strategy_versions"])
    assert json.loads(second.data.tags["relevance.strategy_versions"]) == {"original": versions["original"] + "-fixed"}
    assert second.data.tags["relevance.config_hash"] == first.data.tags["relevance.config_hash"]
    assert second.data.tags["relevance.data_digest"] == first.data.tags["relevance.data_digest"]
