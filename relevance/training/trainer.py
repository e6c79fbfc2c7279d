"""A Hugging Face Trainer that trains any head through the same two-logit contract."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments




class RelevanceTrainer(Trainer):
    """Cross-entropy over [not relevant, relevant] logits from `head.pair_logits`,
    with optional class weights; predictions are those two logits."""

    def __init__(self, *args, head, class_weights: torch.Tensor | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.head = head
        self.class_weights = class_weights
        self.loss_is_scaled_for_ga = False  # our loss is a per-batch mean

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        return F.cross_entropy(logits.float(), labels, weight=weight)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        logits = self.head.pair_logits(model, inputs)
        loss = self._loss(logits, labels)
        return (loss, {"logits": logits}) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        labels = inputs.get("labels")
        with torch.no_grad():
            logits = self.head.pair_logits(model, inputs).float()
            loss = self._loss(logits, labels).detach() if labels is not None else None
        if prediction_loss_only:
            return loss, None, None
        return loss, logits.detach(), labels


def training_arguments(trainer_cfg, output_dir: str, seed: int, compute_dtype: torch.dtype,
                       has_dev: bool) -> TrainingArguments:
    on_gpu = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=trainer_cfg.epochs,
        max_steps=trainer_cfg.max_steps,
        per_device_train_batch_size=trainer_cfg.batch_size,
        per_device_eval_batch_size=trainer_cfg.eval_batch_size,
        gradient_accumulation_steps=trainer_cfg.grad_accum,
        learning_rate=trainer_cfg.lr,
        weight_decay=trainer_cfg.weight_decay,
        warmup_steps=trainer_cfg.warmup_ratio,  # a float in [0, 1) is a ratio of total steps
        lr_scheduler_type=trainer_cfg.lr_scheduler,
        train_sampling_strategy="group_by_length" if trainer_cfg.group_by_length else "random",
        eval_strategy="epoch" if has_dev else "no",
        save_strategy="epoch" if trainer_cfg.save_checkpoints else "no",
        save_total_limit=1,
        save_only_model=True,
        logging_strategy="steps",
        logging_steps=trainer_cfg.logging_steps,
        seed=seed,
        data_seed=seed,
        bf16=on_gpu and compute_dtype == torch.bfloat16,
        fp16=on_gpu and compute_dtype == torch.float16,
        use_cpu=not on_gpu,
        optim="adamw_torch",
        report_to="none",  # one logger per run: ours (the HF MLflow callback stays off)
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
