"""Permutation-invariant distance between recurrent weight matrices.

    d_PIF(W1, W2) = min over permutations P of ‖W1 − Pᵀ W2 P‖_F / n      (n = hidden units)

i.e. the root-mean-square entry difference after the best relabelling of hidden units, so
networks of different widths are comparable. Relabelling acts on rows *and* columns, which is a
quadratic assignment problem (maximise tr(W1ᵀ Pᵀ W2 P)); a one-sided Hungarian match of rows is
not the same problem. Solved with scipy's FAQ algorithm (Vogelstein et al. 2015) from the
barycenter and from `restarts` random doubly-stochastic starts; the identity is always a
candidate, so the result never exceeds the unpermuted distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import quadratic_assignment


@dataclass(frozen=True)
class PIFParams:
    restarts: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.restarts < 0:
            raise ValueError("restarts must be >= 0")


def pif_distance(w1: np.ndarray, w2: np.ndarray, params: PIFParams = PIFParams()):
    """(distance, permutation perm with W2[perm][:, perm] ≈ W1, FAQ iterations used)."""
    w1 = np.asarray(w1, dtype=np.float64)
    w2 = np.asarray(w2, dtype=np.float64)
    if w1.shape != w2.shape or w1.ndim != 2 or w1.shape[0] != w1.shape[1]:
        raise ValueError(f"need two square matrices of one size, got {w1.shape} and {w2.shape}")
    n = w1.shape[0]
    best_perm = np.arange(n)
    best = np.linalg.norm(w1 - w2)
    iterations = 0
    rng = np.random.default_rng(params.seed)
    starts = ["barycenter"] + ["randomized"] * params.restarts
    for p0 in starts:
        res = quadratic_assignment(
            w1, w2, method="faq", options={"maximize": True, "P0": p0, "rng": rng}
        )
        perm = res.col_ind
        d = np.linalg.norm(w1 - w2[np.ix_(perm, perm)])
        iterations += int(res.nit)
        if d < best:
            best, best_perm = d, perm
    return best / n, best_perm, iterations
