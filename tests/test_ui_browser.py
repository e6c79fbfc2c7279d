"""The MLflow UI over a real sweep's store, in headless Chromium: the link `make ui` prints opens the
sweep's runs table with their test_f1 and test_roc_auc columns, nothing clicked in (relevance/tracking/links.py).
The UI is `python -m relevance.ui` (what `make ui`
runs) on a free loopback port; its `mlflow server` runs in its own process group, and SIGTERM
to the UI stops the whole group.

Needs Debian's chromium + chromium-driver (`apt-get install -y chromium chromium-driver`). The
screenshot stays under the test's tmp_path (pytest prints it) and is copied to $RELEVANCE_TEST_ARTIFACTS
when set. The config test at the end is fast.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from relevance.ui import _group_alive, port_open, register_ui_schema
from tests.conftest import CONF_DIR, cli_env
from tests.requirements import require_module, require_path
from tests.sweep_fixtures import smoke_sweep  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
UI_LINE = re.compile(r"MLflow UI for \S+: (?P<url>http://\S+)  \(server pid (?P<pid>\d+), log (?P<log>\S+);")
ARTIFACTS_ENV = "RELEVANCE_TEST_ARTIFACTS"  # a folder to keep the screenshot in (CI uploads it)


def shows(text: str, value: float) -> bool:
    """A table cell showing `value`, to as many decimals as the UI prints."""
    text = text.strip().rstrip("…")
    try:
        shown = float(text)
    except ValueError:
        return False
    decimals = len(text.split(".", 1)[1]) if "." in text else 0
    return abs(shown - value) <= 0.5 * 10 ** -decimals + 1e-12


@dataclass
class RunningUi:
    process: subprocess.Popen  # python -m relevance.ui
    output: Path
    url: str = ""
    server_pid: int = 0
    server_log: str = ""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log_tail(self) -> str:
        server = Path(self.server_log).read_text(errors="replace")[-4000:] if self.server_log else ""
        return f"{self.output.read_text(errors='replace')[-4000:]}\nserver log:\n{server}"

    def stop(self) -> int:
        """SIGTERM to the UI process, as `kill` would; returns its exit code (128 + SIGTERM)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait()


def start_ui(tracking_uri: str, output: Path, timeout: float = 120.0) -> RunningUi:
    """`python -m relevance.ui` on a free port, returned once it prints its URL (the server answers)."""
    with open(output, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "relevance.ui", f"tracking.tracking_uri={tracking_uri}",
                                    "port=0"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=cli_env(), start_new_session=True)
    ui = RunningUi(process, output)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := UI_LINE.search(output.read_text(errors="replace")):
            ui.url, ui.server_pid, ui.server_log = found["url"], int(found["pid"]), found["log"]
            return ui
        if process.poll() is not None:
            raise RuntimeError(f"relevance.ui exited with {process.returncode}:\n{ui.log_tail()}")
        time.sleep(0.5)
    ui.stop()
    raise TimeoutError(f"relevance.ui printed no URL within {timeout:.0f}s:\n{ui.log_tail()}")


def chromium_driver(profile_dir: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={profile_dir}", "--window-size=2200,1200"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def keep_artifact(path: Path) -> Path | None:
    """Copy a test artifact (the screenshot) to $RELEVANCE_TEST_ARTIFACTS when set (CI uploads that
    folder); it stays under the test's tmp_path either way. Returns the copy."""
    folder = os.environ.get(ARTIFACTS_ENV)
    if not folder:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(path, Path(folder) / path.name))


def printed_links(ui: RunningUi, timeout: float = 60.0) -> dict[str, str]:
    """The runs links `relevance.ui` prints under its URL: {experiment name: link, "sweep": link}."""
    deadline = time.monotonic() + timeout
    while "runs of " not in ui.output.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(0.5)  # the sweep's line follows its experiment's
    links = {}
    for line in ui.output.read_text(errors="replace").splitlines():
        if found := re.match(r"runs of (\S+): (http://\S+)$", line):
            links[found[1]] = found[2]
        elif found := re.match(r"\s+its newest sweep, .*: (http://\S+)$", line):
            links["sweep"] = found[1]
    return links


