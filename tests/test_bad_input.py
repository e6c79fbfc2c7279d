"""Every bad input gets a clear error before any model loads, the advice in each message works
when followed, and nothing the user owns changes: earlier runs, cache entries, user files.

Real CLI, tiny model, temp MLflow store. A failing command gets an empty cache folder of its own:
the model is built there on load, so an absent `models/` folder proves it never loaded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from relevance.data.demo import write_demo_data
from tests.conftest import run_cli, task_config, tiny_run_args


@pytest.fixture(scope="module")
def project(tmp_path_factory, shared_cache):
    """A store holding a finished QC run, and a user's data folder."""
    root = tmp_path_factory.mktemp("project")
    run_cli("train", tiny_run_args(root, shared_cache, "trainer.epochs=1"), cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    user = root / "user"
    for key in ("qc", "qi"):
        write_demo_data(user / key, task_config(key), seed=1, train_rows=96, dev_rows=48)
    return root, client, user


def snapshot(root: Path, client: MlflowClient, cache: Path) -> dict:
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    files = [p for folder in (root / "user", cache) for p in folder.rglob("*") if p.is_file()]
    return {"runs": {r.info.run_id: (r.info.status, r.data.metrics) for r in runs},
            "files": {str(p): (p.read_bytes(), p.stat().st_mode) for p in files}}


def unchanged(before: dict, after: dict) -> bool:
    """Every earlier run and file is as it was (a failed command may add its own FAILED run)."""
    return (all(after["runs"].get(run_id) == state for run_id, state in before["runs"].items())
            and all(after["files"].get(path) == state for path, state in before["files"].items()))


def fails_before_loading(project, shared_cache, tmp_path, module: str, args: list[str]) -> str:
    """Run a command that must fail: returns its stderr after checking that no model loaded and
    nothing earlier changed."""
    root, client, _ = project
    before = snapshot(root, client, shared_cache)
    own_cache = tmp_path / "empty_cache"
    result = run_cli(module, [*args, f"paths.root={root}", f"paths.cache_dir={own_cache}"], cwd=root, check=False)
    assert result.returncode != 0, result.stdout
    assert not (own_cache / "models").exists(), "the model was loaded before the error"
    assert unchanged(before, snapshot(root, client, shared_cache))
    return result.stderr


def competition_dir(tmp_path: Path, train: list[dict], dev: list[dict]) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    for name, rows in (("train.jsonl", train), ("dev.jsonl", dev)):
        (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return folder


def demo_rows(project, key: str, split: str) -> list[dict]:
    return [json.loads(line) for line in (project[2] / key / f"{key}_{split}.jsonl").read_text().splitlines()]


def train_args(data: Path, *extra: str) -> list[str]:
    return ["model=tiny_random", "trainer=smoke", "data=competition", f"data.dir={data}", *extra]


# --------------------------------------------------------------------------- predict

def test_predict_reads_a_bom_file_and_cleans_a_killed_writers_temp_file(project, shared_cache):
    root, _, user = project
    source = user / "qc" / "qc_dev.jsonl"
    with_bom = root / "bom_dev.jsonl"
    with_bom.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())
    output = root / "out" / "bom_pred.jsonl"
    output.parent.mkdir()
    stale = output.parent / f".{output.name}.99999999.x1y2.tmp"  # pid 99999999 is not alive
    stale.write_text("")
    old_umask = os.umask(0o022)
    try:
        run_cli("predict", [f"input={with_bom}", f"output={output}", f"paths.root={root}",
                            f"paths.cache_dir={shared_cache}"], cwd=root)
    finally:
        os.umask(old_umask)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 48 and all("score" in r and "prediction" in r for r in rows)
    assert output.stat().st_mode & 0o777 == 0o644
    assert not stale.exists() and not list(output.parent.glob("*.tmp"))


def test_predict_never_overwrites_its_input(project, shared_cache, tmp_path):
    source = project[2] / "qc" / "qc_dev.jsonl"
    stderr = fails_before_loading(project, shared_cache, tmp_path, "predict",
                                  [f"input={source}", f"output={source}"])
    assert "is the input file" in stderr


def test_a_task_mismatch_says_what_to_type_and_that_works(project, shared_cache, tmp_path):
    root, client, user = project
    qi_train = user / "qi"
    stderr = fails_before_loading(project, shared_cache, tmp_path, "train",
                                  train_args(qi_train, "data.train_file=qi_train.jsonl", "data.dev_file=qi_dev.jsonl"))
    assert "qi_train.jsonl:1: field 'task'" in stderr and "pass task=qi" in stderr
    run_cli("train", tiny_run_args(root, shared_cache, "data=competition", f"data.dir={qi_train}", "task=qi",
                                   "data.train_file=qi_train.jsonl", "data.dev_file=qi_dev.jsonl"), cwd=root)

    qc_run = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id],
                                "attributes.status = 'FINISHED'")[0].info.run_id
    output = tmp_path / "pred.jsonl"
    qi_dev = user / "qi" / "qi_dev.jsonl"
    stderr = fails_before_loading(project, shared_cache, tmp_path, "predict",
                                  [f"run={qc_run}", f"input={qi_dev}", f"output={output}"])
    assert "qi_dev.jsonl:1: field 'task'" in stderr and "run=latest task=qi" in stderr
    assert not output.exists()
    result = run_cli("predict", ["run=latest", "task=qi", f"input={qi_dev}", f"output={output}",
                                 f"paths.root={root}", f"paths.cache_dir={shared_cache}"], cwd=root)
    assert "overall" in result.stdout and len(output.read_text().splitlines()) == 48


