"""`python -m relevance.register`: versions of `relevance-<task>` from a run, a sweep's best run on dev or a
fold ensemble, tagged with metrics, identity and lineage; aliases that move; `predict run=models:/...`
scoring the run a version points to. Fast tests use a real SQLite store and the real registry; the ones
that train (a smoke sweep, a 2-fold sweep) are marked integration."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import yaml
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from relevance.register import RegisterError, check_request
from relevance.tracking.registry import (RegistryError, create_version, default_model_name, parse_model_uri,
                                         resolve_run_reference)
from tests.conftest import CONF_DIR, run_cli
from tests.sweep_fixtures import run_sweep, smoke_sweep  # noqa: F401 (a fixture)
from tests.test_folds import SWEEP as FOLD_SWEEP
from tests.test_test_split import subset_file


def compose_register(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="register", overrides=overrides)


# --------------------------------------------------------------------------- fast: URIs, the registry, settings

def test_model_uris_parse_and_a_bad_one_says_the_forms():
    assert parse_model_uri("models:/relevance-qc@champion") == ("relevance-qc", "champion", None)
    assert parse_model_uri("models:/relevance-qc/3") == ("relevance-qc", None, "3")
    assert parse_model_uri("models:/m-0123abc") == ("m-0123abc", None, None)
    for bad in ("models:/", "models:/relevance-qc/latest-ish", "models:/relevance-qc@"):
        with pytest.raises(RegistryError, match=r"models:/<name>@<alias> \(models:/relevance-qc@champion\)"):
            parse_model_uri(bad)
    assert default_model_name("QC") == "relevance-qc" and default_model_name("qi") == "relevance-qi"


def _version_of_new_run(client: MlflowClient, experiment_id: str, name: str, alias: str | None):
    run = client.create_run(experiment_id)
    client.set_terminated(run.info.run_id)
    logged = mlflow.initialize_logged_model(name=name, source_run_id=run.info.run_id, experiment_id=experiment_id)
    version = create_version(client, name, f"models:/{logged.model_id}", run.info.run_id, logged.model_id,
                             {"t": "1"}, "a test version", alias)
    return run.info.run_id, version, logged.model_id


def test_registry_uris_resolve_to_the_run_a_version_points_to_and_aliases_move(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    try:
        client = MlflowClient(uri)
        experiment = client.create_experiment("relevance-qc", artifact_location=str(tmp_path / "mlartifacts"))
        first, v1, model_id = _version_of_new_run(client, experiment, "relevance-qc", "champion")
        assert str(v1.version) == "1" and v1.run_id == first and v1.aliases == ["champion"]
        assert resolve_run_reference(client, "models:/relevance-qc@champion") == first
        assert resolve_run_reference(client, "models:/relevance-qc/1") == first
        assert resolve_run_reference(client, f"models:/{model_id}") == first
        second, v2, _ = _version_of_new_run(client, experiment, "relevance-qc", "champion")
        assert str(v2.version) == "2"
        assert resolve_run_reference(client, "models:/relevance-qc@champion") == second  # the alias moved
        assert resolve_run_reference(client, "models:/relevance-qc/1") == first
        assert resolve_run_reference(client, "latest") == "latest"  # not a registry URI: as it was
        assert resolve_run_reference(client, first) == first

        with pytest.raises(RegistryError, match=r"no registered model 'relevance-qi' .*registered: relevance-qc"):
            resolve_run_reference(client, "models:/relevance-qi@champion")
        with pytest.raises(RegistryError, match=r"relevance-qc has no alias 'prod' \(versions: 1, 2; @champion: v2\)"):
            resolve_run_reference(client, "models:/relevance-qc@prod")
        with pytest.raises(RegistryError, match=r"has no version 9 \(versions: 1, 2"):
            resolve_run_reference(client, "models:/relevance-qc/9")
        with pytest.raises(RegistryError, match="no logged model 'm-nope'"):
            resolve_run_reference(client, "models:/m-nope")
    finally:
        mlflow.set_tracking_uri(None)


@pytest.mark.parametrize("overrides, message", [
    ([], "say what to register: run=<run id|latest>"),
    (["run=latest", "sweep=latest"], "; not both"),
    (["run=[a,b]"], r"run=\['a', 'b'\]: a version points to one run; .*run=<parent id>"),
    (["run=latest", "alias=v3"], "alias='v3': .*not `latest` or `v<number>`"),
    (["run=latest", "alias=has space"], "alias='has space'"),
])
def test_register_settings_are_checked_before_the_store_is_opened(overrides, message):
    with pytest.raises((RegisterError, RegistryError), match=message):
        check_request(compose_register(overrides))


def test_register_config_composes_with_a_task_and_defaults():
    cfg = compose_register(["sweep=latest", "task=qi", "alias=champion"])
    assert cfg.task.name == "QI" and cfg.run is None and cfg.name is None and cfg.alias == "champion"
    check_request(cfg)


# --------------------------------------------------------------------------- integration: real runs

def registered_mlmodel(client: MlflowClient, name: str, version: str, work: Path) -> dict:
    mlflow.set_tracking_uri(client.tracking_uri)  # models:/ URIs are read from the fluent registry
    try:
        path = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(work))
    finally:
        mlflow.set_tracking_uri(None)
    return yaml.safe_load((Path(path) / "MLmodel").read_text())


def small_input(cache: Path, client: MlflowClient, run_id: str, work: Path, rows: int = 40) -> Path:
    """`rows` of the run's test rows, as a competition file."""
    work.mkdir(parents=True, exist_ok=True)
    logged = Path(client.download_artifacts(run_id, "evaluation/test_predictions.jsonl", str(work)))
    full = subset_file(next((cache / "demo").rglob("qc_dev.jsonl")), logged, work / "test_rows.jsonl")
    path = work / "input.jsonl"
    path.write_text("".join(full.read_text().splitlines(keepends=True)[:rows]))
    return path


