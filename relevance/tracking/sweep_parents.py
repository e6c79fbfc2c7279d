"""A multirun's parent runs: their names and tags, and the state file that maps each
experiment the sweep touches to its parent.

MLflow nests children under a parent only within one experiment, and the experiment
follows the task (`relevance-qc`, `relevance-qi`), so a sweep over `task=qc,qi` has one
parent per experiment, all sharing the `relevance.sweep.id` tag. The mapping lives in
`<sweep dir>/.relevance_sweep.json` (with the tracking store and the parents' names and
tags) and changes only under a file lock, so parallel workers create a missing parent once.

A parent names the machine and process of the sweep's launcher (`relevance.host`,
`relevance.pid`), whose heartbeat keeps it fresh (relevance.tracking.sweep_callback): a
parent left RUNNING by a launcher that vanished is ended KILLED by the next sweep with the
same definition (relevance.tracking.interrupted).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from pathlib import Path

from filelock import FileLock
from omegaconf import DictConfig, OmegaConf

from relevance.tracking.heartbeat import liveness_tags
from relevance.tracking.mlflow_run import get_or_create_experiment
from relevance.tracking.store import tracking_client
from relevance.tracking.tags import SWEEP_ID_TAG, SWEEP_TAG

log = logging.getLogger(__name__)

STATE_FILE = ".relevance_sweep.json"  # in the sweep dir
MAX_RUN_NAME = 250
STORAGE_KEYS = ("paths.", "tracking.", "hydra.")


# --------------------------------------------------------------------------- naming

def _is_storage_override(override: str) -> bool:
    key = override.split("=", 1)[0].lstrip("+~")
    return key.startswith(STORAGE_KEYS)


def sweep_definition(config: DictConfig) -> dict[str, str]:
    """{key: value} of the sweep: the command-line overrides, then `hydra.sweeper.params`
    for keys the command line leaves alone (it wins, as in Hydra's sweepers), without
    storage paths (paths.*, tracking.*, hydra.*)."""
    definition: dict[str, str] = {}
    for override in OmegaConf.to_container(config.hydra.overrides.task, resolve=False):
        if not _is_storage_override(override):
            key, _, value = override.partition("=")
            definition[key] = value
    params = OmegaConf.select(config, "hydra.sweeper.params")
    params = OmegaConf.to_container(params, resolve=False) if params is not None else {}
    for key, value in params.items():
        definition.setdefault(str(key), str(value))
    return definition


def sweep_run_name(config: DictConfig) -> str:
    definition = sweep_definition(config)
    name = "sweep " + " ".join(f"{k}={v}" for k, v in definition.items()) if definition else "sweep"
    return name if len(name) <= MAX_RUN_NAME else name[: MAX_RUN_NAME - 3] + "..."


def _short_target(config: DictConfig, key: str) -> str:
    target = OmegaConf.select(config, f"hydra.{key}._target_") or "?"
    return str(target).rsplit(".", 1)[-1]


# --------------------------------------------------------------------------- state file

def new_sweep_state(config: DictConfig, sweep_dir: str, outer_parent: str | None) -> dict:
    """The state of a sweep about to start (the multirun's master config), no parent yet."""
    return {
        "sweep_id": uuid.uuid4().hex, "sweep_dir": sweep_dir,
        "tracking_uri": str(config.tracking.tracking_uri),
        "artifact_location": config.tracking.artifact_location,
        "run_name": sweep_run_name(config), "definition": sweep_definition(config),
        "sweeper": _short_target(config, "sweeper"), "launcher": _short_target(config, "launcher"),
        "outer_parent": outer_parent, "primary_experiment": str(config.tracking.experiment_name),
        "launcher_host": socket.gethostname(), "launcher_pid": os.getpid(),
        "parents": {},
    }


def state_path(sweep_dir: str | Path) -> Path:
    return Path(sweep_dir) / STATE_FILE


def read_state(sweep_dir: str | Path) -> dict | None:
    path = state_path(sweep_dir)
    return json.loads(path.read_text()) if path.exists() else None


def _write_state(sweep_dir: str | Path, state: dict) -> None:
    path = state_path(sweep_dir)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, path)


def _lock(sweep_dir: str | Path) -> FileLock:
    return FileLock(str(state_path(sweep_dir)) + ".lock", timeout=120)


# --------------------------------------------------------------------------- parents

def start_sweep(state: dict) -> str:
    """Write the state of a new sweep and open the parent of its primary experiment; that parent's id."""
    with _lock(state["sweep_dir"]):
        _write_state(state["sweep_dir"], state)
    return parent_for_experiment(state["sweep_dir"], state["primary_experiment"], state["artifact_location"])


def parent_for_experiment(sweep_dir: str, experiment: str, artifact_location: str | None) -> str:
    """The sweep's parent run in `experiment`, created on first use (once, across processes)."""
    with _lock(sweep_dir):
        state = read_state(sweep_dir)
        parent = state["parents"].get(experiment)
        if parent is None:
            parent = _open_parent(state, experiment, artifact_location)
            state["parents"][experiment] = parent
            _write_state(sweep_dir, state)
    return parent


def _open_parent(state: dict, experiment_name: str, artifact_location: str | None) -> str:
    client = tracking_client(state["tracking_uri"])
    experiment_id = get_or_create_experiment(client, experiment_name, artifact_location)
    tags = {SWEEP_TAG: "true", SWEEP_ID_TAG: state["sweep_id"], "relevance.sweep.dir": state["sweep_dir"],
            "relevance.sweep.sweeper": state["sweeper"], "relevance.sweep.launcher": state["launcher"],
            "relevance.sweep.definition": json.dumps(state["definition"])[:5000],
            **liveness_tags(state.get("launcher_host"), state.get("launcher_pid"))}
    if state.get("outer_parent"):
        tags["mlflow.parentRunId"] = state["outer_parent"]
    if state.get("parents"):
        tags["relevance.sweep.first_parent"] = next(iter(state["parents"].values()))
    run = client.create_run(experiment_id, run_name=state["run_name"], tags=tags)
    log.info("sweep parent run %s (%s) in experiment %s", run.info.run_id, state["run_name"], experiment_name)
    return run.info.run_id
