#!/usr/bin/env python3
"""molremote Kaggle kernel: experiment @{experiment}, fold @{fold}, session @{session} (job @{job_id}).

Rendered by molremote from kernels_templates/kaggle_kernel.py and pushed by `molremote remote -e N --kaggle`.
In order, it:
  1. reads the secrets the run needs from Kaggle Secrets (editor: Add-ons -> Secrets) and stops within
     seconds, naming the missing one (outside Kaggle: from environment variables of the same names);
  2. unpacks the code bundle (embedded at the end of this file, or found in its private dataset) and puts
     it on PYTHONPATH; installs only the dependencies the image lacks;
  3. finds the data under <root>/input by searching (mount paths changed in 2026) and points data.root there;
  4. restores the run from the store, trains with a deadline before the session limit, syncs to the store;
  5. leaves the run folder in <root>/working/runs/ and writes <root>/working/molremote-status.json.
No token or key is written in this file. MOLREMOTE_KAGGLE_ROOT (default /kaggle) lets it run outside Kaggle;
MOLREMOTE_KAGGLE_SESSION_LIMIT_S overrides the session limit (simulated sessions).
"""
import base64
import hashlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

T0 = time.time()
CONFIG = @{config}

ROOT = Path(os.environ.get("MOLREMOTE_KAGGLE_ROOT") or "/kaggle")
INPUT, WORKING, TEMP = ROOT / "input", ROOT / "working", ROOT / "temp"
STATUS_FILE = WORKING / "molremote-status.json"
EXIT_INCOMPLETE = 75  # the trainer's "stopped at the deadline, resumable" exit code
MIN_TRAIN_S = 0.01  # see train()
SEARCH_DEPTH = 5  # how deep under <root>/input to look for datasets and the bundle
MAIN = "import sys; from molremote.cli import main; sys.argv[0] = 'molremote'; main()"


