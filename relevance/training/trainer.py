"""A Hugging Face Trainer that trains any head through the same two-logit contract,
in batches of a fixed number of rows or of a token budget."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from transformers import Trainer, TrainingArguments

from relevance.modeling.batching import TokenBudgetBatchSampler
from relevance.runtime import stop_at_step_boundary
from relevance.training.checkpoints import SaveAndStopOnSignal
from relevance.training.compiled_layers import CompiledLayers


@dataclass
class RelevanceTrainingArguments(TrainingArguments):
    """Hugging Face's arguments plus the training token budget (None: batches of a fixed number of rows)."""

    max_tokens_per_batch: int | None = None


class RelevanceTrainer(Trainer):
    """Cross-entropy over [not relevant, relevant] logits from `head.pair_logits`,
    with optional class weights. Dev is not the Trainer's: `evaluation.dev_scoring` scores it
    through the loop `predict` uses.

    The training loss of an optimizer step is the sum of its rows' losses divided by the
    rows of the whole step (all its accumulated batches): with batches of varying size
    (token budget, an epoch's last batch) every row weighs the same, as in one big batch.
    A row's loss is multiplied by its class weight, if any.

    A stop signal during `train` (relevance.runtime) takes effect at the next step boundary,
    after a checkpoint (relevance.training.checkpoints.SaveAndStopOnSignal).

    `compile_layers` (the run's `relevance.training.compile_choice`): the model's decoder layers run
    compiled while training computes gradients (relevance.training.compiled_layers); scoring stays eager."""

    loss_is_scaled_for_ga = True  # compute_loss already divides by the step's rows

    def __init__(self, *args, head, class_weights: torch.Tensor | None = None, compile_layers: bool = False,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.head = head
        self.class_weights = class_weights
        self.compiled_layers = CompiledLayers(self.model) if compile_layers else None
        self.add_callback(SaveAndStopOnSignal())

    def train(self, *args, **kwargs):
        if self.compiled_layers:
            self.compiled_layers.on()
        try:
            with stop_at_step_boundary():
                return super().train(*args, **kwargs)
        finally:
            if self.compiled_layers:
                self.compiled_layers.off()

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """One optimizer step's batches and its number of rows."""
        batches, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
        return batches, sum(len(batch["labels"]) for batch in batches)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor, step_rows: int | None = None) -> torch.Tensor:
        """Summed over the batch and divided by `step_rows`, the rows of the whole optimizer step
        (the batch's own rows when not given)."""
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        return F.cross_entropy(logits.float(), labels, weight=weight, reduction="sum") / (step_rows or len(labels))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        logits = self.head.pair_logits(model, inputs)
        loss = self._loss(logits, labels, num_items_in_batch)
        return (loss, {"logits": logits}) if return_outputs else loss

    def get_train_dataloader(self) -> DataLoader:
        if not self.args.max_tokens_per_batch:
            return super().get_train_dataloader()
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        sampler = TokenBudgetBatchSampler(self.train_dataset["length"], self.args.max_tokens_per_batch, seed=seed)
        return self._token_budget_loader(self.train_dataset, sampler)

    def _token_budget_loader(self, dataset, sampler: TokenBudgetBatchSampler) -> DataLoader:
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=self.data_collator,
                            num_workers=self.args.dataloader_num_workers, pin_memory=self.args.dataloader_pin_memory)
        return self.accelerator.prepare(loader)


def training_arguments(trainer_cfg, output_dir: str, seed: int, compute_dtype: torch.dtype) -> RelevanceTrainingArguments:
    """Mixed precision is not the Trainer's job here: the loader runs every forward of the
    model in the compute dtype (`quantization.compute_in`), so training, evaluation and
    predict compute alike. The Trainer's `bf16=True` would add a second, identical autocast
    (on CPU too) around the training model only; it stays off. fp16 on a GPU still needs the
    Trainer, for its loss scaler.

    Compiling is not the Trainer's job either (its `torch_compile` compiles the whole model: minutes
    on CPU); `RelevanceTrainer(compile_layers=...)` compiles the decoder layers."""
    on_gpu = torch.cuda.is_available()
    by_tokens = trainer_cfg.batching == "tokens"
    return RelevanceTrainingArguments(
        output_dir=output_dir,
        num_train_epochs=trainer_cfg.epochs,
        max_steps=trainer_cfg.max_steps,
        per_device_train_batch_size=trainer_cfg.batch_size,
        max_tokens_per_batch=trainer_cfg.max_tokens_per_batch if by_tokens else None,
        gradient_accumulation_steps=trainer_cfg.grad_accum,
        learning_rate=trainer_cfg.lr,
        weight_decay=trainer_cfg.weight_decay,
        warmup_steps=trainer_cfg.warmup_ratio,  # a float in [0, 1) is a ratio of total steps
        lr_scheduler_type=trainer_cfg.lr_scheduler,
        train_sampling_strategy="group_by_length" if trainer_cfg.group_by_length else "random",
        eval_strategy="no",  # dev is scored by evaluation.dev_scoring, once per epoch
        # resumable checkpoints (optimizer, scheduler, RNG and step too: not save_only_model)
        save_strategy=_save_strategy(trainer_cfg),
        save_steps=trainer_cfg.checkpoint_every_steps or 500,  # used by save_strategy="steps" only
        save_total_limit=trainer_cfg.checkpoints_kept,
        save_only_model=False,
        logging_strategy="steps",
        logging_steps=trainer_cfg.logging_steps,
        seed=seed,
        data_seed=seed,
        fp16=on_gpu and compute_dtype == torch.float16,
        use_cpu=not on_gpu,
        optim="adamw_torch",
        report_to="none",  # one logger per run: ours (the HF MLflow callback stays off)
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def _save_strategy(trainer_cfg) -> str:
    if not trainer_cfg.save_checkpoints:
        return "no"
    return "steps" if trainer_cfg.checkpoint_every_steps else "epoch"
