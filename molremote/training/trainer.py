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
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..experiments import Experiment
from ..models import build_model
from ..runs import EXIT_INCOMPLETE, STATUS_COMPLETE, STATUS_FAILED, STATUS_INCOMPLETE, Run, now_iso
from ..tasks import get_task
from . import checkpoint as ckpt

if TYPE_CHECKING:
    from .dist import Dist

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

    def install(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        from .early import PENDING  # a USR1 that came while torch was still importing (training/early.py)

        if PENDING and self.reason is None:
            self.reason = PENDING.pop(0)
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
    param_groups = getattr(model, "param_groups", None)  # a model's own groups (GcnText: the text tower's lr)
    groups = param_groups(t) if param_groups is not None else [p for p in model.parameters() if p.requires_grad]
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(groups, lr=t.lr, momentum=0.9, weight_decay=t.weight_decay)


class Schedule:
    """LR schedule: optional linear warmup per step, then step/cosine per epoch, plateau on the metric, or
    one-cycle per step. Every factor is a pure function of (step, epoch) plus the plateau state below, so the
    checkpointed step restores the schedule exactly."""

    MOMENTUM = (0.85, 0.95)  # OneCycleLR's base_momentum / max_momentum defaults (torch's; the MoA winners')

    def __init__(self, exp: Experiment, opt: torch.optim.Optimizer, steps_per_epoch: int):
        self.t, self.opt = exp.training, opt
        self.base = [g["lr"] for g in opt.param_groups]
        self.scale = 1.0  # plateau multiplier
        self.model_scale = 1.0  # a model's own per-epoch lr multiplier (Trainer._model_epoch)
        self.best: float | None = None
        self.bad = 0
        self.total = max(1, self.t.epochs * steps_per_epoch)

    def _set(self, factor: float) -> None:
        for g, b in zip(self.opt.param_groups, self.base):
            g["lr"] = b * factor

    def _onecycle(self, step: int) -> tuple[float, float]:
        """(lr factor relative to training.lr, momentum) of torch's OneCycleLR (cos annealing, two phases) at
        `step`: the value torch's scheduler holds after `step` calls to scheduler.step()."""
        t = self.t
        peak = (t.max_lr if t.max_lr is not None else t.lr) / t.lr
        first, low = peak / t.div_factor, peak / t.div_factor / t.final_div_factor
        lo_m, hi_m = self.MOMENTUM
        end1, end2 = float(t.pct_start * self.total) - 1, float(self.total - 1)
        s = min(step, self.total - 1)
        if s <= end1:
            pct, (a, b), (ma, mb) = s / end1, (first, peak), (hi_m, lo_m)
        else:
            pct, (a, b), (ma, mb) = (s - end1) / (end2 - end1), (peak, low), (lo_m, hi_m)

        def cos(start: float, end: float) -> float:
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

        return cos(a, b), cos(ma, mb)

    def factor(self, step: int, epoch: int) -> float:
        t = self.t
        f = self.scale * self.model_scale
        if t.scheduler == "step":
            f *= t.gamma ** sum(1 for m in t.milestones if epoch >= m)
        elif t.scheduler == "cosine":
            f *= 0.5 * (1 + math.cos(math.pi * min(step, self.total) / self.total))
        elif t.scheduler == "onecycle":
            f *= self._onecycle(step)[0]
        if t.warmup_steps and step < t.warmup_steps:
            f *= (step + 1) / t.warmup_steps
        return f

    def at(self, step: int, epoch: int) -> None:
        self._set(self.factor(step, epoch))
        if self.t.scheduler == "onecycle" and self.t.cycle_momentum:
            m = self._onecycle(step)[1]
            for g in self.opt.param_groups:
                if "betas" in g:
                    g["betas"] = (m, g["betas"][1])
                elif "momentum" in g:
                    g["momentum"] = m

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
        return {"scale": self.scale, "best": self.best, "bad": self.bad, "total": self.total}

    def load_state_dict(self, d: dict) -> None:
        self.scale, self.best, self.bad = d["scale"], d["best"], d["bad"]
        if d.get("total", self.total) != self.total:  # the one-cycle/cosine length is fixed when a run starts
            raise ValueError(f"checkpoint's schedule spans {d['total']} steps, this run {self.total}")


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
def predict(
    task: Any, model: torch.nn.Module, split: str, idx: np.ndarray, bs: int, device: torch.device, autocast: Any
) -> dict[str, np.ndarray]:
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
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>9} samples/s"),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


