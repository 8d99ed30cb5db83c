"""Kaggle kernel backend: one private script kernel per (experiment, fold), chained past the 12-hour limit.

    render(job)   kernel-metadata.json + molremote_kernel.py (kernels_templates/kaggle_kernel.py): pure
    launch(job)   quota check, bundle dataset when too big to embed, push, wait past the stale status
    status(rec)   Kaggle's status + the kernel's own molremote-status.json (the trainer's exit code)
    logs(rec)     the kernel log (Kaggle serves it only once the session has ended)
    fetch(rec)    run folders from the kernel output, for when there is no store
    cancel(rec)   Kaggle has no API for it: BackendError pointing at the web page
    chain(...)    push session after session until the run completes (trainer exit 75 -> next session)

Why one kernel per (experiment, fold): Kaggle's status and output calls only reach a kernel's latest version
(kaggle-cli #134, #594), so one shared notebook name would hide every earlier run. The slug,
`mr-0620-f1-<hash8>`, also carries the config hash: a changed config is a new kernel and the old one stays.
Every call to Kaggle goes through `KaggleClient` (kaggle_api.py). torch-free.
"""

from __future__ import annotations

import base64
import json
import pprint
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import EXIT_INCOMPLETE, BackendError, UsageError
from ..jobs import JobRecord
from ..runs import key_for
from .base import Backend, Job, JobStatus, Options, render_template, tail

CODE_FILE = "molremote_kernel.py"
STATUS_FILE = "molremote-status.json"
KAGGLE_URL = "https://www.kaggle.com"
B64_LINE = 100  # characters per line of the embedded bundle
# Accelerator names Kaggle accepts as machine_shape (kaggle-cli docs; the server substitutes retired ones).
ACCELERATORS = (
    "NvidiaTeslaP100",
    "NvidiaTeslaT4",
    "NvidiaTeslaT4Highmem",
    "NvidiaTeslaA100",
    "NvidiaL4",
    "NvidiaL4X1",
    "NvidiaH100",
    "TpuV38",
    "Tpu1VmV38",
    "TpuV5E8",
    "TpuV6E8",
)
CPU_NAMES = ("none", "cpu")
TPU_SESSION_HOURS = 9.0  # Kaggle's TPU sessions are shorter than GPU ones


class KaggleOptions(Options):
    account: str | None = None  # [kaggle.accounts.NAME] in molremote.toml (None: default lookup)
    username: str | None = None  # kernel owner; None: the account's username (filled in by launch)
    accelerator: str | None = None  # machine_shape; None: exp.backend.kaggle.accelerator; "none": CPU only
    internet: bool | None = None  # None: exp.backend.kaggle.internet
    session_hours: float | None = None  # None: exp.backend.kaggle.session_hours (TPU: at most 9)
    margin_minutes: float | None = None  # None: exp.backend.kaggle.margin_minutes
    store: str | None = None  # store URL the kernel restores from and syncs to (None: results stay in output)
    wandb_mode: str = "disabled"
    wandb_project: str = "molremote"
    wandb_entity: str | None = None
    secrets: list[str] = []  # further secret NAMES the kernel must read (values never leave Kaggle)
    extras: list[str] = ["train"]  # pyproject optional dependency sets the kernel needs
    inline_max_mb: float = 1.0  # bigger bundles travel as a private dataset version, not inside the script
    min_quota_hours: float = 1.0  # refuse to push with less accelerator quota than this left this week
    check_quota: bool = True
    poll_s: float = 30.0  # status polling while waiting (Kaggle answers slowly; no need to hammer it)
    stale_grace_s: float = 600.0  # how long a final status seen before QUEUED/RUNNING may be the old version's
    session: int = 1  # session number of a chain (per job)
    relaunch: str = ""  # the command that pushes this experiment again (shown in messages)
    kernels_dir: str | None = None  # where pushed kernel folders are written (None: <project>/.molremote/kernels)


@dataclass(frozen=True)
class KernelSettings:
    """Everything rendering decides from the job and the options (also used by launch and the quota check)."""

    options: KaggleOptions
    fold: int
    slug: str
    owner: str
    accelerator: str | None
    session_hours: float
    margin_minutes: float
    internet: bool
    inline: bool
    datasets: list[str]
    code_dataset: str | None
    competition: str | None

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"


