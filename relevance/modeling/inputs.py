"""Rows → model inputs: the task's prompt, an optional English pivot of the query,
and for the yes/no head an answer suffix that truncation never cuts."""

from __future__ import annotations

import torch
from datasets import Dataset
from omegaconf import DictConfig
from transformers import DataCollatorWithPadding


def format_prompt(row: dict, task_cfg: DictConfig) -> str:
    query = row["query"]
    pivot = row.get("pivot")
    if pivot and pivot.strip() and pivot.strip().lower() != query.strip().lower():
        query = query + task_cfg.pivot_prompt.format(pivot=pivot.strip())
    return task_cfg.prompt.format(query=query, target=row["target"])


class PromptIds:
    """Rows (dicts) to the token ids the model reads: the prompt truncated to leave room for the head's answer
    suffix, then the suffix whole. `encode_table` and the cost estimate (`relevance.cost.tokens`) both count
    tokens through it."""

    def __init__(self, tokenizer, task_cfg: DictConfig, head_cfg: DictConfig, max_length: int):
        self.tokenizer, self.task_cfg = tokenizer, task_cfg
        self.suffix_ids = (tokenizer.encode(head_cfg.answer_suffix, add_special_tokens=False)
                           if head_cfg.answer_suffix else [])
        self.body_budget = max_length - len(self.suffix_ids)
        if self.body_budget < 8:
            raise ValueError(f"model.max_length={max_length} leaves no room for the prompt after the answer suffix")

    def __call__(self, rows: list[dict]) -> list[list[int]]:
        texts = [format_prompt(row, self.task_cfg) for row in rows]
        bodies = self.tokenizer(texts, truncation=True, max_length=self.body_budget)["input_ids"]
        return [ids + self.suffix_ids for ids in bodies]


def encode_table(table: Dataset, tokenizer, task_cfg: DictConfig, head_cfg: DictConfig, max_length: int) -> Dataset:
    """Token ids, attention mask, `labels` (when the table is labelled) and `length`
    (for length-grouped batches). Dynamic padding happens later, in the collator."""
    prompt_ids = PromptIds(tokenizer, task_cfg, head_cfg, max_length)

    def encode(batch: dict) -> dict:
        input_ids = prompt_ids([dict(zip(batch, values)) for values in zip(*batch.values())])
        encoded = {"input_ids": input_ids, "attention_mask": [[1] * len(ids) for ids in input_ids],
                   "length": [len(ids) for ids in input_ids]}
        if "label" in batch:
            encoded["labels"] = batch["label"]
        return encoded

    return table.map(encode, batched=True, remove_columns=table.column_names, desc="tokenizing")


def collator(tokenizer) -> DataCollatorWithPadding:
    """Dynamic padding to the longest row of each batch (the `length` column is dropped)."""
    pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None)

    def collate(features):
        return pad([{k: v for k, v in f.items() if k != "length"} for f in features])

    return collate
