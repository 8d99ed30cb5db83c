"""molremote.backends.kaggle_api with the real kaggle 2.2.4 client against the loopback Kaggle server."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from molremote.backends.kaggle_api import (
    KaggleClient,
    parse_kernel_log,
    resolve_credentials,
    write_dataset_metadata,
)
from molremote.errors import BackendError
from tests.helpers.env import kaggle_client_env

pytestmark = pytest.mark.integration

SECRETS = {"HF_TOKEN": "hf_SeCrEtHubTokenValue0123456789", "WANDB_API_KEY": "wandbSeCrEtKey0123456789abcdef"}


@pytest.fixture
def env(kaggle_server, tmp_path, monkeypatch):
    """A clean machine: empty HOME, no project settings, the server's default account in the environment."""
    kaggle_client_env(monkeypatch, tmp_path, kaggle_server)
    return tmp_path


@pytest.fixture
def client(env):
    return KaggleClient(push_retry_delay_s=0)


def kernel_folder(root: Path, owner: str, slug: str = "molremote-0620-fold0", **meta) -> Path:
    d = root / slug
    d.mkdir(parents=True, exist_ok=True)
    (d / "run.py").write_text("import os\nprint('training', os.environ.get('KAGGLE_KERNEL_RUN_TYPE'))\n")
    data = {
        "id": f"{owner}/{slug}",
        "title": slug.replace("-", " "),
        "code_file": "run.py",
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_gpu": True,
        "enable_internet": False,
        "machine_shape": "NvidiaTeslaT4",
        "dataset_sources": [f"{owner}/molremote-code"],
        "competition_sources": ["leash-BELKA"],
    }
    data.update(meta)
    (d / "kernel-metadata.json").write_text(json.dumps(data))
    return d


# ------------------------------------------------------------------------------------------- kernels
def test_push_sends_metadata_fields_and_no_secret(client, kaggle_server, env, monkeypatch, caplog):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    caplog.set_level(logging.DEBUG)
    owner = kaggle_server.username
    res = client.push_kernel(kernel_folder(env, owner), timeout_s=3600)

    assert (res.ref, res.version) == (f"{owner}/molremote-0620-fold0", 1)
    assert res.url.endswith(f"/code/{owner}/molremote-0620-fold0")
    [body] = kaggle_server.pushes
    assert body["slug"] == f"{owner}/molremote-0620-fold0"
    assert body["newTitle"] == "molremote 0620 fold0"
    assert body["enableGpu"] is True and body["isPrivate"] is True
    assert body["enableInternet"] is False  # sent although false: the field is optional, not defaulted
    assert body["machineShape"] == "NvidiaTeslaT4"
    assert body["datasetDataSources"] == [f"{owner}/molremote-code"]
    assert body["competitionDataSources"] == ["leash-BELKA"]
    assert body["sessionTimeoutSeconds"] == 3600
    assert body["language"] == "python" and body["kernelType"] == "script"
    assert "print('training'" in body["text"]
    # the request used HTTP Basic with the account, and no secret value travelled in any body or log
    assert {c.user for c in kaggle_server.calls} == {owner}
    wire = b"".join(c.raw for c in kaggle_server.calls)
    for secret in [*SECRETS.values(), kaggle_server.key]:
        assert secret.encode() not in wire
        assert secret not in caplog.text
    assert kaggle_server.key not in repr(client) + repr(client.credentials)
    # the caller's environment is as it was
    assert os.environ["KAGGLE_USERNAME"] == owner and "KAGGLE_API_ENVIRONMENT" not in os.environ


def test_push_again_makes_a_new_version(client, kaggle_server, env):
    folder = kernel_folder(env, kaggle_server.username)
    assert client.push_kernel(folder).version == 1
    assert client.push_kernel(folder, accelerator="NvidiaH100").version == 2
    assert kaggle_server.pushes[1]["machineShape"] == "NvidiaH100"


def test_push_retries_once_on_not_found_for_a_new_slug(client, kaggle_server, env):
    kaggle_server.flaky_new_slugs = True
    res = client.push_kernel(kernel_folder(env, kaggle_server.username))
    assert res.version == 1
    assert len(kaggle_server.calls_to("SaveKernel")) == 2


