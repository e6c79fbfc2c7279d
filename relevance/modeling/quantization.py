"""Compute dtype, weight dtype and bitsandbytes settings from the `quant` config.

Precision is decided once, here, and carried by the model itself (`compute_in`), so the
trainer's steps, its per-epoch evaluation, the final dev scoring and `relevance.predict`
all run the same forward: same dtype, same kernels, same scores.
"""

from __future__ import annotations

import functools
import logging
import os

import torch
from omegaconf import DictConfig
from transformers import BitsAndBytesConfig

from relevance.hardware import cpu_bf16_units, missing_bf16

log = logging.getLogger(__name__)

def choose_compute_dtype(name: str, flags: set[str] | frozenset[str] | None = None) -> tuple[torch.dtype, str]:
    """The dtype matmuls run in, and why (logged with the run).

    `auto` is bf16 wherever the hardware multiplies bf16 natively: a CUDA GPU that
    supports it, or a CPU with AMX or AVX512-BF16 (a bf16 matmul is several times faster
    than fp32 there); fp32 everywhere else. `flags` overrides the CPU's flags (tests).

    `auto` is resolved once, where the run trains: the model folder records the result and
    `relevance.predict` scores in it, never re-resolving `auto` on the machine that scores
    (`relevance.hardware.missing_bf16` says when that machine cannot)."""
    if name != "auto":
        dtype = getattr(torch, name)
        if dtype != torch.float32 and not torch.cuda.is_available() and not cpu_bf16_units(flags):
            log.warning("quant.compute_dtype=%s on a CPU without native bf16 matrix units is slower than float32", name)
        return dtype, f"set explicitly: quant.compute_dtype={name}"
    missing = missing_bf16(flags)
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name()
        if missing is None:
            return torch.bfloat16, f"auto: CUDA GPU {gpu} supports bf16"
        return torch.float32, f"auto: {missing}"
    found = cpu_bf16_units(flags)
    if found:
        return torch.bfloat16, f"auto: CPU has native bf16 matrix units ({', '.join(found)})"
    return torch.float32, f"auto: {missing}"


def resolve_compute_dtype(name: str) -> torch.dtype:
    return choose_compute_dtype(name)[0]


def weights_dtype(quant_cfg: DictConfig, peft_cfg: DictConfig, compute_dtype: torch.dtype) -> torch.dtype:
    """The dtype the backbone's floating-point weights are loaded in.

    Only a frozen, unquantized base is stored in the compute dtype. Trained weights stay
    fp32 (the optimizer's updates would vanish in bf16 rounding; autocast computes in the
    compute dtype). A quantized model's remaining weights (embeddings, norms, head) end up
    fp32 anyway (`lora.prepare_base` casts them, in training and at predict time): loading
    them in fp32 skips a lossy round trip through bf16."""
    if quant_cfg.bits is None and peft_cfg.name != "none":
        return compute_dtype
    return torch.float32


def compute_in(model, dtype: torch.dtype):
    """Run every forward of `model` under autocast to `dtype` (a no-op for fp32).

    Attached to the model, not to the trainer: Hugging Face's `bf16=True` wraps the same
    autocast around the training model only, so a fresh model at predict time would score
    differently. Backward passes and gradient-checkpoint recomputations keep the state."""
    if dtype == torch.float32:
        return model
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    forward = model.forward

    @functools.wraps(forward)
    def forward_in_compute_dtype(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            return forward(*args, **kwargs)

    model.forward = forward_in_compute_dtype
    return model


def keep_trained_weights_in_float32(model) -> int:
    """Cast trainable bf16/fp16 weights (e.g. a classifier head copied from a bf16 base) to
    fp32: autocast still multiplies them in the compute dtype, but AdamW's small updates
    accumulate in full precision. Returns the number of tensors cast."""
    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.bfloat16, torch.float16):
            param.data = param.data.float()
            cast += 1
    return cast


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
    return {"": int(os.environ.get("LOCAL_RANK", 0))}


CPU_REPACK_SWITCH = "support_avx512bf16_for_cpu"  # a private attribute of bitsandbytes' Linear4bit (0.50.2 has it)


class QuantizationBackendError(RuntimeError):
    """The installed bitsandbytes does not behave as this project relies on; the message says what to do."""


def linear_4bit_layers(model) -> list:
    """bitsandbytes' `Linear4bit` modules of `model` (none, without importing bitsandbytes, for other models)."""
    if not any(type(module).__module__.startswith("bitsandbytes") for module in model.modules()):
        return []
    import bitsandbytes as bnb

    return [module for module in model.modules() if isinstance(module, bnb.nn.Linear4bit)]


def keep_4bit_layers_differentiable(model) -> int:
    """Stop bitsandbytes from repacking 4-bit weights for CPU inference.

    On CPUs with AVX512-BF16, a `Linear4bit` that runs once in eval mode without grad
    (e.g. the per-epoch evaluation) repacks its weights into an inference-only layout whose
    kernel has no autograd: later training steps then backpropagate nothing through the
    frozen base, silently corrupting LoRA gradients. It would also score with bf16 absmax,
    so dev metrics at training time and at predict time would differ. With it off, every
    pass dequantizes (fp32 absmax) to the compute dtype and multiplies with PyTorch's
    matmul, which on AMX/AVX512-BF16 CPUs is itself a native bf16 kernel.

    Returns the number of 4-bit layers on CPU now switched off (each checked after the
    change); 0 for a model without 4-bit layers or with them on a GPU (no repacking there).
    Raises `QuantizationBackendError` when a 4-bit layer on CPU has no such switch: the
    installed bitsandbytes changed its CPU path, and training on would risk exactly the
    silent corruption above (tests/test_determinism.py holds the promise).
    """
    on_cpu = [layer for layer in linear_4bit_layers(model) if layer.weight.device.type == "cpu"]
    lacking = [layer for layer in on_cpu if not hasattr(layer, CPU_REPACK_SWITCH)]
    if lacking:
        import bitsandbytes as bnb

        raise QuantizationBackendError(
            f"bitsandbytes {bnb.__version__}: its 4-bit layers (Linear4bit) have no `{CPU_REPACK_SWITCH}` "
            "attribute, which relevance.modeling.quantization.keep_4bit_layers_differentiable turns off so that "
            "an evaluation pass on CPU cannot make later LoRA gradients wrong. Install a bitsandbytes this project "
            "was tested with (pip install bitsandbytes==0.50.2), or train without 4-bit on CPU "
            "(quant=none)")
    for layer in on_cpu:
        setattr(layer, CPU_REPACK_SWITCH, False)
    still_on = [layer for layer in on_cpu if getattr(layer, CPU_REPACK_SWITCH) is not False]
    if still_on:
        raise QuantizationBackendError(f"{len(still_on)} 4-bit layers kept `{CPU_REPACK_SWITCH}` on after it was "
                                       "turned off: the installed bitsandbytes overrides it")
    return len(on_cpu)
