"""Pairwise distances as Ray tasks: the missing pairs of a matrix, computed in chunks.

`PairwiseCache.matrix` finds the pairs the cache lacks and prepares each network involved (DSA's
operator fit, once per network, on the driver: it is linear in the networks, the pairs are
quadratic). With a `RayPairs` executor those pairs are then split into chunks, each one Ray task
running the metric's batched `pairs` on its chunk; the driver writes every chunk to the
`pairwise` table as it comes back (the catalog keeps one writer), so a run that stops (Ctrl-C, a
crash, a lost cluster) keeps every finished chunk and a rerun computes only the rest.

A chunk is a contiguous run of the missing pairs (a, b), a < b, taken in column order: every
pair of network b with the networks before it, then of the next b. Per-pair metrics (PIF, CKA,
Procrustes, SVCCA, the eigenvalue Wasserstein) give the same value whatever the chunking.

DSA is not split by pairs: its composition rounds reseed pair (i, j) from C_ik C_kj through
every network k, so a chunk would route only through its own networks and could end at another
local optimum. Its bookkeeping stays on the driver and only its Newton batches (independent
problems: each result depends on its own problem alone) go to Ray, in chunks of
`chunk_pairs` × 8 problems (8 starts per pair): the alignment is the local executor's (tested).
Its pairs reach the cache when the matrix is complete.

Each task asks Ray for `threads` CPUs (default 1) and runs torch, and PIF's process pool, on
exactly that many. The prepared networks of a matrix go to the object store once (`ray.put`) and
every task reads them from there. Ray retries a task whose worker dies (`RETRIES`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import numpy as np

from degeneracy.ray_session import as_completed, check_executor, require_ray, start
from degeneracy.registry.errors import RegistryError

#: pairs per task. At the paper's scale (hidden 128, DSA rank 10) a DSA pair takes ~10 ms and a
#: PIF pair ~65 ms (README, Performance), so a chunk runs ~1.3 s (DSA) to ~8 s (PIF): Ray's
#: per-task cost (scheduling, a result of 128 floats, a few ms) stays under 1 %, and a group of
#: 50 networks (1,225 pairs) still gives 10 tasks to spread over a cluster. DSA's Newton tasks
#: take `CHUNK_PAIRS` × 8 problems (8 starts per pair), the same work as a chunk of pairs.
CHUNK_PAIRS = 128
RETRIES = 3  # a task whose worker process dies (OOM, a lost node) runs again


def chunk_rows(idx: np.ndarray, size: int) -> list[np.ndarray]:
    """Rows of the pairs `idx` (m, 2), i < j, in chunks of at most `size`: column order (by j,
    then i), cut into contiguous runs."""
    idx = np.asarray(idx).reshape(-1, 2)
    order = np.lexsort((idx[:, 0], idx[:, 1]))
    return [order[k : k + size] for k in range(0, len(order), size)]


def _newton_task(a, b, c0, params, threads: int):
    import torch

    from degeneracy.analysis.dsa import maximize

    torch.set_num_threads(threads)
    return maximize(a, b, c0, params.tol, params.max_iter, params.max_cg)


def _pairs_task(metric: str, items: list, idx: np.ndarray, params, threads: int):
    import torch

    from degeneracy.analysis import pif
    from degeneracy.analysis.metrics import METRICS

    torch.set_num_threads(threads)
    pif.MAX_WORKERS = threads
    pairs = METRICS[metric].pairs
    assert pairs is not None  # only pairwise metrics reach the cache
    return pairs(items, idx, params)


class RayPairs:
    """The Ray executor of `PairwiseCache`: chunks of `chunk_pairs` pairs, `threads` CPUs per
    task, on the cluster at `address` or a local Ray instance on this machine's cores.

    Ray starts when a matrix first has pairs to compute; used as a context manager, an instance
    this object started is stopped on exit (a cluster is only disconnected from), so every
    matrix of an `analyze` shares one."""

    def __init__(
        self, address: str | None = None, chunk_pairs: int = CHUNK_PAIRS, threads: int = 1
    ):
        if chunk_pairs < 1 or threads < 1:
            raise RegistryError("chunk_pairs and threads must be >= 1")
        self.address = address
        self.chunk_pairs = chunk_pairs
        self.threads = threads
        self._started = False

    def __enter__(self) -> RayPairs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._started:
            require_ray().shutdown()
            self._started = False

    def compute(self, metric: str, items: list, idx: np.ndarray, params) -> Iterator[tuple]:
        """(rows of `idx`, their `PairResult`) per chunk, in the order chunks finish. Leaving
        early (an error, Ctrl-C) cancels the chunks still running."""
        from degeneracy.analysis.metrics import METRICS

        ray = require_ray()
        self._started = start(self.address) or self._started
        pairs = METRICS[metric].pairs
        assert pairs is not None  # only pairwise metrics reach the cache
        if not METRICS[metric].split:  # DSA: one alignment, its Newton batches on Ray
            yield np.arange(len(idx)), pairs(items, idx, params, self.solver(params))
            return
        shared = ray.put(items)
        task = ray.remote(_pairs_task).options(num_cpus=self.threads, max_retries=RETRIES)
        parts = chunk_rows(idx, self.chunk_pairs)
        refs = {
            task.remote(metric, shared, idx[rows], params, self.threads): k
            for k, rows in enumerate(parts)
        }
        with closing(as_completed(ray, refs)) as results:
            for k, res in results:
                yield parts[k], res

    def solver(self, params):
        """A DSA `Solver` running each Newton batch as Ray tasks of `chunk_pairs` × 8 problems
        (leaving early cancels them)."""
        import torch

        ray = require_ray()
        task = ray.remote(_newton_task).options(num_cpus=self.threads, max_retries=RETRIES)
        size = self.chunk_pairs * 8

        def solve(a, b, c0):
            parts = [slice(k, k + size) for k in range(0, len(a), size)]
            refs = {
                task.remote(a[s], b[s], c0[s], params, self.threads): k for k, s in enumerate(parts)
            }
            out = [None] * len(parts)
            with closing(as_completed(ray, refs)) as results:
                for k, res in results:
                    out[k] = res
            return tuple(torch.cat([o[i] for o in out]) for i in range(3))

        return solve


def pair_executor(
    executor: str = "local", address: str | None = None, chunk_pairs: int | None = None
):
    """The `PairwiseCache` executor an API call names: None (local: one batch in this process),
    a `newton_pool.PoolPairs` ("processes": DSA's Newton batches on one process per core, no
    processes started until a batch is shipped) or a `RayPairs` (`chunk_pairs` default
    `CHUNK_PAIRS`); bad values and a missing Ray are one RegistryError, before any work.
    Close what it returns (each is a context manager; None: `contextlib.nullcontext`)."""
    if executor == "processes":
        import os

        from degeneracy.analysis.newton_pool import NewtonPool, PoolPairs

        if chunk_pairs is not None or address is not None:
            raise RegistryError("address and chunk_pairs go with the ray executor only")
        return PoolPairs(NewtonPool(max(os.cpu_count() or 1, 2)))
    if executor not in ("local", "ray"):
        raise RegistryError(f"executor must be 'local', 'processes' or 'ray', got {executor!r}")
    check_executor(executor)
    chunk_pairs = CHUNK_PAIRS if chunk_pairs is None else chunk_pairs
    if chunk_pairs < 1:
        raise RegistryError(f"chunk_pairs must be >= 1, got {chunk_pairs}")
    if executor == "local":
        return None
    require_ray()
    return RayPairs(address, chunk_pairs)
