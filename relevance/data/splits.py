"""Query-grouped train/dev splits.

The same query often appears with several targets (one positive category, some
negatives).  A random row split would put the query on both sides and let a
model score well on dev by memorising queries, so rows are grouped by a
normalised query and whole groups go to one side.  The same holds for k folds
(`fold_assignment`): a query's rows are all in one fold.

The folds are scikit-learn's ``StratifiedGroupKFold(shuffle=True)``, computed here
(`stratified_group_folds`) rather than by calling it: its greedy loop costs a dozen
NumPy calls per candidate fold of every group (42 s for 300,000 rows).  This one
makes the same choices from the same floating-point values (every sum is added in
NumPy's order), so the folds are the ones scikit-learn gives, which
tests/test_data_splits.py checks against it.
"""

from __future__ import annotations

import math
import warnings
from functools import reduce
from itertools import accumulate
from operator import add

import numpy as np
from datasets import Dataset
from sklearn.utils import check_random_state

from relevance.data.columns import column_values
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
    if "label" in dataset.column_names:
        return [f"{lang}|{lab}" for lang, lab in zip(*column_values(dataset, "language", "label"))]
    return column_values(dataset, "language")[0]


def fold_assignment(dataset: Dataset, folds: int, seed: int) -> np.ndarray:
    """Each row's fold (0..folds-1): ``StratifiedGroupKFold`` grouped by normalised query, stratified
    by language × label, shuffled by ``seed``. Every row is in exactly one fold and a query's rows
    are all in the same one; the same rows and seed give the same folds."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer of at least 2, got {folds!r}")
    groups = [query_group_key(q) for q in column_values(dataset, "query")[0]]
    n_groups = len(set(groups))
    if n_groups < folds:
        raise ValueError(f"cannot split {n_groups} distinct queries into {folds} folds")
    return stratified_group_folds(_strata(dataset), groups, folds, seed)


def stratified_group_folds(strata: list, groups: list, folds: int, seed: int) -> np.ndarray:
    """Each row's fold as ``StratifiedGroupKFold(folds, shuffle=True, random_state=seed)`` assigns it
    (its errors and warning included): groups in shuffled order, those whose class counts spread most
    first, each to the fold that keeps the per-class shares of the folds most even (their std over
    folds, averaged over classes), a near tie (`np.isclose`) going to the fold with fewer rows."""
    classes, class_totals = _sorted_codes(strata)
    if np.all(folds > class_totals):
        raise ValueError(f"n_splits={folds} cannot be greater than the number of members in each class.")
    if folds > class_totals.min():
        warnings.warn(f"The least populated class in y has only {class_totals.min()} members, which is less "
                      f"than n_splits={folds}.", UserWarning, stacklevel=2)
    group_of_row, group_sizes = _sorted_codes(groups)
    n_groups, n_classes = len(group_sizes), len(class_totals)
    if folds > n_groups:
        raise ValueError(f"Cannot have number of splits n_splits={folds} greater than the number of groups: "
                         f"{n_groups}.")
    perm = np.arange(n_groups)
    check_random_state(seed).shuffle(perm)
    inv_perm = np.empty_like(perm)
    inv_perm[perm] = np.arange(perm.size)
    group_of_row = inv_perm[group_of_row]  # groups numbered in shuffled order from here on

    # Each group's rows per class, as (group, class, count) runs sorted by group then class.
    pairs, pair_counts = np.unique(group_of_row * n_classes + classes, return_counts=True)
    pair_group, pair_class = np.divmod(pairs, n_classes)
    pairs_per_group = np.bincount(pair_group, minlength=n_groups)
    first_pair = np.cumsum(pairs_per_group) - pairs_per_group
    one_class = pairs_per_group == 1

    # The order: the std of a group's class counts, largest first, ties in shuffled order. Computed
    # with np.std on rows of class counts, as scikit-learn does, once per distinct row.
    spread = np.empty(n_groups)
    kinds, kind_of_group = np.unique(np.stack([pair_class[first_pair[one_class]],
                                               pair_counts[first_pair[one_class]]], axis=1),
                                     axis=0, return_inverse=True)
    rows = np.zeros((len(kinds), n_classes))
    rows[np.arange(len(kinds)), kinds[:, 0]] = kinds[:, 1]
    spread[one_class] = np.std(rows, axis=1)[kind_of_group.reshape(-1)]
    mixed = np.flatnonzero(~one_class)
    row_of_mixed = np.full(n_groups, -1)
    row_of_mixed[mixed] = np.arange(len(mixed))
    in_mixed = ~one_class[pair_group]
    rows = np.zeros((len(mixed), n_classes))
    rows[row_of_mixed[pair_group[in_mixed]], pair_class[in_mixed]] = pair_counts[in_mixed]
    spread[mixed] = np.std(rows, axis=1)
    order = np.argsort(-spread, kind="stable")

    members: dict[int, list[tuple[int, int]]] = {}  # the groups with rows of several classes
    for group, cls, count in zip(pair_group[in_mixed].tolist(), pair_class[in_mixed].tolist(),
                                 pair_counts[in_mixed].tolist()):
        members.setdefault(group, []).append((cls, count))
    group_class = np.where(one_class, pair_class[first_pair], -1)
    fold_of_group = _assign_groups(order.tolist(), group_class.tolist(), pair_counts[first_pair].tolist(), members,
                                   class_totals.tolist(), folds)
    return fold_of_group[group_of_row]


def _sorted_codes(values: list) -> tuple[np.ndarray, np.ndarray]:
    """Each value's index among the distinct values in ``np.unique``'s order, and how many rows have
    each. Strings compare by code point with trailing NULs ignored, as NumPy's fixed-width strings do."""
    first_seen: dict = {}
    codes = np.fromiter((first_seen.setdefault(v, len(first_seen)) for v in values), np.int64, len(values))
    names = [v.rstrip("\x00") if isinstance(v, str) else v for v in first_seen]
    distinct = sorted(set(names))
    position = {name: i for i, name in enumerate(distinct)}
    codes = np.fromiter((position[name] for name in names), np.int64, len(names))[codes]
    return codes, np.bincount(codes, minlength=len(distinct))


