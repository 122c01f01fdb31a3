"""Every cell's current reading: each independent sample's verdict, and all of them pooled.

    python docs/results/current_reading.py      # writes current.md and current.csv beside it

and prints the condensed table RESULTS.md carries ("The current reading").

The committed results came in sittings, one sample of seeds at a time, and not every sample
has every cell. This script is the one place that puts them together. Per cell it pools the
samples that have the cell and are independent (see NOT_INDEPENDENT) with `pool_runs.py`'s
rule (mean of the samples' values, SE √(Σ SEᵢ²) / k, floors and chance averaged, verdicts by
the package's own rule, a dynamics direction only when it holds at all 9 pooled DSA grid
points), and pools the settling study's points with `pool_settle.py`. It reads only committed
CSVs; no network is trained or measured here.
"""

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

from pool_runs import pooled_grid, pooled_levels, read
from pool_settle import pooled
from pool_settle import read as read_settle

from degeneracy.analysis.grid import grid_verdict
from degeneracy.analysis.report import contravariance_rows, holm_spread

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Sample:
    name: str
    seeds: str
    folders: tuple[str, ...]  # levels.csv, grid.csv, verdicts.csv (cells merged)
    settle: tuple[str, ...]  # folders with settle_verdicts*.csv
    behavior_se: str  # the rule its behavior SE was computed with


SAMPLES = (
    Sample("S1", "0–15, first run", ("reproduce-small",), ("reproduce-small",), "bootstrap"),
    Sample(
        "S2", "0–15, rerun", ("reproduce-small-rerun",), ("reproduce-small-rerun",), "bootstrap"
    ),
    Sample(
        "S3",
        "16–31",
        ("reproduce-small-seeds16-31-spread",),
        ("reproduce-small-seeds16-31",),
        "jackknife",
    ),
    Sample(
        "S4",
        "32–47",
        ("reproduce-small-seeds32-47-spread", "reproduce-small-seeds32-47-rest"),
        (
            "reproduce-small-seeds32-47-ffgamma",
            "reproduce-small-seeds32-47-width",
            "reproduce-small-seeds32-47-rest",
            "reproduce-small-seeds32-47-ffnuc-settle",
        ),
        "jackknife",
    ),
    Sample(
        "S5",
        "48–63 (nuclear norm only)",
        ("reproduce-small-seeds48-63-nuclear",),
        ("reproduce-small-seeds48-63-nuclear",),
        "jackknife",
    ),
)

#: (sample, cell) pairs left out of pooling: the rerun retrained the µP cells at the same
#: kernel, so S2's γ networks are S1's to float precision (RESULTS.md, "A second run")
NOT_INDEPENDENT = {("S1", "flipflop_gamma"), ("S1", "delayed_discrimination_gamma")}

COLUMNS = [
    "cell",
    "level",
    "paper",
    "samples",
    "per sample",
    "measured",
    "difference",
    "2 SE",
    "floor",
    "spread p",
    "z",
    "n",
    "verdict",
    "DSA grid",
    "behavior by the spread test",
    "settling points (agrees / disagrees / not resolved)",
]


def merged(sample: Sample, name: str) -> list[dict]:
    rows: list[dict] = []
    for folder in sample.folders:
        if (HERE / folder / name).exists():
            rows += read(str(HERE / folder), name)
    return rows


def cells_in(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["cell"] for r in rows))


def settle_counts(cell: str, samples: list[Sample]) -> str:
    """The cell's settling points pooled over the samples that studied it."""
    tables = []
    for s in samples:
        rows: dict = {}
        for folder in s.settle:
            if list((HERE / folder).glob("settle_verdicts*.csv")):
                rows.update(read_settle(str(HERE / folder)))
        points = {k: v for k, v in rows.items() if k[0] == cell}
        if points:
            tables.append((s.name, points))
    if not tables:
        return "–"
    keys = [k for k in tables[0][1] if all(k in t for _, t in tables[1:])]
    verdicts = [pooled([t[k] for _, t in tables])[3] for k in keys]
    names = "+".join(n for n, _ in tables)
    return (
        f"{verdicts.count('agrees')} / {verdicts.count('disagrees')} / "
        f"{verdicts.count('not resolved')} of {len(keys)} ({names})"
    )


def spread_reading(cell: str, have: list[Sample], levels: dict) -> dict | None:
    """Behavior's verdict by Brown–Forsythe's test over the samples whose levels.csv has the
    deviations from the median (the older samples' registries are gone, so theirs cannot be
    computed): the verdict row (with the raw p in "_p") and the samples, or None."""
    rows = {s.name: [r for r in levels[s.name] if r["cell"] == cell] for s in have}
    with_dev = [s for s in have if all(r.get("behavior_mad") for r in rows[s.name])]
    if not with_dev:
        return None
    first = rows[with_dev[0].name][0]
    lv = pooled_levels([rows[s.name] for s in with_dev])[cell]
    (v,) = [
        v
        for v in contravariance_rows({(first["task"], first["factor"]): (lv, [])})
        if v["level"] == "behavior"
    ]
    return {**v, "samples": "+".join(s.name for s in with_dev)}


def spread_text(v: dict | None) -> str:
    if v is None:
        return "–"
    return (
        f"{v['verdict']} ({v['measured']} p {v['spread p']}, Holm {v['Holm p']}, "
        f"{v['samples']}, {v['n']})"
    )


