import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from degeneracy.analysis.report import MIN_N, build_report, contravariance_rows, direction
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
    # every dynamics verdict carries the DSA setting grid; no floor stored -> not resolved
    assert "DSA grid" in text and "not resolved" in text and "noise floor" in text
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


def test_directions_need_two_standard_errors_and_the_floor():
    def rows(floor):
        return [
            {
                "complexity": 1,
                "dsa": 0.5,
                "dsa_se": 0.01,
                "dsa_floor": floor,
                "pif": 0.1,
                "pif_se": 0.05,
                "behavior": 0.2,
                "behavior_se": 0.01,
            },
            {
                "complexity": 3,
                "dsa": 0.3,
                "dsa_se": 0.01,
                "dsa_floor": floor,
                "pif": 0.2,
                "pif_se": 0.05,
                "behavior": 0.2,
                "behavior_se": 0.01,
            },
        ]

    arrow, verdict, diff, two_se, floor, p = direction(rows(0.05), "complexity", "dsa")
    assert p is None  # a test of spread is behavior's alone
    assert (arrow, verdict) == ("↓", "resolved") and diff == pytest.approx(-0.2)
    assert two_se == pytest.approx(2 * np.sqrt(2) * 0.01) and floor == 0.05
    # the same difference under the noise floor is not a direction
    assert direction(rows(0.25), "complexity", "dsa")[1] == "not resolved"
    # 0.1 apart with SE 0.05 each: over 1 SE, under 2 SE
    assert direction(rows(0.05), "complexity", "pif")[:2] == ("↑", "not resolved")
    table = {
        r["level"]: r for r in contravariance_rows({("flipflop", "complexity"): (rows(0.05), [])})
    }
    assert table["dynamics"]["verdict"] == "agrees"
    assert table["weights"]["verdict"] == "not resolved"
    assert table["behavior"]["measured"] == "→" and table["behavior"]["verdict"] == "not resolved"


def _spread_rows(std, std_se, mad, mad_se, n=16):
    return [
        {
            "complexity": c,
            "n": n,
            "behavior": s,
            "behavior_se": se,
            "behavior_mad": m,
            "behavior_mad_se": mse,
        }
        for c, s, se, m, mse in zip((1, 3), std, std_se, mad, mad_se)
    ]


def test_behavior_verdict_is_brown_forsythes_test_not_the_std_s_2_se():
    from scipy import stats

    def p_of(rows):  # Student's t on the deviations from summary numbers (sd = SE·√n)
        (a, b), n = rows, rows[0]["n"]
        return stats.ttest_ind_from_stats(
            a["behavior_mad"], a["behavior_mad_se"] * np.sqrt(n), n,
            b["behavior_mad"], b["behavior_mad_se"] * np.sqrt(n), n,
        ).pvalue  # fmt: skip

    # the std doubles, 10 SE apart, but the deviations barely move: not a direction
    rows = _spread_rows((0.2, 0.4), (0.01, 0.01), (0.10, 0.11), (0.02, 0.02))
    got = direction(rows, "complexity", "behavior")
    assert got.verdict == "not resolved" and got.two_se == pytest.approx(2 * np.sqrt(2) * 0.01)
    assert got.p == pytest.approx(p_of(rows)) and got.p > 0.5
    # under 2 SE of the std, yet the deviations rise 5 SE apart: resolved, p beside it
    rows = _spread_rows((0.2, 0.25), (0.05, 0.05), (0.10, 0.20), (0.01, 0.01))
    got = direction(rows, "complexity", "behavior")
    assert (got.arrow, got.verdict) == ("↑", "resolved")
    assert got.p == pytest.approx(p_of(rows)) and got.p < 1e-6
    (row,) = [
        r
        for r in contravariance_rows({("flipflop", "complexity"): (rows, [])})
        if r["level"] == "behavior"
    ]
    assert row["verdict"] == "disagrees" and row["spread p"] == f"{got.p:.2g}"  # paper: ↓
    # the deviations fall while the std rises: the test does not speak for the std
    rows = _spread_rows((0.2, 0.25), (0.05, 0.05), (0.20, 0.10), (0.01, 0.01))
    assert direction(rows, "complexity", "behavior").verdict == "not resolved"
    # too few networks at one end: no test, and the 2-SE rule needs MIN_N too
    rows = _spread_rows((0.2, 0.4), (0.01, 0.01), (0.10, 0.20), (0.01, 0.01), n=MIN_N - 1)
    got = direction(rows, "complexity", "behavior")
    assert got.p is None and got.verdict == "not resolved"
    # the test's n is the networks with an OOD loss, not the group's size
    rows = _spread_rows((0.2, 0.25), (0.05, 0.05), (0.10, 0.20), (0.01, 0.01))
    for r in rows:
        r["behavior_n"] = 5
    p5 = stats.ttest_ind_from_stats(0.10, 0.01 * np.sqrt(5), 5, 0.20, 0.01 * np.sqrt(5), 5).pvalue
    assert direction(rows, "complexity", "behavior").p == pytest.approx(p5)
    # a table written before the test (no deviations): the 2-SE rule, as then
    old = [{k: v for k, v in r.items() if "mad" not in k} for r in _spread_rows(
        (0.2, 0.4), (0.01, 0.01), (0.1, 0.1), (0.01, 0.01))]  # fmt: skip
    got = direction(old, "complexity", "behavior")
    assert got.p is None and got.verdict == "resolved"