def kernel_slug(experiment: dict[str, Any], fold: int, seed: int | None = None) -> str:
    """`mr-0620-f1-<hash8>`: unique per (experiment, fold, config); `mr-0620-f1-s2-<hash8>` per seed of several."""
    s = f"s{int(seed)}-" if seed is not None else ""
    return f"mr-{int(experiment['id']):04d}-f{int(fold)}-{s}{str(experiment.get('config_hash', ''))[:8]}"


def bundle_dataset_slug(sha256: str) -> str:
    """One private dataset per bundle content (immutable: a later push never changes an earlier session's code)."""
    return f"mr-code-{sha256[:16]}"


def _kaggle_defaults(experiment: dict[str, Any]) -> dict[str, Any]:
    from ..experiments import KaggleDefaults

    given = (experiment.get("backend") or {}).get("kaggle") or {}
    return {**KaggleDefaults().model_dump(), **given}


def _competition(experiment: dict[str, Any]) -> str | None:
    from ..errors import ExperimentError
    from ..tasks import task_results

    name = (experiment.get("task") or {}).get("name")
    try:
        return task_results(name).competition
    except ExperimentError:
        raise BackendError(f"experiment {experiment.get('id')}: unknown task '{name}'") from None


def _is_tpu(acc: str | None) -> bool:
    return bool(acc) and acc.lower().startswith("tpu")  # type: ignore[union-attr]


def _state_from_exit(code: int | None) -> tuple[str, str]:
    if code == 0:
        return "complete", "trainer exit 0"
    if code == EXIT_INCOMPLETE:
        return "incomplete", "stopped at the session deadline (exit 75): resumable, push the next session"
    return "failed", f"trainer exit {code}"


