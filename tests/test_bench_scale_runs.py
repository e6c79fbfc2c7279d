"""benchmarks/bench_scale_runs.py in its small mode (`--rows 3000`): every stage runs in its own process on
the rows it should, and its work really happened: predict wrote a prediction per test row, compare's report
covers the 20 runs of the sweep, the notebook shows them, the logged run reads back with its datasets
(profiles of the right sizes) and prediction artifacts, and scoring wrote both roles' predictions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, cli_env

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_scale_runs  # noqa: E402

ROWS = 3000


@pytest.mark.integration  # ~1 min on 2 shared cores: trains the tiny run, two predicts, compare, the notebook
def test_small_mode_times_every_stage_on_the_rows_it_should(tmp_path, shared_cache):
    out = tmp_path / "scale-runs.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_scale_runs.py", "--rows", str(ROWS), "--cache-dir", str(shared_cache),
         "--json-out", str(out)], cwd=REPO, env=cli_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    data = json.loads(out.read_text())
    stages = {s["stage"]: s for s in data["stages"]}
    assert list(stages) == list(bench_scale_runs.STAGES)
    train, dev, test = ROWS, ROWS // 10, ROWS // 3
    runs = len(bench_scale_runs.SWEEP_MIXES) * bench_scale_runs.SWEEP_SEEDS
    assert runs == 20

    predict = stages["predict"]
    assert predict["rows"] == predict["predictions_written"] == test
    # the startup command really scored its rows; how its time compares with the whole run's is a measurement
    # for the benchmark's table, not a test (on shared cores in CI the two are within noise of each other)
    assert predict["startup_predictions_written"] == bench_scale_runs.STARTUP_ROWS and predict["startup_s"] > 0

    compare = stages["compare"]
    assert compare["rows"] == runs * (dev + dev) and compare["runs"] == runs and compare["report_exists"]
    assert compare["report_runs"] == compare["child_run_ids"] and len(set(compare["report_runs"])) == runs
    assert compare["report_role"] == "test"  # every child has test predictions

    notebook = stages["notebook"]
    assert notebook["errors"] == 0 and notebook["runs_named"] == runs and notebook["images"] == 2

    logging = stages["mlflow_logging"]
    assert logging["rows"] == train + dev + test and logging["status"] == "FINISHED"
    assert logging["params"] > 50  # the resolved config, flattened
    assert sorted(p["num_rows"] for p in logging["dataset_profiles"]) == sorted([train, dev, test])
    assert {"dev_predictions.jsonl", "test_predictions.jsonl", "metrics.json"} <= set(logging["artifacts"])

    scoring = stages["scoring_overhead"]
    assert scoring["rows"] == dev + test and scoring["prediction_lines"] == {"dev": dev, "test": test}

    for stage in stages.values():
        assert stage["seconds"] > 0 and stage["peak_rss_mib"] >= stage["rss_before_mib"] > 0
    assert ("| stage | rows | seconds | rows/s | RSS at start MiB | peak RSS MiB | ≤ 2 min | ≤ 4 GiB |"
            in result.stdout)
    assert [line.split(" | ")[0].strip("| ") for line in result.stdout.splitlines()
            if line.startswith("| ") and " | " in line][1:] == list(bench_scale_runs.STAGES)


def test_notebook_needs_the_compare_stage():
    with pytest.raises(SystemExit):
        bench_scale_runs.parse_args(["--stages", "notebook"])
