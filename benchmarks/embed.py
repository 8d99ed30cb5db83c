"""Benchmark: protein embeddings with length-sorted batches (molremote) against file-order batches, same
sequences, same model, same token budget: tokens/s, padding, peak memory; then the cache answering them all.

    .venv/bin/python benchmarks/embed.py                         # 400 proteins, ESM-2 8M-shaped model, CPU
    .venv/bin/python benchmarks/embed.py --shape 150m --n 2000 --device cuda --batch-tokens 16384
    .venv/bin/python benchmarks/embed.py --model /path/to/esm2_t30_150M_UR50D --n 2000

Proteins: generated with UniProt-like lengths (log-normal, median 300 residues, 5% over 1,000; Swiss-Prot's
mean is ~360) and residue frequencies, so the result does not depend on a download. Model: a local or Hub
model with --model, else an ESM-2 of the chosen shape with random weights (same compute as the pretrained
one: the figures are about batching, not about what the numbers mean). Each ordering runs in its own
subprocess (fresh cache, peak RSS its own); the script exits non-zero if the two orders' embeddings differ.
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

# ESM-2 shapes (layers, hidden, heads) of the released checkpoints
SHAPES = {"8m": (6, 320, 20), "35m": (12, 480, 20), "150m": (30, 640, 20), "650m": (33, 1280, 20)}
# Swiss-Prot residue frequencies (%), rounded
FREQ = dict(zip("LAGVESIKRDTPNQFYMHCW", [9.9, 8.3, 7.1, 6.9, 6.8, 6.6, 5.9, 5.8, 5.5, 5.5, 5.3, 4.7, 4.1,
                                          3.9, 3.9, 2.9, 2.4, 2.3, 1.4, 1.1]))  # fmt: skip


def proteins(n: int, seed: int) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(300), 0.75, size=n), 30, 5000).astype(int)
    letters = np.array(list(FREQ))
    p = np.array(list(FREQ.values()))
    return ["".join(rng.choice(letters, size=int(k), p=p / p.sum())) for k in lengths]


def random_esm(shape: str, out: Path) -> Path:
    import torch
    from transformers import EsmConfig, EsmModel
    from transformers.utils import logging as hf_logging

    from molremote.embeddings.demo_model import ESM_VOCAB

    layers, hidden, heads = SHAPES[shape]
    torch.manual_seed(0)
    hf_logging.disable_progress_bar()
    cfg = EsmConfig(vocab_size=33, mask_token_id=32, pad_token_id=1, hidden_size=hidden, num_hidden_layers=layers,
                    num_attention_heads=heads, intermediate_size=4 * hidden, max_position_embeddings=1026,
                    position_embedding_type="rotary", emb_layer_norm_before=False, token_dropout=True,
                    layer_norm_eps=1e-5)  # fmt: skip
    from transformers import EsmTokenizer

    EsmModel(cfg, add_pooling_layer=False).save_pretrained(out)
    (out / "vocab.txt").write_text("\n".join(ESM_VOCAB) + "\n")
    EsmTokenizer(str(out / "vocab.txt")).save_pretrained(out)
    return out


def worker(a: argparse.Namespace) -> None:
    """One ordering in this process: prints a JSON line of stats and memory."""
    import numpy as np
    import torch

    from molremote.embeddings import EmbeddingSpec, EmbedStats, embed_sequences
    from molremote.embeddings.fasta import read_fasta

    torch.set_num_threads(a.threads)
    seqs = [r.sequence for r in read_fasta(a.fasta)]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    st = EmbedStats()
    t0, cpu0 = time.perf_counter(), time.process_time()
    x = embed_sequences(EmbeddingSpec(a.model), seqs, cache_dir=Path(a.cache), device=a.device,
                        batch_tokens=a.batch_tokens, sort_by_length=a.worker != "file", stats=st)  # fmt: skip
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    np.save(a.save, x)
    gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    print(json.dumps({
        "order": a.worker, "wall": wall, "cpu": cpu, "seconds": st.seconds, "tokens": st.tokens, "padded": st.padded,
        "batches": st.batches, "computed": st.computed, "cached": st.cached, "load": st.load_seconds,
        "rss_before_mib": rss_before, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mib": gpu,
    }))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="8m")
    ap.add_argument("--model", help="a local model folder or Hub id instead of a random-weight --shape model")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-tokens", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadiest on a shared machine)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="folder to keep the FASTA, model and caches in")
    ap.add_argument("--worker", choices=["sorted", "file", "cached"], help=argparse.SUPPRESS)
    ap.add_argument("--fasta", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a)
        return

    import numpy as np

    d = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="embed-bench-"))
    d.mkdir(parents=True, exist_ok=True)
    seqs = proteins(a.n, a.seed)
    fasta = d / f"proteins-{a.n}-{a.seed}.fasta"
    fasta.write_text("".join(f">p{i}\n{s}\n" for i, s in enumerate(seqs)))
    model = a.model or str(d / f"esm2-{a.shape}-random")
    if not a.model and not Path(model).is_dir():
        random_esm(a.shape, Path(model))
    lengths = np.array([len(s) for s in seqs])
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {a.n} proteins, lengths median "
          f"{int(np.median(lengths))}, mean {lengths.mean():.0f}, max {lengths.max()}, {(lengths > 1022).mean():.1%} "
          f"over 1,022 (head+tail); model {a.model or f'ESM-2 {a.shape}-shaped, random weights'}")  # fmt: skip

    def run(order: str, cache: Path) -> dict:
        cmd = [sys.executable, __file__, "--worker", order, "--fasta", str(fasta), "--model", model]
        cmd += ["--cache", str(cache), "--save", str(d / f"{order}.npy"), "--device", a.device]
        cmd += ["--threads", str(a.threads)]
        if a.batch_tokens:
            cmd += ["--batch-tokens", str(a.batch_tokens)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode:
            sys.exit(f"{order} failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    res = {o: run(o, d / f"cache-{o}-{time.time_ns()}") for o in ("sorted", "file")}
    res["cached"] = run("cached", _last(d, "sorted"))
    for o in ("sorted", "file"):
        r = res[o]
        rate = r["tokens"] / r["seconds"]
        print(
            f"{o:>7}: {rate:8,.0f} tokens/s  {r['seconds']:7.1f} s (CPU {r['cpu']:.1f} s: "
            f"{r['tokens'] / r['cpu']:,.0f} tokens/CPU-s)  {r['batches']:4d} batches  "
            f"padding {1 - r['tokens'] / r['padded']:5.1%}  peak RSS {r['peak_rss_mib']:6.0f} MiB "
            f"(before {r['rss_before_mib']:.0f})"
            + (f"  peak GPU {r['peak_gpu_mib']:.0f} MiB" if r["peak_gpu_mib"] else "")
        )
    c = res["cached"]
    print(f" cached: {c['cached']} proteins from the cache in {c['wall']:.2f} s (computed {c['computed']})")
    speedup = (res["sorted"]["tokens"] / res["sorted"]["seconds"]) / (res["file"]["tokens"] / res["file"]["seconds"])
    cpu_ratio = res["file"]["cpu"] / res["sorted"]["cpu"]
    diff = float(np.abs(np.load(d / "sorted.npy").astype(np.float32) - np.load(d / "file.npy")).max())
    same = np.array_equal(np.load(d / "sorted.npy"), np.load(d / "cached.npy"))
    print(f"length-sorted / file order: {speedup:.2f}x tokens/s, {cpu_ratio:.2f}x less CPU; "
          f"max |difference| of the embeddings {diff:.1e}; "
          f"cache read identical: {same}")  # fmt: skip
    if diff > 1e-2 or not same or c["computed"]:
        sys.exit("the orderings or the cache disagree")


def _last(d: Path, order: str) -> Path:
    return sorted(d.glob(f"cache-{order}-*"))[-1]


if __name__ == "__main__":
    main()
