"""Kaggle submissions that can be traced back: descriptions naming experiments, records, scores joined back.

Every submission molremote sends carries a description in one parseable form:

    molremote e0620 h1a2b3c4d c0123abc cv=0.285100                       (one experiment: `evaluate --submit`)
    molremote ens e0620+e0621 files=1 w=0.5,0.3,0.2 h9f8e7d6c c0123abc cv=0.2900   (`ensemble --submit`)

h is the experiment's config hash (8 characters) or the ensemble's member+weight hash, c the code commit
(7 characters, `-dirty` when the tree had changes), cv the out-of-fold (else mean fold) validation score.
The submission (ref, file sha256, description) is appended to the evaluation.json / ensemble.json next to
the file, so `molremote scores` can join Kaggle's list back to experiments by the description and to the
local records by ref and sha256. Imports no torch and no kaggle client until one is needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import SubmissionError

SUBMISSIONS_KEY = "kaggle_submissions"  # list in evaluation.json / ensemble.json
_EXPS = re.compile(r"^e(\d+)(?:\+e(\d+))*$")


def competition_for_task(task: str) -> str:
    """The Kaggle competition slug of a task (`TaskResults.competition`), or a SubmissionError saying there is
    none."""
    from ..errors import ExperimentError
    from ..tasks import task_results

    try:
        info = task_results(task)
    except ExperimentError as e:
        raise SubmissionError(str(e)) from None
    if not info.competition:
        raise SubmissionError(
            f"task {task!r} has no Kaggle competition to submit to ({type(info).__name__}."
            "competition is None); upload the submission file by hand"
        )
    return info.competition


def choose_competition(competition: str | None, exp_id: int | None = None) -> str:
    """The competition `scores` reads: the one given, else experiment `exp_id`'s, else the one competition all
    the project's experiments share; a SubmissionError asking for `--competition` when that is ambiguous."""
    if competition is not None:
        return competition
    from ..experiments import Registry

    if exp_id is not None:
        reg = Registry()
        task = reg.blend(exp_id).task if reg.is_blend(exp_id) else reg.resolve(exp_id).task.name
        return competition_for_task(task)
    comps = set()
    for e in Registry().all():
        try:
            comps.add(competition_for_task(e.task.name))
        except SubmissionError:
            pass
    if len(comps) != 1:
        raise SubmissionError(
            "name the competition with --competition SLUG (or -e N)"
            + (f": the experiments use {', '.join(sorted(comps))}" if comps else "")
        )
    return comps.pop()


def short_commit(code: Iterable[dict[str, Any] | None]) -> str:
    """`0123abc`, `0123abc-dirty`, `0123abc+4567def` (runs made by several commits), or `unknown`."""
    commits, dirty = [], False
    for c in code:
        c = c or {}
        if c.get("commit") and c["commit"][:7] not in commits:
            commits.append(c["commit"][:7])
        dirty = dirty or bool(c.get("dirty"))
    return ("+".join(commits) or "unknown") + ("-dirty" if dirty else "")


def _fmt_score(v: float | None) -> str:
    return "na" if v is None else f"{v:.6f}"


def describe_experiment(experiment: int, config_hash: str, commit: str, cv: float | None) -> str:
    return f"molremote e{experiment:04d} h{config_hash[:8]} c{commit} cv={_fmt_score(cv)}"


def describe_ensemble(
    experiments: Sequence[int], n_files: int, weights: Sequence[float], ens_hash: str, commit: str, cv: float | None
) -> str:
    parts = ["molremote ens"]
    if experiments:
        parts.append("+".join(f"e{e:04d}" for e in experiments))
    if n_files:
        parts.append(f"files={n_files}")
    parts += ["w=" + ",".join(f"{w:.4g}" for w in weights), f"h{ens_hash[:8]}", f"c{commit}", f"cv={_fmt_score(cv)}"]
    return " ".join(parts)


def parse_description(text: str | None) -> dict[str, Any] | None:
    """The fields of a molremote description ({kind, experiments, hash, commit, cv, weights, files}), or None
    for a description molremote did not write. Extra words (a user's note) are ignored."""
    tokens = (text or "").split()
    if not tokens or tokens[0] != "molremote":
        return None
    out: dict[str, Any] = {
        "kind": "experiment",
        "experiments": [],
        "hash": None,
        "commit": None,
        "cv": None,
        "weights": None,
        "files": 0,
    }
    for t in tokens[1:]:
        if t == "ens":
            out["kind"] = "ensemble"
        elif _EXPS.match(t):
            out["experiments"] = [int(x) for x in re.findall(r"e(\d+)", t)]
        elif re.fullmatch(r"h[0-9a-f]{4,64}", t):
            out["hash"] = t[1:]
        elif re.fullmatch(r"c(?:[0-9a-f]{7}(?:\+[0-9a-f]{7})*|unknown)(?:-dirty)?", t):
            out["commit"] = t[1:]
        elif t.startswith("cv="):
            try:
                out["cv"] = None if t[3:] == "na" else float(t[3:])
            except ValueError:
                pass
        elif t.startswith("w="):
            try:
                out["weights"] = [float(x) for x in t[2:].split(",")]
            except ValueError:
                pass
        elif t.startswith("files="):
            out["files"] = int(t[6:]) if t[6:].isdigit() else 0
    return out


