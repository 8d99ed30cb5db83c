"""W&B tracking for the trainer. The trainer always writes `metrics.jsonl` itself; this forwards to W&B.

    tracker = open_tracker(run_dir, exp.to_json(), manifest, fold, settings)
    tracker.log({"loss": 0.3}, step=120); tracker.summary({"best_map": 0.61}); tracker.finish("complete")

- mode "disabled" (the default): a no-op tracker; wandb is not even imported.
- The W&B run id is derived from (experiment id, fold, config hash), so a resumed run continues the same
  W&B run on any machine (`resume="allow"`); a changed config is a new id, the old run is kept.
- Offline files go to `<run folder>/logs/wandb/` (or `[wandb] dir`), so they travel with the run folder
  and `sync_offline` can upload them later from any machine.
- W&B config is the resolved experiment JSON plus the code/machine part of the manifest: no token.
- Tracking never stops training: online without a key, or a failing init, falls back to offline (then to
  no-op) with a warning; a failing log call warns once and is dropped (metrics.jsonl still has it).
- Under DDP only rank 0 tracks (`RANK` != 0 gets the no-op tracker).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import secrets
from .errors import ConfigError
from .project import project_root
from .settings import Settings, load_settings, wandb_key_source

log = logging.getLogger("molremote.tracking")

_ID_BAD = re.compile(r"[^A-Za-z0-9_-]+")
# Manifest fields that go to W&B config (run identity and provenance; never the environment).
MANIFEST_KEYS_FOR_WANDB = ("run_uid", "machine")
CODE_KEYS_FOR_WANDB = ("commit", "dirty", "bundle_hash")
_OFFLINE_DIR = re.compile(r"^offline-run-(\d{8}_\d{6})-(.+)$")


def wandb_run_id(experiment: int, fold: int, config_hash: str, seed: int | None = None) -> str:
    """Stable W&B run id of one run: `0620-f0-<hash>` (`0620-f0-s1-<hash>` for one seed of several), limited to
    W&B's safe characters and 64 chars."""
    s = f"s{int(seed)}-" if seed is not None else ""
    rid = _ID_BAD.sub("-", f"{int(experiment):04d}-f{int(fold)}-{s}{config_hash}").strip("-")
    if len(rid) > 64:  # W&B run ids are short keys; keep them unique with a digest when trimmed
        rid = rid[:51] + "-" + hashlib.sha256(rid.encode()).hexdigest()[:12]
    return rid


def wandb_dir_for(run_dir: Path, settings: Settings) -> Path:
    """Where wandb writes: `[wandb] dir` (relative to the project root), else `<run folder>/logs`."""
    if settings.wandb.dir:
        d = Path(settings.wandb.dir).expanduser()
        return d if d.is_absolute() else project_root() / d
    return Path(run_dir) / "logs"


def _scrub(obj: Any) -> Any:
    """Drop secret-looking keys and mask secrets inside strings (a token in a URL, a password in a
    destination): defence in depth, nothing secret should be in the experiment or manifest anyway."""
    if isinstance(obj, dict):
        return {k: _scrub(v) for k, v in obj.items() if not secrets.secret_key(k)}
    if isinstance(obj, list):
        return [_scrub(v) for v in obj]
    return secrets.mask(obj) if isinstance(obj, str) else obj


