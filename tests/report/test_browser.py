"""The HTML report in a real browser: Debian's headless Chromium driven by Selenium opens the file offline
(a dead proxy: any network request would fail), sorts and filters the table, follows a link to an experiment
page and finds its curves, diff and config, sees the images render, and logs no console error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.report.synth import make_project

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def browser_paths() -> dict[str, str]:
    """Install (if needed) Chromium + chromedriver through the project's script. Never skips."""
    cp = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-browser.sh")], capture_output=True, text=True, timeout=900
    )
    if cp.returncode != 0:
        pytest.fail(f"scripts/install-browser.sh failed (exit {cp.returncode}):\n{cp.stderr[-3000:]}")
    return dict(tok.split("=", 1) for tok in cp.stdout.split() if "=" in tok)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("proj")
    make_project(project, 6, folds=3, epochs=6, seeds=2)
    env = {**os.environ, "MOLREMOTE_PROJECT": str(project), "PYTHONPATH": str(ROOT)}
    for k in ("MOLREMOTE_RUNS", "MOLREMOTE_EXPERIMENTS", "MOLREMOTE_STORE", "MOLREMOTE_JOBS"):
        env.pop(k, None)
    out = project / "report.html"
    cp = subprocess.run(
        [sys.executable, "-m", "molremote", "report", "-o", str(out)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cp.returncode == 0, cp.stderr
    return out


@pytest.fixture(scope="module")
def driver(browser_paths, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser_paths["CHROMIUM"]
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        # nothing may come from the network at view time: a dead proxy makes any request fail loudly
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    d = webdriver.Chrome(options=opts, service=Service(browser_paths["CHROMEDRIVER"]))
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def _visible_ids(driver) -> list[int]:
    return [
        int(v)
        for v in driver.execute_script(
            "return Array.from(document.querySelectorAll('#experiments tbody tr'))"
            ".filter(r => !r.hidden).map(r => r.cells[0].dataset.v)"
        )
    ]


def _errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_report_in_chromium(driver, report_file, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.get(report_file.as_uri())
    assert driver.title == "molremote report"
    assert _visible_ids(driver) == [1, 2, 3, 4, 5, 6]

    # sort by best CV: numbers ascending with the experiments never evaluated last, then descending
    th = driver.find_element(By.XPATH, "//table[@id='experiments']//th[normalize-space()='best CV']")
    th.click()
    cv = driver.execute_script(
        "return Array.from(document.querySelectorAll('#experiments tbody tr')).map(r => r.cells[8].dataset.v)"
    )
    nums = [float(v) for v in cv if v]
    assert len(nums) == 3 and nums == sorted(nums) and cv[3:] == ["", "", ""]
    assert th.get_attribute("aria-sort") == "ascending"
    th.click()
    cv = driver.execute_script(
        "return Array.from(document.querySelectorAll('#experiments tbody tr')).map(r => r.cells[8].dataset.v)"
    )
    assert [float(v) for v in cv[:3]] == sorted(nums, reverse=True) and cv[3:] == ["", "", ""]
    driver.find_element(By.XPATH, "//th[normalize-space()='id']").click()
    assert _visible_ids(driver) == [1, 2, 3, 4, 5, 6]

    # filter by text, then by status
    box = driver.find_element(By.ID, "filter")
    box.send_keys("variant_3")
    assert _visible_ids(driver) == [3]
    assert driver.find_element(By.ID, "shown").text == "1 shown"
    box.clear()
    box.send_keys(" ")  # clear() fires no input event
    assert _visible_ids(driver) == [1, 2, 3, 4, 5, 6]
    Select(driver.find_element(By.ID, "status-filter")).select_by_visible_text("running")
    assert _visible_ids(driver) == [6]
    Select(driver.find_element(By.ID, "status-filter")).select_by_index(0)

    # images on the front page render: the blend heatmap (inlined PNG) and CV against LB (inline SVG)
    img = driver.find_element(By.CSS_SELECTOR, "img.heatmap")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100
    assert img.get_attribute("src").startswith("data:image/png;base64,")
    lb = driver.find_element(By.CSS_SELECTOR, ".lb svg")
    assert lb.size["width"] > 300 and lb.size["height"] > 200
    assert "Pearson r" in lb.get_attribute("textContent")  # the figure's title
    corr = driver.find_element(By.CSS_SELECTOR, "p.corr").text
    assert corr.startswith("CV vs public: Pearson r = ") and "(n = 3)" in corr

    # follow the link to experiment 2 (resumed runs, 2 seeds): its page, curves, boundary, diff and config
    driver.find_element(By.LINK_TEXT, "0002_variant_2").click()
    page = driver.find_element(By.ID, "exp-2")
    assert page.is_displayed() and not driver.find_element(By.ID, "home").is_displayed()
    charts = page.find_elements(By.CSS_SELECTOR, ".chart svg")
    assert len(charts) == 2
    for svg in charts:
        assert svg.size["width"] > 400 and svg.size["height"] > 250
        lines = svg.find_elements(By.CSS_SELECTOR, "polyline.curve")
        assert len(lines) == 3  # three folds, seeds averaged
        assert all(len(line.get_attribute("points").split()) == 6 for line in lines)  # six epochs
        assert len(svg.find_elements(By.CSS_SELECTOR, "polygon")) == 3  # the seed bands
        assert svg.find_elements(By.CSS_SELECTOR, "line.boundary")  # the resumed session
    legend = page.find_element(By.CSS_SELECTOR, ".legend").text
    assert "0002 fold 0 (2 seeds)" in legend and "resumed session" in legend
    assert "Validation belka_ap" in page.text
    diff = page.find_element(By.CSS_SELECTOR, "table.diff").text
    assert "training.lr" in diff and "model.dropout" in diff
    config = page.find_element(By.CSS_SELECTOR, "pre.config").text
    assert '"config_hash"' in config and '"lr"' in config
    assert len(page.find_elements(By.XPATH, ".//h3[.='Runs']/following-sibling::table[1]/tbody/tr")) == 6

    shot = tmp_path / "experiment-2.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    if os.environ.get("MOLREMOTE_SCREENSHOT"):  # keep one to look at
        Path(os.environ["MOLREMOTE_SCREENSHOT"]).write_bytes(shot.read_bytes())

    # back to the table via the page's link
    page.find_element(By.LINK_TEXT, "\u2190 all experiments").click()
    assert driver.find_element(By.ID, "home").is_displayed() and not page.is_displayed()
    assert _errors(driver) == []
    urls = []
    for e in driver.get_log("performance"):
        msg = json.loads(e["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    assert any(u.startswith("file:") for u in urls)
    assert [u for u in urls if u.split(":")[0] in ("http", "https", "ws", "wss")] == []
