"""`molremote doctor`: is this machine ready? One Check per external thing, each with a fix hint.

Checks run in parallel threads, each bounded in time (a hung one is reported as timed out and abandoned),
so the whole doctor answers in about the slowest check's limit. torch is imported only inside the CUDA
check, in a subprocess, so the doctor process itself stays light. Every detail is shown through
`secrets.mask`: a store URL or ssh destination given with a password or token never reaches the screen.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from .secrets import mask
from .settings import (
    Settings,
    hf_token,
    hf_token_source,
    kaggle_credentials_source,
    load_settings,
    wandb_key_source,
)

CHECK_TIMEOUT_S = 20.0  # per check: generous for a slow network, short enough to wait for
SSH_CONNECT_TIMEOUT_S = 5
CUDA_TIMEOUT_S = 60.0  # importing torch from a cold disk can take tens of seconds


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True  # False: informative (e.g. no GPU here is fine when training remotely)


# Store URL forms for the Hub, as molremote.store.open_store reads them: hf://owner/repo (model repo),
# hf://datasets/owner/repo, hf://models/owner/repo, hf://repo (a repo of the token's user).
_HF_URL = re.compile(r"^hf://(?:(?P<type>datasets|models)/)?(?P<id>[^/@]+(?:/[^/@]+)?)/?$")


def hub_repo_from_url(url: str | None) -> tuple[str, str] | None:
    """`hf://datasets/me/runs` -> ("dataset", "me/runs"); `hf://me/runs` -> ("model", "me/runs");
    `hf://runs` -> ("model", "runs") (owner: the token's user); a non-Hub URL -> None."""
    m = _HF_URL.match((url or "").strip())
    if not m:
        return None
    return (m.group("type") or "models")[:-1], m.group("id")


def check_hub(settings: Settings) -> Check:
    name = "Hugging Face Hub"
    repo = hub_repo_from_url(settings.store.url)
    if repo is None:
        where = settings.store.url or "the local runs folder"
        return Check(name, True, f"not used: the store is {where}")
    repo_type, repo_id = repo
    token = hf_token()
    if not token:
        return Check(
            name,
            False,
            f"no token found (store is {settings.store.url})",
            "export HF_TOKEN=... or run `hf auth login` (writes the Hub token cache)",
        )
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    from huggingface_hub import HfApi  # lazy: only the doctor and the Hub store pay for it
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    api = HfApi(endpoint=endpoint, token=token)
    try:
        who = api.whoami(token=token)
    except HfHubHTTPError as e:
        code = getattr(getattr(e, "response", None), "status_code", None)
        return Check(
            name,
            False,
            f"token from {hf_token_source()} rejected by {endpoint} (HTTP {code})",
            "create a new token with write access at https://huggingface.co/settings/tokens, "
            "then export HF_TOKEN or run `hf auth login`",
        )
    except Exception as e:  # noqa: BLE001 - network errors of every kind
        return Check(
            name, False, f"{endpoint} unreachable: {type(e).__name__}: {e}", "check the network or HF_ENDPOINT"
        )
    user = who.get("name", "?")
    if "/" not in repo_id:
        repo_id = f"{user}/{repo_id}"
    try:
        api.repo_info(repo_id, repo_type=repo_type, timeout=CHECK_TIMEOUT_S / 2)
    except RepositoryNotFoundError:
        # The store creates its repo (private) on the first push, so a missing repo is not fatal; the Hub
        # answers the same for a repo that exists but this token cannot see.
        return Check(
            name,
            False,
            f"logged in as {user}; {repo_type} repo {repo_id} not found or not accessible "
            "(the first push creates it, private)",
            f"if it should exist, check [store] url and the token's access; or create it now: "
            f"`hf repo create {repo_id} --repo-type {repo_type} --private`",
            required=False,
        )
    except Exception as e:  # noqa: BLE001
        return Check(
            name,
            False,
            f"logged in as {user}; {repo_type} repo {repo_id}: {type(e).__name__}: {e}",
            "check the network, HF_ENDPOINT and the token's access to the repo",
        )
    return Check(
        name, True, f"logged in as {user} (token from {hf_token_source()}); {repo_type} repo {repo_id} reachable"
    )


def check_wandb(settings: Settings) -> Check:
    name = "Weights & Biases"
    mode, src = settings.wandb.mode, wandb_key_source()
    mode_src = settings.sources.get("wandb.mode", "default")
    if mode == "disabled":
        return Check(
            name,
            True,
            f"disabled ({mode_src}): metrics go to metrics.jsonl only",
            "" if src else 'to track: set [wandb] mode = "online" in molremote.toml and `wandb login`',
        )
    if src is None:
        if mode == "offline":
            return Check(
                name,
                True,
                "offline: runs are written locally; no API key found for `molremote wandb-sync`",
                "export WANDB_API_KEY or run `wandb login` before syncing",
                required=False,
            )
        return Check(
            name,
            False,
            "mode online but no API key found (runs would fall back to offline)",
            "export WANDB_API_KEY or run `wandb login` (writes ~/.netrc)",
        )
    return Check(
        name,
        True,
        f"{mode}; API key from {src}; project {settings.wandb.project}"
        + (f", entity {settings.wandb.entity}" if settings.wandb.entity else ""),
    )


def check_kaggle(settings: Settings) -> list[Check]:
    fix = (
        "put kaggle.json (or access_token) from https://www.kaggle.com/settings/api in {d}, chmod 600 it; "
        "or export KAGGLE_USERNAME and KAGGLE_KEY"
    )
    from .settings import kaggle_config_dir

    accounts = settings.kaggle.accounts
    if not accounts:
        src = kaggle_credentials_source()
        if src:
            return [Check("Kaggle credentials", True, f"found: {src}")]
        return [
            Check(
                "Kaggle credentials",
                False,
                "not found (needed for `remote --kaggle` and `--submit`)",
                fix.format(d=kaggle_config_dir()),
                required=False,
            )
        ]
    out = []
    for acc_name, acc in accounts.items():
        src = kaggle_credentials_source(acc)
        default = " (default)" if acc_name == settings.kaggle.default_account else ""
        who = acc.username or "user from kaggle.json"
        out.append(
            Check(
                f"Kaggle account {acc_name}{default}",
                src is not None,
                f"{who}: credentials from {src}" if src else f"{who}: no credentials found",
                "" if src else fix.format(d=kaggle_config_dir(acc)),
            )
        )
    return out


def ssh_check_command(destination: str) -> list[str]:
    return ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={SSH_CONNECT_TIMEOUT_S}", destination, "true"]


def check_ssh_host(host_name: str, destination: str) -> Check:
    name = f"SSH host {host_name}"
    try:
        p = subprocess.run(
            ssh_check_command(destination),
            capture_output=True,
            text=True,
            timeout=SSH_CONNECT_TIMEOUT_S * 2,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return Check(name, False, "ssh client not installed", "install OpenSSH (apt-get install openssh-client)")
    except subprocess.TimeoutExpired:
        return Check(
            name,
            False,
            f"{destination}: no answer within {SSH_CONNECT_TIMEOUT_S * 2} s",
            "check the host name, network and firewall",
        )
    if p.returncode == 0:
        return Check(name, True, f"{destination}: reachable (key-based login works)")
    err = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
    if "Permission denied" in err or "Host key verification failed" in err:
        fix = (
            f"set up key login: `ssh-copy-id {destination}`, then `ssh {destination}` once by hand "
            "to accept its host key"
        )
    else:
        fix = f"check [ssh.hosts.{host_name}] destination and that `ssh {destination}` works by hand"
    return Check(name, False, f"{destination}: {err}", fix)


_CUDA_PROBE = (
    "import json, torch\n"
    "ok = torch.cuda.is_available()\n"
    "print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, 'ok': ok,\n"
    "  'gpus': [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if ok else []}))\n"
)


def check_cuda(settings: Settings) -> Check:
    """torch is imported here only, in a child process (bounded, and the doctor never loads torch itself)."""
    import json

    name = "CUDA"
    try:
        p = subprocess.run(
            [sys.executable, "-c", _CUDA_PROBE],
            capture_output=True,
            text=True,
            timeout=CUDA_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Check(
            name, False, f"importing torch took over {CUDA_TIMEOUT_S:.0f} s", "check the torch install", required=False
        )
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        return Check(
            name,
            False,
            f"torch not usable: {last}",
            "install the training extra: `pip install -e .[train]` (scripts/setup.sh)",
            required=False,
        )
    info = json.loads(p.stdout.strip().splitlines()[-1])
    if info["ok"]:
        return Check(name, True, f"torch {info['torch']}, CUDA {info['cuda']}: {', '.join(info['gpus'])}")
    return Check(
        name,
        False,
        f"torch {info['torch']} sees no GPU: training here runs on CPU",
        "train on a GPU machine with `molremote remote --kaggle|--ssh HOST|--slurm`, or install a CUDA build of torch",
        required=False,
    )


# ---------------------------------------------------------------------------------------------- runner
def _bounded(name: str, fn: Callable[[], Check | list[Check]], timeout_s: float) -> list[Check]:
    box: list = []

    def target() -> None:
        try:
            r = fn()
            box.append(r if isinstance(r, list) else [r])
        except Exception as e:  # noqa: BLE001 - a broken check is a failed check, not a crash
            box.append([Check(name, False, f"check failed: {type(e).__name__}: {e}", "report this as a bug")])

    t = threading.Thread(target=target, daemon=True, name=f"doctor-{name}")
    t.start()
    t.join(timeout_s)
    return box[0] if box else [Check(name, False, f"no answer within {timeout_s:g} s", "check the network")]


def run_checks(
    settings: Settings | None = None, *, cuda: bool = True, timeout_s: float = CHECK_TIMEOUT_S
) -> list[Check]:
    """All checks, in a stable order. They run concurrently; each is bounded by `timeout_s`
    (the CUDA check by CUDA_TIMEOUT_S)."""
    settings = settings or load_settings()
    jobs: list[tuple[str, Callable[[], Check | list[Check]], float]] = [
        ("Hugging Face Hub", lambda: check_hub(settings), timeout_s),
        ("Weights & Biases", lambda: check_wandb(settings), timeout_s),
        ("Kaggle credentials", lambda: check_kaggle(settings), timeout_s),
    ]
    for host_name, host in settings.ssh.hosts.items():
        jobs.append((f"SSH host {host_name}", partial(check_ssh_host, host_name, host.destination), timeout_s))
    for cl_name, cl in settings.slurm.clusters.items():
        if cl.login != "local":
            jobs.append((f"SLURM login {cl_name}", partial(check_ssh_host, f"slurm:{cl_name}", cl.login), timeout_s))
    if cuda:
        jobs.append(("CUDA", lambda: check_cuda(settings), CUDA_TIMEOUT_S + 5))
    results: list[list[Check]] = [[] for _ in jobs]

    def run(i: int) -> None:
        n, fn, lim = jobs[i]
        results[i] = _bounded(n, fn, lim)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Details quote URLs, destinations and error text: mask any secret in them (molremote.secrets).
    return [replace(c, name=mask(c.name), detail=mask(c.detail), fix=mask(c.fix)) for r in results for c in r]