@pytest.mark.integration  # a smoke sweep, two registrations, two predictions
def test_a_sweeps_best_run_on_dev_is_registered_tagged_and_predict_scores_it_by_alias(smoke_sweep, shared_cache,
                                                                                      tmp_path):
    root, client = smoke_sweep.root, smoke_sweep.client
    common = [f"paths.root={root}", f"paths.cache_dir={shared_cache}"]
    result = run_cli("register", ["sweep=latest", "alias=champion", *common], cwd=root)
    best = max(smoke_sweep.children, key=lambda r: r.data.metrics["dev_f1"])
    other = next(r for r in smoke_sweep.children if r.info.run_id != best.info.run_id)
    found = client.get_model_version_by_alias("relevance-qc", "champion")
    assert found.run_id == best.info.run_id and f"from run {best.info.run_id}" in result.stdout
    assert "best dev_f1" in found.tags["relevance.chosen_by"]
    for key in ("dev_f1", "test_f1", "test_roc_auc", "dev_threshold"):
        assert float(found.tags[key]) == pytest.approx(best.data.metrics[key], rel=1e-5)
    for key, value in best.data.tags.items():
        if key.startswith("relevance.lineage.") or key in ("relevance.run_identity", "relevance.model_digest"):
            assert found.tags[key] == value
    assert any(k.startswith("relevance.lineage.") for k in found.tags)
    flavor = registered_mlmodel(client, "relevance-qc", found.version, tmp_path / "mlmodel")["flavors"]
    assert flavor["python_function"]["loader_module"] == "relevance.serving"  # no pickle, no code from the store
    assert "python_model" not in flavor["python_function"] and flavor["python_function"].get("code") is None
    assert not list((tmp_path / "mlmodel").rglob("*.pkl")) and not list((tmp_path / "mlmodel").rglob("*.py"))

    # the alias moves to a new version; the old version still names its run
    run_cli("register", [f"run={other.info.run_id}", "alias=champion", *common], cwd=root)
    moved = client.get_model_version_by_alias("relevance-qc", "champion")
    assert int(moved.version) == int(found.version) + 1 and moved.run_id == other.info.run_id

    input_file = small_input(shared_cache, client, best.info.run_id, tmp_path / "in")
    for reference, expected in (("models:/relevance-qc@champion", other),
                                (f"models:/relevance-qc/{found.version}", best)):
        output = tmp_path / f"out-{expected.info.run_id}.jsonl"
        scored = run_cli("predict", [f"run={reference}", f"input={input_file}", f"output={output}", *common], cwd=root)
        assert f"run {expected.info.run_id}: wrote {output}" in scored.stdout
        assert len(output.read_text().splitlines()) == 40

    missing = run_cli("predict", ["run=models:/relevance-qc@nope", f"input={input_file}",
                                  f"output={tmp_path / 'x.jsonl'}", *common], cwd=root, check=False)
    assert missing.returncode != 0 and "relevance-qc has no alias 'nope'" in missing.stderr


