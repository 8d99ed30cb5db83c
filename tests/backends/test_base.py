"""molremote/backends/base.py: templates, option validation, log following."""

import pytest

from molremote.backends import get_backend
from molremote.backends.base import _Template, follow_text, render_template
from molremote.errors import BackendError


def test_template_only_touches_at_braces():
    t = _Template('echo "${HOME}" $X "$@" ${A[@]} user@host @{name} @@{name}')
    assert t.substitute(name="v") == 'echo "${HOME}" $X "$@" ${A[@]} user@host v @{name}'


def test_missing_placeholder_names_template_and_key():
    with pytest.raises(BackendError, match=r"ssh_launch.sh: no value for placeholder @\{job_id\}"):
        render_template("ssh_launch.sh")


def test_unknown_backend_and_option():
    with pytest.raises(BackendError, match="unknown backend 'nope'"):
        get_backend("nope")
    with pytest.raises(BackendError, match="slurm backend option 'partitoin': Extra inputs"):
        get_backend("slurm", partitoin="gpu")


def test_follow_text_reads_until_done():
    log = [b"a\n"]
    calls = {"n": 0}

    def read_from(off):
        data = b"".join(log)
        return data[off:]

    def done():
        calls["n"] += 1
        if calls["n"] == 2:
            log.append(b"b\n")
        return calls["n"] >= 3

    assert "".join(follow_text(read_from, done, follow=True, poll_s=0)) == "a\nb\n"
    assert "".join(follow_text(read_from, lambda: False, follow=False)) == "a\nb\n"
