"""What a `reproduce --scale small` run costs on this machine: the steps each stored network
actually trained (early stops included) times the per-step cost measured now, scheduled onto
the workers longest first.

    python bench/reproduce_cost.py REGISTRY [--scale small] [--workers 2] [--only CELL]

The conditions of the scale's cells that are stored in REGISTRY are costed (the rest are left
out and counted). A stacked ensemble steps only its still-active networks (`train_ensemble`
drops a network once it stops), so a condition's cost is the sum over its training of the cost
of one step at the number of networks still active. That cost is measured at the full ensemble
(K) and at K/4 networks, a + b·k fitted through the two; each timing is the difference between a
1-step and a 9-step run, the median of 3 (`reproduce.run.step_seconds`, the plan's own timer;
one run of each moved by up to ±60 % between runs on this VM). Printed per condition: networks,
the longest and the summed steps, seconds per step at K and at K/4, and minutes two ways: the
ensemble stepped at full K until its last network stops (the earlier, pessimistic estimate) and
with the active set shrinking. Then the whole run's training wall time with W workers of 1
thread, both ways, and with the shrinking set in plan order (how `reproduce` queued ensembles
before d7d143f). Run it on an otherwise idle machine: the per-step cost is timed.
"""

from __future__ import annotations

import argparse
import heapq
import os

import torch

from degeneracy import api
from degeneracy.registry.ids import network_id
from degeneracy.reproduce.run import make_plan, step_seconds


def shrinking_cost(steps: list[int], a: float, b: float) -> float:
    """Seconds to train networks that stop after `steps` (each), stacked, when one step of k
    active networks costs a + b·k: Σ_j (s_j − s_{j−1})·(a + b·k_j), k_j the networks still
    active between the (j−1)-th and j-th stop."""
    total, prev, k = 0.0, 0, len(steps)
    for s in sorted(steps):
        total += (s - prev) * max(a + b * k, 0.0)
        prev, k = s, k - 1
    return total


def schedule(costs: list[float], workers: int, longest_first: bool = True) -> float:
    """Wall time of `costs` on `workers` workers, each taken by the first worker free: longest
    first (what `reproduce` does since d7d143f) or in the given (plan) order (before)."""
    loads = [0.0] * workers
    for cost in sorted(costs, reverse=True) if longest_first else costs:
        heapq.heapreplace(loads, loads[0] + cost)
    return max(loads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("registry")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", action="append", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    registry = api.open(args.registry)
    plan = make_plan(None, args.scale, args.only)  # every condition, stored or not
    rows, missing, timed = [], 0, {}
    for job, _ in plan.work:
        exp = job.experiment
        ids = ", ".join(f"'{network_id(exp.condition().to_dict(), s)}'" for s in job.seeds)
        steps = [
            int(s)
            for (s,) in registry.sql(
                f"SELECT steps FROM networks WHERE network_id IN ({ids})"
            ).iter_rows()
        ]
        if len(steps) < len(job.seeds):
            missing += 1
            continue
        k = len(job.seeds)
        key = (exp.task.name, str(exp.task.params()), exp.hidden, exp.regime, k)
        if key not in timed:
            print(f"timing {exp.task.name} hidden {exp.hidden} {exp.regime} x {k} and {k // 4}")
            full, quarter = step_seconds(exp, job.seeds), step_seconds(exp, job.seeds[: k // 4])
            b = (full - quarter) / (k - k // 4)
            timed[key] = (full, quarter, full - b * k, b)
        full, quarter, a, b = timed[key]
        rows.append((exp, k, steps, full, quarter, max(steps) * full, shrinking_cost(steps, a, b)))
    print(
        f"{'networks':>8s} {'longest':>7s} {'summed':>7s} {'s/step':>7s} {'at K/4':>7s} "
        f"{'min':>6s} {'shrink':>6s}  condition"
    )
    for exp, k, steps, full, quarter, whole, shrink in rows:
        label = (
            f"{exp.task.name} {exp.task.params()} hidden {exp.hidden} {exp.regime} "
            f"γ {exp.gamma} l1 {exp.l1} nuclear {exp.nuclear}"
        )
        print(
            f"{k:8d} {max(steps):7d} {sum(steps):7d} {full:7.3f} {quarter:7.3f} "
            f"{whole / 60:6.1f} {shrink / 60:6.1f}  {label}"
        )
    at_full = schedule([r[5] for r in rows], args.workers)
    shrunk = schedule([r[6] for r in rows], args.workers)
    in_order = schedule([r[6] for r in rows], args.workers, longest_first=False)
    print(
        f"{len(rows)} conditions ({missing} not stored, left out); training wall time with "
        f"{args.workers} workers: {shrunk / 3600:.2f} h with the active set shrinking, longest "
        f"first ({in_order / 3600:.2f} h in plan order; {at_full / 3600:.2f} h stepping every "
        f"ensemble at full size until its last network stops, longest first)"
    )


if __name__ == "__main__":
    main()
