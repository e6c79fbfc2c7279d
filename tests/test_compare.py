"""`python -m relevance.compare` over the smoke sweep (report, plots, artifacts on the parent,
terminal table), and its pieces on hand-made runs (labels, baselines, pairing, task means)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from relevance.compare import (
    choose_baselines,
    distinguishing_labels,
    paired_delta,
    parse_args,
    split_overrides,
    task_means,
)
from tests.conftest import run_cli
from tests.sweep_fixtures import smoke_sweep  # noqa: F401


def test_compare_the_latest_sweep(smoke_sweep, tmp_path):  # noqa: F811
    out = tmp_path / "report"
    # no sweep= : the latest sweep, from the store in the current directory (what `make compare` runs)
    result = run_cli("compare", [f"out={out}", "n_resamples=200"], cwd=smoke_sweep.root)
    parent, children = smoke_sweep.parent, smoke_sweep.children

    report = (out / "report.md").read_text()
    assert parent.info.run_id in report
    assert "| run | task | mix | F1 | precision | recall | ROC-AUC | unseen F1 | ΔF1 vs baseline [95% CI] |" in report
    assert "baseline" in report and "trainer.lr=0.001" in report and "trainer.lr=0.003" in report
    assert "Winner per language" in report and "de*" in report  # de, it: unseen in training
    for png in ("per_language_f1_qc.png", "pr_curves_qc.png"):
        assert (out / png).stat().st_size > 1000
        assert f"]({png})" in report

    data = json.loads((out / "comparison.json").read_text())
    rows = {r["run_id"]: r for r in data["runs"]}
    assert set(rows) == {c.info.run_id for c in children}
    baseline_id = data["baselines"]["QC"]
    assert rows[baseline_id]["delta_note"] == "baseline"
    other = next(r for rid, r in rows.items() if rid != baseline_id)
    assert other["ci_low"] <= other["delta_f1"] <= other["ci_high"]
    assert other["delta_f1"] == pytest.approx(other["dev_f1"] - rows[baseline_id]["dev_f1"], abs=1e-9)
    assert set(data["winners"]["QC"]) >= {"de", "en", "it"}

    artifacts = {a.path for a in smoke_sweep.client.list_artifacts(parent.info.run_id, "compare")}
    assert {"compare/report.md", "compare/comparison.json", "compare/pr_curves_qc.png",
            "compare/per_language_f1_qc.png"} <= artifacts

    assert "ΔF1 vs baseline [95% CI]" in result.stdout and "Winner per language, QC" in result.stdout
    assert "|" not in result.stdout.split("Winner per language")[0]  # a plain-text table, not markdown
    assert str(out / "report.md") in result.stdout


def test_compare_by_parent_id_with_a_named_baseline(smoke_sweep, tmp_path):  # noqa: F811
    out = tmp_path / "report"
    best = smoke_sweep.parent.data.tags["best_run_id"]
    run_cli("compare", [f"sweep={smoke_sweep.parent.info.run_id}", f"baseline={best}", f"out={out}",
                        "n_resamples=100", "log=false", f"tracking_uri={smoke_sweep.tracking_uri}"], cwd=smoke_sweep.root)
    data = json.loads((out / "comparison.json").read_text())
    assert data["baselines"] == {"QC": best}


def test_compare_says_what_is_missing(tmp_path):
    result = run_cli("compare", [], cwd=tmp_path, check=False)
    assert result.returncode != 0 and "no sweep parent run" in result.stderr
    with pytest.raises(SystemExit, match="unknown argument"):
        parse_args(["sweeps=latest"])


# --------------------------------------------------------------------------- pieces

def test_labels_keep_only_what_differs():
    names = ["model=tiny,augment=[original],task=qc", "model=tiny,augment=[original,easy_neg],task=qc",
             "model=tiny,augment=[original],task=qi"]
    assert split_overrides(names[1]) == ["model=tiny", "augment=[original,easy_neg]", "task=qc"]
    assert distinguishing_labels(names) == ["augment=[original]", "augment=[original,easy_neg]", "augment=[original]"]


def frame(rows: list[dict]) -> pd.DataFrame:
    base = {"model": "tiny", "quant": "nf4", "peft": "lora", "head": "classifier", "trainer": "smoke",
            "dev_precision": 0.5, "dev_recall": 0.5}
    out = pd.DataFrame([{**base, **r} for r in rows])
    from relevance.compare import setting_key

    out["setting"] = out.apply(setting_key, axis=1)
    return out


def test_baselines_per_task_and_means_over_both_tasks():
    runs = frame([
        {"run_id": "a", "run_name": "augment=[original,easy_neg],task=qc", "task": "QC", "augment": "original+easy_neg",
         "dev_f1": 0.7, "start_time": 1},
        {"run_id": "b", "run_name": "augment=[original],task=qc", "task": "QC", "augment": "original", "dev_f1": 0.6,
         "start_time": 2},
        {"run_id": "c", "run_name": "augment=[original],task=qi", "task": "QI", "augment": "original", "dev_f1": 0.8,
         "start_time": 3},
        {"run_id": "d", "run_name": "augment=[original,easy_neg],task=qi", "task": "QI", "augment": "original+easy_neg",
         "dev_f1": 0.9, "start_time": 4},
    ])
    runs["label"] = distinguishing_labels(list(runs["run_name"]))
    assert choose_baselines(runs) == {"QC": "b", "QI": "c"}
    # a named baseline sets its task's; the other task takes the same setting
    assert choose_baselines(runs, "augment=[original,easy_neg],task=qc") == {"QC": "a", "QI": "d"}
    means = task_means(runs).set_index("label")
    assert means.loc["augment=[original]", "mean_f1"] == pytest.approx(0.7)
    assert means.loc["augment=[original,easy_neg]", "mean_f1"] == pytest.approx(0.8)


def predictions(ids, labels, preds) -> pd.DataFrame:
    return pd.DataFrame({"id": [str(i) for i in ids], "label": labels, "prediction": preds,
                         "score": np.asarray(preds, dtype=float)})


def test_deltas_only_on_identical_dev_rows():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    base = predictions(range(200), labels, rng.integers(0, 2, 200))
    better = predictions(range(200), labels, np.where(rng.random(200) < 0.8, labels, 1 - labels))
    result, note = paired_delta(base, better.sample(frac=1, random_state=1), 500, 0)  # order does not matter
    assert note == "" and result["delta"] > 0 and result["ci_low"] <= result["delta"] <= result["ci_high"]
    _, note = paired_delta(base, predictions(range(100, 300), labels, labels), 100, 0)
    assert "different dev rows" in note
