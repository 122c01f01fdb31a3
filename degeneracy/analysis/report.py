"""The report: degeneracy versus each factor at three levels, MDS maps, feature learning,
training curves, and the contravariance table against the paper — one offline HTML page plus a
PNG per chart.

Data come only from the registry (analyze results and the pairwise cache); charts are Altair.
Colours are the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies).
"""

from __future__ import annotations

import html
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from degeneracy.analysis.grouping import setting_labels
from degeneracy.analysis.params import SE_NOTE
from degeneracy.analysis.verdicts import (
    ALPHA,
    PAPER_LEVEL,
    compare_levels,
    decide,
    scale_free_reading,
)

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
FACTORS = {
    "complexity": "task complexity (channels / dimensions)",
    "hidden_size": "network size (hidden units)",
    "gamma": "feature-learning strength γ",
    "l1": "L1 penalty λ",
    "nuclear": "nuclear-norm penalty λ",
}
#: axis titles: the condition columns above plus task knobs that `reproduce` sweeps
TITLES = {
    **FACTORS,
    "delay_max": "memory demand (longest delay, steps)",
    "aux_output": "auxiliary output (0 = off, 1 = on)",
}
LEVELS = {
    "behavior": ("behavior", "std of OOD loss (MSE)"),
    "dsa_corrected": ("dynamics", "noise-corrected DSA distance (angular score, rad)"),
    "pif": ("weights", "mean pairwise PIF distance (‖ΔW‖_F / n²)"),
    "pif_scaled": ("weights (scale-free)", "PIF of matrices ÷ their Frobenius norm"),
}
#: drawn grey and dashed beside a level: dynamics' uncorrected mean distance, weights'
#: chance levels (the same networks at initialization)
REFERENCES = {
    "dsa_corrected": ("dsa", "uncorrected (probe noise in)"),
    "pif": ("pif_chance", "at initialization"),
    "pif_scaled": ("pif_scaled_chance", "at initialization"),
}
FL = {"weight_change": "‖W_T − W_0‖ / ‖W_0‖", "kernel_alignment": "NTK kernel alignment"}
#: the paper's findings (Huang et al. 2025, its table): direction of change as the factor
#: increases
PAPER = {
    "complexity": {"dynamics": "↓", "weights": "↑", "behavior": "↓"},
    "gamma": {"dynamics": "↓", "weights": "↑", "behavior": "↑"},
    "hidden_size": {"dynamics": "↓", "weights": "↓", "behavior": "↓"},
    "l1": {"dynamics": "↓", "weights": "↓", "behavior": "↓"},
    "nuclear": {"dynamics": "↓", "weights": "↓", "behavior": "↓"},
}
# memory demand and the auxiliary output are complexity knobs in the paper's table
PAPER["delay_max"] = PAPER["aux_output"] = PAPER["complexity"]


@dataclass
class Section:
    title: str
    charts: list[tuple[str, Any]] = field(default_factory=list)  # (file stem, chart)
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[tuple]]] = field(default_factory=list)  # (header, rows)
    captions: dict[str, str] = field(default_factory=dict)  # chart stem -> caption under it


def _font(chart):
    return chart.configure_axis(labelFontSize=12, titleFontSize=13).configure_title(fontSize=15)


def _level_scale(levels: list[float]):
    """A linear axis; a symmetric-log one when the positive levels span a decade or more (L1
    0, 1e-5, 3e-5, 1e-4 on a linear axis bunch the small three into one label-hiding corner)."""
    import altair as alt

    pos = [v for v in levels if v > 0]
    if len(pos) >= 2 and pos[-1] >= 10 * pos[0]:
        return alt.Scale(type="symlog", constant=pos[0], padding=20, nice=False)
    return alt.Scale(zero=False, padding=20, nice=False)


