import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# fixtures shared across folders, registered once here rather than imported into each test module (an imported
# fixture that is then taken as a parameter reads to linters as a redefinition): `kaggle_server`
pytest_plugins = ["tests.servers.kaggle_server"]

# huggingface_hub uploads through Xet whenever hf_xet is installed; the loopback Hub speaks git-LFS (the Hub's
# other upload path), so tests take that one. Set before any huggingface_hub import (it reads this once).
os.environ["HF_HUB_DISABLE_XET"] = "1"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder (experiments/, runs/) as the current project."""
    (tmp_path / "experiments").mkdir()
    monkeypatch.setenv("MOLREMOTE_PROJECT", str(tmp_path))
    monkeypatch.delenv("MOLREMOTE_RUNS", raising=False)
    monkeypatch.delenv("MOLREMOTE_EXPERIMENTS", raising=False)
    monkeypatch.delenv("MOLREMOTE_STORE", raising=False)
    return tmp_path


def write_experiment(project: Path, name: str, body: str) -> Path:
    p = project / "experiments" / name
    p.write_text("from molremote.experiments import experiment, derive\n" + body)
    return p


@pytest.fixture
def one_thread():
    """Tiny models: with 2 intra-op threads on a shared 2-core machine each step waits on the other thread's
    spin loop (measured up to 40x slower under load); one thread is faster and deterministic."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> str:
    """A tiny random BERT saved with MiniLM's tokenizer (tests/helpers/text_models.py)."""
    from tests.helpers.text_models import tiny_bert_dir

    return str(tiny_bert_dir(tmp_path_factory.mktemp("tiny_bert")))
