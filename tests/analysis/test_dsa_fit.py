"""DSA operator fits: the reference package's convention (default) and the centred one."""

import numpy as np
import pytest
import torch

from degeneracy.analysis import dsa
from tests.analysis.test_dsa import tanh_net_trajectories as _trajectories


def tanh_net_trajectories(seed, trials=8, steps=60, units=12, gain=1.4):
    return _trajectories(seed, trials=trials, steps=steps, units=units, gain=gain)


def sign_fixed(m):
    """Each column times the sign of its largest-magnitude entry."""
    return m * np.sign(m[np.abs(m).argmax(0), np.arange(m.shape[1])])


def reference_by_hand(traj, n_delays, rank, ridge):
    """The reference convention from its definition: per trial, Hankel rows
    [x_t, x_{t-1}, ...]; all trials' rows stacked into H (not centred); H = V S Uᵀ by a plain
    SVD; coordinates V[:, :rank]; within each trial, regress row t+1 on row t by ridge."""
    trials, steps, _ = traj.shape
    per_trial = []
    for tr in range(trials):
        rows = [
            np.concatenate([traj[tr, t - d] for d in range(n_delays)])
            for t in range(n_delays - 1, steps)
        ]
        per_trial.append(np.array(rows))
    h = np.concatenate(per_trial)
    v = np.linalg.svd(h, full_matrices=False)[0][:, :rank]
    v = sign_fixed(v)
    before, after, start = [], [], 0
    for block in per_trial:
        vt = v[start : start + len(block)]
        before.append(vt[:-1])
        after.append(vt[1:])
        start += len(block)
    v0, v1 = np.concatenate(before), np.concatenate(after)
    a_t = np.linalg.inv(v0.T @ v0 + ridge * np.eye(rank)) @ v0.T @ v1
    return a_t.T, h, v


def test_fit_defaults_to_reference_and_is_validated():
    assert dsa.DSAParams().fit == "reference"
    dsa.DSAParams(fit="centred")
    with pytest.raises(ValueError, match="fit"):
        dsa.DSAParams(fit="centered")


def test_planted_linear_system_operator_has_the_systems_eigenvalues():
    rng = np.random.default_rng(0)
    n = 4
    m = rng.standard_normal((n, n))
    m *= 0.95 / np.abs(np.linalg.eigvals(m)).max()
    x = np.zeros((5, 12, n))
    x[:, 0] = rng.standard_normal((5, n)) + 5  # a common offset: the data's mean is not 0
    for t in range(1, 12):
        x[:, t] = x[:, t - 1] @ m.T
    op = dsa.fit_operator(x, dsa.DSAParams(n_delays=1, rank=n, ridge=0))
    got = np.sort_complex(np.linalg.eigvals(op))
    want = np.sort_complex(np.linalg.eigvals(m))
    np.testing.assert_allclose(got, want, atol=1e-8)
    # with a little noise the eigenvalues stay close
    noisy = x + 1e-6 * rng.standard_normal(x.shape)
    op = dsa.fit_operator(noisy, dsa.DSAParams(n_delays=1, rank=n, ridge=0))
    np.testing.assert_allclose(np.sort_complex(np.linalg.eigvals(op)), want, atol=1e-3)
    # the centred convention is not the uncentred system (no affine term): it must differ
    centred = dsa.fit_operator(x, dsa.DSAParams(n_delays=1, rank=n, ridge=0, fit="centred"))
    assert np.abs(np.sort_complex(np.linalg.eigvals(centred)) - want).max() > 1e-2


def test_hand_computed_hankel_example():
    x = np.array([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0], [1.0, 1.0], [3.0, 2.0]])[None]
    # n_delays 2: rows t = 1..4 are [x_t, x_{t-1}]
    h = np.array(
        [
            [2.0, 1.0, 1.0, 0.0],
            [0.0, 3.0, 2.0, 1.0],
            [1.0, 1.0, 0.0, 3.0],
            [3.0, 2.0, 1.0, 1.0],
        ]
    )
    np.testing.assert_array_equal(dsa.hankel(x, 2)[0], h)
    v = sign_fixed(np.linalg.svd(h)[0][:, :2])  # unit-norm time coordinates
    v0, v1 = v[:-1], v[1:]
    want = np.linalg.solve(v0.T @ v0 + 0.1 * np.eye(2), v0.T @ v1).T
    got = dsa.fit_operator(x, dsa.DSAParams(n_delays=2, rank=2, ridge=0.1))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    want0 = np.linalg.lstsq(v0, v1, rcond=None)[0].T
    got0 = dsa.fit_operator(x, dsa.DSAParams(n_delays=2, rank=2, ridge=0))
    np.testing.assert_allclose(got0, want0, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "trials,steps,units,n_delays,rank",
    [
        (2, 9, 3, 2, 4),  # two trials: no regression pair straddles them
        (1, 6, 4, 3, 3),  # fewer Hankel rows than columns: Gram of the rows
        (6, 40, 5, 3, 15),  # all of a 15-column embedding
    ],
)
@pytest.mark.parametrize("ridge", [0.0, 1e-3, 0.3])
def test_reference_operator_equals_the_definition(trials, steps, units, n_delays, rank, ridge):
    traj = np.random.default_rng(trials + steps).standard_normal((trials, steps, units))
    want, _, _ = reference_by_hand(traj, n_delays, rank, ridge)
    got = dsa.fit_operator(traj, dsa.DSAParams(n_delays=n_delays, rank=rank, ridge=ridge))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


