"""Benchmark: `molremote report` on a synthetic project of 2,000 runs (400 experiments x 5 folds, 10 epochs
each, by default), and optionally opening the result in headless Chromium.

The project is made by tests/report/synth.py: real experiment files resolved by the real Registry, run folders
in the trainer's layout (manifest.json, config.json, metrics.jsonl with window and epoch rows), evaluation and
ensemble records, a scores cache and a running job. The report runs in its own subprocess (the real CLI), so
its wall time (imports included) and peak RSS are its own.

    .venv/bin/python benchmarks/report.py [--experiments 400] [--folds 5] [--epochs 10] [--browser] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def browser_times(html: Path) -> dict[str, float]:
    """Open the report in Debian's headless Chromium: load, sort the table by best CV, filter, open a page."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    subprocess.run(["bash", str(ROOT / "scripts" / "install-browser.sh")], check=True, capture_output=True)
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}",
    ):
        opts.add_argument(a)
    d = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    try:
        t = time.perf_counter()
        d.get(html.as_uri())
        out = {"load_s": time.perf_counter() - t}
        th = d.find_element(By.XPATH, "//th[normalize-space()='best CV']")
        t = time.perf_counter()
        th.click()
        d.execute_script("return document.querySelector('#experiments tbody tr').cells[8].dataset.v")
        out["sort_s"] = time.perf_counter() - t
        t = time.perf_counter()
        d.find_element(By.ID, "filter").send_keys("variant_3")
        out["filter_s"] = time.perf_counter() - t
        t = time.perf_counter()
        d.execute_script("location.hash = '#exp-2'")
        n = len(d.find_elements(By.CSS_SELECTOR, "#exp-2 polyline.curve"))
        out["open_page_s"] = time.perf_counter() - t
        assert n > 0, "no curve drawn on the experiment page"
        return out
    finally:
        d.quit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiments", type=int, default=400)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--browser", action="store_true", help="also time Chromium opening the report")
    ap.add_argument("--keep", type=Path, help="make (or reuse) the project here instead of a temp dir")
    args = ap.parse_args()

    from tests.report.synth import make_project

    project = args.keep or Path(tempfile.mkdtemp(prefix="molremote-report-bench-"))
    if not (project / "runs").is_dir():
        project.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        made = make_project(project, args.experiments, folds=args.folds, epochs=args.epochs)
        print(
            f"made {made['runs']} runs of {args.experiments} experiments in {time.perf_counter() - t:.1f} s "
            f"under {project}"
        )
    env = {**os.environ, "MOLREMOTE_PROJECT": str(project), "PYTHONPATH": str(ROOT)}
    for k in ("MOLREMOTE_RUNS", "MOLREMOTE_EXPERIMENTS", "MOLREMOTE_STORE", "MOLREMOTE_JOBS"):
        env.pop(k, None)
    out = project / "report.html"
    t = time.perf_counter()
    cp = subprocess.run(
        [sys.executable, "-m", "molremote", "report", "-o", str(out), "--no-store", "--json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    if cp.returncode != 0:
        sys.exit(cp.stderr)
    res = json.loads(cp.stdout)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"report: {res['experiments']} experiments, {res['runs']} runs -> {res['bytes'] / 1e6:.2f} MB; "
        f"wall {wall:.1f} s (build {res['seconds']:.1f} s, the rest imports), CPU {ru.ru_utime + ru.ru_stime:.1f} s; "
        f"peak RSS {ru.ru_maxrss / 1024:.0f} MiB; load average {os.getloadavg()[0]:.1f}"
    )
    if args.browser:
        b = browser_times(out)
        print("chromium: " + ", ".join(f"{k} {v:.2f} s" for k, v in b.items()))


if __name__ == "__main__":
    main()
