"""Slow: the real Gemma-3 270M (PyPI GGUF → cached safetensors) fine-tuned in nf4 + LoRA
on a few hundred real QC rows from ../shared/data/qc, on CPU."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from relevance.modeling.sources import resolve_model
from tests.conftest import SHARED_QC, compose_train, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gemma_run(tmp_path_factory, shared_cache):
    if not (SHARED_QC / "train.jsonl").exists():
        pytest.skip(f"real QC rows not found at {SHARED_QC}")
    root = tmp_path_factory.mktemp("gemma")
    run_cli("train", [
        "model=gemma3_270m", "quant=nf4", "peft=lora", "head=classifier",
        "data=competition", f"data.dir={SHARED_QC}", "data.dev_file=null",  # dev: a query-grouped split
        "data.max_train_rows=3000", "data.max_dev_rows=600", "trainer.epochs=1", "trainer.lr=3e-4",
        "trainer.save_checkpoints=false",
        f"paths.root={root}", f"paths.cache_dir={shared_cache}",
    ], cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    return run


def test_gemma3_270m_in_nf4_learns_real_relevance(gemma_run):
    metrics = gemma_run.data.metrics
    assert gemma_run.info.status == "FINISHED"
    assert gemma_run.data.tags["model"] == "gemma3_270m" and gemma_run.data.tags["quant"] == "nf4"
    # Observed: ROC-AUC 0.63 (600 dev rows; chance is 0.5 and one standard error is about 0.025), in about
    # 4 minutes. Fewer rows did not clear the bar with the 2026-11-25 defaults (bf16, token budget): 600 rows x 2
    # epochs at lr 1e-3 gave 0.52-0.54, 2,000 rows at 1e-3 0.57; the lower lr over more steps learns. The bar
    # is "learned", not "good": all 7k rows at lr 2e-4 reach about 0.67 (README, real data).
    assert metrics["dev_roc_auc"] > 0.57, metrics["dev_roc_auc"]
    assert {"dev_f1_lang_en", "dev_f1_lang_fr", "dev_f1_lang_ja"} <= set(metrics)


def test_the_gguf_is_converted_once_then_reused(gemma_run, shared_cache):
    cfg = compose_train(["model=gemma3_270m", f"paths.cache_dir={shared_cache}", "paths.root=/tmp"])
    again = resolve_model(cfg.model, shared_cache)
    assert again.converted_now is False
    assert again.digest == gemma_run.data.tags["model.source_digest"]
