"""`python -m relevance.compare` over the smoke sweep (report, plots, artifacts on the parent,
terminal table; test metrics reported, dev beside), its Hydra config (typed keys, fails at compose
time), and its pieces on hand-made runs (labels, seed groups, baselines, pairing, means over any tasks)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.errors import ConfigCompositionException

from relevance.compare import (
    Comparison,
    choose_baselines,
    compose_compare_config,
    distinguishing_labels,
    means_table,
    means_title,
    paired_delta,
    seed_group_key,
    setting_key,
    split_overrides,
    task_means,
)
from relevance.compare.deltas import RunPredictions
from relevance.config import ConfigError
from relevance.data.text import normalise_text
from relevance.tracking.runs import load_predictions
from tests.conftest import run_cli
from tests.sweep_fixtures import smoke_sweep  # noqa: F401


def test_compare_the_latest_sweep(smoke_sweep, tmp_path):  # noqa: F811
    # no sweep=, no out=: the latest sweep, from the store in the current directory, reported under
    # outputs/compare/<time>/ (what `make compare` runs)
    result = run_cli("compare", ["n_resamples=200"], cwd=smoke_sweep.root)
    parent, children = smoke_sweep.parent, smoke_sweep.children
    out = Path(re.search(r"^report: (\S+)/report.md", result.stdout, re.MULTILINE).group(1))
    assert out.parent == smoke_sweep.root / "outputs" / "compare"
    # Hydra adds nothing of its own: no .hydra/, no log file
    assert {p.name for p in out.iterdir()} == {"report.md", "report.json", "comparison.json",
                                               "per_language_f1_qc.png", "pr_curves_qc.png"}

    report = (out / "report.md").read_text()
    assert parent.info.run_id in report
    assert ("| run | task | mix | test F1 | test precision | test recall | test ROC-AUC | test unseen F1 | test F1 lift "
            "| dev F1 | dev ROC-AUC | ΔF1 vs baseline [95% CI] | ΔROC-AUC [95% CI] |") in report
    assert "re-tuned on the resampled dev rows" in report and "reported on test" in report
    assert "baseline" in report and "trainer.lr=0.001" in report and "trainer.lr=0.003" in report
    assert "Winner per language" in report and "de*" in report  # de, it: unseen in training
    for png in ("per_language_f1_qc.png", "pr_curves_qc.png"):
        assert (out / png).stat().st_size > 1000
        assert f"]({png})" in report

    data = json.loads((out / "comparison.json").read_text())
    rows = {r["run_id"]: r for r in data["runs"]}
    assert set(rows) == {c.info.run_id for c in children}
    baseline_id = data["baselines"]["QC"]
    assert rows[baseline_id]["delta_note"] == "baseline" and data["report_role"] == "test"
    other = next(r for rid, r in rows.items() if rid != baseline_id)
    assert other["delta_on"] == "test"
    assert other["delta_f1"] == pytest.approx(other["test_f1"] - rows[baseline_id]["test_f1"], abs=1e-6)
    assert other["delta_roc_auc"] == pytest.approx(other["test_roc_auc"] - rows[baseline_id]["test_roc_auc"], abs=1e-6)
    assert other["ci_low"] <= other["ci_high"] and other["roc_auc_ci_low"] <= other["roc_auc_ci_high"]
    assert set(data["winners"]["QC"]) >= {"de", "en", "it"}

    # report.json: each arm (a seed group; here every run is a group of one) against the baseline's group
    decided = json.loads((out / "report.json").read_text())
    assert (decided["alpha"], decided["n_resamples"], decided["report_role"]) == (0.05, 200, "test")
    qc = decided["tasks"]["QC"]
    assert qc["baseline_run_ids"] == [baseline_id] and qc["baseline_group"] == rows[baseline_id]["group_label"]
    (arm,) = qc["arms"]
    assert arm["run_ids"] == [other["run_id"]] and arm["arm"] == other["group_label"] and arm["seeds"] == [42]
    scored = load_predictions(smoke_sweep.client, baseline_id, tmp_path, role="test")
    assert arm["rows"] == len(scored)  # the bootstrap draws the test rows' distinct (folded) queries
    assert arm["queries"] == len({normalise_text(q) for q in scored["query"]}) > 1
    assert not any("no `query` column" in note for note in decided["notes"])
    for metric in ("f1", "roc_auc"):
        stats = arm["metrics"][metric]
        assert set(stats) >= {"mean", "delta", "ci_low", "ci_high", "p", "p_adj", "verdict", "p_better_seed_pairs",
                              "seed_min", "seed_max", "mde"}
        assert stats["delta"] == pytest.approx(other[f"delta_{metric}"], abs=1e-9)  # a group of one: the run's delta
        assert stats["ci_low"] <= stats["delta"] <= stats["ci_high"]
        assert 1 / 201 <= stats["p"] == stats["p_adj"] <= 1  # one arm: Holm changes nothing
        assert stats["verdict"] == ("significant" if stats["p_adj"] < 0.05 else "not significant")
        assert stats["p_better_seed_pairs"] == (1.0 if stats["delta"] > 0 else 0.0 if stats["delta"] < 0 else 0.5)
        assert stats["seed_min"] == stats["seed_max"] == pytest.approx(other[f"test_{metric}"], abs=1e-6)
        power = decided["power"]["QC"]["metrics"][metric]
        assert power["mde_is_lower_bound"]  # no setting ran two seeds: the seed variance is unmeasured
        assert set(power["mde_by_seeds"]) == {"2", "3", "5", "10"} and power["row_variance_run_pairs"] == 1
        undetectable = any(f"`{arm['arm']}` (QC): Δ{'F1' if metric == 'f1' else 'ROC-AUC'}" in note
                           and "too small to detect" in note for note in decided["notes"])
        assert undetectable == (abs(stats["delta"]) < stats["mde"])
    assert {r["run_id"] for r in decided["runs"]} == set(rows)
    assert "F1 p (Holm)" in report and "F1 P(better) seed pairs" in report

    artifacts = {a.path for a in smoke_sweep.client.list_artifacts(parent.info.run_id, "compare")}
    assert {"compare/report.md", "compare/report.json", "compare/comparison.json", "compare/pr_curves_qc.png",
            "compare/per_language_f1_qc.png"} <= artifacts

    assert "ΔF1 vs baseline [95% CI]" in result.stdout and "Winner per language, QC" in result.stdout
    assert "|" not in result.stdout.split("Winner per language")[0]  # a plain-text table, not markdown
    assert str(out / "report.md") in result.stdout


def test_compare_by_parent_id_with_a_named_baseline(smoke_sweep, tmp_path):  # noqa: F811
    out = tmp_path / "report"
    best = smoke_sweep.parent.data.tags["best_run_id"]
    run_cli("compare", [f"sweep={smoke_sweep.parent.info.run_id}", f"baseline={best}", f"out={out}",
                        "n_resamples=100", "log=false", f"tracking.tracking_uri={smoke_sweep.tracking_uri}"],
            cwd=smoke_sweep.root)
    data = json.loads((out / "comparison.json").read_text())
    assert data["baselines"] == {"QC": best}


def test_power_from_a_pilot_sweep(smoke_sweep):  # noqa: F811
    result = run_cli("compare.power", [f"sweep={smoke_sweep.parent.info.run_id}", "n_resamples=100",
                                       "power.seeds=[2,4]", "power.delta=0.5"], cwd=smoke_sweep.root)
    out = result.stdout
    assert "two-sided alpha 0.05, 80% power" in out and "Holm's correction is not included" in out
    assert re.search(r"^QC: \d+ test rows in \d+ queries$", out, re.MULTILINE)
    table = [line.split() for line in out.splitlines() if re.match(r"^\s*[24]\s+≥ ", line)]
    assert [row[0] for row in table] == ["2", "4"]  # N seeds → MDE F1, MDE ROC-AUC (lower bounds: one seed each)
    assert "A delta of 0.5 needs: F1: unknown: no setting of the pilot has two seeds or more" in out
    assert "report:" not in out  # power prints, writes no report


def test_compare_says_what_is_missing(tmp_path):
    result = run_cli("compare", [], cwd=tmp_path, check=False)
    assert result.returncode != 0 and "no sweep parent run" in result.stderr
    assert not (tmp_path / "outputs").exists()  # no report folder without a report


def test_a_bad_key_fails_at_compose_time(tmp_path):
    result = run_cli("compare", ["sweeps=latest"], cwd=tmp_path, check=False)
    assert result.returncode != 0 and "Could not override 'sweeps'" in result.stderr
    assert list(tmp_path.iterdir()) == []  # before any store was opened
    with pytest.raises(ConfigCompositionException, match="n_resamples=many"):
        compose_compare_config(["n_resamples=many"])
    with pytest.raises(ConfigError, match="unknown config key sweeps"):
        compose_compare_config(["+sweeps=latest"])  # `+` adds a key to the typed node: still refused
    with pytest.raises(ConfigError, match="not both"):
        compose_compare_config(["sweep=latest", "experiments=[relevance-qc]"])


def test_the_store_comes_from_the_shared_tracking_config(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RELEVANCE_ROOT", raising=False)
    cfg = compose_compare_config([f"paths.root={tmp_path}"])
    assert cfg.tracking.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"  # as train and predict log to
    assert Path(cfg.out).parent == tmp_path / "outputs" / "compare"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/mlflow.db")
    assert compose_compare_config().tracking.tracking_uri == "sqlite:////elsewhere/mlflow.db"


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


def test_means_over_whatever_tasks_ran():
    """A third task needs no code: each setting's mean is over the tasks it ran on (two or more)."""
    runs = frame([
        {"run_id": f"{task}-{mix}", "run_name": f"tiny-{task.lower()}-{mix}", "task": task, "augment": mix,
         "dev_f1": f1, "start_time": i}
        for i, (task, mix, f1) in enumerate([("QC", "original", 0.6), ("QI", "original", 0.7), ("QX", "original", 0.8),
                                             ("QC", "easy_neg", 0.5), ("QX", "easy_neg", 0.9),
                                             ("QI", "hard_neg", 0.4)])])
    runs["label"] = distinguishing_labels(list(runs["run_name"]))
    means = task_means(runs).set_index("label")
    # default run names (`model-task-mix`) pair across tasks; a setting on one task has no mean
    assert list(means.index) == ["tiny-qc-original", "tiny-qc-easy_neg"]
    assert means.loc["tiny-qc-original", "mean_f1"] == pytest.approx(0.7)
    assert means.loc["tiny-qc-easy_neg", "mean_f1"] == pytest.approx(0.7)
    assert means.loc["tiny-qc-original", "qx_run_id"] == "QX-original"
    assert np.isnan(means.loc["tiny-qc-easy_neg", "qi_f1"])

    comparison = Comparison(title="", tracking_uri="", runs=runs, per_language={}, winners={}, unseen={},
                            task_means=task_means(runs), baselines={}, curves={})
    assert means_title(comparison) == "Mean over QC, QI and QX"
    header, rows = means_table(comparison)
    assert header == ["setting", "QC F1", "QI F1", "QX F1", "mean F1", "mean precision", "mean recall"]
    assert rows[1][:5] == ["tiny-qc-easy_neg", "0.5000", "", "0.9000", "0.7000"]


