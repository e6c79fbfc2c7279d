"""The paper's backbones, in their shapes, through the project's loader, `relevance.train` and
`relevance.predict`: a tiny *composite* Gemma-3 (text + vision sub-configs, as Gemma-3 12B) and a
tiny Qwen2 (Qwen-2.5 14B's architecture), with the GPU presets' settings where they apply on a CPU:
nf4 + LoRA (quant=nf4), trainer=gpu (token-budget batches, gradient checkpointing, accumulation),
LoRA dropout 0.05 (experiment=paper_ablation_gpu), each model YAML's classifier class and LoRA targets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from safetensors import safe_open
from sklearn.metrics import f1_score

from transformers import AutoTokenizer

from relevance.modeling.loader import load_backbone, load_for_training, load_tokenizer
from relevance.modeling.sources import ResolvedModel, resolve_model
from tests.conftest import compose_train, run_cli
from tests.test_test_split import subset_file

MODELS = ["tiny_gemma3", "tiny_qwen2"]
TEXTS = ["Search query: lamp\nProduct category: home,lighting",
         "Search query: red running shoes for kids\nProduct category: sports,shoes,running shoes",
         "Search query: phone case with a card holder, black leather\nProduct category: phones,accessories,cases"]


def model_cfg(cache: Path, model: str, *overrides: str):
    return compose_train([f"model={model}", f"paths.cache_dir={cache}", "paths.root=/tmp", *overrides])


def test_the_pad_id_is_set_where_the_composite_models_head_reads_it(shared_cache):
    cfg = model_cfg(shared_cache, "tiny_gemma3", "quant=none", "quant.compute_dtype=float32")
    source = resolve_model(cfg.model, shared_cache)
    saved = json.loads((Path(source.path) / "config.json").read_text())
    assert set(saved) >= {"text_config", "vision_config"}  # composite, as gemma-3-12b-it
    assert saved["text_config"].get("pad_token_id") is None  # the text config does not know the pad id...
    tokenizer = load_tokenizer(source, cfg.model, cfg.head)
    model = load_backbone(cfg, source, tokenizer, cfg.head)
    text_config = model.config.get_text_config()
    assert text_config is not model.config
    assert text_config.pad_token_id == model.config.pad_token_id == tokenizer.pad_token_id  # ... until loaded


def test_a_pad_token_outside_the_vocabulary_names_model_pad_token(shared_cache, tmp_path):
    cfg = model_cfg(shared_cache, "tiny_qwen2", "quant=none", "model.pad_token='<|endoftext|>'")  # not a tiny token
    source = resolve_model(cfg.model, shared_cache)
    without_pad = AutoTokenizer.from_pretrained(source.path)
    without_pad.pad_token = None  # a tokenizer without a pad token: model.pad_token is used, and checked
    without_pad.save_pretrained(tmp_path / "tokenizer")
    with pytest.raises(ValueError, match=r"model.pad_token='<\|endoftext\|>' is not a token .* set model.pad_token"):
        load_tokenizer(ResolvedModel(str(tmp_path / "tokenizer"), None, "local"), cfg.model, cfg.head)

    tokenizer = load_tokenizer(source, cfg.model, cfg.head)
    tokenizer.add_special_tokens({"pad_token": "<extra_pad>"})  # a new token: one past the model's embeddings
    with pytest.raises(ValueError, match=r"pad token '<extra_pad>' has id \d+, outside .* set model.pad_token"):
        load_backbone(cfg, source, tokenizer, cfg.head)


def logits(model, tokenizer, texts: list[str], side: str) -> torch.Tensor:
    tokenizer.padding_side = side
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()


@pytest.mark.parametrize("model", MODELS)
def test_right_left_and_unpadded_rows_give_the_same_logits(shared_cache, model):
    torch.manual_seed(0)
    loaded = load_for_training(model_cfg(shared_cache, model, "quant=nf4", "quant.compute_dtype=float32"))
    net, tokenizer = loaded.model.eval(), loaded.tokenizer
    lengths = [len(ids) for ids in tokenizer(TEXTS)["input_ids"]]
    assert len(set(lengths)) == len(TEXTS)  # every row but the longest is padded in a batch
    alone = torch.cat([logits(net, tokenizer, [text], "right") for text in TEXTS])
    right, left = logits(net, tokenizer, TEXTS, "right"), logits(net, tokenizer, TEXTS, "left")
    assert torch.allclose(right, alone, atol=1e-4), (right - alone).abs().max()
    assert torch.allclose(left, alone, atol=1e-4), (left - alone).abs().max()
    assert not torch.allclose(alone[0], alone[1], atol=1e-3)  # the rows are told apart: the check can fail


def lora_weight_names(adapter: Path) -> list[str]:
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as weights:
        return [name for name in weights.keys() if "lora_" in name]


@pytest.mark.parametrize("model", MODELS)
def test_train_and_predict_with_the_gpu_presets_settings(tmp_path, shared_cache, model):
    args = [f"model={model}", "trainer=gpu", "peft.dropout=0.05", "quant=nf4", "task=qc",
            f"paths.root={tmp_path}", f"paths.cache_dir={shared_cache}"]
    run_cli("train", args, cwd=tmp_path)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["trainer.name"] == "gpu"
    assert run.data.params["trainer.gradient_checkpointing"] == "True" and run.data.params["quant.bits"] == "4"

    adapter = Path(client.download_artifacts(run.info.run_id, "model"))
    lora = lora_weight_names(adapter)
    assert lora and not [name for name in lora if "vision" in name or "projector" in name]
    if model == "tiny_gemma3":  # the composite: LoRA only in the language model, as the regex says
        assert all(".language_model." in name for name in lora)

    logged = Path(client.download_artifacts(run.info.run_id, "evaluation/dev_predictions.jsonl"))
    dev_file = subset_file(next((shared_cache / "demo").rglob("qc_dev.jsonl")), logged, tmp_path / "dev.jsonl")
    output = tmp_path / "dev_predictions.jsonl"
    run_cli("predict", ["run=latest", f"input={dev_file}", f"output={output}", f"paths.root={tmp_path}",
                        f"paths.cache_dir={shared_cache}"], cwd=tmp_path)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == int(run.data.params["data.dev_rows"])
    assert f1_score([r["label"] for r in rows], [r["prediction"] for r in rows]) == pytest.approx(
        run.data.metrics["dev_f1"], abs=1e-6)
    logged_scores = {str(r["id"]): r["score"] for r in map(json.loads, logged.read_text().splitlines())}
    assert np.allclose([logged_scores[str(r["id"])] for r in rows], [r["score"] for r in rows], atol=1e-5)
