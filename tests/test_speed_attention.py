"""SDPA attention computes what eager attention computes, on tiny Llama and Gemma-3 models
loaded by the project's loader, with and without padding (right padding for the classifier
head, left for the yes/no head), so the model YAMLs can use SDPA for training and scoring."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from relevance.modeling.heads import build_head
from relevance.modeling.loader import load_backbone, load_tokenizer
from relevance.modeling.sources import resolve_model
from relevance.modeling.tiny import build_tiny_model
from tests.conftest import compose_train

# Gemma-3's sliding-window layers matter here: a window of 8 tokens is shorter than the rows.
TINY_GEMMA3 = dict(architecture="gemma3_text", vocab_size=1024, hidden_size=64, intermediate_size=128,
                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, head_dim=16, sliding_window=8,
                   layer_types=["sliding_attention", "full_attention"], max_position_embeddings=256, seed=0)
TEXTS = ["Search query: red running shoes for kids\nProduct category: sports,shoes,running shoes",
         "Search query: lamp\nProduct category: home,lighting",
         "Search query: phone case with a card holder, black leather\nProduct category: phones,accessories,cases"]


def model_overrides(name: str, cache: Path) -> list[str]:
    if name == "llama":
        return []
    path = build_tiny_model(OmegaConf.create(TINY_GEMMA3), cache / "models").path
    return ["model.source=local", f"model.id={path}"]


def pair_logits(cache: Path, overrides: list[str], attention: str, texts: list[str]) -> torch.Tensor:
    cfg = compose_train(["model=tiny_random", f"paths.cache_dir={cache}", "paths.root=/tmp", "quant=none",
                         "quant.compute_dtype=float32", f"model.attn_implementation={attention}", *overrides])
    source = resolve_model(cfg.model, cache)
    tokenizer = load_tokenizer(source, cfg.model, cfg.head)
    torch.manual_seed(0)  # the classifier head is initialised at load: the same for both attentions
    model = load_backbone(cfg, source, tokenizer, cfg.head).eval()
    assert model.config._attn_implementation == attention
    batch = tokenizer(texts, padding=True, return_tensors="pt").to(model.device)
    with torch.no_grad():
        return build_head(cfg.head, tokenizer).pair_logits(model, batch).cpu()


@pytest.mark.parametrize("architecture", ["llama", "gemma3"])
@pytest.mark.parametrize("head", ["classifier", "yes_no"])
def test_sdpa_gives_the_logits_of_eager_attention(shared_cache, architecture, head):
    overrides = [*model_overrides(architecture, shared_cache), f"head={head}"]
    padded = {attention: pair_logits(shared_cache, overrides, attention, TEXTS) for attention in ("eager", "sdpa")}
    assert torch.allclose(padded["sdpa"], padded["eager"], atol=1e-5, rtol=1e-4)
    for i, text in enumerate(TEXTS):
        alone = {attention: pair_logits(shared_cache, overrides, attention, [text]) for attention in ("eager", "sdpa")}
        assert torch.allclose(alone["sdpa"], alone["eager"], atol=1e-5, rtol=1e-4)
        assert torch.allclose(padded["sdpa"][i], alone["sdpa"][0], atol=1e-5, rtol=1e-4)  # padding leaks nothing
