import json

import numpy as np
import pytest

from relevance.evaluation import (ThresholdPolicy, Thresholds, binary_metrics, load_thresholds, save_threshold,
                                  tune_threshold, tune_thresholds)
from relevance.evaluation.threshold import best_thresholds, tune_thresholds_weighted


def _reference(labels, scores):
    """Brute force: F1 at every unique score, ties -> closest to 0.5."""
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    best_t, best_f1 = None, -1.0
    for t in np.unique(scores):
        pred = scores >= t
        tp = int(np.sum(pred & (labels == 1)))
        fp = int(np.sum(pred & (labels == 0)))
        fn = int(np.sum(~pred & (labels == 1)))
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 > best_f1 or (f1 == best_f1 and abs(t - 0.5) < abs(best_t - 0.5)):
            best_t, best_f1 = float(t), f1
    return best_t, best_f1


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("decimals", [2, 6])
def test_tune_threshold_matches_brute_force(seed, decimals):
    rng = np.random.default_rng(seed)
    n = 400
    labels = (rng.random(n) < 0.3).astype(int)
    scores = np.round(np.clip(0.35 * labels + 0.65 * rng.random(n), 0, 1), decimals)
    t, f1 = tune_threshold(labels, scores)
    ref_t, ref_f1 = _reference(labels, scores)
    assert t == pytest.approx(ref_t)
    assert f1 == pytest.approx(ref_f1)
    assert binary_metrics(labels, scores, t)["f1"] == pytest.approx(f1)


def test_tune_threshold_hand_example():
    # t=0.6 -> preds [1,1,0,0]: F1 = 1; lower thresholds add a false positive.
    t, f1 = tune_threshold([1, 1, 0, 0], [0.9, 0.6, 0.4, 0.1])
    assert (t, f1) == (0.6, 1.0)


def test_tune_threshold_tie_prefers_closest_to_half():
    labels = [1, 0, 1, 0]
    scores = [0.55, 0.5, 0.2, 0.3]
    # candidates: 0.55 (TP1 FN1 -> 2/3), 0.5 (TP1 FP1 FN1 -> 1/2),
    #             0.3 (TP1 FP2 FN1 -> 2/5), 0.2 (TP2 FP2 -> 2/3): tie 0.55 vs 0.2
    t, f1 = tune_threshold(labels, scores)
    assert f1 == pytest.approx(2 / 3)
    assert t == 0.55


def test_tune_threshold_degenerate_inputs():
    assert tune_threshold([0, 0, 0], [0.1, 0.9, 0.4]) == (0.5, 0.0)
    # all scores equal: F1 at 0.5 with everything predicted positive = 2*1/(2+2+0)
    t, f1 = tune_threshold([1, 0, 0], [0.7, 0.7, 0.7])
    assert t == 0.5 and f1 == pytest.approx(0.5)
    t, f1 = tune_threshold([1, 0, 0], [0.2, 0.2, 0.2])
    assert t == 0.5 and f1 == 0.0


def test_tune_threshold_on_large_input():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 100_000)
    scores = rng.random(100_000) * 0.7 + 0.3 * labels
    t, f1 = tune_threshold(labels, scores)
    assert 0.0 < t < 1.0 and f1 > 0.7


def test_weighted_tuning_is_tune_threshold_on_the_resampled_rows():
    """What the bootstrap re-tunes in each resample is exactly what training tuned, on those rows."""
    rng = np.random.default_rng(5)
    n = 150
    labels = (rng.random(n) < 0.4).astype(int)
    scores = np.round(np.clip(0.3 * labels + 0.7 * rng.random(n), 0, 1), 2)  # many ties
    picks = rng.integers(0, n, size=(40, n))
    weights = np.stack([np.bincount(row, minlength=n) for row in picks])
    thresholds, f1s = best_thresholds(labels, scores, weights)
    for row, threshold, f1 in zip(picks, thresholds, f1s):
        assert (threshold, f1) == pytest.approx(tune_threshold(labels[row], scores[row]))


def test_weighted_tuning_of_degenerate_resamples():
    labels, scores = np.array([1, 0, 0, 1]), np.array([0.9, 0.2, 0.3, 0.7])
    weights = np.array([[0, 1, 1, 0],  # no positive drawn
                        [2, 0, 0, 0]])  # one distinct score
    thresholds, f1s = best_thresholds(labels, scores, weights)
    assert list(thresholds) == [0.5, 0.5]
    assert list(f1s) == [0.0, 1.0]  # 0.9 >= 0.5: the two copies of a positive are found


def language_rows(seed: int = 0):
    """en: many rows whose best threshold is high; fr: many rows, best threshold low; ja: a handful."""
    rng = np.random.default_rng(seed)
    rows = []
    for lang, n, shift in (("en", 200, 0.3), ("fr", 200, -0.3), ("ja", 10, 0.0)):
        labels = (rng.random(n) < 0.5).astype(int)
        scores = np.clip(0.5 + shift + 0.25 * (2 * labels - 1) + rng.normal(0, 0.08, n), 0, 1)
        rows += [(lang, int(y), float(s)) for y, s in zip(labels, scores)]
    langs, labels, scores = zip(*rows)
    return np.array(langs), np.array(labels), np.array(scores)


