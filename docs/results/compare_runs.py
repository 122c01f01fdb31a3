"""Two reproduce runs of the same scale side by side: verdicts, and per level the change of each
measure in units of the two runs' combined standard error.

    python docs/results/compare_runs.py OLD_DIR NEW_DIR > NEW_DIR/compare.md

Reads each folder's verdicts.csv and levels.csv (as `degeneracy reproduce` writes them);
prints markdown tables and writes NEW_DIR/compare_levels.csv (one row per cell, level and
measure: both values and z, empty where a measure has no SE).
"""

import csv
import math
import sys

MEASURES = ["behavior", "dynamics", "weights", "kernel_alignment", "weight_change"]
UNSCORED = ["median_steps", "converged"]


def keyed(folder: str, name: str, *fields: str) -> dict[tuple, dict]:
    """The rows of FOLDER/NAME, by the values of `fields`."""
    with open(f"{folder}/{name}") as fh:
        return {tuple(r[f] for f in fields): r for r in csv.DictReader(fh)}


def verdict_table(old_dir: str, new_dir: str) -> None:
    old, new = (keyed(d, "verdicts.csv", "cell", "setting", "level") for d in (old_dir, new_dir))
    print("| cell | level | committed | fresh run | same verdict |")
    print("| --- | --- | --- | --- | --- |")
    same = total = 0
    for k, o in old.items():
        if k not in new or k[1] != "all":
            continue
        n = new[k]
        cells = [
            f"{r['measured']} {r['difference']} (2 SE {r['2 SE']}) {r['verdict']}" for r in (o, n)
        ]
        agree = o["verdict"] == n["verdict"]
        same, total = same + agree, total + 1
        print(f"| {k[0]} | {k[2]} | {cells[0]} | {cells[1]} | {'yes' if agree else '**no**'} |")
    print(f"\nsame verdict: {same}/{total}\n")


def level_changes(old_dir: str, new_dir: str) -> list[tuple]:
    old, new = (keyed(d, "levels.csv", "cell", "level", "setting") for d in (old_dir, new_dir))
    out = []
    for k, o in old.items():
        if k not in new:
            continue
        for m in MEASURES + UNSCORED:
            try:
                a, b = float(o[m]), float(new[k][m])
            except ValueError:  # empty: not measured at this level
                continue
            z = None
            if m in MEASURES and o[f"{m}_se"] and new[k][f"{m}_se"]:
                se = math.hypot(float(o[f"{m}_se"]), float(new[k][f"{m}_se"]))
                z = (b - a) / se if se > 0 else None
            out.append((*k, m, a, b, z))
    return out


def main() -> None:
    old_dir, new_dir = sys.argv[1], sys.argv[2]
    verdict_table(old_dir, new_dir)
    changes = level_changes(old_dir, new_dir)
    print("| measure | levels | median abs(z) | max abs(z) | share abs(z) > 2 |")
    print("| --- | --- | --- | --- | --- |")
    for m in MEASURES:
        az = sorted(abs(c[-1]) for c in changes if c[3] == m and c[-1] is not None)
        if az:
            big = sum(z > 2 for z in az)
            print(f"| {m} | {len(az)} | {az[len(az) // 2]:.2f} | {az[-1]:.2f} | {big}/{len(az)} |")
    with open(f"{new_dir}/compare_levels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["cell", "level", "setting", "measure", "committed", "fresh", "z"])
        for cell, level, setting, m, a, b, z in changes:
            w.writerow([cell, level, setting, m, a, b, "" if z is None else f"{z:.3f}"])


if __name__ == "__main__":
    main()
