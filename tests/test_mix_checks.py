"""The training mix is checked like the files are, after the strategies built it: one label only, no
rows, or a language lost that the training rows had and dev/test have stop the run before the model
loads, naming the strategy that did it and the options to change. And class weights: applied by the
trainer's loss, positive, and never together with `balance` (the imbalance corrected twice).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import pytest
import torch
from datasets import Dataset, concatenate_datasets
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from relevance.augment.base import STRATEGIES, Strategy, register
from relevance.augment.mix import MixError, MixShape, build_training_mix
from relevance.training.losses import class_weight_problems, class_weights
from relevance.training.trainer import RelevanceTrainer
from tests.augment_fixtures import context_for, table_of
from tests.conftest import run_cli, tiny_run_args


# --------------------------------------------------------------------------- strategies for the tests

@dataclass
class DropOptions:
    label: Optional[int] = None  # drop the rows with this label
    language: Optional[str] = None  # ... or in this language
    everything: bool = False  # ... or every row


class DropRows(Strategy):
    """A filter that drops rows, as `noise_filter` may."""

    def rewrite_mix(self, mix: Dataset, context) -> Dataset:
        o = self.options
        return mix.filter(lambda row: not (o.everything or row["label"] == o.label or row["language"] == o.language))


class CopyOriginal(Strategy):
    """A strategy that adds rows: a copy of the training rows."""

    def generate(self, mix: Dataset, context) -> Dataset:
        return context.original.map(lambda row: {"id": f"copy-{row['id']}", "source": "copy_original"})


class AddNothing(Strategy):
    """A strategy that adds no rows (the base class's `generate`)."""


class DropFirstRow(Strategy):
    """A filter that drops one row: the mix's row count changes, its problem does not."""

    def rewrite_mix(self, mix: Dataset, context) -> Dataset:
        return mix.select(range(1, len(mix)))


@pytest.fixture(autouse=True)
def test_strategies():
    """Registered for this module only: the registry is global, and other tests list it."""
    register("drop_rows", options=DropOptions)(DropRows)
    register("copy_original")(CopyOriginal)
    register("add_nothing")(AddNothing)
    register("drop_first_row")(DropFirstRow)
    yield
    for name in ("drop_rows", "copy_original", "add_nothing", "drop_first_row"):
        STRATEGIES.pop(name, None)


def original(languages=("en", "fr")) -> Dataset:
    rows = [{"id": f"{lang}{i}", "task": "QC", "language": lang, "query": f"q{i}", "target": f"t{i}",
             "label": i % 2, "source": "original"} for lang in languages for i in range(4)]
    return table_of(rows)


def mix_of(strategies: dict, tmp_path: Path, table: Dataset | None = None, eval_languages=("en", "fr")):
    table = original() if table is None else table
    return build_training_mix(OmegaConf.create(strategies), context_for(table, tmp_path, eval_languages=eval_languages))


# --------------------------------------------------------------------------- what is refused

def test_a_mix_left_with_one_label_names_the_strategy_and_its_options(tmp_path):
    with pytest.raises(MixError) as error:
        mix_of({"original": {}, "drop_rows": {"label": 0}}, tmp_path)
    message = str(error.value)
    assert "after drop_rows" in message and "label 1 only" in message and "(4 rows)" in message
    assert "augment.drop_rows.label" in message and "remove drop_rows" in message


def test_an_empty_mix_names_the_strategy(tmp_path):
    with pytest.raises(MixError, match=r"after drop_rows, the training mix has no rows;.*drop_rows\.everything"):
        mix_of({"original": {}, "drop_rows": {"everything": True}}, tmp_path)


def test_a_mix_that_lost_a_language_dev_has_names_it(tmp_path):
    with pytest.raises(MixError, match=r"after drop_rows.*no rows in fr\b.*training rows and dev/test rows"):
        mix_of({"original": {}, "drop_rows": {"language": "fr"}}, tmp_path)


def test_the_blame_goes_to_the_first_strategy_after_which_it_held_to_the_end(tmp_path):
    with pytest.raises(MixError, match=r"after drop_rows, .*label 1 only \(3 rows\)"):
        mix_of({"original": {}, "drop_rows": {"label": 0}, "add_nothing": {}, "drop_first_row": {}}, tmp_path)
    with pytest.raises(MixError, match=r"after drop_rows\b"):  # a filter first filters the training rows
        mix_of({"drop_rows": {"label": 0}}, tmp_path)


def test_a_later_strategy_that_restores_the_mix_clears_it(tmp_path):
    """Only the mix the model trains on counts: rows a filter dropped that a later strategy adds back
    are fine (a check after every step would refuse `[drop, copy]`)."""
    mix = mix_of({"original": {}, "drop_rows": {"label": 0}, "copy_original": {}}, tmp_path)
    assert set(mix.table["label"]) == {0, 1}


# --------------------------------------------------------------------------- what stays allowed

def test_a_language_only_dev_has_is_the_normal_unseen_case(tmp_path):
    mix = mix_of({"original": {}}, tmp_path, eval_languages=("en", "fr", "de"))
    assert set(mix.table["language"]) == {"en", "fr"}


def test_dropping_a_language_dev_and_test_lack_is_allowed(tmp_path):
    mix = mix_of({"original": {}, "drop_rows": {"language": "fr"}}, tmp_path, eval_languages=("en",))
    assert set(mix.table["language"]) == {"en"}


# --------------------------------------------------------------------------- what the checks read

def test_the_shape_is_read_from_the_rows_as_they_are_after_a_selection_or_a_filter():
    """A filter's mix is a view (a selection over the table): its shape is that of the rows it shows."""
    table = concatenate_datasets([original(), original(("de",))])
    views = [table, table.select([9, 0, 9]), table.select([1, 3, 9]), table.select([]),
             table.filter(lambda row: row["language"] != "en"), table.filter(lambda row: row["label"] == 0)]
    for view in views:
        rows = view.to_list()
        expected = MixShape(len(rows), frozenset(r["label"] for r in rows), frozenset(r["language"] for r in rows))
        assert MixShape.of(view) == expected, rows
    assert MixShape.of(table.select([1, 3, 9])).labels == {1} and MixShape.of(table.select([])).rows == 0


# --------------------------------------------------------------------------- through the CLI

# label_noise made to set every label to 1 (as noise_filter with confidence=0.51 dropped every negative)
ONE_LABEL_HOOK = """
import numpy as np
import relevance.augment.label_noise as label_noise

label_noise.corrupt_labels = lambda labels, share, mode, seed: np.ones_like(np.asarray(labels, dtype=np.int64))
"""


def test_a_strategy_that_leaves_one_label_stops_the_run_before_the_model_loads(tmp_path, shared_cache, monkeypatch):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(ONE_LABEL_HOOK)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])))
    result = run_cli("train", tiny_run_args(tmp_path, shared_cache, "augment=[original,label_noise]"), cwd=tmp_path,
                     check=False)
    assert result.returncode != 0
    assert "after label_noise" in result.stderr and "label 1 only" in result.stderr
    assert "augment.label_noise.share" in result.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    assert run.info.status == "FAILED" and "after label_noise" in run.data.tags["error"]
    assert "model_load_seconds" not in run.data.metrics and "train_loss" not in run.data.metrics


