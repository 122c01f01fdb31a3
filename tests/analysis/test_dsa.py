import numpy as np
import pytest
import torch

from degeneracy.analysis import dsa


def tanh_net_trajectories(seed, trials=8, steps=80, units=12, gain=1.3):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((units, units)) * gain / np.sqrt(units)
    h = rng.standard_normal((trials, units))
    out = np.zeros((trials, steps, units))
    for t in range(steps):
        h = np.tanh(h @ w.T)
        out[:, t] = h
    return out


P = dsa.DSAParams(n_delays=4, rank=6)


def test_hankel_matches_a_naive_construction():
    x = np.random.default_rng(0).standard_normal((2, 7, 3))
    h = dsa.hankel(x, 3)
    for tr in range(2):
        for row in range(5):
            t = row + 2
            want = np.concatenate([x[tr, t], x[tr, t - 1], x[tr, t - 2]])
            assert np.array_equal(h[tr, row], want)


def test_gradient_and_hessian_match_finite_differences():
    rng = np.random.default_rng(1)
    a = dsa.normalize(rng.standard_normal((1, 5, 5)))
    b = dsa.normalize(rng.standard_normal((1, 5, 5)))
    c = torch.linalg.qr(torch.randn(1, 5, 5, dtype=torch.float64))[0]
    grad, hvp = dsa._grad_hess(a, b, c)
    w = dsa._skew(torch.randn(1, 5, 5, dtype=torch.float64))

    def f(t):
        return dsa.objective(a, b, c @ torch.linalg.matrix_exp(t * w)).item()

    eps = 1e-4
    assert (f(eps) - f(-eps)) / (2 * eps) == pytest.approx(dsa._dot(grad, w).item(), rel=1e-6)
    second = (f(eps) - 2 * f(0) + f(-eps)) / eps**2
    assert second == pytest.approx(dsa._dot(w, hvp(w)).item(), rel=1e-4)


def test_truncated_cg_dropping_finished_problems_equals_the_whole_batch(monkeypatch):
    """Problems leave truncated CG at different steps (boundary, negative curvature,
    converged); dropping them from the batch must not change any problem's step."""
    rng = np.random.default_rng(3)
    a = dsa.normalize(rng.standard_normal((40, 6, 6)))
    q = torch.linalg.qr(torch.randn(40, 6, 6, dtype=torch.float64))[0]
    # the first half: B a rotated copy of A, started near its optimum C = Qᵀ with room to
    # converge inside the region; the second half: unrelated B, a small region
    b = q @ a @ q.transpose(1, 2)
    b[20:] = dsa.normalize(rng.standard_normal((20, 6, 6)))
    near = dsa._skew(torch.as_tensor(rng.standard_normal((40, 6, 6)))) * 0.05
    c = q.transpose(1, 2) @ torch.linalg.matrix_exp(near)
    radius = torch.cat([torch.full((20,), 10.0), torch.as_tensor(rng.uniform(0.01, 0.5, 20))])
    grad, hvp = dsa._grad_hess(a, b, c)
    results = []
    for share in (0.3, 2.0):  # 2.0: never compacts
        monkeypatch.setattr(dsa, "_COMPACT", share)
        results.append(dsa._steihaug(grad, hvp, radius, 15))
    (z, edge), (z_whole, edge_whole) = results
    assert edge.any() and not edge.all()  # both kinds of exit are exercised
    assert torch.equal(edge, edge_whole)
    assert torch.allclose(z, z_whole, rtol=0, atol=1e-13)


def test_a_network_against_itself_is_zero():
    x = tanh_net_trajectories(0)
    op = dsa.fit_operator(x, P)
    _, d, _, _ = dsa.all_pairs(np.stack([op, op]), P)
    assert d[0] < 1e-6


@pytest.mark.parametrize("reflect", [False, True])
def test_rotated_or_reflected_copies_score_zero(reflect):
    x = tanh_net_trajectories(1)
    q = np.linalg.qr(np.random.default_rng(2).standard_normal((12, 12)))[0]
    if reflect:
        q[:, 0] *= -1
    ops = np.stack([dsa.fit_operator(x, P), dsa.fit_operator(x @ q.T, P)])
    _, d, _, _ = dsa.all_pairs(ops, P)
    assert d[0] < 1e-4