def test_ill_conditioned_data_take_the_plain_svd_and_still_equal_the_definition():
    rng = np.random.default_rng(3)
    traj = tanh_net_trajectories(3, trials=4, steps=30, units=3)
    # 3 strong dimensions embedded in 8 units plus a 1e-6 residue: s_r/s_1 ~ 1e-7 at rank 8
    traj = traj @ rng.standard_normal((3, 8)) + 1e-6 * rng.standard_normal((4, 30, 8))
    p = dsa.DSAParams(n_delays=2, rank=8, ridge=1e-3)
    _, s2, _, _ = dsa._reference_coords(traj, p)
    assert s2[7] < dsa._GRAM_MIN_RATIO**2 * s2[0]
    want, _, _ = reference_by_hand(traj, 2, 8, 1e-3)
    np.testing.assert_allclose(dsa.fit_operator(traj, p), want, rtol=1e-7, atol=1e-8)


def test_rank_beyond_the_data_gives_zero_rows_and_columns():
    rng = np.random.default_rng(4)
    theta = 0.3
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) * 0.98
    z = np.zeros((4, 30, 2))
    z[:, 0] = rng.standard_normal((4, 2))
    for t in range(1, 30):
        z[:, t] = z[:, t - 1] @ rot.T
    x = z @ rng.standard_normal((2, 5))  # a 2-dimensional Hankel matrix at n_delays 1
    q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    ops = {}
    for ridge in (0.0, 1e-3):
        p = dsa.DSAParams(n_delays=1, rank=4, ridge=ridge)
        op = ops[ridge] = dsa.fit_operator(x, p)
        assert np.isfinite(op).all()
        assert not op[2:].any() and not op[:, 2:].any()
        np.testing.assert_allclose(dsa.fit_operator(x @ q.T, p), op, atol=1e-10)
    np.testing.assert_allclose(
        np.sort_complex(np.linalg.eigvals(ops[0.0][:2, :2])),
        np.sort_complex(np.linalg.eigvals(rot)),
        atol=1e-10,
    )
    assert not dsa.fit_operator(np.zeros((2, 10, 3)), dsa.DSAParams(n_delays=2, rank=3)).any()


def old_centred_operator(traj, n_delays, rank, ridge):
    """fit_operator before the conventions existed (a copy of its formula)."""
    h = dsa.hankel(np.asarray(traj, dtype=np.float64), n_delays)
    trials, rows, dim = h.shape
    flat = h.reshape(-1, dim)
    flat = flat - flat.mean(axis=0)
    r = min(rank, *flat.shape)
    if flat.shape[0] >= dim:
        s2, v = np.linalg.eigh(flat.T @ flat)
        s2, v = s2[::-1], v[:, ::-1]
        z = flat @ v[:, :r]
    else:
        s2, u = np.linalg.eigh(flat @ flat.T)
        s2, u = s2[::-1], u[:, ::-1]
        z = u[:, :r] * np.sqrt(np.clip(s2[:r], 0, None))
    s2 = np.clip(s2, 0, None)
    z = z * np.sign(z[np.abs(z).argmax(axis=0), np.arange(r)])
    z = z.reshape(trials, rows, r)
    z0 = z[:, :-1].reshape(-1, r)
    z1 = z[:, 1:].reshape(-1, r)
    lam = ridge * float(np.mean(s2[:r]))
    op = np.linalg.solve(z0.T @ z0 + lam * np.eye(r), z0.T @ z1).T
    resid = z1 - z0 @ op.T
    centred = z1 - z1.mean(axis=0)
    kept = float(s2[:r].sum() / s2.sum())
    r2 = float(1 - (resid**2).sum() / (centred**2).sum())
    return op, kept, r2