@pytest.mark.parametrize("case", ["wrong-owner", "server-500", "title-mismatch", "invalid-source", "bad-meta"])
def test_push_errors_surface_as_backend_error(client, kaggle_server, env, case):
    owner = kaggle_server.username
    if case == "wrong-owner":
        folder, expect = kernel_folder(env, "someone-else"), r"Notebook not found \(twice\).*'molremote-tester'"
    elif case == "server-500":
        kaggle_server.fail_next("SaveKernel", 500, "Kernel save failed: disk full")
        folder, expect = kernel_folder(env, owner), "HTTP 500: Kernel save failed: disk full"
    elif case == "title-mismatch":
        folder, expect = kernel_folder(env, owner, title="Another title"), "gives the slug 'another-title'"
    elif case == "invalid-source":
        kaggle_server.invalid_sources = {f"{owner}/molremote-code"}
        folder, expect = kernel_folder(env, owner), f"refused these sources.*dataset_sources: {owner}/molremote-code"
    else:
        folder, expect = kernel_folder(env, owner, language="julia"), "valid language"
    with pytest.raises(BackendError, match=expect):
        client.push_kernel(folder)
    if case in ("title-mismatch", "bad-meta"):
        assert kaggle_server.calls_to("SaveKernel") == []  # refused before any network call


def test_status_sequence_and_stale_complete_after_push(client, kaggle_server, env):
    folder = kernel_folder(env, kaggle_server.username)
    ref = client.push_kernel(folder).ref
    seen = [client.kernel_status(ref)[0] for _ in range(4)]
    assert seen == ["QUEUED", "RUNNING", "COMPLETE", "COMPLETE"]
    client.push_kernel(folder)
    seen = [client.kernel_status(ref)[0] for _ in range(4)]
    assert seen == ["COMPLETE", "QUEUED", "RUNNING", "COMPLETE"]  # the trap: v1's COMPLETE answers first

    kaggle_server.set_statuses(ref, "RUNNING", ("ERROR", "CUDA out of memory"))
    assert client.kernel_status(ref) == ("RUNNING", None)
    assert client.kernel_status(ref) == ("ERROR", "CUDA out of memory")


def test_status_of_unknown_kernel_is_backend_error(client, kaggle_server):
    with pytest.raises(BackendError, match="HTTP 404: Notebook not found"):
        client.kernel_status(f"{kaggle_server.username}/no-such-kernel")


def test_output_downloads_every_page_and_the_log(client, kaggle_server, env):
    ref = client.push_kernel(kernel_folder(env, kaggle_server.username)).ref
    files = {f"runs/0620/fold0/file{i}.txt": f"content {i}" for i in range(5)}
    files["submission.csv"] = "id,binds\n1,0.5\n"
    log = json.dumps(
        [
            {"stream_name": "stdout", "time": 1.0, "data": "epoch 1\n"},
            {"stream_name": "stderr", "time": 2.0, "data": "done\n"},
        ]
    )
    kaggle_server.set_output(ref, files, log=log)
    kaggle_server.page_size_cap = 2

    out = client.kernel_output(ref, env / "out")
    assert len(kaggle_server.calls_to("ListKernelSessionOutput")) == 3
    assert sorted(p.relative_to(env / "out").as_posix() for p in out.files) == sorted(files)
    for name, content in files.items():
        assert (env / "out" / name).read_text() == content
    assert out.log == env / "out" / "molremote-0620-fold0.log"
    assert parse_kernel_log(out.log.read_text()) == "epoch 1\ndone\n"


@pytest.mark.parametrize("bad", ["expired-url", "escaping-name"])
def test_output_refuses_failed_downloads_and_escaping_names(client, kaggle_server, env, bad):
    ref = client.push_kernel(kernel_folder(env, kaggle_server.username)).ref
    name = "model.pt" if bad == "expired-url" else "../../outside.txt"
    kaggle_server.set_output(ref, {name: b"weights"})
    kaggle_server.missing_downloads = {"model.pt"}
    with pytest.raises(BackendError, match="HTTP 404" if bad == "expired-url" else "points outside"):
        client.kernel_output(ref, env / "out")
    assert not (env / "out" / "model.pt").exists() and not (env / "outside.txt").exists()


