"""The training loop: one (experiment, fold) run, resumable at any step.

Resume is exact: the per-epoch sample order is a pure function of (seed, epoch), and a checkpoint holds the
model, optimizer, scheduler, grad scaler, every RNG state, the epoch, the batch position inside the epoch and
the byte length of metrics.jsonl at that moment. A resumed run therefore replays nothing and skips nothing,
and on CPU reaches bit-identical weights and metrics (tests/training/test_trainer.py kills a run with
SIGKILL mid-epoch to prove it).
"""
from __future__ import annotations

import json
import logging
import math
import signal
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..experiments import Experiment
from ..models import build_model
from ..runs import EXIT_INCOMPLETE, STATUS_COMPLETE, STATUS_FAILED, STATUS_INCOMPLETE, Run, now_iso
from ..tasks import get_task
from . import checkpoint as ckpt

log = logging.getLogger("molremote.train")


@dataclass
class TrainResult:
    status: str
    run_dir: Path
    exit_code: int
    best: dict | None = None


class StopFlag:
    """Set by SIGTERM / SIGUSR1 / SIGINT or a wall-clock deadline; checked after every step."""

    def __init__(self, deadline: float | None):
        self.deadline = deadline
        self.reason: str | None = None
        self._old: dict[int, Any] = {}

    def install(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, h in self._old.items():
            signal.signal(sig, h)

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.reason and signum == signal.SIGINT:  # a second Ctrl-C means now
            raise KeyboardInterrupt
        self.reason = signal.Signals(signum).name

    def __bool__(self) -> bool:
        if self.reason is None and self.deadline is not None and time.monotonic() >= self.deadline:
            self.reason = "deadline"
        return self.reason is not None


def pick_device(pref: str, local_rank: int = 0) -> torch.device:
    if pref == "cuda" or (pref == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(exp: Experiment, model: torch.nn.Module) -> torch.optim.Optimizer:
    t = exp.training
    groups = model.param_groups(t) if hasattr(model, "param_groups") else [p for p in model.parameters() if p.requires_grad]
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(groups, lr=t.lr, momentum=0.9, weight_decay=t.weight_decay)


class Schedule:
    """LR schedule: optional linear warmup per step, then step/cosine per epoch or plateau on the metric."""

    def __init__(self, exp: Experiment, opt: torch.optim.Optimizer, steps_per_epoch: int):
        self.t, self.opt = exp.training, opt
        self.base = [g["lr"] for g in opt.param_groups]
        self.scale = 1.0  # plateau multiplier
        self.best: float | None = None
        self.bad = 0
        self.total = max(1, self.t.epochs * steps_per_epoch)

    def _set(self, factor: float) -> None:
        for g, b in zip(self.opt.param_groups, self.base):
            g["lr"] = b * factor

    def factor(self, step: int, epoch: int) -> float:
        t = self.t
        f = self.scale
        if t.scheduler == "step":
            f *= t.gamma ** sum(1 for m in t.milestones if epoch >= m)
        elif t.scheduler == "cosine":
            f *= 0.5 * (1 + math.cos(math.pi * min(step, self.total) / self.total))
        if t.warmup_steps and step < t.warmup_steps:
            f *= (step + 1) / t.warmup_steps
        return f

    def at(self, step: int, epoch: int) -> None:
        self._set(self.factor(step, epoch))

    def on_epoch_end(self, score: float | None, greater_is_better: bool) -> None:
        if self.t.scheduler != "plateau" or score is None:
            return
        improved = self.best is None or (score > self.best if greater_is_better else score < self.best)
        if improved:
            self.best, self.bad = score, 0
        else:
            self.bad += 1
            if self.bad > self.t.plateau_patience:
                self.scale *= self.t.gamma
                self.bad = 0

    def state_dict(self) -> dict:
        return {"scale": self.scale, "best": self.best, "bad": self.bad}

    def load_state_dict(self, d: dict) -> None:
        self.scale, self.best, self.bad = d["scale"], d["best"], d["bad"]


def _batches(idx: np.ndarray, bs: int) -> list[np.ndarray]:
    return [idx[i : i + bs] for i in range(0, len(idx), bs)]


def epoch_order(train_idx: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """The sample order of one epoch: a pure function of (seed, epoch), so resume needs no RNG replay."""
    return np.random.default_rng([seed, epoch]).permutation(train_idx)


class MetricsLog:
    """metrics.jsonl, append-only; truncated back to the checkpoint's offset on resume (no duplicate rows)."""

    def __init__(self, path: Path, tracker: Any = None):
        self.path, self.tracker = path, tracker

    def truncate(self, offset: int) -> None:
        if self.path.exists() and self.path.stat().st_size > offset:
            with open(self.path, "r+b") as f:
                f.truncate(offset)

    def offset(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row, default=float) + "\n")
        if self.tracker is not None:
            self.tracker.log({k: v for k, v in row.items() if k not in ("step", "time")}, step=row["step"])


@torch.no_grad()
def predict(task: Any, model: torch.nn.Module, split: str, idx: np.ndarray, bs: int, device: torch.device,
            autocast: Any) -> dict[str, np.ndarray]:
    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for b in _batches(idx, bs):
        with autocast():
            out = task.predict(model, task.batch(split, b, device))
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(v, dtype=np.float32))
    model.train()
    return {k: np.concatenate(v) for k, v in parts.items()}


def _autocast_factory(exp: Experiment, device: torch.device):
    if device.type == "cuda" and exp.training.amp != "none":
        dtype = torch.bfloat16 if exp.training.amp == "bf16" else torch.float16
        return lambda: torch.autocast("cuda", dtype=dtype)
    return nullcontext


def _progress(enabled: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]:>9} samples/s"), TextColumn("loss {task.fields[loss]}"),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    disable=not enabled, transient=False)


