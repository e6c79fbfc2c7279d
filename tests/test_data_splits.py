"""Tests for relevance.data.splits: query-grouped, language-stratified train/dev splits, and k folds
that are scikit-learn's StratifiedGroupKFold to the row (computed by our own faster loop)."""

import random
import warnings
from collections import Counter, defaultdict

import datasets
import numpy as np
import pytest
from sklearn.model_selection import StratifiedGroupKFold

from relevance.data import grouped_split, languages
from relevance.data.reader import table_features
from relevance.data.splits import fold_assignment, query_group_key

LANGS = ["en", "fr", "ja", "ko", "de"]


def make_table(seed: int = 0, queries_per_lang: int = 40) -> datasets.Dataset:
    """Each query gets 1-4 rows; some repeats differ only in case/whitespace."""
    rng = random.Random(seed)
    cols = {c: [] for c in ("id", "task", "language", "query", "target", "label", "source")}
    n = 0
    for lang in LANGS:
        for q in range(queries_per_lang):
            base = f"{lang} query {q}"
            for k in range(rng.randint(1, 4)):
                text = base if k % 2 == 0 else "  " + base.upper().replace(" ", "  ") + " "
                n += 1
                cols["id"].append(str(n))
                cols["task"].append("QC")
                cols["language"].append(lang)
                cols["query"].append(text)
                cols["target"].append(f"cat {k}")
                cols["label"].append(int(rng.random() < 0.68))
                cols["source"].append("original")
    return datasets.Dataset.from_dict(cols, features=table_features())


def keys(ds):
    return {query_group_key(q) for q in ds["query"]}


def test_no_query_on_both_sides():
    table = make_table()
    train, dev = grouped_split(table, 0.2, seed=1)
    assert len(train) + len(dev) == len(table)
    assert keys(train).isdisjoint(keys(dev))
    assert sorted(list(train["id"]) + list(dev["id"])) == sorted(table["id"])


def test_every_language_in_dev_and_fraction_roughly_right():
    table = make_table()
    for frac in (0.1, 0.2, 0.25, 0.5):
        train, dev = grouped_split(table, frac, seed=3)
        assert languages(dev) == sorted(LANGS)
        assert abs(len(dev) / len(table) - frac) < 0.06, (frac, len(dev) / len(table))


def test_deterministic_by_seed():
    table = make_table()
    a_train, a_dev = grouped_split(table, 0.2, seed=7)
    b_train, b_dev = grouped_split(table, 0.2, seed=7)
    assert list(a_dev["id"]) == list(b_dev["id"]) and list(a_train["id"]) == list(b_train["id"])
    c_train, c_dev = grouped_split(table, 0.2, seed=8)
    assert set(c_dev["id"]) != set(a_dev["id"])


def test_unlabelled_table_splits_by_language():
    table = make_table().remove_columns("label")
    train, dev = grouped_split(table, 0.25, seed=0)
    assert keys(train).isdisjoint(keys(dev))
    assert languages(dev) == sorted(LANGS)


@pytest.mark.parametrize("frac", [0, 1, -0.1, 1.5, "0.2"])
def test_bad_dev_fraction(frac):
    with pytest.raises(ValueError, match="dev_fraction"):
        grouped_split(make_table(queries_per_lang=5), frac, seed=0)


def test_languages_sorted_distinct():
    assert languages(make_table(queries_per_lang=3)) == ["de", "en", "fr", "ja", "ko"]


# --------------------------------------------------------------------------- folds: scikit-learn's, to the row


