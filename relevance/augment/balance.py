"""`balance`: add minority-class rows until the mix so far has `target_positive_ratio` positives.

With P positives and N negatives in the mix so far (the original table when `balance`
comes first):

* P / (P + N) above the target → add k = round(P / r − P − N) negatives, made by
  ``from``: ``easy`` (`easy_neg.easy_negatives`), ``hard`` (`hard_neg.hard_negatives`,
  with this strategy's band / guard / embedder settings) or ``resample`` (copies of the
  mix's own negatives);
* below the target → add k = round((r·(P + N) − P) / (1 − r)) copies of the mix's positives.

Copies are drawn without replacement while possible (whole passes over the rows, then a
sample for the rest). Everything is deterministic by seed; added rows have ``source`` =
``balance``. When easy/hard cannot find k new pairs (a small pool, a narrow band), fewer
rows are added and the ``shortfall`` counter says how many are missing.

The YAML key ``from`` is a Python keyword, so the constructor takes it through ``**options``.
"""

from __future__ import annotations

import logging

import numpy as np
from datasets import Dataset

from relevance.augment.base import AugmentContext, Strategy, register
from relevance.augment.cache import stable_seed
from relevance.augment.easy_neg import PairIndex, base_rows, easy_negatives, rows_to_table
from relevance.augment.embedder import PACKAGE_MODEL, Embedder
from relevance.augment.hard_neg import check_band, hard_negatives

log = logging.getLogger(__name__)

SOURCES = ("easy", "hard", "resample")


def rows_needed(positives: int, negatives: int, ratio: float) -> tuple[int, int]:
    """(label to add, how many) to bring positives / all to `ratio`; (label, 0) when already there."""
    total = positives + negatives
    if total == 0:
        return 1, 0
    if positives / total > ratio:
        return 0, max(0, round(positives / ratio - total))
    return 1, max(0, round((ratio * total - positives) / (1 - ratio)))


def resample_rows(rows: list[dict], k: int, seed: int, salt: str) -> list[dict]:
    """k of `rows`: whole passes in order, then a seeded sample without replacement for the rest."""
    if k <= 0 or not rows:
        return []
    rng = np.random.default_rng(stable_seed(seed, salt))
    passes, rest = divmod(k, len(rows))
    picked = list(range(len(rows))) * passes + sorted(rng.choice(len(rows), size=rest, replace=False).tolist())
    return [rows[i] for i in picked]


@register("balance")
class Balance(Strategy):
    def __init__(self, target_positive_ratio: float = 0.5, embedder: str = PACKAGE_MODEL, batch_size: int = 64,
                 min_similarity: float = 0.5, max_similarity: float = 0.85, guard_similarity: float = 0.85,
                 max_queries: int | None = None, device: str = "auto", **options):
        negatives_from = options.pop("from", "easy")
        if options:
            raise TypeError(f"augment.balance: unknown settings {sorted(options)}")
        super().__init__(target_positive_ratio=target_positive_ratio, embedder=embedder, batch_size=batch_size,
                         min_similarity=min_similarity, max_similarity=max_similarity,
                         guard_similarity=guard_similarity, max_queries=max_queries, device=device,
                         **{"from": negatives_from})
        if not 0 < target_positive_ratio < 1:
            raise ValueError(f"augment.balance.target_positive_ratio={target_positive_ratio}: must be in (0, 1)")
        if negatives_from not in SOURCES:
            raise ValueError(f"augment.balance.from={negatives_from!r}: use one of {SOURCES}")
        check_band(min_similarity, max_similarity, guard_similarity, "augment.balance")
        self.ratio = float(target_positive_ratio)
        self.negatives_from = negatives_from
        self.embedder_settings = dict(model=embedder, batch_size=batch_size, device=device)
        self.band = dict(min_similarity=float(min_similarity), max_similarity=float(max_similarity),
                         guard_similarity=float(guard_similarity), max_queries=max_queries)

    def generate(self, mix: Dataset, context: AugmentContext) -> Dataset:
        base = base_rows(mix, context)
        labels = base["label"]
        positives = int(sum(labels))
        label, k = rows_needed(positives, len(labels) - positives, self.ratio)
        self.count("needed", k)
        rows: list[dict] = []
        if k and label == 1:
            rows = self._copies([r for r in base.to_list() if r["label"] == 1], k, context, "positives")
        elif k and self.negatives_from == "resample":
            rows = self._copies([r for r in base.to_list() if r["label"] == 0], k, context, "negatives")
        elif k:
            pairs = PairIndex.of(context.original, mix)
            if self.negatives_from == "easy":
                rows = easy_negatives(base, pairs, context.task, count=k, seed=context.seed, source=self.name)
            else:
                embedder = Embedder(**self.embedder_settings, cache_dir=context.cache_dir,
                                    setting="augment.balance.embedder")
                stats: dict = {}
                rows = hard_negatives(base, pairs, context.task, embedder, count=k, seed=context.seed,
                                      source=self.name, stats=stats, **self.band)
                for name, value in {**stats, **embedder.counters}.items():
                    self.count(name, value)
        self.count("shortfall", k - len(rows))
        if len(rows) < k:
            log.warning("balance: %d of %d rows could be made (from=%s)", len(rows), k, self.negatives_from)
        return rows_to_table(rows, context.original.features)

    def _copies(self, rows: list[dict], k: int, context: AugmentContext, salt: str) -> list[dict]:
        copies = []
        for n, row in enumerate(resample_rows(rows, k, context.seed, f"{self.name}:{salt}")):
            copies.append({**row, "id": f"{row['id']}~{self.name}{n}", "source": self.name})
        return copies
