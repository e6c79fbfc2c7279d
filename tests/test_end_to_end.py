"""The real CLI, end to end, with the tiny model: one run logs everything to a temp
MLflow store (dev and test metrics, the test rows only reported), predict reproduces
its dev and test metrics, bad data fails clearly without touching earlier runs."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import f1_score, roc_auc_score

from tests.conftest import run_cli, tiny_run_args
from tests.test_test_split import subset_file

EXPECTED_ARTIFACTS = {
    "config/resolved_config.yaml", "config/.hydra/config.yaml", "config/.hydra/overrides.yaml",
    "model/adapter_config.json", "model/threshold.json", "model/run_config.yaml", "model/tokenizer.json",
    "evaluation/metrics.json", "data/mix_composition.json",
    *(f"evaluation/{role}_{name}" for role in ("dev", "test")
      for name in ("predictions.jsonl", "confusion_matrix.png", "pr_curve.png")),
}
EXPECTED_METRICS = {
    *(f"{role}_{name}" for role in ("dev", "test")
      for name in ("f1", "precision", "recall", "roc_auc", "f1_lang_de", "f1_lang_en", "unseen_f1", "seen_f1",
                   "threshold", "f1_at_0.5", "f1_all_relevant", "f1_lift", "f1_global_threshold")),
    "train_loss",
}


def generated_dev_file(cache: Path, task: str, logged_rows: list[dict]) -> Path:
    """The generated dev file (of the shared cache's demo folders) holding every logged row, labels alike."""
    wanted = {str(r["id"]): r["label"] for r in logged_rows}
    for path in sorted((cache / "demo").rglob(f"{task}_dev.jsonl")):
        labels = {str(r["id"]): r["label"] for r in map(json.loads, path.read_text().splitlines())}
        if all(labels.get(i) == label for i, label in wanted.items()):
            return path
    raise AssertionError(f"no generated {task} dev file under {cache / 'demo'} holds the run's dev rows")


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
    assert 200 < int(params["data.dev_rows"]) < 280 and 200 < int(params["data.test_rows"]) < 280  # half each
    assert params["data.seed"] == "42" and params["evaluation.threshold"] == "global"
    tags = run.data.tags
    assert {tags[k] for k in ("model", "task", "quant", "head", "augment")} == {
        "tiny_random", "QC", "nf4", "classifier", "original"}
    metrics = run.data.metrics
    assert EXPECTED_METRICS <= set(metrics), EXPECTED_METRICS - set(metrics)
    assert metrics["test_threshold"] == metrics["dev_threshold"]  # dev's threshold, applied unchanged
    assert metrics["test_f1_global_threshold"] == metrics["test_f1"]  # evaluation.threshold=global
    assert metrics["test_f1_lift"] == pytest.approx(metrics["test_f1"] - metrics["test_f1_all_relevant"])
    per_epoch = client.get_metric_history(run.info.run_id, "epoch_dev_f1")
    assert len(per_epoch) == 2  # trainer=smoke runs two epochs, evaluated after each
    assert EXPECTED_ARTIFACTS <= all_artifacts(client, run.info.run_id)


def test_threshold_is_tuned_on_dev_and_saved_with_the_adapter(trained):
    _, client, run, _ = trained
    threshold = json.loads(Path(client.download_artifacts(run.info.run_id, "model/threshold.json")).read_text())
    assert threshold["threshold"] == pytest.approx(run.data.metrics["dev_threshold"])
    assert threshold["mode"] == "global" and threshold["per_language"] == {}
    assert threshold["value"] == pytest.approx(run.data.metrics["dev_f1"])
    assert run.data.metrics["dev_f1"] >= run.data.metrics["dev_f1_at_0.5"] - 1e-9


def test_datasets_are_logged_with_digests(trained):
    _, client, run, _ = trained
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    contexts = {next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset for i in inputs}
    assert set(contexts) == {"training", "eval", "test"}
    assert all(len(d.digest) >= 8 for d in contexts.values())


@pytest.mark.parametrize("role", ["dev", "test"])
def test_predict_reproduces_dev_and_test_metrics(trained, shared_cache, role):
    root, client, run, _ = trained
    logged = Path(client.download_artifacts(run.info.run_id, f"evaluation/{role}_predictions.jsonl"))
    # the generated dev file holds both roles' rows (test was carved from it): keep the role's
    rows_file = subset_file(next((shared_cache / "demo").rglob("qc_dev.jsonl")), logged, root / f"{role}.jsonl")
    output = root / f"submission_{role}.jsonl"
    result = run_cli("predict", ["run=latest", f"input={rows_file}", f"output={output}",
                                 f"paths.root={root}", f"paths.cache_dir={shared_cache}"], cwd=root)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    source_rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    assert len(rows) == len(source_rows) == int(run.data.params[f"data.{role}_rows"])
    assert all({k: r[k] for k in s} == s for r, s in zip(rows, source_rows))  # input fields kept as they were
    f1 = f1_score([r["label"] for r in rows], [r["prediction"] for r in rows])
    assert f1 == pytest.approx(run.data.metrics[f"{role}_f1"], abs=1e-6)
    assert "overall" in result.stdout and "de " in result.stdout and "unseen" in result.stdout
    logged_scores = {str(r["id"]): r["score"] for r in map(json.loads, logged.read_text().splitlines())}
    assert np.allclose([logged_scores[str(r["id"])] for r in rows], [r["score"] for r in rows], atol=1e-5)


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
    try:
        runs = mlflow.search_runs(experiment_names=["relevance-qi"])
    finally:
        mlflow.set_tracking_uri(None)  # it sets MLFLOW_TRACKING_URI too: never leak it to the next test
    assert len(runs) == 1 and runs.loc[0, "status"] == "FINISHED"
    assert runs.loc[0, "tags.head"] == "yes_no" and runs.loc[0, "tags.quant"] == "int8"
    run_id = runs.loc[0, "run_id"]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    # the logged dev metrics are those of the logged P(" yes") scores, and those scores vary by row
    logged = Path(client.download_artifacts(run_id, "evaluation/dev_predictions.jsonl"))
    dev = [json.loads(line) for line in logged.read_text().splitlines()]
    scores = np.array([r["score"] for r in dev])
    assert len(set(scores)) > 1 and ((scores > 0) & (scores < 1)).all()  # bf16 logits: few distinct values
    assert roc_auc_score([r["label"] for r in dev], scores) == pytest.approx(runs.loc[0, "metrics.dev_roc_auc"])
    # predict rebuilds the yes/no head in int8 and scores the dev rows as training did
    rows_file = subset_file(generated_dev_file(shared_cache, "qi", dev), logged, tmp_path / "dev.jsonl")
    output = tmp_path / "dev_pred.jsonl"
    run_cli("predict", [f"run={run_id}", f"input={rows_file}", f"output={output}",
                        f"paths.root={tmp_path}", f"paths.cache_dir={shared_cache}"], cwd=tmp_path)
    predicted = {str(r["id"]): r["score"] for r in map(json.loads, output.read_text().splitlines())}
    assert np.allclose([predicted[str(r["id"])] for r in dev], scores, atol=1e-5)