def predictions(ids, labels, scores) -> pd.DataFrame:
    return pd.DataFrame({"id": [str(i) for i in ids], "label": labels, "language": "en",
                         "score": np.asarray(scores, dtype=float)})


def scored(rng, labels, skill: float) -> np.ndarray:
    return np.clip(skill * labels + (1 - skill) * rng.random(labels.shape[0]), 0, 1)


def test_deltas_only_on_identical_rows():
    rng = np.random.default_rng(0)
    dev, test = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    base = RunPredictions(predictions(range(200), dev, scored(rng, dev, 0.1)),
                          predictions(range(1000, 1200), test, scored(rng, test, 0.1)))
    better = RunPredictions(predictions(range(200), dev, scored(rng, dev, 0.5)).sample(frac=1, random_state=1),
                            predictions(range(1000, 1200), test, scored(rng, test, 0.5)))  # row order does not matter
    result, note = paired_delta(base, better, 300, 0)
    assert note == "" and result["measured_on"] == "test"
    assert result["delta_f1"] > 0 and result["ci_low"] <= result["delta_f1"] <= result["ci_high"]
    assert result["roc_auc_ci_low"] > 0 and result["p_better"] > 0.95
    # without test splits: cross-fitted on dev
    result, _ = paired_delta(RunPredictions(base.dev), RunPredictions(better.dev), 100, 0)
    assert result["measured_on"] == "dev (cross-fit)" and result["delta_f1"] > 0
    _, note = paired_delta(base, RunPredictions(predictions(range(100, 300), dev, dev), better.test), 100, 0)
    assert "different dev rows" in note
    _, note = paired_delta(base, RunPredictions(better.dev), 100, 0)
    assert "no test split" in note


