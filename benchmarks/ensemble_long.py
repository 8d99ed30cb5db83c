"""Benchmark: averaging long-format members (CAFA's `protein<TAB>GO:term<TAB>score`, no header) aligned by
(protein, term), missing pairs counting as 0, with molremote.results.long_format against pandas (concat +
groupby sum), side by side.

Each member predicts `--terms` terms for each of `--proteins` proteins, drawn from a vocabulary of
`--vocab` GO terms around a shared per-protein core (so members overlap, as real models do, and each also has
pairs the others lack), scores with 3 significant figures, rows grouped by protein, in its own protein order.
Both sides do the whole job: read the 5 files, average with missing = 0, keep the top `--max-per-id` terms of
each protein, round to 3 significant figures and write the TSV. Each runs in its own subprocess, so its wall
time and peak RSS (getrusage) are its own. The outputs are compared (same pairs, same scores).

    .venv/bin/python benchmarks/ensemble_long.py --proteins 20000 --terms 1500       # 30M pairs per member
    .venv/bin/python benchmarks/ensemble_long.py --proteins 2000 --terms 300 --keep /tmp/long-bench

The competition's size (224,309 proteins x 1,500 terms = 336M pairs per member) is a parameter; memory grows
linearly with the pairs (see benchmarks/README.md), so pick the largest the machine holds for BOTH sides.
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

MAX_PER_ID = 1500  # CAFA: at most 1,500 terms per protein


def generate(d: Path, members: int, proteins: int, terms: int, vocab: int, seed: int = 0) -> list[Path]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from molremote.results.long_format import round_sig

    rng = np.random.default_rng(seed)
    go = pa.array([f"GO:{i:07d}" for i in rng.choice(10_000_000, vocab, replace=False)])
    names = pa.array([f"P{i:06d}" for i in range(proteins)])
    core = rng.integers(0, vocab, proteins)  # each protein's terms sit around its own core
    paths = []
    for m in range(members):
        order = rng.permutation(proteins)  # every member lists proteins in its own order
        p = np.repeat(order, terms)
        # terms: core + a member-specific offset window, so members share most pairs but not all
        offs = np.tile(np.arange(terms), proteins) + rng.integers(0, terms // 5 + 1, proteins).repeat(terms)
        t = (core[p] + offs) % vocab
        score = round_sig(np.clip(rng.beta(0.5, 3, len(p)), 1e-3, 1.0), 3)
        tab = pa.table(
            {
                "p": pa.DictionaryArray.from_arrays(pa.array(p, pa.int32()), names),
                "t": pa.DictionaryArray.from_arrays(pa.array(t, pa.int32()), go),
                "s": pa.array(score),
            }
        )
        path = d / f"member{m}.tsv"
        with open(path, "wb") as f:
            pacsv.write_csv(tab, f, pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none"))
        paths.append(path)
    return paths


def run_molremote(paths: list[Path], out: Path, max_per_id: int) -> dict[str, float]:
    from molremote.results.long_format import LongFormat, average_long, check_long, finish_long, write_long

    fmt = LongFormat("protein", "term", "score", sig_figs=3, max_per_id=max_per_id, key_pattern=r"GO:\d{7}")
    t0 = time.perf_counter()
    avg = average_long(paths, fmt)  # read + format check + align by (protein, term) + weighted sum
    t1 = time.perf_counter()
    fin = check_long(finish_long(avg, fmt), fmt)  # top terms per protein, 3 significant figures, checked
    write_long(fin, out, fmt, overwrite=True)
    return {"average_s": t1 - t0, "write_s": time.perf_counter() - t1, "pairs": float(len(fin))}


def run_pandas(paths: list[Path], out: Path, max_per_id: int) -> dict[str, float]:
    import pandas as pd

    t0 = time.perf_counter()
    n = len(paths)
    df = pd.concat(
        [pd.read_csv(p, sep="\t", header=None, names=["protein", "term", "score"]) for p in paths], ignore_index=True
    )
    avg = (df.groupby(["protein", "term"], sort=False)["score"].sum() / n).reset_index()  # missing pairs = 0
    del df
    t1 = time.perf_counter()
    avg = avg.sort_values(["protein", "score"], ascending=[True, False])
    avg = avg.groupby("protein", sort=False).head(max_per_id)
    avg.to_csv(out, sep="\t", header=False, index=False, float_format="%.3g")
    return {"average_s": t1 - t0, "write_s": time.perf_counter() - t1, "pairs": float(len(avg))}


def child(which: str, files: list[str], out: str, max_per_id: int) -> None:
    import pandas  # noqa: F401  both sides pay their imports before the clock starts
    import pyarrow.csv  # noqa: F401

    import molremote.results.long_format  # noqa: F401

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
    t0 = time.perf_counter()
    fn = run_molremote if which == "molremote" else run_pandas
    parts = fn([Path(f) for f in files], Path(out), max_per_id)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": dt, "peak_rss_mib": rss, "import_rss_mib": base_rss, **parts}))


def compare(a: Path, b: Path) -> tuple[int, int, float]:
    """(pairs only in one output, pairs in both, max |score difference| on shared pairs)."""
    import pandas as pd

    kw = {"sep": "\t", "header": None, "names": ["protein", "term", "score"]}
    x, y = pd.read_csv(a, **kw), pd.read_csv(b, **kw)
    j = x.merge(y, on=["protein", "term"], how="outer", indicator=True)
    both = j["_merge"] == "both"
    diff = float((j.loc[both, "score_x"] - j.loc[both, "score_y"]).abs().max()) if both.any() else 0.0
    return int((~both).sum()), int(both.sum()), diff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--proteins", type=int, default=20_000)
    ap.add_argument("--terms", type=int, default=1500, help="terms per protein in each member")
    ap.add_argument("--vocab", type=int, default=30_000, help="distinct GO terms")
    ap.add_argument("--max-per-id", type=int, default=MAX_PER_ID)
    ap.add_argument("--only", choices=("molremote", "pandas"), help="run one side (e.g. pandas does not fit)")
    ap.add_argument("--keep", type=Path, help="write the files here and keep them (default: a temp dir)")
    ap.add_argument("--child", nargs=4, metavar=("WHICH", "FILES_JSON", "OUT", "MAX"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child[0], json.loads(a.child[1]), a.child[2], int(a.child[3]))

    with tempfile.TemporaryDirectory() as tmp:
        d = a.keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        paths = generate(d, a.members, a.proteins, a.terms, a.vocab)
        size = sum(p.stat().st_size for p in paths) / 2**20
        print(
            f"generated {a.members} members x {a.proteins:,} proteins x {a.terms:,} terms "
            f"({a.proteins * a.terms:,} pairs each, {size:.0f} MiB) in {time.perf_counter() - t0:.1f} s"
        )
        res = {}
        for which in ("molremote", "pandas") if a.only is None else (a.only,):
            out = d / f"out_{which}.tsv"
            r = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    which,
                    json.dumps([str(p) for p in paths]),
                    str(out),
                    str(a.max_per_id),
                ],
                capture_output=True,
                text=True,
                env={**os.environ},
            )
            if r.returncode:
                sys.exit(f"{which} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
            res[which] = x = json.loads(r.stdout.strip().splitlines()[-1])
            print(
                f"{which:9s}: {x['seconds']:6.2f} s (read+align+average {x['average_s']:.2f} s, cap+round+write "
                f"{x['write_s']:.2f} s)   peak RSS {x['peak_rss_mib']:6.0f} MiB ({x['import_rss_mib']:.0f} after "
                f"imports)   {int(x['pairs']):,} pairs written"
            )
        if len(res) < 2:
            return
        print(
            f"ratio pandas/molremote: {res['pandas']['seconds'] / res['molremote']['seconds']:.1f}x faster, "
            f"{res['pandas']['peak_rss_mib'] / res['molremote']['peak_rss_mib']:.1f}x less peak memory"
        )
        only_one, both, diff = compare(d / "out_molremote.tsv", d / "out_pandas.tsv")
        print(f"outputs: {both:,} shared pairs, {only_one:,} in one only, max |score difference| {diff:.2e}")
        # %.3g of the same float64 mean on both sides; pairs can differ only at a protein's cut-off when two
        # terms tie at the 1,500th place, so a mismatch beyond that is an error
        if diff > 1e-12 or only_one > 2 * a.proteins:
            sys.exit(f"MISMATCH: outputs differ ({only_one} pairs in one only, max |difference| {diff:.2e})")


if __name__ == "__main__":
    main()