def level_chart(
    rows: list[dict],
    factor: str,
    metrics: dict[str, tuple[str, str]],
    title: str,
    series: list[str] | None = None,
):
    """Side-by-side panels: metric value ± 1 SE versus the factor, n in the tooltip; one line
    per setting in `series` (settings that differ within a factor level, never pooled)."""
    import altair as alt
    import polars as pl

    labels = setting_labels(rows, series or [])
    panels = []
    for metric, (name, unit) in metrics.items():
        data = [
            {
                factor: r[factor],
                "value": r[metric],
                "lo": r[metric] - (r[f"{metric}_se"] or 0),
                "hi": r[metric] + (r[f"{metric}_se"] or 0),
                "se": r[f"{metric}_se"],
                "n": r["n"],
                "setting": label,
            }
            for r, label in zip(rows, labels)
            if r.get(metric) is not None
        ]
        if not data:
            continue
        df = pl.DataFrame(data)
        levels = sorted({d[factor] for d in data})
        x = alt.X(
            f"{factor}:Q",
            title=TITLES.get(factor, factor),
            scale=_level_scale(levels),
            # ~g: each level as written (at this width Vega's default drew γ = 0.5 as "1")
            axis=alt.Axis(values=levels, format=".6~g"),
        )
        base = alt.Chart(df)
        color: Any
        if len({d["setting"] for d in data}) > 1:
            color = alt.Color("setting:N", title="setting", scale=alt.Scale(range=OKABE_ITO))
        else:  # one setting: no legend
            color = alt.value(OKABE_ITO[0])
        line = base.mark_line(point=alt.OverlayMarkDef(size=60)).encode(
            x=x,
            color=color,
            # wrapped: a one-line title longer than the panel shifted the panels apart
            y=alt.Y("value:Q", title=textwrap.wrap(unit, 28), scale=alt.Scale(zero=False)),
            tooltip=[
                alt.Tooltip(f"{factor}:Q"),
                alt.Tooltip("value:Q", format=".4g"),
                alt.Tooltip("se:Q", title="± SE", format=".2g"),
                alt.Tooltip("n:Q", title="networks"),
                alt.Tooltip("setting:N"),
            ],
        )
        bars = base.mark_rule().encode(x=x, y="lo:Q", y2="hi:Q", color=color)
        layers = [line, bars]
        few = [d for d in data if d["n"] < MIN_N]
        if few:  # too few networks for an error bar: ringed, never a direction
            layers.append(
                alt.Chart(pl.DataFrame(few))
                .mark_point(shape="circle", size=260, filled=False, color="#D55E00")
                .encode(
                    x=x,
                    y="value:Q",
                    tooltip=[alt.Tooltip("n:Q", title=f"networks (< {MIN_N}: no SE)")],
                )
            )
        ref, ref_name = REFERENCES.get(metric, (None, None))
        refs = [
            {factor: r[factor], "reference": r[ref], "setting": d["setting"], "what": ref_name}
            for r, d in zip((r for r in rows if r.get(metric) is not None), data)
            if r.get(ref) is not None
        ]
        if refs:
            layers.append(
                alt.Chart(pl.DataFrame(refs))
                .mark_line(color="#888888", strokeDash=[4, 3], point=True)
                .encode(
                    x=x,
                    y="reference:Q",
                    detail="setting:N",
                    tooltip=["what:N", alt.Tooltip("reference:Q", format=".3g")],
                )
            )
        heading = f"{name} (dashed: {ref_name})" if refs else name
        panels.append(alt.layer(*layers).properties(title=heading, width=220, height=180))
    if not panels:
        return None
    return _font(alt.hconcat(*panels).properties(title=title))


def mds_chart(points: list[dict], color: str, title: str):
    import altair as alt
    import polars as pl

    df = pl.DataFrame(points)
    return _font(
        alt.Chart(df)
        .mark_circle(size=90, opacity=0.85)
        .encode(
            x=alt.X("x:Q", title="MDS 1"),
            y=alt.Y("y:Q", title="MDS 2"),
            color=alt.Color(
                f"{color}:N", title=FACTORS.get(color, color), scale=alt.Scale(range=OKABE_ITO)
            ),
            tooltip=["network_id:N", "seed:Q", f"{color}:N"],
        )
        .properties(title=title, width=260, height=240)
    )


def curves_chart(points: list[dict], thresholds: list[float], title: str):
    """Median training loss per condition (`label`) and epoch, the stop thresholds dashed."""
    import altair as alt
    import polars as pl

    lines = (
        alt.Chart(pl.DataFrame(points))
        .mark_line(opacity=0.9)
        .encode(
            x=alt.X("step:Q", title="training step"),
            y=alt.Y(
                "loss:Q",
                title="median training MSE over the networks still training (log)",
                scale=alt.Scale(type="log"),
            ),
            color=alt.Color("condition:N", title="condition", scale=alt.Scale(range=OKABE_ITO)),
            tooltip=[
                "condition:N",
                "step:Q",
                alt.Tooltip("loss:Q", format=".3g"),
                alt.Tooltip("networks:Q", title="networks still training"),
            ],
        )
    )
    rules = (
        alt.Chart(pl.DataFrame({"threshold": thresholds}))
        .mark_rule(color="#555555", strokeDash=[5, 4])
        .encode(y="threshold:Q", tooltip=[alt.Tooltip("threshold:Q", title="stop threshold")])
    )
    return _font(alt.layer(lines, rules).properties(title=title, width=520, height=260))


