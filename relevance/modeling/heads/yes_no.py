"""`head=yes_no`: a causal LM; the logits of the negative and positive answer tokens at the last position.
Needs left padding, so the last position is every row's last token.

Only those two logits are computed: the decoder's last hidden state at the last position times the output
embedding's two rows (and the model's final logit soft-capping, if it has one). The same numbers as the LM's
own `logits_to_keep=1` forward, without its vocabulary-wide matmul on a strided slice of the hidden states,
which PyTorch's CPU bf16 path runs about 1,000x slower than on a contiguous one (48 rows of Gemma-3 270M:
48 s against 0.04 s; `benchmarks/bench_yes_no_head.py`)."""

from __future__ import annotations

import torch
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
        self.answer_ids = [self.negative_id, self.positive_id]  # the pair's order: [not relevant, relevant]

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
        causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model  # under a PEFT adapter
        output_layer = causal_lm.get_output_embeddings()
        decoder = getattr(causal_lm, causal_lm.base_model_prefix, None)
        if decoder is None or type(output_layer) is not torch.nn.Linear:  # e.g. a quantized output layer
            return self.lm_pair_logits(model, batch)
        hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        bias = None if output_layer.bias is None else output_layer.bias[self.answer_ids]
        logits = torch.nn.functional.linear(hidden[:, -1, :], output_layer.weight[self.answer_ids], bias)
        cap = getattr(causal_lm.config, "final_logit_softcapping", None)  # as the LM's forward reads it
        return logits if cap is None else torch.tanh(logits / cap) * cap

    def lm_pair_logits(self, model, batch):
        """The same two logits from the LM's own forward (`logits_to_keep=1`): every vocabulary logit at the last
        position, then the two. What `pair_logits` falls back to, and its baseline in `bench_yes_no_head.py`."""
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1)
        return out.logits[:, -1, self.answer_ids]
