"""The control strategies of `make controls`: `label_noise` (must hurt) and `reorder` (must not matter)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from datasets import Dataset

from relevance.augment.base import AugmentContext, StrategyOptionsError
from relevance.augment.label_noise import corrupt_labels
from relevance.augment.mix import build_strategy, build_training_mix
from tests.conftest import compose_train


def table(n: int = 200) -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset.from_dict({"id": [str(i) for i in range(n)], "task": ["QC"] * n,
                              "language": [("en", "fr")[i % 2] for i in range(n)],
                              "query": [f"q{i}" for i in range(n)], "target": [f"t{i}" for i in range(n)],
                              "label": rng.integers(0, 2, n).tolist(), "source": ["original"] * n})


def context(rows: Dataset, seed: int = 42) -> AugmentContext:
    return AugmentContext(task="QC", original=rows, train_languages=["en", "fr"], eval_languages=[], seed=seed,
                          cache_dir="/nonexistent", related_by=None)


def test_shuffling_keeps_the_base_rate_and_flipping_flips_exactly_the_share():
    labels = np.random.default_rng(1).integers(0, 2, 1000)
    shuffled = corrupt_labels(labels, 1.0, "shuffle", seed=3)
    assert shuffled.sum() == labels.sum() and (shuffled != labels).mean() > 0.3
    flipped = corrupt_labels(labels, 0.25, "flip", seed=3)
    assert (flipped != labels).sum() == 250
    assert np.array_equal(corrupt_labels(labels, 0.25, "flip", seed=3), flipped)  # deterministic


def test_label_noise_rewrites_the_mix_and_marks_the_rows_it_changed():
    rows = table()
    strategy = build_strategy("label_noise", {"share": 1.0, "mode": "shuffle"})
    noisy = strategy.rewrite_mix(rows, context(rows))
    assert noisy["id"] == rows["id"] and noisy["query"] == rows["query"]
    changed = [i for i, (a, b) in enumerate(zip(rows["label"], noisy["label"])) if a != b]
    assert changed and strategy.counters == {"chosen": 200, "changed": len(changed)}
    assert Counter(noisy["source"]) == {"label_noise": len(changed), "original": 200 - len(changed)}
    again = build_strategy("label_noise", {"share": 1.0}).rewrite_mix(rows, context(rows))
    assert again["label"] == noisy["label"]  # data.seed fixes the rows: every model seed trains on one mix
    other = build_strategy("label_noise", {"share": 1.0}).rewrite_mix(rows, context(rows, seed=7))
    assert other["label"] != noisy["label"]


def test_reorder_keeps_every_row_and_label_in_another_order():
    rows = table()
    reordered = build_strategy("reorder").rewrite_mix(rows, context(rows))
    assert reordered["id"] != rows["id"]
    assert sorted(zip(reordered["id"], reordered["label"])) == sorted(zip(rows["id"], rows["label"]))


@pytest.mark.parametrize("settings,message", [({"share": 0}, "share=0"), ({"share": 1.5}, "share=1.5"),
                                              ({"mode": "swap"}, "mode='swap'")])
def test_label_noise_settings_are_checked(settings, message):
    with pytest.raises(StrategyOptionsError, match=f"augment.label_noise: .*{message}"):
        build_strategy("label_noise", settings)


def test_the_controls_experiment_composes_three_arms_on_the_same_rows():
    cfg = compose_train(["experiment=controls", "augment=[original,label_noise_all]"])
    assert dict(cfg.augment.label_noise) == {"share": 1.0, "mode": "shuffle"}
    assert cfg.data.dir == "../shared/data/qc" and cfg.model.name == "gemma3_270m"
    rows = table()
    mix = build_training_mix(compose_train(["augment=[original,reorder]"]).augment, context(rows))
    assert len(mix.table) == len(rows) and [s.name for s in mix.stats] == ["original", "reorder"]


def arm(mix: str, delta: float, low: float, high: float, p_adj: float, verdict: str) -> dict:
    metric = {"delta": delta, "ci_low": low, "ci_high": high, "p_adj": p_adj, "verdict": verdict}
    return {"arm": mix, "mix": mix, "note": None, "metrics": {"roc_auc": metric, "f1": metric}}


def test_control_lines_say_each_verdict_and_whether_the_machinery_called_it_right():
    from relevance.compare.controls import control_lines

    report = {"tasks": {"QC": {"arms": [arm("original+label_noise", -0.1234, -0.17, -0.08, 0.002, "significant"),
                                        arm("original+reorder", 0.004, -0.03, 0.04, 0.8, "not significant")]}}}
    lines, wrong = control_lines(report)
    assert lines == [
        "control positive_label_noise: roc_auc delta -0.1234 [-0.1700, -0.0800] p_adj 0.0020 -> significant",
        "control null_reorder: roc_auc delta +0.0040 [-0.0300, +0.0400] p_adj 0.8000 -> not significant"]
    assert wrong == []
    report["tasks"]["QC"]["arms"][1] = arm("original+reorder", 0.05, 0.01, 0.09, 0.03, "significant")
    assert control_lines(report)[1] == ["null_reorder is significant, a null control must be not significant"]
    report["tasks"]["QC"]["arms"] = report["tasks"]["QC"]["arms"][1:]
    assert "positive_label_noise: no arm with label_noise in its mix" in control_lines(report)[1]