#: a level's value -> the per-group value its differences must also exceed (noise floor)
FLOORS = {"dsa": "dsa_floor"}
#: groups with fewer networks have no standard error: ringed on charts, never a direction
MIN_N = 3
#: the contravariance table's columns (report and `reproduce`'s verdicts.csv)
VERDICT_COLUMNS = [
    "task",
    "factor",
    "setting",
    "level",
    "measured",
    "n",
    "difference",
    "tested",
    "p",
    "Holm p",
    "paper",
    "verdict",
    "seeds needed",
    "scale-free",
    "DSA grid",
]


def caption(rows: list[dict], factor: str, series: list[str] | None = None) -> str:
    """What a three-level chart plots, n per point, and its take-away (one sentence per level,
    with the same verdict rule as the contravariance table)."""
    labels = setting_labels(rows, series or [])
    by: dict[str, list[dict]] = {}
    for r, label in zip(rows, labels):
        by.setdefault(label, []).append(r)
    parts = [
        "Points: the group value over its converged networks; bars: ±1 SE over networks "
        f"({SE_NOTE}); dashed grey: the dynamics noise floor "
        "and the weights' value at initialization; "
        f"ringed: fewer than {MIN_N} networks (no SE, never a direction)."
    ]
    for label, sub in by.items():
        sub = sorted(sub, key=lambda r: r[factor])
        ns = ", ".join(f"{r[factor]}: {r['n']}" for r in sub)
        where = "" if label == "all" else f" [{label}]"
        parts.append(f"Networks per point{where} ({TITLES.get(factor, factor)}): {ns}.")
        for t in compare_levels(sub, factor):
            word = {"↑": "rises", "↓": "falls", "→": "does not change"}[t.arrow]
            bound = "untested" if t.p is None else f"p {t.p:.2g} before multiplicity"
            parts.append(
                f"{t.level.capitalize()}{where} {word} by {abs(t.difference):.3g} from the "
                f"lowest to the highest level ({bound}; verdict in the table)."
            )
    return " ".join(parts)


class Direction(NamedTuple):
    """A level's change from the lowest to the highest factor value."""

    arrow: str
    verdict: str  # "resolved" or "not resolved"
    difference: float
    two_se: float
    floor: float
    p: float | None = None  # behavior: Brown–Forsythe's p (None: tested by 2 SE instead)


#: behavior's verdict: the level of Brown–Forsythe's test of equal spread
SPREAD_ALPHA = 0.05
#: behavior's verdict rule, in words (the report's table note and reproduce's summary.md)
SPREAD_NOTE = (
    f"behavior's when Brown–Forsythe's test of equal spread gives p < {SPREAD_ALPHA:g} "
    "(spread p) and its spread (mean absolute deviation from the median) moves the std's way: "
    "the std's SE is measured too small on heavy-tailed OOD losses, the test is not"
)


def _spread_p(lo: dict, hi: dict) -> tuple[float, float] | None:
    """(Brown–Forsythe p, change of the mean absolute deviation) between two levels' rows, or
    None where a row lacks `behavior_mad` (older tables) or has under MIN_N networks with an
    OOD loss (`behavior_n`; tables without it: `n`)."""
    from degeneracy.analysis.summary import spread_test

    ends: list[tuple[Any, Any, Any]] = [
        (r.get("behavior_mad"), r.get("behavior_mad_se"), r.get("behavior_n", r.get("n", 0)))
        for r in (lo, hi)
    ]
    if any(m is None or se is None or not n or n < MIN_N for m, se, n in ends):
        return None
    (m0, s0, n0), (m1, s1, n1) = ends
    return spread_test(m0, s0, n0, m1, s1, n1), m1 - m0


