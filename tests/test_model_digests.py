"""What the project loads, it verifies (issue 22): training records the SHA-256 of every file of the model
folder (`model/digests.json`, itself digested in the run's tag `relevance.model_digest`), and `predict` and
`model.init_adapter` check a downloaded folder against them before loading it: a file changed, added or
missing is an error naming the file; a run logged before digests is refused unless `allow_unverified=true`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from relevance.artifacts import fetch_init_adapter
from relevance.model_digests import (DIGESTS_FILE, MODEL_DIGEST_TAG, ModelDigestError, file_sha256,
                                     verify_model_folder, write_digests)
from tests.crafted_runs import craft_run, dev_file, predict_cli, train_tiny_run
from tests.test_init_adapter import qc_config


@pytest.fixture(scope="module")
def store(tmp_path_factory, shared_cache):
    root = tmp_path_factory.mktemp("model-digests")
    client, run = train_tiny_run(root, shared_cache)
    return root, client, run


def test_training_records_every_file_of_the_model_folder(store, tmp_path):
    _, client, run = store
    folder = Path(client.download_artifacts(run.info.run_id, "model", str(tmp_path)))
    recorded = json.loads((folder / DIGESTS_FILE).read_text())
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {DIGESTS_FILE}
    assert recorded["algorithm"] == "sha256" and set(recorded["files"]) == files
    assert {"adapter_model.safetensors", "run_config.yaml", "threshold.json"} <= files
    assert all(recorded["files"][name] == file_sha256(folder / name) for name in files)
    assert run.data.tags[MODEL_DIGEST_TAG] == file_sha256(folder / DIGESTS_FILE)


def replace_in(name: str, old: str, new: str):
    def edit(folder: Path):
        path = folder / name
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
    return edit


@pytest.mark.parametrize("edit, named", [
    (replace_in("threshold.json", '"threshold": ', '"threshold": 0.0001, "was": '),
     "model/threshold.json differs from the digest training recorded"),
    (lambda folder: (folder / "extra_weights.safetensors").write_bytes(b"\0" * 16),
     "model/extra_weights.safetensors was not recorded by training (an added file)"),
    (lambda folder: (folder / "threshold.json").unlink(), "model/threshold.json is missing"),
])
def test_predict_refuses_a_model_folder_changed_behind_its_digests(store, shared_cache, tmp_path, edit, named):
    root, client, run = store
    crafted = craft_run(client, run, tmp_path / "work", edit, keep_digests=True)
    result = predict_cli(root, shared_cache, crafted, dev_file(shared_cache))
    assert result.returncode != 0
    assert f"run {crafted}: its model folder is not the one training logged: {named}" in result.stderr
    assert not (root / f"pred-{crafted}.jsonl").exists()


def test_predict_refuses_digests_that_are_not_the_ones_the_run_tagged(store, shared_cache, tmp_path):
    """Digests rewritten to match a changed file, without the run's tag: the digests file is named."""
    root, client, run = store

    def edit(folder: Path):
        replace_in("threshold.json", '"threshold": ', '"threshold": 0.0001, "was": ')(folder)
        write_digests(folder)

    crafted = craft_run(client, run, tmp_path / "work", edit, keep_digests=True)
    result = predict_cli(root, shared_cache, crafted, dev_file(shared_cache))
    assert result.returncode != 0
    assert f"run {crafted}: model/{DIGESTS_FILE} is not the one training recorded" in result.stderr


def test_a_run_logged_before_digests_needs_allow_unverified(store, shared_cache, tmp_path):
    root, client, run = store
    older = craft_run(client, run, tmp_path / "work", lambda folder: None, record_digests=False)
    refused = predict_cli(root, shared_cache, older, dev_file(shared_cache))
    assert refused.returncode != 0
    assert f"run {older}: its model folder cannot be verified (no {DIGESTS_FILE} in its model folder" in refused.stderr
    assert "pass allow_unverified=true to load it anyway" in refused.stderr
    allowed = predict_cli(root, shared_cache, older, dev_file(shared_cache), "allow_unverified=true")
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    assert f"WARNING: run {older}: its model folder is not verified" in allowed.stdout
    assert f"run {older}: wrote" in allowed.stdout


def test_init_adapter_verifies_the_folder_it_starts_from(store, shared_cache, tmp_path):
    root, client, run = store
    changed = craft_run(client, run, tmp_path / "changed", replace_in("threshold.json", '"threshold": ',
                                                                     '"threshold": 0.0001, "was": '),
                        keep_digests=True)
    with pytest.raises(ModelDigestError, match="model/threshold.json differs from the digest training recorded"):
        fetch_init_adapter(qc_config(root, shared_cache, f"model.init_adapter={changed}"), tmp_path / "a")
    older = craft_run(client, run, tmp_path / "older", lambda folder: None, record_digests=False)
    with pytest.raises(ModelDigestError, match=f"run {older}: its model folder cannot be verified .* start from a "
                                               "run logged since"):
        fetch_init_adapter(qc_config(root, shared_cache, f"model.init_adapter={older}"), tmp_path / "b")
    folder = fetch_init_adapter(qc_config(root, shared_cache, f"model.init_adapter={run.info.run_id}"), tmp_path / "c")
    assert (folder / "adapter_model.safetensors").is_file()


def test_verify_names_each_problem(tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.json").write_text("{}")
    (folder / "sub" / "b.bin").write_bytes(b"weights")
    (folder / "gone.txt").write_text("x")
    tag = write_digests(folder)
    verify_model_folder(folder, "r1", tag)  # as written: fine
    (folder / "sub" / "b.bin").write_bytes(b"other weights")
    (folder / "gone.txt").unlink()
    os.symlink(folder / "a.json", folder / "link.json")
    with pytest.raises(ModelDigestError) as error:
        verify_model_folder(folder, "r1", tag)
    message = str(error.value)
    assert "model/sub/b.bin differs" in message and "model/gone.txt is missing" in message
    assert "model/link.json was not recorded by training" in message
    with pytest.raises(ModelDigestError, match="no tag relevance.model_digest"):
        verify_model_folder(folder, "r1", None)