class KaggleBackend(Backend[KaggleOptions]):
    name = "kaggle"
    Options = KaggleOptions

    # ------------------------------------------------------------------------------------- settings
    def settings_for(self, job: Job) -> KernelSettings:
        """Everything the rendering decides from the job and the options (also used by launch)."""
        o = self.job_options(job)
        if len(job.folds) != 1:
            raise BackendError(f"a Kaggle kernel runs one fold; got folds {job.folds} (one kernel per fold)")
        exp, fold = job.experiment, job.folds[0]
        k = _kaggle_defaults(exp)
        acc = o.accelerator if o.accelerator is not None else k["accelerator"]
        if acc and acc.lower() in CPU_NAMES:
            acc = None
        if acc and acc not in ACCELERATORS:
            raise UsageError(
                f"--accelerator: unknown Kaggle accelerator '{acc}' (known: {', '.join(ACCELERATORS)}, or none)"
            )
        hours = o.session_hours if o.session_hours is not None else k["session_hours"]
        if _is_tpu(acc):
            hours = min(hours, TPU_SESSION_HOURS)
        margin = o.margin_minutes if o.margin_minutes is not None else k["margin_minutes"]
        slug = kernel_slug(exp, fold, job.seed)
        owner = o.username or "YOUR_KAGGLE_USERNAME"
        inline = job.bundle.size <= o.inline_max_mb * 1e6
        datasets = list((exp.get("data") or {}).get("kaggle_datasets") or [])
        code_ds = None if inline else f"{owner}/{bundle_dataset_slug(job.bundle.sha256)}"
        return KernelSettings(
            options=o,
            fold=fold,
            slug=slug,
            owner=owner,
            accelerator=acc,
            session_hours=hours,
            margin_minutes=margin,
            internet=bool(o.internet if o.internet is not None else k["internet"]),
            inline=inline,
            datasets=datasets,
            code_dataset=code_ds,
            competition=_competition(exp),
        )

    def secrets_needed(self, o: KaggleOptions) -> list[dict[str, str]]:
        out = []
        if o.store and o.store.startswith("hf://"):
            out.append({"name": "HF_TOKEN", "why": f"the store is {o.store}"})
        if o.wandb_mode == "online":
            out.append({"name": "WANDB_API_KEY", "why": "W&B tracking is online"})
        out += [
            {"name": n, "why": "listed in the backend's secrets"}
            for n in o.secrets
            if n not in {s["name"] for s in out}
        ]
        return out

    # ------------------------------------------------------------------------------------- render
    def render(self, job: Job) -> dict[str, str]:
        s = self.settings_for(job)
        o: KaggleOptions = s.options
        exp = job.experiment
        meta = {
            "id": s.ref,
            "title": s.slug,
            "code_file": CODE_FILE,
            "language": "python",
            "kernel_type": "script",
            "is_private": True,
            "enable_gpu": bool(s.accelerator) and not _is_tpu(s.accelerator),
            "enable_tpu": _is_tpu(s.accelerator),
            "enable_internet": bool(s.internet),
            "dataset_sources": s.datasets + ([s.code_dataset] if s.code_dataset else []),
            "competition_sources": [s.competition] if s.competition else [],
            "kernel_sources": [],
            "model_sources": [],
        }
        if s.accelerator:
            meta["machine_shape"] = s.accelerator
        b = job.bundle
        config = {
            "job_id": job.job_id,
            "session": o.session,
            "kernel": s.ref,
            "kernel_url": f"{KAGGLE_URL}/code/{s.ref}",
            "experiment_name": job.name,
            "experiment": exp,
            "fold": s.fold,
            "run_key": key_for(job.name, s.fold, str(exp.get("config_hash", "")), job.seed),
            "relaunch": o.relaunch
            or f"molremote remote -e {int(exp['id'])} --kaggle --fold {s.fold}"
            + (f" --seed {job.seed}" if job.seed is not None else ""),
            "secrets": self.secrets_needed(o),
            "bundle": {
                "sha256": b.sha256,
                "content_hash": b.content_hash,
                "commit": b.commit,
                "dirty": b.dirty,
                "mode": "inline" if s.inline else "dataset",
                "dataset": s.code_dataset,
            },
            "requirements": b.requirements(o.extras) if b.dependencies else [],
            "internet": bool(s.internet),
            "data": {"datasets": s.datasets, "competition": s.competition},
            "store": o.store,
            "wandb": {"mode": o.wandb_mode, "project": o.wandb_project, "entity": o.wandb_entity},
            "session_limit_s": round(s.session_hours * 3600, 3),
            "margin_s": round(s.margin_minutes * 60, 3),
            "train_args": list(job.train_args),
        }
        b64 = ""
        if s.inline:
            try:
                raw = Path(b.path).read_bytes()
            except OSError as e:
                raise BackendError(f"bundle {b.path}: {e.strerror}") from None
            text = base64.b64encode(raw).decode()
            b64 = "\n" + "".join(f'    "{text[i : i + B64_LINE]}",\n' for i in range(0, len(text), B64_LINE))
        script = render_template(
            "kaggle_kernel.py",
            experiment=job.name,
            fold=s.fold,
            session=o.session,
            job_id=job.job_id,
            config=pprint.pformat(config, indent=1, width=110, sort_dicts=True),
            bundle_short=b.sha256[:16],
            bundle_b64=b64,
        )
        return {"kernel-metadata.json": json.dumps(meta, indent=2) + "\n", CODE_FILE: script}

    def write_folder(self, job: Job, dest: Path, files: dict[str, str] | None = None) -> Path:
        """Write the rendered kernel (`files`, default `render(job)`) into `dest`, each file atomically, files
        of an earlier render removed; returns `dest`."""
        from ..fsutil import write_text

        files = self.render(job) if files is None else files
        dest = Path(dest)
        for name, text in files.items():
            write_text(dest / name, text)
        for p in dest.iterdir():
            if p.name not in files:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        return dest

    def kernel_folder(self, job: Job) -> Path:
        """Where the kernel folder of `job` is written (kaggle kernels push reads a folder)."""
        from ..project import project_root

        o = self.job_options(job)
        base = Path(o.kernels_dir) if o.kernels_dir else project_root() / ".molremote" / "kernels"
        return base / kernel_slug(job.experiment, job.folds[0], job.seed)

    # ------------------------------------------------------------------------------------- launch
    def client(self, o: KaggleOptions | None = None):
        from .kaggle_api import KaggleClient

        return KaggleClient((o or self.options).account)

    def check_quota(self, job: Job, client: Any = None) -> dict[str, Any]:
        """The account's weekly quota; BackendError when less than min_quota_hours of the accelerator is left."""
        s = self.settings_for(job)
        o: KaggleOptions = s.options
        q = (client or self.client(o)).quota()
        if not s.accelerator:
            return q
        kind = "tpu" if _is_tpu(s.accelerator) else "gpu"
        left = q.get(f"{kind}_hours_left")
        if left is not None and left < o.min_quota_hours:
            refresh = q.get("refresh_time") or "next week"
            raise BackendError(
                f"Kaggle account {client.username if client else ''}: only {left:.1f} h of {kind.upper()} quota "
                f"left this week ({q.get(f'{kind}_hours_used') or 0:.1f} of {q.get(f'{kind}_hours_total') or 0:.0f} "
                f"h used), less than the {o.min_quota_hours:g} h needed to push; it refreshes at {refresh}. "
                "Use another account (--account NAME) or wait"
            )
        return q

    def launch(self, job: Job) -> JobRecord:
        from .. import jobs

        o = self.job_options(job)
        client = self.client(o)
        with client:
            if not o.username:
                job = replace(job, options={**job.options, "username": client.username})
            s = self.settings_for(job)
            if o.check_quota:
                q = self.check_quota(job, client)
                kind = "tpu" if _is_tpu(s.accelerator) else "gpu"
                left = q.get(f"{kind}_hours_left")
                if s.accelerator and left is not None and left < s.session_hours:
                    # end cleanly (checkpoint, sync) before Kaggle stops the kernel for lack of quota
                    job = replace(job, options={**job.options, "session_hours": round(left, 3)})
                    s = self.settings_for(job)
            if s.code_dataset:
                self._upload_bundle(client, job, s.code_dataset)
            folder = self.write_folder(job, self.kernel_folder(job))
            res = client.push_kernel(folder, timeout_s=int(s.session_hours * 3600))
        o = self.job_options(job)
        handle = {
            "kernel": res.ref,
            "url": res.url or f"{KAGGLE_URL}/code/{res.ref}",
            "version": res.version,
            "session": o.session,
            "folder": str(folder),
            "pushed_at": time.time(),
            "seen_active": False,
        }
        rec = job.new_record(self.name, handle, o.model_dump(exclude_none=True))
        rec.state, rec.detail = "pending", f"pushed version {res.version} of {res.ref} (session {o.session})"
        jobs.save(rec)
        return rec

    def _upload_bundle(self, client: Any, job: Job, ref: str) -> None:
        from .kaggle_api import write_dataset_metadata

        with tempfile.TemporaryDirectory(prefix="molremote-code-") as tmp:
            shutil.copy2(job.bundle.path, Path(tmp) / Path(job.bundle.path).name)
            write_dataset_metadata(Path(tmp), ref, f"molremote code {job.bundle.sha256[:16]}")
            client.dataset_create_or_version(tmp, f"molremote code bundle {job.bundle.sha256[:16]}")

    # ------------------------------------------------------------------------------------- follow
    def _client_for(self, record: JobRecord):
        return self.client(self._parse(record.options))

    def _kernel_status_file(self, client: Any, ref: str) -> dict | None:
        with tempfile.TemporaryDirectory(prefix="molremote-status-") as tmp:
            out = client.kernel_output(ref, tmp, only=[STATUS_FILE])
            for f in out.files:
                if f.name == STATUS_FILE:
                    try:
                        return json.loads(f.read_text())
                    except ValueError:
                        return None
        return None

    def status(self, record: JobRecord) -> JobStatus:
        from .. import jobs

        ref, client = record.handle["kernel"], self._client_for(record)
        kstatus, failure = client.kernel_status(ref)
        session = record.handle.get("session", 1)
        if kstatus in ("QUEUED", "NEW_SCRIPT"):
            self._seen_active(record, jobs)
            return JobStatus("pending", f"queued on Kaggle (session {session})")
        if kstatus in ("RUNNING", "CANCEL_REQUESTED"):
            self._seen_active(record, jobs)
            return JobStatus("running", f"running on Kaggle (session {session}): {record.handle.get('url')}")
        if kstatus == "CANCEL_ACKNOWLEDGED":
            return JobStatus("cancelled", "stopped in the Kaggle web UI")
        # COMPLETE or ERROR: ours, or still the previous version's (the trap right after a push)?
        st = self._kernel_status_file(client, ref)
        ours = st is not None and st.get("job_id") == record.job_id
        young = time.time() - float(record.handle.get("pushed_at") or 0) < self._parse(record.options).stale_grace_s
        if not ours and not record.handle.get("seen_active") and young:
            return JobStatus(
                "pending",
                f"Kaggle still reports the previous version ({kstatus}); waiting for session {session} to start",
            )
        if not ours or st is None:  # (st is None only when not ours)
            why = failure or "the kernel ended without writing molremote-status.json"
            return JobStatus("failed", f"Kaggle: {kstatus}: {why}")
        if st.get("state") == "failed" and st.get("message"):
            return JobStatus("failed", st["message"])
        if kstatus == "ERROR":
            return JobStatus("failed", f"Kaggle: ERROR: {failure or st.get('message') or 'unknown'}")
        state, detail = _state_from_exit(st.get("exit_code"))
        best = st.get("best") or {}
        if best.get("value") is not None:
            detail += f"; best {best.get('metric')} {best['value']:.4f}"
        return JobStatus(state, detail)

    @staticmethod
    def _seen_active(record: JobRecord, jobs: Any) -> None:
        if not record.handle.get("seen_active"):
            record.handle["seen_active"] = True  # in place: the caller's copy saves it too
            jobs.save(record)

    def wait(
        self,
        record: JobRecord,
        poll_s: float | None = None,
        timeout_s: float | None = None,
        on_change: Callable[[JobStatus], None] | None = None,
    ) -> JobStatus:
        """Poll until the job ends; the record is kept up to date. Returns the final status."""
        from . import refresh

        poll = poll_s if poll_s is not None else self._parse(record.options).poll_s
        t0, last = time.monotonic(), None
        while True:
            record, st = refresh(record)
            if on_change and (st.state, st.detail) != last:
                on_change(st)
            last = (st.state, st.detail)
            if st.state not in ("pending", "running"):
                return st
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                raise BackendError(f"{record.handle['kernel']}: still {st.state} after {timeout_s:.0f} s")
            time.sleep(poll)

    def logs(self, record: JobRecord, follow: bool = False, fold: int | None = None) -> Iterator[str]:
        """The kernel's log (one kernel runs one fold, so `fold` selects nothing more)."""
        from .kaggle_api import parse_kernel_log

        ref, url = record.handle["kernel"], record.handle.get("url")
        st = self.wait(record) if follow else self.status(record)
        if st.state in ("pending", "running"):
            yield (
                f"{ref} is {st.state}: Kaggle serves a kernel's log through its API only once the session "
                f"has ended. Watch it live at {url} (Logs tab), or run `molremote logs -e "
                f"{record.experiment_id} -f` to wait for it.\n"
            )
            return
        with tempfile.TemporaryDirectory(prefix="molremote-log-") as tmp:
            out = self._client_for(record).kernel_output(ref, tmp, only=[])
            text = parse_kernel_log(out.log.read_text()) if out.log else ""
        yield text if text else f"{ref}: Kaggle returned no log for its latest version ({st.state}: {st.detail})\n"

    def fetch(self, record: JobRecord, dest: Path) -> Path:
        """Copy the run folders of the kernel output into `dest` (the local runs folder); returns the run folder."""
        from ..fsutil import write_stream

        ref = record.handle["kernel"]
        with tempfile.TemporaryDirectory(prefix="molremote-fetch-") as tmp:
            out = self._client_for(record).kernel_output(ref, tmp, only=["runs/*"])
            if not out.files:
                raise BackendError(
                    f"{ref}: the kernel output holds no run folder (yet); status: "
                    f"`molremote status -e {record.experiment_id}`"
                )
            runs = Path(tmp) / "runs"
            for f in out.files:
                with open(f, "rb") as src:
                    write_stream(Path(dest) / f.relative_to(runs), src)
        keys = {f.relative_to(runs).parts[:2] for f in out.files}
        if len(keys) == 1:
            return Path(dest).joinpath(*next(iter(keys)))
        return Path(dest)

    def cancel(self, record: JobRecord) -> None:
        url = record.handle.get("url") or f"{KAGGLE_URL}/code/{record.handle.get('kernel')}"
        raise BackendError(
            f"Kaggle has no API to stop a running kernel (kaggle-cli #388). Stop it in the web "
            f"UI: open {url}, then 'Cancel run' on the running version (or 'Stop session' in the "
            "editor). With a store, the next push resumes from the last checkpoint the kernel synced"
        )