def test_holm_p_adjusts_each_spread_p_for_every_behavior_test_in_the_table():
    """Two cells' behavior tests in one table: the smaller p doubled, the larger kept unless
    the doubled smaller exceeds it; a table of one cell leaves its p as it is; joining two
    cells' tables (as reproduce does across its cells) recomputes over both."""
    from degeneracy.analysis.report import holm_spread

    strong = _spread_rows((0.2, 0.25), (0.05, 0.05), (0.10, 0.20), (0.01, 0.02))
    weak = _spread_rows((0.2, 0.25), (0.05, 0.05), (0.10, 0.14), (0.02, 0.02))
    p_strong = direction(strong, "complexity", "behavior").p
    p_weak = direction(weak, "complexity", "behavior").p
    assert p_strong < p_weak < 0.5  # the planted order
    table = contravariance_rows(
        {("flipflop", "complexity"): (strong, []), ("sine", "complexity"): (weak, [])}
    )
    holm_p = {r["task"]: r["Holm p"] for r in table if r["level"] == "behavior"}
    assert holm_p == {
        "flipflop": f"{2 * p_strong:.2g}",
        "sine": f"{max(p_weak, 2 * p_strong):.2g}",
    }
    assert all(r["Holm p"] == "" for r in table if r["level"] != "behavior")
    alone = [contravariance_rows({(t, "complexity"): (rows, [])}) for t, rows in
             (("flipflop", strong), ("sine", weak))]  # fmt: skip
    assert [r["Holm p"] for r in alone[0] if r["level"] == "behavior"] == [f"{p_strong:.2g}"]
    joined = holm_spread(alone[0] + alone[1])
    assert [r["Holm p"] for r in joined if r["level"] == "behavior"] == list(holm_p.values())


