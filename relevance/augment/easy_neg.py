"""`easy_neg`: clearly irrelevant (query, target) pairs.

For each distinct (language, query) with a positive target in the rows the strategy
builds on (the mix so far, or the original table when it comes first), it draws targets
from the pool of distinct targets of the original table and the mix that are *related*
to none of the query's known positives — related as the task says
(`task.negatives.related_by`, see `relevance.augment.negatives`): for QC a negative comes
from another top-level category than every known positive of the query; for QI it shares
no title token with any known positive title of the query, nor with the query itself. A
pair that already exists there — as a positive or a negative — is never emitted, so no
positive is ever turned into a negative and nothing is duplicated.

Options: `per_query` negatives per query, or `ratio` (when set: that many negatives per
positive row, spread round-robin over the queries). Draws use a random generator seeded
per query from (seed, strategy, language, query): the same seed gives the same rows, and
a query's draws do not change when other queries come or go. Candidates a known positive
protects (`task.negatives.never_negative`; QC: `category_family`) are never drawn either
(with QC's top-level relatedness they are related anyway). Added rows: label 0,
``source`` = ``easy_neg``, ``language`` = the query's language.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from datasets import Dataset

from relevance.augment.base import AugmentContext, Strategy, base_rows, register
from relevance.augment.cache import stable_seed
from relevance.augment.negatives import (PairIndex, ProtectedRows, negative_row, per_query_for, positive_queries,
                                         protected_rows_for, relatedness_named, rows_to_table, take_round_robin)
from relevance.data.text import normalise_text


def easy_negatives(base: Dataset, pairs: PairIndex, task: str, related_by: str | None, *, per_query: int = 1,
                   count: int | None = None, seed: int = 0, source: str = "easy_neg",
                   never_negative: str | None = None) -> list[dict]:
    """Easy negatives for the positive queries of `base` (see the module docstring): a list of
    row dicts, `per_query` per query, or `count` in all (round-robin over queries). `related_by`
    names the relatedness of the task (`task.negatives.related_by`), `never_negative` its rule for
    protected candidates (`task.negatives.never_negative`)."""
    related = relatedness_named(related_by)
    if count is not None and count <= 0:
        return []
    queries = positive_queries(base)
    pool = pairs.pool
    if not queries or not pool:
        return []
    draw = UnrelatedDraw(pool, related, protected_rows_for(never_negative, pool))
    k = per_query_for(count, len(queries), per_query)
    picks: list[list[tuple[str, str, str]]] = []
    for qp in queries:
        norm_query = normalise_text(qp.query)
        positives = set(qp.targets) | pairs.positives.get(norm_query, set())
        chosen = draw.sample(positives, qp.query, pairs.existing.get(norm_query, ()), k,
                             stable_seed(seed, source, qp.language, qp.query))
        picks.append([(qp.language, qp.query, pool[j]) for j in chosen])
    chosen_rows = take_round_robin(picks, count, seed, source)
    return [negative_row(task, lang, query, target, source, n) for n, (lang, query, target) in enumerate(chosen_rows)]


class UnrelatedDraw:
    """Draws, for one query at a time, k distinct pool targets related to none of its known
    positives (nor, where the task says so, to the query), never an existing pair, never a
    protected candidate: uniformly among those allowed, the same draw for the same seed.

    Most of a large pool is allowed for any one query, so a draw tries random pool rows and keeps
    the allowed ones (a few set lookups per try, not a pass over the pool). Where few are allowed
    (a small pool, a broad query) it falls back to listing every allowed row and sampling from
    them. Both give every k-subset of the allowed rows the same chance."""

    TRIES_PER_PICK, MIN_TRIES = 64, 1024  # rejection tries before the exact listing (~1.5 µs a try, a listing ~2 ms)

    def __init__(self, pool: list[str], related, protected: ProtectedRows | None):
        self.pool, self.related, self.protected = pool, related, protected
        self.keys = [tuple(related.keys(target)) for target in pool]
        self.row_of = {normalise_text(t): j for j, t in enumerate(pool)}
        self._inverted: dict[str, np.ndarray] | None = None

    def sample(self, positives: set[str], query: str, existing, k: int, seed: int) -> list[int]:
        blocked_keys: set[str] = set()
        for target in positives:
            blocked_keys.update(self.related.keys(target))
        if self.related.query_keys_block:
            blocked_keys.update(self.related.keys(query))
        excluded = {self.row_of[t] for t in existing if t in self.row_of}
        if self.protected is not None:
            for target in positives:
                excluded.update(self.protected.rows(target).tolist())
        rng = random.Random(seed)
        n, keys, chosen = len(self.pool), self.keys, {}
        for _ in range(max(self.MIN_TRIES, self.TRIES_PER_PICK * k)):
            j = rng.randrange(n)
            if j not in excluded and j not in chosen and blocked_keys.isdisjoint(keys[j]):
                chosen[j] = None
                if len(chosen) == k:
                    return list(chosen)
        return self._exact(blocked_keys, excluded, k, rng.getrandbits(64))

    def _exact(self, blocked_keys: set[str], excluded: set[int], k: int, seed: int) -> list[int]:
        if self._inverted is None:
            inverted: dict[str, list[int]] = defaultdict(list)
            for j, keys in enumerate(self.keys):
                for key in keys:
                    inverted[key].append(j)
            self._inverted = {key: np.asarray(rows, dtype=np.int64) for key, rows in inverted.items()}
        allowed = np.ones(len(self.pool), dtype=bool)
        for key in blocked_keys:
            if key in self._inverted:
                allowed[self._inverted[key]] = False
        allowed[list(excluded)] = False
        candidates = np.flatnonzero(allowed)
        if not len(candidates):
            return []
        return np.random.default_rng(seed).choice(candidates, size=min(k, len(candidates)), replace=False).tolist()


@dataclass
class EasyNegOptions:
    per_query: int = 1  # negatives per query
    ratio: float | None = None  # when set: that many negatives per positive row instead, spread over the queries

    def __post_init__(self):
        if self.per_query < 1:
            raise ValueError(f"per_query={self.per_query}: must be at least 1")
        if self.ratio is not None and self.ratio <= 0:
            raise ValueError(f"ratio={self.ratio}: must be positive or null")


@register("easy_neg", options=EasyNegOptions)
class EasyNeg(Strategy):
    options: EasyNegOptions
    version = "4"  # 2: task.negatives.never_negative; 3, 4: drawn by rejection (UnrelatedDraw), same rule, other rows

    def generate(self, mix: Dataset, context: AugmentContext) -> Dataset:
        base = base_rows(mix, context)
        pairs = PairIndex.of(context.original, mix)
        ratio = self.options.ratio
        count = None if ratio is None else round(ratio * sum(base["label"]))
        rows = easy_negatives(base, pairs, context.task, context.related_by, per_query=self.options.per_query,
                              count=count, seed=context.seed, source=self.name,
                              never_negative=context.never_negative)
        self.count("queries", len(positive_queries(base)))
        return rows_to_table(rows, context.original.features)
