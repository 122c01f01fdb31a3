"""DSA's Newton batches split over worker processes on this machine: the analysis on every core.

A group's alignment is a few batches of independent Newton problems (`dsa.Solver`: each
problem's result depends on its own problem alone), and at rank 20 these batches are most of an
analysis's time. One process with two torch threads barely uses the second core on them (a
problem is a 20 × 20 matrix; the batched products are too small to split well), so a
`NewtonPool` keeps `workers` processes of one thread each, alive for the whole analysis (a
process costs ~2 s to start: importing torch), and deals every batch out to them, problem p to
worker p mod `workers` (the problems' iteration counts vary with their start, which is laid out
in blocks along the batch). The composition rounds and every other step stay in the calling
process, so the alignment, and every distance, is the single-process one: the same problems
with the same starts, each solved alone (tested equal).

`PoolPairs` is the `PairwiseCache` executor that uses one: DSA through the pool, every other
metric in this process as before (PIF runs its own process pool).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from degeneracy.registry.errors import RegistryError

#: batches smaller than this are solved in the calling process (shipping them costs more)
MIN_PROBLEMS = 32


def _init_worker() -> None:
    torch.set_num_threads(1)


def _newton(a, b, c0, tol, max_iter, max_cg):
    """`maximize` on numpy arrays (plain pickles: no shared-memory tensors between processes)."""
    from degeneracy.analysis.dsa import maximize

    c, g, it = maximize(*(torch.from_numpy(x) for x in (a, b, c0)), tol, max_iter, max_cg)
    return c.numpy(), g.numpy(), it.numpy()


class NewtonPool:
    """`workers` processes of one torch thread each that solve DSA Newton batches (module doc).

    Use as a context manager (or call `close`): the processes start on the first batch that is
    shipped and stop on exit."""

    def __init__(self, workers: int):
        if workers < 2:
            raise RegistryError(f"a Newton pool needs at least 2 workers, got {workers}")
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> NewtonPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def solver(self, params):
        """A `dsa.Solver` with `params`' stopping rule, solving on the pool's processes."""
        from degeneracy.analysis.dsa import maximize

        def solve(a, b, c0):
            if len(a) < MIN_PROBLEMS or a.device.type != "cpu":
                return maximize(a, b, c0, params.tol, params.max_iter, params.max_cg)
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=mp.get_context("spawn"), initializer=_init_worker
                )
            parts = [slice(w, None, self.workers) for w in range(self.workers)]
            args = (params.tol, params.max_iter, params.max_cg)
            futures = [
                self._pool.submit(_newton, *(x[s].numpy().copy() for x in (a, b, c0)), *args)
                for s in parts
            ]
            c = torch.empty_like(c0)
            g = a.new_empty(len(a))
            it = torch.empty(len(a), dtype=torch.int64)
            for s, f in zip(parts, futures):
                cs, gs, its = f.result()
                c[s], g[s], it[s] = (
                    torch.from_numpy(cs),
                    torch.from_numpy(gs),
                    torch.from_numpy(its),
                )
            return c, g, it

        return solve


class PoolPairs:
    """A `PairwiseCache` executor: DSA's Newton batches on a `NewtonPool`, the other metrics'
    pairs in this process."""

    def __init__(self, pool: NewtonPool):
        self.pool = pool

    def __enter__(self) -> PoolPairs:
        return self

    def __exit__(self, *exc) -> None:
        self.pool.close()

    def compute(self, metric: str, items: list, idx: np.ndarray, params) -> Iterator[tuple]:
        from degeneracy.analysis.metrics import METRICS

        pairs = METRICS[metric].pairs
        assert pairs is not None  # only pairwise metrics reach the cache
        if METRICS[metric].split:
            yield np.arange(len(idx)), pairs(items, idx, params)
        else:
            yield np.arange(len(idx)), pairs(items, idx, params, self.pool.solver(params))
