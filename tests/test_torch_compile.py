"""`trainer.torch_compile=true`: the Trainer trains with compiled decoder layers (inductor, on CPU here), the
run learns like an eager one, builds a bounded number of graphs whatever its batch shapes, and `predict` still
reproduces its logged dev metrics and scores exactly, because dev, test and predict score the eager layers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import f1_score

from tests.conftest import run_cli, tiny_run_args
from tests.test_test_split import subset_file

pytestmark = pytest.mark.integration  # inductor compiles the tiny model's graphs (tens of seconds): make test-integration


def _train(root: Path, cache: Path, *extra: str):
    root.mkdir()
    run_cli("train", tiny_run_args(root, cache, "trainer.epochs=1", *extra), cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    return client, run


def test_a_compiled_run_trains_like_eager_and_predict_reproduces_it(tmp_path, shared_cache):
    client, compiled = _train(tmp_path / "compiled", shared_cache, "trainer.torch_compile=true")
    _, eager = _train(tmp_path / "eager", shared_cache)
    assert compiled.info.status == "FINISHED" and compiled.data.params["trainer.torch_compile"] == "True"
    assert compiled.data.params["trainer.compile_chosen"] == "True"
    assert compiled.data.tags["relevance.compile_reason"] == "trainer.torch_compile=true"
    # token-budget batches of several shapes, one set of dynamic graphs: forward and backward, first layer and the rest
    assert 1 <= compiled.data.metrics["train_compiled_graphs"] <= 4
    assert compiled.data.metrics["train_compile_seconds"] > 0
    assert eager.data.params["trainer.compile_chosen"] == "False"
    assert compiled.info.run_id != eager.info.run_id
    # not bit-identical (fused kernels round differently), but the same training: close losses
    assert compiled.data.metrics["train_loss"] == pytest.approx(eager.data.metrics["train_loss"], rel=0.05)

    root = tmp_path / "compiled"
    logged = Path(client.download_artifacts(compiled.info.run_id, "evaluation/dev_predictions.jsonl"))
    rows_file = subset_file(next((shared_cache / "demo").rglob("qc_dev.jsonl")), logged, root / "dev.jsonl")
    output = root / "predictions.jsonl"
    run_cli("predict", ["run=latest", f"input={rows_file}", f"output={output}",
                        f"paths.root={root}", f"paths.cache_dir={shared_cache}"], cwd=root)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert f1_score([r["label"] for r in rows], [r["prediction"] for r in rows]) == pytest.approx(
        compiled.data.metrics["dev_f1"], abs=1e-6)
    logged_scores = {str(r["id"]): r["score"] for r in map(json.loads, logged.read_text().splitlines())}
    assert np.allclose([logged_scores[str(r["id"])] for r in rows], [r["score"] for r in rows], atol=1e-5)
