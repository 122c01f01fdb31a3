"""Training several ensembles at once on one machine, with an explicit CPU-thread budget.

Worker processes only compute (`train_ensemble`); the calling process registers each ensemble
as soon as it comes back, so the catalog keeps one writer and a crash or Ctrl-C loses at most
the ensembles still in flight. Each worker runs torch with `threads` threads: on 2 cores, two
processes at default threads run 20–50× slower than one (DESIGN.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context

from degeneracy.training.checkpoint import Checkpointing
from degeneracy.training.trainer import Experiment, NetworkRecord, train_ensemble


def thread_budget(workers: int, threads: int | None = None) -> int:
    """Torch threads per worker: `threads`, else the machine's cores shared evenly (>= 1)."""
    if threads is not None:
        return max(1, threads)
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def _train(
    exp: Experiment, seeds: list[int], device: str, checkpoint: Checkpointing | None = None
) -> list[NetworkRecord]:
    return train_ensemble(exp, seeds, device=device, checkpoint=checkpoint)


def train_many(
    work: list[tuple[Experiment, list[int]]],
    workers: int,
    threads: int,
    device: str = "cpu",
    checkpoints: list[Checkpointing | None] | None = None,
) -> Iterator[tuple[int, list[NetworkRecord]]]:
    """(index into `work`, records) for each ensemble, in the order they finish.

    At most `workers` ensembles train at once, each in its own process with `threads` torch
    threads. Leaving the loop early (an exception, Ctrl-C) cancels what has not started."""
    ctx = get_context("spawn")  # fork would copy the parent's torch thread pools and locks
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(threads,))
    finished = False
    try:
        todo = list(enumerate(work))
        running: dict[Future, int] = {}
        while todo or running:
            while todo and len(running) < workers:
                i, (exp, seeds) = todo.pop(0)
                cp = checkpoints[i] if checkpoints else None
                running[pool.submit(_train, exp, seeds, device, cp)] = i
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                i = running.pop(fut)
                yield i, fut.result()
        finished = True
    finally:
        if not finished:  # stop ensembles in flight too, not only the queued ones
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
        pool.shutdown(wait=finished, cancel_futures=True)
