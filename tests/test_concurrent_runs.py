"""Runs and sweeps started at the same moment on a fresh store: each has its own folder,
its own artifacts and its own parent, and the store is created once.

Two single runs, a sweep and a parallel (joblib) sweep start together from one directory.
Their folders are named by the day instead of the second (so they surely share the time
part) and the short id (`${short_id:}`, as in conf/train.yaml): before run folders carried
that id, runs started in the same second logged each other's files and sweeps merged under
one parent. The SQLite store does not exist yet: all four open it at once (its schema is
created under a lock).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from sklearn.metrics import f1_score

from tests.conftest import cli_env, tiny_run_args
from tests.sweep_fixtures import children_of, parents_of

pytestmark = pytest.mark.integration  # runs and sweeps started together: make test-integration

SINGLE_LRS = ("0.001", "0.002")
SWEEP_LRS = ("0.003",)
PARALLEL_SWEEP_LRS = ("0.004", "0.005")


SAME_TIME_FOLDERS = ["hydra.run.dir=${paths.root}/outputs/runs/${now:%Y-%m-%d}_${short_id:}",
                     "hydra.sweep.dir=${paths.root}/outputs/multirun/${now:%Y-%m-%d}_${short_id:}"]


def train_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "relevance.train", *args, *SAME_TIME_FOLDERS]


def logged_yaml(client: MlflowClient, run_id: str, artifact: str):
    return yaml.safe_load(Path(client.download_artifacts(run_id, artifact)).read_text())


def test_runs_and_sweeps_started_together_keep_to_themselves(tmp_path, shared_cache):
    base = tiny_run_args(tmp_path, shared_cache, "trainer.epochs=1", "trainer.num_threads=1")
    commands = [train_command(*base, f"trainer.lr={lr}") for lr in SINGLE_LRS]
    commands.append(train_command("-m", *base, f"trainer.lr={','.join(SWEEP_LRS)}"))
    commands.append(train_command("-m", *base, "experiment=parallel_smoke",  # joblib, two workers
                                  f"trainer.lr={','.join(PARALLEL_SWEEP_LRS)}"))
    assert not (tmp_path / "mlflow.db").exists()
    processes = [subprocess.Popen(c, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) for c in commands]
    outputs = [p.communicate()[0] for p in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-4000:]

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("relevance-qc").experiment_id
    runs = client.search_runs([experiment])
    assert len(runs) == len(SINGLE_LRS) + len(SWEEP_LRS) + len(PARALLEL_SWEEP_LRS) + 2  # + the two parents
    assert all(run.info.status == "FINISHED" for run in runs)
    trained = [run for run in runs if "relevance.run_identity" in run.data.tags]
    folders = [run.data.params["paths.output_dir"] for run in trained]
    assert len(set(folders)) == len(trained), folders

    for run in trained:  # every artifact is the run's own: its config, its overrides, its predictions
        lr = run.data.params["trainer.lr"]
        assert logged_yaml(client, run.info.run_id, "config/resolved_config.yaml")["trainer"]["lr"] == float(lr)
        overrides = logged_yaml(client, run.info.run_id, "config/.hydra/overrides.yaml")
        assert [o for o in overrides if o.startswith("trainer.lr=")] == [f"trainer.lr={lr}"]
        predictions = pd.read_json(client.download_artifacts(run.info.run_id, "evaluation/dev_predictions.jsonl"),
                                   lines=True)
        assert f1_score(predictions["label"], predictions["prediction"]) == run.data.metrics["dev_f1"]
        assert Path(run.data.params["paths.output_dir"], ".hydra", "overrides.yaml").exists()

    parents = parents_of(client, [experiment])
    assert len(parents) == 2 and len({p.data.tags["relevance.sweep.dir"] for p in parents}) == 2
    by_lrs = {}
    for parent in parents:
        children = children_of(client, parent)
        by_lrs[tuple(sorted(c.data.params["trainer.lr"] for c in children))] = parent
        sweep_dir = parent.data.tags["relevance.sweep.dir"]
        # every job of a sweep, joblib workers included, resolved the same sweep folder
        assert all(Path(c.data.params["paths.output_dir"]).parent == Path(sweep_dir) for c in children)
        assert parent.data.metrics["jobs_finished"] == len(children)
    assert set(by_lrs) == {tuple(str(float(lr)) for lr in SWEEP_LRS),
                           tuple(str(float(lr)) for lr in PARALLEL_SWEEP_LRS)}
    assert by_lrs[tuple(str(float(lr)) for lr in PARALLEL_SWEEP_LRS)].data.tags[
        "relevance.sweep.launcher"] == "JoblibLauncher"


def test_each_composition_resolves_its_own_run_and_sweep_folder():
    """Two runs composed in the same second still get two folders; one run resolves its
    folder to the same value every time (the id is cached in its config)."""
    first, second = (compose_train_with_hydra() for _ in range(2))
    assert first.hydra.run.dir == first.hydra.run.dir and first.hydra.sweep.dir == first.hydra.sweep.dir
    assert first.hydra.run.dir != second.hydra.run.dir and first.hydra.sweep.dir != second.hydra.sweep.dir
    assert Path(first.hydra.run.dir).name.split("_")[-1] == Path(first.hydra.sweep.dir).name.split("_")[-1]


def compose_train_with_hydra():
    from hydra import compose, initialize_config_dir

    from tests.conftest import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=["paths.root=/tmp/relevance-folders"], return_hydra_config=True)

