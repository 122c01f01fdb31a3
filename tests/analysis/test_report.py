import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from degeneracy.analysis.report import build_report, contravariance_rows, direction
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
            condition(complexity=c, hidden=8), make_records(range(6), steps=24, rng_seed=c)
        )
    path = build_report(reg, root / "out")
    return path


def test_report_is_self_contained_with_a_png_per_chart(report):
    text = report.read_text()
    assert "<script src" not in text and "cdn.jsdelivr" not in text
    assert "vegaEmbed" in text and "Contravariance" in text
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


def test_directions_and_paper_comparison():
    rows = [
        {
            "complexity": 1,
            "dsa": 0.5,
            "dsa_se": 0.01,
            "pif": 0.1,
            "pif_se": 0.05,
            "behavior": 0.2,
            "behavior_se": None,
        },
        {
            "complexity": 3,
            "dsa": 0.3,
            "dsa_se": 0.01,
            "pif": 0.12,
            "pif_se": 0.05,
            "behavior": 0.2,
            "behavior_se": None,
        },
    ]
    assert direction(rows, "complexity", "dsa") == ("↓", True)
    assert direction(rows, "complexity", "pif") == ("↑", False)  # within one SE
    table = {(r["level"]): r for r in contravariance_rows({("flipflop", "complexity"): rows})}
    assert table["dynamics"]["agrees"] is True and table["weights"]["agrees"] is True
    assert table["behavior"]["measured"] == "→" and table["behavior"]["agrees"] is False


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