def test_directions_are_per_setting_never_pooled():
    rows = [
        {"complexity": c, "train.threshold": t, "dsa": v, "dsa_se": 0.001, "dsa_floor": 0.01}
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


def test_a_dynamics_direction_must_hold_across_the_dsa_grid():
    rows = [
        {"complexity": 1, "dsa": 0.1, "dsa_se": 0.001, "dsa_floor": 0.01},
        {"complexity": 3, "dsa": 0.3, "dsa_se": 0.001, "dsa_floor": 0.01},
    ]
    key = ("flipflop", "complexity")

    def verdict(grid_text):
        table = contravariance_rows({key: (rows, [])}, {key: {"all": grid_text}})
        return next(r["verdict"] for r in table if r["level"] == "dynamics")

    assert verdict("↑ at all 9 grid points") == "disagrees"  # the paper: ↓
    assert verdict("not resolved across the grid (3 ↑, 1 ↓, 5 unresolved of 9)") == ("not resolved")


def test_too_few_networks_is_never_a_direction_and_the_caption_says_so():
    from degeneracy.analysis.report import caption

    def rows(n_low):
        return [
            {
                "complexity": 1,
                "n": n_low,
                "dsa": 0.5,
                "dsa_se": 0.001,
                "dsa_floor": 0.01,
                "pif": 0.1,
                "pif_se": 0.001,
                "behavior": 0.1,
                "behavior_se": 0.001,
            },
            {
                "complexity": 3,
                "n": 8,
                "dsa": 0.2,
                "dsa_se": 0.001,
                "dsa_floor": 0.01,
                "pif": 0.3,
                "pif_se": 0.001,
                "behavior": 0.1,
                "behavior_se": 0.001,
            },
        ]

    assert direction(rows(MIN_N), "complexity", "dsa")[:2] == ("↓", "resolved")
    # the same numbers resting on 2 networks at one end: no direction
    assert direction(rows(MIN_N - 1), "complexity", "dsa")[:2] == ("↓", "not resolved")
    table = contravariance_rows({("flipflop", "complexity"): (rows(2), [])})
    assert {r["verdict"] for r in table} == {"not resolved"}
    assert {r["n"] for r in table} == {"2 → 8"}
    text = caption(rows(MIN_N), "complexity")
    assert "1: 3, 3: 8" in text
    assert "Dynamics falls by 0.3 " in text and "Weights rises by 0.2 " in text
    assert "floor 0.01): resolved" in text
    assert "not resolved" in caption(rows(2), "complexity")


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


def test_width_chart_draws_weights_relative_to_chance_beside_the_three_levels():
    """A size factor's chart gets a fourth panel, PIF ÷ PIF at initialization with its SE
    propagated and the chance level 1 drawn dashed; the caption reads it too. Planted: trained =
    1.2 × chance at every width, both with 1 % SE."""
    from degeneracy.analysis.report import caption, level_chart, level_panels

    rows = []
    for n in (32, 64, 128, 256):
        chance = 0.05 * n**-1.5
        rows.append(
            {
                "hidden_size": n,
                "n": 16,
                **{m: 0.1 for m in ("behavior", "dsa", "dsa_floor")},
                **{f"{m}_se": 0.01 for m in ("behavior", "dsa")},
                "pif": 1.2 * chance,
                "pif_se": 0.012 * chance,
                "pif_chance": chance,
                "pif_chance_se": 0.01 * chance,
            }
        )
    got, panels = level_panels(rows, "hidden_size")
    assert list(panels) == ["behavior", "dsa", "pif", "pif_relative"]
    for r in got:
        assert r["pif_relative"] == pytest.approx(1.2)
        assert r["pif_relative_se"] == pytest.approx(1.2 * np.sqrt(2) * 0.01)
        assert r["pif_relative_chance"] == 1.0
    spec = level_chart(got, "hidden_size", panels, "width").to_dict()
    titles = [p["title"] for p in spec["hconcat"]]
    assert titles[-1] == "weights ÷ chance (dashed: at initialization (= 1))"
    layers = spec["hconcat"][-1]["layer"]
    data = spec["datasets"]
    values = [data[layer["data"]["name"]] for layer in layers if "data" in layer]
    assert [d["value"] for d in values[0]] == pytest.approx([1.2] * 4)
    assert [d["reference"] for d in values[-1]] == [1.0] * 4
    assert "Weights ÷ chance does not change" in caption(rows, "hidden_size")
    # a factor that keeps the matrices' size: the three levels only
    same, three = level_panels(rows, "complexity")
    assert list(three) == ["behavior", "dsa", "pif"] and same is rows


def test_width_weights_are_also_judged_against_their_chance_level():
    """PIF ÷ n² of random n×n matrices falls about as n^-1.5, so across widths the raw
    weights row falls by construction; the 'weights ÷ chance' row reads the same networks
    scale-free. Planted: trained = 1.2 × chance at every width (no change relative to chance),
    then a ratio that truly falls."""
    from degeneracy.analysis.report import contravariance_rows

    def rows(ratios):
        out = []
        for n, k in zip((32, 64, 128, 256), ratios):
            chance = 0.05 * n**-1.5
            out.append(
                {
                    "hidden_size": n,
                    "n": 16,
                    "pif": k * chance,
                    "pif_se": 0.01 * k * chance,
                    "pif_chance": chance,
                    "pif_chance_se": 0.01 * chance,
                }
            )
        return out

    def verdicts(ratios):
        got = contravariance_rows({("flipflop", "hidden_size"): (rows(ratios), [])})
        return {r["level"]: (r["measured"], r["verdict"], r["paper"]) for r in got}

    flat = verdicts([1.2, 1.2, 1.2, 1.2])
    assert flat["weights"][:2] == ("↓", "agrees")  # the paper's metric: falls by construction
    assert flat["weights ÷ chance"][1] == "not resolved"
    assert flat["weights ÷ chance"][2] == "↓"  # compared with the paper's weights direction
    falling = verdicts([1.4, 1.3, 1.2, 1.1])
    assert falling["weights ÷ chance"][:2] == ("↓", "agrees")
    rising = verdicts([1.1, 1.2, 1.3, 1.4])
    assert rising["weights ÷ chance"][:2] == ("↑", "disagrees")
    # other factors get no such row
    other = contravariance_rows(
        {
            ("flipflop", "complexity"): (
                [{**r, "complexity": r["hidden_size"]} for r in rows([1.2] * 4)],
                [],
            )
        }
    )
    assert {r["level"] for r in other} == {"weights"}
