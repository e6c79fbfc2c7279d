"""Batches by token budget: the number of rows per batch varies so that the padded
tokens of a batch (rows x its longest row) stay within `max_tokens`.

Rows are sorted longest first and cut into consecutive runs, as fairseq's `max_tokens`
batching does: little padding, and the batch sizes depend only on the multiset of
lengths, so the number of batches per epoch is known before training (the learning-rate
schedule needs it) and is the same every epoch. For training, rows of equal length are
shuffled before sorting and the batches are shuffled after packing, per (seed, epoch).
Scoring and evaluation use the same packing without shuffling.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


def longest_first(lengths: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Row indices by decreasing length; ties in table order, or in random order given `rng`."""
    order = np.arange(len(lengths)) if rng is None else rng.permutation(len(lengths))
    return order[np.argsort(-lengths[order], kind="stable")]


def pack_by_token_budget(order: np.ndarray, lengths: np.ndarray, max_tokens: int) -> list[np.ndarray]:
    """Consecutive runs of `order` (longest first) of at most `max_tokens` padded tokens each;
    a row longer than the budget forms a batch of its own. Tokens are counted before the
    collator rounds padding up to a multiple of 8 (GPU only)."""
    batches, start = [], 0
    while start < len(order):
        rows = max(1, max_tokens // max(1, int(lengths[order[start]])))
        batches.append(order[start:start + rows])
        start += rows
    return batches


def eval_token_budget(trainer_cfg) -> int | None:
    """The padded-token budget of a run's evaluation and scoring batches (None: batches of
    `eval_batch_size` rows). Training's final scoring and `relevance.predict` both use it (a run
    logged before token budgets existed has no `batching`: rows)."""
    if trainer_cfg.get("batching") != "tokens":
        return None
    return trainer_cfg.eval_max_tokens_per_batch or trainer_cfg.max_tokens_per_batch


def scoring_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> list[np.ndarray]:
    """Longest first, in batches of `batch_size` rows or, given `max_tokens`, by token budget."""
    lengths = np.asarray(lengths)
    order = longest_first(lengths)
    if max_tokens:
        return pack_by_token_budget(order, lengths, max_tokens)
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


class TokenBudgetBatchSampler(Sampler[list[int]]):
    """A DataLoader `batch_sampler`: every row exactly once per epoch, in batches of at most
    `max_tokens` padded tokens, deterministic given (seed, epoch); `set_epoch` is called by
    the Hugging Face Trainer (through accelerate) before each epoch."""

    def __init__(self, lengths: Sequence[int], max_tokens: int, seed: int = 0, shuffle: bool = True):
        if max_tokens < 1:
            raise ValueError(f"max_tokens={max_tokens}: the token budget must be positive")
        self.lengths = np.asarray(lengths)
        self.max_tokens = max_tokens
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.num_batches = len(pack_by_token_budget(longest_first(self.lengths), self.lengths, max_tokens))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[np.ndarray]:
        if not self.shuffle:
            return pack_by_token_budget(longest_first(self.lengths), self.lengths, self.max_tokens)
        rng = np.random.default_rng([self.seed, self.epoch])
        packed = pack_by_token_budget(longest_first(self.lengths, rng), self.lengths, self.max_tokens)
        return [packed[i] for i in rng.permutation(len(packed))]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches():
            yield batch.tolist()

    def __len__(self) -> int:
        return self.num_batches