def wandb_config(exp_json: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    code = manifest.get("code") or {}
    m = {k: code.get(k) for k in CODE_KEYS_FOR_WANDB}
    m.update({k: manifest.get(k) for k in MANIFEST_KEYS_FOR_WANDB})
    return _scrub({"experiment": exp_json, "manifest": m})


# ------------------------------------------------------------------------------------------------ trackers
class NullTracker:
    """Tracking disabled: every call does nothing."""

    run_id: str | None = None
    mode = "disabled"

    def log(self, metrics: dict[str, Any], step: int) -> None:
        pass

    def summary(self, d: dict[str, Any]) -> None:
        pass

    def finish(self, status: str) -> None:
        pass


class WandbTracker:
    """Forwards to one wandb Run. Every call is guarded: tracking problems never stop training."""

    def __init__(self, run: Any, mode: str):
        self.run, self.mode, self.run_id = run, mode, run.id
        self._warned = False
        self._finished = False
        # A resumed online run already holds steps up to run.step: skip re-logged older rows (the trainer
        # replays metrics from its last checkpoint) instead of letting wandb warn about each of them.
        self._min_step = int(getattr(run, "starting_step", 0) or 0) if getattr(run, "resumed", False) else 0

    def _guard(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - tracking must never kill a run
            if not self._warned:
                log.warning("W&B %s failed (%s); metrics.jsonl keeps everything, continuing", what, e)
                self._warned = True

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if self._finished or step < self._min_step:
            return
        self._guard("log", self.run.log, dict(metrics), step=int(step))

    def summary(self, d: dict[str, Any]) -> None:
        if not self._finished:
            self._guard("summary", self.run.summary.update, dict(d))

    def finish(self, status: str) -> None:
        """status: complete | incomplete (resumable: marked preempted in W&B) | failed (exit code 1)."""
        if self._finished:
            return
        self._finished = True
        self._guard("summary", self.run.summary.update, {"status": status})
        if status == "incomplete":
            self._guard("mark_preempting", self.run.mark_preempting)
        self._guard("finish", self.run.finish, exit_code=1 if status == "failed" else 0)


def _init(wandb: Any, mode: str, kwargs: dict[str, Any]) -> Any:
    return wandb.init(mode=mode, **kwargs)


def open_tracker(
    run_dir: Path, exp_json: dict[str, Any], manifest: dict[str, Any], fold: int, settings: Settings | None = None
) -> NullTracker | WandbTracker:
    """A tracker for one run: no-op when W&B is disabled (or on a non-zero DDP rank), else a W&B run whose
    id is stable across resumes. `exp_json` is `Experiment.to_json()`, `manifest` the run's manifest."""
    settings = settings or load_settings()
    mode = settings.wandb.mode
    if mode == "disabled" or os.environ.get("RANK", "0") not in ("", "0"):
        return NullTracker()
    if mode == "online" and wandb_key_source() is None:
        log.warning(
            "W&B mode is online but no API key was found (WANDB_API_KEY or `wandb login`); "
            "logging offline instead: upload later with `molremote wandb-sync`"
        )
        mode = "offline"

    config_hash = exp_json.get("config_hash") or manifest.get("config_hash") or "nohash"
    exp_id = int(exp_json.get("id", manifest.get("experiment", 0)))
    seed = manifest.get("seed")  # one of several seeds: its own W&B run
    run_id = wandb_run_id(exp_id, fold, config_hash, seed)
    name = (
        exp_json.get("name")
        or manifest.get("name")
        or (f"{exp_id:04d}_{exp_json['slug']}" if exp_json.get("slug") else f"{exp_id:04d}")
    )
    wdir = wandb_dir_for(Path(run_dir), settings)
    wdir.mkdir(parents=True, exist_ok=True)
    tags = [t[:64] for t in [*exp_json.get("tags", []), f"fold{fold}", f"exp{exp_id:04d}"]]

    import wandb  # lazy: only training with W&B enabled pays its import

    kwargs = dict(
        id=run_id,
        resume="allow",
        project=settings.wandb.project,
        entity=settings.wandb.entity,
        dir=str(wdir),
        name=f"{name}-fold{fold}" + (f"-seed{seed}" if seed is not None else ""),
        group=name,
        job_type=f"fold{fold}",
        tags=tags,
        config=wandb_config(exp_json, manifest),
        reinit="finish_previous",
        # init_timeout: a slow or unreachable server must not eat a training session's time budget.
        settings=wandb.Settings(init_timeout=120.0, save_code=False, silent=False),
    )
    try:
        run = _init(wandb, mode, kwargs)
    except Exception as e:  # noqa: BLE001
        if mode != "online":
            log.warning("W&B init failed (%s); tracking disabled for this run (metrics.jsonl still written)", e)
            return NullTracker()
        log.warning("W&B online init failed (%s); logging offline instead", e)
        mode = "offline"
        # The failed online run still holds its id in wandb's service process, and an offline init of the
        # same id is then refused ("run ID ... is in use"): shut the service down; the next init starts one.
        try:
            wandb.teardown()
        except Exception as e2:  # noqa: BLE001
            log.debug("wandb.teardown() after a failed init: %s", e2)
        try:
            run = _init(wandb, mode, kwargs)
        except Exception as e2:  # noqa: BLE001
            log.warning("W&B offline init failed too (%s); tracking disabled for this run", e2)
            return NullTracker()
    return WandbTracker(run, mode)


# ----------------------------------------------------------------------------------------------- syncing
@dataclass
class SyncResult:
    run_id: str
    paths: list[Path]
    command: list[str]
    returncode: int | None = None
    output: str = ""
    ok: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.ok = self.returncode == 0


def _expand(path: Path, settings: Settings) -> tuple[list[Path], str | None]:
    """Offline run folders under `path` (a run folder, a wandb dir or an offline-run folder) and, for a run
    folder with a manifest, the W&B id its folders must carry (a shared wandb dir holds other runs too)."""
    path = Path(path)
    if _OFFLINE_DIR.match(path.name) and path.is_dir():
        return [path], None
    want = None
    manifest = path / "manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        want = wandb_run_id(m["experiment"], m["fold"], m["config_hash"], m.get("seed"))
        roots = [wandb_dir_for(path, settings) / "wandb"]
    else:
        roots = [path / "wandb", path, path / "logs" / "wandb"]
    found: list[Path] = []
    for r in roots:
        if r.is_dir():
            found += [p for p in r.iterdir() if p.is_dir() and _OFFLINE_DIR.match(p.name)]
    return found, want


def _offline_id_and_order(folder: Path) -> tuple[str, tuple[str, int]] | None:
    """(run id, start-order key) of an offline run folder. The id comes from its `run-<id>.wandb` file:
    wandb names a second folder started in the same second `offline-run-<time>-<id>-1`."""
    m = _OFFLINE_DIR.match(folder.name)
    files = list(folder.glob("run-*.wandb"))
    if not m or len(files) != 1:
        return None
    rid = files[0].name[len("run-") : -len(".wandb")]
    rest = m.group(2)
    n = int(rest[len(rid) + 1 :]) if rest.startswith(rid + "-") and rest[len(rid) + 1 :].isdigit() else 0
    return rid, (m.group(1), n)


def offline_runs(paths: Path | Iterable[Path], settings: Settings | None = None) -> dict[str, list[Path]]:
    """{W&B run id: its offline run folders in start order} for the given run folders / wandb dirs."""
    settings = settings or load_settings()
    if isinstance(paths, (str, Path)):
        paths = [Path(paths)]
    groups: dict[str, dict[Path, tuple[str, int]]] = {}
    for p in paths:
        folders, want = _expand(Path(p), settings)
        for f in folders:
            got = _offline_id_and_order(f)
            if got is not None and (want is None or got[0] == want):
                groups.setdefault(got[0], {})[f.resolve()] = got[1]
    return {rid: sorted(fs, key=lambda f: (fs[f], f.name)) for rid, fs in sorted(groups.items())}


def _wandb_command() -> list[str]:
    exe = Path(sys.executable).with_name("wandb")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("wandb")
    return [found] if found else [sys.executable, "-m", "wandb"]


def sync_offline(
    paths: Path | Iterable[Path],
    project: str | None = None,
    entity: str | None = None,
    *,
    dry_run: bool = False,
    settings: Settings | None = None,
    timeout_s: float = 3600.0,
) -> list[SyncResult]:
    """Upload offline W&B runs: one `wandb sync --id ID --project P [--entity E] <folders...>` per run id,
    its folders in start order (a resumed run's sessions replay in order into the same W&B run).
    `dry_run` passes wandb's `--dry-run` (lists what would be uploaded). Needs WANDB_API_KEY or
    `wandb login` unless dry_run. Returns one SyncResult per run id (ok, returncode, output)."""
    settings = settings or load_settings()
    project = project or settings.wandb.project
    entity = entity or settings.wandb.entity
    if not dry_run and wandb_key_source() is None:
        raise ConfigError(
            "wandb sync needs a W&B API key: export WANDB_API_KEY or run `wandb login` "
            "(the key is read from the environment or ~/.netrc, never from molremote.toml)"
        )
    results = []
    for rid, folders in offline_runs(paths, settings).items():
        cmd = [*_wandb_command(), "sync", "--id", rid, "--project", project]
        if entity:
            cmd += ["--entity", entity]
        if dry_run:
            cmd.append("--dry-run")
        cmd += [str(f) for f in folders]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
            res = SyncResult(rid, folders, cmd, p.returncode, (p.stdout or "") + (p.stderr or ""))
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            res = SyncResult(rid, folders, cmd, None, out + f"\ntimed out after {timeout_s:.0f} s")
        # wandb sync exits 0 after printing "Not authenticated." (key rejected): treat that as a failure.
        if res.ok and "Not authenticated" in res.output:
            res.ok = False
        results.append(res)
    return results
