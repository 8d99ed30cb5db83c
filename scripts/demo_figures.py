"""Reproduce the README's demo table: train each demo experiment through the real CLI, time it, and print its
row (wall time, best validation metric, trivial baseline). With `--check README.md` the measured metric and
baseline are compared with the README's row and the script exits 1 when one is off by more than the tolerance,
so the README cannot drift from what the code does.

    .venv/bin/python scripts/demo_figures.py -e 1 -e 2                   # print the rows
    .venv/bin/python scripts/demo_figures.py -e 1 -e 2 --check README.md # and compare (CI: tests/test_readme.py)

Wall time is printed, never checked: it depends on the machine and its load (the README states a range).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# | 1 `belka_demo_cnn1d` | BELKA, cnn1d | 20-30 s | belka_ap 0.422 | 0.032 (constant prior) |
ROW = re.compile(r"^\|\s*(\d+)\s+`([^`]+)`\s*\|[^|]*\|[^|]*\|\s*(\w+)\s+([0-9.]+)\s*\|\s*([0-9.]+)")


@dataclass
class Figure:
    experiment: int
    name: str
    seconds: float
    metric: str
    value: float
    baseline: float | None


def measure(exp: int, molremote: str, runs: Path) -> Figure:
    env = {**os.environ, "MOLREMOTE_RUNS": str(runs), "MOLREMOTE_PROJECT": str(ROOT)}
    env.pop("MOLREMOTE_STORE", None)
    t0 = time.perf_counter()
    cp = subprocess.run([molremote, "train", "-e", str(exp), "--restart"], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if cp.returncode != 0:
        sys.exit(f"molremote train -e {exp} exited {cp.returncode}:\n{cp.stderr[-3000:]}")
    run_dir = Path(cp.stdout.strip().splitlines()[-1])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    best = manifest["best"]
    return Figure(
        exp, manifest["name"].split("_", 1)[1], seconds, best["metric"], best["value"], manifest.get("baseline")
    )


def readme_rows(path: Path) -> dict[int, tuple[str, str, float, float]]:
    rows = {}
    for line in path.read_text().splitlines():
        m = ROW.match(line)
        if m:
            rows[int(m.group(1))] = (m.group(2), m.group(3), float(m.group(4)), float(m.group(5)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-e", "--experiment", type=int, action="append", required=True)
    ap.add_argument("--check", type=Path, help="a markdown file whose demo table the figures must match")
    # Why 0.03: CPU runs are deterministic for one thread count, but the metric moves by ~0.01-0.02 between
    # 1 and 2 intra-op threads (reduction order); a real regression (a broken tokenizer, loss or fold) moves it
    # by 0.1 or more (the trivial baselines are 0.03).
    ap.add_argument("--tolerance", type=float, default=0.03, help="largest |measured - README| metric gap")
    ap.add_argument("--molremote", default=str(ROOT / ".venv" / "bin" / "molremote"))
    a = ap.parse_args(argv)
    expected = readme_rows(a.check) if a.check else {}
    bad = []
    with tempfile.TemporaryDirectory(prefix="molremote-demo-") as tmp:
        for exp in a.experiment:
            f = measure(exp, a.molremote, Path(tmp))
            base = "n/a" if f.baseline is None else f"{f.baseline:.3f}"
            print(f"| {f.experiment} `{f.name}` | {f.seconds:.0f} s | {f.metric} {f.value:.3f} | {base} |", flush=True)
            if not a.check:
                continue
            if exp not in expected:
                bad.append(f"experiment {exp}: no row in {a.check}")
                continue
            name, metric, value, baseline = expected[exp]
            if name != f.name or metric.lower() != f.metric.lower():
                bad.append(f"experiment {exp}: {a.check} names `{name}` {metric}, the run is `{f.name}` {f.metric}")
            if abs(f.value - value) > a.tolerance:
                bad.append(
                    f"experiment {exp}: {f.metric} {f.value:.3f}, {a.check} says {value:.3f} (tolerance {a.tolerance})"
                )
            if f.baseline is None or abs(f.baseline - baseline) > 0.005:
                bad.append(f"experiment {exp}: baseline {base}, {a.check} says {baseline:.3f}")
    for b in bad:
        print(f"MISMATCH {b}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