class Trainer:
    """One (experiment, fold) run, resumable at any step (torchtune's recipe class is the model).

    What is saved and what is restored sit side by side in `state_dict()` / `load_state_dict()`; the loop is
    `train_epoch()` (steps, periodic checkpoints), `validate()` (score, best checkpoint, schedule, early
    stopping) and `finish()` (predictions and submission from the best weights). Under torchrun
    (`dist.enabled`) every rank trains on its shard; rank 0 alone writes files."""

    def __init__(
        self,
        exp: Experiment,
        fold: int,
        run: Run,
        *,
        max_time_s: float | None = None,
        progress: bool | None = None,
        tracker: Any = None,
        on_checkpoint: Callable[[], None] | None = None,
        echo: Callable[[str], None] | None = None,
        dist: Dist | None = None,
        task: Any = None,  # a Task, else get_task() in setup(); self.task is used only after setup
    ):
        from .dist import Dist

        self.exp, self.t, self.fold, self.run = exp, exp.training, fold, run
        self.dist = dist or Dist()
        self.main = self.dist.is_main
        echo = echo or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.echo = echo if self.main else (lambda msg: None)
        self.tracker, self.on_checkpoint, self.progress = tracker, on_checkpoint, progress
        self.stop = StopFlag(time.monotonic() + max_time_s if max_time_s is not None else None)
        self.task = task
        # the resumable position; see state_dict()
        self.epoch, self.pos, self.step = 0, 0, 0
        self.best: dict | None = None
        self.bad_epochs, self.train_time = 0, 0.0
        # running loss sums (epoch, log window) live in the checkpoint so resumed metrics equal uninterrupted ones
        self.acc = {"epoch_sum": 0.0, "epoch_n": 0, "win_sum": 0.0, "win_n": 0}

    # ---- setup -------------------------------------------------------------------------------------
    def setup(self) -> None:
        t, dist = self.t, self.dist
        self.device = pick_device(t.device, dist.local_rank)
        if t.threads and self.device.type == "cpu":
            torch.set_num_threads(t.threads)
        self.autocast = _autocast_factory(self.exp, self.device)
        if self.task is None:
            self.task = get_task(self.exp)
            self.task.load()
        if self.exp.data.stack and getattr(self.task, "stacked", None) is None:  # a task not prepared by launch
            from ..stacking import attach

            attach(self.exp, self.fold, self.task, runs_root=self.run.path.parent.parent)
        self.train_idx, self.valid_idx = self.task.split(self.fold)
        # per-fold preparation (fitted preprocessing, cached features) saved in the run folder before the model;
        # under DDP rank 0 fits and writes it while the others wait, then they read what it saved
        if dist.enabled and not self.main:
            dist.barrier()
        self.task.prepare_fold(self.fold, self.train_idx, self.run.path)
        if dist.enabled and self.main:
            dist.barrier()
        seed_everything(t.seed + 1000 * self.fold)
        self.core = build_model(self.exp, self.task.model_info()).to(self.device)
        self.model = self.core
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.model = DDP(self.core, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.opt = make_optimizer(self.exp, self.core)
        self.bs, self.ebs = t.batch_size, t.eval_batch_size or 2 * t.batch_size
        order0 = _batches(self.train_idx, self.bs)
        if len(order0) > 1 and len(order0[-1]) < 2:  # a 1-sample batch breaks BatchNorm; drop it
            order0 = order0[:-1]
        self.steps_per_epoch = min(len(order0), t.max_steps_per_epoch or len(order0))
        self.sched = Schedule(self.exp, self.opt, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda" and t.amp == "fp16")
        self.metrics = MetricsLog(self.run.metrics_path, self.tracker)
        state = ckpt.load_latest(self.run.checkpoints, move_corrupt=self.main)
        if state is not None:
            self.load_state_dict(state)
            self.echo(f"resuming {self.run.path.name} at {self.where()} (step {self.step})")
        self.task.setup(self.core, self.device)
        self.model.train()
        # Losses accumulate on the device (float64: sums of float32 losses stay exact, so they do not depend on
        # when they are read) and are read back only when logged or checkpointed: no device sync per step.
        self.acc_dev = torch.zeros(2, dtype=torch.float64, device=self.device)  # [epoch_sum, win_sum] not in acc
        self.session_t0 = self.last_ckpt = time.monotonic()

    def where(self) -> str:
        """The position for people: epochs and batches counted from 1, as the progress bar counts them."""
        if self.epoch >= self.t.epochs:
            return f"the end of epoch {self.t.epochs}/{self.t.epochs}"
        return f"epoch {self.epoch + 1}/{self.t.epochs} batch {self.pos}/{self.steps_per_epoch}"

    # ---- the resumable state, listed once ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.core.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": ckpt.rng_state(),
            "epoch": self.epoch,
            "pos": self.pos,
            "step": self.step,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "metrics_offset": self.metrics.offset(),
            "loss_acc": dict(self.acc),
            "train_time": self.train_time + time.monotonic() - self.session_t0,
            "config_hash": self.exp.config_hash,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.core.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        self.epoch, self.pos, self.step = state["epoch"], state["pos"], state["step"]
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]
        self.train_time = state.get("train_time", 0.0)
        self.acc = state["loss_acc"]
        self.metrics.truncate(state["metrics_offset"])

    def fold_losses(self) -> None:
        es, ws = self.acc_dev.tolist()
        if not (math.isfinite(es) and math.isfinite(ws)):
            raise FloatingPointError(
                f"loss became {es if not math.isfinite(es) else ws} before epoch {self.epoch} "
                f"step {self.step} (last {self.acc['win_n']} steps)"
            )
        self.acc["epoch_sum"] += es
        self.acc["win_sum"] += ws
        self.acc_dev.zero_()

    def save_checkpoint(self) -> None:
        self.fold_losses()
        self.last_ckpt = time.monotonic()
        if not self.main:
            return
        ckpt.save(self.run.checkpoints / "last.pt", self.state_dict())
        if self.on_checkpoint:
            self.on_checkpoint()

    # ---- the loop ----------------------------------------------------------------------------------
    def train_epoch(self, bar: Any) -> None:
        """The rest of the current epoch from batch `pos`. Raises _Stopped at a signal or the deadline."""
        t, task, dist, stop = self.t, self.task, self.dist, self.stop
        order = _batches(epoch_order(self.train_idx, t.seed, self.epoch), self.bs)[: self.steps_per_epoch]
        ptask = bar.add_task(
            f"fold {self.fold} epoch {self.epoch + 1}/{t.epochs}",
            total=len(order),
            completed=self.pos,
            rate="-",
            loss="-",
        )
        self.seen, self.t_epoch = 0, time.monotonic()
        self._model_epoch()
        while self.pos < len(order):
            self.sched.at(self.step, self.epoch)
            batch = task.batch("train", dist.shard(order[self.pos]), self.device)
            with self.autocast():
                loss = task.loss(self.model, batch)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if t.grad_clip:
                self.scaler.unscale_(self.opt)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
            self.scaler.step(self.opt)
            self.scaler.update()
            self.acc_dev += loss.detach().double()
            self.acc["epoch_n"] += 1
            self.acc["win_n"] += 1
            self.pos += 1
            self.step += 1
            self.seen += len(order[self.pos - 1])
            rate = self.seen / max(1e-9, time.monotonic() - self.t_epoch)
            bar.update(ptask, advance=1, rate=f"{rate:,.0f}")
            if self.step % t.log_every_steps == 0:
                self.fold_losses()
                win = self.acc["win_sum"] / max(1, self.acc["win_n"])
                if self.main:
                    self.metrics.write(
                        {
                            "step": self.step,
                            "epoch": self.epoch,
                            "train_loss": win,
                            "lr": self.opt.param_groups[0]["lr"],
                            "samples_per_s": rate,
                            "time": now_iso(),
                        }
                    )
                bar.update(ptask, loss=f"{win:.4f}")
                self.acc["win_sum"], self.acc["win_n"] = 0.0, 0
            due = (t.checkpoint_every_steps and self.step % t.checkpoint_every_steps == 0) or (
                time.monotonic() - self.last_ckpt >= t.checkpoint_every_s
            )
            stopping, due = dist.any(bool(stop), due)  # every rank takes the same decision
            if stopping and not stop:
                stop.reason = stop.reason or "peer stopped"
            if stop or due:
                if self.pos < len(order):  # at epoch end the checkpoint comes after validation
                    self.save_checkpoint()
                if stop and self.pos < len(order):
                    raise _Stopped()

    def _model_epoch(self) -> None:
        """A model with phases (freeze/unfreeze, pre-training heads) defines `set_epoch(epoch) -> lr multiplier`;
        called at every epoch start, also a resumed one, so the phase is a pure function of the epoch."""
        hook = getattr(self.core, "set_epoch", None)
        if hook is not None:
            self.sched.model_scale = float(hook(self.epoch))

    def validate(self) -> None:
        """Epoch end: validation score, best checkpoint, schedule, early stopping, then the next epoch."""
        t, task = self.t, self.task
        self.fold_losses()
        out = predict(task, self.core, "train", self.valid_idx, self.ebs, self.device, self.autocast)  # every rank
        score = float(task.score(self.valid_idx, out))
        self.sched.on_epoch_end(score, task.greater_is_better)
        sign = 1.0 if task.greater_is_better else -1.0
        improved = self.best is None or sign * score > sign * self.best["value"]
        if improved:
            self.best = {"metric": task.metric_name, "value": score, "epoch": self.epoch, "step": self.step}
            if self.main:
                ckpt.save(
                    self.run.checkpoints / "best.pt",
                    {"model": self.core.state_dict(), "best": self.best, "config_hash": self.exp.config_hash},
                    keep_previous=False,
                )
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        acc = self.acc
        row = {
            "step": self.step,
            "epoch": self.epoch,
            "epoch_train_loss": acc["epoch_sum"] / acc["epoch_n"] if acc["epoch_n"] else None,
            f"valid_{task.metric_name}": score,
            "lr": self.opt.param_groups[0]["lr"],
            "time": now_iso(),
        }
        if self.main:
            self.metrics.write(row)
        self.echo(
            f"epoch {self.epoch + 1}/{t.epochs}  valid {task.metric_name} {score:.4f}"
            f"{'  (best)' if improved else ''}  "
            f"{self.seen / max(1e-9, time.monotonic() - self.t_epoch):,.0f} samples/s"
        )
        self.epoch, self.pos = self.epoch + 1, 0
        acc["epoch_sum"], acc["epoch_n"] = 0.0, 0
        if t.early_stopping_patience is not None and self.bad_epochs > t.early_stopping_patience:
            self.echo(f"early stopping: no improvement in {self.bad_epochs} epochs")
            self.epoch = t.epochs
        self.save_checkpoint()
        if self.dist.any(bool(self.stop))[0] and self.epoch < t.epochs:
            self.stop.reason = self.stop.reason or "peer stopped"
            raise _Stopped()

    def finish(self) -> TrainResult:
        """Predictions, submission and the run summary from the best weights (rank 0)."""
        run, task = self.run, self.task
        if not self.main:
            return TrainResult(STATUS_COMPLETE, run.path, 0, self.best)
        best_path = run.checkpoints / "best.pt"
        if best_path.exists():
            self.core.load_state_dict(ckpt.load_weights(best_path)["model"])
        valid_out = predict(task, self.core, "train", self.valid_idx, self.ebs, self.device, self.autocast)
        task.write_predictions(run.predictions, "valid", self.valid_idx, valid_out)
        test_idx = np.arange(task.n_test())
        if len(test_idx):
            test_out = predict(task, self.core, "test", test_idx, self.ebs, self.device, self.autocast)
            task.write_predictions(run.predictions, "test", test_idx, test_out)
            task.write_submission(run.path / "submission.csv", test_out)
        baseline = task.baseline_score(self.valid_idx)
        summary = {
            "best": self.best,
            "baseline": baseline,
            "steps": self.step,
            "epochs": self.epoch,
            "train_time_s": round(self.train_time + time.monotonic() - self.session_t0, 2),
        }
        if self.tracker is not None:
            self.tracker.summary(
                {
                    f"best_{task.metric_name}": self.best["value"] if self.best else None,
                    "baseline": baseline,
                    "steps": self.step,
                }
            )
        run.end_session(STATUS_COMPLETE, **summary)
        return TrainResult(STATUS_COMPLETE, run.path, 0, self.best)

    def train(self) -> TrainResult:
        """Train (or resume) to the end, or to a stop. Returns the status and exit code (0 complete, 75
        incomplete); a failure is recorded in the manifest and re-raised."""
        self.stop.install()
        try:
            self.setup()
            show = self.main and (sys.stderr.isatty() if self.progress is None else self.progress)
            with _progress(show) as bar:
                while self.epoch < self.t.epochs:
                    self.train_epoch(bar)
                    self.validate()
            return self.finish()
        except _Stopped:
            if self.main:
                self.run.end_session(STATUS_INCOMPLETE, stop_reason=self.stop.reason, best=self.best)
            self.echo(f"stopped ({self.stop.reason}) in {self.where()}; checkpoint saved; resume with the same command")
            return TrainResult(STATUS_INCOMPLETE, self.run.path, EXIT_INCOMPLETE, self.best)
        except BaseException as e:
            if self.main:
                self.run.end_session(STATUS_FAILED, error=f"{type(e).__name__}: {e}")
            raise
        finally:
            self.stop.uninstall()


def train_run(exp: Experiment, fold: int, run: Run, **kwargs: Any) -> TrainResult:
    """Train (or resume) one fold into `run` (see Trainer for the keyword arguments)."""
    return Trainer(exp, fold, run, **kwargs).train()


class _Stopped(Exception):
    pass
