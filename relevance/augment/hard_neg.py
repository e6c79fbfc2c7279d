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
4. existing pairs (either label, compared as normalised text) are excluded, so no
   positive becomes a negative; so are the candidates a known positive of the query
   protects as the task says (`task.negatives.never_negative`; QC: `category_family`, an
   ancestor, descendant or sibling of a positive path, whatever its similarity);
5. the `per_query` best-scoring candidates are kept (ties: the earlier target in sorted
   order), so the result is deterministic; `max_queries` caps the queries (a sample that
   is the same for the same seed).

Similarities are exact: float64 dot products of the stored (float16) vectors, rounded to
float32, so the picks do not depend on how the work is split.

Pools of up to ``exact_max_targets`` (50,000) distinct targets (QC's ~2,700 category paths, any QC
file) are searched exhaustively: the picks are those of scoring every (anchor, target) pair. Larger
pools (QI's ~300k titles) are searched through a k-means cell index (`hard_neg_screen.CellIndex`):
each anchor sees only the targets of its 16 nearest cells (of ~pool/128), and the picks are the exact
best among those, so they are still in the band, under the guard and never blocked. On generated QI
titles (benchmarks/bench_hard_neg.py's data) they equal the exhaustive picks for 99.99 % of queries at
20k-60k titles, at a cost linear in the pool instead of quadratic. ``null`` keeps every pool exhaustive.

How it scales (the QI training set: ~300k distinct titles; memory linear in the targets,
never targets² or queries × targets): `hard_neg_screen.BandScreen` (above the threshold,
`CellIndex`) shortlists, per anchor, the targets most similar to it inside the band, by bfloat16/float32
matrix products with a proven error bound; `hard_neg_mining` scores the shortlists exactly and screens
deeper until every query's picks are proven to be those of scoring every (anchor, target) pair exactly
(with the cell index: every pair of the probed cells). This module is the strategy: its options, its
cache and its counters.

Embeddings are cached by content, in chunks (see `embedder`); the strategy's output table
is cached per (input rows, settings, embedder), so a rerun loads no embedder at all.
Counters: ``cache_hits`` / ``cache_misses`` (output table: 1 or 0), the embedder's
``embedding_cache_*``/``texts_embedded`` (all 0 when the table came from the cache),
``queries``, ``queries_without_candidates``, ``screening_rounds`` (1 when every query was
settled by the first shortlists), ``index_cells`` (0: exhaustive).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset

from relevance.augment.base import AugmentContext, Strategy, base_rows, register
from relevance.augment.cache import ContentCache, digest_table, make_key
from relevance.augment.embedder import PACKAGE_MODEL, Embedder
from relevance.augment.hard_neg_mining import (EXACT_MAX_TARGETS, PoolRows, QueryTargets, exact_similarities,
                                               hard_negatives, mine)
from relevance.augment.hard_neg_screen import BFLOAT16, FLOAT32, Band, BandScreen, CellIndex, RunningBest, band_hits
from relevance.augment.negatives import PairIndex, rows_to_table

# the strategy, and the mining and screening names other modules, tests and benchmarks import from here
__all__ = ["VERSION", "HardNegativeBand", "HardNegOptions", "HardNeg", "hard_negatives", "mine", "exact_similarities",
           "PoolRows", "QueryTargets", "Band", "BandScreen", "CellIndex", "RunningBest", "BFLOAT16", "FLOAT32",
           "band_hits", "EXACT_MAX_TARGETS"]

log = logging.getLogger(__name__)

VERSION = 4  # part of the output cache key: bump it when the selection logic changes (3: never_negative; 4: cell index)


@dataclass
class HardNegativeBand:
    """The embedder and the selection band: the options `hard_neg` and `balance` (negatives_from=hard) share."""

    embedder: str = PACKAGE_MODEL  # the offline PyPI package's all-MiniLM-L6-v2; or a local dir / hub id
    batch_size: int = 64  # texts per embedding batch
    min_similarity: float = 0.5  # lower edge of the band: less similar candidates are not "hard"
    max_similarity: float = 0.85  # upper edge of the band
    guard_similarity: float = 0.85  # drop a candidate more similar than this to any known positive of the query
    max_queries: int | None = None  # cap on queries used (seeded sample), to bound CPU time; null: all
    exact_max_targets: int | None = EXACT_MAX_TARGETS  # larger pools: cell index (approximate); null: always exact
    device: str = "auto"  # auto: cuda when available, else cpu

    def __post_init__(self):
        if not -1.0 <= self.min_similarity <= self.max_similarity <= 1.0:
            raise ValueError("need -1 <= min_similarity <= max_similarity <= 1, "
                             f"got [{self.min_similarity}, {self.max_similarity}]")
        if not -1.0 <= self.guard_similarity <= 1.0:
            raise ValueError(f"guard_similarity={self.guard_similarity}: must be within [-1, 1]")
        if self.max_queries is not None and self.max_queries < 1:
            raise ValueError(f"max_queries={self.max_queries}: must be positive or null")
        if self.exact_max_targets is not None and self.exact_max_targets < 0:
            raise ValueError(f"exact_max_targets={self.exact_max_targets}: must be >= 0 or null (always exact)")

    def selection(self) -> dict:
        """The keyword arguments of `hard_negatives` that these options set."""
        return dict(min_similarity=float(self.min_similarity), max_similarity=float(self.max_similarity),
                    guard_similarity=float(self.guard_similarity), max_queries=self.max_queries,
                    exact_max_targets=self.exact_max_targets)

    def make_embedder(self, cache_dir: str, setting: str) -> Embedder:
        return Embedder(model=self.embedder, batch_size=self.batch_size, device=self.device, cache_dir=cache_dir,
                        setting=setting)



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
    version = str(VERSION)

    def generate(self, mix: Dataset, context: AugmentContext) -> Dataset:
        base = base_rows(mix, context)
        embedder = self.options.make_embedder(context.cache_dir, setting="augment.hard_neg.embedder")
        selection = self.options.selection()
        cache = ContentCache(Path(context.cache_dir) / "hard_neg")
        key = make_key(self.name, VERSION, digest_table(base), digest_table(context.original), selection,
                       embedder.identity, context.task, context.seed, context.never_negative)
        stats: dict = {}

        def compute() -> Dataset:
            pairs = PairIndex.of(context.original, mix)
            rows = hard_negatives(base, pairs, context.task, embedder, seed=context.seed, source=self.name,
                                  stats=stats, never_negative=context.never_negative, **selection)
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
