"""LoRA on top of a (possibly k-bit) backbone."""

from __future__ import annotations

from omegaconf import DictConfig, ListConfig, OmegaConf
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training


def prepare_base(model, quantized: bool, gradient_checkpointing: bool = False):
    """The base as training runs and scores it. A k-bit base gets PEFT's preparation (norms
    and other small weights cast to fp32, input grads on), so a trained run's model must be
    rebuilt through this same function to score exactly as training did; never merge an
    adapter into this base."""
    if quantized:
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model


def apply_peft(model, peft_cfg: DictConfig, model_cfg: DictConfig, task_type: str, quantized: bool,
               gradient_checkpointing: bool):
    model = prepare_base(model, quantized, gradient_checkpointing)
    if peft_cfg.name == "none":
        return model
    targets = peft_cfg.target_modules
    if isinstance(targets, ListConfig):
        targets = OmegaConf.to_container(targets)
    layers = lora_layers(peft_cfg, model)
    lora = LoraConfig(
        r=peft_cfg.r,
        lora_alpha=peft_cfg.alpha,
        lora_dropout=peft_cfg.dropout,
        target_modules=targets,
        layers_to_transform=layers,
        bias="none",
        task_type=task_type,
        # The classification head is new: train it in full and save it with the adapter.
        modules_to_save=[model_cfg.classifier_head] if task_type == "SEQ_CLS" else None,
    )
    return get_peft_model(model, lora)


def lora_layers(peft_cfg: DictConfig, model) -> list[int] | None:
    """`peft.layers_to_transform` as PEFT takes it, each index checked against the model's decoder layers
    (PEFT would skip one that does not exist and train less than the config says)."""
    layers = peft_cfg.get("layers_to_transform")
    if layers is None:
        return None
    layers = [int(i) for i in layers]
    count = model.config.get_text_config().num_hidden_layers
    if outside := [i for i in layers if not 0 <= i < count]:
        raise ValueError(f"peft.layers_to_transform={layers}: this model has decoder layers 0-{count - 1} only, "
                         f"not {outside}")
    return layers


def load_adapter_weights(model, adapter_dir) -> None:
    """Copy a saved adapter's weights (LoRA and the modules saved with it, e.g. the classifier
    head) into `model`, a PEFT model of the same shape; every one of them must land."""
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    weights = load_peft_weights(str(adapter_dir), device="cpu")
    result = set_peft_model_state_dict(model, weights)
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    missing = [k for k in getattr(result, "missing_keys", []) or [] if "lora_" in k or "modules_to_save" in k]
    if unexpected or missing:
        raise ValueError(f"the adapter in {adapter_dir} does not fit this model: "
                         f"{len(unexpected)} of its weights have no place here ({unexpected[:3]}), "
                         f"{len(missing)} adapter weights here have none there ({missing[:3]})")
