"""The MLflow run lifecycle against a real SQLite store in a temp dir; a run's identity."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from relevance.augment.base import STRATEGIES, load_strategy_modules
from relevance.tracking.identity import config_hash, data_digest, run_identity
from relevance.tracking.mlflow_run import TrackedRun, flatten, run_name_from_overrides
from relevance.tracking.tags import MAX_PARAMS_PER_CALL
from tests.conftest import compose_train


def tracking_cfg(tmp_path):
    return OmegaConf.create({"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment_name": "t",
                             "artifact_location": str(tmp_path / "artifacts")})


def test_flatten_nested_config():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}) == {"a.b": 1, "a.c.d": [1, 2], "e": "x"}


def test_more_params_than_one_batch_are_all_logged(tmp_path, monkeypatch):
    calls = []
    with TrackedRun(tracking_cfg(tmp_path), "many", {"k": "v"}) as run:
        original = run.client.log_batch
        monkeypatch.setattr(run.client, "log_batch", lambda *a, **kw: (calls.append(len(kw.get("params") or [])),
                                                                       original(*a, **kw)))
        run.log_params({f"p{i}": i for i in range(250)})
    params = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run.run_id).data.params
    assert len(params) == 250 and params["p249"] == "249"
    assert max(calls) <= MAX_PARAMS_PER_CALL and len(calls) == 3


def test_a_crash_marks_the_run_failed_with_the_error(tmp_path):
    with pytest.raises(RuntimeError):
        with TrackedRun(tracking_cfg(tmp_path), "boom", {}) as run:
            raise RuntimeError("data/x.jsonl:3: field 'label': bad")
    logged = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run.run_id)
    assert logged.info.status == "FAILED"
    assert "x.jsonl:3" in logged.data.tags["error"]


def test_parent_run_from_the_project_variable(tmp_path, monkeypatch):
    with TrackedRun(tracking_cfg(tmp_path), "parent", {}) as parent:
        pass
    monkeypatch.setenv("RELEVANCE_PARENT_RUN_ID", parent.run_id)
    with TrackedRun(tracking_cfg(tmp_path), "child", {}) as child:
        pass
    tags = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(child.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.run_id


def test_run_name_comes_from_overrides_without_storage_paths():
    cfg = compose_train()
    name = run_name_from_overrides(["model=tiny_random", "paths.root=/tmp/x", "augment=[original]"], cfg)
    assert name == "model=tiny_random,augment=[original]"
    assert run_name_from_overrides([], cfg) == "gemma3_270m-qc-original"


def test_config_hash_ignores_where_things_are_stored():
    a = compose_train(["paths.root=/a", "paths.cache_dir=/a/c", "paths.output_dir=/a/o"])
    b = compose_train(["paths.root=/b", "paths.cache_dir=/b/c", "paths.output_dir=/b/o"])
    c = compose_train(["paths.root=/b", "paths.cache_dir=/b/c", "paths.output_dir=/b/o", "trainer.lr=0.1"])
    assert config_hash(a) == config_hash(b) != config_hash(c)


def competition_config(data_dir, *extra: str):
    return compose_train(["data=competition", f"data.dir={data_dir}", *extra])


def test_the_data_digest_is_the_files_content_not_their_path(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "train.jsonl").write_text('{"id": 1}\n')
        (tmp_path / folder / "dev.jsonl").write_text('{"id": 2}\n')
    a, b = competition_config(tmp_path / "a").data, competition_config(tmp_path / "b").data
    assert data_digest(a) == data_digest(b)
    before = data_digest(a)
    with open(tmp_path / "a" / "train.jsonl", "a") as handle:  # new rows at the same path
        handle.write('{"id": 3}\n')
    grown = data_digest(a)
    assert grown != before
    (tmp_path / "a" / "dev.jsonl").unlink()  # no error here: the run reports it, as a FAILED run
    assert data_digest(a) not in (before, grown)


def test_generated_demo_data_is_digested_by_its_generator_settings():
    assert data_digest(compose_train(["paths.cache_dir=/a"]).data) == data_digest(
        compose_train(["paths.cache_dir=/b"]).data)
    assert data_digest(compose_train().data) != data_digest(compose_train(["data.generate.seed=1"]).data)


def test_the_run_identity_changes_with_a_strategy_version_and_the_code(monkeypatch):
    cfg = compose_train()
    load_strategy_modules()
    before = run_identity(cfg)
    assert before.strategy_versions == {"original": STRATEGIES["original"].version}
    assert before.tags()["relevance.run_identity"] == before.digest
    fixed = before.strategy_versions["original"] + "-fixed"
    monkeypatch.setattr(STRATEGIES["original"], "version", fixed)
    bumped = run_identity(cfg)
    assert bumped.config_hash == before.config_hash and bumped.digest != before.digest
    assert f"strategies original v{fixed}, numerics " in bumped.describe()
    monkeypatch.setattr("relevance.tracking.identity.package_source_digest", lambda: "edited")
    assert run_identity(cfg).digest not in (before.digest, bumped.digest)
