"""What `molremote ensemble` averages: an experiment (its evaluated test submission and its runs'
out-of-fold predictions) or a file made elsewhere (`-i`, no OOF predictions). Imports no torch."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SubmissionError
from ..tasks import task_results
from ..tasks.base import OOF
from .evaluate import evaluate_experiment
from .submission_files import sha256_file

if TYPE_CHECKING:  # pragma: no cover
    from ..experiments import Experiment


@dataclass
class Member:
    name: str
    path: Path  # the test submission file
    experiment: int | None = None
    config_hash: str | None = None
    evaluation: Path | None = None  # evaluation.json of an experiment member
    run_dirs: list[Path] = field(default_factory=list)
    fold_score: float | None = None  # mean of the folds' validation scores
    oof_score: float | None = None
    oof: OOF | None = None
    sha256: str = ""

    @property
    def kind(self) -> str:
        return "experiment" if self.experiment is not None else "file"


def experiment_member(exp: Experiment, *, pull: bool = True, runs_root: Path | None = None) -> Member:
    """An experiment as a member: evaluates it (or reuses its up-to-date evaluation) and reads its OOF."""
    from ..project import runs_dir

    rec, _ = evaluate_experiment(exp, pull=pull, runs_root=runs_root)
    root = Path(runs_root or runs_dir())
    run_dirs = [root / r["run_key"] for r in rec["runs"]]
    ev = task_results(rec["task"])
    oof = ev.oof([d / "predictions" / "valid.parquet" for d in run_dirs])  # None where not poolable
    sub = Path(rec["submission"])
    return Member(
        name=f"e{exp.id:04d}",
        path=sub,
        experiment=exp.id,
        config_hash=exp.config_hash,
        evaluation=Path(rec["record"]),
        run_dirs=run_dirs,
        fold_score=rec.get("mean_fold_score"),
        oof_score=rec.get("oof_score"),
        oof=oof,
        sha256=sha256_file(sub),
    )


def file_member(path: Path | str) -> Member:
    p = Path(path)
    if not p.is_file():
        raise SubmissionError(f"{p}: ensemble member file not found")
    name = p.parent.name if p.stem in ("submission", "test", "valid") and p.parent.name else p.stem
    return Member(name=re.sub(r"[^A-Za-z0-9_.-]+", "_", name), path=p, sha256=sha256_file(p))
