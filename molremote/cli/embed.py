"""embed: per-protein embeddings of a FASTA file into the shared embedding cache (molremote.embeddings).
torch is imported only when an ESM model computes (not for --help, k-mers or a fully cached file)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app, console


@app.command()
def embed(
    model: str = typer.Option(
        ..., "--model", help="Hub id (facebook/esm2_t30_150M_UR50D), a local model folder, or kmer:<k>."
    ),
    fasta: Path = typer.Option(..., "--fasta", help="Protein FASTA file."),
    policy: str = typer.Option("headtail", "--policy", help="Long proteins: headtail (first+last) or window."),
    max_len: int = typer.Option(1022, "--max-len", help="Residues per model input (ESM-2 takes 1022)."),
    stride: int | None = typer.Option(
        None, "--stride", help="--policy window: residues between window starts (default max-len/2: 511)."
    ),
    shard: str | None = typer.Option(
        None, "--shard", help="i/n: compute only shard i of n of the missing proteins (array tasks, GPUs)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    batch_tokens: int | None = typer.Option(
        None, "--batch-tokens", help="Padded tokens per batch (default 16384 on GPU, 4096 on CPU)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Also write the float16 matrix (rows in FASTA order) to this .npy file."
    ),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Embedding cache (default $MOLREMOTE_EMBEDDINGS or <project>/.molremote/embeddings)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Compute what the cache lacks for a FASTA file: ESM-2 mean-pooled embeddings in length-sorted batches,
    stored float16 by (model, policy, sequence hash), resumable, shardable; prints cached/computed counts.

    Examples: molremote embed --model facebook/esm2_t30_150M_UR50D --fasta train.fasta;
    molremote embed --model facebook/esm2_t33_650M_UR50D --fasta test.fasta --shard $SLURM_ARRAY_TASK_ID/8"""
    import json

    import numpy as np

    from .. import fsutil
    from ..embeddings import EmbeddingSpec, EmbedStats, embed_sequences, parse_shard
    from ..embeddings.fasta import read_fasta
    from ..errors import UsageError

    if out is not None and out.suffix != ".npy":
        raise UsageError(f"--out {out}: must end in .npy")
    spec = EmbeddingSpec(model=model, policy=policy, max_len=max_len, stride=stride or max(1, max_len // 2))
    shard_t = parse_shard(shard) if shard else None
    records = read_fasta(fasta)
    st = EmbedStats()
    matrix = embed_sequences(
        spec,
        [r.sequence for r in records],
        cache_dir=cache_dir,
        device=device,
        batch_tokens=batch_tokens,
        shard=shard_t,
        progress=not as_json and console.is_terminal,
        stats=st,
    )
    wrote = None
    if out is not None and not st.missing:
        with fsutil.atomic_path(out, suffix=".npy") as tmp:
            np.save(tmp, matrix)
        wrote = str(out)
    if as_json:
        d = {k: v for k, v in vars(st).items() if k != "missing"}
        print(json.dumps({**d, "missing": len(st.missing), "tokens_per_s": st.tokens_per_s, "out": wrote}))
        return
    line = f"{st.requested} proteins ({st.unique} unique): {st.cached} cached, {st.computed} computed" + (
        f", {st.other_shards} left to other shards" if shard_t else ""
    )
    console.print(line, highlight=False)
    if st.computed and st.batches:
        console.print(
            f"{st.tokens:,} tokens in {st.seconds:.1f} s: {st.tokens_per_s:,.0f} tokens/s "
            f"({st.batches} batches, padding {1 - st.tokens / max(st.padded, 1):.1%}; "
            f"model load {st.load_seconds:.1f} s)",
            highlight=False,
        )
    elif st.computed:
        console.print(
            f"{st.tokens:,} residues in {st.seconds:.2f} s: {st.tokens_per_s:,.0f} residues/s", highlight=False
        )
    console.print(f"{spec.label()}: {st.dim} columns, cache {st.cache_dir}", highlight=False, soft_wrap=True)
    if wrote:
        console.print(f"wrote {wrote} ({matrix.shape[0]} x {matrix.shape[1]} float16, FASTA order)", highlight=False)
    elif out is not None:
        console.print(
            f"{len(st.missing)} proteins not computed yet (other shards): --out not written; rerun without "
            f"--shard once every shard is done",
            highlight=False,
        )
