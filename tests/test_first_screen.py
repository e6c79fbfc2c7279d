"""The README's first screen, walked as a newcomer walks it, in a fresh folder (docs/tour.md): `make demo`,
`make sweep-smoke` (a tiny sweep and its comparison), the README's `predict run=latest`, `make ui`; each
prints what a person acts on, and `predict run=latest` scores with the demo's run, not the sweep's tiny
random model.

The folder is a copy of the files a clone would have (`git ls-files`, plus new files not yet committed),
sharing this checkout's `.venv` through a symlink. Each `make` target runs the commands `make -n` says it
runs, as typed, from the copy; the demo with smaller data and one epoch (it is still Gemma-3 270M, a real
model) unless RELEVANCE_FIRST_SCREEN_FULL=1. The model cache is the session's (RELEVANCE_TEST_CACHE reuses
a converted Gemma). Slow: minutes on two cores (`make test-slow`).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import REPO, cli_env, compose_train

SMALL_DEMO = ("data.generate.train_rows=240", "data.max_dev_rows=120", "data.max_test_rows=120", "trainer.epochs=1")
UI = "http://127.0.0.1:5000"


def fresh_copy(target: Path) -> Path:
    """The repository's files as a clone has them (tracked, and new files git does not ignore)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(REPO / ".venv")
    return target


def make_commands(root: Path, target: str) -> list[list[str]]:
    """The commands `make <target>` runs (its install step is done: this checkout's .venv is installed)."""
    printed = subprocess.run(["make", "-n", "-o", ".venv/.installed", target], cwd=root, capture_output=True,
                             text=True, check=True).stdout
    return [shlex.split(line) for line in printed.splitlines() if " -m relevance." in line]


def run(root: Path, argv: list[str], *extra: str) -> subprocess.CompletedProcess:
    env = {**cli_env(), "PYTHONPATH": str(root)}  # the copy's package, not the checkout's editable install
    result = subprocess.run([*argv, *extra], cwd=root, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{shlex.join(argv)} failed ({result.returncode}):\n{result.stderr[-6000:]}"
    return result


def readme_predict_command() -> list[str]:
    """The README's `predict run=latest` line, as a person copies it."""
    line = next(line.strip() for line in (REPO / "README.md").read_text().splitlines()
                if "relevance.predict run=latest" in line and not line.lstrip().startswith(("#", "`make")))
    return shlex.split(line)


@pytest.mark.slow
def test_the_first_screen_prints_what_a_newcomer_acts_on(tmp_path, shared_cache):
    root = fresh_copy(tmp_path / "clone")
    cache = f"paths.cache_dir={shared_cache}"
    full = os.environ.get("RELEVANCE_FIRST_SCREEN_FULL") == "1"

    # make demo
    (demo_command,) = make_commands(root, "demo")
    assert demo_command[-1] == "experiment=demo"
    out = run(root, demo_command, cache, *(() if full else SMALL_DEMO)).stdout
    found = re.search(r"^run '(?P<name>[^']+)' \((?P<id>[0-9a-f]{32})\) FINISHED in experiment relevance-qc$", out,
                      re.MULTILINE)
    assert found, out[-3000:]
    demo_name, demo_id = found["name"], found["id"]
    assert re.search(r"^  dev   F1 0\.\d{4}  ROC-AUC 0\.\d{4}  \(every row relevant: F1 0\.\d{4}; lift [+-]0\.\d{4}\)$",
                     out, re.MULTILINE)
    assert re.search(r"^  test  F1 0\.\d{4}  ROC-AUC 0\.\d{4}  \(every row relevant", out, re.MULTILINE)
    assert re.search(rf"^  run:   {UI}/#/experiments/\d+/runs/{demo_id}$", out, re.MULTILINE)
    assert re.search(rf"^  runs:  {UI}/#/experiments/\d+/runs\?viewStateShareKey=relevance-runs$", out, re.MULTILINE)
    assert f"  next:  .venv/bin/python -m relevance.predict run={demo_id} input=" in out

    # make sweep-smoke: the sweep, then its comparison
    sweep_command, compare_command = make_commands(root, "sweep-smoke")
    out = run(root, sweep_command, cache).stdout
    found = re.search(r"^sweep '[^']+' \((?P<id>[0-9a-f]{32})\) FINISHED: 2 finished$", out, re.MULTILINE)
    assert found, out[-3000:]
    parent_id = found["id"]
    sweep_link = f"/runs?viewStateShareKey=sweep-{parent_id}"
    assert re.search(rf"^  runs:  {UI}/#/experiments/\d+{re.escape(sweep_link)}$", out, re.MULTILINE)
    assert f"  next:  .venv/bin/python -m relevance.compare sweep={parent_id}" in out
    out = run(root, compare_command).stdout
    assert re.search(rf"^runs:   {UI}/#/experiments/\d+{re.escape(sweep_link)}$", out, re.MULTILINE), out[-2000:]

    # the README's predict run=latest: the demo's run, not the newer tiny sweep runs
    predict = readme_predict_command()
    readme_input = next(arg.removeprefix("input=") for arg in predict if arg.startswith("input="))
    if not (root / readme_input).is_file():  # the cache is the session's (and the small demo's rows differ)
        demo_dev = MlflowClient(f"sqlite:///{root}/mlflow.db").get_run(demo_id).data.params["data.dev_path"]
        predict = [f"input={demo_dev}" if arg.startswith("input=") else arg for arg in predict]
    out = run(root, predict, cache).stdout
    assert f"run=latest: '{demo_name}' ({demo_id}), finished " in out, out[-3000:]
    assert "passed over 2 newer smoke/test run(s) (random tiny models)" in out
    assert re.search(rf"^scored with run '{re.escape(demo_name)}' \({demo_id}\), task QC, finished ", out, re.MULTILINE)
    assert re.search(r"^overall +\d+ +0\.\d{4}", out, re.MULTILINE)  # the demo's dev file is labelled

    # make ui: the links it prints open the runs tables
    (ui_command,) = make_commands(root, "ui")
    log = tmp_path / "ui.log"
    with open(log, "wb") as sink:
        ui = subprocess.Popen([*ui_command, "port=0"], cwd=root, env={**cli_env(), "PYTHONPATH": str(root)},
                              stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while "its newest sweep" not in log.read_text() and time.monotonic() < deadline and ui.poll() is None:
            time.sleep(1)
        text = log.read_text()
        assert re.search(r"^runs of relevance-qc: http://127\.0\.0\.1:\d+/#/experiments/\d+/runs"
                         r"\?viewStateShareKey=relevance-runs$", text, re.MULTILINE), text[-3000:]
        assert re.search(rf"^  its newest sweep, '[^']+': http://127\.0\.0\.1:\d+/#/experiments/\d+"
                         rf"{re.escape(sweep_link)}$", text, re.MULTILINE), text[-3000:]
    finally:
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(timeout=60) == 128 + signal.SIGTERM  # bound: stopping a server after SIGTERM


def test_the_readmes_predict_input_is_the_file_make_demo_generates():
    """The README names the demo's dev file by its folder (generator settings + digest): it must be the folder
    `experiment=demo` generates, or the newcomer's predict command finds no file."""
    readme_input = next(arg.removeprefix("input=") for arg in readme_predict_command() if arg.startswith("input="))
    cfg = compose_train(["experiment=demo", "paths.cache_dir=.cache"])
    assert readme_input == f"{cfg.data.dir}/qc_dev.jsonl"
