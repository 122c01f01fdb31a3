"""SVCCA between probe trajectories (Raghu et al. 2017; the paper's App. G).

Each network's trajectories are a (samples, units) matrix X (all trials and steps, columns
centred), so two networks see identical inputs row for row.

1. SVD: X = U S Vᵀ; keep the top k directions holding `keep` of the variance (Σ_{i≤k} s_i² /
   Σ s_i² ≥ keep), dropping directions at rounding level. The reduced data X' = U_k S_k spans the
   columns of U_k.
2. CCA between X' and Y': the canonical correlations are the singular values of U_kᵀ W_k, the
   cosines of the principal angles between the two column spaces (Björck & Golub 1973).
3. Distance = 1 − mean canonical correlation over min(k_x, k_y) of them: 0 when one network's
   kept subspace lies in the other's (any invertible linear map of the units, with `keep` 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SVCCAParams:
    probe: str = "id"
    keep: float = 0.99  # share of each network's variance its SVD step keeps

    def __post_init__(self) -> None:
        if not 0 < self.keep <= 1:
            raise ValueError(f"keep must be in (0, 1], got {self.keep!r}")


def kept_basis(traj: np.ndarray, keep: float) -> np.ndarray:
    """Orthonormal (samples, k) basis of the top directions holding `keep` of the variance."""
    x = np.asarray(traj, dtype=np.float64).reshape(-1, np.shape(traj)[-1])
    x = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    s = s[s > s[:1].max(initial=0.0) * max(x.shape) * np.finfo(np.float64).eps]
    if len(s) == 0:
        return u[:, :0]
    share = np.cumsum(s**2) / np.sum(s**2)
    k = int(np.searchsorted(share, keep - 1e-12) + 1)
    return u[:, : min(k, len(s))]


def canonical_correlations(x_traj: np.ndarray, y_traj: np.ndarray, keep: float) -> np.ndarray:
    """The min(k_x, k_y) canonical correlations between the SVD-reduced trajectories, largest
    first."""
    if np.shape(x_traj)[:-1] != np.shape(y_traj)[:-1]:
        raise ValueError("trajectories must come from the same probe inputs")
    qx, qy = kept_basis(x_traj, keep), kept_basis(y_traj, keep)
    return np.clip(np.linalg.svd(qx.T @ qy, compute_uv=False), 0.0, 1.0)


def svcca_distance(x_traj: np.ndarray, y_traj: np.ndarray, params: SVCCAParams = SVCCAParams()):
    rho = canonical_correlations(x_traj, y_traj, params.keep)
    return float(1.0 - rho.mean()) if len(rho) else 1.0