def same_page(a: str, b: str) -> bool:
    """Two links to the same page of the UI, wherever it is served (host and port aside)."""
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (pa.path, pa.fragment) == (pb.path, pb.fragment)


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent: apt-get install -y chromium "
                                                  "chromium-driver")
def test_the_printed_link_opens_the_sweep_runs_with_their_test_metrics(smoke_sweep, tmp_path):  # noqa: F811
    """As a person would: start `make ui`'s command, open the sweep link it prints (the same page the sweep
    printed when it ended), and find the sweep's runs with test_f1 and test_roc_auc already in the table."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    parent, children = smoke_sweep.parent, smoke_sweep.children
    experiment = smoke_sweep.client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    ui = start_ui(smoke_sweep.tracking_uri, tmp_path / "relevance-ui.log")
    driver = None
    try:
        assert port_open(ui.port)
        links = printed_links(ui)
        assert set(links) == {experiment.name, "sweep"}, ui.log_tail()
        assert links["sweep"].startswith(f"{ui.url}/#/experiments/{experiment.experiment_id}/runs?")
        swept = re.search(r"^  runs:  (http://\S+)$", smoke_sweep.result.stdout, re.MULTILINE)
        assert swept and same_page(swept[1], links["sweep"]), smoke_sweep.result.stdout[-3000:]

        driver = chromium_driver(tmp_path / "chrome-profile")
        driver.get(links["sweep"])
        wait = WebDriverWait(driver, 90, ignored_exceptions=(StaleElementReferenceException,))  # the table redraws
        body = lambda d: d.find_element(By.TAG_NAME, "body").text
        headers = lambda d: [h.text.strip() for h in d.find_elements(By.CSS_SELECTOR, "[role=columnheader]")]
        cells = lambda d: [c.text for c in d.find_elements(By.CSS_SELECTOR, "[role=gridcell]")]
        wait.until(lambda d: all(c.info.run_name in body(d) for c in children))
        wait.until(lambda d: {"test_f1", "test_roc_auc"} <= set(headers(d)))
        for metric in ("test_f1", "test_roc_auc"):
            wait.until(lambda d: all(any(shows(text, c.data.metrics[metric]) for text in cells(d)) for c in children))
        assert "Traces" not in headers(driver)  # the training runs table, not MLflow 3's GenAI view

        screenshot = tmp_path / "mlflow-ui-sweep-runs.png"
        time.sleep(1)
        driver.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 10_000
        kept = keep_artifact(screenshot)
        print(f"screenshot: {screenshot}" + (f" (kept: {kept})" if kept else f" (set {ARTIFACTS_ENV} to keep it)"))
    except Exception:
        if driver is not None:
            driver.save_screenshot(str(tmp_path / "failure.png"))
            keep_artifact(tmp_path / "failure.png")
            print(f"failure screenshot: {tmp_path / 'failure.png'}\nUI output:\n{ui.log_tail()}")
        raise
    finally:
        if driver is not None:
            driver.quit()
        exit_code = ui.stop()
        shutil.rmtree(tmp_path / "chrome-profile", ignore_errors=True)
    assert exit_code == 128 + signal.SIGTERM, ui.log_tail()
    assert not port_open(ui.port)
    assert not _group_alive(ui.server_pid)  # the server's uvicorn/huey workers are gone too


def test_the_ui_config_is_the_shared_tracking_config_and_typed(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    register_ui_schema()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="ui", overrides=[f"paths.root={tmp_path}"])
        assert cfg.tracking.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"  # the store train logs to
        assert (cfg.host, cfg.port) == ("127.0.0.1", 5000)
        with pytest.raises(ConfigCompositionException):
            compose(config_name="ui", overrides=["prot=5001"])