# --------------------------------------------------------------------------- class weights

def test_the_trainers_loss_applies_class_weights():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.1]])
    labels = torch.tensor([1, 1, 0, 0])
    plain = RelevanceTrainer._loss(SimpleNamespace(class_weights=None), logits, labels)
    weighted = RelevanceTrainer._loss(SimpleNamespace(class_weights=class_weights([1, 10], labels.tolist())),
                                      logits, labels)
    assert not torch.isclose(plain, weighted)
    per_row = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    assert torch.isclose(weighted, (per_row * torch.tensor([10.0, 10.0, 1.0, 1.0])).sum() / 4)


@pytest.mark.parametrize("weights", [[0, 1], [1, -2], [1, float("nan")]])
def test_explicit_class_weights_must_be_positive(weights):
    with pytest.raises(ValueError, match=r"trainer\.class_weights=.*positive"):
        class_weights(weights, [0, 1])


def test_class_weights_with_balance_correct_the_imbalance_twice():
    problems = class_weight_problems("balanced", ["original", "balance"])
    assert len(problems) == 1 and "trainer.class_weights=balanced" in problems[0] and "augment" in problems[0]
    assert class_weight_problems([1, 3], ["original", "balance"])
    assert class_weight_problems(None, ["original", "balance"]) == []
    assert class_weight_problems([1, 3], ["original"]) == []
    assert class_weight_problems([0, 3], ["original"]) and "positive" in class_weight_problems([0, 3], [])[0]