def direction(rows: list[dict], factor: str, metric: str) -> Direction | None:
    """From the lowest to the highest factor value: arrow, verdict, difference, 2 SE, floor.

    Dynamics and weights are "resolved" only when |difference| exceeds both 2 standard
    errors (2·√(se_low² + se_high²); needs both) and, for dynamics, the larger of the two
    groups' noise floors. Behavior (the std of OOD loss) is resolved when Brown–Forsythe's
    test of equal spread gives p < SPREAD_ALPHA and the spread it tests (mean absolute
    deviation from the median) moves the std's way: the std's SE is measured too small on
    heavy-tailed OOD losses, the test is not (`summary.spread_test`). Rows without the
    deviations (tables written before the test) fall back to the 2-SE rule."""
    pts = sorted(
        ((r[factor], r) for r in rows if r.get(metric) is not None),
        key=lambda t: t[0],
    )
    if len(pts) < 2:
        return None
    lo, hi = pts[0][1], pts[-1][1]
    v0, v1 = lo[metric], hi[metric]
    s0, s1 = lo.get(f"{metric}_se"), hi.get(f"{metric}_se")
    f0, f1 = lo.get(FLOORS.get(metric, "")), hi.get(FLOORS.get(metric, ""))
    n0, n1 = lo.get("n", MIN_N), hi.get("n", MIN_N)
    diff = v1 - v0
    two_se = 2 * float(np.sqrt((s0 or 0) ** 2 + (s1 or 0) ** 2))
    floor = max(f0 or 0.0, f1 or 0.0)
    arrow = "↑" if diff > 0 else "↓" if diff < 0 else "→"
    spread = _spread_p(lo, hi) if metric == "behavior" else None
    if spread is not None:
        p, moved = spread
        ok = p < SPREAD_ALPHA and np.sign(moved) == np.sign(diff) != 0
        return Direction(arrow, "resolved" if ok else "not resolved", diff, two_se, floor, p)
    has_se = s0 is not None and s1 is not None and min(n0, n1) >= MIN_N
    has_floor = metric not in FLOORS or (f0 is not None and f1 is not None)
    ok = has_se and has_floor and abs(diff) > two_se and abs(diff) > floor
    return Direction(arrow, "resolved" if ok else "not resolved", diff, two_se, floor)


def agreement(verdict: str, arrow: str, paper: str) -> str:
    """A direction against the paper's: "not resolved" unless resolved, then "agrees" or
    "disagrees" ("" where the paper states no direction)."""
    if verdict != "resolved":
        return "not resolved"
    if not paper:
        return ""
    return "agrees" if arrow == paper else "disagrees"


def contravariance_rows(
    by_factor: dict[tuple[str, str], tuple[list[dict], list[str]]],
    grids: dict[tuple[str, str], dict[str, str]] | None = None,
) -> list[dict]:
    """One row per (task, factor, setting, level): the measured change under the level's rule
    (`verdicts.RULES`) beside the paper's direction, with every test of the table one family
    (`settle_family`). Dynamics rows carry the DSA grid's directions (`grid.grid_verdict`) as a
    sensitivity display beside the verdict, not a veto."""
    out = []
    for (task, factor), (rows, series) in sorted(by_factor.items()):
        settings: dict[str, list[dict]] = {}
        for r, label in zip(rows, setting_labels(rows, series)):
            settings.setdefault(label, []).append(r)
        for label, group in settings.items():
            for t in compare_levels(group, factor):
                paper = PAPER.get(factor, {}).get(PAPER_LEVEL[t.level], "")
                grid = (
                    (grids or {}).get((task, factor), {}).get(label, "")
                    if t.level == "dynamics"
                    else ""
                )
                out.append(
                    {
                        "task": task,
                        "factor": factor,
                        "setting": label,
                        "level": t.level,
                        "measured": t.arrow,
                        "n": f"{t.n[0]} → {t.n[1]}" + (f" ({t.paired} paired)" if t.paired else ""),
                        "difference": f"{t.difference:+.3g}",
                        "tested": (
                            ""
                            if t.se is None or t.tested_difference is None
                            else f"{t.tested_difference:+.3g} ± {t.se:.2g}"
                        ),
                        "p": "" if t.p is None else f"{t.p:.2g}",
                        "paper": paper,
                        "DSA grid": grid,
                        "_test": t,
                    }
                )
    return settle_family(out)


