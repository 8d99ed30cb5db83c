import importlib.metadata
import json
import socket
import subprocess
import sys
import time

import pytest

from molremote.doctor import check_cuda, check_hub, check_kaggle, check_wandb, hub_repo_from_url, run_checks
from molremote.settings import Settings, load_settings
from tests.helpers.env import isolate_env
from tests.servers.hub_server import HubServer

GOOD = "hf_" + "goodTOKENabcdefghijklmnopqrstuv"  # split: the bundle refuses token-shaped text


@pytest.fixture
def proj(tmp_path, monkeypatch):
    isolate_env(monkeypatch, tmp_path)
    return tmp_path


def settings_from(proj, text: str) -> Settings:
    (proj / "molremote.toml").write_text(text)
    load_settings.cache_clear()
    return load_settings()


def test_hub_repo_from_url():
    assert hub_repo_from_url("hf://datasets/me/runs") == ("dataset", "me/runs")
    assert hub_repo_from_url("hf://me/runs") == ("model", "me/runs")
    assert hub_repo_from_url("hf://models/me/runs/") == ("model", "me/runs")
    assert hub_repo_from_url("hf://runs") == ("model", "runs")  # the token's user owns it
    assert hub_repo_from_url("/data/store") is None and hub_repo_from_url(None) is None
    assert hub_repo_from_url("hf://a/b/c") is None


def test_hub_not_used_with_local_store(proj):
    c = check_hub(load_settings())
    assert c.ok and "not used" in c.detail


def test_hub_missing_token_is_not_ok_with_fix(proj):
    c = check_hub(settings_from(proj, "[store]\nurl = 'hf://datasets/tester/runs'\n"))
    assert not c.ok and "no token" in c.detail
    assert "HF_TOKEN" in c.fix and "hf auth login" in c.fix


@pytest.mark.integration
def test_hub_token_and_repo_against_loopback_hub(proj, monkeypatch, tmp_path):
    s = settings_from(proj, "[store]\nurl = 'hf://datasets/tester/runs'\n")
    with HubServer(tmp_path / "hub", token=GOOD) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", "hf_wrongTOKENabcdefghijklmnopqrs")
        c = check_hub(s)
        assert not c.ok and "rejected" in c.detail and "HTTP 401" in c.detail and "HF_TOKEN" in c.fix
        assert "wrongTOKEN" not in c.detail + c.fix

        monkeypatch.setenv("HF_TOKEN", GOOD)
        c = check_hub(s)
        assert not c.ok and "logged in as tester" in c.detail and "tester/runs not found" in c.detail
        assert "first push creates it" in c.detail and c.required is False
        assert "hf repo create tester/runs --repo-type dataset" in c.fix

        hub.state.create("datasets", "tester/runs", private=True)
        c = check_hub(s)
        assert c.ok, c
        assert c.detail == "logged in as tester (token from env HF_TOKEN); dataset repo tester/runs reachable"
        assert GOOD not in c.detail
        assert hub.state.calls["whoami"] == 3 and hub.state.calls["info"] == 2


def test_hub_token_from_token_file(proj, monkeypatch, tmp_path):
    s = settings_from(proj, "[store]\nurl = 'hf://runs'\n")  # owner: the token's user
    token_file = tmp_path / "hf-home" / "token"
    token_file.parent.mkdir()
    token_file.write_text(GOOD + "\n")
    monkeypatch.setenv("HF_HOME", str(token_file.parent))
    with HubServer(tmp_path / "hub", token=GOOD) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        hub.state.create("models", "tester/runs", private=True)
        c = check_hub(s)
    assert c.ok and f"token from file {token_file}" in c.detail and "model repo tester/runs reachable" in c.detail


def test_wandb_check(proj, monkeypatch):
    c = check_wandb(load_settings())
    assert c.ok and c.detail.startswith("disabled (default)")
    monkeypatch.setenv("WANDB_MODE", "online")
    c = check_wandb(load_settings())
    assert not c.ok and "no API key" in c.detail and "WANDB_API_KEY" in c.fix and "wandb login" in c.fix
    monkeypatch.setenv("WANDB_API_KEY", "wandbSECRET0123456789")
    c = check_wandb(load_settings())
    assert c.ok and "API key from env WANDB_API_KEY" in c.detail and "SECRET" not in c.detail