# ------------------------------------------------------------------------------------------- chaining
def chain(
    backend: KaggleBackend,
    job: Job,
    *,
    max_sessions: int,
    first_session: int = 1,
    poll_s: float | None = None,
    echo: Callable[[str], None] = print,
) -> tuple[str, list[JobRecord]]:
    """Push session after session of one (experiment, fold) until the run completes.

    A session that ends incomplete (trainer exit 75 at the deadline) is followed by the next, which resumes
    from the store's checkpoint and continues the same W&B run (its id is derived from the run). The quota
    is checked before every push. Returns ("complete", records); BackendError when a session fails, the
    quota runs out, or `max_sessions` are used up while the run is still incomplete."""
    o = backend.job_options(job)
    if not o.store:
        raise BackendError(
            'chaining needs a store the kernel can reach (e.g. [store] url = "hf://me/runs" in '
            "molremote.toml): each session resumes from the checkpoint the previous one synced"
        )
    records: list[JobRecord] = []
    for n in range(first_session, first_session + max_sessions):
        sj = replace(job, job_id=f"{job.job_id}-s{n}", options={**job.options, "session": n})
        try:
            rec = backend.launch(sj)
        except BackendError as e:
            raise BackendError(f"session {n} not pushed: {e}") from None
        records.append(rec)
        echo(f"session {n}: pushed {rec.handle['kernel']} version {rec.handle.get('version')} ({rec.handle['url']})")

        def on_change(s: JobStatus, n: int = n) -> None:
            echo(f"session {n}: {s.state}: {s.detail}")

        st = backend.wait(rec, poll_s, on_change=on_change)
        if st.state == "complete":
            return "complete", records
        if st.state != "incomplete":
            log_tail = tail(st.log_tail) if st.log_tail else ""
            raise BackendError(f"session {n} ended {st.state}: {st.detail}" + (f"\n{log_tail}" if log_tail else ""))
    raise BackendError(
        f"the run is still incomplete after {max_sessions} session(s) (--max-sessions); push again "
        "with --chain to continue from the store's checkpoint"
    )


