import math

import numpy as np
import pytest

from relevance.evaluation import (
    binary_metrics,
    evaluation_report,
    f1_all_relevant,
    flatten_for_logging,
    per_language_metrics,
)

# threshold 0.5 -> predictions [1, 1, 1, 0, 0]: TP=2 (rows 0,1), FP=1 (row 2), FN=1 (row 4), TN=1
LABELS = [1, 1, 0, 0, 1]
SCORES = [0.9, 0.6, 0.7, 0.2, 0.3]


def test_binary_metrics_hand_computed():
    m = binary_metrics(LABELS, SCORES, 0.5)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["positive_rate"] == pytest.approx(3 / 5)
    assert m["support"] == 5
    assert m["threshold"] == 0.5
    # positives {0.9,0.6,0.3} vs negatives {0.7,0.2}: 4 of 6 pairs ranked correctly
    assert m["roc_auc"] == pytest.approx(4 / 6)
    assert all(type(v) is float for v in m.values())


def test_binary_metrics_threshold_is_inclusive():
    m = binary_metrics([1, 0], [0.5, 0.49], 0.5)
    assert m["f1"] == 1.0 and m["positive_rate"] == 0.5


def test_binary_metrics_single_class_gives_nan_auc():
    m = binary_metrics([0, 0, 0], [0.1, 0.8, 0.3], 0.5)
    assert math.isnan(m["roc_auc"])
    assert m["f1"] == 0.0 and m["precision"] == 0.0
    assert m["accuracy"] == pytest.approx(2 / 3)


def test_binary_metrics_rejects_bad_inputs():
    with pytest.raises(ValueError, match="scores"):
        binary_metrics([1, 0], [0.5], 0.5)
    with pytest.raises(ValueError, match="0/1"):
        binary_metrics([1, 2], [0.5, 0.5], 0.5)


def test_per_language_split():
    langs = ["fr", "en", "fr", "en", "de"]
    out = per_language_metrics(LABELS, SCORES, langs, 0.5)
    assert list(out) == ["de", "en", "fr"]
    # en: rows 1,3 -> labels [1,0], preds [1,0]
    assert out["en"]["f1"] == 1.0 and out["en"]["support"] == 2
    # fr: rows 0,2 -> labels [1,0], preds [1,1]: TP=1, FP=1
    assert out["fr"]["precision"] == 0.5 and out["fr"]["recall"] == 1.0
    # de: row 4 -> label 1 predicted 0
    assert out["de"]["f1"] == 0.0 and math.isnan(out["de"]["roc_auc"])


def test_evaluation_report_seen_unseen():
    langs = ["fr", "en", "fr", "en", "de"]
    rep = evaluation_report(LABELS, SCORES, langs, 0.5, train_languages=["en", "ja"])
    assert rep["unseen_languages"] == ["de", "fr"]
    assert rep["overall"] == binary_metrics(LABELS, SCORES, 0.5)
    assert set(rep["per_language"]) == {"de", "en", "fr"}
    # unseen rows 0,2,4: labels [1,0,1], preds [1,1,0] -> TP=1 FP=1 FN=1
    assert rep["unseen"]["support"] == 3
    assert rep["unseen"]["f1"] == pytest.approx(0.5)
    # seen rows 1,3 (en)
    assert rep["seen"]["support"] == 2 and rep["seen"]["f1"] == 1.0


def test_evaluation_report_no_unseen_languages():
    rep = evaluation_report(LABELS, SCORES, ["en"] * 5, 0.5, train_languages={"en"})
    assert rep["unseen_languages"] == []
    assert rep["unseen"] is None
    assert rep["seen"]["support"] == 5


def test_flatten_for_logging_names_values_and_nan_dropped():
    langs = ["fr", "en", "fr", "en", "pt-BR"]
    rep = evaluation_report(LABELS, SCORES, langs, 0.5, train_languages=["en"])
    flat = flatten_for_logging(rep, "dev")
    assert flat["dev_f1"] == pytest.approx(2 / 3)
    assert flat["dev_threshold"] == 0.5
    assert flat["dev_support"] == 5
    assert flat["dev_f1_lang_en"] == 1.0
    assert flat["dev_precision_lang_fr"] == 0.5
    assert flat["dev_support_lang_fr"] == 2
    assert flat["dev_unseen_f1"] == pytest.approx(0.5)
    assert flat["dev_seen_recall"] == 1.0
    # pt-BR has a single (positive) row -> roc_auc NaN must be dropped
    assert "dev_f1_lang_pt-BR" in flat
    assert "dev_roc_auc_lang_pt-BR" not in flat
    assert all(isinstance(v, float) and math.isfinite(v) for v in flat.values())
    assert not any(k.startswith("dev_unseen_") and "lang" in k for k in flat)


def test_flatten_sanitises_names_and_skips_missing_groups():
    rep = evaluation_report([1, 0], [0.9, 0.1], ["zh:Hans", "zh:Hans"], 0.5, ["zh:Hans"])
    flat = flatten_for_logging(rep, "val")
    assert "val_f1_lang_zh_Hans" in flat
    assert not any(k.startswith("val_unseen") for k in flat)
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-. /")
    assert all(set(k) <= allowed for k in flat)


def test_accepts_numpy_and_bool_labels():
    m = binary_metrics(np.array([True, False]), np.array([0.8, 0.2], dtype=np.float32), 0.5)
    assert m["f1"] == 1.0 and m["roc_auc"] == 1.0


def test_every_f1_comes_with_the_all_relevant_floor_and_the_lift_over_it():
    m = binary_metrics(LABELS, SCORES, 0.5)
    # 3 positives, 2 negatives: predicting all relevant gives P=3/5, R=1 -> F1 = 2*3/(2*3+2) = 0.75
    assert m["f1_all_relevant"] == pytest.approx(0.75) == f1_all_relevant(LABELS)
    assert m["f1_lift"] == pytest.approx(2 / 3 - 0.75)
    assert f1_all_relevant([0, 0]) == 0.0
    flat = flatten_for_logging(evaluation_report(LABELS, SCORES, ["en"] * 5, 0.5, ["en"]), "test")
    assert flat["test_f1_all_relevant"] == pytest.approx(0.75) and flat["test_f1_lift"] == pytest.approx(-1 / 12)
    assert "test_f1_lift_lang_en" not in flat  # overall only


def test_one_threshold_per_row():
    langs = ["fr", "en", "fr", "en", "de"]
    thresholds = np.array([0.95, 0.5, 0.95, 0.5, 0.2])  # fr strict, de lenient
    rep = evaluation_report(LABELS, SCORES, langs, thresholds, train_languages=["en"])
    # predictions [0, 1, 0, 0, 1]: TP rows 1 and 4, FN row 0, no FP
    assert rep["overall"]["f1"] == pytest.approx(0.8) and rep["overall"]["precision"] == 1.0
    assert math.isnan(rep["overall"]["threshold"])  # rows differ: no single threshold
    assert rep["per_language"]["fr"]["threshold"] == 0.95 and rep["per_language"]["de"]["recall"] == 1.0
    assert "dev_threshold" not in flatten_for_logging(rep, "dev")
    with pytest.raises(ValueError, match="one per row"):
        binary_metrics(LABELS, SCORES, thresholds[:3])
