"""Dynamical Similarity Analysis (Ostrow et al., NeurIPS 2023), with a batched, convergent
alignment.

Per network (fitted once, cacheable):
  1. Hankel delay embedding of the probe trajectories, per trial:
     row t = [x_t, x_{t-1}, ..., x_{t-n_delays+1}]  (eq. 1 of Ostrow et al.); the trials' rows
     are stacked into one matrix H (trials · (T - n_delays + 1) rows).
  2. Reduced coordinates from the rank-`rank` SVD H = V S Uᵀ, in one of two conventions
     (`DSAParams.fit`):
       "reference" (default): the reference implementation's (`dsa-metric`'s HAVOK DMD): H is not
          centred, and the coordinates are the top-r columns of V (unit-norm "eigen-time delay"
          coordinates, V_r = H U_r S_r⁻¹).
       "centred": H is centred (column means removed) and the coordinates are the principal
          scores z = H U_r = V_r S_r.
     Both come from the smaller of H's two Gram matrices (eigh), ~4x faster than an SVD of H
     and equal to it to ~1e-12; "reference" falls back to a plain SVD when the r-th singular
     value is below 1e-3 of the first (where the Gram route would lose precision) and sets a
     coordinate whose singular value is numerically zero to zero.
     Each coordinate's sign is fixed so that its largest entry is positive: an orthogonal change
     of the network's hidden basis then gives exactly the same coordinates, and so the same
     operator. (The reference package leaves these signs arbitrary: its operator equals ours up
     to a diagonal ±1 similarity D A D, which no DSA distance can see.)
  3. A linear operator A with z_{t+1} ≈ A z_t, fitted by ridge regression within trials (each
     trial's last row is only a target, its first only a regressor):
     Aᵀ = (Z₀ᵀZ₀ + λI)⁻¹ Z₀ᵀZ₁   (DMD). λ = `ridge` under "reference" (the package's `lamb`,
     in coordinates whose Gram matrix is ≈ I), λ = `ridge` × mean(s²) under "centred".
Per pair (the "Procrustes over vector fields" distance, eq. 4):
     d(A, B) = min over orthogonal C of  arccos ⟨Â, C B̂ Cᵀ⟩,   Â = A/‖A‖_F, B̂ = B/‖B‖_F,
reflections included (both determinant branches are searched). `score="euclidean"` reports
‖A − C B Cᵀ‖_F at the same C instead.

The maximisation of g(C) = ⟨Â, C B̂ Cᵀ⟩ runs for all problems at once as a trust-region Newton
method on the orthogonal group (DESIGN.md, "DSA alignment"): at C, with A' = CᵀÂC,
X = A'B̂ᵀ, Y = B̂ᵀA', Z = X + Y, the gradient over skew W is G = skew(X − Y) and the Hessian
applied to W is ½·skew(−(ZW + WZ) + 2(A'WB̂ᵀ + B̂ᵀWA')); steps are truncated CG inside the trust
region and C ← C (I − W/2)⁻¹(I + W/2). A problem stops when an accepted step gains less than
`tol`·(1 − g), never on a fixed iteration count (the Hessian's condition number at the optimum is
1e4–2e6, so gradient norms are a poor test); `max_iter` only bounds runaway problems, and the
iterations used are returned. Composition rounds seed pair (i, j) from C_ik C_kj through every
other network k, which finds the global optimum far more often than one start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from degeneracy.analysis.params import DSAParams


def hankel(traj: np.ndarray, n_delays: int) -> np.ndarray:
    """(trials, T, units) -> (trials, T - n_delays + 1, units · n_delays) delay embedding."""
    trials, t_len, units = traj.shape
    if t_len < n_delays + 1:
        raise ValueError(f"trajectories of {t_len} steps are too short for {n_delays} delays")
    rows = t_len - n_delays + 1
    cols = [traj[:, n_delays - 1 - d : n_delays - 1 - d + rows] for d in range(n_delays)]
    return np.concatenate(cols, axis=2)


def _fix_signs(z: np.ndarray) -> np.ndarray:
    """Each column times the sign of its largest-magnitude entry (zero columns stay zero)."""
    r = z.shape[1]
    return z * np.sign(z[np.abs(z).argmax(axis=0), np.arange(r)])


def _reduced(traj: np.ndarray, params: DSAParams):
    """Delay-embedded trajectories in their top-`rank` principal coordinates (fit="centred").

    Returns z (trials, rows, r), the squared singular values (descending) of the centred Hankel
    matrix, and r. The principal directions come from the smaller of its two Gram matrices
    (eigh), ~4x faster than its SVD at 2,912 x 640 and equal to it to 1e-12 for the top ones.
    """
    h = hankel(np.asarray(traj, dtype=np.float64), params.n_delays)
    trials, rows, dim = h.shape
    flat = h.reshape(-1, dim)
    flat = flat - flat.mean(axis=0)
    r = min(params.rank, *flat.shape)
    if flat.shape[0] >= dim:
        s2, v = np.linalg.eigh(flat.T @ flat)
        s2, v = s2[::-1], v[:, ::-1]
        z = flat @ v[:, :r]
    else:
        s2, u = np.linalg.eigh(flat @ flat.T)
        s2, u = s2[::-1], u[:, ::-1]
        z = u[:, :r] * np.sqrt(np.clip(s2[:r], 0, None))
    s2 = np.clip(s2, 0, None)
    # singular vectors have arbitrary signs; fix each so its largest coordinate is positive.
    # An orthogonal change of the network's hidden basis then gives exactly the same z.
    z = _fix_signs(z)
    return z.reshape(trials, rows, r), s2, r


#: below this ratio s_r/s_1 the Gram route's rounding in V_r (~eps·(s_1/s_r)²) could exceed
#: ~1e-10, so fit="reference" takes a plain SVD instead (measured: 2e-12 at 1e-3, 2e-10 at 1e-4)
_GRAM_MIN_RATIO = 1e-3


def _reference_coords(traj: np.ndarray, params: DSAParams):
    """The reference package's coordinates (fit="reference"): the top-r left singular vectors
    V_r of the uncentred, trial-stacked Hankel matrix H = V S Uᵀ (unit-norm columns).

    Returns v (trials, rows, r), the top-r squared singular values of H (descending), r, and
    ‖H‖²_F (the sum of all of them). V_r = H U_r S_r⁻¹ from the top-r eigenvectors U_r of HᵀH
    (or V_r directly from those of HHᵀ when H has fewer rows than columns; only the top r are
    computed, 2.4x faster than a full `eigh` at 1,280 columns), as the SVD of H but ~4x faster;
    a plain SVD when s_r < 1e-3 s_1.
    A coordinate whose singular value is numerically zero (≤ max(H.shape)·eps·s_1, numpy's
    matrix-rank tolerance) has no defined direction (the package returns rounding noise
    there): it is set to zero. Signs are fixed as in `_reduced`.
    """
    h = hankel(np.asarray(traj, dtype=np.float64), params.n_delays)
    trials, rows, dim = h.shape
    flat = h.reshape(-1, dim)
    r = min(params.rank, *flat.shape)
    gram = flat.T @ flat if flat.shape[0] >= dim else flat @ flat.T
    total = float(np.trace(gram))
    n = gram.shape[0]
    s2, u = scipy.linalg.eigh(gram, subset_by_index=[n - r, n - 1], driver="evx")
    s2, u = np.clip(s2[::-1], 0, None), u[:, ::-1]
    if s2[r - 1] >= _GRAM_MIN_RATIO**2 * s2[0] and s2[0] > 0:
        if flat.shape[0] >= dim:
            v = flat @ (u[:, :r] / np.sqrt(s2[:r]))
        else:
            v = u[:, :r].copy()
    else:  # ill-conditioned (or zero) data: singular vectors to full precision
        vv, s, _ = np.linalg.svd(flat, full_matrices=False)
        s2 = s[:r] ** 2
        v = vv[:, :r].copy()
        v[:, s[:r] <= max(flat.shape) * np.finfo(np.float64).eps * s[0]] = 0.0
    return _fix_signs(v).reshape(trials, rows, r), s2, r, total


def _coords(traj: np.ndarray, params: DSAParams):
    """(coordinates (trials, rows, r), top-r squared singular values, r, ridge λ, scale (r,),
    total squared singular values): `scale` turns the coordinates into the embedding's units
    (principal scores)."""
    if params.fit == "centred":
        z, s2, r = _reduced(traj, params)
        lam = params.ridge * float(np.mean(s2[:r])) if r else 0.0
        return z, s2[:r], r, lam, np.ones(r), float(s2.sum())
    v, s2, r, total = _reference_coords(traj, params)
    return v, s2, r, params.ridge, np.sqrt(s2), total


def _ridge_fit(z: np.ndarray, lam: float):
    """Aᵀ = (Z₀ᵀZ₀ + λI)⁻¹ Z₀ᵀZ₁ within trials; returns (A, z0, z1).

    Zero coordinates (numerically rank-deficient data under fit="reference") get a zero row and
    column of A: with λ > 0 that is what the solve gives; with λ = 0 the solve runs on the
    other coordinates only."""
    r = z.shape[-1]
    z0 = z[:, :-1].reshape(-1, r)
    z1 = z[:, 1:].reshape(-1, r)
    gram = z0.T @ z0
    live = np.flatnonzero(np.abs(z).reshape(-1, r).max(axis=0) > 0) if lam == 0 else None
    if live is None or len(live) == r:
        a_t = np.linalg.solve(gram + lam * np.eye(r), z0.T @ z1)
    else:
        a_t = np.zeros((r, r))
        a_t[np.ix_(live, live)] = np.linalg.solve(
            gram[np.ix_(live, live)], z0[:, live].T @ z1[:, live]
        )
    return a_t.T, z0, z1


def fit_operator(traj: np.ndarray, params: DSAParams) -> np.ndarray:
    """The rank-r linear operator (r, r) of one network's delay-embedded dynamics."""
    z, _, r, lam, _, _ = _coords(traj, params)
    op, _, _ = _ridge_fit(z, lam)
    if r < params.rank:  # fewer dimensions than asked: pad so all operators share a shape
        op = np.pad(op, ((0, params.rank - r), (0, params.rank - r)))
    return op


