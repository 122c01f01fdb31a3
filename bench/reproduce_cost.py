"""What a `reproduce --scale small` run costs on this machine: the steps each stored ensemble
actually trained (early stops included) times the per-step cost measured now, scheduled onto
the workers longest first.

    python bench/reproduce_cost.py REGISTRY [--scale small] [--workers 2]

Every condition of the scale's cells must be trained in REGISTRY (a finished reproduction).
Prints per condition: networks, steps trained (the ensemble's longest network: a stacked
ensemble runs until its last network stops), seconds per step, and minutes; then the whole
run's training wall time with W workers of 1 thread, and the upper bound the plan prints (every
ensemble its whole budget). Run it on an otherwise idle machine: the per-step cost is timed.
"""

from __future__ import annotations

import argparse
import heapq
import os

import torch

from degeneracy import api
from degeneracy.registry.ids import network_id
from degeneracy.reproduce.run import make_plan, measure_step_seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("registry")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    registry = api.open(args.registry)
    plan = make_plan(None, args.scale)  # every condition "to train": time them all
    measure_step_seconds(plan, "cpu", say=print)
    rows, missing = [], 0
    for i, (job, _) in enumerate(plan.work):
        exp = job.experiment
        ids = ", ".join(f"'{network_id(exp.condition().to_dict(), s)}'" for s in job.seeds)
        steps = registry.sql(
            f"SELECT max(steps) AS s, count(*) AS n FROM networks WHERE network_id IN ({ids})"
        )
        n = int(steps["n"][0])
        if n < len(job.seeds):
            missing += 1
            continue
        s = int(steps["s"][0])
        rows.append((exp, n, s, plan.step_seconds[i], exp.train.max_steps))
    print(f"{'networks':>8s} {'steps':>7s} {'s/step':>7s} {'min':>6s}  condition")
    for exp, n, s, sec, _ in rows:
        label = (
            f"{exp.task.name} {exp.task.params()} hidden {exp.hidden} {exp.regime} "
            f"γ {exp.gamma} l1 {exp.l1} nuclear {exp.nuclear}"
        )
        print(f"{n:8d} {s:7d} {sec:7.3f} {s * sec / 60:6.1f}  {label}")
    loads = [0.0] * args.workers
    for cost in sorted((s * sec for _, _, s, sec, _ in rows), reverse=True):
        heapq.heapreplace(loads, loads[0] + cost)
    bound = sum(b * sec for _, _, _, sec, b in rows) / args.workers
    print(
        f"{len(rows)} conditions ({missing} not stored, left out); training wall time with "
        f"{args.workers} workers: {max(loads) / 3600:.2f} h (upper bound, whole budgets: "
        f"{bound / 3600:.2f} h)"
    )


if __name__ == "__main__":
    main()
