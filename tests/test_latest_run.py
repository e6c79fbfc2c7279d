"""What `latest` means (docs/tour.md): `run=latest` is the FINISHED run with a logged model that ended last
and is not a smoke or test run (its `relevance.purpose` tag; older runs: a random tiny backbone), of the task
when given; only smoke runs: the newest, said so; runs of two tasks and no `task=`: refused, listing them.
`sweep=latest` is the newest FINISHED sweep parent.

The rule's cases on hand-made runs in a real SQLite store (no training); then the real `predict` CLI after
two tiny trainings."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.entities import Param, RunTag
from mlflow.tracking import MlflowClient

from relevance.tracking.runs import (PURPOSE_TAG, LatestRunError, RunSelectionError, find_sweep_parent,
                                     latest_model_run)
from tests.conftest import run_cli, tiny_run_args

T0 = 1_780_000_000_000  # ms


@pytest.fixture
def client(tmp_path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")


def logged_run(client: MlflowClient, name: str, minute: int, *, task: str = "QC", purpose: str | None = "train",
               source: str | None = None, status: str = "FINISHED", has_model: bool = True,
               tags: dict | None = None) -> str:
    """A run as training leaves it (tags, the `model.source` param, its end), ended at T0 + `minute`."""
    experiment = client.get_experiment_by_name(f"relevance-{task.lower()}")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(f"relevance-{task.lower()}")
    run = client.create_run(experiment_id, start_time=T0 + minute * 60_000 - 30_000, run_name=name)
    all_tags = {"task": task, **(tags or {})}
    if has_model:
        all_tags["relevance.has_model"] = "true"
    if purpose:
        all_tags[PURPOSE_TAG] = purpose
    client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in all_tags.items()],
                     params=[Param("model.source", source)] if source else [])
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status, end_time=T0 + minute * 60_000)
    return run.info.run_id


def test_latest_passes_over_newer_smoke_runs_and_says_so(client):
    demo = logged_run(client, "experiment=demo", 1)
    sweep_children = [logged_run(client, f"trainer.lr={lr}", 2 + i, purpose="smoke")
                      for i, lr in enumerate(("0.001", "0.003"))]
    latest = latest_model_run(client)
    assert latest.run.info.run_id == demo and not latest.smoke_only
    assert sorted(r.info.run_id for r in latest.passed_over) == sorted(sweep_children)
    text = latest.describe()
    assert text.startswith(f"run=latest: 'experiment=demo' ({demo}), finished ")
    assert "passed over 2 newer smoke/test run(s)" in text and "trainer.lr=0.003" in text


def test_runs_logged_before_the_purpose_tag_are_judged_by_their_backbone(client):
    real = logged_run(client, "gemma", 1, purpose=None, source="gguf_package")
    logged_run(client, "tiny", 2, purpose=None, source="tiny_random")
    assert latest_model_run(client).run.info.run_id == real


def test_only_smoke_runs_give_the_newest_one_said_so(client):
    logged_run(client, "older tiny", 1, purpose="smoke")
    newest = logged_run(client, "newer tiny", 2, purpose="smoke")
    latest = latest_model_run(client)
    assert latest.run.info.run_id == newest and latest.smoke_only
    assert "a smoke run (random tiny model: its scores mean nothing)" in latest.describe()


def test_unfinished_and_model_less_runs_never_count(client):
    finished = logged_run(client, "finished", 1)
    logged_run(client, "running", 2, status="RUNNING")
    logged_run(client, "failed", 3, status="FAILED")
    logged_run(client, "killed", 4, status="KILLED")
    logged_run(client, "no model (tracking.log_adapter=false)", 5, has_model=False)
    latest = latest_model_run(client)
    assert latest.run.info.run_id == finished and latest.passed_over == []


def test_runs_of_two_tasks_are_ambiguous_unless_the_task_is_named(client):
    qc = logged_run(client, "qc run", 1, task="QC")
    qi = logged_run(client, "qi run", 2, task="QI")
    logged_run(client, "newer qc smoke", 3, task="QC", purpose="smoke")
    with pytest.raises(LatestRunError) as refused:
        latest_model_run(client)
    message = str(refused.value)
    assert "ambiguous" in message and f"'qc run' ({qc})" in message and f"'qi run' ({qi})" in message
    assert "Pass task=qi or task=qc, or run=<run id>" in message
    assert latest_model_run(client, "QC").run.info.run_id == qc
    assert latest_model_run(client, "QI").run.info.run_id == qi


def test_no_run_says_what_to_do(client):
    with pytest.raises(LatestRunError, match="no finished run with a logged model .*: train one first"):
        latest_model_run(client)


def test_the_latest_sweep_is_the_newest_finished_one(client):
    sweep = {"relevance.sweep": "true"}
    with pytest.raises(RunSelectionError, match="no sweep parent run"):
        find_sweep_parent(client)
    killed = logged_run(client, "sweep a", 1, has_model=False, purpose=None, status="KILLED", tags=sweep)
    with pytest.raises(RunSelectionError) as refused:
        find_sweep_parent(client)
    assert "no FINISHED sweep" in str(refused.value) and killed in str(refused.value)
    finished = logged_run(client, "sweep b", 2, has_model=False, purpose=None, tags=sweep)
    logged_run(client, "sweep c (still running)", 3, has_model=False, purpose=None, status="RUNNING", tags=sweep)
    assert find_sweep_parent(client).info.run_id == finished
    assert find_sweep_parent(client, killed).info.run_id == killed  # by id: as asked


def test_predict_latest_scores_with_the_real_run_not_the_newer_smoke_run(tmp_path, shared_cache):
    """The real CLI: training tags a tiny run `smoke`; a run tagged `train` (as a run of a real backbone is)
    is what `predict run=latest` scores with, even when a smoke run finished after it, and it says so."""
    root = tmp_path / "project"
    root.mkdir()
    small = ("trainer.epochs=1", "data.max_train_rows=120")
    run_cli("train", tiny_run_args(root, shared_cache, *small, "tracking.run_name=stands-for-the-demo"), cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (first,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    assert first.data.tags[PURPOSE_TAG] == "smoke"  # what training writes for a random tiny backbone
    client.set_tag(first.info.run_id, PURPOSE_TAG, "train")  # what it writes for a real one (not trained here)
    run_cli("train", tiny_run_args(root, shared_cache, *small, "tracking.run_name=a-smoke-run"), cwd=root)

    input_file = Path(first.data.params["data.dev_path"])
    output = tmp_path / "scored.jsonl"
    result = run_cli("predict", ["run=latest", f"input={input_file}", f"output={output}", f"paths.root={root}",
                                 f"paths.cache_dir={shared_cache}"], cwd=root)
    out = result.stdout
    assert f"run=latest: 'stands-for-the-demo' ({first.info.run_id}), finished " in out
    assert "passed over 1 newer smoke/test run(s) (random tiny models): a-smoke-run" in out
    assert f"scored with run 'stands-for-the-demo' ({first.info.run_id}), task QC, finished " in out
    assert len(output.read_text().splitlines()) == len(input_file.read_text().splitlines())