def test_runs_that_differ_only_by_seed_share_a_group():
    rows = frame([{"run_id": f"{mix}-{seed}-{task}", "run_name": f"seed={seed},augment=[{mix}],task={task.lower()}",
                   "task": task, "augment": mix, "dev_f1": 0.5, "start_time": 0}
                  for mix in ("original", "original,easy_neg") for seed in (0, 1) for task in ("QC", "QI")])
    keys = rows.set_index("run_id").apply(seed_group_key, axis=1)
    assert keys["original-0-QC"] == keys["original-1-QC"] != keys["original,easy_neg-0-QC"]
    assert keys["original-0-QC"] != keys["original-0-QI"]  # a task is not a seed
    assert rows["setting"].nunique() == 4  # but twins across tasks pair seed by seed


def test_a_comparison_of_some_mixes_only(smoke_sweep, tmp_path):  # noqa: F811
    args = [f"sweep={smoke_sweep.parent.info.run_id}", "n_resamples=50", "log=false", f"out={tmp_path / 'cmp'}"]
    kept = run_cli("compare", [*args, "mixes=[original]"], cwd=smoke_sweep.root)
    assert ", mixes original" in kept.stdout and "report:" in kept.stdout
    refused = run_cli("compare", [*args, "mixes=[original+bogus]"], cwd=smoke_sweep.root, check=False)
    assert refused.returncode != 0
    assert "mixes=['original+bogus']: no run has original+bogus; the mixes here: original" in refused.stderr
