"""The real CLI, end to end, with the tiny model: one run logs everything to a temp
MLflow store, predict reproduces its dev metrics, bad data fails clearly without
touching earlier runs."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import f1_score

from tests.conftest import run_cli, tiny_run_args

EXPECTED_ARTIFACTS = {
    "config/resolved_config.yaml", "config/.hydra/config.yaml", "config/.hydra/overrides.yaml",
    "model/adapter_config.json", "model/threshold.json", "model/run_config.yaml", "model/tokenizer.json",
    "evaluation/dev_predictions.jsonl", "evaluation/metrics.json", "evaluation/confusion_matrix.png",
    "evaluation/pr_curve.png", "data/mix_composition.json",
}


def all_artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= all_artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_cache):
    root = tmp_path_factory.mktemp("project")
    result = run_cli("train", tiny_run_args(root, shared_cache, "task=qc"), cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    experiment = client.get_experiment_by_name("relevance-qc")
    (run,) = client.search_runs([experiment.experiment_id])
    return root, client, run, result


def test_run_logs_params_metrics_tags_and_artifacts(trained):
    root, client, run, _ = trained
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "model=tiny_random,trainer=smoke,task=qc"
    params = run.data.params
    assert {"task.prompt", "trainer.lr", "quant.double_quant", "head.padding_side", "seed"} <= set(params)
    assert params["model.name"] == "tiny_random" and params["quant.bits"] == "4" and params["peft.r"] == "16"
    assert params["data.unseen_languages"] == "de,it"
    tags = run.data.tags
    assert {tags[k] for k in ("model", "task", "quant", "head", "augment")} == {
        "tiny_random", "QC", "nf4", "classifier", "original"}
    metrics = run.data.metrics
    for name in ("dev_f1", "dev_precision", "dev_recall", "dev_roc_auc", "dev_f1_lang_de", "dev_f1_lang_en",
                 "dev_unseen_f1", "dev_seen_f1", "dev_threshold", "dev_f1_at_0.5", "train_loss"):
        assert name in metrics, name
    per_epoch = client.get_metric_history(run.info.run_id, "epoch_dev_f1")
    assert len(per_epoch) == 2  # trainer=smoke runs two epochs, evaluated after each
    assert EXPECTED_ARTIFACTS <= all_artifacts(client, run.info.run_id)


def test_threshold_is_tuned_on_dev_and_saved_with_the_adapter(trained):
    _, client, run, _ = trained
    threshold = json.loads(Path(client.download_artifacts(run.info.run_id, "model/threshold.json")).read_text())
    assert threshold["threshold"] == pytest.approx(run.data.metrics["dev_threshold"])
    assert threshold["value"] == pytest.approx(run.data.metrics["dev_f1"])
    assert run.data.metrics["dev_f1"] >= run.data.metrics["dev_f1_at_0.5"] - 1e-9


def test_datasets_are_logged_with_digests(trained):
    _, client, run, _ = trained
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    contexts = {next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset for i in inputs}
    assert set(contexts) == {"training", "eval"}
    assert all(len(d.digest) >= 8 for d in contexts.values())


def test_predict_reproduces_dev_metrics(trained, shared_cache):
    root, client, run, _ = trained
    dev_file = next((shared_cache / "demo").rglob("qc_dev.jsonl"))
    output = root / "submission.jsonl"
    result = run_cli("predict", ["run=latest", f"input={dev_file}", f"output={output}",
                                 f"paths.root={root}", f"paths.cache_dir={shared_cache}"], cwd=root)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    source_rows = [json.loads(line) for line in dev_file.read_text().splitlines()]
    assert len(rows) == len(source_rows)
    assert all({k: r[k] for k in s} == s for r, s in zip(rows, source_rows))  # input fields kept as they were
    f1 = f1_score([r["label"] for r in rows], [r["prediction"] for r in rows])
    assert f1 == pytest.approx(run.data.metrics["dev_f1"], abs=1e-6)
    assert "overall" in result.stdout and "de " in result.stdout and "unseen" in result.stdout
    logged = client.download_artifacts(run.info.run_id, "evaluation/dev_predictions.jsonl")
    logged_scores = [json.loads(line)["score"] for line in Path(logged).read_text().splitlines()]
    assert np.allclose(logged_scores, [r["score"] for r in rows], atol=1e-5)


def test_bad_data_fails_clearly_and_leaves_earlier_runs_intact(trained, shared_cache, tmp_path):
    root, client, run, _ = trained
    data_dir = tmp_path / "bad"
    data_dir.mkdir()
    good = '{"id": 1, "task": "QC", "language": "en", "origin_query": "shoes", "category_path": "shoes", "label": 1}'
    (data_dir / "train.jsonl").write_text(good + "\n" + good.replace('"label": 1', '"label": 7') + "\n")
    (data_dir / "dev.jsonl").write_text(good + "\n")
    result = run_cli("train", tiny_run_args(root, shared_cache, "data=competition", f"data.dir={data_dir}"),
                     cwd=root, check=False)
    assert result.returncode != 0
    assert "train.jsonl:2: field 'label'" in result.stderr
    runs = {r.info.run_id: r for r in client.search_runs([run.info.experiment_id])}
    assert len(runs) == 2
    failed = next(r for r in runs.values() if r.info.run_id != run.info.run_id)
    assert failed.info.status == "FAILED" and "train.jsonl:2" in failed.data.tags["error"]
    earlier = runs[run.info.run_id]
    assert earlier.info.status == "FINISHED" and earlier.data.metrics == run.data.metrics
    assert "model/adapter_config.json" in all_artifacts(client, run.info.run_id)


def test_qi_with_the_yes_no_head(tmp_path, shared_cache):
    run_cli("train", tiny_run_args(tmp_path, shared_cache, "task=qi", "head=yes_no", "quant=int8"), cwd=tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["relevance-qi"])
    assert len(runs) == 1 and runs.loc[0, "status"] == "FINISHED"
    assert runs.loc[0, "tags.head"] == "yes_no" and runs.loc[0, "tags.quant"] == "int8"
    assert 0.0 <= runs.loc[0, "metrics.dev_roc_auc"] <= 1.0
