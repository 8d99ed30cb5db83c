"""CV against the leaderboard: correlations, the figure, the scores cache, and `molremote scores --plot`
through the real kaggle client against the loopback Kaggle server."""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from molremote.cli import app
from molremote.errors import ExperimentError
from molremote.report.leaderboard import (
    correlation,
    correlations,
    describe,
    draw,
    load_cached_scores,
    points,
    save_scores,
)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def rows(cv, public, private=None, kinds=None):
    private = private or [None] * len(cv)
    kinds = kinds or ["experiment"] * len(cv)
    return [
        {"ref": 100 + i, "cv": c, "public_score": p, "private_score": q, "kind": k, "experiments": [600 + i]}
        for i, (c, p, q, k) in enumerate(zip(cv, public, private, kinds))
    ]


def test_correlation_figures():
    # hand-computed: x = 1..5, y = 2,4,5,4,5 -> Pearson 0.7746; ranks of y 1,2.5,4.5,2.5,4.5 -> Spearman 0.7379
    c = correlation([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])
    assert c["n"] == 5
    assert c["pearson"] == pytest.approx(0.774597, abs=1e-6)
    assert c["spearman"] == pytest.approx(0.737865, abs=1e-6)
    assert correlation([1, 2], [3, 4])["pearson"] is None  # two points say nothing
    assert correlation([1, 1, 1], [3, 4, 5])["pearson"] is None  # constant CV


def test_points_keep_submissions_with_cv_and_a_score():
    r = rows(
        [0.5, None, 0.6, 0.7], [0.4, 0.5, None, "0.61"], [None, None, 0.55, None], kinds=[None, None, "ensemble", None]
    )
    pts = points(r)
    assert [(p["label"], p["cv"], p["public"], p["private"]) for p in pts] == [
        ("600", 0.5, 0.4, None),
        ("ens 602", 0.6, None, 0.55),
        ("603", 0.7, 0.61, None),
    ]
    text = describe(correlations(pts))
    assert "CV vs public: n = 2, too few distinct points" in text and "CV vs private: n = 1" in text


def test_draw_png_and_svg(tmp_path):
    r = rows([0.50, 0.55, 0.60, 0.62], [0.48, 0.52, 0.59, 0.58], [0.47, 0.50, 0.58, None])
    png, corr = draw(r, tmp_path / "lb.png", "leash-BELKA")
    w, h = png_size(png)
    assert (w, h) == (825, 660)  # 7.5 x 6 in at 110 dpi
    assert corr["public"]["n"] == 4 and corr["private"]["n"] == 3
    want = correlation([0.5, 0.55, 0.6, 0.62], [0.48, 0.52, 0.59, 0.58])["pearson"]
    assert corr["public"]["pearson"] == pytest.approx(want)
    svg, _ = draw(r, tmp_path / "lb.svg", "leash-BELKA")
    assert ET.parse(svg).getroot().tag.endswith("svg")
    with pytest.raises(ExperimentError, match="must end in .png or .svg"):
        draw(r, tmp_path / "lb.jpg", "x")
    with pytest.raises(ExperimentError, match="nothing to plot"):
        draw(rows([None], [0.5]), tmp_path / "none.png", "x")
    assert not (tmp_path / "none.png").exists()


def test_scores_cache_round_trip(tmp_path):
    save_scores("comp-a", rows([0.5], [0.4]), root=tmp_path)
    (tmp_path / ".molremote" / "scores" / "broken.json").write_text("{")
    got = load_cached_scores(tmp_path)
    assert [c["competition"] for c in got["competitions"]] == ["comp-a"]
    assert got["submissions"][0]["public_score"] == 0.4 and got["submissions"][0]["competition"] == "comp-a"
    assert len(got["errors"]) == 1 and "broken.json" in got["errors"][0]


@pytest.mark.integration
def test_scores_plot_through_the_kaggle_client(project, tmp_path, monkeypatch):
    from molremote.backends.kaggle_api import ENDPOINT_ENV, KaggleClient
    from tests.servers.kaggle_server import KaggleServer

    monkeypatch.setenv("HOME", str(tmp_path))
    for v in (
        "MOLREMOTE_CONFIG",
        "XDG_CONFIG_HOME",
        "MOLREMOTE_KAGGLE_ACCOUNT",
        "KAGGLE_API_TOKEN",
        "KAGGLE_CONFIG_DIR",
        "KAGGLE_API_ENVIRONMENT",
    ):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.chdir(project)
    sub = tmp_path / "submission.csv"
    sub.write_text("id,binds\n1,0.5\n")
    with KaggleServer() as server:
        monkeypatch.setenv("KAGGLE_USERNAME", server.username)
        monkeypatch.setenv("KAGGLE_KEY", server.key)
        monkeypatch.setenv(ENDPOINT_ENV, server.url)
        client = KaggleClient()
        cvs, pubs = [0.50, 0.55, 0.60, 0.58], ["0.480", "0.530", "0.590", "0.560"]
        privs = ["0.47", "0.52", None, "0.57"]
        for i, (cv, pub, priv) in enumerate(zip(cvs, pubs, privs)):
            ref = client.submit("leash-BELKA", sub, f"molremote e{620 + i:04d} h0123abcd cabc1234 cv={cv:.6f}")
            server.score(ref, public=pub, private=priv)
        client.submit("leash-BELKA", sub, "a manual try, no cv")
        res = CliRunner().invoke(
            app, ["scores", "-c", "leash-BELKA", "--plot", "--plot-out", str(tmp_path / "lb.png"), "--json"]
        )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["plot"] == str(tmp_path / "lb.png") and png_size(tmp_path / "lb.png") == (825, 660)
    pub = correlation(cvs, [float(p) for p in pubs])
    assert out["correlation"]["public"]["pearson"] == pytest.approx(pub["pearson"], abs=1e-9)
    assert out["correlation"]["public"]["n"] == 4 and out["correlation"]["private"]["n"] == 3
    # what was fetched is cached for the report
    cached = load_cached_scores(project)
    assert len(cached["submissions"]) == 5 and {s["competition"] for s in cached["submissions"]} == {"leash-BELKA"}
    assert sorted(s["public_score"] for s in cached["submissions"] if s["cv"] is not None) == [0.48, 0.53, 0.56, 0.59]


def test_many_points_label_only_the_best(tmp_path):
    from molremote.report.leaderboard import _labelled

    r = rows([0.4 + i / 1000 for i in range(60)], [0.3 + ((i * 7) % 60) / 100 for i in range(60)])
    pts = points(r)
    best = _labelled(pts)
    assert len(best) == 20 and min(pts[i]["public"] for i in best) > max(
        pts[i]["public"] for i in range(60) if i not in best
    )
    assert _labelled(pts[:40]) == set(range(40))
    png, _ = draw(r, tmp_path / "many.png", "comp")
    assert png_size(png) == (825, 660)
