"""The plots draw what their data says: counts, curves, operating points and bars are read back from
the figure each function built (just before it is written), and the PNG is a readable image."""

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_curve

from relevance.evaluation import (
    plot_confusion_matrix,
    plot_per_language_f1,
    plot_pr_curve,
    plot_pr_curves,
)
from relevance.evaluation import plots


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.clip(0.4 * labels + 0.6 * rng.random(200), 0, 1)
    return labels, scores


@pytest.fixture
def drawn(monkeypatch):
    """The axes of every figure the plot functions save, read just before saving."""
    figures = []
    real_save = plots._save

    def save_and_keep(fig, path):
        (ax,) = [a for a in fig.axes if a.get_label() != "<colorbar>"]
        figures.append({
            "texts": [t.get_text() for t in ax.texts],
            "title": ax.get_title(),
            "lines": [(line.get_label(), line.get_xdata(), line.get_ydata()) for line in ax.lines],
            "bars": [(patch.get_x() + patch.get_width() / 2, patch.get_height()) for patch in ax.patches],
            "xticks": [t.get_text() for t in ax.get_xticklabels()],
            "legend": [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else [],
        })
        return real_save(fig, path)

    monkeypatch.setattr(plots, "_save", save_and_keep)
    return figures


def _assert_image(path):
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0.01  # something is drawn, not a blank canvas
    assert plt.get_fignums() == []  # no pyplot figure left open


def test_confusion_matrix_shows_the_counts_at_the_threshold(tmp_path, data, drawn):
    labels, scores = data
    out = plot_confusion_matrix(labels, scores, 0.5, tmp_path / "sub" / "cm.png", "dev QC")
    assert out == tmp_path / "sub" / "cm.png"
    _assert_image(out)
    expected = confusion_matrix(labels, (scores >= 0.5).astype(int), labels=[0, 1])
    assert drawn[0]["texts"] == [str(n) for n in expected.ravel()]  # rows true, columns predicted
    assert "dev QC" in drawn[0]["title"] and "0.5" in drawn[0]["title"]
    plot_confusion_matrix(labels, scores, 0.8, tmp_path / "cm2.png", "dev QC")
    assert drawn[1]["texts"] != drawn[0]["texts"]  # another threshold, other counts


def test_pr_curve_is_sklearns_curve_with_the_operating_point(tmp_path, data, drawn):
    labels, scores = data
    _assert_image(plot_pr_curve(labels, scores, tmp_path / "pr.png", "dev QC", threshold=0.45))
    precision, recall, _ = precision_recall_curve(labels, scores)
    (curve_label, x, y), _base, (point_label, px, py) = drawn[0]["lines"]
    np.testing.assert_allclose(x, recall)
    np.testing.assert_allclose(y, precision)
    assert f"AP={average_precision_score(labels, scores):.3f}" in curve_label
    predicted = scores >= 0.45
    tp = (predicted & (labels == 1)).sum()
    assert px[0] == pytest.approx(tp / labels.sum()) and py[0] == pytest.approx(tp / predicted.sum())
    assert f"base rate={labels.mean():.3f}" in drawn[0]["legend"]

    plot_pr_curve(labels, scores, str(tmp_path / "pr2.png"), "dev QC")
    assert len(drawn[1]["lines"]) == 2  # no threshold: curve and base rate, no operating point


def test_pr_curve_without_positives_still_writes(tmp_path, drawn):
    _assert_image(plot_pr_curve([0, 0, 0], [0.1, 0.5, 0.9], tmp_path / "pr.png", "empty", 0.5))
    assert "AP=nan" in drawn[0]["lines"][0][0]


def test_pr_curves_overlay_one_curve_per_run(tmp_path, data, drawn):
    labels, scores = data
    curves = {"run-a": (labels, scores), "run-b": (labels, scores ** 2)}
    _assert_image(plot_pr_curves(curves, tmp_path / "prs.png", "comparison"))
    names = [label for label, _, _ in drawn[0]["lines"]]
    assert [n.split(" ")[0] for n in names] == ["run-a", "run-b"]
    for (label, x, y), (run_labels, run_scores) in zip(drawn[0]["lines"], curves.values()):
        precision, recall, _ = precision_recall_curve(run_labels, run_scores)
        np.testing.assert_allclose(x, recall)
        assert f"AP={average_precision_score(run_labels, run_scores):.3f}" in label
    with pytest.raises(ValueError):
        plot_pr_curves({}, tmp_path / "none.png", "x")


def test_per_language_bars_hold_each_runs_f1_and_leave_missing_languages_empty(tmp_path, drawn):
    table = {"mix-a": {"en": 0.8, "fr": 0.7, "ja": 0.6}, "mix-b": {"en": 0.82, "de": 0.5}}
    _assert_image(plot_per_language_f1(table, tmp_path / "lang.png", "per-language F1"))
    assert drawn[0]["xticks"] == ["de", "en", "fr", "ja"]
    heights = [h for _, h in drawn[0]["bars"]]
    mix_a, mix_b = heights[:4], heights[4:]
    assert np.isnan(mix_a[0]) and mix_a[1:] == [0.8, 0.7, 0.6]
    assert mix_b[:2] == [0.5, 0.82] and all(np.isnan(h) for h in mix_b[2:])
    assert drawn[0]["legend"] == ["mix-a", "mix-b"]
