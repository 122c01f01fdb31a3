"""Permutation-invariant distance between recurrent weight matrices.

    d_PIF(W1, W2) = min over permutations P of ‖W1 − Pᵀ W2 P‖_F / n²     (norm = "params")

normalized by the number of parameters in the weight matrix, as the paper states (the default);
`norm = "rms"` divides by n instead (the root-mean-square entry difference). `norm =
"frobenius"` is the scale-free reading: ‖W1/‖W1‖_F − Pᵀ (W2/‖W2‖_F) P‖_F, which a common growth
of the weights leaves unchanged (trained weights grow, and the paper's ÷ n² grows with them).
All three are minimised by the same P: each is a decreasing function of tr(W1ᵀ Pᵀ W2 P) at fixed
norms, so one search gives every normalization (`pif_pairs` returns them all). `stage = "init"`
compares the matrices at initialization: the chance level a weight degeneracy is read against.

Relabelling acts on rows *and* columns, which is a quadratic assignment problem (maximise
tr(W1ᵀ Pᵀ W2 P)); a one-sided Hungarian match of rows is not the same problem. Solved with
scipy's FAQ algorithm (Vogelstein et al. 2015) from the barycenter and from `restarts` random
doubly-stochastic starts; the identity is always a candidate, so the result never exceeds the
unpermuted distance. A heuristic's match depends on which matrix is matched onto which; with
`symmetric` (the default) both directions are solved and the smaller distance kept, so
d(W1, W2) = d(W2, W1) exactly, as the true minimum is.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.optimize import quadratic_assignment

from degeneracy.analysis.params import PIF_NORMS, PIFParams

#: the process count `pif_pairs` defaults to when set (a Ray task sets it to its CPUs, so it
#: never spawns one process per core of a node it shares); None: every core
MAX_WORKERS: int | None = None


def pif_distance(w1: np.ndarray, w2: np.ndarray, params: PIFParams = PIFParams()):
    """(distance, permutation perm with W2[perm][:, perm] ≈ W1, FAQ iterations used)."""
    w1 = np.asarray(w1, dtype=np.float64)
    w2 = np.asarray(w2, dtype=np.float64)
    if w1.shape != w2.shape or w1.ndim != 2 or w1.shape[0] != w1.shape[1]:
        raise ValueError(f"need two square matrices of one size, got {w1.shape} and {w2.shape}")
    best, best_perm, iterations = _match(w1, w2, params)
    if params.symmetric:
        back, back_perm, more = _match(w2, w1, params)  # W1[back_perm][:, back_perm] ≈ W2
        iterations += more
        if back < best:  # the same relabelling seen from W1: its inverse permutation
            best, best_perm = back, np.argsort(back_perm)
    return normalized(best, w1, w2, params.norm), best_perm, iterations


def normalized(dist: float, w1: np.ndarray, w2: np.ndarray, norm: str) -> float:
    """‖W1 − Pᵀ W2 P‖_F at the best P, under normalization `norm` (see the module docstring)."""
    n = w1.shape[0]
    if norm == "params":
        return dist / (n * n)
    if norm == "rms":
        return dist / n
    a, b = float(np.linalg.norm(w1)), float(np.linalg.norm(w2))
    if a == 0 or b == 0:
        return float("nan") if a == b == 0 else 1.0
    # ‖Â − PᵀB̂P‖² = 2 − 2 tr(...)/(ab), and tr(...) = (a² + b² − dist²)/2
    return float(np.sqrt(max(0.0, 2 - (a * a + b * b - dist * dist) / (a * b))))


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


def _all_norms(a: np.ndarray, b: np.ndarray, params: PIFParams):
    """(distance under each of PIF_NORMS, iterations): one search, every normalization."""
    d, _, its = pif_distance(a, b, params)
    raw = _unnormalized(d, a, params.norm)
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return {k: normalized(raw, a64, b64, k) for k in PIF_NORMS}, its


def _unnormalized(d: float, w1: np.ndarray, norm: str) -> float:
    n = np.shape(w1)[0]
    if norm == "params":
        return d * n * n
    if norm == "rms":
        return d * n
    raise ValueError("the frobenius norm loses the raw distance: search under params or rms")


def _chunk(args):
    a_list, b_list, params = args
    return [_all_norms(a, b, params) for a, b in zip(a_list, b_list)]


def pif_pairs(
    mats: list[np.ndarray],
    pairs: np.ndarray,
    params: PIFParams = PIFParams(),
    workers: int | None = None,
):
    """d_PIF for index pairs of `mats`; large batches are split over processes (one per core:
    each FAQ solve is single-threaded scipy work). Returns (distances under `params.norm`,
    iterations, {norm: distances} for every normalization, from the same searches)."""
    import os

    if workers is None:
        workers = MAX_WORKERS if MAX_WORKERS is not None else (os.cpu_count() or 1)
    pairs = np.asarray(pairs).reshape(-1, 2)
    search = params if params.norm != "frobenius" else replace(params, norm="params")
    if workers <= 1 or len(pairs) < 64:
        out = [_all_norms(mats[a], mats[b], search) for a, b in pairs]
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        chunks = np.array_split(np.arange(len(pairs)), workers * 4)
        jobs = [
            ([mats[pairs[k, 0]] for k in c], [mats[pairs[k, 1]] for k in c], search)
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
    every = {k: np.array([o[0][k] for o in out], dtype=np.float64) for k in PIF_NORMS}
    return every[params.norm], np.array([o[1] for o in out]), every