#: the verdict rule, in words (the report's table note and reproduce's summary.md)
VERDICT_NOTE = (
    "verdict: resolved when the level's test (behavior: Brown–Forsythe on the deviations from "
    "the median, which must move the std's way; dynamics: the noise-corrected DSA distance; "
    "weights: PIF ÷ n², the paper's, and beside it PIF of Frobenius-normalized matrices) gives "
    f"a Holm-adjusted p < {ALPHA:g} over every test in the table (Holm p); tested: the change "
    "of what the test reads, ± its SE (behavior: the mean absolute deviation from the median; "
    "dynamics: the excess, in rad²; weights: the value shown); seeds needed: networks per "
    "level that would resolve the observed difference at 80 % power; scale-free: whether the "
    "paper-metric weights change survives the scale-free metric"
)


def settle_family(rows: list[dict]) -> list[dict]:
    """Verdicts for the rows of one family (their `_test`s): Holm p, verdict, seeds needed,
    and on each weights row whether it survives the scale-free metric; in place, returned."""
    tested = [r for r in rows if r.get("_test") is not None]
    got = decide([r["_test"] for r in tested], [r["paper"] for r in tested])
    for r, v in zip(tested, got):
        r["Holm p"] = "" if v["Holm p"] is None else f"{v['Holm p']:.2g}"
        r["verdict"] = v["agrees"]
        r["seeds needed"] = "" if v["seeds needed"] is None else str(v["seeds needed"])
        r["_resolved"] = v["resolved"]
    by_key: dict[tuple, dict[str, dict]] = {}
    for r in tested:
        by_key.setdefault((r["task"], r["factor"], r["setting"]), {})[r["level"]] = r
    for levels in by_key.values():
        w, sf = levels.get("weights"), levels.get("weights (scale-free)")
        if w is not None:
            w["scale-free"] = scale_free_reading(
                {"resolved": w["_resolved"], "arrow": w["measured"]},
                None if sf is None else {"resolved": sf["_resolved"], "arrow": sf["measured"]},
            )
    for r in rows:
        for c in VERDICT_COLUMNS:
            r.setdefault(c, "")
    return rows


def render_html(
    title: str,
    header: list[str],
    sections: list[Section],
    table: list[dict],
    caveats: list[str] | None = None,
) -> str:
    """One self-contained page: every chart embedded with the Vega libraries inlined;
    `caveats` in a box under the header (settings that depart from the paper, and the like)."""
    import altair as alt
    import vl_convert as vlc

    vl = "v" + "_".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    bundle = vlc.javascript_bundle(vl_version=vl)  # type: ignore[call-arg]  # stub: snippet is optional
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts += [f"<p>{html.escape(h)}</p>" for h in header]
    if caveats:
        parts.append("<div class='caveats'><b>Read these numbers with:</b><ul>")
        parts += [f"<li>{html.escape(c)}</li>" for c in caveats]
        parts.append("</ul></div>")
    embeds = []
    n = 0
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        parts += [f"<p class='note'>{html.escape(x)}</p>" for x in sec.notes]
        for head, body in sec.tables:
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head))
            for row in body:
                cells = "".join(
                    f"<td>{html.escape(f'{v:.4g}' if isinstance(v, float) else str(v))}</td>"
                    for v in row
                )
                parts.append(f"<tr>{cells}</tr>")
            parts.append("</table>")
        for stem, chart in sec.charts:
            parts.append(f"<div class='chart' id='chart{n}' data-name='{html.escape(stem)}'></div>")
            if stem in sec.captions:
                parts.append(f"<p class='caption'>{html.escape(sec.captions[stem])}</p>")
            embeds.append(
                f"vegaEmbed('#chart{n}', {json.dumps(chart.to_dict())}, "
                "{renderer: 'svg', actions: false})"
            )
            n += 1
    if table:
        parts.append("<h2>Contravariance: measured direction of change vs the paper</h2>")
        parts.append(
            "<p class='note'>Change from the lowest to the highest value of each factor, "
            "compared with the paper (Huang et al. 2025); each level's rule is fixed in "
            f"degeneracy.analysis.verdicts: {VERDICT_NOTE}. Both ends need at least {MIN_N} "
            "networks. DSA grid: the dynamics direction at other DSA settings, a sensitivity "
            "display, not part of the verdict. n: converged networks at the lowest → highest "
            "level.</p>"
        )
        cols = VERDICT_COLUMNS
        parts.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>")
        for r in table:
            tds = []
            for c in cols:
                v = r.get(c, "")
                if c == "verdict":
                    v = {"agrees": "✓ agrees", "disagrees": "✗ disagrees"}.get(v, v)
                tds.append(f"<td>{html.escape(str(v))}</td>")
            parts.append("<tr>" + "".join(tds) + "</tr>")
        parts.append("</table>")
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        ".chart{margin:1em 0}.note{color:#555}table{border-collapse:collapse}"
        ".caption{color:#333;font-size:0.9em;max-width:1000px}"
        ".caveats{border:2px solid #E69F00;background:#fff8e8;padding:0.5em 1em;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    )
    # data-rendered / data-errors on <html> let a browser test see what drew and what failed
    record_errors = (
        "<script>window.addEventListener('error', e => { const d = document.documentElement"
        ".dataset; d.errors = (d.errors || '') + e.message + ' | '; });</script>"
    )
    finish = (
        "]).then(rs => { const d = document.documentElement.dataset;"
        "d.rendered = rs.filter(r => r.status === 'fulfilled').length;"
        "const bad = rs.filter(r => r.status === 'rejected').map(r => String(r.reason));"
        "if (bad.length) { d.errors = (d.errors || '') + bad.join(' | '); } });"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{style}</style>{record_errors}"
        f"<script type='text/javascript'>{bundle}</script></head><body>"
        + "\n".join(parts)
        + "<script type='text/javascript'>Promise.allSettled(["
        + ",\n".join(embeds)
        + finish
        + "</script></body></html>"
    )


