import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from degeneracy.analysis.report import build_report, contravariance_rows
from tests.factories import condition, make_records


def png_info(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values of the decompressed pixel rows)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from degeneracy.registry.store import Registry

    root = tmp_path_factory.mktemp("report")
    reg = Registry.create(root / "reg")
    for c in (1, 2, 3):
        reg.write_ensemble(
            condition(complexity=c, hidden=8),
            # inputs that fit the task: the networks are re-probed from their weights
            make_records(range(6), inputs=c, outputs=c, steps=24, rng_seed=c),
        )
    path = build_report(reg, root / "out", grid=True)  # the grid display too
    return path


def test_report_is_self_contained_with_a_png_per_chart(report):
    text = report.read_text()
    assert "<script src" not in text and "cdn.jsdelivr" not in text
    assert "vegaEmbed" in text and "Contravariance" in text
    # every dynamics verdict carries the DSA setting grid, as a display beside it
    assert "DSA grid" in text and "not resolved" in text and "uncorrected" in text
    names = [
        line.split("data-name='")[1].split("'")[0] for line in text.split("<div class='chart'")[1:]
    ]
    assert {
        "flipflop_complexity_levels",
        "flipflop_mds_dsa",
        "flipflop_mds_pif",
        "flipflop_curves",
    } <= set(names)
    for name in names:
        w, h, distinct = png_info(report.parent / f"{name}.png")
        assert w > 200 and h > 150, (name, w, h)
        assert distinct > 20, f"{name}.png looks blank"
    assert "threshold" in text and "converged" in text


def test_directions_are_per_setting_never_pooled():
    rows = [
        {
            "complexity": c,
            "train.threshold": t,
            "n": 8,
            "dsa_corrected": v,
            "dsa_excess": v * v,
            "dsa_excess_se": 0.001,
        }
        for c, t, v in [(1, "0.01", 0.5), (3, "0.01", 0.3), (1, "0.02", 0.3), (3, "0.02", 0.5)]
    ]
    table = contravariance_rows({("flipflop", "complexity"): (rows, ["train.threshold"])})
    got = {(r["setting"], r["level"]): r["measured"] for r in table}
    assert got == {
        ("train.threshold=0.01", "dynamics"): "↓",
        ("train.threshold=0.02", "dynamics"): "↑",
    }


def test_every_chart_draws_in_a_real_browser(report):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium)")
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=20000",
                "--dump-dom",
                report.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    blocks = re.split(r'<div class="chart[^"]*" id="chart\d+"', dom)[1:]
    assert len(blocks) >= 5, dom[:500]
    assert f'data-rendered="{len(blocks)}"' in dom, dom[:300]
    assert "data-errors" not in dom
    for block in blocks:
        chart = block.split('<div class="chart')[0]
        assert "<svg" in chart and 'class="mark-' in chart


def test_a_chart_over_5000_rows_is_written(tmp_path):
    """Altair refuses charts over 5,000 rows by default; a 16-seed sweep's curves passed that
    and the report died with MaxRowsError."""
    import altair as alt
    import polars as pl

    from degeneracy.analysis.report import Section, write_page

    df = pl.DataFrame({"step": list(range(6000)), "loss": [1.0 / (1 + i) for i in range(6000)]})
    chart = alt.Chart(df).mark_line().encode(x="step:Q", y="loss:Q")
    path = write_page(tmp_path, "t", [], [Section("s", [("big", chart)])], [])
    assert path.exists() and (tmp_path / "big.png").stat().st_size > 1000


def test_a_failed_report_leaves_no_page_from_an_earlier_run(registry, monkeypatch):
    """The old report.html used to stay in place, looking current, after a failed run."""
    from degeneracy.analysis import report as rep
    from degeneracy.registry.errors import RegistryError

    registry.write_ensemble(condition(complexity=1, hidden=8), make_records(range(3), steps=24))
    out = registry.root / "report"
    out.mkdir()
    (out / "report.html").write_text("<html>an earlier run</html>")

    def broken(*a, **k):
        raise RegistryError("analysis failed")

    monkeypatch.setattr("degeneracy.analysis.analyze.analyze", broken)
    with pytest.raises(RegistryError, match="analysis failed"):
        rep.build_report(registry, out, grid=False)
    assert not (out / "report.html").exists()


def test_each_factor_level_is_labelled_as_written_on_the_axis():
    """γ = 0.5 was drawn as "1" and width 128 as "1.3e+2" (Vega derives the tick precision from
    the step unless the format fixes it), and on a linear axis L1's three small levels crowded
    into 57 of 180 px, where the report's overlap rule hid their labels: levels spanning a
    decade get a symmetric-log axis."""
    import re

    import vl_convert as vlc

    from degeneracy.analysis.report import level_chart

    for factor, levels, want in (
        ("gamma", [0.5, 1.0, 2.0, 4.0], ["0.5", "1", "2", "4"]),
        ("hidden_size", [32, 64, 128, 256], ["32", "64", "128", "256"]),
        ("l1", [0.0, 1e-5, 3e-5, 1e-4], ["0", "0.00001", "0.00003", "0.0001"]),
        ("nuclear", [0.0, 1e-4, 3e-4, 1e-3], ["0", "0.0001", "0.0003", "0.001"]),
    ):
        rows = [
            {factor: v, "n": 16, "behavior": 0.1 + i, "behavior_se": 0.01}
            for i, v in enumerate(levels)
        ]
        chart = level_chart(rows, factor, {"behavior": ("behavior", "std")}, "t")
        svg = vlc.vegalite_to_svg(chart.to_dict())
        x_axis = svg[svg.index('aria-label="X-axis') :]
        x_axis = x_axis[x_axis.index("role-axis-label") :]
        x_axis = x_axis[: x_axis.index("</g>")]  # the x axis' tick labels only
        assert re.findall(r"<text[^>]*>([^<]*)</text>", x_axis) == want, factor
        xs = [float(v) for v in re.findall(r"translate\(([-\d.]+),", x_axis)]
        # room for each label: neighbours' centres at least half of both widths apart (a
        # digit of the 12 px sans-serif labels is about 6.7 px wide)
        for (a, la), (b, lb) in zip(zip(xs, want), zip(xs[1:], want[1:])):
            assert b - a > 6.7 * (len(la) + len(lb)) / 2, (factor, xs)
