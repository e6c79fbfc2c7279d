"""Row lineage: every run records which rows it trained, tuned and reported on, and a run that builds on
another (its adapter, its out-of-fold scores) is refused, before any model loads, when the other trained
on this run's dev or test rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from relevance.data.lineage import LINEAGE_ARTIFACT, RunLineage, row_digest, seen_counts
from relevance.tracking.lineage_checks import SeenRowsError, check_sources
from tests.conftest import run_cli, tiny_run_args
from tests.test_sweep import write_qc_rows


def test_a_row_is_named_by_its_folded_query_and_target():
    assert row_digest("Red  Shoes", "Sports,Shoes") == row_digest("red shoes", "sports,shoes")
    assert row_digest("red shoes", "sports,shoes") != row_digest("red shoes", "sports,boots")
    lineage = RunLineage({"dev": [("1", row_digest("a", "x")), ("2", row_digest("b", "y"))],
                          "test": [("3", row_digest("c", "z"))]})
    assert seen_counts({row_digest("A", "x"), row_digest("c", "z")}, lineage) == {"dev": 1, "test": 1}


@pytest.fixture(scope="module")
def source(tmp_path_factory, shared_cache):
    """A finished tiny run on hand-made files: train.jsonl (its training rows), dev.jsonl."""
    root = tmp_path_factory.mktemp("lineage")
    data = root / "data"
    data.mkdir()
    write_qc_rows(data / "train.jsonl", 60)
    write_qc_rows(data / "dev.jsonl", 40, first_id=1000)
    run_cli("train", tiny_run_args(root, shared_cache, "data=competition", f"data.dir={data}", "trainer.epochs=1",
                                   "data.test_fraction=0.5"), cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    return root, data, client, run


def test_a_run_logs_which_rows_it_trained_tuned_and_reported_on(source, tmp_path):
    _, data, client, run = source
    lineage = RunLineage.read(Path(client.download_artifacts(run.info.run_id, LINEAGE_ARTIFACT, str(tmp_path))))
    params = run.data.params
    assert len(lineage.roles["train"]) == int(params["data.mix_rows"])
    assert len(lineage.roles["dev"]) == int(params["data.dev_rows"])
    assert len(lineage.roles["test"]) == int(params["data.test_rows"])
    train_file = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    assert lineage.digests("train") == {row_digest(r["origin_query"], r["category_path"]) for r in train_file}
    assert not lineage.digests("dev") & lineage.digests("test")
    for role, rows in lineage.roles.items():
        assert run.data.tags[f"relevance.lineage.{role}"].startswith(f"{len(rows)} rows, set ")


def test_an_adapter_that_trained_on_this_runs_dev_rows_is_refused_before_any_model_loads(source, shared_cache,
                                                                                       tmp_path):
    root, data, _, run = source
    swapped = ["data=competition", f"data.dir={data}", "data.train_file=dev.jsonl", "data.dev_file=train.jsonl",
               "data.test_fraction=null", "trainer.epochs=1", f"model.init_adapter={run.info.run_id}"]
    own_cache = tmp_path / "empty_cache"
    refused = run_cli("train", tiny_run_args(root, own_cache, *swapped), cwd=root, check=False)
    assert refused.returncode != 0
    assert f"model.init_adapter: run {run.info.run_id} trained on 60 of its 60 dev rows" in refused.stderr, \
        refused.stderr[-3000:]
    assert "evaluation.allow_seen_rows=true" in refused.stderr
    assert not (own_cache / "models").exists(), "the model was loaded before the error"
    accepted = run_cli("train", tiny_run_args(root, shared_cache, *swapped, "evaluation.allow_seen_rows=true"),
                       cwd=root, check=False)
    assert accepted.returncode == 0, accepted.stderr[-3000:]


def test_a_source_without_lineage_cannot_vouch_for_itself(source):
    _, _, client, run = source
    bare = client.create_run(run.info.experiment_id)
    client.set_terminated(bare.info.run_id)
    lineage = RunLineage({"dev": [("1", row_digest("a", "x"))]})
    with pytest.raises(SeenRowsError, match=f"model.init_adapter: run {bare.info.run_id} logged no row lineage"):
        check_sources(client, {"model.init_adapter": [bare.info.run_id]}, lineage)
    check_sources(client, {"model.init_adapter": [run.info.run_id]}, lineage)  # its rows are not these
