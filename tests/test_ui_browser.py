"""The MLflow UI over a real sweep's store, in headless Chromium: the runs table lists the
sweep's child runs with their dev_f1 column. The UI is `python -m relevance.ui` (what `make ui`
runs) on a free loopback port; its `mlflow server` runs in its own process group, and SIGTERM
to the UI stops the whole group.

Needs Debian's chromium + chromium-driver (`apt-get install -y chromium chromium-driver`). The
config test at the end is fast.
"""

from __future__ import annotations

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
from tests.sweep_fixtures import smoke_sweep  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
UI_LINE = re.compile(r"MLflow UI for \S+: (?P<url>http://\S+)  \(server pid (?P<pid>\d+), log (?P<log>\S+);")
# the "+" button in the Run Name cell of a parent row (the sweep's), which shows its child runs
EXPANDER = ("//div[@role='gridcell'][contains(@col-id, 'Run Name')][.//*[starts-with(normalize-space(text()), "
            "'sweep ')]]//button")


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
        return self.process.wait(timeout=60)


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


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent: apt-get install -y chromium "
                                                  "chromium-driver")
def test_the_ui_shows_the_sweep_children_with_their_f1(smoke_sweep, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    parent, children = smoke_sweep.parent, smoke_sweep.children
    ui = start_ui(smoke_sweep.tracking_uri, tmp_path / "relevance-ui.log")
    driver = None
    try:
        assert port_open(ui.port)
        driver = chromium_driver(tmp_path / "chrome-profile")
        query = urllib.parse.urlencode({"searchFilter": f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"})
        driver.get(f"{ui.url}/#/experiments/{parent.info.experiment_id}/runs?{query}")
        wait = WebDriverWait(driver, 90)
        body = lambda d: d.find_element(By.TAG_NAME, "body").text
        # the sweep's parent row, with its children nested under it: expand it
        wait.until(lambda d: parent.info.run_name[:20] in body(d) or all(c.info.run_name in body(d) for c in children))
        if not all(c.info.run_name in body(driver) for c in children):
            wait.until(EC.element_to_be_clickable((By.XPATH, EXPANDER))).click()
        wait.until(lambda d: all(c.info.run_name in body(d) for c in children))

        # add the dev_f1 metric column (Columns → search → tick)
        wait.until(EC.element_to_be_clickable((By.XPATH, "//button[.//text()[normalize-space()='Columns']]"))).click()
        search = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "input[placeholder='Search columns']")))
        search.send_keys("dev_f1")
        # the item labelled exactly dev_f1 (not the highlighted "dev_f1" inside best_dev_f1)
        wait.until(EC.element_to_be_clickable(
            (By.XPATH, "//*[normalize-space(.)='dev_f1' and normalize-space(..)='dev_f1']"))).click()
        search.send_keys(Keys.ESCAPE)
        wait.until(lambda d: "dev_f1" in [h.text for h in d.find_elements(By.CSS_SELECTOR, "[role=columnheader]")])
        wait.until(lambda d: all(any(shows(cell.text, c.data.metrics["dev_f1"]) for cell in
                                     d.find_elements(By.CSS_SELECTOR, "[role=gridcell]")) for c in children))

        screenshot = tmp_path / "mlflow-ui-sweep.png"
        time.sleep(1)
        driver.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 10_000
        print(f"screenshot: {screenshot}")
    except Exception:
        if driver is not None:
            driver.save_screenshot(str(tmp_path / "failure.png"))
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