# ------------------------------------------------------------------------------------------ datasets
def test_dataset_create_then_version_keeps_subfolders(client, kaggle_server, env):
    ref = f"{kaggle_server.username}/molremote-code"
    d = env / "ds"
    (d / "molremote" / "tasks").mkdir(parents=True)
    (d / "README.txt").write_text("code bundle\n")
    (d / "molremote" / "tasks" / "belka.py").write_text("TASK = 'belka'\n")
    write_dataset_metadata(d, ref, "molremote code")

    first = client.dataset_create_or_version(d, "bundle 1")
    assert (first.ref, first.created) == (ref, True)
    ds = kaggle_server.datasets[ref]
    assert ds.files == {"README.txt": b"code bundle\n", "molremote/tasks/belka.py": b"TASK = 'belka'\n"}
    assert ds.is_private and ds.license_name == "CC0-1.0"

    (d / "molremote" / "tasks" / "belka.py").write_text("TASK = 'belka-v2'\n")
    second = client.dataset_create_or_version(d, "bundle 2")
    assert (second.ref, second.created) == (ref, False)
    assert [v.number for v in ds.versions] == [1, 2] and ds.versions[1].notes == "bundle 2"
    assert ds.files["molremote/tasks/belka.py"] == b"TASK = 'belka-v2'\n"


def test_dataset_errors(client, kaggle_server, env):
    d = env / "ds"
    d.mkdir()
    (d / "a.csv").write_text("x\n1\n")
    with pytest.raises(BackendError, match="no dataset metadata file"):
        client.dataset_create_or_version(d, "v1")
    ref = f"{kaggle_server.username}/molremote-data"
    write_dataset_metadata(d, ref, "molremote data")
    client.dataset_create_or_version(d, "v1")
    # our status check misses it (a race): the client's own check answers with an error response
    kaggle_server.fail_next("GetDatasetStatus", 404, "Dataset not found")
    with pytest.raises(BackendError, match="is already in use by a dataset"):
        client.dataset_create_or_version(d, "v2")
    # both checks miss it: the server's "already exists" error response comes through
    kaggle_server.fail_next("GetDatasetStatus", 404, "Dataset not found")
    kaggle_server.fail_next("GetDatasetStatus", 404, "Dataset not found")
    with pytest.raises(BackendError, match="molremote-data already exists"):
        client.dataset_create_or_version(d, "v2")
    assert len(kaggle_server.datasets[ref].versions) == 1
    with pytest.raises(BackendError, match="6-50 character"):
        write_dataset_metadata(d, f"{kaggle_server.username}/short", "ok title")


# -------------------------------------------------------------------------------- quota, submissions
def test_quota_hours(client, kaggle_server):
    kaggle_server.gpu_seconds_used = 12.25 * 3600
    q = client.quota()
    assert q["gpu_hours_used"] == pytest.approx(12.25)
    assert q["gpu_hours_total"] == pytest.approx(30.0)
    assert q["gpu_hours_left"] == pytest.approx(17.75)
    assert q["tpu_hours_left"] == pytest.approx(20.0)
    assert q["refresh_time"].startswith("2026-11-28")


def test_submit_and_list_submissions_with_scores(client, kaggle_server, env):
    comp = "leash-BELKA"
    refs = []
    for i in range(3):
        f = env / f"sub{i}.csv"
        f.write_text(f"id,binds\n1,0.{i}\n")
        refs.append(client.submit(comp, f, f"e620 fold0 try {i}"))
    assert len(set(refs)) == 3
    kaggle_server.score(refs[1], public="0.4567", private="0.4321")
    kaggle_server.score(refs[2], status="ERROR", error="wrong number of rows")
    assert kaggle_server.submissions[0].content == b"id,binds\n1,0.0\n"
    kaggle_server.page_size_cap = 2

    subs = client.submissions(comp)
    assert [s["ref"] for s in subs] == refs[::-1]  # newest first, across two pages
    by_ref = {s["ref"]: s for s in subs}
    assert by_ref[refs[1]]["public_score"] == pytest.approx(0.4567)
    assert by_ref[refs[1]]["private_score"] == pytest.approx(0.4321)
    assert by_ref[refs[1]]["status"] == "COMPLETE"
    assert by_ref[refs[0]]["status"] == "PENDING" and by_ref[refs[0]]["public_score"] is None
    assert by_ref[refs[2]]["error_description"] == "wrong number of rows"
    assert by_ref[refs[0]]["description"] == "e620 fold0 try 0" and by_ref[refs[0]]["file_name"] == "sub0.csv"


