"""`reorder`: the same training rows with the same labels, in another order — a strategy that must not
matter, the null control of `make controls` (`compare` must not call it significant).

Only the order of the mix so far changes (a permutation drawn from `data.seed` and this strategy's
`seed`), so the training sampler draws other batches: the run differs from the baseline exactly as much
as another data order makes it differ, and in nothing else. Counter: ``rows`` (rows reordered).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datasets import Dataset

from relevance.augment.base import AugmentContext, Strategy, register
from relevance.augment.cache import stable_seed


@dataclass
class ReorderOptions:
    seed: int = 1  # which permutation (with data.seed)


@register("reorder", options=ReorderOptions)
class Reorder(Strategy):
    options: ReorderOptions
    version = "1"

    def rewrite_mix(self, mix: Dataset, context: AugmentContext) -> Dataset:
        order = np.random.default_rng(stable_seed(context.seed, self.name, self.options.seed)).permutation(len(mix))
        self.count("rows", len(mix))
        return mix.select(order.tolist())
