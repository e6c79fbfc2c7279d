"""Compute dtype and bitsandbytes settings from the `quant` config."""

from __future__ import annotations

import logging

import torch
from omegaconf import DictConfig
from transformers import BitsAndBytesConfig

log = logging.getLogger(__name__)


def resolve_compute_dtype(name: str) -> torch.dtype:
    """`auto` means bf16 on a bf16-capable GPU and fp32 everywhere else: bf16 matmuls
    on CPU are about 20x slower, so CPU never gets it by default."""
    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    dtype = getattr(torch, name)
    if dtype != torch.float32 and not torch.cuda.is_available():
        log.warning("quant.compute_dtype=%s on CPU is much slower than float32", name)
    return dtype


def bitsandbytes_config(quant_cfg: DictConfig) -> BitsAndBytesConfig | None:
    if quant_cfg.bits is None:
        return None
    compute_dtype = resolve_compute_dtype(quant_cfg.compute_dtype)
    if quant_cfg.bits == 4:
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=quant_cfg.quant_type,
            bnb_4bit_use_double_quant=bool(quant_cfg.double_quant),
            bnb_4bit_compute_dtype=compute_dtype,
        )
    return BitsAndBytesConfig(load_in_8bit=True)


def device_map() -> dict[str, int] | None:
    """One GPU per process (the process's local rank) when CUDA is there; on CPU, none."""
    if not torch.cuda.is_available():
        return None
    import os

    return {"": int(os.environ.get("LOCAL_RANK", 0))}


def keep_4bit_layers_differentiable(model) -> int:
    """Stop bitsandbytes from repacking 4-bit weights for CPU inference.

    On CPUs with AVX512-BF16, a `Linear4bit` that runs once in eval mode without grad
    (e.g. the per-epoch evaluation) repacks its weights into an inference-only layout whose
    kernel has no autograd: later training steps then backpropagate nothing through the
    frozen base, silently corrupting LoRA gradients. It would also score with bf16 absmax,
    so dev metrics at training time and at predict time would differ. Returns the number
    of layers changed.
    """
    changed = 0
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
            changed += 1
    return changed