def submit_and_record(
    record_path: Path, submission: Path, competition: str, description: str, account: str | None = None
) -> dict[str, Any]:
    """Send `submission` with the real Kaggle client, then append {ref, competition, account, file, sha256,
    description, submitted_at} to the JSON record at `record_path` (atomically). Returns that entry."""
    from ..backends.kaggle_api import KaggleClient
    from ..fsutil import write_json
    from .evaluate import read_evaluation
    from .submission_files import sha256_file

    rec = read_evaluation(record_path)
    sha = sha256_file(submission)
    ref = KaggleClient(account).submit(competition, submission, description)
    entry = {
        "ref": ref,
        "competition": competition,
        "account": account,
        "file": str(Path(submission).resolve()),
        "sha256": sha,
        "description": description,
        "submitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    rec.setdefault(SUBMISSIONS_KEY, []).append(entry)
    write_json(Path(record_path), rec)
    return entry


def submit_evaluation(
    rec: dict[str, Any],
    experiment: int,
    config_hash: str,
    cv: float | None,
    competition: str,
    message: str | None = None,
    account: str | None = None,
) -> dict[str, Any]:
    """Submit the submission file of an evaluation record (an experiment's or a blend's), described by its
    experiment id, hash, code commit and CV plus the user's `message`; the entry is added to `rec` too."""
    desc = describe_experiment(experiment, config_hash, short_commit(r.get("code") for r in rec["runs"]), cv)
    desc = f"{desc} {message}" if message else desc
    sent = submit_and_record(Path(rec["record"]), Path(rec["submission"]), competition, desc, account)
    rec.setdefault(SUBMISSIONS_KEY, []).append(sent)
    return sent


# ---------------------------------------------------------------------------------------------- scores
def local_records(runs_root: Path | None = None) -> list[dict[str, Any]]:
    """Every evaluation.json (runs/<exp>/evaluation-*/) and ensemble.json (runs/ensembles/*/) with its path."""
    import json

    from ..project import runs_dir

    root = Path(runs_root or runs_dir())
    out = []
    for pattern, kind in (("*/evaluation-*/evaluation.json", "evaluation"), ("ensembles/*/ensemble.json", "ensemble")):
        for p in sorted(root.glob(pattern)):
            try:
                rec = json.loads(p.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            out.append({"kind": kind, "path": p, "record": rec})
    return out


def _current_sha(rec: dict[str, Any]) -> str | None:
    """sha256 of the submission file a record describes now (evaluation.json / ensemble.json layouts)."""
    if rec.get("submission_sha256"):
        return rec["submission_sha256"]
    sub = rec.get("submission")
    return sub.get("sha256") if isinstance(sub, dict) else None


def _record_hash(rec: dict[str, Any]) -> str | None:
    return rec.get("ensemble_hash") or rec.get("config_hash")


def join_scores(
    submissions: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]], experiment: int | None = None
) -> list[dict[str, Any]]:
    """Kaggle's submissions (KaggleClient.submissions rows) with the experiments their description names and
    the local record that sent them: matched by ref (then `sha256` is the file sent and `file_matches` says
    whether the record's submission file still has it), else by the description's hash (config or ensemble).
    `experiment`: keep only submissions naming it (alone or in an ensemble)."""
    by_ref: dict[int, tuple[dict, dict]] = {}
    by_hash: dict[str, dict] = {}
    for r in records:
        for s in r["record"].get(SUBMISSIONS_KEY) or []:
            if s.get("ref") is not None:
                by_ref[int(s["ref"])] = (r, s)
        h = _record_hash(r["record"])
        if h:
            by_hash.setdefault(h[:8], r)
    rows = []
    for sub in submissions:
        parsed = parse_description(sub.get("description"))
        exps = parsed["experiments"] if parsed else []
        if experiment is not None and experiment not in exps:
            continue
        row = {
            **sub,
            "molremote": parsed is not None,
            "kind": parsed["kind"] if parsed else None,
            "experiments": exps,
            "hash": parsed["hash"] if parsed else None,
            "commit": parsed["commit"] if parsed else None,
            "cv": parsed["cv"] if parsed else None,
            "record": None,
            "sha256": None,
            "file_matches": None,
        }
        hit = by_ref.get(int(sub["ref"])) if sub.get("ref") is not None else None
        if hit is not None:
            r, s = hit
            row["record"], row["sha256"] = str(r["path"]), s.get("sha256")
            # does the file beside the record still hold what was sent? (--overwrite may have replaced it)
            row["file_matches"] = s.get("sha256") == _current_sha(r["record"])
        elif parsed and parsed["hash"] and parsed["hash"][:8] in by_hash:
            # sent from another machine (or its record was replaced): the hash still names the local record
            r = by_hash[parsed["hash"][:8]]
            row["record"], row["sha256"] = str(r["path"]), None
        rows.append(row)
    return rows
