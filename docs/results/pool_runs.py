"""Independent samples of the same reproduce scale, pooled: verdicts on twice the networks.

    python docs/results/pool_runs.py DIR_A DIR_B [...] > OUT.md

Each DIR is a folder `degeneracy reproduce` wrote (levels.csv, grid.csv) for the same scale
and code but disjoint seeds (`--first-seed`), so the samples are independent. The rule, fixed
before the third sample was seen: per cell and level, each measure's pooled value is the mean
of the samples' values and its standard error √(Σ SEᵢ²) / k (k samples; equal weights, not
inverse-variance ones, which would favour whichever sample's noisy SE came out small); the
noise floor and the chance level are pooled the same way; n is the sum. The verdicts then come
from the package's own rule (`report.contravariance_rows`: 2 SE, floor, at least 3 networks
at each end), and a dynamics direction must hold at all 9 points of the DSA grid, each point
pooled the same way (its low and high ends averaged, its 2 SE as √(Σ 2SEᵢ²) / k, its floor
averaged). Behavior's verdict is the package's test of equal spread (Brown–Forsythe) on the
samples' deviations from their own medians taken together: each level's mean deviation and its
SE are those of the union of the samples' deviations (exact from each sample's mean, SE and n);
where a sample's levels.csv predates the deviations, behavior falls back to the 2-SE rule.
Prints, as markdown, each sample's verdict beside the pooled one.
"""

import csv
import math
import sys

from degeneracy.analysis.grid import grid_verdict
from degeneracy.analysis.report import contravariance_rows

#: levels.csv column -> analyze's name (what contravariance_rows reads)
MEASURES = {
    "behavior": "behavior",
    "dynamics": "dsa",
    "dynamics_floor": "dsa_floor",
    "weights": "pif",
    "weights_chance": "pif_chance",
}


def read(folder: str, name: str) -> list[dict]:
    with open(f"{folder}/{name}", newline="") as fh:
        return list(csv.DictReader(fh))


def number(text: str):
    try:
        return int(text)
    except ValueError:
        return float(text)


def mean_and_se(values: list[float], ses: list[float]) -> tuple[float, float]:
    """The mean of k samples' values, and its standard error √(Σ SEᵢ²) / k."""
    k = len(values)
    return sum(values) / k, math.sqrt(sum(se**2 for se in ses)) / k


def pool_point(
    diffs: list[float], two_ses: list[float], floors: list[float]
) -> tuple[float, float, float, bool]:
    """One point's difference pooled over k samples: (mean difference, 2 SE √(Σ 2SEᵢ²) / k,
    mean floor, resolved: |difference| beyond both)."""
    diff, two_se = mean_and_se(diffs, two_ses)
    floor = sum(floors) / len(floors)
    return diff, two_se, floor, abs(diff) > two_se and abs(diff) > floor


def pool_values(values: list[str], ses: list[str] | None) -> tuple[float | None, float | None]:
    """The pooled value and its SE (None where a sample lacks one); a level measured in only
    some samples is not pooled."""
    if any(v == "" for v in values):
        return None, None
    if ses is None or any(se == "" for se in ses):
        return sum(map(float, values)) / len(values), None
    return mean_and_se(list(map(float, values)), list(map(float, ses)))


def union_mean_and_se(
    means: list[str], ses: list[str], ns: list[int]
) -> tuple[float | None, float | None]:
    """The mean of k samples' values taken together, and its SE (sd of the union / √N), from
    each sample's mean, SE of the mean (sd / √n) and n; None if a sample lacks them."""
    if any(v in ("", None) for v in [*means, *ses]):
        return None, None
    m, se = [float(v) for v in means], [float(v) for v in ses]
    total = sum(ns)
    mean = sum(n * x for n, x in zip(ns, m)) / total
    within = sum((n - 1) * (e * math.sqrt(n)) ** 2 for n, e in zip(ns, se))
    between = sum(n * (x - mean) ** 2 for n, x in zip(ns, m))
    return mean, math.sqrt((within + between) / (total - 1)) / math.sqrt(total)


