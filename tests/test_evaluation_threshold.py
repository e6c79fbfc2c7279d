import json

import numpy as np
import pytest

from relevance.evaluation import binary_metrics, load_threshold, save_threshold, tune_threshold


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


def test_save_load_round_trip(tmp_path):
    path = save_threshold(tmp_path / "run", 0.4375, "dev_f1", 0.81)
    assert path == tmp_path / "run" / "threshold.json"
    assert json.loads(path.read_text()) == {"threshold": 0.4375, "tuned_on": "dev_f1", "value": 0.81}
    assert load_threshold(tmp_path / "run") == 0.4375
    save_threshold(tmp_path / "run", 0.6, "dev_f1", 0.8)  # overwrite
    assert load_threshold(tmp_path / "run") == 0.6
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["threshold.json"]  # no temp left


def test_save_rejects_nan(tmp_path):
    with pytest.raises(ValueError):
        save_threshold(tmp_path, float("nan"), "dev_f1", 0.5)


@pytest.mark.parametrize(
    "content",
    ["{not json", "[0.5]", '{"tuned_on": "dev_f1"}', '{"threshold": "0.5"}', '{"threshold": true}', '{"threshold": NaN}'],
)
def test_load_malformed_raises_with_file_and_field(tmp_path, content):
    (tmp_path / "threshold.json").write_text(content)
    with pytest.raises(ValueError, match="threshold.json") as exc:
        load_threshold(tmp_path)
    assert "'threshold'" in str(exc.value)


def test_load_missing_file_raises(tmp_path):
    with pytest.raises(ValueError, match="threshold.json"):
        load_threshold(tmp_path)