def log(msg):
    print(f"[molremote {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def write_status(state, exit_code=None, message="", **extra):
    WORKING.mkdir(parents=True, exist_ok=True)
    status = {"job_id": CONFIG["job_id"], "session": CONFIG["session"], "run_key": CONFIG["run_key"],
              "state": state, "exit_code": exit_code, "message": message,
              "elapsed_s": round(time.time() - T0, 1), **extra}
    tmp = STATUS_FILE.with_name(STATUS_FILE.name + ".tmp")
    tmp.write_text(json.dumps(status, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, STATUS_FILE)


def fail(message, code=1):
    log(f"ERROR: {message}")
    write_status("failed", code, message)
    sys.exit(code)


# ------------------------------------------------------------------------------------------ 1. secrets
def read_secrets():
    """{name: value} of the secrets the run needs; stops at once, naming what is missing and where."""
    try:
        from kaggle_secrets import UserSecretsClient
    except ImportError:
        client, where = None, "environment"
    else:
        client, where = UserSecretsClient(), "Kaggle Secrets"
    values, missing = {}, []
    for s in CONFIG["secrets"]:
        value = None
        if client is not None:
            try:
                value = client.get_secret(s["name"])
            except Exception:  # not attached to this notebook: the client raises
                value = None
        else:
            value = os.environ.get(s["name"])
        if value:
            values[s["name"]] = value
        else:
            missing.append(s)
    if missing:
        names = ", ".join(s["name"] for s in missing)
        why = "; ".join(f"{s['name']}: {s['why']}" for s in missing)
        if client is not None:
            how = (f"Attach it in the kernel editor ({CONFIG['kernel_url']}/edit): Add-ons -> Secrets -> "
                   f"add a secret labelled exactly {missing[0]['name']} and switch it on for this notebook; "
                   f"then push again ({CONFIG['relaunch']}).")
        else:
            how = f"Set the environment variable{'s' if len(missing) > 1 else ''} {names}."
        fail(f"missing secret {names} ({why}). {how}")
    log(f"secrets read from {where}: {', '.join(sorted(values)) or 'none needed'}")
    return values


# ------------------------------------------------------------------------------------------ 2. code
def walk_input(max_depth=SEARCH_DEPTH):
    """(path, dirnames, filenames) under <root>/input, breadth first, links followed, bounded depth."""
    if not INPUT.is_dir():
        return
    level = [INPUT]
    for _ in range(max_depth):
        nxt = []
        for d in level:
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError:
                continue
            dirs = [e.name for e in entries if e.is_dir()]
            files = [e.name for e in entries if e.is_file()]
            yield Path(d), dirs, files
            nxt += [Path(d) / n for n in dirs]
        level = nxt


def find_bundle():
    b = CONFIG["bundle"]
    name = f"bundle-{b['sha256'][:16]}.tar.gz"
    for d, dirs, files in walk_input():
        if name in files:
            return d / name, None
        info = d / ".molremote" / "bundle.json"
        if ".molremote" in dirs and info.is_file():  # Kaggle unpacked the archive for us
            try:
                if json.loads(info.read_text()).get("content_hash") == b["content_hash"]:
                    return None, d
            except ValueError:
                pass
    fail(f"code bundle {name} not found under {INPUT} (dataset {b['dataset']} attached? "
         f"mounted: {mounted()})")


def install_code():
    b = CONFIG["bundle"]
    code = TEMP / "molremote-code" / b["sha256"][:16]
    if (code / ".molremote" / "bundle.json").is_file():
        return code
    if b["mode"] == "inline":
        data = base64.b64decode("".join(BUNDLE_B64))
        where = "embedded bundle"
    else:
        path, unpacked = find_bundle()
        if unpacked is not None:
            log(f"code: {unpacked} (unpacked by Kaggle)")
            return unpacked
        data, where = path.read_bytes(), str(path)
    if hashlib.sha256(data).hexdigest() != b["sha256"]:
        fail(f"{where}: sha256 does not match the bundle molremote pushed ({b['sha256'][:16]}); push again")
    tmp = code.with_name(code.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        try:
            tar.extractall(tmp, filter="data")
        except TypeError:  # Python without extraction filters
            tar.extractall(tmp)
    os.replace(tmp, code)
    log(f"code: bundle {b['sha256'][:16]} (commit {b['commit'] or '-'}{', dirty' if b['dirty'] else ''}) in {code}")
    return code


def install_requirements():
    """pip install only what the image lacks; the image's torch (built for its CUDA) is never replaced."""
    missing = []
    for req in CONFIG["requirements"]:
        name = re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0]
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(req)
    if not missing:
        log("dependencies: all present in the image")
        return
    if not CONFIG["internet"]:
        fail(f"packages missing from the Kaggle image and internet is off: {', '.join(missing)}. "
             "Enable internet (exp.backend.kaggle.internet) or attach a dataset of wheels")
    log(f"installing: {' '.join(missing)}")
    rc = subprocess.call([sys.executable, "-m", "pip", "install", "-q", *missing])
    if rc != 0:
        fail(f"pip install {' '.join(missing)} failed (exit {rc})")


# ------------------------------------------------------------------------------------------ 3. data
def mounted():
    try:
        return ", ".join(sorted(str(p.relative_to(INPUT)) for p in INPUT.glob("*/*"))) or "nothing"
    except OSError:
        return "nothing"


def find_source(kind, ref):
    """The folder of dataset 'owner/slug' or competition 'slug' under <root>/input: the known layouts
    first (2026: input/datasets/<owner>/<slug>, input/competitions/<slug>; before: input/<slug>), then a search."""
    owner, _, slug = ref.rpartition("/")
    known = [INPUT / kind / owner / slug, INPUT / kind / slug, INPUT / slug] if owner else [INPUT / kind / slug,
                                                                                            INPUT / slug]
    for p in known:
        if p.is_dir():
            return p
    for d, dirs, _ in walk_input():
        if slug in dirs:
            return d / slug
    return None


def prepare_project(exp):
    """A scratch project folder (not saved) whose data.root points at the mounted data. data.root is part
    of the run's identity (config hash), so it is linked, not rewritten; an absolute path that does not
    exist here is the one case rewritten (with a warning: the run gets another config hash)."""
    project = TEMP / "molremote-project"
    (project / "experiments").mkdir(parents=True, exist_ok=True)
    sources = []
    for ref in CONFIG["data"]["datasets"]:
        p = find_source("datasets", ref)
        if p is None:
            fail(f"dataset {ref} is not mounted under {INPUT} (mounted: {mounted()}); "
                 "check exp.data.kaggle_datasets and that the account can read it")
        log(f"data: dataset {ref} at {p}")
        sources.append((ref.rpartition("/")[2], p))
    comp = CONFIG["data"]["competition"]
    if comp:
        p = find_source("competitions", comp)
        if p is not None:
            log(f"data: competition {comp} at {p}")
            sources.append((comp, p))
        else:
            log(f"data: competition {comp} is not mounted (join it on kaggle.com to get its data)")
    sets = []
    root = exp["data"].get("root")
    if root:
        chosen = next((p for name, p in sources if name == Path(root).name), sources[0][1] if sources else None)
        if Path(root).is_absolute():
            if not Path(root).is_dir():
                if chosen is None:
                    fail(f"data.root {root} does not exist and no dataset is mounted under {INPUT}")
                log(f"WARNING: data.root {root} does not exist here; using {chosen} (the config hash changes)")
                sets = [f"data.root={chosen}"]
        else:
            if chosen is None:
                fail(f"data.root {root!r} needs a mounted dataset: list it in exp.data.kaggle_datasets "
                     f"(mounted: {mounted()})")
            link = project / root
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(chosen, target_is_directory=True)
            log(f"data: data.root {root} -> {chosen}")
    exp_file = project / "experiment.json"
    exp_file.write_text(json.dumps(exp, indent=1, sort_keys=True) + "\n")
    return project, exp_file, sets


# ------------------------------------------------------------------------------------------ 4. train
def open_store(code):
    url = CONFIG["store"]
    if not url:
        return None
    sys.path.insert(0, str(code))
    from molremote.store import open_store as _open

    return _open(url)


def restore(store, run_dir):
    if store is None or (run_dir / "manifest.json").is_file():
        return
    stored = store.read_manifest(CONFIG["run_key"])
    if stored is None:
        log(f"store {CONFIG['store']}: no earlier session of {CONFIG['run_key']}; starting fresh")
        return
    store.pull(CONFIG["run_key"], run_dir)
    log(f"store {CONFIG['store']}: restored {CONFIG['run_key']} (status {stored.get('status')}, "
        f"{len(stored.get('sessions') or [])} earlier session(s))")


def session_limit_s():
    override = os.environ.get("MOLREMOTE_KAGGLE_SESSION_LIMIT_S")
    return float(override) if override else CONFIG["session_limit_s"]


def train(code, project, exp_file, sets, secrets):
    limit = session_limit_s()
    if limit <= CONFIG["margin_s"]:
        fail(f"the session limit ({limit:.0f} s) is not longer than the margin ({CONFIG['margin_s']:.0f} s): "
             "check exp.backend.kaggle session_hours and margin_minutes")
    # The trainer checks its deadline after every step: even with (almost) no time left it makes one step
    # and a checkpoint, so a chain of sessions always progresses.
    left = max(limit - CONFIG["margin_s"] - (time.time() - T0), MIN_TRAIN_S)
    env = {**os.environ, **secrets}
    for k in ("MOLREMOTE_STORE", "MOLREMOTE_CONFIG", "MOLREMOTE_EXPERIMENTS", "MOLREMOTE_WANDB_DIR"):
        env.pop(k, None)
    env.update({
        "PYTHONPATH": os.pathsep.join([str(code)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])),
        "PYTHONUNBUFFERED": "1",
        "MOLREMOTE_PROJECT": str(project), "MOLREMOTE_RUNS": str(WORKING / "runs"),
        "MOLREMOTE_BUNDLE_INFO": str(code / ".molremote" / "bundle.json"),
        "MOLREMOTE_BUNDLE_SHA256": CONFIG["bundle"]["sha256"],
        "MOLREMOTE_JOB_ID": CONFIG["job_id"], "MOLREMOTE_BACKEND": "kaggle",
        "MOLREMOTE_WANDB_MODE": CONFIG["wandb"]["mode"], "MOLREMOTE_WANDB_PROJECT": CONFIG["wandb"]["project"],
    })
    if CONFIG["wandb"]["entity"]:
        env["MOLREMOTE_WANDB_ENTITY"] = CONFIG["wandb"]["entity"]
    if CONFIG["store"]:
        env["MOLREMOTE_STORE"] = CONFIG["store"]
    cmd = [sys.executable, "-c", MAIN, "train", "--experiment-json", str(exp_file), "--fold", str(CONFIG["fold"]),
           "--max-time", f"{left:.2f}s", "--no-progress", *CONFIG["train_args"]]
    for s in sets:
        cmd += ["--set", s]
    log(f"training fold {CONFIG['fold']} with a deadline of {left:.0f} s")
    child = subprocess.Popen(cmd, env=env, cwd=str(WORKING))

    def forward(signum, _frame):  # Kaggle stopping the session: let the trainer checkpoint first
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    return child.wait()


def main():
    write_status("running")
    exp = CONFIG["experiment"]
    log(f"kernel {CONFIG['kernel']} session {CONFIG['session']}: {CONFIG['experiment_name']} fold {CONFIG['fold']}"
        f" -> {CONFIG['run_key']}")
    secrets = read_secrets()
    os.environ.update(secrets)  # for the store client in this process (read at import)
    for d in (WORKING, TEMP):
        d.mkdir(parents=True, exist_ok=True)
    code = install_code()
    install_requirements()
    project, exp_file, sets = prepare_project(exp)
    run_dir = WORKING / "runs" / CONFIG["run_key"]
    try:
        store = open_store(code)
        restore(store, run_dir)
    except Exception as e:  # the store is where earlier sessions live: without it, do not start over
        fail(f"store {CONFIG['store']}: {type(e).__name__}: {e}")
    rc = train(code, project, exp_file, sets, secrets)
    synced = None
    if store is not None and (run_dir / "manifest.json").is_file():
        try:
            store.push(run_dir, CONFIG["run_key"])
            synced = CONFIG["store"]
        except Exception as e:  # the run folder stays in the kernel output either way
            log(f"WARNING: final push to {CONFIG['store']} failed: {type(e).__name__}: {e}")
    manifest = {}
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        pass
    state = {0: "complete", EXIT_INCOMPLETE: "incomplete"}.get(rc, "failed")
    write_status(state, rc, f"trainer exit {rc}", best=manifest.get("best"), synced_to=synced,
                 run_status=manifest.get("status"))
    log(f"session {CONFIG['session']} done: {state} (trainer exit {rc}); run folder {run_dir}")
    # 0 for a session that ended as planned (complete, or incomplete at the deadline) so Kaggle keeps the
    # output and shows the version as finished; the trainer's code is in molremote-status.json.
    sys.exit(0 if rc in (0, EXIT_INCOMPLETE) else rc)


# The code bundle (base64 of bundle-@{bundle_short}.tar.gz) when it is small enough to travel in this file.
BUNDLE_B64 = [@{bundle_b64}]

main()
