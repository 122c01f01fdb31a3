"""Ensembles per hour on this machine: one process with all cores' threads vs N worker
processes with cores/N threads each (`training.executor.train_many`), same ensembles.

    python bench/workers.py [--ensembles 4] [--seeds 8] [--hidden 64] [--steps 256]

Each ensemble is a flip-flop condition (2 channels) trained for a fixed number of steps (the
threshold is unreachable, so every run does the same work). Prints wall seconds, ensembles per
hour and the ratio of the two layouts. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from degeneracy.tasks import make_task
from degeneracy.training.executor import train_many
from degeneracy.training.trainer import Experiment, TrainConfig, train_ensemble


def work(args) -> list[tuple[Experiment, list[int]]]:
    cfg = TrainConfig(steps_per_epoch=args.steps, max_epochs=1, threshold=1e-12)
    return [
        (
            Experiment(make_task("flipflop", 2), args.hidden, train=cfg),
            list(range(e, e + args.seeds)),
        )
        for e in range(0, args.ensembles * args.seeds, args.seeds)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ensembles", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    jobs = work(args)

    torch.set_num_threads(cores)
    t0 = time.perf_counter()
    for exp, seeds in jobs:
        train_ensemble(exp, seeds)
    one = time.perf_counter() - t0

    per = max(1, cores // args.workers)
    t0 = time.perf_counter()
    got = list(train_many(jobs, args.workers, per))
    many = time.perf_counter() - t0
    assert len(got) == len(jobs)

    n = len(jobs)
    print(
        f"{n} ensembles x {args.seeds} seeds, hidden {args.hidden}, {args.steps} steps, "
        f"{cores} cores"
    )
    print(f"1 process x {cores} threads: {one:.1f} s ({3600 * n / one:.0f} ensembles/hour)")
    print(
        f"{args.workers} processes x {per} thread(s): {many:.1f} s "
        f"({3600 * n / many:.0f} ensembles/hour, process start-up included)"
    )
    print(f"ratio (workers / one process): {one / many:.2f}x")


if __name__ == "__main__":
    main()
