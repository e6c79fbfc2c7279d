import matplotlib.pyplot as plt
import numpy as np
import pytest

from relevance.evaluation import (
    plot_confusion_matrix,
    plot_per_language_f1,
    plot_pr_curve,
    plot_pr_curves,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.clip(0.4 * labels + 0.6 * rng.random(200), 0, 1)
    return labels, scores


def _assert_png(path):
    raw = path.read_bytes()
    assert len(raw) > 1000
    assert raw[:8] == PNG_MAGIC
    assert plt.get_fignums() == []


def test_confusion_matrix_png(tmp_path, data):
    out = plot_confusion_matrix(*data, 0.5, tmp_path / "sub" / "cm.png", "dev QC")
    assert out == tmp_path / "sub" / "cm.png"
    _assert_png(out)


def test_pr_curve_png_with_and_without_threshold(tmp_path, data):
    _assert_png(plot_pr_curve(*data, tmp_path / "pr.png", "dev QC", threshold=0.45))
    _assert_png(plot_pr_curve(*data, str(tmp_path / "pr2.png"), "dev QC"))


def test_pr_curve_without_positives_still_writes(tmp_path):
    _assert_png(plot_pr_curve([0, 0, 0], [0.1, 0.5, 0.9], tmp_path / "pr.png", "empty", 0.5))


def test_pr_curves_overlay_png(tmp_path, data):
    labels, scores = data
    curves = {"run-a": (labels, scores), "run-b": (labels, scores ** 2)}
    _assert_png(plot_pr_curves(curves, tmp_path / "prs.png", "comparison"))
    with pytest.raises(ValueError):
        plot_pr_curves({}, tmp_path / "none.png", "x")


def test_per_language_f1_png(tmp_path):
    table = {"mix-a": {"en": 0.8, "fr": 0.7, "ja": 0.6}, "mix-b": {"en": 0.82, "de": 0.5}}
    _assert_png(plot_per_language_f1(table, tmp_path / "lang.png", "per-language F1"))
