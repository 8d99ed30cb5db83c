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

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    base_rss = ru0.ru_maxrss / 1024  # KiB on Linux -> MiB
    t0 = time.perf_counter()
    fn = run_molremote if which == "molremote" else run_pandas
    parts = fn([Path(f) for f in files], Path(out), max_per_id)
    dt = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru.ru_utime + ru.ru_stime - ru0.ru_utime - ru0.ru_stime  # all threads: robust to a loaded machine
    print(
        json.dumps(
            {"seconds": dt, "cpu_s": cpu, "peak_rss_mib": ru.ru_maxrss / 1024, "import_rss_mib": base_rss, **parts}
        )
    )


def compare(a: Path, b: Path) -> tuple[int, int, int, float]:
    """(pairs only in one output, pairs in both, shared pairs whose scores differ, the largest difference in
    units of the 3rd significant figure)."""
    import pandas as pd

    kw = {"sep": "\t", "header": None, "names": ["protein", "term", "score"]}
    x, y = pd.read_csv(a, **kw), pd.read_csv(b, **kw)
    j = x.merge(y, on=["protein", "term"], how="outer", indicator=True)
    both = j["_merge"] == "both"
    sx, sy = j.loc[both, "score_x"].to_numpy(), j.loc[both, "score_y"].to_numpy()
    unit = 10.0 ** (np.floor(np.log10(np.maximum(sx, sy))) - 2)  # one unit of the 3rd significant figure
    d = np.abs(sx - sy) / unit
    return int((~both).sum()), int(both.sum()), int((d > 1e-6).sum()), float(d.max()) if len(d) else 0.0


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
    ap.add_argument("--generate-into", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child[0], json.loads(a.child[1]), a.child[2], int(a.child[3]))
    if a.generate_into:
        paths = generate(a.generate_into, a.members, a.proteins, a.terms, a.vocab)
        print(json.dumps([str(p) for p in paths]))
        return None

    with tempfile.TemporaryDirectory() as tmp:
        d = a.keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        # generated in a subprocess: Linux keeps a process's peak RSS across fork + exec, so a parent that held
        # the generated arrays would lend its peak to both children's figures
        gen = [sys.executable, __file__, "--generate-into", str(d), "--members", str(a.members)]
        gen += ["--proteins", str(a.proteins), "--terms", str(a.terms), "--vocab", str(a.vocab)]
        g = subprocess.run(gen, capture_output=True, text=True, check=False)
        if g.returncode:
            sys.exit(f"generating the members failed:\n{g.stderr[-3000:]}")
        paths = [Path(p) for p in json.loads(g.stdout.strip().splitlines()[-1])]
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
                f"{which:9s}: {x['seconds']:6.2f} s wall, {x['cpu_s']:6.2f} s CPU (read+align+average "
                f"{x['average_s']:.2f} s, cap+round+write "
                f"{x['write_s']:.2f} s)   peak RSS {x['peak_rss_mib']:6.0f} MiB ({x['import_rss_mib']:.0f} after "
                f"imports)   {int(x['pairs']):,} pairs written"
            )
        if len(res) < 2:
            return
        print(
            f"ratio pandas/molremote: {res['pandas']['seconds'] / res['molremote']['seconds']:.1f}x faster "
            f"(wall), {res['pandas']['cpu_s'] / res['molremote']['cpu_s']:.1f}x less CPU time, "
            f"{res['pandas']['peak_rss_mib'] / res['molremote']['peak_rss_mib']:.1f}x less peak memory"
        )
        only_one, both, n_diff, units = compare(d / "out_molremote.tsv", d / "out_pandas.tsv")
        print(
            f"outputs: {both:,} shared pairs, {only_one:,} in one only, {n_diff:,} scores differing by at most "
            f"{units:.2f} unit(s) of the 3rd significant figure"
        )
        # both round the same mean to 3 significant figures, but pandas sums with Kahan compensation and divides
        # by n where molremote adds w * score member by member: a mean that falls on a rounding tie (means of
        # 5 scores with 3 figures often do) may round to either neighbour. Anything beyond one unit, or other
        # pairs kept (beyond ties at a protein's 1,500th place), is an error.
        if units > 1.0 + 1e-6 or n_diff > 0.05 * both or only_one > 2 * a.proteins:
            sys.exit(f"MISMATCH: outputs differ ({only_one} pairs in one only, {n_diff} scores, {units:.2f} units)")


if __name__ == "__main__":
    main()
