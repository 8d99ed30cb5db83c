"""molremote/jobs.py: job records, one JSON file per job."""

import json

import pytest

from molremote import jobs
from molremote.errors import BackendError


@pytest.fixture
def jdir(tmp_path, monkeypatch):
    monkeypatch.setenv("MOLREMOTE_JOBS", str(tmp_path / "jobs"))
    return tmp_path / "jobs"


def rec(job_id, backend="slurm", exp="0620_fatgcn", eid=620, created="2026-11-01T10:00:00+00:00"):
    return jobs.JobRecord(
        job_id=job_id,
        backend=backend,
        experiment=exp,
        experiment_id=eid,
        config_hash="abc",
        folds=[0, 1],
        created_at=created,
        handle={"slurm_job_id": "12"},
        options={"host": "h"},
    )


def test_save_load_update_roundtrip(jdir):
    r = rec("a")
    path = jobs.save(r)
    assert path == jdir / "a.json" and json.loads(path.read_text())["handle"] == {"slurm_job_id": "12"}
    assert jobs.load("a") == r
    r2 = jobs.update(r, state="running", detail="slurm job 12")
    assert jobs.load("a").state == "running" and r2.updated_at >= r.updated_at
    with pytest.raises(BackendError, match="unknown job state 'weird'"):
        jobs.update(r, state="weird")
    assert jobs.load("a").state == "running"  # a refused update writes nothing
    with pytest.raises(BackendError, match="no job 'nope'"):
        jobs.load("nope")


def test_load_all_filters_and_latest(jdir):
    jobs.save(rec("b", created="2026-11-02T00:00:00+00:00"))
    jobs.save(rec("a", backend="ssh", created="2026-11-01T00:00:00+00:00"))
    jobs.save(rec("c", exp="0001_demo", eid=1, created="2026-11-03T00:00:00+00:00"))
    (jdir / "broken.json").write_text("{not json")
    assert [r.job_id for r in jobs.load_all()] == ["a", "b", "c"]
    assert [r.job_id for r in jobs.load_all(experiment=620)] == ["a", "b"]
    assert [r.job_id for r in jobs.load_all(experiment="0001_demo")] == ["c"]
    assert jobs.latest(620).job_id == "b" and jobs.latest(620, backend="ssh").job_id == "a"
    with pytest.raises(BackendError, match="no job for experiment 7"):
        jobs.latest(7)


def test_new_job_id_is_unique_and_readable():
    a, b = jobs.new_job_id("0620_fatgcn", "slurm"), jobs.new_job_id("0620_fatgcn", "slurm")
    assert a != b and a.startswith("0620_fatgcn-slurm-")


def test_records_never_store_a_password_or_token(jdir):
    """`status` prints job records: an error detail quoting a destination or URL is stored masked."""
    r = jobs.update(
        rec("s"),
        state="failed",
        detail="ssh me:" + "pw1234@gpubox: Permission denied; store "
        "hf://me/r?tok"
        "en=hf_" + "QxZ7rT2mN9vB4kL1pW8sY3dF6gH0jA5cE2uR",
    )
    text = (jdir / "s.json").read_text()
    assert "pw1234" not in text and "QxZ7rT2m" not in text
    assert jobs.load("s").detail == "ssh me:***@gpubox: Permission denied; store hf://me/r?token=***"
    assert r.options == {"host": "h"} and jobs.load("s").options == {"host": "h"}  # the rest is unchanged
