"""A run in the store is data, not code (issue 22, docs/security.md): runs crafted as a writer of the
store would (a real run's model folder, edited, logged again with fresh digests) are refused by the real
`relevance.predict` CLI before any of their files is imported: remote code (the stored
`model.trust_remote_code`, a config.json `auto_map` with a Python file), a class path outside the presets,
a package outside the presets, an interpolation. Each crafted Python file writes a marker file when
imported: it never appears. Remote code runs only when the person scoring says so on their command line."""

from __future__ import annotations

import json
import shutil

import pytest

from relevance.artifacts import check_init_adapter
from relevance.modeling.class_allowlist import DisallowedClassError, allowed_model_classes, model_class
from relevance.stored_config import StoredConfigError, check_stored_run, load_stored_config
from tests.conftest import CONF_DIR
from tests.crafted_runs import (craft_run, dev_file, edit_run_config, marker_module, marker_package, no_marker,
                                predict_cli, train_tiny_run)
from tests.test_init_adapter import qc_config


@pytest.fixture(scope="module")
def store(tmp_path_factory, shared_cache):
    root = tmp_path_factory.mktemp("store-is-data")
    client, run = train_tiny_run(root, shared_cache)
    return root, client, run


def set_model_key(key, value):
    def edit(folder):
        edit_run_config(folder, lambda config: config["model"].__setitem__(key, value))
    return edit


def test_stored_remote_code_is_refused_and_never_runs(store, shared_cache, tmp_path):
    root, client, run = store
    marker = tmp_path / "remote-code-ran"

    def edit(folder):  # a full model's folder (no adapter): the loader reads its config.json, auto_map and all
        set_model_key("trust_remote_code", True)(folder)
        (folder / "adapter_config.json").unlink()
        marker_module(folder, "evil_model", marker)
        (folder / "config.json").write_text(json.dumps({
            "model_type": "evil", "architectures": ["EvilModel"],
            "auto_map": {"AutoConfig": "evil_model.Model", "AutoModelForSequenceClassification": "evil_model.Model"}}))

    crafted = craft_run(client, run, tmp_path / "work", edit)
    result = predict_cli(root, shared_cache, crafted, dev_file(shared_cache))
    assert result.returncode != 0
    assert "model.trust_remote_code=true" in result.stderr and "pass trust_remote_code=true" in result.stderr
    assert "model/evil_model.py" in result.stderr and "model/config.json's auto_map" in result.stderr
    assert "Nothing of the run was imported or loaded" in result.stderr
    assert no_marker(marker)


def test_code_in_the_model_folder_is_refused_whatever_the_stored_flag_says(store, shared_cache, tmp_path):
    """The stored config leaves trust_remote_code false; the folder carries an auto_map and its code."""
    root, client, run = store
    marker = tmp_path / "auto-map-ran"

    def edit(folder):
        marker_module(folder, "evil_tokenizer", marker)
        config = json.loads((folder / "tokenizer_config.json").read_text())
        config["auto_map"] = {"AutoTokenizer": ["evil_tokenizer.Model", None]}
        (folder / "tokenizer_config.json").write_text(json.dumps(config))

    crafted = craft_run(client, run, tmp_path / "work", edit)
    result = predict_cli(root, shared_cache, crafted, dev_file(shared_cache))
    assert result.returncode != 0
    assert "model/tokenizer_config.json's auto_map" in result.stderr and "model/evil_tokenizer.py" in result.stderr
    assert "pass trust_remote_code=true" in result.stderr
    assert no_marker(marker)


@pytest.mark.parametrize("key, value, named", [
    ("classifier_class", "subprocess.Popen", "model.classifier_class='subprocess.Popen'"),
    ("classifier_class", "store_marker.Model", "model.classifier_class='store_marker.Model'"),
    ("attn_implementation", "kernels-community/evil", "model.attn_implementation='kernels-community/evil'"),
])
def test_a_class_outside_the_presets_is_refused_before_it_is_imported(store, shared_cache, tmp_path, key, value,
                                                                      named):
    """`store_marker` lies in predict's working folder, which `python -m` puts on sys.path: importing the
    stored class path would write the marker."""
    root, client, run = store
    marker = tmp_path / "class-imported"
    module = marker_module(root, "store_marker", marker)
    try:
        crafted = craft_run(client, run, tmp_path / "work", set_model_key(key, value))
        result = predict_cli(root, shared_cache, crafted, dev_file(shared_cache))
    finally:
        module.unlink()
    assert result.returncode != 0
    assert named in result.stderr and "add a preset naming it to conf/model/" in result.stderr
    assert no_marker(marker)


