"""`balance`: add minority-class rows until the mix so far has `target_positive_ratio` positives.

With P positives and N negatives in the mix so far (the original table when `balance`
comes first):

* P / (P + N) above the target → add k = round(P / r − P − N) negatives, made by
  ``negatives_from``: ``easy`` (`easy_neg.easy_negatives`), ``hard``
  (`hard_neg.hard_negatives`, with this strategy's band / guard / embedder options) or
  ``resample`` (copies of the mix's own negatives);
* below the target → add k = round((r·(P + N) − P) / (1 − r)) copies of the mix's positives.

Copies are drawn without replacement while possible (whole passes over the rows, then a
sample for the rest). Everything is deterministic by seed; added rows have ``source`` =
``balance``. When easy/hard cannot find k new pairs (a small pool, a narrow band), fewer
rows are added and the ``shortfall`` counter says how many are missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from datasets import Dataset

from relevance.augment.base import AugmentContext, Strategy, base_rows, register
from relevance.augment.cache import stable_seed
from relevance.augment.easy_neg import easy_negatives
from relevance.augment.hard_neg import HardNegativeBand, hard_negatives
from relevance.augment.negatives import PairIndex, rows_to_table
from relevance.data.columns import column_values

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


@dataclass
class BalanceOptions(HardNegativeBand):  # the band and embedder are used by negatives_from=hard only
    target_positive_ratio: float = 0.5  # wanted share of label-1 rows in the mix, in (0, 1)
    negatives_from: str = "easy"  # how to make negatives: easy, hard or resample

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.target_positive_ratio < 1:
            raise ValueError(f"target_positive_ratio={self.target_positive_ratio}: must be in (0, 1)")
        if self.negatives_from not in SOURCES:
            raise ValueError(f"negatives_from={self.negatives_from!r}: use one of {SOURCES}")


@register("balance", options=BalanceOptions)
class Balance(Strategy):
    options: BalanceOptions
    version = "6"  # 3: never_negative guards easy and hard negatives; 4: hard_neg's cell index; 5, 6: easy_neg's draw

    def generate(self, mix: Dataset, context: AugmentContext) -> Dataset:
        base = base_rows(mix, context)
        (labels,) = column_values(base, "label")  # a list: base["label"] would format row by row
        positives = int(sum(labels))
        negatives_from = self.options.negatives_from
        label, k = rows_needed(positives, len(labels) - positives, float(self.options.target_positive_ratio))
        self.count("needed", k)
        rows: list[dict] = []
        if k and label == 1:
            rows = self._copies([r for r in base.to_list() if r["label"] == 1], k, context, "positives")
        elif k and negatives_from == "resample":
            rows = self._copies([r for r in base.to_list() if r["label"] == 0], k, context, "negatives")
        elif k:
            pairs = PairIndex.of(context.original, mix)
            if negatives_from == "easy":
                rows = easy_negatives(base, pairs, context.task, context.related_by, count=k, seed=context.seed,
                                      source=self.name, never_negative=context.never_negative)
            else:
                embedder = self.options.make_embedder(context.cache_dir, setting="augment.balance.embedder")
                stats: dict = {}
                rows = hard_negatives(base, pairs, context.task, embedder, count=k, seed=context.seed,
                                      source=self.name, stats=stats, never_negative=context.never_negative,
                                      **self.options.selection())
                for name, value in {**stats, **embedder.counters}.items():
                    self.count(name, value)
        self.count("shortfall", k - len(rows))
        if len(rows) < k:
            log.warning("balance: %d of %d rows could be made (negatives_from=%s)", len(rows), k, negatives_from)
        return rows_to_table(rows, context.original.features)

    def _copies(self, rows: list[dict], k: int, context: AugmentContext, salt: str) -> list[dict]:
        copies = []
        for n, row in enumerate(resample_rows(rows, k, context.seed, f"{self.name}:{salt}")):
            copies.append({**row, "id": f"{row['id']}~{self.name}{n}", "source": self.name})
        return copies