def test_sigterm_removes_the_half_written_output(tmp_path):
    script = ("from relevance.files import atomic_open\nfrom relevance.runtime import exit_on_sigterm\n"
              "import os, signal, sys\nexit_on_sigterm()\n"
              "with atomic_open(sys.argv[1]) as out:\n    out.write('half')\n    os.kill(os.getpid(), signal.SIGTERM)\n")
    target = tmp_path / "outputs" / "sigterm_test" / "out.jsonl"  # never the working tree's outputs/
    result = subprocess.run([sys.executable, "-c", script, str(target)], cwd=tmp_path)
    assert result.returncode == 128 + signal.SIGTERM
    assert not target.exists() and not list(target.parent.glob(".*.tmp"))


# --------------------------------------------------------------------------- degenerate data

@pytest.mark.parametrize("change, message", [
    ("dev_language", "dev.jsonl:3: field 'language': 'pt/' is not a language code"),
    ("one_class_train", "field 'label': every one of the"),
    ("one_class_dev", "dev.jsonl:0: field 'label': every one of the"),
    ("duplicate_id", "train.jsonl:5: field 'id': id 1 is already used on line 1"),
])
def test_degenerate_data_fails_at_start(project, shared_cache, tmp_path, change, message):
    train, dev = demo_rows(project, "qc", "train"), demo_rows(project, "qc", "dev")
    if change == "dev_language":
        dev[2]["language"] = "pt/"
    elif change == "one_class_train":
        train = [r for r in train if r["label"] == 1]
    elif change == "one_class_dev":
        dev = [r for r in dev if r["label"] == 0]
    else:
        train[4]["id"] = train[0]["id"]
    stderr = fails_before_loading(project, shared_cache, tmp_path, "train",
                                  train_args(competition_dir(tmp_path, train, dev)))
    assert message in stderr


# --------------------------------------------------------------------------- config

@pytest.mark.parametrize("args, messages", [
    (["+trainer.lr_rate=1"], ["unknown config key trainer.lr_rate"]),
    (["trainer.lr_rate=1"], ["lr_rate"]),
    (["trainer.eval_batch_size=0", "data.max_train_rows=-5", "trainer.lr=-1"],
     ["trainer.eval_batch_size=0", "data.max_train_rows=-5", "trainer.lr=-1.0"]),
    (["augment=[original,bogus]"], ["augment has no option 'bogus'; known: balance, easy_neg"]),
])
def test_config_mistakes_fail_at_start_naming_the_key(project, shared_cache, tmp_path, args, messages):
    stderr = fails_before_loading(project, shared_cache, tmp_path, "train", ["model=tiny_random", *args])
    assert all(m in stderr for m in messages), stderr[-2000:]
    assert "Config search path" not in stderr


def test_predict_rejects_unknown_keys(project, shared_cache, tmp_path):
    source = project[2] / "qc" / "qc_dev.jsonl"
    stderr = fails_before_loading(project, shared_cache, tmp_path, "predict",
                                  [f"input={source}", f"output={tmp_path / 'o.jsonl'}", "+batch_sise=3"])
    assert "unknown config key batch_sise" in stderr