def reading() -> list[dict]:
    levels = {s.name: merged(s, "levels.csv") for s in SAMPLES}
    grids = {s.name: merged(s, "grid.csv") for s in SAMPLES}
    verdicts = {
        s.name: {(r["cell"], r["level"]): r["verdict"] for r in merged(s, "verdicts.csv")}
        for s in SAMPLES
    }
    out = []
    spreads: dict[str, dict | None] = {}  # per cell, Holm-adjusted once all cells are read
    for cell in cells_in(levels["S1"]):
        have = [
            s
            for s in SAMPLES
            if cell in cells_in(levels[s.name]) and (s.name, cell) not in NOT_INDEPENDENT
        ]
        lv = pooled_levels([[r for r in levels[s.name] if r["cell"] == cell] for s in have])
        # a sample whose run skipped the grid pools without it
        with_grid = [s for s in have if any(r["cell"] == cell for r in grids[s.name])]
        gr = pooled_grid([[r for r in grids[s.name] if r["cell"] == cell] for s in with_grid])
        first = next(r for r in levels[have[0].name] if r["cell"] == cell)
        task, factor = first["task"], first["factor"]
        grid = {(task, factor): grid_verdict(gr[cell])} if cell in gr else None
        spreads[cell] = spread_reading(cell, have, levels)
        for v in contravariance_rows({(task, factor): (lv[cell], [])}, grid):
            each = [
                f"{s.name} {verdicts[s.name].get((cell, v['level']), '–')}"
                + (" (same networks as S2)" if (s.name, cell) in NOT_INDEPENDENT else "")
                for s in SAMPLES
                if cell in cells_in(levels[s.name])
            ]
            z = abs(float(v["difference"])) / (float(v["2 SE"]) / 2) if float(v["2 SE"]) else None
            out.append(
                {
                    "cell": cell,
                    "level": v["level"],
                    "paper": v["paper"],
                    "samples": "+".join(s.name for s in have),
                    "per sample": "; ".join(each),
                    "measured": v["measured"],
                    "difference": v["difference"],
                    "2 SE": v["2 SE"],
                    "floor": v["floor"],
                    "spread p": v["spread p"],
                    "z": f"{z:.1f}" if z is not None else "",
                    "n": v["n"],
                    "verdict": v["verdict"],
                    "behavior by the spread test": "",
                    "DSA grid": (
                        f"{v['DSA grid']} ({'+'.join(s.name for s in with_grid)})"
                        if v["DSA grid"]
                        else ""
                    ),
                    "settling points (agrees / disagrees / not resolved)": (
                        settle_counts(cell, have) if v["level"] == "dynamics" else ""
                    ),
                }
            )
    # the cells' spread tests are one family: each p beside its Holm adjustment over all
    holm_spread([v for v in spreads.values() if v is not None])
    for r in out:
        if r["level"] == "behavior":
            r["behavior by the spread test"] = spread_text(spreads[r["cell"]])
    return out


def markdown(rows: list[dict]) -> str:
    lines = [
        "# The current reading of every cell, all samples pooled\n",
        "Generated by `python docs/results/current_reading.py` from the committed CSVs; do "
        "not edit by hand.\n",
        "Samples (16 seeds per condition each; hidden 64 unless the cell varies width): "
        + "; ".join(
            f"**{s.name}** seeds {s.seeds} (`{'`, `'.join(s.folders)}`; behavior SE: "
            f"{s.behavior_se})"
            for s in SAMPLES
        )
        + ". S1's γ cells are S2's networks to float precision and are not pooled.\n",
        "Rule: per cell the samples that have it are pooled (mean of values, SE √(Σ SEᵢ²) / k, "
        "floors and chance averaged); a direction counts when |difference| > 2 SE (and, for "
        "dynamics, > the noise floor) and, for dynamics, holds at all 9 pooled DSA grid points. "
        "z = |difference| / SE. Behavior: where every pooled sample's levels.csv has the "
        "deviations from the median, the verdict is Brown–Forsythe's test of equal spread "
        "(spread p < 0.05, the mean absolute deviation moving the std's way), measured "
        "calibrated on groups of one condition (behavior_spread_test.md), with its p adjusted "
        "by Holm's method for the cells tested (the family-wise chance of any false call); "
        "elsewhere it is the "
        "2-SE rule, whose std SE is measured too small (jackknife about 1.25×, bootstrap about "
        "1.5×), so such a verdict with z under 3 may not survive that correction. The settling "
        "column "
        "pools the study's 9 points per cell (probe trials 32/128/512 × rank rules) over the "
        "samples that ran it (`pool_settle.py`).\n",
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
    ]
    lines += ["| " + " | ".join(r[c] for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def condensed(rows: list[dict]) -> str:
    """RESULTS.md's table: pooled verdicts, the spread test and the settling study per row."""
    lines = [
        "| cell | level | paper | samples | pooled: difference (2 SE, floor) | n | verdict | "
        "behavior by the spread test | settling study, pooled (agrees / disagrees / not "
        "resolved) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        floor = f", floor {r['floor']}" if r["floor"] else ""
        grid = r["DSA grid"]
        where = f"; grid {grid.split('(', 1)[1].split(')')[0]}" if "not resolved" in grid else ""
        lines.append(
            f"| {r['cell']} | {r['level']} | {r['paper']} | {r['samples']} | {r['measured']} "
            f"{r['difference']} ({r['2 SE']}{floor}) | {r['n']} | {r['verdict']}{where} | "
            f"{r['behavior by the spread test']} | "
            f"{r['settling points (agrees / disagrees / not resolved)']} |"
        )
    return "\n".join(lines)


def main() -> None:
    rows = reading()
    (HERE / "current.md").write_text(markdown(rows))
    with open(HERE / "current.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} rows -> {HERE / 'current.md'}, {HERE / 'current.csv'}", file=sys.stderr)
    print(condensed(rows))


if __name__ == "__main__":
    main()
