"""Representation distances between probe trajectories (beyond the paper).

Both treat each network's trajectories as a (samples, units) matrix X (all trials and steps,
columns centred), so networks see identical inputs row for row.
- Linear CKA (Kornblith et al. 2019): CKA = ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F); distance 1 − CKA.
- Procrustes shape distance (Williams et al. 2021): with ‖X‖_F = ‖Y‖_F = 1,
  d = arccos ‖XᵀY‖_* — the angle after the best rotation/reflection (widths may differ).
"""

from __future__ import annotations

import numpy as np


def _flat(traj: np.ndarray) -> np.ndarray:
    x = np.asarray(traj, dtype=np.float64).reshape(-1, np.shape(traj)[-1])
    return x - x.mean(axis=0)


def cka_distance(x_traj: np.ndarray, y_traj: np.ndarray) -> float:
    x, y = _flat(x_traj), _flat(y_traj)
    if x.shape[0] != y.shape[0]:
        raise ValueError("trajectories must come from the same probe inputs")
    num = np.linalg.norm(y.T @ x) ** 2
    den = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(1.0 - num / den) if den > 0 else 1.0


def procrustes_distance(x_traj: np.ndarray, y_traj: np.ndarray) -> float:
    x, y = _flat(x_traj), _flat(y_traj)
    if x.shape[0] != y.shape[0]:
        raise ValueError("trajectories must come from the same probe inputs")
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0 or ny == 0:
        return float(np.pi / 2)
    nuc = np.linalg.svd((x / nx).T @ (y / ny), compute_uv=False).sum()
    return float(np.arccos(np.clip(nuc, -1.0, 1.0)))