def _dsa_note() -> str:
    from degeneracy.analysis.metrics import DSA_TASK_DEFAULTS
    from degeneracy.analysis.params import DSAMetricParams

    p = DSAMetricParams()
    delays = "; ".join(f"{t}: {d['n_delays']}" for t, d in DSA_TASK_DEFAULTS.items())
    return (
        f"Dynamics: DSA with the reference (dsa-metric) operator fit on {p.trials} probe "
        "trials per fit (stored networks run again from their weights), delays per task "
        f"({delays}), at one rank for every level compared: the smallest keeping "
        f"{p.share:.0%} of the delay embedding's variance for their median network (at most "
        f"{p.max_rank}); angular score in radians. The paper writes the Frobenius score; both "
        "are stored per pair (score = 'euclidean' in SQL)."
    )


#: the DSA settings every dynamics value of a report is computed at (metrics' defaults)
DSA_NOTE = _dsa_note()


def provenance_lines(registry, where: str) -> list[str]:
    """What made the networks selected by `where`: one line per distinct software and device."""
    with registry.read_query(
        "SELECT provenance->>'degeneracy', provenance->>'git', provenance->>'torch', "
        "provenance->>'duckdb', provenance->>'device', count(*) FROM networks_labeled "
        f"WHERE {where} GROUP BY ALL ORDER BY ALL"
    ) as rel:
        rows = rel.fetchall()
    out = []
    for version, git, torch, duckdb_v, device, n in rows:
        if version is None:
            out.append(f"{n} network(s) stored before provenance was recorded")
            continue
        out.append(
            f"{n} network(s) trained by degeneracy {version}"
            + (f" (git {git})" if git else "")
            + f", torch {torch}, duckdb {duckdb_v}, on {device}"
        )
    return out


def caveats(registry, base: str) -> list[str]:
    """What a reader must know before comparing these numbers with the paper's: per task, the
    thresholds, seeds and widths used against the paper's, and the DSA settings."""
    from degeneracy.tasks import TASKS

    with registry.read_query(
        "SELECT task, list(DISTINCT (factors->'train'->>'threshold')::DOUBLE), "
        "min(n), max(n), list(DISTINCT hidden_size ORDER BY hidden_size) FROM ("
        "SELECT task, ensemble_id, any_value(factors) AS factors, any_value(hidden_size) AS "
        f"hidden_size, count(*) AS n FROM networks_labeled WHERE {base} GROUP BY ALL) "
        "GROUP BY ALL ORDER BY ALL"
    ) as rel:
        rows = rel.fetchall()
    out = []
    for task, thresholds, lo, hi, widths in rows:
        paper = TASKS[task].paper_threshold if task in TASKS else None
        used = ", ".join(f"{t:g}" for t in sorted(x for x in thresholds if x is not None))
        seeds = f"{lo}" if lo == hi else f"{lo}–{hi}"
        out.append(
            f"{task}: MSE threshold {used or 'unknown'}"
            + (f" (the paper's: {paper:g})" if paper else "")
            + f"; {seeds} networks per ensemble (the paper: 50); hidden "
            f"{', '.join(map(str, widths))} (the paper: 128 outside its width sweep)."
        )
    return [*out, DSA_NOTE, "Degeneracy is computed over converged networks only."]


