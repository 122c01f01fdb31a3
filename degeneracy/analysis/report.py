"""The report: degeneracy versus each factor at three levels, MDS maps, feature learning,
training curves, and the contravariance table against the paper — one offline HTML page plus a
PNG per chart.

Data come only from the registry (analyze results and the pairwise cache); charts are Altair.
Colours are the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
FACTORS = {
    "complexity": "task complexity (channels / dimensions)",
    "hidden_size": "network size (hidden units)",
    "gamma": "feature-learning strength γ",
    "l1": "L1 penalty λ",
    "nuclear": "nuclear-norm penalty λ",
}
LEVELS = {
    "behavior": ("behavior", "std of OOD loss (MSE)"),
    "dsa": ("dynamics", "mean pairwise DSA distance (rad)"),
    "pif": ("weights", "mean pairwise PIF distance (RMS per weight)"),
}
FL = {"weight_change": "‖W_T − W_0‖ / ‖W_0‖", "kernel_alignment": "NTK kernel alignment"}
#: DESIGN.md, "The paper's findings": direction of change as the factor increases
PAPER = {
    "complexity": {"dynamics": "↓", "weights": "↑", "behavior": "↓"},
    "gamma": {"dynamics": "↓", "weights": "↑", "behavior": "↑"},
    "hidden_size": {"dynamics": "↓", "weights": "↓", "behavior": "↓"},
    "l1": {"dynamics": "↓", "weights": "↓", "behavior": "↓"},
    "nuclear": {"dynamics": "↓", "weights": "↓", "behavior": "↓"},
}


@dataclass
class Section:
    title: str
    charts: list[tuple[str, Any]] = field(default_factory=list)  # (file stem, chart)
    notes: list[str] = field(default_factory=list)


def _font(chart):
    return chart.configure_axis(labelFontSize=12, titleFontSize=13).configure_title(fontSize=15)


def level_chart(rows: list[dict], factor: str, metrics: dict[str, tuple[str, str]], title: str):
    """Side-by-side panels: metric value ± 1 SE versus the factor, n in the tooltip."""
    import altair as alt
    import polars as pl

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
            }
            for r in rows
            if r.get(metric) is not None
        ]
        if not data:
            continue
        df = pl.DataFrame(data)
        x = alt.X(
            f"{factor}:Q",
            title=FACTORS.get(factor, factor),
            scale=alt.Scale(zero=False, padding=20, nice=False),
            axis=alt.Axis(values=sorted({d[factor] for d in data})),
        )
        base = alt.Chart(df)
        line = base.mark_line(point=alt.OverlayMarkDef(size=60), color=OKABE_ITO[0]).encode(
            x=x,
            y=alt.Y("value:Q", title=unit, scale=alt.Scale(zero=False)),
            tooltip=[
                alt.Tooltip(f"{factor}:Q"),
                alt.Tooltip("value:Q", format=".4g"),
                alt.Tooltip("se:Q", title="± SE", format=".2g"),
                alt.Tooltip("n:Q", title="networks"),
            ],
        )
        bars = base.mark_rule(color=OKABE_ITO[0]).encode(x=x, y="lo:Q", y2="hi:Q")
        panels.append((line + bars).properties(title=name, width=220, height=180))
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


def curves_chart(df, title: str):
    import altair as alt

    return _font(
        alt.Chart(df)
        .mark_line(opacity=0.85)
        .encode(
            x=alt.X("step:Q", title="training step"),
            y=alt.Y("loss:Q", title="training MSE (log scale)", scale=alt.Scale(type="log")),
            color=alt.Color("seed:N", title="seed", scale=alt.Scale(range=OKABE_ITO)),
            tooltip=["seed:N", "step:Q", alt.Tooltip("loss:Q", format=".3g")],
        )
        .properties(title=title, width=480, height=240)
    )


def direction(rows: list[dict], factor: str, metric: str) -> tuple[str, bool] | None:
    """Measured direction from the lowest to the highest factor value, and whether the change
    exceeds its standard error (√(se_low² + se_high²))."""
    pts = sorted(
        (r[factor], r[metric], r.get(f"{metric}_se")) for r in rows if r.get(metric) is not None
    )
    if len(pts) < 2:
        return None
    (_, v0, s0), (_, v1, s1) = pts[0], pts[-1]
    diff = v1 - v0
    se = float(np.sqrt((s0 or 0) ** 2 + (s1 or 0) ** 2))
    arrow = "↑" if diff > 0 else "↓" if diff < 0 else "→"
    return arrow, (abs(diff) > se and se > 0)


def contravariance_rows(by_factor: dict[tuple[str, str], list[dict]]) -> list[dict]:
    out = []
    for (task, factor), rows in sorted(by_factor.items()):
        for metric, (level, _) in LEVELS.items():
            got = direction(rows, factor, metric)
            paper = PAPER.get(factor, {}).get(level, "")
            if got is None:
                continue
            arrow, significant = got
            out.append(
                {
                    "task": task,
                    "factor": factor,
                    "level": level,
                    "measured": arrow,
                    "exceeds SE": significant,
                    "paper": paper,
                    "agrees": (arrow == paper) if paper else None,
                }
            )
    return out


def render_html(title: str, header: list[str], sections: list[Section], table: list[dict]) -> str:
    """One self-contained page: every chart embedded with the Vega libraries inlined."""
    import altair as alt
    import vl_convert as vlc

    vl = "v" + "_".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    bundle = vlc.javascript_bundle(vl_version=vl)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts += [f"<p>{html.escape(h)}</p>" for h in header]
    embeds = []
    n = 0
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        parts += [f"<p class='note'>{html.escape(x)}</p>" for x in sec.notes]
        for stem, chart in sec.charts:
            parts.append(f"<div class='chart' id='chart{n}' data-name='{html.escape(stem)}'></div>")
            embeds.append(
                f"vegaEmbed('#chart{n}', {json.dumps(chart.to_dict())}, "
                "{renderer: 'svg', actions: false})"
            )
            n += 1
    if table:
        parts.append("<h2>Contravariance: measured direction of change vs the paper</h2>")
        parts.append(
            "<p class='note'>Direction from the lowest to the highest value of each "
            "factor; ✓/✗ compare with the paper (Huang et al. 2025); changes within one "
            "standard error are marked as such.</p>"
        )
        cols = ["task", "factor", "level", "measured", "exceeds SE", "paper", "agrees"]
        parts.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>")
        for r in table:
            cells = []
            for c in cols:
                v = r[c]
                if c == "agrees":
                    v = "" if v is None else ("✓ agrees" if v else "✗ disagrees")
                elif c == "exceeds SE":
                    v = "yes" if v else "no (within 1 SE)"
                cells.append(f"<td>{html.escape(str(v))}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        ".chart{margin:1em 0}.note{color:#555}table{border-collapse:collapse}"
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


def build_report(registry, out_dir: str | Path, where: str | None = None, progress=None) -> Path:
    """Analyze what the registry holds (reusing every cached pair), write report.html and PNGs."""
    from degeneracy.analysis.analyze import analyze
    from degeneracy.analysis.pairwise_cache import PairwiseCache
    from degeneracy.analysis.summary import classical_mds
    from degeneracy.registry.errors import RegistryError

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = f"({where})" if where else "TRUE"
    with registry.read_query(
        f"SELECT task, count(*), sum(converged::INT), "
        "list(DISTINCT factors->'train'->>'threshold'), "
        "list(DISTINCT factors->'train'->>'max_steps'), "
        f"{', '.join(f'count(DISTINCT {f})' for f in FACTORS)} "
        f"FROM networks_labeled WHERE {base} GROUP BY ALL ORDER BY ALL"
    ) as rel:
        tasks = rel.fetchall()
    if not tasks:
        raise RegistryError("no networks to report on" + (" (check --where)" if where else ""))
    header = [f"Registry: {registry.root}"]
    sections: list[Section] = []
    by_factor: dict[tuple[str, str], list[dict]] = {}
    cache = PairwiseCache(registry)
    for task, n, conv, thresholds, budgets, *distinct in tasks:
        header.append(
            f"{task}: {n} networks, {conv} converged; MSE threshold(s) "
            f"{', '.join(str(t) for t in thresholds if t)}; step budget(s) "
            f"{', '.join(str(b) for b in budgets if b)}. Degeneracy uses converged networks only."
        )
        varying = [f for f, k in zip(FACTORS, distinct) if k > 1] or ["complexity"]
        task_where = f"task = '{task}' AND {base}"
        for factor in varying:
            if progress:
                progress(f"{task}: degeneracy vs {factor}")
            _, rows = analyze(
                registry, ["behavior", "dsa", "pif", "fl"], ["task", factor], task_where
            )
            by_factor[(task, factor)] = rows
            sec = Section(f"{task}: degeneracy versus {FACTORS[factor]}")
            chart = level_chart(rows, factor, LEVELS, f"{task}: behavior, dynamics, weights")
            if chart is not None:
                sec.charts.append((f"{task}_{factor}_levels", chart))
            fl = level_chart(
                rows, factor, {k: (v, v) for k, v in FL.items()}, f"{task}: feature learning"
            )
            if fl is not None:
                sec.charts.append((f"{task}_{factor}_feature_learning", fl))
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
        # training curves of the task's largest ensemble
        with registry.read_query(
            f"SELECT ensemble_id, list(network_id) FROM networks_labeled WHERE {task_where} "
            "GROUP BY ALL ORDER BY count(*) DESC, ensemble_id LIMIT 1"
        ) as rel:
            eid, members = rel.fetchall()[0]
        curves = registry.load_curves(members)
        if curves.height:
            sections.append(
                Section(
                    f"{task}: training curves of ensemble {eid}",
                    [
                        (
                            f"{task}_curves",
                            curves_chart(curves, f"{task}: training loss, one line per seed"),
                        )
                    ],
                )
            )
    cache.flush()
    table = contravariance_rows(by_factor)
    page = render_html("Solution degeneracy report", header, sections, table)
    (out / "report.html").write_text(page)
    for sec in sections:
        for stem, chart in sec.charts:
            chart.save(str(out / f"{stem}.png"), scale_factor=1.5)
    return out / "report.html"
