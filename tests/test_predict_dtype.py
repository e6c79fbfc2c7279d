"""Predict scores in the dtype the run trained (and tuned its threshold) in, never re-resolving
`quant.compute_dtype: auto` on the machine that scores: the model folder records the resolved
dtype, a machine without bf16 refuses a bf16 run before any model loads, and `compute_dtype=float32`
scores it anyway with a warning.

`RELEVANCE_ASSUME_NO_BF16=1` (relevance/hardware.py's test hook) plays the machine without bf16."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from relevance.hardware import ASSUME_NO_BF16_ENV, cpu_bf16_units, missing_bf16
from relevance.modeling.loader import load_for_inference
from relevance.modeling.quantization import choose_compute_dtype
from relevance.predict import (ComputeDtypeError, check_compute_dtype_override, scoring_compute_dtype,
                               trained_compute_dtype)
from tests.conftest import cli_env, run_cli, tiny_run_args
from tests.test_test_split import subset_file

NO_BF16 = {ASSUME_NO_BF16_ENV: "1"}

# --------------------------------------------------------------------------- in-process


def test_the_hook_hides_bf16_from_auto_and_from_the_check(monkeypatch):
    monkeypatch.setenv(ASSUME_NO_BF16_ENV, "1")
    assert cpu_bf16_units() == [] and ASSUME_NO_BF16_ENV in missing_bf16()
    dtype, reason = choose_compute_dtype("auto")
    assert dtype == torch.float32 and ASSUME_NO_BF16_ENV in reason
    assert cpu_bf16_units({"avx512_bf16"}) == ["avx512_bf16"]  # explicit flags (tests of the flag logic) still count


def test_the_trained_dtype_is_the_saved_one_else_the_logged_param():
    saved = OmegaConf.create({"quant": {"compute_dtype": "float32"}})
    assert trained_compute_dtype(saved, {"quant.compute_dtype_resolved": "bfloat16"}) == "float32"
    older = OmegaConf.create({"quant": {"compute_dtype": "auto"}})
    assert trained_compute_dtype(older, {"quant.compute_dtype_resolved": "bfloat16"}) == "bfloat16"
    assert trained_compute_dtype(older, {}) is None


def test_scoring_keeps_the_trained_dtype_whatever_this_machine_would_choose(monkeypatch):
    monkeypatch.setenv(ASSUME_NO_BF16_ENV, "1")
    assert scoring_compute_dtype("r1", "float32", None) == "float32"
    with pytest.raises(ComputeDtypeError, match="run r1 was trained, and its threshold tuned, in bfloat16, but this "
                                                "machine lacks bf16 .*compute_dtype=float32"):
        scoring_compute_dtype("r1", "bfloat16", None)
    monkeypatch.delenv(ASSUME_NO_BF16_ENV)
    if missing_bf16() is None:  # this machine has bf16: a bf16 run scores in it
        assert scoring_compute_dtype("r1", "bfloat16", None) == "bfloat16"


def test_the_override_wins_and_warns_when_it_differs(monkeypatch, caplog):
    monkeypatch.setenv(ASSUME_NO_BF16_ENV, "1")
    with caplog.at_level("WARNING", logger="relevance.predict"):
        assert scoring_compute_dtype("r1", "bfloat16", "float32") == "float32"
    assert "scoring in float32 (compute_dtype=float32): scores, and predictions near the threshold, may differ " \
           "from the logged ones" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="relevance.predict"):
        assert scoring_compute_dtype("r1", "float32", "float32") == "float32"
    assert caplog.text == ""


def test_bad_overrides_and_auto_are_refused():
    with pytest.raises(ValueError, match="compute_dtype=auto: use one of float32, bfloat16, float16"):
        check_compute_dtype_override("auto")
    check_compute_dtype_override(None)
    with pytest.raises(ValueError, match="compute_dtype=auto would re-resolve"):
        load_for_inference(OmegaConf.create({}), Path("nowhere"), compute_dtype="auto")


# --------------------------------------------------------------------------- the real CLI


def predict_cli(args: list[str], cwd: Path, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    """`python -m relevance.predict`, as `run_cli` runs it, with `extra_env` (the hook) added."""
    return subprocess.run([sys.executable, "-m", "relevance.predict", *args], cwd=cwd,
                          env={**cli_env(), **extra_env}, capture_output=True, text=True)


def train_tiny(root: Path, cache: Path, *extra: str):
    run_cli("train", tiny_run_args(root, cache, "trainer.epochs=1", *extra), cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    return root, client, run


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory, shared_cache):
    """A run with `quant.compute_dtype: auto`, as users train."""
    return train_tiny(tmp_path_factory.mktemp("auto"), shared_cache)


@pytest.fixture(scope="module")
def bf16_run(auto_run, tmp_path_factory, shared_cache):
    """A run trained in bf16: the auto run where this machine resolved auto to bf16, else one asked for it."""
    if auto_run[2].data.params["quant.compute_dtype_resolved"] == "bfloat16":
        return auto_run
    return train_tiny(tmp_path_factory.mktemp("bf16"), shared_cache, "quant.compute_dtype=bfloat16")


def saved_run_config(client: MlflowClient, run_id: str, work: Path):
    return OmegaConf.load(client.download_artifacts(run_id, "model/run_config.yaml", str(work)))


def test_the_model_folder_records_the_dtype_training_resolved(auto_run, tmp_path, monkeypatch):
    monkeypatch.delenv(ASSUME_NO_BF16_ENV, raising=False)  # the CLI ran without it (cli_env)
    _, client, run = auto_run
    params = run.data.params
    assert params["quant.compute_dtype"] == "auto"  # what was asked for stays in the params and config/
    resolved = params["quant.compute_dtype_resolved"]
    assert resolved == str(choose_compute_dtype("auto")[0]).removeprefix("torch.")  # this machine's choice
    assert saved_run_config(client, run.info.run_id, tmp_path).quant.compute_dtype == resolved
    logged_config = OmegaConf.load(client.download_artifacts(run.info.run_id, "config/resolved_config.yaml",
                                                             str(tmp_path)))
    assert logged_config.quant.compute_dtype == "auto"


def test_predict_refuses_a_bf16_run_where_bf16_is_missing(bf16_run, shared_cache, tmp_path):
    root, client, run = bf16_run
    assert saved_run_config(client, run.info.run_id, tmp_path).quant.compute_dtype == "bfloat16"
    own_cache, output = tmp_path / "empty_cache", tmp_path / "scored.jsonl"
    input_file = next((shared_cache / "demo").rglob("qc_dev.jsonl"))
    result = predict_cli([f"run={run.info.run_id}", f"input={input_file}", f"output={output}", f"paths.root={root}",
                          f"paths.cache_dir={own_cache}"], root, NO_BF16)
    assert result.returncode != 0 and not output.exists()
    assert not (own_cache / "models").exists(), "the model loaded before the refusal"
    assert (f"run {run.info.run_id} was trained, and its threshold tuned, in bfloat16, but this machine lacks bf16"
            in result.stderr)
    assert "pass compute_dtype=float32 to score in float32 anyway (scores may differ from the logged ones)" \
        in result.stderr


def test_with_the_override_it_scores_in_float32_and_warns(bf16_run, shared_cache, tmp_path):
    root, client, run = bf16_run
    logged = Path(client.download_artifacts(run.info.run_id, "evaluation/test_predictions.jsonl", str(tmp_path)))
    input_file = subset_file(next((shared_cache / "demo").rglob("qc_dev.jsonl")), logged, tmp_path / "test.jsonl")
    output = tmp_path / "scored.jsonl"
    result = predict_cli([f"run={run.info.run_id}", f"input={input_file}", f"output={output}", f"paths.root={root}",
                          f"paths.cache_dir={shared_cache}", "compute_dtype=float32"], root, NO_BF16)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("was trained, and its threshold tuned, in bfloat16; scoring in float32 (compute_dtype=float32): scores, "
            "and predictions near the threshold, may differ from the logged ones") in result.stdout + result.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    logged_scores = {str(r["id"]): r["score"] for r in map(json.loads, logged.read_text().splitlines())}
    assert len(rows) == len(logged_scores) == int(run.data.params["data.test_rows"])
    # the same model in another precision: close to the logged scores (not necessarily equal)
    assert np.allclose([logged_scores[str(r["id"])] for r in rows], [r["score"] for r in rows], atol=0.05)
