"""Heads turn a backbone's output into two logits per row: [not relevant, relevant].

Both heads share this contract, so training (cross-entropy, class weights),
evaluation and prediction never ask which head they have.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig


class ClassifierHead:
    """A sequence-classification model (2 labels) scoring the last non-pad token."""

    task_type = "SEQ_CLS"

    def pair_logits(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


class YesNoHead:
    """A causal LM: the logits of the negative and positive answer tokens at the last
    position. Needs left padding, so the last position is every row's last token and
    only that position's vocabulary logits are computed (`logits_to_keep=1`)."""

    task_type = "CAUSAL_LM"

    def __init__(self, head_cfg: DictConfig, tokenizer):
        self.negative_id = single_token_id(tokenizer, head_cfg.negative_token, "head.negative_token")
        self.positive_id = single_token_id(tokenizer, head_cfg.positive_token, "head.positive_token")

    def pair_logits(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1)
        last = out.logits[:, -1, :]
        return last[:, [self.negative_id, self.positive_id]]


def single_token_id(tokenizer, text: str, field: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        pieces = tokenizer.convert_ids_to_tokens(ids)
        raise ValueError(f"{field}={text!r} is {len(ids)} tokens for this tokenizer ({pieces}); "
                         "choose a word the tokenizer keeps whole, e.g. with or without a leading space")
    return ids[0]


def build_head(head_cfg: DictConfig, tokenizer):
    if head_cfg.name == "classifier":
        return ClassifierHead()
    return YesNoHead(head_cfg, tokenizer)
