"""Benchmark: averaging 10 BELKA-size submissions (1,674,896 rows each, rows shuffled differently in every
file) with molremote.results.averaging.average against a plain pandas concat + groupby-mean on the same files.

Each side runs in its own subprocess (read + align + average + write a submission CSV), so its wall time and
peak RSS are its own. The two outputs are compared (max |difference|, same ids).

    .venv/bin/python benchmarks/ensemble.py [--members 10] [--rows 1674896] [--keep DIR]
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

import numpy as np

BELKA_TEST_ROWS = 1_674_896
FIRST_ID = 295_246_830  # BELKA's first test id


def generate(d: Path, members: int, rows: int, seed: int = 0) -> list[Path]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    ids = np.arange(FIRST_ID, FIRST_ID + rows, dtype=np.int64)
    base = rng.random(rows)
    paths = []
    for i in range(members):
        perm = rng.permutation(rows)
        binds = np.clip(base + 0.1 * rng.standard_normal(rows), 0, 1).astype(np.float32)[perm]
        p = d / f"member{i:02d}.csv"
        with open(p, "wb") as f:
            f.write(b"id,binds\n")
            pacsv.write_csv(pa.table({"id": ids[perm], "binds": binds}), f, pacsv.WriteOptions(include_header=False))
        paths.append(p)
    return paths


def run_molremote(paths: list[Path], out: Path) -> dict[str, float]:
    from molremote.results.averaging import average
    from molremote.results.submission_files import write_submission_atomic
    from molremote.tasks.belka.results import SUBMISSION as BELKA

    t0 = time.perf_counter()
    pred = average(paths, spec=BELKA)  # read + format check + align by id + weighted mean
    t1 = time.perf_counter()
    write_submission_atomic(pred, out, spec=BELKA, overwrite=True)  # check + write temp + rename
    return {"average_s": t1 - t0, "write_s": time.perf_counter() - t1}


def run_pandas(paths: list[Path], out: Path) -> dict[str, float]:
    import pandas as pd

    t0 = time.perf_counter()
    df = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    mean = df.groupby("id", sort=True)["binds"].mean().reset_index()
    t1 = time.perf_counter()
    mean.to_csv(out, index=False)
    return {"average_s": t1 - t0, "write_s": time.perf_counter() - t1}


def child(which: str, files: list[str], out: str) -> None:
    import pandas  # noqa: F401  both sides pay their imports before the clock starts
    import pyarrow.csv  # noqa: F401

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
    t0 = time.perf_counter()
    parts = (run_molremote if which == "molremote" else run_pandas)([Path(f) for f in files], Path(out))
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": dt, "peak_rss_mib": rss, "import_rss_mib": base_rss, **parts}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--rows", type=int, default=BELKA_TEST_ROWS)
    ap.add_argument("--keep", type=Path, help="write the files here and keep them (default: a temp dir)")
    ap.add_argument("--child", nargs=3, metavar=("WHICH", "FILES_JSON", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child[0], json.loads(a.child[1]), a.child[2])

    with tempfile.TemporaryDirectory() as tmp:
        d = a.keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        paths = generate(d, a.members, a.rows)
        size = sum(p.stat().st_size for p in paths) / 2**20
        print(f"generated {a.members} files x {a.rows:,} rows ({size:.0f} MiB) in {time.perf_counter() - t0:.1f} s")
        res = {}
        for which in ("molremote", "pandas"):
            out = d / f"out_{which}.csv"
            r = subprocess.run(
                [sys.executable, __file__, "--child", which, json.dumps([str(p) for p in paths]), str(out)],
                capture_output=True,
                text=True,
                env={**os.environ},
            )
            if r.returncode:
                sys.exit(f"{which} failed:\n{r.stderr}")
            res[which] = json.loads(r.stdout.strip().splitlines()[-1])
            x = res[which]
            print(
                f"{which:9s}: {x['seconds']:6.2f} s (read+align+average {x['average_s']:.2f} s, write "
                f"{x['write_s']:.2f} s)   peak RSS {x['peak_rss_mib']:5.0f} MiB "
                f"({x['import_rss_mib']:.0f} after imports)"
            )
        import pandas as pd

        m = pd.read_csv(d / "out_molremote.csv")
        p = pd.read_csv(d / "out_pandas.csv")
        same_ids = bool(np.array_equal(m["id"].to_numpy(), p["id"].to_numpy()))
        diff = float(np.abs(m["binds"].to_numpy() - p["binds"].to_numpy()).max())
        print(
            f"ratio pandas/molremote: {res['pandas']['seconds'] / res['molremote']['seconds']:.1f}x faster, "
            f"{res['pandas']['peak_rss_mib'] / res['molremote']['peak_rss_mib']:.1f}x less peak memory"
        )
        print(f"outputs: same ids {same_ids}, max |difference| {diff:.2e}")
        if not same_ids or diff > 1e-6:  # both average the same float32 columns; a speed-up with other output is void
            sys.exit(
                f"MISMATCH: molremote and pandas outputs differ (same ids {same_ids}, max |difference| {diff:.2e})"
            )


if __name__ == "__main__":
    main()
