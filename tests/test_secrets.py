"""molremote/secrets.py: what a secret looks like, masking, file scanning, the allow-list.

Token-shaped test values are assembled at run time ("hf_" + ...) so that this file itself holds none: the
project's own bundle is scanned by the same code."""

import time
from pathlib import Path

import pytest

from molremote import secrets

HF = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567"
GH = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
GH_PAT = "github_pat_" + "11ABCDEFG0" + "x" * 72
KGAT = "KGAT_" + "0123456789abcdef0123456789abcdef"
AKIA = "AKIA" + "IOSFODNN7EXAMPLE"
HEX40 = "0123456789abcdef" * 2 + "01234567"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
PRIVATE = "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n-----END OPENSSH PRIVATE KEY-----"

CASES = [
    ("Hugging Face token", f'token = "{HF}"', HF),
    ("Kaggle API token", f"KAGGLE_API_TOKEN={KGAT}", KGAT),
    ("Kaggle API key", '{"username": "me", "key": "' + "0123456789abcdef" * 2 + '"}', "0123456789abcdef" * 2),
    ("W&B API key", f"wandb.login(key='{HEX40}')", HEX40),
    ("W&B API key", f"machine api.wandb.ai login user password {HEX40}", HEX40),
    ("GitHub token", f"GH={GH}", GH),
    ("GitHub token", f"GH={GH_PAT}", GH_PAT),
    ("AWS access key id", f"aws_access_key_id = {AKIA}", AKIA),
    ("AWS secret access key", f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
    ("private key", PRIVATE, "b3BlbnNzaC1rZXktdjEAAAA"),
    ("password in a URL", "url = 'https://me:" + "s3cr3t@example.org/x'", "s3cr3t"),
    ("token in a URL", "url = 'hf://me/runs?token=" + HF + "'", HF),
    ("password in an ssh destination", 'destination = "me:' + 'hunter2@gpubox"', "hunter2"),
]


@pytest.mark.parametrize("kind, text, secret", CASES)
def test_each_kind_is_found_and_masked(kind, text, secret):
    found = secrets.find(text)
    assert found and found[0].kind in (kind, "Hugging Face token"), found
    shown = secrets.mask(text)
    assert secret not in shown and secrets.MASK in shown


def test_finding_names_line_and_column():
    text = "a = 1\nb = 2\nc = '" + HF + "'\n"
    (f,) = secrets.find(text, path="pkg/conf.py")
    assert (f.kind, f.line, f.column, f.where()) == ("Hugging Face token", 3, 6, "pkg/conf.py:3")


@pytest.mark.parametrize(
    "text",
    [
        "def hf_token_source(): ...",  # identifiers are not tokens
        "HF_TOKEN=hf_...",  # documentation placeholder
        "destination = 'me@gpubox'",
        "url = 'hf://datasets/me/molremote-runs'",
        "url = 'https://user:***@example.org'",  # already masked
        "url = 'https://user:${PASSWORD}@example.org'",  # a variable, not a value
        "url = 'ssh://me@box:2222/path'",
        "git+https://github.com/org/repo@v1.0",
        "commit = '" + HEX40 + "'",  # 40 hex without W&B context: a git sha
        "ssh me@box.example.org:22",
        "?token=<your token>",
    ],
)
def test_no_false_positive(text):
    assert secrets.find(text) == [] and secrets.mask(text) == text


def test_values_and_destinations():
    assert secrets.find_in_value("me:" + "password@gpubox")[0].kind == "password in an ssh destination"
    assert secrets.find_in_value("ssh://me:" + "pw@box:22")
    assert not secrets.find_in_value("me@gpubox") and not secrets.find_in_value("ssh://me@box:22")
    assert secrets.mask("ssh me:" + "pw@box: Permission denied") == "ssh me:***@box: Permission denied"
    assert secrets.mask("hf://me/runs?token=" + HF) == "hf://me/runs?token=***"


def test_redact_masks_strings_and_secret_named_keys():
    obj = {
        "store": "hf://me/r?token=" + HF,
        "api_key": "abc",
        "nested": [{"host": "me:" + "pw@box"}],
        "n": 3,
        "token": None,
    }
    out = secrets.redact(obj)
    assert out == {
        "store": "hf://me/r?token=***",
        "api_key": "***",
        "nested": [{"host": "me:***@box"}],
        "n": 3,
        "token": None,
    }


def test_scan_files_and_allow_list(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\ny = '" + HF + "'\n")
    (tmp_path / "b.bin").write_bytes(b"\x00\xff" + GH.encode() + b"\x00")  # binary files too
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / "c.txt").write_text(AKIA + "\n")
    files = ["a.py", "b.bin", "fixtures/c.txt"]
    assert [f.where() for f in secrets.scan_files(tmp_path, files)] == ["a.py:2", "b.bin:1", "fixtures/c.txt:1"]
    assert [f.where() for f in secrets.scan_files(tmp_path, files, ["a.py:2", "fixtures/*"])] == ["b.bin:1"]
    found = secrets.scan_files(tmp_path, files, ["a.py:1", "b.bin"])
    assert [f.where() for f in found] == ["a.py:2", "fixtures/c.txt:1"]


def test_scan_is_fast_on_a_big_code_file(tmp_path):
    """A 5 MB file of ordinary code scans in well under a second (the bundle scans every shipped file)."""
    line = "    result = compute(x, y=2, url='https://example.org/a?b=c', who='me@box')  # token key\n"
    (tmp_path / "big.py").write_text(line * (5_000_000 // len(line)))
    t = time.perf_counter()
    assert secrets.scan_files(tmp_path, ["big.py"]) == []
    assert time.perf_counter() - t < 5.0  # generous: 2 shared cores in CI


def test_the_project_itself_holds_no_secret():
    """The repository is bundled by `remote` (and its tests bundle it): it must scan clean."""
    from molremote.bundle import list_files

    root = Path(__file__).resolve().parents[1]
    files, *_ = list_files(root)
    assert [f.where() for f in secrets.scan_files(root, files)] == []
