"""Three roles for evaluation rows: a test split (carved from dev by query, or a file) that only
reports; per-language thresholds tuned on dev, saved with the adapter and applied by predict."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import f1_score

from relevance.config import ConfigError, validate_config
from relevance.data.demo import write_demo_data
from relevance.data.loading import load_splits
from relevance.data.splits import query_group_key
from tests.conftest import compose_train, run_cli, task_config, tiny_run_args


def demo_splits(cache: Path, *overrides: str):
    cfg = compose_train([f"paths.cache_dir={cache}", "paths.root=/tmp", *overrides])
    return load_splits(cfg.data, cfg.task)


def subset_file(source: Path, logged_predictions: Path, destination: Path) -> Path:
    """The rows of `source` (a competition file) whose ids a run logged in `logged_predictions`."""
    ids = {str(json.loads(line)["id"]) for line in logged_predictions.read_text().splitlines()}
    lines = [line for line in source.read_text().splitlines() if str(json.loads(line)["id"]) in ids]
    destination.write_text("".join(line + "\n" for line in lines))
    return destination


def queries(table) -> set[str]:
    return {query_group_key(q) for q in table["query"]}


def test_the_demo_carves_half_of_dev_as_test_by_query(tmp_path):
    splits = demo_splits(tmp_path)
    generated = 480
    assert len(splits.dev) + len(splits.test) == generated and abs(len(splits.test) - generated / 2) < 40
    assert splits.test_path == splits.dev_path
    assert queries(splits.dev).isdisjoint(queries(splits.test))
    assert queries(splits.train).isdisjoint(queries(splits.test))
    for table in (splits.dev, splits.test):  # stratified: every language, both labels, the same positive share
        assert {"de", "it"} <= set(table["language"]) and set(table["label"]) == {0, 1}
        assert abs(sum(table["label"]) / len(table) - 0.68) < 0.06
    assert list(splits.evaluation_tables()) == ["dev", "test"]


def test_data_seed_fixes_the_rows_whatever_the_model_seed(tmp_path):
    base = demo_splits(tmp_path)
    other_model_seed = demo_splits(tmp_path, "seed=7")
    assert base.dev["id"] == other_model_seed.dev["id"] and base.test["id"] == other_model_seed.test["id"]
    other_rows = demo_splits(tmp_path, "data.seed=1")
    assert set(other_rows.test["id"]) != set(base.test["id"])


def test_no_test_split_keeps_dev_whole(tmp_path):
    splits = demo_splits(tmp_path, "data.test_fraction=null")
    assert splits.test is None and splits.test_path is None and len(splits.dev) == 480
    assert list(splits.evaluation_tables()) == ["dev"]


def test_a_test_file_with_its_own_cap(tmp_path):
    data = tmp_path / "data"
    write_demo_data(data, task_config("qc"), seed=1, train_rows=200, dev_rows=120)
    write_demo_data(tmp_path / "other", task_config("qc"), seed=2, train_rows=10, dev_rows=150)
    (tmp_path / "other" / "qc_dev.jsonl").rename(data / "qc_test.jsonl")
    splits = demo_splits(tmp_path, "data=competition", f"data.dir={data}", "data.train_file=qc_train.jsonl",
                         "data.dev_file=qc_dev.jsonl", "data.test_file=qc_test.jsonl", "data.max_test_rows=100")
    assert len(splits.dev) == 120 and len(splits.test) == 100 and splits.test_path == data / "qc_test.jsonl"
    assert Counter(splits.test["language"]).keys() == Counter(splits.dev["language"]).keys()


@pytest.mark.parametrize("overrides,message", [
    (["data=competition", "data.dir=/data", "data.test_file=test.jsonl", "data.test_fraction=0.5"],
     "add data.test_fraction=null"),
    (["data.test_fraction=1.5"], "data.test_fraction=1.5: the share of dev"),
    (["data.max_test_rows=0"], "data.max_test_rows=0"),
    (["evaluation.threshold=per_country"], "evaluation.threshold='per_country'"),
    (["evaluation.min_rows_per_language=0"], "evaluation.min_rows_per_language=0"),
])
def test_test_split_and_threshold_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        validate_config(compose_train(overrides))


@pytest.fixture(scope="module")
def per_language_run(tmp_path_factory, shared_cache):
    root = tmp_path_factory.mktemp("per-language")
    run_cli("train", tiny_run_args(root, shared_cache, "evaluation.threshold=per_language",
                                   "evaluation.min_rows_per_language=10"), cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    return root, client, run


def test_per_language_thresholds_are_tuned_on_dev_saved_and_reported_on_test(per_language_run):
    _, client, run = per_language_run
    metrics = run.data.metrics
    saved = json.loads(Path(client.download_artifacts(run.info.run_id, "model/threshold.json")).read_text())
    assert saved["mode"] == "per_language" and saved["min_rows_per_language"] == 10
    assert saved["per_language"], "the demo's dev has 20-40 rows per language: each gets its own threshold"
    assert saved["threshold"] == pytest.approx(metrics["dev_threshold"])
    for lang, value in saved["per_language"].items():
        assert metrics[f"dev_threshold_lang_{lang}"] == pytest.approx(value)
    for name in ("test_f1", "test_f1_global_threshold", "dev_f1_global_threshold", "test_roc_auc",
                 "test_f1_all_relevant", "test_f1_lift", "dev_f1_all_relevant", "dev_f1_lift"):
        assert name in metrics, name
    assert metrics["test_f1_lift"] == pytest.approx(metrics["test_f1"] - metrics["test_f1_all_relevant"])
    # tuned per language on dev, dev F1 can only be at least the global threshold's
    assert metrics["dev_f1"] >= metrics["dev_f1_global_threshold"] - 1e-9


def test_predict_applies_the_per_language_thresholds(per_language_run, shared_cache):
    root, client, run = per_language_run
    test_rows = Path(client.download_artifacts(run.info.run_id, "evaluation/test_predictions.jsonl"))
    logged = {str(r["id"]): r for r in map(json.loads, test_rows.read_text().splitlines())}
    input_file = subset_file(next((shared_cache / "demo").rglob("qc_dev.jsonl")), test_rows, root / "test_input.jsonl")
    output = root / "scored.jsonl"
    result = run_cli("predict", ["run=latest", f"input={input_file}", f"output={output}", f"paths.root={root}",
                                 f"paths.cache_dir={shared_cache}"], cwd=root)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == len(logged)
    assert all(r["prediction"] == logged[str(r["id"])]["prediction"] for r in rows)
    assert f1_score([r["label"] for r in rows], [r["prediction"] for r in rows]) == \
        pytest.approx(run.data.metrics["test_f1"], abs=1e-6)
    assert "per language:" in result.stdout
