"""Shared test helpers: real Hydra composition, real CLI runs, temp MLflow stores."""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from omegaconf import OmegaConf

from relevance.config import TaskConfig, register_configs
from tests.warm_cli import WarmCli

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
SHARED_QC = REPO.parent / "shared" / "data" / "qc"

register_configs()


def task_config(key: str):
    """A task as the runs see it: `conf/task/<key>.yaml` over its typed schema."""
    return OmegaConf.merge(OmegaConf.structured(TaskConfig), OmegaConf.load(CONF_DIR / "task" / f"{key.lower()}.yaml"))


def augment_strategy_of(option: str) -> str:
    """The strategy a conf/augment YAML configures: the `augment.<name>` of its `# @package` line (its own
    name, or another strategy's for a preset such as `translated_cpu`)."""
    first = (CONF_DIR / "augment" / f"{option}.yaml").read_text().splitlines()[0]
    match = re.fullmatch(r"# @package augment\.(\w+)", first)
    assert match, f"{option}.yaml: {first!r}"
    return match.group(1)


def compose_train(overrides: list[str] | None = None):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides or [])


def _file_rank(item: pytest.Item) -> int:
    return 0 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("integration") else 2


@pytest.hookimpl(trylast=True)  # after `-m` has deselected
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first: a file with a slow test, then one with an integration test, then the rest, each
    group in collection order. On two workers a pass ends when its last file ends, so a long file scheduled
    last leaves the other worker idle (`make test-rest` keeps this order: `--no-loadscope-reorder`)."""
    rank: dict[Path, int] = {}
    for item in items:
        rank[item.path] = min(rank.get(item.path, 2), _file_rank(item))
    items.sort(key=lambda item: rank[item.path])


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One model/augmentation cache for the whole session: the tiny model is built once.
    RELEVANCE_TEST_CACHE reuses a cache across sessions (e.g. the converted Gemma)."""
    env = os.environ.get("RELEVANCE_TEST_CACHE")
    return Path(env) if env else tmp_path_factory.mktemp("cache")


def cli_env() -> dict[str, str]:
    # a user's environment: none of MLflow's or ours, and not pytest's own (PYTEST_CURRENT_TEST changes each test)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RELEVANCE_", "PYTEST_"))}
    env["HYDRA_FULL_ERROR"] = "1"
    return env



@functools.cache
def empty_store() -> Path:
    """An empty MLflow SQLite store, created once per test process. MLflow runs its ~50 schema migrations on
    every new store (4-8 s on 2 cores), and most tests start a run in a store of their own."""
    from relevance.tracking.store import tracking_client  # imports mlflow: only for tests that run the CLI

    folder = Path(tempfile.mkdtemp(prefix="relevance-empty-store-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    tracking_client(f"sqlite:///{folder}/mlflow.db").search_experiments()
    return folder / "mlflow.db"


def seed_store(args: list[str], cwd: Path) -> None:
    """Before a `train` run: where it would create its default store (`<paths.root>/mlflow.db`) and none exists
    yet, a copy of the empty one, so that the run opens a store as every run after a user's first does. A run
    that names its store (`tracking...=`) or whose store exists is left alone; creating a store is what
    tests/test_concurrent_runs.py and the slow first screen do, without this helper."""
    if any(arg.lstrip("+~").startswith("tracking") for arg in args):
        return
    roots = [arg.split("=", 1)[1] for arg in args if arg.startswith("paths.root=")]
    db = (cwd / roots[-1] if roots else cwd) / "mlflow.db"
    if db.parent.is_dir() and not db.exists():
        shutil.copyfile(empty_store(), db)


@functools.cache
def warm_cli() -> WarmCli:
    """This test process's warm interpreter for `run_cli` (tests/warm_cli.py), stopped when the process ends."""
    warm = WarmCli()
    atexit.register(warm.stop)
    return warm


def run_cli(module: str, args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m relevance.<module> args...` as a user runs it, from `cwd`: forked from this process's warm
    interpreter, which has the CLIs' imports done (tests/warm_cli.py says what that changes). A `train` run gets
    a store copied from an empty one where it would create its own (`seed_store`)."""
    if module == "train":
        seed_store(args, cwd)
    env = cli_env()
    result = None
    if WarmCli.enabled():
        with tempfile.TemporaryDirectory(prefix="relevance-cli-") as out:
            returncode = warm_cli().run(module, list(args), Path(cwd).absolute(), env, Path(out))
            if returncode is not None:
                result = subprocess.CompletedProcess([sys.executable, "-m", f"relevance.{module}", *args],
                                                     returncode, *(Path(out, name).read_text(errors="replace")
                                                                   for name in ("stdout", "stderr")))
    if result is None:  # a plain subprocess: asked for, or a run a fork cannot stand in for
        result = subprocess.run([sys.executable, "-m", f"relevance.{module}", *args], cwd=cwd, env=env,
                                capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"relevance.{module} failed ({result.returncode}):\n{result.stderr[-6000:]}")
    return result


def tiny_run_args(root: Path, cache: Path, *extra: str) -> list[str]:
    return ["model=tiny_random", "trainer=smoke", f"paths.root={root}", f"paths.cache_dir={cache}", *extra]