def test_a_randomly_conjugated_operator_scores_zero_and_a_different_system_does_not():
    rng = np.random.default_rng(3)
    a = dsa.fit_operator(tanh_net_trajectories(4), P)
    q = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    q[:, 0] *= -1
    other = dsa.fit_operator(tanh_net_trajectories(5, gain=0.7), P)
    _, d, _, _ = dsa.all_pairs(np.stack([a, q @ a @ q.T, other]), P)
    assert d[0] < 1e-4
    assert d[1] > 0.1 and d[2] > 0.1


def test_symmetric_and_batched_equals_single_pair():
    # centred operators: there 8 starts alone find each pair's optimum from either side (on
    # reference operators one of these pairs needs the composition rounds to get there)
    p0 = dsa.DSAParams(n_delays=4, rank=6, rounds=0, fit="centred")
    ops = np.stack([dsa.fit_operator(tanh_net_trajectories(s), p0) for s in range(4)])
    _, batched, _, _ = dsa.all_pairs(ops, p0)
    _, on_cpu, _, _ = dsa.all_pairs(ops, p0, device="cpu")  # the default picks CUDA if present
    np.testing.assert_allclose(batched, on_cpu, atol=1e-9)
    single = [dsa.all_pairs(ops[[i, j]], p0)[1][0] for i, j in zip(*np.triu_indices(4, 1))]
    np.testing.assert_allclose(batched, single, atol=1e-9)
    back = [dsa.all_pairs(ops[[j, i]], p0)[1][0] for i, j in zip(*np.triu_indices(4, 1))]
    np.testing.assert_allclose(single, back, atol=1e-6)


def multistart(ops, starts=24):
    """Independent check: best angular distance per pair i < j from random orthogonal starts."""
    ii, jj = np.triu_indices(len(ops), 1)
    a = dsa.normalize(np.repeat(ops[ii], starts, 0))
    b = dsa.normalize(np.repeat(ops[jj], starts, 0))
    gen = torch.Generator().manual_seed(0)
    r = ops.shape[-1]
    c0 = torch.linalg.qr(torch.randn(len(a), r, r, dtype=torch.float64, generator=gen))[0]
    _, g_multi, _ = dsa.maximize(a, b, c0)
    return np.arccos(np.clip(g_multi.view(len(ii), starts).max(1).values.numpy(), -1, 1))


def test_alignment_is_at_least_as_good_as_a_multistart_search():
    ops = np.stack([dsa.fit_operator(tanh_net_trajectories(s), P) for s in range(5)])
    _, d, iters, g = dsa.all_pairs(ops, P)
    best = multistart(ops)
    assert np.all(d <= best + 1e-3), (d, best)
    assert iters.min() > 0


@pytest.mark.parametrize("fit", ["reference", "centred"])
def test_the_default_search_in_a_larger_group_matches_a_multistart_search(fit):
    """8 starts + composition rounds reach the best optimum known (a 24-start search, and 8
    starts without rounds) on every pair; 2 starts + rounds missed one by 0.02 rad here."""
    n, p = 12, dsa.DSAParams(n_delays=4, rank=6, fit=fit)
    ops = np.stack([dsa.fit_operator(tanh_net_trajectories(s), p) for s in range(n)])
    _, d, _, _ = dsa.all_pairs(ops, p)
    _, d8, _, _ = dsa.all_pairs(ops, dsa.DSAParams(n_delays=4, rank=6, fit=fit, rounds=0))
    best = np.minimum(multistart(ops), d8)
    assert np.all(d <= best + 1e-6), (d - best).max()


def test_a_subset_of_pairs_is_aligned_alone_and_matches_the_full_group():
    ops = np.stack([dsa.fit_operator(tanh_net_trajectories(s), P) for s in range(6)])
    _, full, _, _ = dsa.all_pairs(ops, P)
    want = np.array([[0, 3], [2, 5], [4, 5]])
    pairs, d, _, _ = dsa.all_pairs(ops, P, pairs=want)
    assert np.array_equal(pairs, want)
    k = [list(zip(*np.triu_indices(6, 1))).index(tuple(p)) for p in want]
    np.testing.assert_allclose(d, full[k], atol=1e-3)
    with pytest.raises(ValueError):
        dsa.all_pairs(ops, P, pairs=np.array([[3, 1]]))


