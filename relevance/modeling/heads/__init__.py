"""Heads turn a backbone's output into two logits per row: [not relevant, relevant].

Every head shares this contract, so training (cross-entropy, class weights), evaluation and prediction
never ask which head they have. A head is one module here registering its class with
`@register_head("<name>")`, plus `conf/head/<name>.yaml` (`name: <name>` and its settings): the loader,
the config checks and `predict` read what they need from the class (`task_type`, `backbone_class_key`,
`backbone_kwargs`, `new_modules`, `problems`), so a new head edits nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from relevance.plugins import Registry

if TYPE_CHECKING:
    import torch


class Head:
    """The contract. `task_type`: PEFT's task type for the adapter; `backbone_class_key`: which class of
    `conf/model/<name>.yaml` loads the backbone (`classifier_class` | `causal_lm_class`)."""

    task_type: str = ""
    backbone_class_key: str = ""
    backbone_kwargs: dict[str, Any] = {}  # extra from_pretrained arguments (num_labels=2 for a classifier)

    def __init__(self, head_cfg: DictConfig, tokenizer):
        self.head_cfg = head_cfg

    @classmethod
    def new_modules(cls, model_cfg: DictConfig) -> list[str]:
        """Modules the backbone loads without and the run trains from scratch (saved with the adapter)."""
        return []

    @classmethod
    def problems(cls, head_cfg: DictConfig) -> Iterator[str]:
        """What cannot work in this head's config, each naming its key (`validate_config`)."""
        return iter(())

    def describe_output(self) -> dict[str, Any]:
        """What the model card says of the two logits (`logits`, and any token ids a plain loader needs)."""
        return {"logits": f"the two logits of head `{self.head_cfg.name}`"}

    def pair_logits(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


HEADS = Registry("head", __name__)
register_head = HEADS.register  # `head=<name>` (`head.name: <name>`) builds the class it decorates
head_names = HEADS.names


def head_class(name: str) -> type[Head]:
    return HEADS.get(name, "head.name")


def build_head(head_cfg: DictConfig, tokenizer) -> Head:
    return head_class(head_cfg.name)(head_cfg, tokenizer)


def single_token_id(tokenizer, text: str, field: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        pieces = tokenizer.convert_ids_to_tokens(ids)
        raise ValueError(f"{field}={text!r} is {len(ids)} tokens for this tokenizer ({pieces}); "
                         "choose a word the tokenizer keeps whole, e.g. with or without a leading space")
    return ids[0]
