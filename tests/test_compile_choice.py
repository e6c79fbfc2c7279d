"""`trainer.torch_compile=auto`: a run decides from its own size whether compiling pays, logs the choice, why,
and how fast it trained; the count of steps it plans is the count the Trainer trains; compiled decoder layers
run only where gradients are computed, so scoring stays eager."""

from __future__ import annotations

import pytest
import torch
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from relevance.config import ConfigError, validate_config
from relevance.training.compile_choice import choose_compile
from relevance.training.compiled_layers import CompiledLayers, repeated_blocks
from relevance.training.step_rate import compiled_graphs, summarise_step_seconds
from tests.conftest import compose_train, run_cli, tiny_run_args


def _trainer(setting, least=300):
    return OmegaConf.create({"torch_compile": setting, "compile_min_steps": least})


@pytest.mark.parametrize("setting, steps, on_gpu, bits, compiles, reason", [
    (True, 5, False, 4, True, "trainer.torch_compile=true"),
    (False, 10_000, False, None, False, "trainer.torch_compile=false"),
    ("auto", 299, False, None, False, "auto: 299 optimizer steps < trainer.compile_min_steps=300"),
    ("auto", 300, False, None, True, "auto: 300 optimizer steps >= trainer.compile_min_steps=300"),
    ("auto", 10_000, True, None, False, "auto: eager on a GPU"),
    ("auto", 10_000, False, 4, False, "auto: eager over a 4-bit base"),
    ("auto", 10_000, False, 8, False, "auto: eager over a 8-bit base"),
])
def test_the_choice_follows_the_setting_and_the_run_size(setting, steps, on_gpu, bits, compiles, reason):
    choice = choose_compile(_trainer(setting), steps, on_gpu, bits)
    assert choice.compile is compiles and choice.reason.startswith(reason) and choice.planned_steps == steps


@pytest.mark.parametrize("key, value, message", [
    ("trainer.torch_compile", "sometimes", "trainer.torch_compile='sometimes': use true, false or auto"),
    ("trainer.compile_min_steps", 0, "trainer.compile_min_steps=0: must be at least 1"),
])
def test_a_bad_compile_setting_is_refused_naming_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(compose_train([f"{key}={value}"]))


def test_slow_steps_count_as_compiling_and_the_rate_is_the_steady_one():
    summary = summarise_step_seconds([40.0, 21.0, 1.0, 1.2, 0.8, 1.0, 1.0])
    assert summary["train_first_step_seconds"] == 40.0
    assert summary["train_compile_seconds"] == pytest.approx((40 - 1.0) + (21 - 1.0))  # over the median step
    assert summary["train_steps_per_s"] == pytest.approx(5 / 5.0)  # the five steps that were not slow
    # a recompile late in the run: every fast step counts, before it as after it (0.5 if only the steps after)
    late = summarise_step_seconds([40.0, 1.0, 1.0, 1.0, 1.0, 25.0, 2.0, 2.0])
    assert late["train_steps_per_s"] == pytest.approx(6 / 8.0)
    assert late["train_compile_seconds"] == pytest.approx((40 - 1.5) + (25 - 1.5))
    eager = summarise_step_seconds([5.0, 1.0, 1.0, 1.0], compiled=False)  # a slow first step is warm-up, not compiling
    assert eager["train_compile_seconds"] == 0.0 and eager["train_steps_per_s"] == pytest.approx(1.0)


def test_a_short_run_stays_eager_and_logs_why_and_its_planned_steps_are_the_steps_it_trained(tmp_path, shared_cache):
    run_cli("train", tiny_run_args(tmp_path, shared_cache, "trainer.torch_compile=auto", "quant=none"), cwd=tmp_path)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    params, metrics = run.data.params, run.data.metrics
    assert params["trainer.compile_chosen"] == "False"
    assert run.data.tags["relevance.compile_reason"].startswith(
        f"auto: {params['trainer.planned_steps']} optimizer steps < trainer.compile_min_steps=300")
    (trained,) = client.get_metric_history(run.info.run_id, "train_seconds")
    assert int(params["trainer.planned_steps"]) == trained.step > 0
    assert metrics["train_compiled_graphs"] == 0 and metrics["train_compile_seconds"] == 0.0
    assert metrics["train_steps_per_s"] > 0 and metrics["train_first_step_seconds"] > 0


def _tiny_model():
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, num_labels=2, pad_token_id=0)
    return Qwen2ForSequenceClassification(config)


def test_compiled_layers_compile_where_gradients_flow_and_score_eagerly():
    model = _tiny_model()
    assert len(repeated_blocks(model)) == 3
    ids = torch.randint(1, 64, (4, 9))
    with torch.inference_mode():
        eager_scores = model(input_ids=ids).logits
    layers = CompiledLayers(model)
    layers.on()
    switched = [block.__dict__["forward"] for block in repeated_blocks(model)]
    layers.on()  # a second on() (a train() entered again) keeps the one switch, never a switch around a switch
    assert [block.__dict__["forward"] for block in repeated_blocks(model)] == switched
    before = compiled_graphs()
    with torch.inference_mode():  # scoring: the eager layers, bit for bit, nothing compiled
        assert torch.equal(model(input_ids=ids).logits, eager_scores)
    assert compiled_graphs() == before
    loss = model(input_ids=ids).logits.sum()  # training: compiled
    loss.backward()
    assert compiled_graphs() > before
    assert all(p.grad is not None for n, p in model.named_parameters() if "layers" in n)
    layers.off()
    assert all("forward" not in block.__dict__ for block in repeated_blocks(model))