def test_euclidean_score_and_eigenvalue_approximation():
    a = dsa.fit_operator(tanh_net_trajectories(6), P)
    q = np.linalg.qr(np.random.default_rng(7).standard_normal((6, 6)))[0]
    assert dsa.eigen_wasserstein(a, q @ a @ q.T) < 1e-8
    p = dsa.DSAParams(n_delays=4, rank=6, score="euclidean")
    _, d, _, _ = dsa.all_pairs(np.stack([a, q @ a @ q.T]), p)
    assert d[0] < 1e-4


@pytest.mark.parametrize("trials", [8, 1])  # Gram of the columns, and of the rows (short data)
def test_operator_from_gram_matrix_equals_one_from_a_plain_svd(trials):
    traj = tanh_net_trajectories(8, trials=trials, steps=30)
    p = dsa.DSAParams(n_delays=4, rank=5, fit="centred")
    h = dsa.hankel(traj, 4)
    flat = h.reshape(-1, h.shape[-1])
    flat = flat - flat.mean(0)
    _, s, vt = np.linalg.svd(flat, full_matrices=False)
    z = flat @ vt[:5].T
    z = (z * np.sign(z[np.abs(z).argmax(0), np.arange(5)])).reshape(trials, -1, 5)
    z0, z1 = z[:, :-1].reshape(-1, 5), z[:, 1:].reshape(-1, 5)
    lam = 1e-3 * np.mean(s[:5] ** 2)
    want = np.linalg.solve(z0.T @ z0 + lam * np.eye(5), z0.T @ z1).T
    np.testing.assert_allclose(dsa.fit_operator(traj, p), want, atol=1e-8)


def test_fit_quality_of_a_planted_linear_system_and_of_noise():
    rng = np.random.default_rng(0)
    theta = 0.3
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) * 0.99
    embed = rng.standard_normal((2, 10))
    x = np.zeros((6, 60, 2))
    x[:3, 0] = rng.standard_normal((3, 2))
    x[3:, 0] = -x[:3, 0]  # trials in ± pairs: the embedding's mean is 0, so no affine offset
    for t in range(1, 60):
        x[:, t] = x[:, t - 1] @ rot.T
    kept, r2 = dsa.fit_quality(x @ embed, dsa.DSAParams(n_delays=2, rank=2, ridge=0))
    assert kept > 1 - 1e-9 and r2 > 1 - 1e-9
    kept, r2 = dsa.fit_quality(rng.standard_normal((6, 60, 10)), dsa.DSAParams(n_delays=1, rank=4))
    assert kept < 0.6 and r2 < 0.1


def test_skipping_seeds_already_run_equals_rerunning_the_top_three_every_round():
    n, p = 7, dsa.DSAParams(n_delays=4, rank=5, starts=2, rounds=3)
    ops = np.stack([dsa.fit_operator(tanh_net_trajectories(s, gain=1.6), p) for s in range(n)])
    _, _, _, g_fast = dsa.all_pairs(ops, p)
    # plain rounds: every pair reruns Newton from its best three compositions each round
    ii, jj = np.triu_indices(n, 1)
    al = dsa.align_pairs(ops[ii], ops[jj], p)
    g, c = torch.as_tensor(al.g), torch.as_tensor(al.c)
    a = dsa.normalize(ops)
    for _ in range(3):
        full = torch.zeros(n, n, 5, 5, dtype=torch.float64)
        full[ii, jj], full[jj, ii] = c, c.transpose(-1, -2)
        seeds, owner = [], []
        for q, (i, j) in enumerate(zip(ii, jj)):
            ks = [k for k in range(n) if k not in (i, j)]
            comp = full[i, ks] @ full[ks, j]
            gk = dsa.objective(a[i].expand_as(comp), a[j].expand_as(comp), comp)
            seeds.append(comp[torch.topk(gk, 3).indices])
            owner += [q] * 3
        owner = np.array(owner)
        c_new, g_new, _ = dsa.maximize(a[ii][owner], a[jj][owner], torch.cat(seeds))
        improved = False
        for q in range(len(ii)):
            rows = np.flatnonzero(owner == q)
            best = rows[int(g_new[rows].argmax())]
            if g_new[best] > g[q] + 1e-12:
                g[q], c[q], improved = g_new[best], c_new[best], True
        if not improved:
            break
    np.testing.assert_allclose(g_fast, g.numpy(), atol=1e-12)
