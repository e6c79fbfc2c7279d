"""LoRA on top of a (possibly k-bit) backbone."""

from __future__ import annotations

from omegaconf import DictConfig, ListConfig, OmegaConf
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training


def apply_peft(model, peft_cfg: DictConfig, model_cfg: DictConfig, task_type: str, quantized: bool,
               gradient_checkpointing: bool):
    if quantized:
        # Casts norms to fp32, enables input grads; never merge an adapter into this base.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if peft_cfg.name == "none":
        return model
    targets = peft_cfg.target_modules
    if isinstance(targets, ListConfig):
        targets = OmegaConf.to_container(targets)
    lora = LoraConfig(
        r=peft_cfg.r,
        lora_alpha=peft_cfg.alpha,
        lora_dropout=peft_cfg.dropout,
        target_modules=targets,
        bias="none",
        task_type=task_type,
        # The classification head is new: train it in full and save it with the adapter.
        modules_to_save=[model_cfg.classifier_head] if task_type == "SEQ_CLS" else None,
    )
    return get_peft_model(model, lora)
