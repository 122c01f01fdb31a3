"""DSA parameter sensitivity per task: how the group values move with `n_delays` and `rank`.

    python bench/dsa_sensitivity.py --registry PATH [--task T ...] [--delays 5 10 20]
                                    [--ranks 5 10 20] [--all]

For each task in the registry and each (n_delays, rank): the mean pairwise DSA distance of every
complexity group (through `mean_pairwise` in SQL, exactly as users query it, parameters given
explicitly so per-task defaults do not interfere), and how well the operator describes the
networks: the share of delay-embedding variance the rank keeps and the one-step R² of the fitted
operator, averaged over the task's networks. Converged networks only unless --all. Prints one
Markdown table per task (docs/dsa_sensitivity.md holds the measured tables). Nothing asserted.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from degeneracy.analysis import dsa
from degeneracy.registry.store import Registry


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry", required=True)
    ap.add_argument("--task", nargs="*")
    ap.add_argument("--delays", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--ranks", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--all", action="store_true", help="include networks that did not converge")
    args = ap.parse_args()
    reg = Registry.open(args.registry)
    where = "" if args.all else "WHERE converged"
    tasks = args.task or reg.sql(f"SELECT DISTINCT task FROM networks {where} ORDER BY 1")["task"]
    for task in tasks:
        cond = f"task = '{task}'" + ("" if args.all else " AND converged")
        groups = reg.sql(
            f"SELECT complexity, count(*) AS n FROM networks WHERE {cond} GROUP BY 1 ORDER BY 1"
        )
        ids = reg.sql(f"SELECT network_id FROM networks WHERE {cond} ORDER BY 1")["network_id"]
        trajs = reg.load_trajectories(list(ids), "id")
        sizes = ", ".join(f"{c}: {n}" for c, n in zip(groups["complexity"], groups["n"]))
        print(f"\n### {task} (networks per complexity: {sizes})\n")
        cols = " | ".join(f"complexity {c}" for c in groups["complexity"])
        print(f"| n_delays | rank | variance kept | one-step R² | {cols} | seconds |")
        print("| --- " * (5 + len(groups)) + "|")
        for d in args.delays:
            for r in args.ranks:
                p = dsa.DSAParams(n_delays=d, rank=r)
                quality = np.array([dsa.fit_quality(t, p) for t in trajs])
                params = json.dumps({"n_delays": d, "rank": r})
                t0 = time.perf_counter()
                vals = reg.sql(
                    f"SELECT complexity, mean_pairwise('dsa', list(network_id), '{params}') AS v "
                    f"FROM networks WHERE {cond} GROUP BY 1 ORDER BY 1"
                )["v"]
                secs = time.perf_counter() - t0
                cells = " | ".join("–" if v is None else f"{v:.3f}" for v in vals)
                print(
                    f"| {d} | {r} | {quality[:, 0].mean():.3f} | {quality[:, 1].mean():.3f} | "
                    f"{cells} | {secs:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
