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


def encode_table(table: Dataset, tokenizer, task_cfg: DictConfig, head_cfg: DictConfig, max_length: int) -> Dataset:
    """Token ids, attention mask, `labels` (when the table is labelled) and `length`
    (for length-grouped batches). Dynamic padding happens later, in the collator."""
    suffix_ids = tokenizer.encode(head_cfg.answer_suffix, add_special_tokens=False) if head_cfg.answer_suffix else []
    body_budget = max_length - len(suffix_ids)
    if body_budget < 8:
        raise ValueError(f"model.max_length={max_length} leaves no room for the prompt after the answer suffix")

    def encode(batch: dict) -> dict:
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        texts = [format_prompt(row, task_cfg) for row in rows]
        bodies = tokenizer(texts, truncation=True, max_length=body_budget)["input_ids"]
        input_ids = [ids + suffix_ids for ids in bodies]
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
