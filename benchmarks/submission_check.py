"""Benchmark: checking a BELKA-size submission (`check_submission` with the expected ids: read, columns,
dtypes, ranges, duplicate and missing ids) against a bare `pyarrow.csv.read_csv` of the same file.

    .venv/bin/python benchmarks/submission_check.py [--rows 1674896] [--repeats 3]

Writes one shuffled `id,binds` file of BELKA's test size, then times both interleaved (best of `--repeats`, so
both see the same load on a shared machine) and prints the ratio check / bare read.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_674_896)  # BELKA's test rows
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pc

    from molremote.results.submission_files import check_submission, write_submission_atomic
    from molremote.tasks.belka.results import SUBMISSION as BELKA

    rng = np.random.default_rng(0)
    ids = rng.permutation(np.arange(295_246_830, 295_246_830 + a.rows))
    with tempfile.TemporaryDirectory() as d:
        path = write_submission_atomic(
            pa.table({"id": ids, "binds": rng.random(a.rows).astype(np.float32)}), Path(d) / "big.csv"
        )
        expected = np.sort(ids)
        read_s, check_s = [], []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            pc.read_csv(path)
            t1 = time.perf_counter()
            check_submission(path, BELKA, expected_ids=expected)
            read_s.append(t1 - t0)
            check_s.append(time.perf_counter() - t1)
    r, c = min(read_s), min(check_s)
    print(f"rows {a.rows:,}  bare pyarrow read {r:.3f} s  check_submission {c:.3f} s  ratio {c / r:.2f}x")


if __name__ == "__main__":
    main()
