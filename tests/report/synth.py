"""A synthetic project for the report: real experiment files (resolved by the real Registry), run folders in
the trainer's layout (manifest.json, config.json, metrics.jsonl with its epoch rows), evaluation and ensemble
records, a scores cache and job records. Used by the report tests and benchmarks/report.py."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from pathlib import Path

from molremote.experiments import Registry, apply_overrides
from molremote.runs import run_key

T0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.timezone.utc)
COMPETITION = "leash-BELKA"


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds")


def write_experiments(project: Path, n: int) -> list[int]:
    """Experiment 1 (belka cnn1d) and n-1 children deriving from an earlier one with another lr/dropout."""
    d = project / "experiments"
    d.mkdir(parents=True, exist_ok=True)
    (d / "0001_base.py").write_text(
        "from molremote.experiments import experiment\n"
        "EXPERIMENT = experiment(description='base <cnn1d> & friends', tags=['synthetic'],\n"
        "    task={'name': 'belka'}, model={'name': 'cnn1d', 'embed_dim': 16},\n"
        "    training={'epochs': 8, 'lr': 1e-3, 'device': 'cpu'}, folds={'n_folds': 5})\n"
    )
    ids = [1]
    rng = random.Random(0)
    for i in range(2, n + 1):
        parent = rng.choice(ids[-20:])
        lr = round(10 ** rng.uniform(-4, -2), 6)
        (d / f"{i:04d}_variant_{i}.py").write_text(
            "from molremote.experiments import derive\n"
            f"EXPERIMENT = derive({parent}, description='variant {i}: lr {lr}',\n"
            f"    training={{'lr': {lr}}}, model={{'dropout': {round(rng.uniform(0, 0.5), 2)}}})\n"
        )
        ids.append(i)
    return ids


def write_run(
    runs: Path,
    exp,
    fold: int,
    *,
    epochs: int,
    quality: float,
    seed_offset: int = 0,
    sessions: int = 1,
    status: str = "complete",
    backend: str = "local",
    epochs_done: int | None = None,
    metric: str = "belka_ap",
) -> Path:
    """One run folder as the trainer leaves it; `sessions` > 1 splits its epochs into resumed sessions."""
    key = run_key(exp, fold)
    path = runs / key
    path.mkdir(parents=True, exist_ok=True)
    done = epochs if epochs_done is None else epochs_done
    rng = random.Random(hash((exp.id, fold, seed_offset)) & 0xFFFF)
    t = T0 + dt.timedelta(hours=exp.id % 24)
    rows, epoch_times = [], []
    best = None
    for e in range(done):
        for s in range(3):  # logging-window rows the report must skip
            rows.append(
                {
                    "step": e * 30 + s * 10,
                    "epoch": e,
                    "train_loss": 1.0,
                    "lr": 1e-3,
                    "samples_per_s": 900.0,
                    "time": _iso(t),
                }
            )
        t += dt.timedelta(minutes=5)
        loss = 0.7 * math.exp(-0.35 * e) + 0.05 + rng.uniform(0, 0.02)
        score = quality * (1 - math.exp(-0.6 * (e + 1))) + rng.uniform(-0.01, 0.01)
        rows.append(
            {
                "step": (e + 1) * 30,
                "epoch": e,
                "epoch_train_loss": loss,
                f"valid_{metric}": score,
                "lr": 1e-3,
                "time": _iso(t),
            }
        )
        epoch_times.append(t)
        if best is None or score > best["value"]:
            best = {"metric": metric, "value": score, "epoch": e, "step": (e + 1) * 30}
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    sess = []
    per = max(1, math.ceil(done / sessions))
    for s in range(sessions):
        first = s * per
        if first >= max(done, 1):
            break
        start = T0 + dt.timedelta(hours=exp.id % 24) if s == 0 else epoch_times[first - 1] + dt.timedelta(seconds=30)
        sess.append(
            {
                "started_at": _iso(start),
                "host": f"{backend}-host",
                "backend": backend,
                "status": "incomplete" if s < sessions - 1 else status,
            }
        )
    (path / "config.json").write_text(json.dumps(exp.to_json(), indent=2))
    m = {
        "experiment": exp.id,
        "name": exp.name,
        "fold": fold,
        "config_hash": exp.config_hash,
        "run_key": key,
        "run_uid": f"uid{exp.id}{fold}{seed_offset}",
        "overrides": [],
        "created_at": _iso(T0),
        "updated_at": _iso(t),
        "status": status,
        "sessions": sess,
        "best": best,
        "machine": {"hostname": f"{backend}-host", "backend": backend},
        "code": {"commit": "abc1234def"},
    }
    (path / "manifest.json").write_text(json.dumps(m, indent=2))
    return path


def make_project(
    project: Path, n_experiments: int = 6, *, folds: int = 5, epochs: int = 8, seeds: int = 1, records: bool = True
) -> dict:
    """Experiments 1..n, each with `folds` runs (x `seeds`); experiment 2 has two resumed sessions per run,
    the last one is still running on slurm. Returns what was made."""
    ids = write_experiments(project, n_experiments)
    reg = Registry(project / "experiments")
    runs = project / "runs"
    made = 0
    for i in ids:
        base = reg.resolve(i)
        quality = 0.3 + 0.4 * ((i * 37) % 100) / 100
        last = i == ids[-1] and n_experiments > 1
        for s in range(seeds):
            exp = base if s == 0 else apply_overrides(base, [f"training.seed={42 + s}"])
            for f in range(folds):
                running = last and f == 0
                write_run(
                    runs,
                    exp,
                    f,
                    epochs=epochs,
                    quality=quality,
                    seed_offset=s,
                    sessions=2 if i == 2 else 1,
                    status="running" if running else "complete",
                    backend="slurm" if last else ("kaggle" if i % 3 == 0 else "local"),
                    epochs_done=epochs // 2 if running else None,
                )
                made += 1
    out = {"ids": ids, "runs": made}
    if not records:
        return out
    for i in ids[: max(1, len(ids) // 2)]:
        exp = reg.resolve(i)
        cv = 0.3 + 0.4 * ((i * 37) % 100) / 100
        ev_dir = runs / exp.name / f"evaluation-{exp.config_hash}"
        ev_dir.mkdir(parents=True, exist_ok=True)
        (ev_dir / "evaluation.json").write_text(
            json.dumps(
                {
                    "experiment": i,
                    "experiment_name": exp.name,
                    "config_hash": exp.config_hash,
                    "task": "belka",
                    "metric": "belka_ap",
                    "greater_is_better": True,
                    "fold_scores": {str(f): cv for f in range(folds)},
                    "mean_fold_score": cv - 0.01,
                    "oof_score": cv,
                    "folds": list(range(folds)),
                    "runs": [],
                    "kaggle_submissions": [{"ref": 1000 + i, "competition": COMPETITION}],
                }
            )
        )
    from molremote.report.leaderboard import save_scores

    subs = [
        {
            "ref": 1000 + i,
            "date": _iso(T0),
            "status": "complete",
            "description": f"e{i} cv",
            "public_score": round(0.3 + 0.4 * ((i * 37) % 100) / 100 - 0.05 + 0.01 * (i % 3), 5),
            "private_score": round(0.3 + 0.4 * ((i * 37) % 100) / 100 - 0.06, 5) if i % 2 else None,
            "molremote": True,
            "kind": "experiment",
            "experiments": [i],
            "hash": None,
            "commit": "abc1234",
            "cv": round(0.3 + 0.4 * ((i * 37) % 100) / 100, 4),
            "record": None,
        }
        for i in ids[: max(1, len(ids) // 2)]
    ]
    save_scores(COMPETITION, subs, root=project)
    members = ids[:3]
    ens = runs / "ensembles" / ("+".join(f"e{i}" for i in members) + "-0123abcd")
    ens.mkdir(parents=True, exist_ok=True)
    (ens / "ensemble.json").write_text(
        json.dumps(
            {
                "version": 1,
                "created_at": _iso(T0),
                "task": "belka",
                "method": "mean",
                "weights": [0.5, 0.3, 0.2][: len(members)],
                "members": [{"name": reg.resolve(i).name, "experiment": i} for i in members],
                "metrics": {"oof_score": 0.71},
            }
        )
    )
    _heatmap(ens / "heatmap.png", len(members))
    from molremote import jobs

    jobs.save(
        jobs.JobRecord(
            job_id=f"{reg.resolve(ids[-1]).name}-slurm-1",
            backend="slurm",
            experiment=reg.resolve(ids[-1]).name,
            experiment_id=ids[-1],
            config_hash=reg.resolve(ids[-1]).config_hash,
            folds=[0],
            state="running",
            created_at=_iso(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=42)),
        ),
        root=project,
    )
    out.update(ensemble=str(ens), submissions=len(subs))
    return out


def _heatmap(path: Path, n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 3))
    ax.imshow([[1.0 if a == b else 0.8 for b in range(n)] for a in range(n)], vmin=0, vmax=1, cmap="viridis")
    fig.savefig(path)
    plt.close(fig)