def test_per_language_thresholds_fall_back_to_the_global_one():
    langs, labels, scores = language_rows()
    global_only = tune_thresholds(labels, scores, langs)
    assert global_only.per_language == {} and global_only.global_threshold == tune_threshold(labels, scores)[0]
    policy = ThresholdPolicy("per_language", min_rows_per_language=50)
    tuned = tune_thresholds(labels, scores, langs, policy)
    assert set(tuned.per_language) == {"en", "fr"}  # ja: 10 rows < 50
    assert tuned.per_language["en"] > tuned.per_language["fr"] and tuned.per_language["en"] > tuned.global_threshold
    assert tuned.per_language["en"] == tune_threshold(labels[langs == "en"], scores[langs == "en"])[0]
    row_thresholds = tuned.for_languages(["en", "fr", "ja", "de"])  # de: unseen in dev
    assert list(row_thresholds) == [tuned.per_language["en"], tuned.per_language["fr"], tuned.global_threshold,
                                    tuned.global_threshold]
    assert binary_metrics(labels, scores, tuned.for_languages(langs))["f1"] > \
        binary_metrics(labels, scores, tuned.global_threshold)["f1"]
    # one label only: the language keeps the global threshold however many rows it has
    one_label = tune_thresholds(np.r_[labels, np.ones(80, int)], np.r_[scores, np.full(80, 0.9)],
                                np.r_[langs, ["ko"] * 80], policy)
    assert "ko" not in one_label.per_language


def test_resampled_per_language_thresholds_use_the_global_one_where_a_language_is_thin():
    langs, labels, scores = language_rows()
    weights = np.ones((2, len(labels)), dtype=np.int64)
    weights[1, langs == "en"] = 0  # en not drawn in the second resample
    tuned = tune_thresholds_weighted(labels, scores, langs, weights, ThresholdPolicy("per_language", 50))
    assert np.isnan(tuned.per_language["en"][1]) and np.isfinite(tuned.per_language["en"][0])
    table = tuned.for_languages(["en", "fr"])
    assert table[1, 0] == tuned.global_threshold[1] and table[0, 0] == tuned.per_language["en"][0]
    assert tuned.first() == tune_thresholds(labels, scores, langs, ThresholdPolicy("per_language", 50))


def test_unknown_threshold_mode():
    with pytest.raises(ValueError, match="per_language"):
        ThresholdPolicy("per_country")


def test_save_load_round_trip(tmp_path):
    path = save_threshold(tmp_path / "run", 0.4375, "dev_f1", 0.81)
    assert path == tmp_path / "run" / "threshold.json"
    assert json.loads(path.read_text()) == {"threshold": 0.4375, "tuned_on": "dev_f1", "value": 0.81,
                                            "mode": "global", "min_rows_per_language": 50, "per_language": {}}
    assert load_thresholds(tmp_path / "run") == Thresholds(0.4375)
    save_threshold(tmp_path / "run", Thresholds(0.6, {"fr": 0.3, "en": 0.7}), "dev_f1", 0.8,
                   ThresholdPolicy("per_language", 20))  # overwrite
    assert load_thresholds(tmp_path / "run") == Thresholds(0.6, {"en": 0.7, "fr": 0.3})
    assert json.loads(path.read_text())["mode"] == "per_language"
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["threshold.json"]  # no temp left


def test_a_threshold_file_from_before_per_language_thresholds_loads(tmp_path):
    (tmp_path / "threshold.json").write_text('{"threshold": 0.42, "tuned_on": "dev_f1", "value": 0.8}')
    assert load_thresholds(tmp_path) == Thresholds(0.42, {})


def test_save_rejects_nan(tmp_path):
    with pytest.raises(ValueError):
        save_threshold(tmp_path, float("nan"), "dev_f1", 0.5)
    with pytest.raises(ValueError):
        save_threshold(tmp_path, Thresholds(0.5, {"en": float("inf")}), "dev_f1", 0.5)


@pytest.mark.parametrize(
    "content",
    ["{not json", "[0.5]", '{"tuned_on": "dev_f1"}', '{"threshold": "0.5"}', '{"threshold": true}', '{"threshold": NaN}'],
)
def test_load_malformed_raises_with_file_and_field(tmp_path, content):
    (tmp_path / "threshold.json").write_text(content)
    with pytest.raises(ValueError, match="threshold.json") as exc:
        load_thresholds(tmp_path)
    assert "'threshold'" in str(exc.value)


@pytest.mark.parametrize("per_language", ['[0.5]', '{"en": "high"}', '{"en": NaN}'])
def test_load_malformed_per_language_map(tmp_path, per_language):
    (tmp_path / "threshold.json").write_text(f'{{"threshold": 0.5, "per_language": {per_language}}}')
    with pytest.raises(ValueError, match="'per_language'"):
        load_thresholds(tmp_path)


def test_load_missing_file_raises(tmp_path):
    with pytest.raises(ValueError, match="threshold.json"):
        load_thresholds(tmp_path)