def sklearn_folds(table: datasets.Dataset, folds: int, seed: int):
    """Each row's fold as scikit-learn's StratifiedGroupKFold gives it (grouped by normalised query,
    stratified by language x label, shuffled by seed), with the warnings it gave, or the error it raised."""
    strata = list(table["language"])
    if "label" in table.column_names:
        strata = [f"{lang}|{label}" for lang, label in zip(strata, table["label"])]
    groups = [query_group_key(q) for q in table["query"]]
    assignment = np.full(len(table), -1, dtype=np.int64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
            for fold, (_, dev) in enumerate(splitter.split(np.zeros(len(table)), strata, groups)):
                assignment[dev] = fold
        except ValueError as error:
            assignment = str(error)
    return assignment, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def our_folds(table: datasets.Dataset, folds: int, seed: int):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            assignment = fold_assignment(table, folds, seed)
        except ValueError as error:
            assignment = str(error)
    return assignment, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def strata_table(n_langs: int, queries: int, seed: int, max_rows: int = 3, repeat_rate: float = 0.1,
                 labelled: bool = True) -> datasets.Dataset:
    """`queries` queries over `n_langs` languages, most of one row (as in the real files), some with up
    to `max_rows` rows of either label, some repeated in other case and spacing; positives ~2:1."""
    rng = random.Random(seed)
    rows = []
    for q in range(queries):
        lang = f"l{rng.randrange(n_langs):03d}"
        n = 1 if rng.random() > repeat_rate else rng.randint(2, max_rows)
        for k in range(n):
            text = f"query {q} of {lang}"
            rows.append({"id": str(len(rows)), "task": "QC", "language": lang,
                         "query": text if k % 2 == 0 else f" {text.upper()}  ", "target": f"cat {k}",
                         "label": int(rng.random() < 0.68), "source": "original"})
    rng.shuffle(rows)
    table = datasets.Dataset.from_list(rows, features=table_features())
    return table if labelled else table.remove_columns("label")


FOLD_CASES = {  # name: (table, folds, seed); the classes are language x label
    "10 classes, groups of 1-4 rows of both labels": (lambda: make_table(seed=2, queries_per_lang=60), 5, 3),
    "10 classes, 2 folds": (lambda: make_table(seed=2, queries_per_lang=60), 2, 0),
    "10 classes, 10 folds (a 10% dev split)": (lambda: make_table(seed=5, queries_per_lang=60), 10, 1),
    "5 classes (no label column)": (lambda: make_table(seed=3, queries_per_lang=60).remove_columns("label"), 5, 7),
    "1 class (one language, no label)": (lambda: strata_table(1, 300, seed=4, labelled=False), 9, 2),
    "1 class, 3 folds": (lambda: strata_table(1, 200, seed=4, labelled=False), 3, 0),
    "2 classes, mostly one-row queries": (lambda: strata_table(1, 1500, seed=6), 5, 42),
    "12 classes, mostly one-row queries": (lambda: strata_table(6, 1500, seed=7), 5, 42),
    "16 classes, 8 folds": (lambda: strata_table(8, 800, seed=8, max_rows=6, repeat_rate=0.3), 8, 11),
    "140 classes (past NumPy's pairwise block)": (lambda: strata_table(70, 1200, seed=9), 5, 0),
    "a selection of rows": (lambda: strata_table(6, 1200, seed=10).select(range(1, 1300, 2)), 4, 5),
    "one class with fewer rows than folds (warning)": (
        lambda: datasets.concatenate_datasets([strata_table(1, 60, seed=11, labelled=False),
                                               strata_table(1, 2, seed=12, labelled=False).map(
                                                   lambda r: {"language": "zz", "query": r["query"] + " zz"})]),
        5, 1),
    "every class with fewer rows than folds (error)": (lambda: strata_table(3, 5, seed=13, repeat_rate=0), 5, 0),
}


@pytest.mark.parametrize("case", list(FOLD_CASES))
def test_folds_are_scikit_learns_row_for_row(case):
    """Our loop must pick the fold StratifiedGroupKFold picks for every group, including its near ties
    (equal evaluations go to the fold with fewer rows), its warning and its error."""
    make, folds, seed = FOLD_CASES[case]
    table = make()
    expected, expected_warnings = sklearn_folds(table, folds, seed)
    got, got_warnings = our_folds(table, folds, seed)
    assert got_warnings == expected_warnings
    if isinstance(expected, str):
        assert got == expected
    else:
        assert got.dtype == np.int64 and got.tolist() == expected.tolist()


def test_a_selection_and_the_same_rows_materialised_get_the_same_folds():
    table = strata_table(6, 900, seed=14).select(list(range(900, 0, -3)))
    materialised = datasets.Dataset.from_list(table.to_list(), features=table.features)
    assert fold_assignment(table, 5, 9).tolist() == fold_assignment(materialised, 5, 9).tolist()


def test_folds_group_queries_and_balance_every_language_and_label():
    """At the real files' shape (most queries one row), each fold holds a fifth of every language x
    label stratum, give or take one query's rows, and no query is in two folds."""
    table = strata_table(6, 3000, seed=15, max_rows=4)
    assignment = fold_assignment(table, 5, 42)
    fold_of_query = defaultdict(set)
    for query, fold in zip(table["query"], assignment.tolist()):
        fold_of_query[query_group_key(query)].add(fold)
    assert all(len(f) == 1 for f in fold_of_query.values())
    per_fold = Counter(zip(table["language"], table["label"], assignment.tolist()))
    for lang, label in set(zip(table["language"], table["label"])):
        counts = [per_fold[lang, label, fold] for fold in range(5)]
        assert max(counts) - min(counts) <= 4, (lang, label, counts)
    sizes = np.bincount(assignment)
    assert sizes.max() - sizes.min() <= 8
    assert fold_assignment(table, 5, 42).tolist() == assignment.tolist()  # deterministic for a seed
    assert fold_assignment(table, 5, 43).tolist() != assignment.tolist()
