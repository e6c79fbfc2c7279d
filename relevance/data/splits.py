"""Query-grouped train/dev splits.

The same query often appears with several targets (one positive category, some
negatives).  A random row split would put the query on both sides and let a
model score well on dev by memorising queries, so rows are grouped by a
normalised query and whole groups go to one side.
"""

from __future__ import annotations

import numpy as np
from datasets import Dataset
from sklearn.model_selection import StratifiedGroupKFold

from relevance.data.text import normalise_text as query_group_key  # a query's group: its normalised text


def grouped_split(dataset: Dataset, dev_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Split into (train, dev) with no query on both sides, stratified by language and label.

    Uses ``StratifiedGroupKFold`` with ``round(1/dev_fraction)`` folds (at least 2)
    and takes the first fold as dev, so the dev share is only approximately
    ``dev_fraction``.  Deterministic for a given ``seed``.  Tables without a
    ``label`` column are stratified by language alone.
    """
    if isinstance(dev_fraction, bool) or not isinstance(dev_fraction, (int, float)) or not 0 < dev_fraction < 1:
        raise ValueError(f"dev_fraction must be a number strictly between 0 and 1, got {dev_fraction!r}")
    n_splits = max(2, round(1 / dev_fraction))
    queries = dataset["query"]
    groups = [query_group_key(q) for q in queries]
    n_groups = len(set(groups))
    if n_groups < n_splits:
        raise ValueError(
            f"cannot split {n_groups} distinct queries into {n_splits} folds for dev_fraction={dev_fraction}"
        )
    langs = dataset["language"]
    if "label" in dataset.column_names:
        strata = [f"{lang}|{lab}" for lang, lab in zip(langs, dataset["label"])]
    else:
        strata = list(langs)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    train_idx, dev_idx = next(splitter.split(np.zeros(len(groups)), strata, groups))
    return dataset.select(np.sort(train_idx)), dataset.select(np.sort(dev_idx))


def languages(dataset: Dataset) -> list[str]:
    """Sorted distinct languages of a table."""
    return sorted(set(dataset["language"]))
