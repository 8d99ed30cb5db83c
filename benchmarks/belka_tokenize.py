"""Benchmark: preparing BELKA's long parquet (long -> wide, tokenize, write memmaps) with molremote, and
tokenizing its molecules three ways: molremote's vectorised encoder, a per-character Python loop, and
Hugging Face `tokenizers` (a WordLevel vocabulary over single characters, batch encode, same ids).

    .venv/bin/python benchmarks/belka_tokenize.py                    # 10M molecules (30M rows)
    .venv/bin/python benchmarks/belka_tokenize.py --n 300000 --keep /tmp/belka-bench
    # prepare before/after a change, alternating on the same file (--repeat runs of each):
    mkdir /tmp/base && git archive <commit> molremote | tar -x -C /tmp/base
    .venv/bin/python benchmarks/belka_tokenize.py --keep /tmp/belka-bench --baseline /tmp/base --repeat 3 --prepare-only

Each measurement runs in its own subprocess, so its wall time and peak RSS are its own. Targets: prepare
>= 1M molecules/s on 2 cores, the real 98,415,610 molecules projected under 2 minutes, peak RSS < 2 GB.
The Python loop runs on a sample and is extrapolated; all three tokenizers are checked to give the same ids.
(Named belka_tokenize.py, not tokenize.py: a script's folder is first on sys.path, and a benchmarks/tokenize.py
would shadow the standard library's `tokenize`, which pandas, torch and linecache import.)
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

REAL_MOLECULES = 98_415_610


def _use_source_tree(root: str) -> None:
    """Import molremote from `root` instead of the editable install (whose finder precedes sys.path)."""
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
    sys.path.insert(0, root)


def child(kind: str, parquet: str, out: str, sample: int, batch_rows: int) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    res: dict = {}
    if kind in ("prepare", "prepare-baseline"):
        if kind == "prepare-baseline":
            _use_source_tree(os.environ["BELKA_BENCH_BASELINE"])
        import molremote
        from molremote.tasks.belka.prepare import prepare

        assert kind == "prepare" or os.environ["BELKA_BENCH_BASELINE"] in molremote.__file__

        t = time.perf_counter()
        meta = prepare(parquet, out, "train", batch_rows=batch_rows, progress=False, restart=True)
        res = {"seconds": time.perf_counter() - t, "molecules": meta["n"]}
    else:
        # the same unique molecules for every tokenizer: every 3rd row of the first `sample` molecules
        parts, got = [], 0
        for b in pq.ParquetFile(parquet).iter_batches(batch_size=1 << 17, columns=["molecule_smiles"]):
            parts.append(b.column(0))
            got += b.num_rows
            if got >= 3 * sample:
                break
        smiles = pa.concat_arrays(parts).slice(0, 3 * sample).take(pa.array(np.arange(0, 3 * sample, 3)))
        del parts
        from molremote.tasks.belka.tokens import SYMBOLS, encode

        ref = encode(smiles)
        if kind == "molremote":
            t0 = time.perf_counter()
            encode(smiles)
            res = {"seconds": time.perf_counter() - t0, "molecules": len(smiles)}
        elif kind == "python":
            table = {c: i for i, c in enumerate(SYMBOLS, start=1)}
            strs = smiles.to_pylist()
            t0 = time.perf_counter()
            out_ = np.zeros((len(strs), 142), dtype=np.uint8)
            for i, s in enumerate(strs):
                row = out_[i]
                for j, c in enumerate(s):
                    row[j] = table[c]
            res = {"seconds": time.perf_counter() - t0, "molecules": len(strs), "same": bool((out_ == ref).all())}
        elif kind == "tokenizers":
            from tokenizers import Regex, Tokenizer, models, pre_tokenizers

            vocab = {"[PAD]": 0, **{c: i for i, c in enumerate(SYMBOLS, start=1)}}
            tok = Tokenizer(models.WordLevel(vocab, unk_token="[PAD]"))
            tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
            tok.enable_padding(pad_id=0, pad_token="[PAD]", length=142)
            tok.enable_truncation(142)
            strs = smiles.to_pylist()
            t0 = time.perf_counter()
            ids = np.zeros((len(strs), 142), dtype=np.uint8)
            for lo in range(0, len(strs), 20_000):  # chunks: an Encoding object per molecule is heavy (~20 KB)
                enc = tok.encode_batch(strs[lo : lo + 20_000])
                ids[lo : lo + len(enc)] = [e.ids for e in enc]
            res = {"seconds": time.perf_counter() - t0, "molecules": len(strs), "same": bool((ids == ref).all())}
    res["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return res


def run_child(kind: str, parquet: Path, out: Path, sample: int, batch_rows: int, baseline: str | None = None) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--parquet",
        str(parquet),
        "--out",
        str(out),
        "--sample",
        str(sample),
        "--batch-rows",
        str(batch_rows),
    ]
    env = dict(os.environ, BELKA_BENCH_BASELINE=str(Path(baseline).resolve())) if baseline else None
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        raise SystemExit(f"{kind} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000_000, help="molecules in the generated parquet")
    ap.add_argument("--keep", help="folder to keep (and reuse) the generated parquet and the prepared arrays")
    ap.add_argument("--sample", type=int, default=1_000_000, help="molecules tokenized by each tokenizer")
    ap.add_argument("--python-sample", type=int, default=100_000, help="molecules for the Python loop")
    ap.add_argument("--batch-rows", type=int, default=1 << 17)
    ap.add_argument(
        "--baseline",
        help="another molremote source tree (holding molremote/): its prepare runs "
        "alternately with this one on the same file, for before/after figures",
    )
    ap.add_argument("--repeat", type=int, default=1, help="prepare runs of each (alternating with --baseline)")
    ap.add_argument("--prepare-only", action="store_true", help="skip the tokenize-only comparison")
    ap.add_argument("--child")
    ap.add_argument("--parquet")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.parquet, a.out, a.sample, a.batch_rows)))
        return

    d = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="belka-bench-"))
    d.mkdir(parents=True, exist_ok=True)
    parquet = d / f"train-{a.n}.parquet"
    if not parquet.exists():
        from molremote.tasks.belka import synth as belka_synth

        t = time.perf_counter()
        belka_synth.write(parquet, a.n, split="train", seed=0)
        print(
            f"generated {parquet} ({a.n:,} molecules, {3 * a.n:,} rows, "
            f"{parquet.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s"
        )
    sample = min(a.sample, a.n)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")

    print(f"\nprepare (read parquet, long->wide, tokenize, write memmaps), {a.n:,} molecules:")
    kinds = ["prepare-baseline", "prepare"] if a.baseline else ["prepare"]
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(a.repeat):
        for kind in kinds:
            p = run_child(kind, parquet, d / "prepared", sample, a.batch_rows, a.baseline)
            rate = p["molecules"] / p["seconds"]
            rates[kind].append(rate)
            label = f"baseline ({a.baseline})" if kind == "prepare-baseline" else "molremote prepare"
            print(
                f"  {label:18s}: {p['seconds']:7.2f} s  {rate / 1e6:6.2f} M molecules/s  "
                f"peak RSS {p['peak_rss_mib']:6.0f} MiB   -> {REAL_MOLECULES:,} molecules projected "
                f"{REAL_MOLECULES / rate:6.0f} s",
                flush=True,
            )
    if a.baseline:
        med = {k: sorted(v)[len(v) // 2] for k, v in rates.items()}
        print(
            f"  median: baseline {med['prepare-baseline'] / 1e6:.2f} M/s, now {med['prepare'] / 1e6:.2f} M/s "
            f"({med['prepare'] / med['prepare-baseline']:.2f}x)"
        )
    if a.prepare_only:
        return

    print(
        f"\ntokenize only ({sample:,} unique molecules; Python loop on {min(a.python_sample, sample):,}, extrapolated):"
    )
    rows = {}
    mismatched = []
    for kind, n in (("molremote", sample), ("tokenizers", sample), ("python", min(a.python_sample, sample))):
        r = run_child(kind, parquet, d / "prepared", n, a.batch_rows)
        rows[kind] = r["molecules"] / r["seconds"]
        same = "" if "same" not in r else f"  same ids as molremote: {r['same']}"
        if r.get("same") is False:
            mismatched.append(kind)
        print(
            f"  {kind:17s}: {r['molecules'] / r['seconds'] / 1e6:7.3f} M molecules/s  "
            f"(full {REAL_MOLECULES:,}: {REAL_MOLECULES / rows[kind]:8.0f} s)  "
            f"peak RSS {r['peak_rss_mib']:5.0f} MiB{same}"
        )
    print(
        f"\nratios: molremote encode / tokenizers = {rows['molremote'] / rows['tokenizers']:.1f}x, "
        f"molremote encode / Python loop = {rows['molremote'] / rows['python']:.0f}x"
    )
    if not a.keep:
        import shutil

        shutil.rmtree(d, ignore_errors=True)
    if mismatched:  # a speed figure for wrong output means nothing: fail loudly
        sys.exit(f"MISMATCH: {', '.join(mismatched)} gave other token ids than molremote")


if __name__ == "__main__":
    main()
