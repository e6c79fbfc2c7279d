"""Tokens per row, measured as training measures them: a seeded sample of a table's rows formatted
with the task's prompt (and the input-side strategies' changes), tokenised by the model's tokenizer
and truncated at `model.max_length` (`modeling.inputs.encode_table`'s `length`): real tokens, no
padding, the unit `benchmarks/gpu_check.py` reports throughput in.

The rows are counted as plain dicts, not through `Dataset.map`: a map fingerprints its function,
and hashing a closure over Gemma-3's tokenizer alone takes ~30 s per table. `prompt_lengths` encodes
them with `encode_table`'s own `PromptIds` (tests/test_grid_cost.py checks the counts against it)."""

from __future__ import annotations

import numpy as np
from datasets import Dataset
from omegaconf import DictConfig

from relevance.cost.mix_rows import PromptChange

TOKENIZE_BATCH = 1000  # rows per tokenizer call (Dataset.map's batch: the same ids, any batch size)


def sample_rows(table: Dataset, max_rows: int, seed: int) -> Dataset:
    """At most `max_rows` rows of `table`, the same ones for the same seed."""
    if len(table) <= max_rows:
        return table
    picked = np.random.default_rng(seed).choice(len(table), size=max_rows, replace=False)
    return table.select(sorted(picked.tolist()))


def with_prompt_changes(rows: list[dict], changes: list[PromptChange], pivot_prompt: str) -> list[dict]:
    """The rows' queries as the input-side strategies would show them (`modeling.inputs.format_prompt`
    with a pivot: the query, then `task.pivot_prompt` over its English translation), the translation
    taken to be as long as the query itself. English rows are not translated: they keep their query."""
    if not changes:
        return rows

    def rewrite(row: dict) -> dict:
        if row["language"] == "en":
            return row
        query = row["query"]
        for change in changes:
            if change.join_template:
                query = change.join_template.replace("{query}", query).replace("{english}", row["query"])
            if change.pivot:
                query = query + pivot_prompt.format(pivot=row["query"])
        return {**row, "query": query}

    return [rewrite(row) for row in rows]


def prompt_lengths(rows: list[dict], tokenizer, task_cfg: DictConfig, head_cfg: DictConfig,
                   max_length: int) -> list[int]:
    """Each row's token count as `modeling.inputs.encode_table` encodes it (its `length` column)."""
    from relevance.modeling.inputs import PromptIds

    prompt_ids = PromptIds(tokenizer, task_cfg, head_cfg, max_length)
    return [len(ids) for start in range(0, len(rows), TOKENIZE_BATCH)
            for ids in prompt_ids(rows[start:start + TOKENIZE_BATCH])]


def mean_tokens_per_row(table: Dataset, tokenizer, cfg: DictConfig, changes: list[PromptChange],
                        max_rows: int, seed: int) -> float:
    """Mean real tokens per row of `table` (a sample of `max_rows`) as the run's model reads them."""
    if not len(table):
        return 0.0
    rows = with_prompt_changes(sample_rows(table, max_rows, seed).to_list(), changes, cfg.task.pivot_prompt)
    return float(np.mean(prompt_lengths(rows, tokenizer, cfg.task, cfg.head, cfg.model.max_length)))
