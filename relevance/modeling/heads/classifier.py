"""`head=classifier`: a sequence-classification model (2 labels) scoring the last non-pad token; its
classification layer (`model.classifier_head`, e.g. `score`) is new and trained in full with LoRA."""

from __future__ import annotations

from omegaconf import DictConfig

from relevance.modeling.heads import Head, register_head


@register_head("classifier")
class ClassifierHead(Head):
    task_type = "SEQ_CLS"
    backbone_class_key = "classifier_class"
    backbone_kwargs = {"num_labels": 2}

    @classmethod
    def new_modules(cls, model_cfg: DictConfig) -> list[str]:
        return [str(model_cfg.get("classifier_head") or "score")]

    def describe_output(self):
        return {"logits": "the sequence-classification head's 2 logits (num_labels=2), pooled at each row's last "
                          "non-pad token (the config's pad_token_id)"}

    def pair_logits(self, model, batch):
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
