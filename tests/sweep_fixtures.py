"""Shared sweep fixtures: one real smoke sweep (`experiment=smoke_sweep`, 2 tiny jobs) per
session, reused by test_sweep, test_compare, test_notebook and test_ui_browser.

Import the fixture into a test module (`from tests.sweep_fixtures import smoke_sweep`); the
sweep itself is cached at module level here, so it runs once per session however many test
modules import it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli

_CACHE: dict[str, Sweep] = {}


@dataclass
class Sweep:
    root: Path
    tracking_uri: str
    client: MlflowClient
    parent: Run
    children: list[Run]
    result: subprocess.CompletedProcess


def sweep_args(cache: Path, *extra: str) -> list[str]:
    # no paths.root: it defaults to the directory the sweep runs from, as for a user
    return ["-m", f"paths.cache_dir={cache}", *extra]


def parents_of(client: MlflowClient, experiment_ids: list[str]) -> list[Run]:
    return client.search_runs(experiment_ids, "tags.`relevance.sweep` = 'true'",
                              order_by=["attributes.start_time ASC"])


def children_of(client: MlflowClient, parent: Run) -> list[Run]:
    return client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
                              order_by=["attributes.start_time ASC"])


def run_sweep(root: Path, cache: Path, *extra: str, check: bool = True) -> Sweep:
    """`python -m relevance.train -m ...` from `root`; the newest parent and its children."""
    result = run_cli("train", sweep_args(cache, *extra), cwd=root, check=check)
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    parent = parents_of(client, experiments)[-1]
    return Sweep(root, uri, client, client.get_run(parent.info.run_id), children_of(client, parent), result)


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory, shared_cache) -> Sweep:
    if "smoke" not in _CACHE:
        root = tmp_path_factory.mktemp("smoke-sweep")
        _CACHE["smoke"] = run_sweep(root, shared_cache, "experiment=smoke_sweep")
    return _CACHE["smoke"]