def fit_quality(traj: np.ndarray, params: DSAParams) -> tuple[float, float]:
    """How well the operator describes the network: (fraction of the delay embedding's variance
    kept by the rank-r coordinates, R² of the one-step prediction z_{t+1} ≈ A z_t).

    The variance is that of the matrix the convention decomposes: about the mean under
    fit="centred", uncentred (‖H‖²_F, mean included: what the rank-r SVD of the uncentred H
    keeps) under fit="reference". R² is measured in the principal-score scale z = V_r S_r under
    both (the reference's unit-norm coordinates are weighted by their singular values), so it is
    the variance-weighted R² of predicting the rank-r part of the next Hankel row, relative to
    the target's variance about its mean."""
    z, s2, r, lam, scale, total = _coords(traj, params)
    op, z0, z1 = _ridge_fit(z, lam)
    resid = (z1 - z0 @ op.T) * scale
    centred = (z1 - z1.mean(axis=0)) * scale
    kept = float(s2[:r].sum() / max(total, 1e-300))
    return kept, float(1 - (resid**2).sum() / max((centred**2).sum(), 1e-300))


def _skew(m: torch.Tensor) -> torch.Tensor:
    return 0.5 * (m - m.transpose(-1, -2))


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum((-1, -2))


def _cayley(w: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(w.shape[-1], dtype=w.dtype, device=w.device).expand_as(w)
    return torch.linalg.solve(eye - 0.5 * w, eye + 0.5 * w)


def objective(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """g = ⟨A, C B Cᵀ⟩ for each problem of the batch."""
    return _dot(a, c @ b @ c.transpose(-1, -2))


class _Hessian:
    """w ↦ H w for a batch of problems (the Riemannian Hessian of `objective` at C, acting on
    skew-symmetric directions); `take(keep)` restricts it to some of the problems."""

    def __init__(self, ap, bt, z):
        self.ap, self.bt, self.z = ap, bt, z

    def __call__(self, w):
        ap, bt, z = self.ap, self.bt, self.z
        return 0.5 * _skew(-(z @ w + w @ z) + 2 * (ap @ w @ bt + bt @ w @ ap))

    def take(self, keep: torch.Tensor) -> _Hessian:
        return _Hessian(self.ap[keep], self.bt[keep], self.z[keep])


def _grad_hess(a, b, c):
    ap = c.transpose(-1, -2) @ a @ c
    bt = b.transpose(-1, -2)
    x = ap @ bt
    y = bt @ ap
    return _skew(x - y), _Hessian(ap, bt, x + y)


#: truncated CG drops the problems it has finished once they are this share of its batch (the
#: batch runs until its slowest problem stops: about a third of its steps were on finished ones)
_COMPACT = 0.3


def _steihaug(grad, hvp: _Hessian, radius, max_cg):
    """Approximately maximise ⟨G,W⟩ + ½⟨W,H W⟩ over ‖W‖ ≤ radius, per problem (truncated CG)."""
    p = grad.shape[0]
    out = torch.zeros_like(grad)
    boundary = torch.zeros(p, dtype=torch.bool, device=grad.device)
    idx = torch.arange(p, device=grad.device)  # the problems still in the batch
    z = torch.zeros_like(grad)
    r = grad.clone()
    d = r.clone()
    rr = _dot(r, r)
    active = rr > 0
    tol = 1e-10 * rr.sqrt().clamp(min=1e-300)
    for _ in range(max_cg):
        live = int(active.sum())
        if live == 0:
            break
        if live <= (1 - _COMPACT) * len(idx):
            out[idx] = z
            keep = active.nonzero().flatten()
            idx, z, r, d, rr, tol, radius = (t[keep] for t in (idx, z, r, d, rr, tol, radius))
            active, hvp = active[keep], hvp.take(keep)
        hd = -hvp(d)  # minimising -m: its Hessian is -H
        kappa = _dot(d, hd)
        alpha = rr / kappa.where(kappa.abs() > 0, torch.ones_like(kappa))
        z_try = z + alpha[:, None, None] * d
        leaves = (kappa <= 0) | (_dot(z_try, z_try).sqrt() >= radius)
        # boundary step: τ ≥ 0 with ‖z + τ d‖ = radius
        zd, dd, zz = _dot(z, d), _dot(d, d), _dot(z, z)
        tau = (-zd + (zd**2 + dd * (radius**2 - zz)).clamp(min=0).sqrt()) / dd.clamp(min=1e-300)
        z_edge = z + tau[:, None, None] * d
        stop_here = active & leaves
        z = torch.where(stop_here[:, None, None], z_edge, z)
        boundary[idx] |= stop_here
        go = active & ~leaves
        z = torch.where(go[:, None, None], z_try, z)
        r_new = r - alpha[:, None, None] * hd
        rr_new = _dot(r_new, r_new)
        beta = rr_new / rr.clamp(min=1e-300)
        d = torch.where(go[:, None, None], r_new + beta[:, None, None] * d, d)
        r = torch.where(go[:, None, None], r_new, r)
        rr = torch.where(go, rr_new, rr)
        active = go & (rr_new.sqrt() > tol)
    out[idx] = z
    return out, boundary


def maximize(a, b, c0, tol=1e-8, max_iter=80, max_cg=None):
    """Trust-region Newton from c0 for every problem: (C, g, iterations)."""
    p, r, _ = a.shape
    max_cg = max_cg or max(2, min(r * (r - 1) // 2, 40))
    c = c0.clone()
    g = objective(a, b, c)
    radius = torch.full((p,), 0.5, dtype=a.dtype, device=a.device)
    iters = torch.zeros(p, dtype=torch.int64, device=a.device)
    active = torch.ones(p, dtype=torch.bool, device=a.device)
    for _ in range(max_iter):
        idx = active.nonzero().flatten()
        if idx.numel() == 0:
            break
        aa, bb, cc, gg, rad = a[idx], b[idx], c[idx], g[idx], radius[idx]
        grad, hvp = _grad_hess(aa, bb, cc)
        w, boundary = _steihaug(grad, hvp, rad, max_cg)
        predicted = _dot(grad, w) + 0.5 * _dot(w, hvp(w))
        c_new = cc @ _cayley(w)
        g_new = objective(aa, bb, c_new)
        actual = g_new - gg
        rho = actual / predicted.where(predicted.abs() > 1e-300, torch.ones_like(predicted))
        accept = (rho > 0.1) & (actual > 0)
        rad = torch.where(rho < 0.25, rad * 0.25, rad)
        rad = torch.where((rho > 0.75) & boundary, (rad * 2).clamp(max=4.0), rad)
        c[idx] = torch.where(accept[:, None, None], c_new, cc)
        g[idx] = torch.where(accept, g_new, gg)
        radius[idx] = rad
        iters[idx] += 1
        small = (
            (accept & (actual < tol * (1 - g_new).clamp(min=1e-15)))
            | (~accept & (predicted.abs() < tol * (1 - gg).clamp(min=1e-15)))
            | (rad < 1e-12)
            | (1 - g[idx] < 1e-13)
        )
        active[idx[small]] = False
    return c, g, iters


def _starts(r: int, n: int, dtype, device) -> torch.Tensor:
    """I, diag(-1, 1, ..., 1), then random orthogonal matrices alternating determinant sign."""
    eye = torch.eye(r, dtype=dtype, device=device)
    flip = eye.clone()
    flip[0, 0] = -1.0
    out = [eye, flip]
    gen = torch.Generator().manual_seed(0)
    while len(out) < max(n, 2):
        q, rr = torch.linalg.qr(torch.randn(r, r, dtype=dtype, generator=gen))
        q = q * torch.sign(torch.diagonal(rr))
        if (torch.linalg.det(q) > 0) != (len(out) % 2 == 0):
            q[:, 0] = -q[:, 0]
        out.append(q.to(device))
    return torch.stack(out)


def resolve_device(device: str | None) -> torch.device:
    """None or "auto": CUDA when available, else the CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _solve(a, b, c0, params: DSAParams, device: str | None):
    """`maximize` on `device` (the batch moves there and back; bookkeeping stays on the CPU)."""
    dev = resolve_device(device)
    c, g, it = maximize(
        a.to(dev), b.to(dev), c0.to(dev), params.tol, params.max_iter, params.max_cg
    )
    return c.cpu(), g.cpu(), it.cpu()


def local_solver(params: DSAParams, device: str | None = None) -> Solver:
    """Every Newton batch in this process, on `device`."""
    return lambda a, b, c0: _solve(a, b, c0, params, device)


def normalize(ops: np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(np.ascontiguousarray(ops), dtype=torch.float64)
    return t / torch.linalg.matrix_norm(t).clamp(min=1e-300)[..., None, None]


@dataclass
class Alignment:
    """Per pair: the best similarity g, the rotation C, and Newton iterations used."""

    g: np.ndarray
    c: np.ndarray
    iterations: np.ndarray


#: solve(a, b, c0) -> (C, g, iterations): one batch of independent Newton problems (each
#: problem's result does not depend on the others in its batch, so a batch may be split)
Solver = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple]


def align_pairs(
    a_ops: np.ndarray,
    b_ops: np.ndarray,
    params: DSAParams = DSAParams(),
    device: str | None = None,
    solve: Solver | None = None,
) -> Alignment:
    """Best C for each (A_p, B_p), from `params.starts` starts covering both determinants."""
    solve = solve or local_solver(params, device)
    a, b = normalize(a_ops), normalize(b_ops)
    p, r, _ = a.shape
    starts = _starts(r, params.starts, a.dtype, a.device)
    s = starts.shape[0]
    aa = a.repeat(s, 1, 1)
    bb = b.repeat(s, 1, 1)
    c0 = starts.repeat_interleave(p, 0)
    c, g, it = solve(aa, bb, c0)
    best = g.view(s, p).argmax(0)
    pick = best * p + torch.arange(p)
    its = it.view(s, p).sum(0)
    return Alignment(g[pick].numpy(), c[pick].numpy(), its.numpy())


def score(a_ops: np.ndarray, b_ops: np.ndarray, al: Alignment, kind: str) -> np.ndarray:
    if kind == "angular":
        return np.arccos(np.clip(al.g, -1.0, 1.0))
    a = torch.as_tensor(np.ascontiguousarray(a_ops), dtype=torch.float64)
    b = torch.as_tensor(np.ascontiguousarray(b_ops), dtype=torch.float64)
    c = torch.as_tensor(al.c)
    diff = a - c @ b @ c.transpose(-1, -2)
    return torch.linalg.matrix_norm(diff).numpy()


def all_pairs(
    ops: np.ndarray,
    params: DSAParams = DSAParams(),
    pairs: np.ndarray | None = None,
    device: str | None = None,
    solve: Solver | None = None,
):
    """`all_pairs_scores` with the distances of `params.score` only."""
    pairs, dist, iters, g = all_pairs_scores(ops, params, pairs, device, solve)
    return pairs, dist[params.score], iters, g


SCORES = ("angular", "euclidean")


def all_pairs_scores(
    ops: np.ndarray,
    params: DSAParams = DSAParams(),
    pairs: np.ndarray | None = None,
    device: str | None = None,
    solve: Solver | None = None,
):
    """Distances for the pairs (i, j), i < j, of a group of operators (n, r, r): every pair by
    default, else only the given ones (e.g. the pairs a cache is missing).

    Returns (pairs (m, 2), {score: distances (m,)} for both scores (one alignment gives both:
    the C maximizing ⟨Â, C B̂ Cᵀ⟩ also minimizes ‖Â − C B̂ Cᵀ‖_F; the Frobenius score is of the
    unnormalized operators at that C), iterations (m,), g (m,)). With three or more networks,
    `params.rounds` composition rounds reseed each pair from C_ik C_kj (through every k whose
    pairs with i and j are among those computed) and keep improvements. The Newton batches run
    on `device` (default: CUDA when available; the small bookkeeping stays on the CPU), or
    through `solve` (e.g. split over Ray tasks: `ray_pairs`), which gives the same alignment:
    the rounds' bookkeeping stays here, only the independent Newton problems move.
    """
    solve = solve or local_solver(params, device)
    n = ops.shape[0]
    if pairs is None:
        pairs = np.stack(np.triu_indices(n, 1), 1)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if (pairs[:, 0] >= pairs[:, 1]).any():
        raise ValueError("pairs must be (i, j) with i < j")
    ii, jj = pairs[:, 0], pairs[:, 1]
    if len(pairs) == 0:
        return pairs, {s: np.zeros(0) for s in SCORES}, np.zeros(0, np.int64), np.zeros(0)
    known = torch.zeros(n, n, dtype=torch.bool)  # the pairs computed, both ways
    known[ii, jj] = known[jj, ii] = True
    al = align_pairs(ops[ii], ops[jj], params, device, solve)
    g = torch.as_tensor(al.g)
    c = torch.as_tensor(al.c)
    iters = torch.as_tensor(al.iterations)
    if n >= 3 and params.rounds > 0:
        a = normalize(ops)
        changed = torch.ones(len(ii), dtype=torch.bool)
        tried = torch.zeros(len(ii), n, dtype=torch.bool)  # seed (pair, k) run as it is now
        for _ in range(params.rounds):
            changed = _compose_round(a, ii, jj, known, c, g, iters, changed, tried, solve)
            if not bool(changed.any()):
                break
    al = Alignment(g.numpy(), c.numpy(), iters.numpy())
    dist = {s: score(ops[ii], ops[jj], al, s) for s in SCORES}
    return pairs, dist, iters.numpy(), g.numpy()


def _compose_round(a, ii, jj, known, c, g, iters, changed, tried, solve, top=3) -> torch.Tensor:
    """Seed every pair from its best three compositions C_ik C_kj; keep what improves.

    A composition already run while neither C_ik nor C_kj has changed since (`tried`) is not
    run again: Newton would return what was already kept, so this equals rerunning the top
    three every round. Returns which pairs improved."""
    n = a.shape[0]
    r = a.shape[-1]
    ii_t, jj_t = torch.as_tensor(ii), torch.as_tensor(jj)
    full = torch.zeros(n, n, r, r, dtype=a.dtype)
    full[ii_t, jj_t] = c
    full[jj_t, ii_t] = c.transpose(-1, -2)
    moved = torch.zeros(n, n, dtype=torch.bool)
    moved[ii_t, jj_t] = changed
    moved[jj_t, ii_t] = changed
    idx = torch.arange(n)
    cand_c, cand_pair = [], []
    for p, (i, j) in enumerate(zip(ii.tolist(), jj.tolist())):
        ks = idx[(idx != i) & (idx != j) & known[i] & known[:, j]]
        if len(ks) == 0:
            continue
        tried[p, ks[moved[i, ks] | moved[ks, j]]] = False  # a changed route is a new seed
        if bool(tried[p, ks].all()):
            continue
        comp = full[i, ks] @ full[ks, j]  # (n-2, r, r)
        gk = objective(a[i].expand_as(comp), a[j].expand_as(comp), comp)
        best = torch.topk(gk, min(top, len(ks))).indices
        best = best[~tried[p, ks[best]]]
        tried[p, ks[best]] = True
        cand_c.append(comp[best])
        cand_pair += [p] * len(best)
    improved = torch.zeros(len(ii), dtype=torch.bool)
    if not cand_pair:
        return improved
    cc = torch.cat(cand_c)
    pp = torch.as_tensor(cand_pair)
    c_new, g_new, it = solve(a[ii][pp], a[jj][pp], cc)
    iters.index_add_(0, pp, it)
    # per pair, its best candidate (the first row reaching the pair's maximum)
    m = len(ii)
    best_g = torch.full((m,), -torch.inf, dtype=g.dtype).scatter_reduce(0, pp, g_new, "amax")
    rows = torch.arange(len(pp))
    at_max = torch.where(g_new == best_g[pp], rows, len(pp))
    first = torch.full((m,), len(pp), dtype=torch.int64).scatter_reduce(0, pp, at_max, "amin")
    sel = ((first < len(pp)) & (best_g > g + 1e-12)).nonzero().flatten()
    g[sel] = g_new[first[sel]]
    c[sel] = c_new[first[sel]]
    improved[sel] = True
    return improved


def eigen_wasserstein(a_op: np.ndarray, b_op: np.ndarray) -> float:
    """Fast approximation: the 1-Wasserstein distance between the two eigenvalue sets (complex
    plane, equal weights), by optimal matching. Invariant to any similarity transform."""
    from scipy.optimize import linear_sum_assignment

    la = np.linalg.eigvals(a_op / max(np.linalg.norm(a_op), 1e-300))
    lb = np.linalg.eigvals(b_op / max(np.linalg.norm(b_op), 1e-300))
    cost = np.abs(la[:, None] - lb[None, :])
    row, col = linear_sum_assignment(cost)
    return float(cost[row, col].mean())


# ------------------------------------------------------------------ fits from accumulated Grams
@dataclass
class GramStats:
    """What the reference fit needs of a delay embedding, summed over trials in chunks, so a
    fit on many probe trials never holds their Hankel matrix (512 trials of a 64-unit network
    at 10 delays: 240 MB of rows, against 4 matrices of 3.3 MB here).

    With H the trial-stacked Hankel matrix, H₀ its rows that have a successor within their trial
    and H₁ those successors: g00 = H₀ᵀH₀, g01 = H₀ᵀH₁, g_last / g_first = the Gram of each trial's
    last / first row (so HᵀH = g00 + g_last and H₁ᵀH₁ = HᵀH − g_first), and the column sums of H
    and of each trial's first row."""

    n_delays: int
    dim: int
    g00: np.ndarray
    g01: np.ndarray
    g_last: np.ndarray
    g_first: np.ndarray
    colsum: np.ndarray
    first_sum: np.ndarray
    rows: int = 0
    trials: int = 0

    @classmethod
    def empty(cls, n_delays: int, units: int) -> GramStats:
        dim = n_delays * units
        z = np.zeros((dim, dim))
        return cls(n_delays, dim, z, z.copy(), z.copy(), z.copy(), np.zeros(dim), np.zeros(dim))

    def add(self, traj: np.ndarray) -> None:
        """Accumulate trials (trials, T, units) of one network."""
        h = hankel(np.asarray(traj, dtype=np.float64), self.n_delays)
        n, rows, dim = h.shape
        h0 = h[:, :-1].reshape(-1, dim)
        h1 = h[:, 1:].reshape(-1, dim)
        self.g00 += h0.T @ h0
        self.g01 += h0.T @ h1
        self.g_last += h[:, -1].T @ h[:, -1]
        self.g_first += h[:, 0].T @ h[:, 0]
        self.colsum += h.sum(axis=(0, 1))
        self.first_sum += h[:, 0].sum(axis=0)
        self.rows += n * rows
        self.trials += n

    @property
    def gram(self) -> np.ndarray:
        return self.g00 + self.g_last

    @property
    def nbytes(self) -> int:
        return 4 * self.g00.nbytes

    def spectrum(self) -> np.ndarray:
        """Squared singular values of H, descending."""
        return np.clip(scipy.linalg.eigvalsh(self.gram)[::-1], 0, None)

    def kept_curve(self, max_rank: int) -> np.ndarray:
        """Share of ‖H‖²_F the top-r coordinates keep, r = 1..max_rank (as `fit_quality`)."""
        s2 = self.spectrum()
        kept = np.cumsum(s2) / max(float(s2.sum()), 1e-300)
        return np.pad(kept, (0, max(0, max_rank - len(kept))), constant_values=1.0)[:max_rank]


def _stats_coords(stats: GramStats, params: DSAParams):
    """(U (dim, r) with dead coordinates zeroed, s² (r,), r, the signs of the coordinates)."""
    if params.fit != "reference":
        raise ValueError("fits from accumulated Grams use fit='reference'")
    gram = stats.gram
    n = gram.shape[0]
    r = min(params.rank, n, stats.rows)
    s2, u = scipy.linalg.eigh(gram, subset_by_index=[n - r, n - 1], driver="evx")
    s2, u = np.clip(s2[::-1], 0, None), u[:, ::-1].copy()
    # below ~dim·eps of the largest, a squared singular value from the Gram is rounding
    dead = s2 <= max(n, 1) * np.finfo(np.float64).eps * max(float(s2[0]), 1e-300)
    u[:, dead] = 0.0
    # V = H U S⁻¹; each coordinate's sign makes its sum over rows positive (an orthogonal change
    # of the hidden basis leaves V, so these signs, unchanged)
    signs = np.sign(stats.colsum @ u)
    signs[signs == 0] = 1.0
    return u * signs, s2, r, dead


def fit_operator_stats(stats: GramStats, params: DSAParams) -> np.ndarray:
    """The operator `fit_operator` gives under fit="reference", from accumulated Grams: the
    same up to the coordinates' signs (a diagonal ±1 similarity, which no DSA distance sees)."""
    return _stats_fit(stats, params)[0]


def _stats_fit(stats: GramStats, params: DSAParams):
    u, s2, r, dead = _stats_coords(stats, params)
    inv = np.where(dead, 0.0, 1.0 / np.sqrt(np.where(dead, 1.0, s2)))
    z00 = (u.T @ stats.g00 @ u) * np.outer(inv, inv)  # Z₀ᵀZ₀ in V coordinates
    z01 = (u.T @ stats.g01 @ u) * np.outer(inv, inv)  # Z₀ᵀZ₁
    lam = params.ridge
    live = np.flatnonzero(~dead)
    a_t = np.zeros((r, r))
    if lam > 0:
        a_t = np.linalg.solve(z00 + lam * np.eye(r), z01)
    elif len(live):
        a_t[np.ix_(live, live)] = np.linalg.solve(z00[np.ix_(live, live)], z01[np.ix_(live, live)])
    op = a_t.T
    if r < params.rank:
        op = np.pad(op, ((0, params.rank - r), (0, params.rank - r)))
    return op, u, s2, r


def fit_quality_stats(stats: GramStats, params: DSAParams) -> tuple[float, float]:
    """`fit_quality` (kept variance, one-step R² in principal-score scale) from the Grams."""
    op, u, s2, r = _stats_fit(stats, params)
    a = op[:r, :r]
    scale = np.sqrt(s2)
    # principal scores y = H U; z = y S⁻¹, so y₁ ≈ y₀ S⁻¹ Aᵀ S
    m = (a.T / np.where(scale > 0, scale, 1.0)[:, None]) * scale[None, :]
    y00, y01 = u.T @ stats.g00 @ u, u.T @ stats.g01 @ u
    y11 = u.T @ (stats.gram - stats.g_first) @ u
    resid = np.trace(y11) - 2 * np.trace(m.T @ y01) + np.trace(m.T @ y00 @ m)
    n1 = stats.rows - stats.trials
    mean1 = (stats.colsum - stats.first_sum) @ u / max(n1, 1)
    centred = np.trace(y11) - n1 * float(mean1 @ mean1)
    total = float(np.trace(stats.gram))
    kept = float(s2[:r].sum() / max(total, 1e-300))
    return kept, float(1 - resid / max(centred, 1e-300))


def share_rank(curves: np.ndarray, share: float) -> int:
    """The declared rank rule: the smallest r at which the median of the networks' kept
    shares (curves (networks, max_rank), r = 1..max_rank) reaches `share`; max_rank if none
    does. One rank for every network compared, so levels are fitted alike."""
    median = np.median(np.asarray(curves, dtype=np.float64), axis=0)
    ok = np.flatnonzero(median >= share - 1e-12)
    return int(ok[0]) + 1 if len(ok) else int(median.shape[0])
