"""Cross-field checks of the model being fine-tuned: quantization with PEFT (`quant.*`, `peft.*`:
a 4-bit base needs LoRA), the head (`head.*`, plus each head's own `problems`), and
`model.init_adapter` (starting LoRA from a logged run needs peft=lora). Each function yields one
message per problem, naming the key; `relevance.config.validation` collects them.
"""

from __future__ import annotations

from omegaconf import DictConfig

from relevance.modeling.heads import head_class, head_names


def init_adapter_problems(cfg: DictConfig):
    if not str(cfg.model.init_adapter).strip():
        yield "model.init_adapter is empty: give a logged run's id, or null to start LoRA and the head afresh"
    if cfg.peft.name != "lora":
        yield (f"model.init_adapter={cfg.model.init_adapter} needs peft=lora: it starts LoRA and the head "
               "from that run's saved adapter")


def quant_peft_problems(cfg: DictConfig):
    bits = cfg.quant.bits
    if bits not in (None, 4, 8):
        yield f"quant.bits={bits}: use 4, 8 or null"
    if bits is not None and cfg.peft.name == "none":
        yield (f"quant={cfg.quant.name} needs peft=lora: a {bits}-bit base cannot be trained in full "
               "(or use quant=none to fine-tune every weight)")
    if bits == 4 and cfg.quant.quant_type not in ("nf4", "fp4"):
        yield f"quant.quant_type={cfg.quant.quant_type!r}: 4-bit needs nf4 or fp4"
    if cfg.quant.compute_dtype not in ("auto", "float32", "bfloat16", "float16"):
        yield f"quant.compute_dtype={cfg.quant.compute_dtype!r}: use auto, float32, bfloat16 or float16"
    if cfg.peft.name == "lora":
        if not cfg.peft.r or cfg.peft.r < 1:
            yield f"peft.r={cfg.peft.r}: LoRA rank must be a positive integer"
        if not cfg.peft.target_modules:
            yield "peft.target_modules is empty: set model.lora_target_modules in the model's YAML"
        yield from _lora_layers_problems(cfg.peft.get("layers_to_transform"))
        if cfg.peft.get("layers_to_transform") is not None and isinstance(cfg.peft.target_modules, str):
            yield (f"peft.layers_to_transform with peft.target_modules={cfg.peft.target_modules!r}: PEFT takes the "
                   "layers from a list of module names only; put the layers in the pattern, e.g. "
                   r"'.*layers\.(9|1[0-7])\..*\.(q_proj|v_proj)'")
    elif cfg.peft.get("layers_to_transform") is not None:
        yield (f"peft.layers_to_transform={list(cfg.peft.layers_to_transform)} needs peft=lora: "
               "full fine-tuning trains every layer")
    elif cfg.peft.name != "none":
        yield f"peft.name={cfg.peft.name!r}: use lora or none"


def _lora_layers_problems(layers):
    if layers is None:
        return
    layers = list(layers)
    if not layers:
        yield "peft.layers_to_transform=[]: no layer would get LoRA; list layer indices, or null for every layer"
    elif any(i < 0 for i in layers):
        yield f"peft.layers_to_transform={layers}: layer indices count from 0 (no negative index)"
    elif len(set(layers)) != len(layers):
        yield f"peft.layers_to_transform={layers}: a layer is listed twice"


def head_problems(cfg: DictConfig):
    head = cfg.head
    if head.padding_side not in ("left", "right"):
        yield f"head.padding_side={head.padding_side!r}: use left or right"
    if head.name not in head_names():
        yield f"head.name={head.name!r}: use one of {head_names()}"
    else:
        yield from head_class(head.name).problems(head)
