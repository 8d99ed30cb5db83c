"""The loopback Kaggle server refuses what Kaggle refuses, and its runtime mounts both input layouts; checked
with the real kaggle client (through molremote.backends.kaggle_api) and with raw requests where the client
would stop a bad value before sending it."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from molremote.backends.kaggle_api import KaggleClient
from molremote.errors import BackendError
from tests.helpers.env import kaggle_client_env
from tests.servers.kaggle_runtime import KaggleRuntime
from tests.servers.kaggle_server import Dataset, DatasetVersion

pytestmark = pytest.mark.integration
GOLDEN_KERNEL = Path(__file__).resolve().parents[1] / "backends" / "golden" / "kaggle_kernel.py"


@pytest.fixture
def client(kaggle_server, tmp_path, monkeypatch):
    kaggle_client_env(monkeypatch, tmp_path, kaggle_server)
    return KaggleClient(push_retry_delay_s=0)


def folder(root: Path, owner: str, slug: str = "molremote-strict", text: str = "print('hi')\n", **meta) -> Path:
    d = root / slug
    d.mkdir(parents=True, exist_ok=True)
    (d / "run.py").write_text(text)
    data = {
        "id": f"{owner}/{slug}",
        "title": slug.replace("-", " "),
        "code_file": "run.py",
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_gpu": False,
        "enable_internet": False,
    }
    data.update(meta)
    (d / "kernel-metadata.json").write_text(json.dumps(data))
    return d


def call(server, service: str, method: str, body: dict, user: str | None = None) -> tuple[int, dict]:
    user = user or server.username
    auth = base64.b64encode(f"{user}:{server.users[user]}".encode()).decode()
    req = urllib.request.Request(
        f"{server.url}/api/v1/{service}/{method}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


KERNELS = "kernels.KernelsApiService"


def save_body(server, **over) -> dict:
    return {
        "slug": f"{server.username}/strict-kernel",
        "newTitle": "strict kernel",
        "text": "print(1)",
        "language": "python",
        "kernelType": "script",
        "isPrivate": True,
        **over,
    }


def test_each_method_answers_on_its_own_service_only(kaggle_server):
    assert call(kaggle_server, KERNELS, "SaveKernel", save_body(kaggle_server))[0] == 200
    status, reply = call(kaggle_server, "datasets.DatasetApiService", "SaveKernel", save_body(kaggle_server))
    assert status == 404 and reply["message"] == "unknown method datasets.DatasetApiService/SaveKernel"
    assert call(kaggle_server, "kernels.KernelApiService", "GetKernelSessionStatus", {})[0] == 404  # a typo
    assert call(kaggle_server, "blobs.BlobApiService", "StartBlobUpload", {"name": "a.zip"})[0] == 200


@pytest.mark.parametrize(
    "over, field",
    [
        ({"language": "julia"}, "language"),
        ({"kernelType": "dashboard"}, "kernelType"),
        ({"dockerImagePinningType": "newest"}, "dockerImagePinningType"),
        ({"machineShape": "NvidiaK80"}, "machineShape"),
        ({"enableGpu": True, "enableTpu": True}, "enableGpu and enableTpu"),
        ({"enableTpu": True, "machineShape": "NvidiaTeslaT4"}, "machineShape NvidiaTeslaT4"),
        ({"enableGpu": "yes"}, "enableGpu"),
        ({"machineShape": "TpuV38", "sessionTimeoutSeconds": 12 * 3600}, "sessionTimeoutSeconds"),
        ({"sessionTimeoutSeconds": 0}, "sessionTimeoutSeconds"),
    ],
)
def test_save_kernel_refuses_values_kaggle_refuses(kaggle_server, over, field):
    status, reply = call(kaggle_server, KERNELS, "SaveKernel", save_body(kaggle_server, **over))
    assert status == 400 and field in reply["message"], reply
    assert kaggle_server.kernels == {} and kaggle_server.pushes == []  # nothing was created


def test_the_client_gets_the_refusal_and_retired_shapes_are_substituted(client, kaggle_server, tmp_path):
    owner = kaggle_server.username
    with pytest.raises(BackendError, match="Invalid machineShape 'NvidiaK80'"):
        client.push_kernel(folder(tmp_path, owner, machine_shape="NvidiaK80", enable_gpu=True))
    res = client.push_kernel(folder(tmp_path, owner, machine_shape="NvidiaTeslaP100", enable_gpu=True))
    assert kaggle_server.kernels[res.ref].machine_shape == "NvidiaTeslaT4"
    with pytest.raises(BackendError, match="sessionTimeoutSeconds 36000"):
        client.push_kernel(folder(tmp_path, owner, machine_shape="TpuV5E8", enable_tpu=True), timeout_s=36000)


def test_someone_elses_private_kernel_reads_as_missing(client, kaggle_server, tmp_path):
    owner = kaggle_server.username
    kaggle_server.users["other-user"] = "other-key-0123456789"
    private = client.push_kernel(folder(tmp_path, owner, "private-kernel")).ref
    public = client.push_kernel(folder(tmp_path, owner, "public-kernel", is_private=False)).ref
    assert client.kernel_status(private)[0] in ("QUEUED", "RUNNING", "COMPLETE")  # the owner reads it
    for method in ("GetKernelSessionStatus", "ListKernelSessionOutput"):
        for ref, want in ((private, 404), (public, 200)):
            user, slug = ref.split("/")
            status, reply = call(
                kaggle_server, KERNELS, method, {"userName": user, "kernelSlug": slug}, user="other-user"
            )
            assert status == want, (method, ref, reply)
            if want == 404:
                assert reply["message"] == "Notebook not found"


@pytest.mark.parametrize(
    "layout, mount", [("2026", "input/datasets/data-owner/belka-prepared"), ("legacy", "input/belka-prepared")]
)
def test_runtime_mounts_both_layouts_and_the_kernel_finds_its_data(client, kaggle_server, tmp_path, layout, mount):
    ref = "data-owner/belka-prepared"
    kaggle_server.datasets[ref] = Dataset(
        "data-owner",
        "belka-prepared",
        "belka prepared",
        None,
        True,
        [DatasetVersion(1, None, {"train.parquet": b"PAR1", "sub/x.csv": b"a\n"})],
    )
    # the rendered kernel's own find_source (the golden file is the rendered template), run inside the session
    script = (
        f"src = open({str(GOLDEN_KERNEL)!r}).read().rsplit('\\nmain()', 1)[0]\n"
        "ns = {'__name__': 'kernel'}\nexec(compile(src, 'kaggle_kernel.py', 'exec'), ns)\n"
        f"found = ns['find_source']('datasets', {ref!r})\n"
        "print('FOUND', found.relative_to(ns['ROOT']), sorted(p.name for p in found.rglob('*')))\n"
    )
    runtime = KaggleRuntime(kaggle_server, tmp_path / "kaggle", layout=layout)
    try:
        pushed = client.push_kernel(folder(tmp_path, kaggle_server.username, text=script, dataset_sources=[ref]))
        deadline = time.monotonic() + 60
        while not runtime.sessions or runtime.sessions[0].returncode is None:
            assert time.monotonic() < deadline, "the session did not finish"
            time.sleep(0.1)
    finally:
        runtime.close()
    (s,) = runtime.sessions
    assert s.ref == pushed.ref and s.returncode == 0, s.output
    assert f"FOUND {mount} ['sub', 'train.parquet', 'x.csv']" in s.output
    with pytest.raises(ValueError, match="layout"):
        KaggleRuntime(kaggle_server, tmp_path / "k2", layout="2025")