def test_a_package_outside_the_presets_is_never_imported_for_its_weights(store, shared_cache, tmp_path):
    root, client, run = store
    marker = tmp_path / "package-imported"
    package = marker_package(root, "store_package", marker)  # holds no GGUF file: the loader would import it

    def edit(folder):
        edit_run_config(folder, lambda config: config["model"].update(source="gguf_package", id="store_package",
                                                                      gguf_file="x.gguf"))
    try:
        crafted = craft_run(client, run, tmp_path / "work", edit)
        result = predict_cli(root, shared_cache, crafted, dev_file(shared_cache))
    finally:
        shutil.rmtree(package)
    assert result.returncode != 0
    assert "model.id='store_package' (source gguf_package)" in result.stderr
    assert no_marker(marker)


def test_an_interpolation_in_the_stored_config_is_refused_not_resolved(store, shared_cache, tmp_path):
    root, client, run = store
    secret = "value-of-a-variable-the-store-should-never-see"
    crafted = craft_run(client, run, tmp_path / "work", set_model_key("pad_token", "${oc.env:STORE_PROBE}"))
    result = predict_cli(root, shared_cache, crafted, dev_file(shared_cache), env={"STORE_PROBE": secret})
    assert result.returncode != 0
    assert f"run {crafted}: model/run_config.yaml: model.pad_token='${{oc.env:STORE_PROBE}}' holds an interpolation" \
        in result.stderr
    assert secret not in result.stdout + result.stderr


def test_an_init_adapter_with_an_interpolation_is_refused(store, shared_cache, tmp_path):
    root, client, run = store
    crafted = craft_run(client, run, tmp_path / "work", set_model_key("revision", "${oc.env:HOME}"))
    with pytest.raises(StoredConfigError, match=rf"model.init_adapter={crafted}: model/run_config.yaml: "
                                                r"model.revision='\$\{oc.env:HOME\}' holds an interpolation"):
        check_init_adapter(qc_config(root, shared_cache, f"model.init_adapter={crafted}"), tmp_path)


def test_remote_code_runs_only_when_the_scorer_says_so_and_sees_what(store, shared_cache, tmp_path):
    """A run asking for trust_remote_code (and carrying no code): refused by default; with
    `trust_remote_code=true` on the command line, predict says what it trusts, then scores."""
    root, client, run = store
    crafted = craft_run(client, run, tmp_path / "work", set_model_key("trust_remote_code", True))
    refused = predict_cli(root, shared_cache, crafted, dev_file(shared_cache))
    assert refused.returncode != 0 and "model.trust_remote_code=true" in refused.stderr
    trusted = predict_cli(root, shared_cache, crafted, dev_file(shared_cache), "trust_remote_code=true")
    assert trusted.returncode == 0, trusted.stderr[-3000:]
    assert f"trust_remote_code=true (your command line): run {crafted} loads with trust_remote_code=True" \
        in trusted.stdout
    assert "model.trust_remote_code=true: the Python code of the backbone tiny_random:" in trusted.stdout
    assert f"run {crafted}: wrote" in trusted.stdout


def test_the_allow_list_is_the_presets_classes():
    assert allowed_model_classes() == {"transformers.AutoModelForSequenceClassification",
                                       "transformers.AutoModelForCausalLM"}
    preset = (CONF_DIR / "model" / "gemma3_12b.yaml").read_text()
    assert "classifier_class: transformers.AutoModelForSequenceClassification" in preset
    with pytest.raises(DisallowedClassError, match=r"model.classifier_class='os.system'"):
        model_class({"classifier_class": "os.system"}, "classifier_class")


def test_check_stored_run_lists_every_refusal_at_once(tmp_path):
    path = tmp_path / "run_config.yaml"
    path.write_text("model:\n  classifier_class: os.system\n  causal_lm_class: subprocess.Popen\n"
                    "  trust_remote_code: true\n  source: tiny_random\n  id: x\n")
    with pytest.raises(StoredConfigError) as error:
        check_stored_run(load_stored_config(path, "crafted"), None, "run crafted", trust_remote_code=False)
    message = str(error.value)
    for named in ("model.classifier_class='os.system'", "model.causal_lm_class='subprocess.Popen'",
                  "model.trust_remote_code=true"):
        assert named in message