def _assign_groups(order: list[int], group_class: list[int], group_count: list[int],
                   members: dict[int, list[tuple[int, int]]], class_totals: list[int], folds: int) -> np.ndarray:
    """``StratifiedGroupKFold``'s greedy loop, group by group in `order`: every candidate fold's
    evaluation is the float NumPy computes (`_fold_spread`, `_sum_chain`), so the same fold wins.
    `group_class`/`group_count`: a group's one class and its rows there, or -1 for the groups of
    several classes, whose (class, rows) are in `members`."""
    n_classes = len(class_totals)
    counts = [[0] * folds for _ in class_totals]  # class → rows in each fold
    shares = [[0.0] * folds for _ in class_totals]  # class → rows in each fold / the class's rows
    spreads = [0.0] * n_classes  # class → std of its shares over the folds
    fold_sizes = [0] * folds
    fold_of_group = np.empty(len(order), dtype=np.int64)
    for group in order:
        cls = group_class[group]
        if cls < 0 or n_classes == 1:
            candidates = members.get(group) or [(cls, group_count[group])]
            best = _best_fold_of_mixed(candidates, counts, shares, spreads, class_totals, fold_sizes)
            for cls, count in candidates:
                counts[cls][best] += count
                shares[cls][best] = counts[cls][best] / class_totals[cls]
                spreads[cls] = _fold_spread(shares[cls], n_classes == 1)
                fold_sizes[best] += count
            fold_of_group[group] = best
            continue
        # One class (most groups): only that class's spread changes. A candidate fold's mean share adds
        # the shares after it onto the sum before it (fold order, as NumPy adds them), and its
        # evaluation adds `chain` onto the new spread (NumPy's pairwise order over the classes).
        count, total, col, sh = group_count[group], class_totals[cls], counts[cls], shares[cls]
        chain = _sum_chain(spreads, 0, n_classes, cls)
        before = list(accumulate(sh, add, initial=0.0))
        best, best_eval, best_size = -1, math.inf, math.inf
        for fold in range(folds):
            share = (col[fold] + count) / total
            candidate = sh.copy()
            candidate[fold] = share
            mean = reduce(add, sh[fold + 1:], before[fold] + share) / folds
            spread = math.sqrt(reduce(add, [(s - mean) * (s - mean) for s in candidate]) / folds)
            evaluation = reduce(add, chain, spread) / n_classes
            size = fold_sizes[fold]
            if evaluation < best_eval or (abs(evaluation - best_eval) <= 1e-08 + 1e-05 * abs(best_eval)
                                          and size < best_size):
                best, best_eval, best_size, best_share, best_spread = fold, evaluation, size, share, spread
        col[best] += count
        sh[best] = best_share
        spreads[cls] = best_spread
        fold_sizes[best] += count
        fold_of_group[group] = best
    return fold_of_group


