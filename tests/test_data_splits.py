"""Tests for relevance.data.splits: query-grouped, language-stratified train/dev splits."""

import random

import datasets
import pytest

from relevance.data import grouped_split, languages
from relevance.data.reader import table_features
from relevance.data.splits import query_group_key

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
