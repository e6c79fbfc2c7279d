"""The `model` group's schema (conf/model/<name>.yaml): which backbone, from where, and what of it LoRA
trains. It lives beside the code that loads models; `relevance.config` composes it into the run's config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

@dataclass
class TinyModelConfig:
    architecture: str = "llama"
    vocab_size: int = 1024
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 256
    seed: int = 0
    # More fields of the model's config than the sizes above (head_dim, sliding_window, layer_types, ...)
    config_fields: dict[str, Any] = field(default_factory=dict)
    # A composite model (text + vision, e.g. gemma3): the sizes and config_fields build its sub-config of this
    # name (text_config), composite_fields the rest of its config (vision_config, ...); null: a text-only model
    text_config: Optional[str] = None
    composite_fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    name: str = MISSING
    source: str = MISSING  # hub | local | gguf_package | tiny_random: one module each in modeling/sources/
    id: str = MISSING  # hub id, local directory, or the Python package shipping a GGUF
    revision: Optional[str] = None
    gguf_file: Optional[str] = None
    classifier_class: str = "transformers.AutoModelForSequenceClassification"
    causal_lm_class: str = "transformers.AutoModelForCausalLM"
    classifier_head: str = "score"  # module trained in full and saved with the adapter
    lora_target_modules: Any = "all-linear"  # list of names or a regex (keeps LoRA out of vision towers)
    pad_token: Optional[str] = None  # used when the tokenizer has none
    max_length: int = 128
    attn_implementation: Optional[str] = "sdpa"  # sdpa | eager (same logits; sdpa is faster)
    trust_remote_code: bool = False
    tiny: Optional[TinyModelConfig] = None
    init_adapter: Optional[str] = None  # a logged run's id: start LoRA and the head from its saved adapter