def test_kaggle_accounts(proj):
    (proj / "home" / "km").mkdir()
    (proj / "home" / "km" / "kaggle.json").write_text('{"username": "me", "key": "KSECRET"}')
    s = settings_from(
        proj,
        "[kaggle]\ndefault_account = 'main'\n"
        "[kaggle.accounts.main]\nusername = 'me'\nconfig_dir = '~/km'\n"
        "[kaggle.accounts.spare]\nusername = 'me2'\nconfig_dir = '~/ks'\n",
    )
    main, spare = check_kaggle(s)
    assert main.name == "Kaggle account main (default)" and main.ok and "kaggle.json" in main.detail
    assert spare.name == "Kaggle account spare" and not spare.ok
    assert f"{proj}/home/ks" in spare.fix and "KSECRET" not in repr((main, spare))


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.integration
def test_ssh_closed_port_fails_fast_with_fix(proj):
    port = _closed_port()
    s = settings_from(proj, f"[ssh.hosts.box]\ndestination = 'ssh://nobody@127.0.0.1:{port}'\n")
    t = time.monotonic()
    checks = run_checks(s, cuda=False)
    assert time.monotonic() - t < 5
    box = next(c for c in checks if c.name == "SSH host box")
    assert not box.ok and "Connection refused" in box.detail
    assert "[ssh.hosts.box] destination" in box.fix
    assert [c.name for c in checks] == ["Hugging Face Hub", "Weights & Biases", "Kaggle credentials", "SSH host box"]


@pytest.mark.integration
def test_silent_host_is_bounded_by_the_check_timeout(proj):
    # A listener that accepts but never sends an SSH banner: ConnectTimeout does not cover it.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    try:
        s = settings_from(proj, f"[slurm.clusters.hpc]\nlogin = 'ssh://nobody@127.0.0.1:{port}'\n")
        t = time.monotonic()
        checks = run_checks(s, cuda=False, timeout_s=1.5)
        took = time.monotonic() - t
    finally:
        srv.close()
    assert took < 4, took
    c = next(c for c in checks if c.name == "SLURM login hpc")
    assert not c.ok and "no answer within 1.5 s" in c.detail


@pytest.mark.integration
def test_cuda_check_reports_the_installed_torch(proj):
    c = check_cuda(load_settings())
    torch_version = importlib.metadata.version("torch")
    # what this machine has, asked of torch directly (not through the doctor's probe)
    truth = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, torch; c = torch.cuda; print(json.dumps("
            "[c.is_available(), torch.version.cuda, [c.get_device_name(i) for i in "
            "range(c.device_count())]]))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    has_gpu, cuda, gpus = json.loads(truth.stdout.strip().splitlines()[-1])
    want = (
        (True, f"torch {torch_version}, CUDA {cuda}: {', '.join(gpus)}", True)
        if has_gpu
        else (False, f"torch {torch_version} sees no GPU: training here runs on CPU", False)
    )
    assert (c.ok, c.detail, c.required) == want
    assert has_gpu or "`molremote remote --kaggle|--ssh HOST|--slurm`" in c.fix


def test_details_are_masked_even_for_settings_built_in_code(proj):
    """The loader refuses credentials in values; settings built another way are still shown masked."""
    token = "hf_" + "QxZ7rT2mN9vB4kL1pW8sY3dF6gH0jA5cE2uR"
    s = Settings.model_validate(
        {
            "store": {"url": f"https://example.org/runs?token={token}"},
            "ssh": {"hosts": {"box": {"destination": "me:" + "pw1234@127.0.0.1"}}},
        }
    )
    checks = run_checks(s, cuda=False, timeout_s=15)
    text = "\n".join(f"{c.name} {c.detail} {c.fix}" for c in checks)
    assert token[3:] not in text and "pw1234" not in text
    assert "https://example.org/runs?token=***" in text and "me:***@127.0.0.1" in text
