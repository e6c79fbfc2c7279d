"""Tokens per row, measured as training measures them: a seeded sample of a table's rows formatted
with the task's prompt (and the input-side strategies' changes), tokenised by the model's tokenizer
and truncated at `model.max_length` (`modeling.inputs.encode_table`): real tokens, no padding, the
unit `benchmarks/gpu_check.py` reports throughput in."""

from __future__ import annotations

import numpy as np
from datasets import Dataset
from omegaconf import DictConfig

from relevance.cost.mix_rows import PromptChange


def sample_rows(table: Dataset, max_rows: int, seed: int) -> Dataset:
    """At most `max_rows` rows of `table`, the same ones for the same seed."""
    if len(table) <= max_rows:
        return table
    picked = np.random.default_rng(seed).choice(len(table), size=max_rows, replace=False)
    return table.select(sorted(picked.tolist()))


def with_prompt_changes(table: Dataset, changes: list[PromptChange], pivot_prompt: str) -> Dataset:
    """The rows' queries as the input-side strategies would show them (`modeling.inputs.format_prompt`
    with a pivot: the query, then `task.pivot_prompt` over its English translation), the translation
    taken to be as long as the query itself. English rows are not translated: they keep their query."""
    if not changes:
        return table

    def rewrite(row: dict) -> dict:
        if row["language"] == "en":
            return row
        query = row["query"]
        for change in changes:
            if change.join_template:
                query = change.join_template.replace("{query}", query).replace("{english}", row["query"])
            if change.pivot:
                query = query + pivot_prompt.format(pivot=row["query"])
        row["query"] = query
        return row

    return table.map(rewrite, desc="prompt changes")


def mean_tokens_per_row(table: Dataset, tokenizer, cfg: DictConfig, changes: list[PromptChange],
                        max_rows: int, seed: int) -> float:
    """Mean real tokens per row of `table` (a sample of `max_rows`) as the run's model reads them."""
    from relevance.modeling.inputs import encode_table

    if not len(table):
        return 0.0
    rows = with_prompt_changes(sample_rows(table, max_rows, seed), changes, cfg.task.pivot_prompt)
    encoded = encode_table(rows, tokenizer, cfg.task, cfg.head, cfg.model.max_length)
    return float(np.mean(encoded["length"]))
