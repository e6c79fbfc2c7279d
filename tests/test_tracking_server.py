"""The shared tracking server: `make server` (mlflow server over a real PostgreSQL, artifacts
proxied) on loopback, a 4-job sweep on 2 parallel joblib workers logging to it over HTTP
(`MLFLOW_TRACKING_URI=http://... tracking=server`), and nothing lost: every child FINISHED with
its metrics and model, stored by the server; then resume, predict and compare read the runs over HTTP.
And Optuna trials from two sweeps at once in one study, stored in the same PostgreSQL."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import f1_score

from tests.conftest import cli_env
from tests.requirements import require_module
from tests.servers import postgres, relevance_cli, tracking_server
from tests.sweep_fixtures import children_of, parents_of

pytestmark = pytest.mark.integration  # PostgreSQL-backed tracking server and parallel sweeps against it: make test-integration

@pytest.fixture(autouse=True)
def _postgres_driver():
    require_module("psycopg", "make install (pyproject's cluster extra: psycopg, PostgreSQL's driver)")


@pytest.fixture(scope="module")
def database_server():
    """One PostgreSQL for the module: a database for MLflow, one for Optuna."""
    with postgres(databases=("mlflow", "optuna")) as uri:
        yield uri


def test_a_parallel_sweep_against_the_server_loses_nothing(tmp_path, shared_cache, database_server):
    artifacts = tmp_path / "server-artifacts"
    with tracking_server(f"{database_server}/mlflow", artifacts) as url:
        env = {"MLFLOW_TRACKING_URI": url}
        sweep = ["-m", "experiment=parallel_smoke", "tracking=server", f"paths.cache_dir={shared_cache}"]
        relevance_cli("train", sweep, cwd=tmp_path, env=env)
        client = MlflowClient(url)
        [parent] = parents_of(client, [e.experiment_id for e in client.search_experiments()])
        parent, children = client.get_run(parent.info.run_id), children_of(client, parent)

        assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_finished"] == 4, parent.data.metrics
        assert [c.info.status for c in children] == ["FINISHED"] * 4
        assert len({c.data.params["trainer.lr"] for c in children}) == 4
        for child in children:
            assert {"dev_f1", "dev_roc_auc", "train_loss"} <= child.data.metrics.keys()
            assert child.info.artifact_uri.startswith("mlflow-artifacts:")  # stored by the server, not here
            assert "model/threshold.json" in {a.path for a in client.list_artifacts(child.info.run_id, "model")}
        assert list(artifacts.rglob("threshold.json")) and not (tmp_path / "mlartifacts").exists()

        # resume over HTTP: the same sweep again finds its four finished runs on the server and skips them
        relevance_cli("train", sweep, cwd=tmp_path, env=env)
        rerun = client.get_run(parents_of(client, [parent.info.experiment_id])[-1].info.run_id)
        assert rerun.info.run_id != parent.info.run_id and rerun.data.metrics["jobs_skipped"] == 4
        assert len(client.search_runs([parent.info.experiment_id])) == 6  # 2 parents, 4 children: nothing new

        # predict downloads a child's model over HTTP and reproduces its dev scores and F1 on its dev rows
        child = children[0]
        logged = Path(client.download_artifacts(child.info.run_id, "evaluation/dev_predictions.jsonl", str(tmp_path)))
        logged_scores = {str(r["id"]): r["score"] for r in map(json.loads, logged.read_text().splitlines())}
        demo_dev = next((shared_cache / "demo").rglob("qc_dev.jsonl")).read_text().splitlines()
        dev_rows = tmp_path / "dev_rows.jsonl"
        dev_rows.write_text("".join(f"{line}\n" for line in demo_dev if str(json.loads(line)["id"]) in logged_scores))
        output = tmp_path / "predictions.jsonl"
        relevance_cli("predict", ["tracking=server", f"run={child.info.run_id}", f"input={dev_rows}",
                                  f"output={output}", f"paths.cache_dir={shared_cache}"], cwd=tmp_path, env=env)
        rows = [json.loads(line) for line in output.read_text().splitlines()]
        assert len(rows) == len(logged_scores)
        assert rows and all(abs(r["score"] - logged_scores[str(r["id"])]) < 1e-5 for r in rows)
        f1 = f1_score([r["label"] for r in rows], [r["prediction"] for r in rows])
        assert f1 == pytest.approx(child.data.metrics["dev_f1"], abs=1e-6)

        # compare finds the latest sweep (the re-run, standing for the runs it reused) by searching the
        # server, reads every run's predictions from it, and logs its report to the sweep's parent
        result = relevance_cli("compare", ["tracking=server", "n_resamples=200"], cwd=tmp_path, env=env)
        out = Path(re.search(r"^report: (\S+)/report.md", result.stdout, re.MULTILINE).group(1))
        compared = json.loads((out / "comparison.json").read_text())
        assert {r["run_id"] for r in compared["runs"]} == {c.info.run_id for c in children}
        assert "compare/report.md" in {a.path for a in client.list_artifacts(rerun.info.run_id, "compare")}


def test_optuna_trials_from_two_sweeps_share_one_study(tmp_path, shared_cache, database_server):
    """Two `-m experiment=optuna_lr_rank` commands at once, on one RDB study (what several machines
    do): the study holds both sweeps' trials, and each sweep logs its own as MLflow children.
    The study is created first, as the README says: two first users of an empty database would
    both create Optuna's tables (PostgreSQL: duplicate key on the `studydirection` type)."""
    optuna = require_module("optuna", "make install")
    storage = f"{database_server}/optuna"
    subprocess.run([str(Path(sys.executable).with_name("optuna")), "create-study", "--storage", storage,
                    "--study-name", "shared", "--direction", "maximize", "--skip-if-exists"], check=True,
                   capture_output=True)
    args = ["-m", "experiment=optuna_lr_rank", "model=tiny_random", "trainer=smoke", "trainer.epochs=1",
            "data.max_train_rows=240", "trainer.num_threads=1", f"paths.cache_dir={shared_cache}",
            "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage='{storage}'", "hydra.sweeper.study_name=shared"]
    roots = [tmp_path / "machine_a", tmp_path / "machine_b"]
    sweeps = []
    for root in roots:
        root.mkdir()
        sweeps.append(subprocess.Popen([sys.executable, "-m", "relevance.train", *args], cwd=root, env=cli_env(),
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [sweep.communicate()[0] for sweep in sweeps]
    assert [sweep.returncode for sweep in sweeps] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]

    study = optuna.load_study(study_name="shared", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    logged_lrs = []
    for root in roots:
        client = MlflowClient(f"sqlite:///{root}/mlflow.db")
        [parent] = parents_of(client, [e.experiment_id for e in client.search_experiments()])
        children = children_of(client, parent)
        assert [c.info.status for c in children] == ["FINISHED", "FINISHED"]
        logged_lrs += [float(c.data.params["trainer.lr"]) for c in children]
    assert sorted(logged_lrs) == pytest.approx(sorted(t.params["trainer.lr"] for t in study.trials), rel=1e-9)
