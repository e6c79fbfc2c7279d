"""Rows → model inputs: the task's prompt, an optional English pivot of the query,
and for the yes/no head an answer suffix that truncation never cuts."""

from __future__ import annotations

import hashlib
import os
import weakref
from contextlib import contextmanager
from types import SimpleNamespace

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
        self.tokenizer = tokenizer
        # the task's two templates as plain strings, read from the DictConfig once, not once a row
        self.templates = SimpleNamespace(prompt=str(task_cfg.prompt), pivot_prompt=task_cfg.get("pivot_prompt"))
        self.suffix_ids = (tokenizer.encode(head_cfg.answer_suffix, add_special_tokens=False)
                           if head_cfg.answer_suffix else [])
        self.body_budget = max_length - len(self.suffix_ids)
        if self.body_budget < 8:
            raise ValueError(f"model.max_length={max_length} leaves no room for the prompt after the answer suffix")

    def __call__(self, rows: list[dict]) -> list[list[int]]:
        texts = [format_prompt(row, self.templates) for row in rows]
        with tokenizer_threads():
            bodies = self.tokenizer(texts, truncation=True, max_length=self.body_budget, return_attention_mask=False,
                                    return_token_type_ids=False)["input_ids"]
        return [ids + self.suffix_ids for ids in bodies]


@contextmanager
def tokenizer_threads():
    """Let a fast tokenizer encode a batch on every core (the entry points set TOKENIZERS_PARALLELISM=false for
    the rest of the run, so that a fork never finds the tokenizer's thread pool in use): 330k QC prompts in 26 s
    instead of 35 s on 2 cores (benchmarks/bench_scale.py, tokenize)."""
    before = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = before


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

    return table.map(encode, batched=True, remove_columns=table.column_names, desc="tokenizing",
                     new_fingerprint=encoding_fingerprint(table, tokenizer, prompt_ids))


_TOKENIZER_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def tokenizer_digest(tokenizer) -> str:
    """A digest of what the tokenizer does (its serialised vocabulary, merges and settings): ~0.6 s for Gemma-3's
    262k vocabulary, where `datasets` pickles the tokenizer to hash it (~6 s). Kept per tokenizer object while its
    vocabulary size stays the same (a token added is a new digest)."""
    size = len(tokenizer)
    try:
        known_size, digest = _TOKENIZER_DIGESTS[tokenizer]
        if known_size == size:
            return digest
    except (KeyError, TypeError):
        pass
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest = hashlib.sha256(backend.to_str().encode("utf-8")).hexdigest()
    else:  # a slow tokenizer: what datasets would have hashed
        from datasets.fingerprint import Hasher

        digest = Hasher.hash(tokenizer)
    try:
        _TOKENIZER_DIGESTS[tokenizer] = (size, digest)
    except TypeError:
        pass
    return digest


def encoding_fingerprint(table: Dataset, tokenizer, prompt_ids: PromptIds) -> str:
    """The encoded table's `datasets` fingerprint, from what decides its ids: the rows (the table's own
    fingerprint), the tokenizer, the templates, the answer suffix and the length budget."""
    templates = prompt_ids.templates
    parts = (table._fingerprint, type(tokenizer).__name__, tokenizer_digest(tokenizer), templates.prompt,
             templates.pivot_prompt, prompt_ids.suffix_ids, prompt_ids.body_budget, "encode_table/1")
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()[:32]


def collator(tokenizer) -> DataCollatorWithPadding:
    """Dynamic padding to the longest row of each batch (the `length` column is dropped)."""
    pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None)

    def collate(features):
        return pad([{k: v for k, v in f.items() if k != "length"} for f in features])

    return collate
