"""The config keys that differ among compared runs: through `python -m relevance.compare` on the smoke
sweep (report.md, report.json, comparison.json, the terminal), and on runs logged to a real store from
composed configs (a strategy one run lacks, seeds, bookkeeping left out)."""

from __future__ import annotations

import json
import re

import pandas as pd
from mlflow.tracking import MlflowClient

from relevance.compare.config_diff import ABSENT, config_diff
from relevance.tracking.mlflow_run import TrackedRun, config_params
from tests.conftest import compose_train, run_cli
from tests.sweep_fixtures import smoke_sweep  # noqa: F401


def section(report: str, title: str) -> str:
    return report.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def table_rows(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines if not line.startswith("|---")]


def test_compare_reports_the_keys_that_differ_run_by_run(smoke_sweep, tmp_path):  # noqa: F811
    out = tmp_path / "cmp"
    result = run_cli("compare", [f"sweep={smoke_sweep.parent.info.run_id}", "n_resamples=50", "log=false",
                                 f"out={out}"], cwd=smoke_sweep.root)
    children = {run.info.run_id: run for run in smoke_sweep.children}
    # the sweep's runs differ in the learning rate they were given, and in where they wrote (bookkeeping)
    assert len({run.data.params["trainer.lr"] for run in children.values()}) == 2
    assert len({run.data.params["paths.output_dir"] for run in children.values()}) == 2

    diff = section((out / "report.md").read_text(), "Config keys that differ")
    assert "1 config key(s) differ among the 2 runs compared: trainer.lr." in diff
    header, *rows = table_rows(diff)
    assert header == ["run", "task", "trainer.lr", "run id"]  # nothing the runs share, no bookkeeping
    assert {row[-1]: row[2] for row in rows} == {rid: run.data.params["trainer.lr"] for rid, run in children.items()}
    assert "Not compared" in diff and "paths.*" in diff and "tracking.*" in diff

    for name in ("report.json", "comparison.json"):
        logged = json.loads((out / name).read_text())["config_diff"]
        assert logged["keys"] == ["trainer.lr"]
        assert {r["run_id"]: r["values"] for r in logged["runs"]} == {
            rid: {"trainer.lr": run.data.params["trainer.lr"]} for rid, run in children.items()}
    assert re.search(r"^Config: 1 config key\(s\) differ among the 2 runs compared: trainer\.lr\.", result.stdout,
                     re.MULTILINE)


def logged_run(uri: str, root, overrides: list[str], name: str):
    cfg = compose_train(["model=tiny_random", "trainer=smoke", f"paths.root={root}", f"tracking.tracking_uri={uri}",
                         *overrides])
    with TrackedRun(cfg.tracking, name, {}) as run:
        run.log_params(config_params(cfg))
        run.log_params({"data.train_rows": len(name) * 100})  # a count logged beside the config
    return MlflowClient(uri).get_run(run.run_id)


def test_absent_keys_count_and_bookkeeping_does_not(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    specs = [("a", ["seed=1", "augment=[original]", "paths.output_dir=/x/a"]),
             ("bb", ["seed=2", "augment=[original,easy_neg]", "paths.output_dir=/x/b",
                     "tracking.system_metrics=false"]),
             ("ccc", ["seed=2", "augment=[original]", "paths.output_dir=/x/c", "data.fold=1"])]
    runs = [logged_run(uri, tmp_path, overrides, name) for name, overrides in specs]
    frame = pd.DataFrame({"run_id": [r.info.run_id for r in runs], "label": ["a", "bb", "ccc"], "task": "QC",
                          "start_time": [r.info.start_time for r in runs]})
    diff = config_diff(runs, frame)

    easy_neg_keys = {k for k in runs[1].data.params if k.startswith("augment.easy_neg")}
    assert easy_neg_keys and easy_neg_keys <= set(diff.keys)
    assert set(diff.keys) == {"seed", "data.fold"} | easy_neg_keys
    by_label = {r["label"]: r["values"] for r in diff.runs}
    assert [by_label[label]["seed"] for label in ("a", "bb", "ccc")] == ["1", "2", "2"]
    assert by_label["ccc"]["data.fold"] == "1" and by_label["a"]["data.fold"] == "None"
    assert all(by_label["a"][key] is None for key in easy_neg_keys)  # not in that run's mix
    header, rows = diff.table()
    assert header[:2] == ["run", "task"] and header[-1] == "run id"
    assert rows[0][header.index(sorted(easy_neg_keys)[0])] == ABSENT