def pooled_levels(samples: list[list[dict]]) -> dict[str, list[dict]]:
    """Per cell: one row per level in analyze's naming, pooled over the samples."""
    keyed = [{(r["cell"], r["level"]): r for r in rows} for rows in samples]
    out: dict[str, list[dict]] = {}
    for key, first in keyed[0].items():
        rows = [k.get(key) for k in keyed]
        if any(r is None for r in rows):
            continue
        row = {"task": first["task"], first["factor"]: number(first["level"])}
        row["n"] = sum(int(r["n"]) for r in rows)
        for col, name in MEASURES.items():
            se_col = f"{col}_se"
            ses = [r[se_col] for r in rows] if se_col in first else None
            value, se = pool_values([r[col] for r in rows], ses)
            row[name], row[f"{name}_se"] = value, se
        row["behavior_mad"], row["behavior_mad_se"] = union_mean_and_se(
            [r.get("behavior_mad") for r in rows],
            [r.get("behavior_mad_se") for r in rows],
            [int(r.get("behavior_n") or r["n"]) for r in rows],  # networks with an OOD loss
        )
        if all(r.get("behavior_n") for r in rows):
            row["behavior_n"] = sum(int(r["behavior_n"]) for r in rows)
        out.setdefault(key[0], []).append(row)
    return out


def pooled_grid(samples: list[list[dict]]) -> dict[str, list[dict]]:
    """Per cell: the DSA grid's points, each pooled over the samples."""
    keyed = [{(r["cell"], r["n_delays"], r["rank"], r["setting"]): r for r in s} for s in samples]
    out: dict[str, list[dict]] = {}
    for key in keyed[0]:
        rows = [k.get(key) for k in keyed]
        if any(r is None for r in rows):
            continue
        point = {"setting": key[3]}
        if any(r["verdict"] == "n/a" or r["low"] == "" or r["high"] == "" for r in rows):
            point.update(measured="", verdict="n/a")
        else:
            diff, _, _, ok = pool_point(
                [float(r["high"]) - float(r["low"]) for r in rows],
                [float(r["2 SE"]) for r in rows],
                [float(r["floor"] or 0) for r in rows],
            )
            arrow = "↑" if diff > 0 else "↓" if diff < 0 else "→"
            point.update(measured=arrow, verdict="resolved" if ok else "not resolved")
        out.setdefault(key[0], []).append(point)
    return out


def main() -> None:
    dirs = sys.argv[1:]
    if len(dirs) < 2:
        sys.exit("usage: pool_runs.py DIR_A DIR_B [...]")
    levels = pooled_levels([read(d, "levels.csv") for d in dirs])
    grids = pooled_grid([read(d, "grid.csv") for d in dirs])
    verdicts = [{(r["cell"], r["level"]): r for r in read(d, "verdicts.csv")} for d in dirs]
    first = {r["cell"]: r for r in read(dirs[0], "levels.csv")}
    head = " | ".join(d.rstrip("/").rsplit("/", 1)[-1] for d in dirs)
    print(f"| cell | level | {head} | pooled: measured, difference (2 SE, floor), n | verdict |")
    print("| --- | --- | " + "--- | " * len(dirs) + "--- | --- |")
    for cell, rows in levels.items():
        factor = first[cell]["factor"]
        task = rows[0]["task"]
        grid = {(task, factor): grid_verdict(grids[cell])} if cell in grids else None
        for v in contravariance_rows({(task, factor): (rows, [])}, grid):
            each = [d.get((cell, v["level"]), {}).get("verdict", "–") for d in verdicts]
            floor = f", floor {v['floor']}" if v["floor"] else ""
            floor += f", spread p {v['spread p']}" if v["spread p"] else ""
            print(
                f"| {cell} | {v['level']} | {' | '.join(each)} | {v['measured']} "
                f"{v['difference']} (2 SE {v['2 SE']}{floor}), {v['n']} | {v['verdict']}"
                + (f"; grid: {v['DSA grid']}" if v["DSA grid"] else "")
                + " |"
            )


if __name__ == "__main__":
    main()
