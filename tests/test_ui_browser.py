"""The MLflow UI over a real sweep's store, in headless Chromium: the runs table lists the
sweep's child runs with their dev_f1 column. Starts a real `mlflow server` on a free
loopback port in its own process group and stops the whole group afterwards.

Needs Debian's chromium + chromium-driver (`apt-get install -y chromium chromium-driver`).
"""

from __future__ import annotations

import shutil
import time
import urllib.parse
from pathlib import Path

import pytest

from relevance.ui import _group_alive, port_open, start_server
from tests.sweep_fixtures import smoke_sweep  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.slow
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


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent: apt-get install -y chromium "
                                                  "chromium-driver")
def test_the_ui_shows_the_sweep_children_with_their_f1(smoke_sweep, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    parent, children = smoke_sweep.parent, smoke_sweep.children
    server = start_server(smoke_sweep.tracking_uri, log_path=tmp_path / "mlflow-server.log")
    driver = None
    try:
        assert port_open(server.port)
        driver = chromium_driver(tmp_path / "chrome-profile")
        query = urllib.parse.urlencode({"searchFilter": f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"})
        driver.get(f"{server.url}/#/experiments/{parent.info.experiment_id}/runs?{query}")
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
            print(f"failure screenshot: {tmp_path / 'failure.png'}\nserver log:\n{server.log_tail()}")
        raise
    finally:
        if driver is not None:
            driver.quit()
        server.stop()
        shutil.rmtree(tmp_path / "chrome-profile", ignore_errors=True)
    assert not port_open(server.port)
    assert not _group_alive(server.process.pid)  # the server's uvicorn/huey workers are gone too
