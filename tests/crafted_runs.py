"""Runs crafted as someone with write access to the tracking store would: a real run's model folder,
downloaded, edited, and logged as a new FINISHED run (with fresh digests, as such a writer can record
them, unless told not to). For tests/test_store_is_data.py and tests/test_model_digests.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import yaml
from mlflow.entities import RunTag
from mlflow.tracking import MlflowClient
from omegaconf._utils import get_yaml_loader

from relevance.model_digests import DIGESTS_FILE, MODEL_DIGEST_TAG, write_digests
from tests.conftest import cli_env, run_cli, tiny_run_args


def train_tiny_run(root: Path, cache: Path):
    """One finished QC run of the tiny model in `root`'s SQLite store: (client, run)."""
    run_cli("train", tiny_run_args(root, cache, "task=qc", "trainer.epochs=1"), cwd=root)
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("relevance-qc").experiment_id])
    return client, run


def edit_run_config(model_dir: Path, edit: Callable[[dict], None]) -> None:
    """Edit `run_config.yaml` as plain YAML (an interpolation stays as written)."""
    path = model_dir / "run_config.yaml"
    config = yaml.load(path.read_text(), Loader=get_yaml_loader())  # as OmegaConf reads it (floats such as 1e-3)
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def craft_run(client: MlflowClient, source, work: Path, edit: Callable[[Path], None], *,
              record_digests: bool = True, keep_digests: bool = False) -> str:
    """A new FINISHED run holding `source`'s model folder after `edit(folder)`. `record_digests`: write
    digests of the edited folder and tag them, as a writer of the store can; `keep_digests`: keep the
    source's digests file and tag (a folder changed behind them); neither: no digests at all (a run
    logged before digests existed)."""
    folder = Path(client.download_artifacts(source.info.run_id, "model", str(work)))
    edit(folder)
    tags = {"relevance.has_model": "true", "task": source.data.tags.get("task", "QC")}
    if keep_digests:
        tags[MODEL_DIGEST_TAG] = source.data.tags[MODEL_DIGEST_TAG]
    elif record_digests:
        tags[MODEL_DIGEST_TAG] = write_digests(folder)
    else:
        (folder / DIGESTS_FILE).unlink(missing_ok=True)
    run = client.create_run(source.info.experiment_id)
    client.log_artifacts(run.info.run_id, str(folder), "model")
    client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    client.set_terminated(run.info.run_id, "FINISHED")
    shutil.rmtree(folder)
    return run.info.run_id


def predict_cli(root: Path, cache: Path, run_id: str, input_path: Path, *extra: str,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m relevance.predict run=<run_id> ...` from `root`, as a user types it (not checked)."""
    args = [f"run={run_id}", f"input={input_path}", f"output={root / f'pred-{run_id}.jsonl'}", f"paths.root={root}",
            f"paths.cache_dir={cache}", *extra]
    return subprocess.run([sys.executable, "-m", "relevance.predict", *args], cwd=root,
                          env={**cli_env(), **(env or {})}, capture_output=True, text=True)


def dev_file(cache: Path) -> Path:
    """The generated demo QC dev file (labelled), which the tiny run's dev and test rows come from."""
    return next((cache / "demo").rglob("qc_dev.jsonl"))


def marker_module(directory: Path, name: str, marker: Path) -> Path:
    """A Python file that, when imported, writes `marker`: proof of code execution."""
    path = directory / f"{name}.py"
    path.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('imported')\n"
                    "class Model:\n    pass\n")
    return path


def marker_package(directory: Path, name: str, marker: Path) -> Path:
    """A Python package (a folder) that writes `marker` when imported."""
    package = directory / name
    package.mkdir()
    marker_module(package, "__init__", marker)
    return package


def no_marker(marker: Path) -> bool:
    return not marker.exists() and not os.path.lexists(marker)
