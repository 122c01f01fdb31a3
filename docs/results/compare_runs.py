"""Two reproduce runs of the same scale side by side: verdicts, and per level the change of each
measure in units of the two runs' combined standard error.

    python docs/results/compare_runs.py OLD_DIR NEW_DIR > NEW_DIR/compare.md

Reads each folder's verdicts.csv and levels.csv; writes NEW_DIR/compare_levels.csv.
"""
import csv, math, sys
old_dir, new_dir = sys.argv[1], sys.argv[2]
def rows(d, f):
    with open(f"{d}/{f}") as fh:
        return list(csv.DictReader(fh))
ov = {(r["cell"], r["setting"], r["level"]): r for r in rows(old_dir, "verdicts.csv")}
nv = {(r["cell"], r["setting"], r["level"]): r for r in rows(new_dir, "verdicts.csv")}
print("| cell | level | committed | fresh run | same verdict |")
print("| --- | --- | --- | --- | --- |")
same = tot = 0
for k in ov:
    if k not in nv or k[1] != "all":
        continue
    o, n = ov[k], nv[k]
    a = f"{o['measured']} {o['difference']} (2 SE {o['2 SE']}) {o['verdict']}"
    b = f"{n['measured']} {n['difference']} (2 SE {n['2 SE']}) {n['verdict']}"
    s = o["verdict"] == n["verdict"]
    same += s; tot += 1
    print(f"| {k[0]} | {k[2]} | {a} | {b} | {'yes' if s else '**no**'} |")
print(f"\nsame verdict: {same}/{tot}\n")
ol = {(r["cell"], r["level"], r["setting"]): r for r in rows(old_dir, "levels.csv")}
nl = {(r["cell"], r["level"], r["setting"]): r for r in rows(new_dir, "levels.csv")}
print("| measure | levels | median abs(z) | max abs(z) | share abs(z) > 2 |")
print("| --- | --- | --- | --- | --- |")
out = []
for m in ["behavior", "dynamics", "weights", "kernel_alignment", "weight_change", "median_steps", "converged"]:
    zs = []
    for k in ol:
        if k not in nl:
            continue
        try:
            a, b = float(ol[k][m]), float(nl[k][m])
        except ValueError:
            continue
        se = ol[k].get(f"{m}_se"), nl[k].get(f"{m}_se")
        if se[0] and se[1]:
            s = math.hypot(float(se[0]), float(se[1]))
            z = (b - a) / s if s > 0 else float("nan")
            zs.append(z)
            out.append((k, m, a, b, z))
        else:
            out.append((k, m, a, b, None))
    if zs:
        az = sorted(abs(z) for z in zs)
        print(f"| {m} | {len(zs)} | {az[len(az)//2]:.2f} | {az[-1]:.2f} | {sum(z > 2 for z in az)}/{len(az)} |")
with open(f"{new_dir}/compare_levels.csv", "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["cell", "level", "setting", "measure", "committed", "fresh", "z"])
    for (c, l, s), m, a, b, z in out:
        w.writerow([c, l, s, m, a, b, "" if z is None else f"{z:.3f}"])
