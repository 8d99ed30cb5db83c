"""CAFA's submission file: long format, tab-separated, no header, one `protein<TAB>GO:term<TAB>score` line per
prediction; score in (0, 1] written with at most 3 significant figures; at most 1,500 terms per protein.

`write_long` keeps each protein's best `max_terms` scores, drops those that round below 0.001 (they never
count: CAFA's lowest threshold is 0.01), and writes atomically. `check_long` refuses a file that breaks a
rule, naming the file, the line and the value. Reading and checking are vectorised with pyarrow (a 336M-line
file is the competition's size); only a malformed line is searched for line by line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import SubmissionError

MAX_TERMS = 1500  # the competition's limit per protein
SIG_FIGS = 3
MIN_SCORE = 0.001  # the smallest score with 3 significant figures we write (CAFA's lowest threshold: 0.01)
# a score with at most 3 significant figures in (0, 1]: 0.5, .123, 0.00123, 1, 1.0, 1.00, 5e-04, 1.23e-3
SCORE_RE = r"^(0?\.0*[1-9][0-9]{0,2}|1(\.0{0,2})?|[1-9](\.[0-9]{0,2})?[eE]-0*[1-9][0-9]*)$"
TERM_RE = r"^GO:[0-9]{7}$"


def format_scores(scores: np.ndarray) -> np.ndarray:
    """Scores as text with 3 significant figures (plain decimals: 0.001 .. 1)."""
    return np.char.mod("%.3g", np.asarray(scores, dtype=np.float64))


def top_per_protein(
    prot: np.ndarray, term: np.ndarray, score: np.ndarray, max_terms: int = MAX_TERMS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by protein then score (descending), at most `max_terms` per protein, scores >= 0.001
    after rounding to 3 significant figures."""
    score = np.asarray(score, dtype=np.float64)
    rounded = _round_sig(score)
    keep = rounded >= MIN_SCORE
    prot, term, rounded = np.asarray(prot)[keep], np.asarray(term)[keep], rounded[keep]
    order = np.lexsort((term, -rounded, prot))
    prot, term, rounded = prot[order], term[order], rounded[order]
    if len(prot):
        starts = np.flatnonzero(np.r_[True, prot[1:] != prot[:-1]])
        rank = np.arange(len(prot)) - np.repeat(starts, np.diff(np.r_[starts, len(prot)]))
        m = rank < max_terms
        prot, term, rounded = prot[m], term[m], rounded[m]
    return prot, term, np.minimum(rounded, 1.0)


def _round_sig(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    nz = x > 0
    mag = np.floor(np.log10(x[nz]))
    scale = 10.0 ** (SIG_FIGS - 1 - mag)
    out[nz] = np.round(x[nz] * scale) / scale
    return out


def write_long(
    path: Path,
    prot: np.ndarray,
    term: np.ndarray,
    score: np.ndarray,
    *,
    max_terms: int = MAX_TERMS,
    overwrite: bool = True,
) -> int:
    """Write the long-format TSV (checked first; atomic). Returns the number of lines."""
    from ...fsutil import atomic_output

    path = Path(path)
    if path.exists() and not overwrite:
        raise SubmissionError(f"{path}: already exists (pass overwrite=True / --overwrite to replace it)")
    p, t, s = top_per_protein(np.asarray(prot).astype(str), np.asarray(term).astype(str), score, max_terms)
    if len(p) == 0:
        raise SubmissionError(f"{path}: no prediction reaches {MIN_SCORE} (nothing to write)")
    text = format_scores(s)
    bad = np.flatnonzero(~np.char.startswith(t, "GO:"))
    if len(bad):
        raise SubmissionError(f"{path}: term {t[bad[0]]!r} of protein {p[bad[0]]} is not a GO id")
    lines = np.char.add(np.char.add(np.char.add(np.char.add(p, "\t"), t), "\t"), text)
    with atomic_output(path) as f:
        f.write(("\n".join(lines.tolist()) + "\n").encode())
    return len(lines)


def _first_bad_line(path: Path) -> str:
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                return f"line {n}: not UTF-8 text"
            fields = line.count("\t") + 1
            if fields != 3:
                return f"line {n}: {fields} tab-separated field(s), expected 3 (protein, term, score): {line[:80]!r}"
    return "unreadable"


def check_long(path: Path | str, *, max_terms: int = MAX_TERMS, proteins: np.ndarray | None = None) -> dict[str, int]:
    """Check a long-format submission; returns {"lines", "proteins", "max_terms"}. With `proteins` (the test
    superset), a protein outside it is refused."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise SubmissionError(f"{path}: empty file")
    opts = pacsv.ReadOptions(column_names=["protein", "term", "score"])
    parse = pacsv.ParseOptions(delimiter="\t", quote_char=False)
    conv = pacsv.ConvertOptions(column_types={c: pa.string() for c in ("protein", "term", "score")})
    try:
        t = pacsv.read_csv(path, read_options=opts, parse_options=parse, convert_options=conv)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        raise SubmissionError(f"{path}: {_first_bad_line(path)}") from None

    def fail(mask: pa.ChunkedArray | np.ndarray, what: str, col: str) -> None:
        m = np.asarray(mask.to_numpy(zero_copy_only=False) if hasattr(mask, "to_numpy") else mask, dtype=bool)
        bad = np.flatnonzero(m)
        if len(bad):
            i = int(bad[0])
            v = t.column(col)[i].as_py()
            hint = " (the format has no header line)" if i == 0 and col == "score" and v == "score" else ""
            raise SubmissionError(f"{path}: line {i + 1}: {col} {v!r} {what}{hint}; {len(bad)} bad line(s) in all")

    fail(
        pc.invert(pc.match_substring_regex(t["score"], SCORE_RE)),
        "is not a score in (0, 1] with <= 3 significant figures",
        "score",
    )
    fail(pc.invert(pc.match_substring_regex(t["term"], TERM_RE)), "is not a GO term id (GO:nnnnnnn)", "term")
    fail(pc.equal(pc.utf8_length(t["protein"]), 0), "is empty", "protein")
    v = pc.cast(t["score"], pa.float64()).to_numpy()
    fail((v <= 0) | (v > 1), "is outside (0, 1]", "score")
    prot = t["protein"].to_numpy(zero_copy_only=False).astype(str)
    term = t["term"].to_numpy(zero_copy_only=False).astype(str)
    if proteins is not None:
        fail(~np.isin(prot, np.asarray(proteins).astype(str)), "is not in the test superset", "protein")
    uniq, inv, counts = np.unique(prot, return_inverse=True, return_counts=True)
    if counts.max() > max_terms:
        j = int(np.argmax(counts))
        line = int(np.flatnonzero(inv == j)[max_terms]) + 1
        raise SubmissionError(
            f"{path}: line {line}: protein {uniq[j]} has {counts[j]} terms, more than the {max_terms} allowed"
        )
    key = np.char.add(np.char.add(prot, "\t"), term)
    order = np.argsort(key, kind="stable")
    dup = np.flatnonzero(key[order][1:] == key[order][:-1])
    if len(dup):
        i = int(order[dup[0] + 1])
        raise SubmissionError(f"{path}: line {i + 1}: ({prot[i]}, {term[i]}) repeats an earlier line")
    return {"lines": len(prot), "proteins": len(uniq), "max_terms": int(counts.max())}
