"""The dynamics settling study pooled over independent samples: each point on twice the networks.

    python docs/results/pool_settle.py DIR_A DIR_B [...] > OUT.md

Each DIR holds the `settle_verdicts*.csv` that `degeneracy reproduce --settle` wrote for one
sample of seeds (several files per folder are read as one table, later files winning: a run
split into parts). Per point (cell, probe trials, rank rule) the rule of `pool_runs.py`, fixed
before these samples were pooled: the difference between the lowest and highest level is the
mean of the samples' differences, its 2 SE √(Σ 2SEᵢ²) / k, its noise floor the mean of the
samples' floors; the direction is resolved when |difference| exceeds both, and agrees when it
is the paper's. A point is pooled when every sample has it. At the share rules the rank is
the one keeping 95 % of every level's variance in that sample, so it may differ between samples
(shown as rank/rank): the rule is the setting, as in the per-sample verdicts.
"""

import csv
import sys
from pathlib import Path

from pool_runs import pool_point

from degeneracy.analysis.report import agreement

KEY = ("cell", "trials", "rank_rule")


def read(folder: str) -> dict[tuple, dict]:
    rows: dict[tuple, dict] = {}
    files = sorted(Path(folder).glob("settle_verdicts*.csv"))
    if not files:
        raise SystemExit(f"no settle_verdicts*.csv in {folder}")
    for path in files:
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                rows[tuple(r[k] for k in KEY)] = r
    return rows


def pooled(rows: list[dict]) -> tuple[float, float, float, str]:
    diff, two_se, floor, ok = pool_point(
        [float(r["difference"]) for r in rows],
        [float(r["2 SE"]) for r in rows],
        [float(r["floor"]) for r in rows],
    )
    arrow = "↑" if diff > 0 else "↓"
    return diff, two_se, floor, agreement("resolved" if ok else "", arrow, rows[0]["paper"])


def main(folders: list[str]) -> None:
    samples = [read(f) for f in folders]
    keys = [k for k in samples[0] if all(k in s for s in samples[1:])]
    print("# The settling study pooled over independent samples\n")
    print(__doc__.split("\n\n", 2)[2].strip() + "\n")
    print("Samples: " + ", ".join(f"`{f}`" for f in folders) + ".\n")
    head = " | ".join(f"sample {i + 1}" for i in range(len(samples)))
    print(f"| cell | trials | rank rule | rank | paper | {head} | pooled (2 SE, floor) | verdict |")
    print(
        "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in samples) + " | --- | --- |"
    )
    counts: dict[str, dict[str, int]] = {}
    for key in sorted(keys, key=lambda k: (k[0], int(k[1]), k[2])):
        rows = [s[key] for s in samples]
        rank = "/".join(r["rank"] for r in rows)  # the share rule's rank is the data's
        diff, two_se, floor, verdict = pooled(rows)
        each = " | ".join(f"{float(r['difference']):+.4f} {r['agrees']}" for r in rows)
        print(
            f"| {key[0]} | {key[1]} | {key[2]} | {rank} | {rows[0]['paper']} | "
            f"{each} | {diff:+.4f} ({two_se:.4f}, {floor:.4f}) | {verdict} |"
        )
        c = counts.setdefault(key[0], {})
        c[verdict] = c.get(verdict, 0) + 1
    print("\nPer cell, pooled verdicts over its points:\n")
    print("| cell | agrees | disagrees | not resolved |")
    print("| --- | --- | --- | --- |")
    for cell, c in sorted(counts.items()):
        print(
            f"| {cell} | {c.get('agrees', 0)} | {c.get('disagrees', 0)} | "
            f"{c.get('not resolved', 0)} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