def _best_fold_of_mixed(candidates, counts, shares, spreads, class_totals, fold_sizes) -> int:
    """The fold for a group with rows of several classes (or of the only class): the general form of
    `_assign_groups`' loop."""
    n_classes = len(class_totals)
    best, best_eval, best_size = -1, math.inf, math.inf
    for fold in range(len(fold_sizes)):
        trial = spreads.copy()
        for cls, count in candidates:
            candidate = shares[cls].copy()
            candidate[fold] = (counts[cls][fold] + count) / class_totals[cls]
            trial[cls] = _fold_spread(candidate, n_classes == 1)
        evaluation = _pairwise_sum(trial, 0, n_classes) / n_classes
        size = fold_sizes[fold]
        if evaluation < best_eval or (abs(evaluation - best_eval) <= 1e-08 + 1e-05 * abs(best_eval)
                                      and size < best_size):
            best, best_eval, best_size = fold, evaluation, size
    return best


def _fold_spread(shares: list[float], only_class: bool) -> float:
    """``np.std`` over the folds of one class's shares, as NumPy computes it on the (folds × classes)
    table: summed fold by fold, or pairwise when the table has one class (a contiguous axis)."""
    def total(values: list[float]) -> float:
        return _pairwise_sum(values, 0, len(values)) if only_class else reduce(add, values, 0.0)

    mean = total(shares) / len(shares)
    return math.sqrt(total([(s - mean) * (s - mean) for s in shares]) / len(shares))


def _pairwise_sum(values: list[float], start: int, n: int) -> float:
    """NumPy's sum of ``values[start:start + n]`` along a contiguous axis (pairwise summation with 8
    accumulators, halves above 128 values)."""
    if n < 8:
        return reduce(add, values[start:start + n], 0.0)
    if n <= 128:
        blocked = n - n % 8
        lanes = [reduce(add, values[start + lane:start + blocked:8]) for lane in range(8)]
        tree = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
        return reduce(add, values[start + blocked:start + n], tree)
    half = n // 2
    half -= half % 8
    return _pairwise_sum(values, start, half) + _pairwise_sum(values, start + half, n - half)


def _sum_chain(values: list[float], start: int, n: int, at: int) -> list[float]:
    """The numbers that, added one by one onto ``x``, give `_pairwise_sum` of ``values[start:start + n]``
    with ``values[at]`` replaced by ``x``, to the bit (IEEE addition is commutative, so each step in
    which ``x``'s partial sum meets a fixed one is ``partial + fixed``)."""
    if n < 8:
        return [reduce(add, values[start:at], 0.0), *values[at + 1:start + n]]
    if n <= 128:
        blocked = n - n % 8
        if at >= start + blocked:  # in the tail added one by one after the tree of the 8 lanes
            return [reduce(add, values[start + blocked:at], _pairwise_sum(values, start, blocked)),
                    *values[at + 1:start + n]]
        lane = (at - start) % 8
        lanes = [reduce(add, values[start + k:start + blocked:8]) for k in range(8)]
        ahead = values[start + lane:at:8]
        pair, quad = lane // 2, lane // 4
        other_pair = lanes[2 * (pair ^ 1)] + lanes[2 * (pair ^ 1) + 1]
        first = 4 * (quad ^ 1)
        other_quad = (lanes[first] + lanes[first + 1]) + (lanes[first + 2] + lanes[first + 3])
        return [*([reduce(add, ahead)] if ahead else []), *values[at + 8:start + blocked:8],
                lanes[lane ^ 1], other_pair, other_quad, *values[start + blocked:start + n]]
    half = n // 2
    half -= half % 8
    if at < start + half:
        return [*_sum_chain(values, start, half, at), _pairwise_sum(values, start + half, n - half)]
    return [*_sum_chain(values, start + half, n - half, at), _pairwise_sum(values, start, half)]


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
