"""`label_noise`: corrupt a share of the training labels — a worked example of a filtering strategy, and
the positive control of `make controls` (an arm that must hurt, so `compare` is seen to detect an effect).

A share of the rows of the mix so far (the original table when it comes first) is chosen at random
(`data.seed`, so every seed of a sweep corrupts the same rows), and their labels are either
``shuffle``d among themselves (the label distribution is kept, the link to the text is lost) or
``flip``ped (1 ↔ 0). With ``share: 1.0`` and ``shuffle`` the training labels carry no information at
all; a model trained on them can only learn the base rate, so its ROC-AUC falls to ≈ 0.5.

Rows changed get ``source`` = ``label_noise`` (the mix composition shows them); counters:
``chosen`` (rows drawn), ``changed`` (rows whose label differs afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datasets import Dataset

from relevance.augment.base import AugmentContext, Strategy, register
from relevance.augment.cache import stable_seed

MODES = ("shuffle", "flip")


@dataclass
class LabelNoiseOptions:
    share: float = 0.5  # share of the mix's rows whose label is corrupted, in (0, 1]
    mode: str = "shuffle"  # shuffle: permute the chosen rows' labels | flip: 1 <-> 0

    def __post_init__(self):
        if not 0 < self.share <= 1:
            raise ValueError(f"share={self.share}: must be in (0, 1] (the share of rows whose label is corrupted)")
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}: use one of {MODES}")


def corrupt_labels(labels: np.ndarray, share: float, mode: str, seed: int) -> np.ndarray:
    """`labels` with a `share` of them shuffled among themselves or flipped; deterministic by `seed`."""
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(labels), size=int(round(share * len(labels))), replace=False))
    noisy = labels.copy()
    noisy[chosen] = rng.permutation(labels[chosen]) if mode == "shuffle" else 1 - labels[chosen]
    return noisy


@register("label_noise", options=LabelNoiseOptions)
class LabelNoise(Strategy):
    options: LabelNoiseOptions
    version = "1"

    def rewrite_mix(self, mix: Dataset, context: AugmentContext) -> Dataset:
        labels = np.asarray(mix["label"], dtype=np.int64)
        noisy = corrupt_labels(labels, self.options.share, self.options.mode,
                               stable_seed(context.seed, self.name))
        changed = np.flatnonzero(noisy != labels)
        self.count("chosen", int(round(self.options.share * len(labels))))
        self.count("changed", len(changed))
        languages = mix["language"]
        self.changed_rows = [(str(languages[j]), int(labels[j])) for j in changed]
        columns = mix.to_dict()
        columns["label"] = noisy.tolist()
        for j in changed:
            columns["source"][j] = self.name
        return Dataset.from_dict(columns, features=mix.features)