# ------------------------------------------------------------------------------------------- data
def push_dataset(
    task: str,
    path: Path | str,
    *,
    slug: str | None = None,
    title: str | None = None,
    account: str | None = None,
    notes: str = "molremote data push",
    client: Any = None,
) -> tuple[str, bool]:
    """Upload folder `path` (sub-folders included, as archives Kaggle unpacks) as the private dataset
    `<user>/<slug>`: created the first time, a new version afterwards. Returns (ref, created).

    The folder is staged through links in a temporary folder so the user's data folder gets no
    dataset-metadata.json written into it."""
    from ..tasks import TASKS
    from .kaggle_api import KaggleClient, write_dataset_metadata

    if task not in TASKS:
        raise UsageError(f"--task: unknown task '{task}' (known: {', '.join(sorted(TASKS))})")
    src = Path(path).expanduser().resolve()
    if not src.is_dir():
        raise BackendError(f"--path {path}: not a folder")
    entries = [p for p in sorted(src.iterdir()) if not p.name.startswith(".")]
    if not entries:
        raise BackendError(f"--path {path}: the folder is empty")
    slug = slug or f"molremote-{task}-data"
    client = client or KaggleClient(account)
    with tempfile.TemporaryDirectory(prefix="molremote-data-") as tmp:
        stage = Path(tmp) / slug
        stage.mkdir()
        for p in entries:
            (stage / p.name).symlink_to(p, target_is_directory=p.is_dir())
        ref = f"{client.username}/{slug}"
        write_dataset_metadata(stage, ref, title or slug)
        res = client.dataset_create_or_version(stage, notes)
    return res.ref, res.created
