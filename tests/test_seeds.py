"""Seeds: `seed` varies the model (initialisation, data order, dropout) while `data.seed` fixes the
rows and the augmentation mix, so runs that differ only by `seed` score the same dev and test rows;
`relevance.compare` groups them and reports the mean over seeds with an interval (a real 2-seed ×
2-mix sweep of the tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relevance.tracking.runs import load_predictions
from tests.conftest import run_cli
from tests.sweep_fixtures import run_sweep

SWEEP = ["model=tiny_random", "trainer=smoke", "trainer.epochs=1", "data.max_train_rows=240", "seed=0,1",
         "augment=[original],[original,easy_neg]"]


@pytest.fixture(scope="module")
def seed_sweep(tmp_path_factory, shared_cache):
    return run_sweep(tmp_path_factory.mktemp("seed-sweep"), shared_cache, *SWEEP)


def by_seed_and_mix(sweep) -> dict[tuple[str, str], object]:
    return {(child.data.params["seed"], child.data.tags["augment"]): child for child in sweep.children}


def test_seeds_change_the_model_not_the_rows_or_the_mix(seed_sweep, tmp_path):
    runs = by_seed_and_mix(seed_sweep)
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs.values())
    client = seed_sweep.client
    first, second = runs["0", "original+easy_neg"], runs["1", "original+easy_neg"]
    for role in ("dev", "test"):
        a, b = (load_predictions(client, r.info.run_id, tmp_path, role=role) for r in (first, second))
        assert list(a["id"]) == list(b["id"])  # the same rows, row by row
        assert not (a["score"] == b["score"]).all()  # another initialisation, another model
    mixes = [Path(client.download_artifacts(r.info.run_id, "data/mix_composition.json", str(tmp_path / r.info.run_id)))
             .read_text() for r in (first, second)]
    assert mixes[0] == mixes[1]  # easy_neg drew the same rows: its seed is data.seed
    assert first.data.metrics["augment_easy_neg_rows"] > 0


def test_compare_reports_each_seed_group(seed_sweep, tmp_path):
    out = tmp_path / "report"
    result = run_cli("compare", [f"out={out}", "n_resamples=200", "log=false"], cwd=seed_sweep.root)
    data = json.loads((out / "comparison.json").read_text())
    groups = {g["group"]: g for g in data["groups"]}
    assert set(groups) == {"augment=[original]", "augment=[original,easy_neg]"}
    runs = {r["run_id"]: r for r in data["runs"]}
    for group in groups.values():
        assert group["runs"] == 2 and group["seeds"] == "0,1" and group["measured_on"] == "test"
        members = [runs[run_id] for run_id in group["run_ids"].split(",")]
        assert group["f1"] == pytest.approx(sum(m["test_f1"] for m in members) / 2, abs=1e-6)
        assert group["f1_ci_low"] <= group["f1_ci_high"]
    baseline, other = groups["augment=[original]"], groups["augment=[original,easy_neg]"]
    assert baseline["note"] == "baseline"
    assert other["delta_f1"] == pytest.approx(other["f1"] - baseline["f1"], abs=1e-9)
    assert other["ci_low"] <= other["ci_high"] and 0 <= other["p_better"] <= 1
    assert "Seed groups" in result.stdout and "baseline group" in result.stdout
    assert "## Seed groups" in (out / "report.md").read_text()