@pytest.fixture(scope="module")
def fold_sweep(tmp_path_factory, shared_cache):
    return run_sweep(tmp_path_factory.mktemp("register-folds"), shared_cache, *FOLD_SWEEP)


@pytest.mark.integration  # a 2-fold sweep, its registration, predict and pyfunc on the ensemble
def test_a_fold_ensemble_registers_as_its_sweep_parent_and_scores_as_predict_does(fold_sweep, shared_cache, tmp_path):
    root, client, parent = fold_sweep.root, fold_sweep.client, fold_sweep.parent.info.run_id
    common = [f"paths.root={root}", f"paths.cache_dir={shared_cache}"]
    refused = run_cli("register", ["sweep=latest", *common], cwd=root, check=False)
    assert refused.returncode != 0 and "register the fold ensemble with run=<its sweep parent id>" in refused.stderr

    run_cli("register", [f"run={parent}", "alias=champion", *common], cwd=root)
    version = client.get_model_version_by_alias("relevance-qc", "champion")
    members = sorted(fold_sweep.children, key=lambda r: int(r.data.params["data.fold"]))
    assert version.run_id == parent
    assert version.tags["relevance.ensemble.members"] == ",".join(r.info.run_id for r in members)
    assert 0 < float(version.tags["oof_f1"]) <= 1 and version.tags["folds.test_f1"].count(",") == 1

    input_file = small_input(shared_cache, client, members[0].info.run_id, tmp_path / "in")
    outputs = {}
    for reference in (parent, "models:/relevance-qc@champion"):
        outputs[reference] = tmp_path / f"{len(outputs)}.jsonl"
        scored = run_cli("predict", [f"run={reference}", f"input={input_file}", f"output={outputs[reference]}",
                                     *common], cwd=root)
        assert "ensemble of 2 fold runs, folds 0,1 of 2" in scored.stdout
    expected = outputs[parent].read_text()
    assert outputs["models:/relevance-qc@champion"].read_text() == expected

    import pandas as pd

    model = mlflow.pyfunc.load_model("models:/relevance-qc@champion", model_config={"cache_dir": str(shared_cache)})
    rows = [json.loads(line) for line in input_file.read_text().splitlines()]
    served = model.predict(pd.DataFrame(rows)).to_dict(orient="records")
    assert [(r["id"], r["prediction"], r["score"]) for r in served] == [
        (r["id"], r["prediction"], r["score"]) for r in map(json.loads, expected.splitlines())]


@pytest.fixture(autouse=True)
def _tracking_uri_of_the_sweep(request):
    """pyfunc.load_model reads models:/ URIs from the fluent tracking URI: the fold sweep's store."""
    if "fold_sweep" in request.fixturenames:
        mlflow.set_tracking_uri(request.getfixturevalue("fold_sweep").tracking_uri)
        yield
        mlflow.set_tracking_uri(None)
    else:
        yield
