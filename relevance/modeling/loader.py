"""Build the backbone + tokenizer + head a run asks for."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig
from transformers import AutoTokenizer

from relevance.modeling.class_allowlist import model_class
from relevance.modeling.heads import build_head, head_class
from relevance.modeling.quantization import (bitsandbytes_config, choose_compute_dtype, compute_in, device_map,
                                              keep_4bit_layers_differentiable, keep_trained_weights_in_float32,
                                              weights_dtype)
from relevance.modeling.sources import ModelSourceError, ResolvedModel, resolve_model

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    head: object
    source: ResolvedModel
    compute_dtype: torch.dtype | None = None  # what the matmuls run in (autocast / bitsandbytes compute dtype)
    compute_dtype_reason: str = ""  # why: hardware found, or set explicitly
    train_languages: list[str] | None = None  # set when loaded from a run, for unseen-language metrics


def load_tokenizer(source: ResolvedModel, model_cfg: DictConfig, head_cfg: DictConfig):
    """The model's tokenizer, with a pad token that is one of its own tokens (`model.pad_token` when
    it has none): a pad token outside the vocabulary would grow it past the model's embeddings."""
    tokenizer = AutoTokenizer.from_pretrained(
        source.path, revision=source.revision, trust_remote_code=model_cfg.trust_remote_code)
    if tokenizer.pad_token is None:
        if not model_cfg.pad_token:
            raise ValueError(f"model {model_cfg.name}: the tokenizer has no pad token; set model.pad_token")
        tokenizer.pad_token = model_cfg.pad_token
    if tokenizer.pad_token not in tokenizer.get_vocab():
        raise ValueError(f"model.pad_token={tokenizer.pad_token!r} is not a token of model {model_cfg.name}'s "
                         f"tokenizer ({len(tokenizer)} tokens): set model.pad_token to one of its tokens, e.g. its "
                         f"eos token {tokenizer.eos_token!r}")
    tokenizer.padding_side = head_cfg.padding_side
    return tokenizer


def load_backbone(cfg: DictConfig, source: ResolvedModel, tokenizer, head_cfg: DictConfig):
    """The base model for the head: sequence classification (2 labels) or causal LM,
    every forward in the run's compute dtype (`quantization.compute_in`)."""
    model_cfg = cfg.model
    # only a class the model presets name is imported (relevance/modeling/class_allowlist.py)
    head = head_class(head_cfg.name)
    backbone_class = model_class(model_cfg, head.backbone_class_key)
    compute_dtype, reason = choose_compute_dtype(cfg.quant.compute_dtype)
    log.info("compute dtype %s (%s)", compute_dtype, reason)
    kwargs = dict(
        revision=source.revision,
        dtype=weights_dtype(cfg.quant, cfg.peft, compute_dtype),
        quantization_config=bitsandbytes_config(cfg.quant),
        device_map=device_map(),
        trust_remote_code=model_cfg.trust_remote_code,
    )
    if model_cfg.attn_implementation:
        kwargs["attn_implementation"] = model_cfg.attn_implementation
    kwargs.update(head.backbone_kwargs)
    try:
        model = backbone_class.from_pretrained(source.path, **kwargs)
    except OSError as error:
        raise ModelSourceError(
            f"could not load model {model_cfg.name} from {source.path!r}: {error}\n"
            "Without network access, point to a local copy: model.source=local model.id=/path/to/dir"
        ) from error
    # The pad id where the model reads it: the classifier head pools each row's last non-pad token by
    # the pad id of the *text* config (`config.get_text_config()`), a sub-config of a composite model
    # (Gemma-3 >= 4B: text + vision), the top level otherwise. Set on both, once it is known to be a
    # token of the tokenizer and a row of the model's input embeddings.
    pad_id, vocabulary = tokenizer.pad_token_id, min(len(tokenizer), model.get_input_embeddings().num_embeddings)
    if pad_id is None or not 0 <= pad_id < vocabulary:
        raise ValueError(f"model {model_cfg.name}: the pad token {tokenizer.pad_token!r} has id {pad_id}, outside the "
                         f"vocabulary of the tokenizer and the model ({vocabulary} tokens): set model.pad_token to one "
                         "of its tokens")
    model.config.pad_token_id = pad_id
    model.config.get_text_config().pad_token_id = pad_id
    if layers := keep_4bit_layers_differentiable(model):
        log.info("%d 4-bit layers on CPU keep the differentiable kernel (no inference-only repacking)", layers)
    return compute_in(model, compute_dtype)


def load_for_training(cfg: DictConfig, init_adapter: Path | None = None) -> LoadedModel:
    """The backbone with fresh LoRA and head, or, with `init_adapter` (a logged run's model folder,
    `model.init_adapter`), LoRA and the head as that run saved them."""
    from relevance.modeling.lora import apply_peft, load_adapter_weights

    source = resolve_model(cfg.model, Path(cfg.paths.cache_dir))
    tokenizer = load_tokenizer(source, cfg.model, cfg.head)
    head = build_head(cfg.head, tokenizer)
    model = load_backbone(cfg, source, tokenizer, cfg.head)
    model = apply_peft(model, cfg.peft, cfg.model, head.task_type, quantized=cfg.quant.bits is not None,
                       gradient_checkpointing=cfg.trainer.gradient_checkpointing)
    keep_trained_weights_in_float32(model)
    if init_adapter is not None:
        load_adapter_weights(model, Path(init_adapter))
        log.info("LoRA and head start from %s (model.init_adapter=%s)", init_adapter, cfg.model.init_adapter)
    return LoadedModel(model, tokenizer, head, source, *choose_compute_dtype(cfg.quant.compute_dtype))


def load_for_inference(cfg: DictConfig, model_dir: Path, *, compute_dtype: str) -> LoadedModel:
    """A trained run's model, rebuilt as training scored it: the logged adapter on a base
    built and prepared by the same functions (`load_backbone`, `prepare_base`), or the full model.

    `compute_dtype` is explicit (`float32`, `bfloat16`, `float16`), never `auto`: resolving `auto`
    again on the scoring machine could score in fp32 against a threshold tuned on bf16 scores."""
    from omegaconf import OmegaConf

    from relevance.modeling.lora import prepare_base

    if compute_dtype == "auto":
        raise ValueError("load_for_inference: compute_dtype=auto would re-resolve the dtype on this machine; "
                         "pass the one the run trained in (its model folder's quant.compute_dtype)")
    cfg = OmegaConf.merge(cfg, {"quant": {"compute_dtype": compute_dtype}})
    if (model_dir / "adapter_config.json").exists():
        from peft import PeftModel

        source = resolve_model(cfg.model, Path(cfg.paths.cache_dir))
        tokenizer = load_tokenizer(source, cfg.model, cfg.head)
        base = prepare_base(load_backbone(cfg, source, tokenizer, cfg.head), quantized=cfg.quant.bits is not None)
        model = PeftModel.from_pretrained(base, str(model_dir))
    else:
        source = ResolvedModel(str(model_dir), None, f"local:{model_dir}")
        tokenizer = load_tokenizer(source, cfg.model, cfg.head)
        model = load_backbone(cfg, source, tokenizer, cfg.head)
    model.eval()
    return LoadedModel(model, tokenizer, build_head(cfg.head, tokenizer), source,
                       *choose_compute_dtype(cfg.quant.compute_dtype))
