"""The Gene Ontology as CAFA evaluates it: one graph per namespace (BP, MF, CC), edges `is_a` and `part_of`
inside a namespace only (an edge into another namespace is dropped, as CAFA's evaluator does), obsolete terms
left out, `alt_id`s mapped to their term. Read with `obonet` (the OBO parser made for this); the rest is numpy.

Propagation: a protein annotated with a term is annotated with all its ancestors; a score propagates as the
maximum over a term and its descendants ("max" propagation, CAFA's default). `propagate_pairs` does that on
sparse (protein, term, score) triples: each triple is repeated for the ancestors of its term, then the
maximum is kept per (protein, term).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import DataError

# CAFA's three namespaces, in the order the task keeps them (label space, heads, reports)
ASPECTS: tuple[str, ...] = ("BP", "MF", "CC")
NAMESPACES = {"biological_process": "BP", "molecular_function": "MF", "cellular_component": "CC"}
# how train_terms.tsv spells an aspect: CAFA-6 "P"/"F"/"C", CAFA-5 "BPO"/"MFO"/"CCO"
ASPECT_CODES = {
    "P": "BP",
    "F": "MF",
    "C": "CC",
    "BPO": "BP",
    "MFO": "MF",
    "CCO": "CC",
    "BP": "BP",
    "MF": "MF",
    "CC": "CC",
}
ROOTS = {"BP": "GO:0008150", "MF": "GO:0003674", "CC": "GO:0005575"}


@dataclass
class Ontology:
    """Terms (canonical ids) with their namespace and their parents inside the namespace."""

    terms: list[str]
    aspect: np.ndarray  # per term: "BP" | "MF" | "CC" (other namespaces keep their own name)
    parents: list[tuple[int, ...]]
    alt: dict[str, tuple[str, ...]]
    source: str = ""
    names: list[str] = field(default_factory=list)
    index: dict[str, int] = field(init=False)
    _anc: dict[int, np.ndarray] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.terms)}

    def __len__(self) -> int:
        return len(self.terms)

    def canonical(self, term: str) -> tuple[str, ...]:
        """The term itself, the term(s) an alt_id stands for, or () for a term this ontology lacks."""
        if term in self.index:
            return (term,)
        return self.alt.get(term, ())

    def ids(self, terms: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """(position in the input, term index) for every input term that maps into the ontology (alt ids
        mapped, unknown/obsolete terms dropped: CAFA's evaluator discards them too)."""
        pos, idx = [], []
        for k, t in enumerate(terms):
            for c in self.canonical(t):
                pos.append(k)
                idx.append(self.index[c])
        return np.asarray(pos, dtype=np.int64), np.asarray(idx, dtype=np.int64)

    def ancestors(self, i: int) -> np.ndarray:
        """Sorted indices of term i and all its ancestors (inside its namespace)."""
        got = self._anc.get(i)
        if got is not None:
            return got
        # iterative DFS (GO is ~15 levels deep, but keep recursion out of it)
        stack, seen = [i], {i}
        while stack:
            for p in self.parents[stack.pop()]:
                if p not in seen:
                    seen.add(p)
                    stack.append(p)
        out = np.fromiter(sorted(seen), dtype=np.int64, count=len(seen))
        self._anc[i] = out
        return out

    def closure(self, terms: Iterable[int]) -> np.ndarray:
        """Sorted indices of the given terms and all their ancestors."""
        parts = [self.ancestors(int(t)) for t in set(int(t) for t in terms)]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def topological(self, terms: Sequence[int]) -> list[int]:
        """`terms` ordered children before parents (depth = longest path to a root, deepest first)."""
        depth: dict[int, int] = {}

        def d(i: int) -> int:
            if i not in depth:
                stack = [i]
                while stack:
                    j = stack[-1]
                    todo = [p for p in self.parents[j] if p not in depth]
                    if todo:
                        stack.extend(todo)
                        continue
                    stack.pop()
                    depth[j] = 1 + max((depth[p] for p in self.parents[j]), default=-1)
            return depth[i]

        return sorted(terms, key=lambda t: (-d(int(t)), int(t)))


def read_obo(path: Path | str) -> Ontology:
    """Read an OBO file (go-basic.obo) with obonet; a DataError naming the file when it cannot be read."""
    import networkx  # noqa: F401 - obonet's graph type; imported here so a missing install is named below

    try:
        import obonet
    except ImportError:  # pragma: no cover - the `protein` extra
        raise DataError("reading go-basic.obo needs obonet: pip install 'molremote[protein]'") from None
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: ontology file not found")
    try:
        g = obonet.read_obo(str(path))
    except Exception as e:  # obonet raises plain ValueError/KeyError/UnicodeDecodeError on broken files
        raise DataError(f"{path}: cannot be read as OBO: {type(e).__name__}: {e}") from None
    terms, aspects, names = [], [], []
    alt: dict[str, tuple[str, ...]] = {}
    for node, data in g.nodes(data=True):
        ns = data.get("namespace")
        if not ns or ns == "external" or data.get("is_obsolete") in ("true", True):
            continue
        terms.append(node)
        aspects.append(NAMESPACES.get(ns, ns))
        names.append(data.get("name", ""))
    if not terms:
        raise DataError(f"{path}: no ontology terms (is it an OBO file with [Term] stanzas and namespaces?)")
    index = {t: i for i, t in enumerate(terms)}
    parents: list[list[int]] = [[] for _ in terms]
    for child, parent, rel in g.edges(keys=True):
        if rel not in ("is_a", "part_of"):
            continue
        i, j = index.get(child), index.get(parent)
        if i is None or j is None or aspects[i] != aspects[j]:
            continue  # obsolete, external or another namespace: CAFA's evaluator drops these edges
        if j not in parents[i]:
            parents[i].append(j)
    for t in terms:
        for a in g.nodes[t].get("alt_id", []) or []:
            alt.setdefault(a, ())
            alt[a] = (*alt[a], t)
    return Ontology(terms, np.asarray(aspects), [tuple(p) for p in parents], alt, str(path), names)


def propagate_pairs(
    ont: Ontology, prot: np.ndarray, term: np.ndarray, score: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up-propagate sparse annotations: every (protein, term[, score]) also stands for each ancestor of the
    term; duplicates keep their maximum score. Returns (protein, term, score) sorted by (protein, term); with
    score=None all scores are 1 (truth sets)."""
    prot = np.asarray(prot, dtype=np.int64)
    term = np.asarray(term, dtype=np.int64)
    score = np.ones(len(prot)) if score is None else np.asarray(score, dtype=np.float64)
    if len(prot) == 0:
        return prot, term, score
    uniq, inv = np.unique(term, return_inverse=True)
    anc = [ont.ancestors(int(t)) for t in uniq]
    lens = np.fromiter((len(a) for a in anc), dtype=np.int64, count=len(anc))
    flat = np.concatenate(anc)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    counts = lens[inv]
    rep = np.repeat(np.arange(len(prot)), counts)
    within = np.arange(len(rep)) - np.repeat(np.cumsum(counts) - counts, counts)
    t2 = flat[starts[inv][rep] + within]
    p2, s2 = prot[rep], score[rep]
    key = p2 * len(ont) + t2
    order = np.lexsort((-s2, key))  # by key, highest score first
    key, s2 = key[order], s2[order]
    first = np.concatenate([[True], key[1:] != key[:-1]])
    key, s2 = key[first], s2[first]
    return key // len(ont), key % len(ont), s2
