"""From the data config to train/dev tables; class weights."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from relevance.data.loading import load_splits, stratified_subsample
from relevance.training.losses import class_weights
from tests.conftest import SHARED_QC, compose_train
from tests.requirements import require_path


def test_demo_data_is_generated_and_read(tmp_path):
    cfg = compose_train([f"paths.cache_dir={tmp_path}", "paths.root=/tmp"])
    splits = load_splits(cfg.data, cfg.task)
    assert splits.train_path.parent.parent == tmp_path / "demo"
    assert splits.train_path.parent.name.startswith("seed0-train480-dev480-")  # + a digest of all that makes it
    assert len(splits.train) == cfg.data.generate.train_rows
    assert len(splits.dev) + len(splits.test) == cfg.data.generate.dev_rows  # test: carved from the dev file
    assert {"de", "it"} <= set(splits.dev["language"]) and not {"de", "it"} & set(splits.train["language"])


def test_real_rows_with_a_grouped_dev_split_and_subsampling():
    require_path(SHARED_QC / "train.jsonl", "the real QC rows")
    cfg = compose_train(["data=competition", f"data.dir={SHARED_QC}", "data.dev_file=null",
                         "data.max_train_rows=500", "data.max_dev_rows=200", "data.seed=3"])
    splits = load_splits(cfg.data, cfg.task)
    assert len(splits.train) == 500 and len(splits.dev) == 200
    assert splits.dev_path == splits.train_path
    assert not set(splits.train["query"]) & set(splits.dev["query"])


def test_stratified_subsample_keeps_language_label_shares_and_is_deterministic():
    from datasets import Dataset

    rows = [{"language": lang, "label": label, "query": f"{lang}{i}"}
            for lang, n in (("en", 600), ("fr", 300), ("ja", 100)) for i in range(n) for label in [i % 3 != 0]]
    table = Dataset.from_list([{**r, "label": int(r["label"])} for r in rows])
    sample = stratified_subsample(table, 100, seed=1)
    assert len(sample) == 100
    shares = Counter(sample["language"])
    assert abs(shares["en"] - 60) <= 2 and abs(shares["fr"] - 30) <= 2 and abs(shares["ja"] - 10) <= 2
    assert sample["query"] == stratified_subsample(table, 100, seed=1)["query"]
    assert sample["query"] != stratified_subsample(table, 100, seed=2)["query"]
    assert stratified_subsample(table, None, seed=1) is table


def test_class_weights():
    assert class_weights(None, [0, 1]) is None
    balanced = class_weights("balanced", [1, 1, 1, 0])
    assert torch.allclose(balanced, torch.tensor([2.0, 2.0 / 3.0]))
    assert torch.allclose(class_weights([1, 3], [0, 1]), torch.tensor([1.0, 3.0]))
    with pytest.raises(ValueError, match="both labels"):
        class_weights("balanced", [1, 1])
