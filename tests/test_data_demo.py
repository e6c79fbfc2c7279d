"""Tests for relevance.data.demo: generated, deterministic, learnable demo data."""

import json
from types import SimpleNamespace

import pytest

from relevance.data import (
    DEMO_DEV_ONLY_LANGUAGES,
    DEMO_TRAIN_LANGUAGES,
    generate_demo_rows,
    languages,
    read_jsonl,
    write_demo_data,
)
from relevance.data import demo
from relevance.data.demo import PRODUCTS
from tests.conftest import task_config

QC, QI = task_config("qc"), task_config("qi")


@pytest.mark.parametrize("task", [QC, QI], ids=["qc", "qi"])
def test_same_seed_byte_identical_and_other_seed_differs(tmp_path, task):
    a = write_demo_data(tmp_path / "a", task, seed=3)
    b = write_demo_data(tmp_path / "b", task, seed=3)
    c = write_demo_data(tmp_path / "c", task, seed=4)
    assert set(a) == {"train", "dev"}
    for split in a:
        assert a[split].name == f"{task.key}_{split}.jsonl"
        assert a[split].read_bytes() == b[split].read_bytes()
        assert a[split].read_bytes() != c[split].read_bytes()
    assert not [p for p in (tmp_path / "a").iterdir() if p.suffix == ".tmp"]


@pytest.mark.parametrize("key", ["qc", "qi"])
def test_files_read_back_and_look_like_the_competition(tmp_path, key):
    task = task_config(key)
    paths = write_demo_data(tmp_path, task, seed=0, train_rows=300, dev_rows=160)
    train = read_jsonl(paths["train"], task).dataset
    dev = read_jsonl(paths["dev"], task).dataset
    assert (len(train), len(dev)) == (300, 160)
    assert languages(train) == sorted(DEMO_TRAIN_LANGUAGES)
    assert languages(dev) == sorted(DEMO_TRAIN_LANGUAGES + DEMO_DEV_ONLY_LANGUAGES)
    assert len(languages(dev)) >= 6
    for ds in (train, dev):
        ratio = sum(ds["label"]) / len(ds)
        assert 0.55 <= ratio <= 0.8, ratio
    assert set(train["query"]).isdisjoint(dev["query"])
    # Raw format: exactly the competition fields, ids 1..n.
    field = task.target_field
    rows = [json.loads(line) for line in paths["train"].read_text(encoding="utf-8").splitlines()]
    assert all(list(r) == ["id", "task", "language", "origin_query", field, "label"] for r in rows)
    assert [r["id"] for r in rows] == list(range(1, 301))


def test_no_query_shared_between_splits_across_seeds():
    for seed in range(3):
        for task in (QC, QI):
            train = {r["origin_query"] for r in generate_demo_rows(task, "train", seed, 600)}
            dev = {r["origin_query"] for r in generate_demo_rows(task, "dev", seed, 400)}
            assert train.isdisjoint(dev)


def test_qc_labels_follow_the_product_relation():
    """Positives pair a query with its own product's path; negatives with another (easy and hard)."""
    by_name = {}
    for prod in PRODUCTS:
        for name in prod.names.values():
            by_name[name] = prod
    path_top = {p.path: p.top for p in PRODUCTS}
    hard = easy = 0
    for r in generate_demo_rows(QC, "train", 0, 600):
        prod = next(p for name, p in by_name.items() if name in r["origin_query"])
        if r["label"] == 1:
            assert r["category_path"] == prod.path
        else:
            assert r["category_path"] != prod.path
            hard += path_top[r["category_path"]] == prod.top
            easy += path_top[r["category_path"]] != prod.top
    assert hard > 20 and easy > 20


def test_qi_titles_are_english_item_titles():
    rows = generate_demo_rows(QI, "dev", 1, 200)
    titles = {p.title for p in PRODUCTS}
    assert all(any(t in r["item_title"] for t in titles) for r in rows)
    assert len({r["item_title"] for r in rows}) > 150


def test_lexicon_covers_all_languages_and_categories():
    assert 24 <= len(PRODUCTS) <= 40
    tops = {p.top for p in PRODUCTS}
    assert len(tops) >= 6
    for top in tops:  # hard negatives need two products per top-level category
        assert sum(p.top == top for p in PRODUCTS) >= 2
    for p in PRODUCTS:
        assert set(p.names) == set(DEMO_TRAIN_LANGUAGES + DEMO_DEV_ONLY_LANGUAGES)
        assert p.path.startswith(p.top + ",") and p.path == p.path.lower()


@pytest.mark.parametrize("args", [(SimpleNamespace(name="QB", target_field="brand", demo_targets="brands"), "train", 0, 10),
                                  (QC, "test", 0, 10), (QC, "train", 0, 0)])
def test_bad_arguments(args):
    with pytest.raises(ValueError):
        generate_demo_rows(*args)


@pytest.mark.parametrize("old, new, message", [
    (None, None, ": the demo word list cannot be read (No such file or directory)"),
    ('"Lumeo",', '"Lumeo"', ":{line}: field '<json>': not JSON in UTF-8: Expecting ',' delimiter"),
    ('"it": "casco bici"', '"itx": "casco bici"',
     ":{line}: field 'categories[0].products[2].names': expected the fields ['de', 'en', 'es', 'fr', 'it', 'ja', 'ko', "
     "'pt'], missing ['it']"),
    ('["cheap", "{} barato"]', '["cheap", "barato"]',
     ":{line}: field 'modifiers.es[4]': expected a [tag, template] pair whose template has one \"{{}}\""),
], ids=["missing", "not-json", "a-language-missing", "a-template-without-slot"])
def test_a_missing_or_malformed_word_list_is_named_with_line_and_field(tmp_path, old, new, message):
    """The demo vocabulary is data (relevance/data/demo_words.json); a broken copy fails loading, naming it."""
    text = demo.WORDS_FILE.read_text(encoding="utf-8")
    broken = tmp_path / "demo_words.json"
    if old is not None:
        assert text.count(old) >= 1
        broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(demo.DemoWordsError) as caught:
        demo.load_words(broken)
    line = text[:text.find(old)].count("\n") + 1 if old else 0  # the edit's line (its object is on one line)
    assert str(caught.value).startswith(f"{broken}{message.format(line=line)}"), str(caught.value)
    assert len(demo.load_words(demo.WORDS_FILE)["categories"]) == len({p.top for p in PRODUCTS})
