"""`head=yes_no`: a causal LM; the logits of the negative and positive answer tokens at the last position.
Needs left padding, so the last position is every row's last token and only that position's vocabulary
logits are computed (`logits_to_keep=1`)."""

from __future__ import annotations

from omegaconf import DictConfig

from relevance.modeling.heads import Head, register_head, single_token_id


@register_head("yes_no")
class YesNoHead(Head):
    task_type = "CAUSAL_LM"
    backbone_class_key = "causal_lm_class"

    def __init__(self, head_cfg: DictConfig, tokenizer):
        super().__init__(head_cfg, tokenizer)
        self.negative_id = single_token_id(tokenizer, head_cfg.negative_token, "head.negative_token")
        self.positive_id = single_token_id(tokenizer, head_cfg.positive_token, "head.positive_token")

    @classmethod
    def problems(cls, head_cfg: DictConfig):
        if not head_cfg.positive_token or not head_cfg.negative_token:
            yield "head=yes_no needs head.positive_token and head.negative_token"
        if head_cfg.padding_side != "left":
            yield "head=yes_no needs head.padding_side=left: it reads the logits of the last position"

    def describe_output(self):
        return {"logits": "the vocabulary logits at the last position, at [negative_token_id, positive_token_id]",
                "negative_token": str(self.head_cfg.negative_token), "negative_token_id": int(self.negative_id),
                "positive_token": str(self.head_cfg.positive_token), "positive_token_id": int(self.positive_id)}

    def pair_logits(self, model, batch):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1)
        last = out.logits[:, -1, :]
        return last[:, [self.negative_id, self.positive_id]]