@pytest.mark.parametrize("trials", [8, 1])
def test_centred_convention_is_the_old_fit(trials):
    traj = tanh_net_trajectories(5, trials=trials, steps=30)
    p = dsa.DSAParams(n_delays=4, rank=6, fit="centred")
    op, kept, r2 = old_centred_operator(traj, 4, 6, 1e-3)
    np.testing.assert_allclose(dsa.fit_operator(traj, p), op, rtol=1e-12, atol=1e-14)
    assert dsa.fit_quality(traj, p) == pytest.approx((kept, r2), rel=1e-12)
    # and the default convention is another operator
    assert np.abs(dsa.fit_operator(traj, dsa.DSAParams(n_delays=4, rank=6)) - op).max() > 1e-3


@pytest.mark.parametrize("reflect", [False, True])
def test_rotating_hidden_units_gives_the_same_reference_operator(reflect):
    x = tanh_net_trajectories(1)
    q = np.linalg.qr(np.random.default_rng(2).standard_normal((12, 12)))[0]
    if reflect and np.linalg.det(q) > 0:
        q[:, 0] = -q[:, 0]
    p = dsa.DSAParams(n_delays=4, rank=6)
    np.testing.assert_allclose(dsa.fit_operator(x @ q.T, p), dsa.fit_operator(x, p), atol=1e-8)


def test_fit_quality_under_the_reference_convention():
    traj = tanh_net_trajectories(6, trials=5, steps=40, units=6)
    p = dsa.DSAParams(n_delays=3, rank=5)
    want, h, _ = reference_by_hand(traj, 3, 5, 1e-3)
    s = np.linalg.svd(h, compute_uv=False)
    kept, r2 = dsa.fit_quality(traj, p)
    assert kept == pytest.approx((s[:5] ** 2).sum() / (s**2).sum(), rel=1e-10)  # uncentred
    # R² in principal-score units: the rank-5 part of each next Hankel row, predicted
    v = sign_fixed(np.linalg.svd(h, full_matrices=False)[0][:, :5]).reshape(5, -1, 5)
    z0 = v[:, :-1].reshape(-1, 5) * s[:5]
    z1 = v[:, 1:].reshape(-1, 5) * s[:5]
    pred = z0 @ (np.diag(s[:5]) @ want @ np.diag(1 / s[:5])).T
    want_r2 = 1 - ((z1 - pred) ** 2).sum() / ((z1 - z1.mean(0)) ** 2).sum()
    assert r2 == pytest.approx(want_r2, rel=1e-10)
    assert 0.5 < r2 < 1 and 0.5 < kept < 1
    # a noise-free linear system: everything kept, perfectly predicted
    rng = np.random.default_rng(0)
    m = np.linalg.qr(rng.standard_normal((3, 3)))[0] * 0.97
    x = np.zeros((4, 30, 3))
    x[:, 0] = rng.standard_normal((4, 3))
    for t in range(1, 30):
        x[:, t] = x[:, t - 1] @ m.T
    kept, r2 = dsa.fit_quality(x, dsa.DSAParams(n_delays=1, rank=3, ridge=0))
    assert kept == pytest.approx(1, abs=1e-12) and r2 == pytest.approx(1, abs=1e-9)


def test_stored_operators_of_the_two_conventions_never_mix():
    from degeneracy.analysis import metrics

    ref = metrics._operator_key(metrics.DSAMetricParams())
    cen = metrics._operator_key(metrics.DSAMetricParams(fit="centred", trials=0))
    assert ref[0] == cen[0] and ref[1] != cen[1]
    assert ref[1]["convention"] == "reference" and cen[1]["convention"] == "centred"


def package_operator(traj, n_delays, rank, lamb):
    """The reference package's DMD operator A_v (float64) and its coordinates V."""
    from DSA.dmd import DMD

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the package allocates in the default dtype
    try:
        d = DMD(traj, n_delays=n_delays, rank=rank, lamb=lamb, device="cpu")
        d.fit()
    finally:
        torch.set_default_dtype(old)
    return d.A_v.numpy(), d.V[:, :rank].numpy()


@pytest.mark.parametrize("seed,trials,ridge", [(0, 8, 1e-3), (1, 8, 0.0), (2, 1, 1e-3)])
def test_reference_operator_equals_the_packages_up_to_signs(seed, trials, ridge):
    pytest.importorskip("DSA")
    traj = tanh_net_trajectories(seed, trials=trials, steps=60 if trials > 1 else 120)
    p = dsa.DSAParams(n_delays=5, rank=8, ridge=ridge)
    ours = dsa.fit_operator(traj, p)
    theirs, v_pkg = package_operator(traj, 5, 8, ridge)
    v, _, r, _ = dsa._reference_coords(traj, p)
    d = np.sign((v.reshape(-1, r) * v_pkg).sum(0))  # the package's signs are arbitrary
    assert np.abs(np.abs((v.reshape(-1, r) * v_pkg).sum(0)) - 1).max() < 1e-8
    theirs = d[:, None] * theirs * d[None, :]
    assert np.abs(ours - theirs).max() <= 1e-6 * np.abs(theirs).max()
