"""Permutation-invariant distance between recurrent weight matrices.

    d_PIF(W1, W2) = min over permutations P of ‖W1 − Pᵀ W2 P‖_F / n²     (norm = "params")

normalized by the number of parameters in the weight matrix, as the paper states (the default);
`norm = "rms"` divides by n instead (the root-mean-square entry difference). `stage = "init"`
compares the matrices at initialization: the chance level a weight degeneracy is read against.

Relabelling acts on rows *and* columns, which is a
quadratic assignment problem (maximise tr(W1ᵀ Pᵀ W2 P)); a one-sided Hungarian match of rows is
not the same problem. Solved with scipy's FAQ algorithm (Vogelstein et al. 2015) from the
barycenter and from `restarts` random doubly-stochastic starts; the identity is always a
candidate, so the result never exceeds the unpermuted distance. A heuristic's match depends
on which matrix is matched onto which; with `symmetric` (the default) both directions are
solved and the smaller distance kept, so d(W1, W2) = d(W2, W1) exactly, as the true minimum is.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import quadratic_assignment

from degeneracy.analysis.params import PIFParams

#: the process count `pif_pairs` defaults to when set (a Ray task sets it to its CPUs, so it
#: never spawns one process per core of a node it shares); None: every core
MAX_WORKERS: int | None = None


def pif_distance(w1: np.ndarray, w2: np.ndarray, params: PIFParams = PIFParams()):
    """(distance, permutation perm with W2[perm][:, perm] ≈ W1, FAQ iterations used)."""
    w1 = np.asarray(w1, dtype=np.float64)
    w2 = np.asarray(w2, dtype=np.float64)
    if w1.shape != w2.shape or w1.ndim != 2 or w1.shape[0] != w1.shape[1]:
        raise ValueError(f"need two square matrices of one size, got {w1.shape} and {w2.shape}")
    n = w1.shape[0]
    best, best_perm, iterations = _match(w1, w2, params)
    if params.symmetric:
        back, back_perm, more = _match(w2, w1, params)  # W1[back_perm][:, back_perm] ≈ W2
        iterations += more
        if back < best:  # the same relabelling seen from W1: its inverse permutation
            best, best_perm = back, np.argsort(back_perm)
    return best / (n * n if params.norm == "params" else n), best_perm, iterations


def _match(w1: np.ndarray, w2: np.ndarray, params: PIFParams):
    """(min ‖W1 − W2[perm][:, perm]‖_F over the identity and FAQ's solutions, perm, iterations);
    the starts are drawn afresh from `params.seed`, so a call depends only on its arguments."""
    n = w1.shape[0]
    best_perm = np.arange(n)
    best = np.linalg.norm(w1 - w2)
    iterations = 0
    rng = np.random.default_rng(params.seed)
    for p0 in ["barycenter"] + ["randomized"] * params.restarts:
        res = quadratic_assignment(
            w1, w2, method="faq", options={"maximize": True, "P0": p0, "rng": rng}
        )
        perm = res.col_ind
        d = np.linalg.norm(w1 - w2[np.ix_(perm, perm)])
        iterations += int(res.nit)
        if d < best:
            best, best_perm = d, perm
    return best, best_perm, iterations


def _chunk(args):
    a_list, b_list, params = args
    return [pif_distance(a, b, params) for a, b in zip(a_list, b_list)]


def pif_pairs(
    mats: list[np.ndarray],
    pairs: np.ndarray,
    params: PIFParams = PIFParams(),
    workers: int | None = None,
):
    """d_PIF for index pairs of `mats`; large batches are split over processes (one per core:
    each FAQ solve is single-threaded scipy work). Returns (distances, iterations)."""
    import os

    if workers is None:
        workers = MAX_WORKERS if MAX_WORKERS is not None else (os.cpu_count() or 1)
    pairs = np.asarray(pairs).reshape(-1, 2)
    if workers <= 1 or len(pairs) < 64:
        out = [pif_distance(mats[a], mats[b], params) for a, b in pairs]
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        chunks = np.array_split(np.arange(len(pairs)), workers * 4)
        jobs = [
            ([mats[pairs[k, 0]] for k in c], [mats[pairs[k, 1]] for k in c], params)
            for c in chunks
            if len(c)
        ]
        # one BLAS thread per worker: with n ~ 100 matrices, threads only oversubscribe the cores
        keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        saved = {k: os.environ.get(k) for k in keys}
        os.environ.update({k: "1" for k in keys})
        try:
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                out = [r for chunk in pool.map(_chunk, jobs) for r in chunk]
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return np.array([o[0] for o in out]), np.array([o[2] for o in out])
