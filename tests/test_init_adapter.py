"""Cross-task initialisation: `model.init_adapter=<run id>` starts LoRA and the classifier head from a
logged run's adapter (the 1st place trained QI first, then QC). Checked before any model loads: the
run exists, logged a LoRA adapter, and fits (same backbone, head and LoRA shape)."""

from __future__ import annotations

import pytest
import torch
from mlflow.tracking import MlflowClient

from relevance.artifacts import InitAdapterError, check_init_adapter, fetch_init_adapter
from relevance.config import ConfigError, validate_config
from relevance.tracking.folds import FoldRunsError, fold_runs
from tests.conftest import compose_train, run_cli, tiny_run_args


@pytest.fixture(scope="module")
def source_run(tmp_path_factory, shared_cache):
    """A finished QI run of the tiny model: the adapter a QC run starts from."""
    root = tmp_path_factory.mktemp("init-adapter")
    run_cli("train", tiny_run_args(root, shared_cache, "task=qi", "trainer.epochs=1"), cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qi").experiment_id])
    return root, client, run


def qc_config(root, cache, *overrides: str):
    return compose_train(["model=tiny_random", "trainer=smoke", "task=qc", f"paths.root={root}",
                          f"paths.cache_dir={cache}", f"tracking.tracking_uri=sqlite:///{root}/mlflow.db", *overrides])


def test_lora_and_head_start_as_the_source_run_saved_them(source_run, shared_cache, tmp_path):
    from peft import get_peft_model_state_dict
    from peft.utils import load_peft_weights

    from relevance.modeling.loader import load_for_training

    root, _, run = source_run
    cfg = qc_config(root, shared_cache, f"model.init_adapter={run.info.run_id}")
    validate_config(cfg)
    folder = fetch_init_adapter(cfg, tmp_path / "init")
    saved = load_peft_weights(str(folder), device="cpu")
    assert any("lora_B" in key for key in saved) and any(".score." in key for key in saved)  # LoRA and the head
    started = get_peft_model_state_dict(load_for_training(cfg, folder).model)  # step 0 of the QC run
    assert set(started) == set(saved)
    for key, value in saved.items():
        assert torch.equal(started[key].float(), value.float()), key
    fresh = get_peft_model_state_dict(load_for_training(qc_config(root, shared_cache)).model)
    assert not all(torch.equal(fresh[key].float(), value.float()) for key, value in saved.items())


def test_a_qc_run_trains_from_a_qi_run(source_run, shared_cache):
    root, client, run = source_run
    run_cli("train", tiny_run_args(root, shared_cache, "task=qc", "trainer.epochs=1",
                                   f"model.init_adapter={run.info.run_id}"), cwd=root)
    (qc,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    assert qc.info.status == "FINISHED" and qc.data.params["model.init_adapter"] == run.info.run_id
    assert "dev_f1" in qc.data.metrics


@pytest.mark.parametrize("overrides,message", [
    (["model.init_adapter=deadbeef"], "model.init_adapter=deadbeef: no such run"),
    (["model.tiny.hidden_size=32", "INIT"], "it fine-tuned another backbone (model.tiny="),
    (["head=yes_no", "INIT"], "its head differs (head.name='classifier', this run: 'yes_no')"),
    (["peft.r=8", "INIT"], "its LoRA has peft.r=16, this run 8"),
    (["peft.alpha=8", "INIT"], "its LoRA has peft.alpha=32, this run 8"),
    (["peft.layers_to_transform=[1]", "INIT"], "its LoRA has peft.layers_to_transform=None, this run [1]"),
])
def test_an_adapter_that_does_not_fit_is_refused_naming_the_key(source_run, shared_cache, overrides, message):
    root, _, run = source_run
    overrides = [f"model.init_adapter={run.info.run_id}" if o == "INIT" else o for o in overrides]
    with pytest.raises(InitAdapterError, match="^model.init_adapter=") as error:
        check_init_adapter(qc_config(root, shared_cache, *overrides))
    assert message in str(error.value)


def test_init_adapter_needs_lora():
    with pytest.raises(ConfigError, match="model.init_adapter=abc needs peft=lora"):
        validate_config(compose_train(["peft=none", "quant=none", "model.init_adapter=abc"]))


def test_a_missing_run_fails_before_the_model_loads(source_run, tmp_path):
    root, _, _ = source_run
    own_cache = tmp_path / "empty_cache"
    result = run_cli("train", tiny_run_args(root, own_cache, "model.init_adapter=deadbeef"), cwd=root, check=False)
    assert result.returncode != 0 and "model.init_adapter=deadbeef: no such run" in result.stderr
    assert not (own_cache / "models").exists(), "the model was loaded before the error"


def test_a_run_without_folds_is_no_source_of_out_of_fold_scores(source_run):
    _, client, run = source_run
    for key in ("augment.noise_filter.oof_from", "run"):
        with pytest.raises(FoldRunsError, match=f"^{key}: run {run.info.run_id} is not a fold run"):
            fold_runs(client, [run.info.run_id], key)
