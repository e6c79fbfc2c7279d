"""Four jobs on two joblib (loky) workers: every job is a FINISHED child of the one parent
(so the parent id reaches the worker processes), nothing is lost in the shared SQLite
store, the jobs really overlapped, and the shared augmentation cache stays whole."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from tests.sweep_fixtures import run_sweep

pytestmark = pytest.mark.integration  # sweeps on the joblib launcher's worker processes: make test-integration

def check_cache_file(path) -> None:
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".npy":
        np.load(path)
    elif path.suffix == ".parquet":
        pd.read_parquet(path)
    else:
        raise AssertionError(f"unexpected file in the augmentation cache (a leftover temporary?): {path}")


def test_four_jobs_on_two_workers(tmp_path, shared_cache):
    sweep = run_sweep(tmp_path, shared_cache, "experiment=parallel_smoke",
                      "augment=[original],[original,easy_neg]", "trainer.lr=1e-3,3e-3")
    parent, children = sweep.parent, sweep.children

    assert parent.data.tags["relevance.sweep.launcher"] == "JoblibLauncher"
    assert len(children) == 4 and len({c.info.run_id for c in children}) == 4
    assert all(c.info.status == "FINISHED" for c in children)
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert len({c.info.run_name for c in children}) == 4
    assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_finished"] == 4
    # no run was lost or duplicated in the store: 4 children + 1 parent
    assert len(sweep.client.search_runs([parent.info.experiment_id])) == 5

    # two workers: some jobs ran at the same time
    spans = sorted((c.info.start_time, c.info.end_time) for c in children)
    assert any(later_start < end for (_, end), (later_start, _) in itertools.pairwise(spans))

    # jobs with the same mix built the same training rows from the shared cache
    rows_by_mix = defaultdict(set)
    for child in children:
        rows_by_mix[child.data.tags["augment"]].add(child.data.metrics["data_mix_rows"])
    assert all(len(rows) == 1 for rows in rows_by_mix.values()), rows_by_mix
    assert rows_by_mix["original+easy_neg"] != rows_by_mix["original"]
    augment_cache = shared_cache / "augment"
    for path in augment_cache.rglob("*") if augment_cache.exists() else []:
        if path.is_file() and ".locks" not in path.parts:
            check_cache_file(path)