def test_submit_errors(client, kaggle_server, env):
    kaggle_server.competitions = {"leash-BELKA"}
    f = env / "sub.csv"
    f.write_text("id,binds\n")
    with pytest.raises(BackendError, match="Competition not found: no-such-comp"):
        client.submit("no-such-comp", f, "x")
    with pytest.raises(BackendError, match="no such submission file"):
        client.submit("leash-BELKA", env / "missing.csv", "x")


# ------------------------------------------------------------------------------------------ accounts
def test_named_account_uses_its_own_key_even_with_an_access_token_file(env, kaggle_server, monkeypatch):
    kaggle_server.users["second-account"] = "second-key-abcdef0123456789"
    kaggle_server.tokens["default-token-abcdef0123456789"] = kaggle_server.username
    (Path(os.environ["HOME"]) / ".kaggle").mkdir()
    (Path(os.environ["HOME"]) / ".kaggle" / "access_token").write_text("default-token-abcdef0123456789")
    acc_dir = env / "accounts" / "second"
    acc_dir.mkdir(parents=True)
    (acc_dir / "kaggle.json").write_text(
        json.dumps({"username": "second-account", "key": "second-key-abcdef0123456789"})
    )
    proj = env / "proj"
    proj.mkdir()
    (proj / "molremote.toml").write_text(
        f'[kaggle.accounts.second]\nusername = "second-account"\nconfig_dir = "{acc_dir}"\n'
    )

    c = KaggleClient("second", push_retry_delay_s=0)
    assert c.credentials.source == f"file {acc_dir / 'kaggle.json'}"
    res = c.push_kernel(kernel_folder(env, "second-account"))
    assert res.ref == "second-account/molremote-0620-fold0"
    assert {call.user for call in kaggle_server.calls} == {"second-account"}
    assert os.environ["KAGGLE_USERNAME"] == kaggle_server.username  # caller's env untouched

    (proj / "molremote.toml").write_text(f'[kaggle.accounts.second]\nusername = "somebody"\nconfig_dir = "{acc_dir}"\n')
    with pytest.raises(BackendError, match="belongs to 'second-account'"):
        KaggleClient("second")
    with pytest.raises(BackendError, match=r"account 'third' is not defined.*\[kaggle.accounts.third\]"):
        KaggleClient("third")


def test_access_token_account(env, kaggle_server, monkeypatch):
    token = "KGAT_" + "testtoken0123456789abcdef"  # split: the bundle refuses token-shaped text
    kaggle_server.tokens[token] = kaggle_server.username
    monkeypatch.setenv("KAGGLE_API_TOKEN", token)
    c = KaggleClient()
    assert c.credentials.source == "env KAGGLE_API_TOKEN" and token not in repr(c.credentials)
    assert c.quota()["gpu_hours_total"] == pytest.approx(30.0)
    assert c.username == kaggle_server.username
    assert [call.method for call in kaggle_server.calls] == ["IntrospectToken", "GetAcceleratorQuotaStatistics"]


def test_no_credentials_is_a_clear_error(env, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    with pytest.raises(BackendError, match=r"no Kaggle credentials: put kaggle.json .* in .*\.kaggle"):
        resolve_credentials()


def test_wrong_key_is_a_clear_error(env, monkeypatch):
    monkeypatch.setenv("KAGGLE_KEY", "not-the-key")
    with pytest.raises(BackendError, match="HTTP 401: Unauthenticated"):
        KaggleClient().quota()
