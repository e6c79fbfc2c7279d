"""`hard_neg`: negatives that look like the positive — near, but not too near.

For each distinct (language, query) with positive targets ("anchors") in the rows the
strategy builds on (the mix so far, or the original table when it comes first):

1. candidates are the OTHER distinct targets of the original table and the mix; all are
   embedded once (`Embedder`, normalised, so cosine = dot product);
2. band: a candidate qualifies when its similarity to one of the query's anchors lies in
   ``[min_similarity, max_similarity]``; its score is the highest such similarity;
3. guard: a candidate is dropped when its similarity to ANY known positive of the query
   (all positive targets of the same normalised query text in the original table and
   the mix, any language) exceeds ``guard_similarity`` — hard negatives that are
   near-duplicates of a positive tend to be false negatives (the competition write-ups
   saw this), so the band and the guard are the knobs to tune;
4. existing pairs (either label) are excluded, so no positive becomes a negative;
5. the `per_query` best-scoring candidates are kept (ties: the earlier target in sorted
   order), so the result is deterministic; `max_queries` caps the queries (a sample that
   is the same for the same seed) to bound CPU time.

Similarities are matrix products over chunks of queries (numpy), never a Python loop
over pairs. Embeddings are cached per (embedder, texts); the strategy's output table is
cached per (input rows, settings, embedder), so a rerun loads no embedder at all.
Counters: ``cache_hits`` / ``cache_misses`` (output table: 1 or 0), the embedder's
``embedding_cache_*``/``texts_embedded`` (all 0 when the table came from the cache),
``queries``, ``queries_without_candidates``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset

from relevance.augment.base import AugmentContext, Strategy, base_rows, register
from relevance.augment.cache import ContentCache, digest_table, make_key
from relevance.augment.embedder import PACKAGE_MODEL, Embedder
from relevance.augment.negatives import (PairIndex, negative_row, per_query_for, positive_queries, rows_to_table,
                                         sample_queries, take_round_robin)
from relevance.data.text import normalise_text

log = logging.getLogger(__name__)

VERSION = 1  # part of the output cache key: bump it when the selection logic changes
CHUNK_CELLS = 4_000_000  # similarity cells per chunk of queries (×4 bytes, a few arrays at a time)


@dataclass
class HardNegativeBand:
    """The embedder and the selection band: the options `hard_neg` and `balance` (negatives_from=hard) share."""

    embedder: str = PACKAGE_MODEL  # the offline PyPI package's all-MiniLM-L6-v2; or a local dir / hub id
    batch_size: int = 64  # texts per embedding batch
    min_similarity: float = 0.5  # lower edge of the band: less similar candidates are not "hard"
    max_similarity: float = 0.85  # upper edge of the band
    guard_similarity: float = 0.85  # drop a candidate more similar than this to any known positive of the query
    max_queries: int | None = None  # cap on queries used (seeded sample), to bound CPU time; null: all
    device: str = "auto"  # auto: cuda when available, else cpu

    def __post_init__(self):
        if not -1.0 <= self.min_similarity <= self.max_similarity <= 1.0:
            raise ValueError("need -1 <= min_similarity <= max_similarity <= 1, "
                             f"got [{self.min_similarity}, {self.max_similarity}]")
        if not -1.0 <= self.guard_similarity <= 1.0:
            raise ValueError(f"guard_similarity={self.guard_similarity}: must be within [-1, 1]")
        if self.max_queries is not None and self.max_queries < 1:
            raise ValueError(f"max_queries={self.max_queries}: must be positive or null")

    def selection(self) -> dict:
        """The keyword arguments of `hard_negatives` that these options set."""
        return dict(min_similarity=float(self.min_similarity), max_similarity=float(self.max_similarity),
                    guard_similarity=float(self.guard_similarity), max_queries=self.max_queries)

    def make_embedder(self, cache_dir: str, setting: str) -> Embedder:
        return Embedder(model=self.embedder, batch_size=self.batch_size, device=self.device, cache_dir=cache_dir,
                        setting=setting)


def hard_negatives(base: Dataset, pairs: PairIndex, task: str, embedder: Embedder, *, per_query: int = 1,
                   min_similarity: float = 0.5, max_similarity: float = 0.85, guard_similarity: float = 0.85,
                   max_queries: int | None = None, count: int | None = None, seed: int = 0,
                   source: str = "hard_neg", stats: dict | None = None) -> list[dict]:
    """Hard negatives for the positive queries of `base` (see the module docstring): row dicts,
    `per_query` per query, or `count` in all (round-robin over queries)."""
    stats = {} if stats is None else stats
    if count is not None and count <= 0:
        return []
    queries = sample_queries(positive_queries(base), max_queries, seed, source)
    pool = pairs.pool
    stats["queries"] = len(queries)
    if not queries or len(pool) < 2:
        return []
    index = {target: j for j, target in enumerate(pool)}
    by_norm = {normalise_text(target): j for j, target in enumerate(pool)}
    vectors = embedder.encode(pool)
    k = min(per_query_for(count, len(queries), per_query), len(pool))

    chunk = max(1, CHUNK_CELLS // len(pool))
    picks: list[list[tuple[str, str, str]]] = []
    without = 0
    for start in range(0, len(queries), chunk):
        part = queries[start:start + chunk]
        anchor_q, anchor_t, guard_q, guard_t, excl_q, excl_t = [], [], [], [], [], []
        for local, qp in enumerate(part):
            norm_query = normalise_text(qp.query)
            anchors = sorted({index[t] for t in qp.targets})
            guards = sorted(set(anchors) | {index[t] for t in pairs.positives.get(norm_query, ()) if t in index})
            excluded = [by_norm[t] for t in pairs.existing.get(norm_query, ()) if t in by_norm]
            anchor_q += [local] * len(anchors)
            anchor_t += anchors
            guard_q += [local] * len(guards)
            guard_t += guards
            excl_q += [local] * len(excluded)
            excl_t += excluded
        anchor_sims = vectors[anchor_t] @ vectors.T  # (anchors, pool)
        in_band = (anchor_sims >= min_similarity) & (anchor_sims <= max_similarity)
        banded = np.where(in_band, anchor_sims, -np.inf)
        starts = np.flatnonzero(np.r_[True, np.diff(anchor_q) != 0])  # anchors are grouped by query
        score = np.maximum.reduceat(banded, starts, axis=0)  # (queries, pool): best in-band similarity
        guard_sims = vectors[guard_t] @ vectors.T
        gstarts = np.flatnonzero(np.r_[True, np.diff(guard_q) != 0])
        nearest_positive = np.maximum.reduceat(guard_sims, gstarts, axis=0)
        score[nearest_positive > guard_similarity] = -np.inf
        score[np.asarray(guard_q, dtype=np.int64), np.asarray(guard_t, dtype=np.int64)] = -np.inf
        if excl_q:
            score[np.asarray(excl_q, dtype=np.int64), np.asarray(excl_t, dtype=np.int64)] = -np.inf
        top = np.argpartition(-score, k - 1, axis=1)[:, :k] if k < len(pool) else np.tile(np.arange(len(pool)),
                                                                                         (len(part), 1))
        for local, qp in enumerate(part):
            cols = top[local]
            vals = score[local, cols]
            keep = np.isfinite(vals)
            cols, vals = cols[keep], vals[keep]
            order = np.lexsort((cols, -vals))  # best first, ties by target order
            chosen = [(qp.language, qp.query, pool[j]) for j in cols[order].tolist()]
            without += not chosen
            picks.append(chosen)
    stats["queries_without_candidates"] = without
    chosen_rows = take_round_robin(picks, count, seed, source)
    return [negative_row(task, lang, query, target, source, n) for n, (lang, query, target) in enumerate(chosen_rows)]


@dataclass
class HardNegOptions(HardNegativeBand):
    per_query: int = 1  # negatives per query (the best-scoring candidates)

    def __post_init__(self):
        super().__post_init__()
        if self.per_query < 1:
            raise ValueError(f"per_query={self.per_query}: must be at least 1")

    def selection(self) -> dict:
        return {**super().selection(), "per_query": int(self.per_query)}


@register("hard_neg", options=HardNegOptions)
class HardNeg(Strategy):
    options: HardNegOptions

    def generate(self, mix: Dataset, context: AugmentContext) -> Dataset:
        base = base_rows(mix, context)
        embedder = self.options.make_embedder(context.cache_dir, setting="augment.hard_neg.embedder")
        selection = self.options.selection()
        cache = ContentCache(Path(context.cache_dir) / "hard_neg")
        key = make_key(self.name, VERSION, digest_table(base), digest_table(context.original), selection,
                       embedder.identity, context.task, context.seed)
        stats: dict = {}

        def compute() -> Dataset:
            pairs = PairIndex.of(context.original, mix)
            rows = hard_negatives(base, pairs, context.task, embedder, seed=context.seed, source=self.name,
                                  stats=stats, **selection)
            cache.put(key, stats, "json")  # the selection's own counters, reported again on a hit
            return rows_to_table(rows, context.original.features)

        table, hit = cache.get_or_compute(key, compute, "table")
        self.count("cache_hits", int(hit))
        self.count("cache_misses", int(not hit))
        if hit:
            stats.update(cache.get(key, "json") or {})
        for name, value in {**stats, **embedder.counters}.items():
            self.count(name, value)
        return table