def train_run(exp: Experiment, fold: int, run: Run, *, max_time_s: float | None = None,
              progress: bool | None = None, tracker: Any = None, on_checkpoint: Any = None,
              echo: Any = None, dist: Any = None, task: Any = None) -> TrainResult:
    """Train (or resume) one fold into `run`. Returns the status and exit code (0 complete, 75 incomplete).
    Under torchrun (`dist.enabled`) every rank trains on its shard; rank 0 alone writes files."""
    from .dist import Dist

    t = exp.training
    dist = dist or Dist()
    main = dist.is_main
    echo = echo or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if not main:
        echo = lambda msg: None  # noqa: E731
    start = time.monotonic()
    stop = StopFlag(start + max_time_s if max_time_s is not None else None).install()
    device = pick_device(t.device, dist.local_rank)
    if t.threads and device.type == "cpu":
        torch.set_num_threads(t.threads)
    autocast = _autocast_factory(exp, device)
    try:
        if task is None:
            task = get_task(exp)
            task.load()
        train_idx, valid_idx = task.split(fold)
        task.prepare_fold(fold, train_idx, run.path)  # per-fold fitted preprocessing, kept in the run folder
        seed_everything(t.seed + 1000 * fold)
        core = build_model(exp, task.model_info()).to(device)
        model = core
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = DDP(core, device_ids=[device.index] if device.type == "cuda" else None)
        opt = make_optimizer(exp, core)
        bs, ebs = t.batch_size, t.eval_batch_size or 2 * t.batch_size
        order0 = _batches(train_idx, bs)
        if len(order0) > 1 and len(order0[-1]) < 2:  # a 1-sample batch breaks BatchNorm; drop it
            order0 = order0[:-1]
        steps_per_epoch = min(len(order0), t.max_steps_per_epoch or len(order0))
        sched = Schedule(exp, opt, steps_per_epoch)
        scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and t.amp == "fp16")
        metrics = MetricsLog(run.metrics_path, tracker)

        state = ckpt.load_latest(run.checkpoints)
        epoch, pos, step = 0, 0, 0
        best: dict | None = None
        bad_epochs, train_time = 0, 0.0
        # running loss sums (epoch, log window) live in the checkpoint so resumed metrics equal uninterrupted ones
        acc = {"epoch_sum": 0.0, "epoch_n": 0, "win_sum": 0.0, "win_n": 0}
        if state is not None:
            core.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            ckpt.set_rng_state(state["rng"])
            epoch, pos, step = state["epoch"], state["pos"], state["step"]
            best, bad_epochs, train_time = state["best"], state["bad_epochs"], state.get("train_time", 0.0)
            acc = state["loss_acc"]
            metrics.truncate(state["metrics_offset"])
            echo(f"resuming {run.path.name} at epoch {epoch} batch {pos} (step {step})")
        task.setup(core, device)
        model.train()
        # Losses accumulate on the device (float64: sums of float32 losses stay exact, so they do not depend on
        # when they are read) and are read back only when logged or checkpointed: no device sync per step.
        acc_dev = torch.zeros(2, dtype=torch.float64, device=device)  # [epoch_sum, win_sum] not yet in `acc`

        def fold_losses() -> None:
            es, ws = acc_dev.tolist()
            if not (math.isfinite(es) and math.isfinite(ws)):
                raise FloatingPointError(f"loss became {es if not math.isfinite(es) else ws} before epoch {epoch} "
                                         f"step {step} (last {acc['win_n']} steps)")
            acc["epoch_sum"] += es
            acc["win_sum"] += ws
            acc_dev.zero_()

        def save_last() -> None:
            fold_losses()
            if not main:
                return
            ckpt.save(run.checkpoints / "last.pt", {
                "model": core.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict(), "rng": ckpt.rng_state(), "epoch": epoch, "pos": pos, "step": step,
                "best": best, "bad_epochs": bad_epochs, "metrics_offset": metrics.offset(), "loss_acc": dict(acc),
                "train_time": train_time + time.monotonic() - session_t0, "config_hash": exp.config_hash,
            })
            if on_checkpoint:
                on_checkpoint()

        session_t0 = time.monotonic()
        last_ckpt = time.monotonic()
        sign = 1.0 if task.greater_is_better else -1.0
        done_training = epoch >= t.epochs
        show = main and (sys.stderr.isatty() if progress is None else progress)
        with _progress(show) as bar:
            while epoch < t.epochs:
                order = _batches(epoch_order(train_idx, t.seed, epoch), bs)[:steps_per_epoch]
                ptask = bar.add_task(f"fold {fold} epoch {epoch + 1}/{t.epochs}", total=len(order), completed=pos,
                                     rate="-", loss="-")
                seen, t_epoch = 0, time.monotonic()
                while pos < len(order):
                    sched.at(step, epoch)
                    batch = task.batch("train", dist.shard(order[pos]), device)
                    with autocast():
                        loss = task.loss(model, batch)
                    opt.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    if t.grad_clip:
                        scaler.unscale_(opt)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
                    scaler.step(opt)
                    scaler.update()
                    acc_dev += loss.detach().double()
                    acc["epoch_n"] += 1
                    acc["win_n"] += 1
                    pos += 1
                    step += 1
                    seen += len(order[pos - 1])
                    rate = seen / max(1e-9, time.monotonic() - t_epoch)
                    bar.update(ptask, advance=1, rate=f"{rate:,.0f}")
                    if step % t.log_every_steps == 0:
                        fold_losses()
                        win = acc["win_sum"] / max(1, acc["win_n"])
                        if main:
                            metrics.write({"step": step, "epoch": epoch, "train_loss": win,
                                           "lr": opt.param_groups[0]["lr"], "samples_per_s": rate, "time": now_iso()})
                        bar.update(ptask, loss=f"{win:.4f}")
                        acc["win_sum"], acc["win_n"] = 0.0, 0
                    due = (t.checkpoint_every_steps and step % t.checkpoint_every_steps == 0) or \
                          (time.monotonic() - last_ckpt >= t.checkpoint_every_s)
                    stopping, due = dist.any(bool(stop), due)  # every rank takes the same decision
                    if stopping and not stop:
                        stop.reason = stop.reason or "peer stopped"
                    if stop or due:
                        if pos < len(order):  # at epoch end the checkpoint comes after validation
                            save_last()
                            last_ckpt = time.monotonic()
                        if stop and pos < len(order):
                            raise _Stopped()
                # ---- epoch end: validation, best checkpoint, schedule, early stopping
                fold_losses()
                out = predict(task, core, "train", valid_idx, ebs, device, autocast)  # every rank: same score
                score = float(task.score(valid_idx, out))
                sched.on_epoch_end(score, task.greater_is_better)
                improved = best is None or sign * score > sign * best["value"]
                if improved:
                    best = {"metric": task.metric_name, "value": score, "epoch": epoch, "step": step}
                    if main:
                        ckpt.save(run.checkpoints / "best.pt", {"model": core.state_dict(), "best": best,
                                                                "config_hash": exp.config_hash}, keep_previous=False)
                    bad_epochs = 0
                else:
                    bad_epochs += 1
                row = {"step": step, "epoch": epoch,
                       "epoch_train_loss": acc["epoch_sum"] / acc["epoch_n"] if acc["epoch_n"] else None,
                       f"valid_{task.metric_name}": score, "lr": opt.param_groups[0]["lr"], "time": now_iso()}
                if main:
                    metrics.write(row)
                echo(f"epoch {epoch + 1}/{t.epochs}  valid {task.metric_name} {score:.4f}"
                     f"{'  (best)' if improved else ''}  {seen / max(1e-9, time.monotonic() - t_epoch):,.0f} samples/s")
                epoch, pos = epoch + 1, 0
                acc["epoch_sum"], acc["epoch_n"] = 0.0, 0
                early = t.early_stopping_patience is not None and bad_epochs > t.early_stopping_patience
                if early:
                    echo(f"early stopping: no improvement in {bad_epochs} epochs")
                    epoch = t.epochs
                save_last()
                last_ckpt = time.monotonic()
                if dist.any(bool(stop))[0] and epoch < t.epochs:
                    stop.reason = stop.reason or "peer stopped"
                    raise _Stopped()
            done_training = True
        # ---- final outputs from the best weights
        if done_training and not main:
            return TrainResult(STATUS_COMPLETE, run.path, 0, best)
        if done_training:
            best_path = run.checkpoints / "best.pt"
            if best_path.exists():
                core.load_state_dict(ckpt.load_weights(best_path)["model"])
            valid_out = predict(task, core, "train", valid_idx, ebs, device, autocast)
            task.write_predictions(run.predictions, "valid", valid_idx, valid_out)
            test_idx = np.arange(task.n_test())
            if len(test_idx):
                test_out = predict(task, core, "test", test_idx, ebs, device, autocast)
                task.write_predictions(run.predictions, "test", test_idx, test_out)
                task.write_submission(run.path / "submission.csv", test_out)
            baseline = task.baseline_score(valid_idx)
            summary = {"best": best, "baseline": baseline, "steps": step, "epochs": epoch,
                       "train_time_s": round(train_time + time.monotonic() - session_t0, 2)}
            if tracker is not None:
                tracker.summary({f"best_{task.metric_name}": best["value"] if best else None,
                                 "baseline": baseline, "steps": step})
            run.end_session(STATUS_COMPLETE, **summary)
            return TrainResult(STATUS_COMPLETE, run.path, 0, best)
        raise AssertionError("unreachable")  # pragma: no cover
    except _Stopped:
        if main:
            run.end_session(STATUS_INCOMPLETE, stop_reason=stop.reason, best=best)
        echo(f"stopped ({stop.reason}) at epoch {epoch} batch {pos}; checkpoint saved; resume with the same command")
        return TrainResult(STATUS_INCOMPLETE, run.path, EXIT_INCOMPLETE, best)
    except BaseException as e:
        if main:
            run.end_session(STATUS_FAILED, error=f"{type(e).__name__}: {e}")
        raise
    finally:
        stop.uninstall()


class _Stopped(Exception):
    pass
