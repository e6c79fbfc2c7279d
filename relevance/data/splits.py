"""Query-grouped train/dev splits.

The same query often appears with several targets (one positive category, some
negatives).  A random row split would put the query on both sides and let a
model score well on dev by memorising queries, so rows are grouped by a
normalised query and whole groups go to one side.  The same holds for k folds
(`fold_assignment`): a query's rows are all in one fold.
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
    try:
        return fold_split(dataset, n_splits, 0, seed)
    except ValueError as error:  # too few distinct queries for n_splits folds
        raise ValueError(f"{error} for dev_fraction={dev_fraction}") from None


def _strata(dataset: Dataset) -> list[str]:
    langs = dataset["language"]
    if "label" in dataset.column_names:
        return [f"{lang}|{lab}" for lang, lab in zip(langs, dataset["label"])]
    return list(langs)


def fold_assignment(dataset: Dataset, folds: int, seed: int) -> np.ndarray:
    """Each row's fold (0..folds-1): ``StratifiedGroupKFold`` grouped by normalised query, stratified
    by language × label, shuffled by ``seed``. Every row is in exactly one fold and a query's rows
    are all in the same one; the same rows and seed give the same folds."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer of at least 2, got {folds!r}")
    groups = [query_group_key(q) for q in dataset["query"]]
    n_groups = len(set(groups))
    if n_groups < folds:
        raise ValueError(f"cannot split {n_groups} distinct queries into {folds} folds")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    assignment = np.full(len(groups), -1, dtype=np.int64)
    for fold, (_, dev_idx) in enumerate(splitter.split(np.zeros(len(groups)), _strata(dataset), groups)):
        assignment[dev_idx] = fold
    return assignment


def fold_split(dataset: Dataset, folds: int, fold: int, seed: int) -> tuple[Dataset, Dataset]:
    """(train, dev) for fold `fold` of `folds` (see `fold_assignment`): dev is that fold's rows,
    train every other fold's, both in table order."""
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise ValueError(f"fold must be an integer in [0, {folds}), got {fold!r}")
    assignment = fold_assignment(dataset, folds, seed)
    return dataset.select(np.flatnonzero(assignment != fold)), dataset.select(np.flatnonzero(assignment == fold))


def languages(dataset: Dataset) -> list[str]:
    """Sorted distinct languages of a table."""
    return sorted(set(dataset["language"]))
