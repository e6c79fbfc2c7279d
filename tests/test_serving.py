"""A registered version is an MLflow Model: `mlflow.pyfunc.load_model` and a real `mlflow models serve`
process on loopback score competition rows with exactly the numbers `predict` writes; bad rows get a 400
naming the row and the field; a package changed in the store is refused before anything of it loads."""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from relevance.model_digests import ModelDigestError
from relevance.ui import free_port
from tests.conftest import cli_env, run_cli
from tests.servers import LOCALHOST, start_daemon, stop_group, wait_for
from tests.sweep_fixtures import smoke_sweep  # noqa: F401 (a fixture)
from tests.test_register import small_input

NAME = "relevance-qc-serving"  # its own registered model: the smoke sweep's store is shared by other modules
URI = f"models:/{NAME}@champion"
pytestmark = pytest.mark.integration  # a smoke sweep, a registration, a model server


@pytest.fixture(scope="module")
def registered(smoke_sweep, shared_cache, tmp_path_factory):
    """A version of NAME from the sweep's first run, `predict`'s submission of 40 of its test rows, and
    those rows."""
    root, client = smoke_sweep.root, smoke_sweep.client
    run_id = smoke_sweep.children[0].info.run_id
    common = [f"paths.root={root}", f"paths.cache_dir={shared_cache}"]
    run_cli("register", [f"run={run_id}", f"name={NAME}", "alias=champion", *common], cwd=root)
    work = tmp_path_factory.mktemp("serving")
    input_file = small_input(shared_cache, client, run_id, work)
    output = work / "predicted.jsonl"
    run_cli("predict", [f"run={URI}", f"input={input_file}", f"output={output}", *common], cwd=root)
    rows = [json.loads(line) for line in input_file.read_text().splitlines()]
    predicted = [json.loads(line) for line in output.read_text().splitlines()]
    mlflow.set_tracking_uri(smoke_sweep.tracking_uri)
    yield smoke_sweep, rows, predicted
    mlflow.set_tracking_uri(None)


def test_pyfunc_predicts_on_a_dataframe_what_predict_writes(registered, shared_cache):
    _, rows, predicted = registered
    model = mlflow.pyfunc.load_model(URI, model_config={"cache_dir": str(shared_cache)})
    scored = model.predict(pd.DataFrame(rows)).to_dict(orient="records")
    assert scored == predicted  # every input field, prediction and score, as predict wrote them
    assert {row["prediction"] for row in scored} <= {0, 1}


def post(url: str, payload) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/invocations", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=900) as response:  # bound: a server that never answers
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_mlflow_models_serve_answers_invocations_and_400s_a_bad_row(registered, shared_cache, tmp_path):
    sweep, rows, predicted = registered
    port = free_port()
    env = {**cli_env(), "MLFLOW_TRACKING_URI": sweep.tracking_uri, "RELEVANCE_CACHE": str(shared_cache),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # its uvicorn
    mlflow_cli = shutil.which("mlflow", path=env["PATH"])
    log = tmp_path / "serve.log"
    server = start_daemon([mlflow_cli, "models", "serve", "-m", URI, "--env-manager", "local", "--host", LOCALHOST,
                           "--port", str(port)], log, env=env, cwd=sweep.root)
    url = f"http://{LOCALHOST}:{port}"
    try:
        def ready() -> bool:
            assert server.poll() is None, f"mlflow models serve exited:\n{log.read_text()[-4000:]}"
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:  # bound: start-up poll
                    return response.status == 200
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False

        wait_for(ready, "mlflow models serve", timeout=300, log=log)  # bound: server start-up
        status, answer = post(url, {"dataframe_records": rows})
        assert status == 200, answer
        assert answer["predictions"] == predicted

        missing = [dict(row) for row in rows[:3]]
        del missing[1]["origin_query"]
        bad_label = [dict(row) for row in rows[:3]]
        bad_label[2]["label"] = 7
        wrong_task = [dict(row) for row in rows[:2]]
        wrong_task[0]["task"] = "QI"
        for records, where in ((missing, "row 1 (dataframe_records[1]): field 'origin_query'"),
                               (bad_label, "row 2 (dataframe_records[2]): field 'label': expected 0 or 1, got 7"),
                               (wrong_task, "row 0 (dataframe_records[0]): field 'task'")):
            status, answer = post(url, {"dataframe_records": records})
            assert status == 400 and answer["error_code"] == "INVALID_PARAMETER_VALUE", answer
            assert where in answer["message"], answer["message"][-600:]
    finally:
        stop_group(server)
    assert server.poll() is not None


def test_a_package_changed_in_the_store_is_refused_before_it_loads(registered, tmp_path):
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=URI, dst_path=str(tmp_path / "model")))
    threshold = local / "data" / "package" / "run-0" / "threshold.json"
    content = json.loads(threshold.read_text())
    threshold.write_text(json.dumps({**content, "threshold": 0.01}))  # everything relevant
    with pytest.raises(ModelDigestError, match="model/threshold.json differs from the digest training recorded"):
        mlflow.pyfunc.load_model(str(local))
