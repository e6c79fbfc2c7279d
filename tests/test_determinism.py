"""Determinism where it is promised.

* Resolving a model (a GGUF converted, a tiny model built: only on a cache miss) leaves the random streams
  where the run's seed put them: LoRA and the head start the same on an empty cache as on a warm one
  (relevance/modeling/sources.py: `rng_untouched`).
* A dev scoring pass during training leaves later LoRA gradients as a fresh model's: 4-bit layers on CPU
  keep the differentiable kernel (relevance/modeling/quantization.py: `keep_4bit_layers_differentiable`),
  and a bitsandbytes without the switch that guarantees it is refused.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from transformers import set_seed

from relevance.augment.translator import make_translator
from relevance.hardware import cpu_flags
from relevance.modeling.inputs import encode_table
from relevance.modeling.loader import load_for_training
from relevance.modeling.quantization import (CPU_REPACK_SWITCH, QuantizationBackendError,
                                              keep_4bit_layers_differentiable, linear_4bit_layers)
from relevance.modeling.scoring import score_rows
from relevance.modeling.sources import resolve_model, rng_untouched
from tests.augment_fixtures import demo_table
from tests.conftest import compose_train


def draws() -> tuple:
    return torch.rand(4).tolist(), np.random.rand(4).tolist(), random.random()


def test_work_under_rng_untouched_leaves_every_stream_where_it_was():
    set_seed(7)
    expected = draws()
    set_seed(7)
    with rng_untouched():
        torch.randn(100), np.random.rand(100), random.random()  # what a conversion on a cache miss might draw
        torch.manual_seed(123), np.random.seed(123), random.seed(123)  # or reseed
    assert draws() == expected
    set_seed(7)
    with pytest.raises(RuntimeError, match="failed conversion"), rng_untouched():
        torch.randn(100), np.random.rand(100), random.random()
        raise RuntimeError("a failed conversion")
    assert draws() == expected  # also when it fails


def test_building_a_model_on_an_empty_cache_draws_nothing_from_the_seeded_streams(tmp_path):
    cfg = compose_train(["model=tiny_gemma3"])
    set_seed(3)
    expected = draws()
    set_seed(3)
    assert not list(tmp_path.iterdir())
    resolve_model(cfg.model, tmp_path)  # builds it: a cache miss
    cold = draws()
    set_seed(3)
    resolve_model(cfg.model, tmp_path)  # a hit
    assert cold == draws() == expected


def test_a_translator_built_on_an_empty_cache_draws_nothing_from_the_seeded_streams(tmp_path):
    """translator=tiny_seq2seq builds its random model (seeded from its YAML) on a cache miss, mid-run."""
    config = OmegaConf.to_container(compose_train(["translator=tiny_seq2seq"]).translator)
    set_seed(3)
    expected = draws()
    set_seed(3)
    translator = make_translator(config, cache_dir=tmp_path / "augment", progress=False)
    translator.load()
    assert translator.counters["model_loads"] == 1 and list((tmp_path / "models").iterdir())
    assert draws() == expected


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in model.named_parameters() if param.requires_grad}


@pytest.mark.slow  # converts SmolLM2-135M's GGUF (about a minute on 2 cores) and loads it twice
def test_lora_and_the_head_start_the_same_on_an_empty_cache_as_on_a_warm_one(tmp_path):
    """The first run after a fresh clone (the GGUF converted now) starts from the LoRA and head weights
    every later run (the conversion cached) starts from, with the same seed."""
    cfg = compose_train(["model=smollm2_135m", "quant=none", "peft=lora", f"paths.cache_dir={tmp_path}",
                         f"paths.root={tmp_path}", "seed=5"])
    starts = []
    for _ in ("empty cache", "warm cache"):
        set_seed(cfg.seed)  # as pipeline._fine_tune_and_evaluate does before loading
        loaded = load_for_training(cfg)
        starts.append((loaded.source.converted_now, trainable_state(loaded.model)))
        del loaded
    (converted_first, first), (converted_again, second) = starts
    assert converted_first and not converted_again
    assert first.keys() == second.keys() and any("score" in name for name in first)
    assert all(torch.equal(first[name], second[name]) for name in first)


# -- 4-bit layers on CPU ----------------------------------------------------------------------------

def nf4_tiny(cache, seed: int = 0):
    cfg = compose_train(["model=tiny_random", f"paths.cache_dir={cache}", "paths.root=/tmp", "quant=nf4",
                         "peft=lora", "peft.dropout=0.0", "quant.compute_dtype=auto"])
    set_seed(seed)
    loaded = load_for_training(cfg)
    with torch.no_grad():  # the same non-zero lora_B in every copy: gradients reach every lora_A through the base
        generator = torch.Generator().manual_seed(1)
        for name, param in loaded.model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
    return cfg, loaded


def lora_gradients(loaded, batch) -> dict[str, torch.Tensor]:
    model = loaded.model
    model.train()
    model.zero_grad()
    logits = loaded.head.pair_logits(model, batch)
    torch.nn.functional.cross_entropy(logits.float(), torch.tensor([1, 0])).backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if "lora_" in n and p.grad is not None}


def test_lora_gradients_after_a_dev_scoring_equal_a_fresh_models(shared_cache, tmp_path):
    """The per-epoch dev scoring runs the 4-bit base in eval mode without grad: on an AVX512-BF16 CPU (ours),
    bitsandbytes would then repack the weights into an inference-only kernel and later backward passes would
    carry no gradient through the base. The next step's LoRA gradients must be a fresh model's."""
    cfg, scored = nf4_tiny(shared_cache)
    assert linear_4bit_layers(scored.model) and all(
        getattr(layer, CPU_REPACK_SWITCH) is False for layer in linear_4bit_layers(scored.model))
    dev = encode_table(demo_table(tmp_path, rows=24), scored.tokenizer, cfg.task, cfg.head, cfg.model.max_length)
    scores = score_rows(scored.model, scored.head, scored.tokenizer, dev, batch_size=8)  # the dev scoring
    assert np.isfinite(scores).all()
    batch = scored.tokenizer(["Search query: red shoes", "Search query: phone case"], padding=True,
                             return_tensors="pt")
    after_scoring = lora_gradients(scored, batch)
    _, fresh = nf4_tiny(shared_cache)
    reference = lora_gradients(fresh, batch)
    assert after_scoring.keys() == reference.keys() and any("lora_A" in name for name in reference)
    assert all(reference[name].abs().sum() > 0 for name in reference if ".layers.0." in name)
    for name in reference:
        assert torch.allclose(after_scoring[name], reference[name], atol=1e-6), name

    # positive control, where bitsandbytes repacks (AVX512-BF16): with its switch back on, the same scoring
    # changes the next gradients, so the comparison above can see the fault
    if "avx512_bf16" in cpu_flags():
        _, unprotected = nf4_tiny(shared_cache)
        for layer in linear_4bit_layers(unprotected.model):
            setattr(layer, CPU_REPACK_SWITCH, True)
        score_rows(unprotected.model, unprotected.head, unprotected.tokenizer, dev, batch_size=8)
        broken = lora_gradients(unprotected, batch)
        assert not all(torch.allclose(broken[n], reference[n], atol=1e-6) for n in reference if n in broken) or \
            broken.keys() != reference.keys()


def test_a_bitsandbytes_without_the_cpu_switch_is_refused_for_a_4bit_model(shared_cache):
    _, loaded = nf4_tiny(shared_cache)
    layers = linear_4bit_layers(loaded.model)
    assert keep_4bit_layers_differentiable(loaded.model) == len(layers) > 0
    for layer in layers:  # what a bitsandbytes release without the attribute builds
        delattr(layer, CPU_REPACK_SWITCH)
    with pytest.raises(QuantizationBackendError, match=f"bitsandbytes .*no `{CPU_REPACK_SWITCH}` attribute.*"
                                                       "quant=none"):
        keep_4bit_layers_differentiable(loaded.model)
    assert keep_4bit_layers_differentiable(torch.nn.Sequential(torch.nn.Linear(2, 2))) == 0  # nothing 4-bit
