"""Group summaries: behavior spread, mean pairwise distance, their standard errors, and MDS."""

from __future__ import annotations

import numpy as np


def behavior(ood_losses: np.ndarray) -> tuple[float, float, float]:
    """(std across networks, mean, jackknife standard error of the std) of OOD losses."""
    x = np.asarray(ood_losses, dtype=np.float64)
    n = len(x)
    if n < 2:
        return float("nan"), float(x.mean()) if n else float("nan"), float("nan")
    std = float(x.std())
    if n < 3:  # a leave-one-out std of one value is 0: no error estimate
        return std, float(x.mean()), float("nan")
    loo = np.array([np.delete(x, i).std() for i in range(n)])
    se = float(np.sqrt((n - 1) / n * ((loo - loo.mean()) ** 2).sum()))
    return std, float(x.mean()), se


def mean_pairwise(d: np.ndarray) -> tuple[float, float]:
    """(mean off-diagonal distance, jackknife standard error over networks) of a square matrix."""
    d = np.asarray(d, dtype=np.float64)
    n = d.shape[0]
    if n < 2:
        return float("nan"), float("nan")
    iu = np.triu_indices(n, 1)
    mean = float(d[iu].mean())
    if n < 3:
        return mean, float("nan")
    total = d[iu].sum()
    row = d.sum(axis=1) - np.diag(d)
    m = (n - 1) * (n - 2) / 2
    loo = (total - row) / m  # mean over pairs without network i
    se = float(np.sqrt((n - 1) / n * ((loo - loo.mean()) ** 2).sum()))
    return mean, se


def classical_mds(d: np.ndarray, dims: int = 2) -> np.ndarray:
    """Torgerson MDS: coordinates (n, dims) whose distances best match `d` (double centring)."""
    d = np.asarray(d, dtype=np.float64)
    n = d.shape[0]
    j = np.eye(n) - np.ones((n, n)) / n
    b = -0.5 * j @ (d**2) @ j
    vals, vecs = np.linalg.eigh(b)
    order = np.argsort(vals)[::-1][:dims]
    vals = np.clip(vals[order], 0, None)
    out = vecs[:, order] * np.sqrt(vals)
    if out.shape[1] < dims:
        out = np.pad(out, ((0, 0), (0, dims - out.shape[1])))
    return out