def write_page(
    out: Path,
    title: str,
    header: list[str],
    sections: list[Section],
    table: list[dict],
    caveats: list[str] | None = None,
) -> Path:
    """report.html and a PNG per chart under `out`, with no limit on the rows a chart holds
    (Altair refuses more than 5,000 by default: a 16-seed sweep's curves passed that)."""
    import altair as alt

    with alt.data_transformers.disable_max_rows():
        page = render_html(title, header, sections, table, caveats)
        for sec in sections:
            for stem, chart in sec.charts:
                chart.save(str(out / f"{stem}.png"), scale_factor=1.5)
    tmp = out / ".report.html.tmp"
    tmp.write_text(page)
    tmp.replace(out / "report.html")  # the page appears only once everything is written
    return out / "report.html"


def clear_page(out: Path) -> None:
    """Remove an earlier report.html before a new one is made: if making it fails, no page
    from an older run is left looking current."""
    (Path(out) / "report.html").unlink(missing_ok=True)


def build_report(
    registry, out_dir: str | Path, where: str | None = None, progress=None, grid: bool = False
) -> Path:
    """Analyze what the registry holds (reusing every cached pair), write report.html and PNGs.

    `grid`: also the dynamics direction of each factor at every point of the DSA setting grid."""
    from degeneracy.analysis.analyze import analyze
    from degeneracy.analysis.grid import COLUMNS as GRID_COLUMNS
    from degeneracy.analysis.grid import dsa_grid, grid_verdict
    from degeneracy.analysis.grouping import column_sql, split_settings
    from degeneracy.analysis.pairwise_cache import PairwiseCache
    from degeneracy.analysis.summary import classical_mds
    from degeneracy.registry.errors import RegistryError

    out = Path(out_dir)
    base = f"({where})" if where else "TRUE"
    with registry.read_query(
        f"SELECT task, count(*), sum(converged::INT), "
        "list(DISTINCT factors->'train'->>'threshold'), "
        "list(DISTINCT coalesce((factors->'train'->>'max_epochs') || ' epochs of ' || "
        "(factors->'train'->>'steps_per_epoch') || ' steps', "
        "(factors->'train'->>'max_steps') || ' steps')), "
        f"{', '.join(f'count(DISTINCT {f})' for f in FACTORS)} "
        f"FROM networks_labeled WHERE {base} GROUP BY ALL ORDER BY ALL"
    ) as rel:
        tasks = rel.fetchall()
    if not tasks:
        raise RegistryError("no networks to report on" + (" (check --where)" if where else ""))
    out.mkdir(parents=True, exist_ok=True)  # only once the filter is known to be good
    clear_page(out)
    header = [
        f"Registry: {registry.root}",
        *("Provenance: " + x for x in provenance_lines(registry, base)),
    ]
    sections: list[Section] = []
    by_factor: dict[tuple[str, str], tuple[list[dict], list[str]]] = {}
    grids: dict[tuple[str, str], dict[str, str]] = {}
    cache = PairwiseCache(registry)
    for task, n, conv, thresholds, budgets, *distinct in tasks:
        header.append(
            f"{task}: {n} networks, {conv} converged; MSE threshold(s) "
            f"{', '.join(str(t) for t in thresholds if t)}; budget(s) "
            f"{', '.join(str(b) for b in budgets if b)}. Degeneracy uses converged networks only."
        )
        varying = [f for f, k in zip(FACTORS, distinct) if k > 1] or ["complexity"]
        task_where = f"task = '{task}' AND {base}"
        for factor in varying:
            if progress:
                progress(f"{task}: degeneracy vs {factor}")
            # the other varying factors and differing settings stay apart: one line each
            group_by = ["task", factor, *(f for f in varying if f != factor)]
            series = group_by[2:] + split_settings(registry, group_by, task_where)
            _, rows = analyze(registry, ["behavior", "dsa", "pif", "fl"], group_by, task_where)
            by_factor[(task, factor)] = (rows, series)
            sec = Section(f"{task}: degeneracy versus {FACTORS[factor]}")
            chart = level_chart(
                rows, factor, LEVELS, f"{task}: behavior, dynamics, weights", series
            )
            if chart is not None:
                sec.charts.append((f"{task}_{factor}_levels", chart))
                sec.captions[f"{task}_{factor}_levels"] = caption(rows, factor, series)
            else:
                sec.notes.append(
                    f"Nothing to plot: {conv} of {n} networks converged (threshold(s) "
                    f"{', '.join(str(t) for t in thresholds if t)}; budget(s) "
                    f"{', '.join(str(b) for b in budgets if b)}), and degeneracy needs at "
                    "least 2 converged networks per level."
                )
            fl = level_chart(
                rows,
                factor,
                {k: (v, v) for k, v in FL.items()},
                f"{task}: feature learning",
                series,
            )
            if fl is not None:
                sec.charts.append((f"{task}_{factor}_feature_learning", fl))
            if grid:
                grid_rows = dsa_grid(
                    registry, factor, group_by, task_where, series=series, progress=progress
                )
                grids[(task, factor)] = grid_verdict(grid_rows)
                sec.notes.append(
                    "Dynamics direction at every DSA setting of the grid (n_delays x rank): "
                    + "; ".join(f"{k}: {v}" for k, v in grids[(task, factor)].items())
                )
                sec.tables.append(
                    (GRID_COLUMNS, [tuple(g.get(h, "") for h in GRID_COLUMNS) for g in grid_rows])
                )
            small = [r for r in rows if r["n"] < 2]
            if small:
                sec.notes.append(
                    f"{len(small)} group(s) have fewer than 2 converged networks: "
                    "no pairwise degeneracy for them."
                )
            sections.append(sec)
        # MDS of all converged networks of the task, coloured by the first varying factor
        color = varying[0]
        with registry.read_query(
            f"SELECT network_id, seed, {color} FROM networks_labeled WHERE converged AND "
            f"{task_where} ORDER BY network_id"
        ) as rel:
            nets = rel.fetchall()
        if len(nets) >= 3:
            sec = Section(f"{task}: MDS maps of converged networks")
            ids = [r[0] for r in nets]
            for metric, label in (("dsa", "dynamics (DSA)"), ("pif", "weights (PIF)")):
                if progress:
                    progress(f"{task}: {metric} distances for MDS ({len(ids)} networks)")
                xy = classical_mds(cache.matrix(metric, ids), 2)
                pts = [
                    {
                        "network_id": r[0],
                        "seed": r[1],
                        color: str(r[2]),
                        "x": float(a),
                        "y": float(b),
                    }
                    for r, (a, b) in zip(nets, xy)
                ]
                sec.charts.append(
                    (f"{task}_mds_{metric}", mds_chart(pts, color, f"{task}: {label}"))
                )
            sections.append(sec)
        # training curves: the median loss per condition and epoch, thresholds drawn
        label_cols = [*varying, *split_settings(registry, varying, task_where, False)]
        cols = ", ".join(column_sql(c) for c in label_cols)
        with registry.read_query(
            f"SELECT {cols}, c.step, median(c.loss), count(*) FROM curves c JOIN "
            f"(SELECT network_id, {cols} FROM networks_labeled WHERE {task_where}) n "
            "USING (network_id) GROUP BY ALL ORDER BY ALL"
        ) as rel:
            found = rel.fetchall()
        if found:
            k = len(label_cols)
            points = [
                {
                    "condition": ", ".join(f"{c}={v}" for c, v in zip(label_cols, r[:k])),
                    "step": r[k],
                    "loss": r[k + 1],
                    "networks": r[k + 2],
                }
                for r in found
            ]
            sec = Section(f"{task}: training curves")
            sec.charts.append(
                (
                    f"{task}_curves",
                    curves_chart(
                        points,
                        [float(t) for t in thresholds if t],
                        f"{task}: training loss per condition (dashed: stop threshold)",
                    ),
                )
            )
            sec.captions[f"{task}_curves"] = (
                "Lines: the median epoch-mean training MSE of each condition's networks still "
                "training at that step (a network stops once its loss stayed under the dashed "
                "threshold for 3 epochs, so late points rest on the slow ones; hover for how "
                "many)."
            )
            sections.append(sec)
    cache.flush()
    table = contravariance_rows(by_factor, grids)
    write_page(
        out,
        "Solution degeneracy report",
        header,
        sections,
        table,
        caveats(registry, base),
    )
    return out / "report.html"
