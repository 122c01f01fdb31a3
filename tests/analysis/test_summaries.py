import numpy as np
import pytest

from degeneracy.analysis.feature_learning import kernel_alignment, ntk, weight_change
from degeneracy.analysis.representation import cka_distance, procrustes_distance
from degeneracy.analysis.summary import behavior, classical_mds, mean_pairwise
from degeneracy.training.model import ModelSpec, effective, init_params, to_numpy


def test_behavior_matches_numpy():
    x = np.array([0.1, 0.3, 0.2, 0.7])
    std, mean, se = behavior(x, se="jackknife")
    assert std == pytest.approx(np.std(x)) and mean == pytest.approx(np.mean(x))
    loo = [np.std(np.delete(x, i)) for i in range(4)]
    assert se == pytest.approx(np.sqrt(3 / 4 * np.sum((loo - np.mean(loo)) ** 2)))


def test_mean_pairwise_and_its_jackknife_against_brute_force():
    rng = np.random.default_rng(0)
    d = rng.random((5, 5))
    d = d + d.T
    np.fill_diagonal(d, 0)
    mean, se = mean_pairwise(d, se="jackknife")
    iu = np.triu_indices(5, 1)
    assert mean == pytest.approx(d[iu].mean())
    loo = []
    for i in range(5):
        keep = [k for k in range(5) if k != i]
        sub = d[np.ix_(keep, keep)]
        loo.append(sub[np.triu_indices(4, 1)].mean())
    assert se == pytest.approx(np.sqrt(4 / 5 * np.sum((np.array(loo) - np.mean(loo)) ** 2)))


def test_mds_recovers_planted_distances():
    pts = np.random.default_rng(1).standard_normal((7, 2))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    coords = classical_mds(d, 2)
    d2 = np.linalg.norm(coords[:, None] - coords[None], axis=2)
    np.testing.assert_allclose(d2, d, atol=1e-9)


def test_cka_and_procrustes_invariances():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 30, 10))
    q = np.linalg.qr(rng.standard_normal((10, 10)))[0]
    assert cka_distance(x, 3.0 * x @ q.T) < 1e-12
    assert procrustes_distance(x, 2.0 * x @ q.T) < 1e-6
    y = rng.standard_normal((4, 30, 10))
    assert cka_distance(x, y) > 0.5 and procrustes_distance(x, y) > 0.5
    # Procrustes handles different widths (zero padding is implicit in the nuclear norm)
    assert procrustes_distance(x, np.concatenate([x @ q.T, np.zeros((4, 30, 3))], 2)) < 1e-6


def test_untrained_network_has_unit_kernel_alignment_and_no_weight_change():
    spec = ModelSpec(2, 1, 8)
    w = to_numpy(effective(spec, init_params(spec, [0])), 0)
    x = np.random.default_rng(3).standard_normal((2, 10, 2))
    k = ntk(spec, w, x)
    assert kernel_alignment(k, k) == pytest.approx(1.0)
    assert weight_change(w["W_h"], w["W_h"]) == (0.0, 0.0)
    other = to_numpy(effective(spec, init_params(spec, [1])), 0)
    assert kernel_alignment(k, ntk(spec, other, x)) < 0.999
    # the kernel is a Gram matrix: symmetric positive semi-definite
    assert np.allclose(k, k.T) and np.linalg.eigvalsh(k).min() > -1e-9


def test_kernel_alignment_measures_how_the_kernel_moved_not_the_readout_scale():
    """Under µP every output but the bias is (1/γ)·g(raw weights), so for the same raw weights
    the NTK without the bias is the same kernel up to 1/γ² and KA cannot depend on γ. With the
    bias's constant block in the kernel (the old code) KA was 0.990 at γ = 0.5 and 1.000 at
    γ = 4 for the same tripled recurrent matrix: it measured the kernel's size, not its change."""
    import torch

    from degeneracy.tasks import make_task

    task = make_task("flipflop", 2)
    x = task.probe(2, 0).inputs[:, :30]
    kas = []
    for gamma in (0.5, 4.0):
        spec = ModelSpec(task.n_inputs, task.n_outputs, 32, "mup", gamma, 0.1)
        raw0 = init_params(spec, [0])
        moved = {**raw0, "W_h": 3.0 * raw0["W_h"]}  # the recurrent weights changed a lot
        w0, wt = to_numpy(effective(spec, raw0), 0), to_numpy(effective(spec, moved), 0)
        kas.append(kernel_alignment(ntk(spec, wt, x), ntk(spec, w0, x)))
        # a lazy plant: only the output bias moved, and the kernel cannot have moved
        bias = {**raw0, "b_out": raw0["b_out"] + torch.tensor(0.5, dtype=raw0["b_out"].dtype)}
        wb = to_numpy(effective(spec, bias), 0)
        assert kernel_alignment(ntk(spec, wb, x), ntk(spec, w0, x)) == pytest.approx(1.0)
    assert kas[0] == pytest.approx(kas[1], rel=1e-9)
    assert kas[0] < 0.9


def test_bootstrap_errors_against_a_plain_loop():
    from degeneracy.analysis.summary import BOOTSTRAP

    rng = np.random.default_rng(4)
    x = rng.random(6)
    d = rng.random((6, 6))
    d = d + d.T
    np.fill_diagonal(d, 0)
    draws = np.random.default_rng(0).integers(0, 6, (BOOTSTRAP, 6))
    stds, means = [], []
    for idx in draws:
        stds.append(np.std(x[idx]))
        vals = [d[a, b] for i, a in enumerate(idx) for b in idx[i + 1 :] if a != b]
        if vals:
            means.append(np.mean(vals))
    assert behavior(x, se="bootstrap")[2] == pytest.approx(np.std(stds, ddof=1))
    assert mean_pairwise(d)[1] == pytest.approx(np.std(means, ddof=1))
    # a group of identical networks has no spread and no error
    assert mean_pairwise(np.zeros((4, 4))) == (0.0, 0.0)


def test_the_kernel_parameters_are_a_recorded_setting_with_the_ntks_default():
    from degeneracy.analysis.feature_learning import NTK_PARAMS
    from degeneracy.analysis.metrics import FeatureParams

    assert tuple(FeatureParams().kernel_over.split(",")) == NTK_PARAMS
    for bad in ("W_h,W_h", "W_h,nope", ""):
        with pytest.raises(ValueError, match="kernel_over"):
            FeatureParams(kernel_over=bad)


@pytest.mark.parametrize("regime", ["standard", "mup"])
def test_the_chunked_ntk_equals_one_jacobian_of_the_whole_batch(regime):
    """`ntk` takes the Jacobian per trial and per chunk of steps (outputs depend only on their
    own trial and earlier steps); brute force: one Jacobian of every output of the batch."""
    import torch
    from torch.func import jacrev

    from degeneracy.analysis.feature_learning import NTK_PARAMS, raw_params
    from degeneracy.training.model import forward_autograd

    spec = ModelSpec(2, 3, 8, regime, 2.0 if regime == "mup" else 1.0)
    w = to_numpy(effective(spec, init_params(spec, [5])), 0)
    x = np.random.default_rng(6).standard_normal((3, 12, 2))
    params = raw_params(spec, w)
    xt = torch.as_tensor(x, dtype=torch.float64)[None]
    trained = {n: params[n] for n in NTK_PARAMS}

    def f(p):
        return forward_autograd(spec, {**params, **p}, xt)[1].reshape(-1)

    jac = jacrev(f)(trained)
    j = torch.cat([jac[n].reshape(jac[n].shape[0], -1) for n in NTK_PARAMS], dim=1)
    want = (j @ j.T).numpy()
    for chunk in (5, 12, 50):  # uneven chunks, one chunk, a chunk longer than the trial
        np.testing.assert_allclose(ntk(spec, w, x, chunk=chunk), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("sizes", [(8, 8), (16, 15), (5, 31)])
def test_spread_test_is_scipys_brown_forsythe(sizes):
    """From each group's mean deviation, its SE and n alone, the p of Levene's test centred at
    the median (scipy, on the raw values), on heavy-tailed losses of unequal groups."""
    from scipy import stats

    from degeneracy.analysis.summary import spread_deviations, spread_test

    rng = np.random.default_rng(sum(sizes))
    a, b = (np.exp(rng.normal(-5, s, n)) for s, n in zip((0.5, 1.0), sizes))
    got = spread_test(*spread_deviations(a), len(a), *spread_deviations(b), len(b))
    assert got == pytest.approx(stats.levene(a, b, center="median").pvalue, rel=1e-9)
    # identical groups: nothing to find
    assert spread_test(*spread_deviations(a), len(a), *spread_deviations(a), len(a)) == 1.0


def test_holm_matches_the_step_down_procedure_at_every_level():
    """Holm's adjusted p against the procedure itself: at level α, walk the p values from the
    smallest, rejecting the k-th (from 0) while p ≤ α / (m − k) and stopping at the first that
    is not; a hypothesis is rejected exactly when its adjusted p ≤ α. Plus a hand case."""
    from degeneracy.analysis.summary import holm

    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2]) == [0.2] and holm([]) == []
    rng = np.random.default_rng(3)
    for m in (2, 5, 11):
        ps = list(np.round(rng.uniform(0, 0.2, m) ** 2, 4))  # rounding makes ties
        adjusted = holm(ps)
        for alpha in np.linspace(0.001, 0.2, 400):
            rejected = set()
            for k, i in enumerate(sorted(range(m), key=lambda i: ps[i])):
                if ps[i] > alpha / (m - k):
                    break
                rejected.add(i)
            assert rejected == {i for i in range(m) if adjusted[i] <= alpha + 1e-15}


def test_analyze_behavior_planted_losses_with_jackknife_default_and_log_spread(registry):
    """Planted OOD losses (one far tail network): the paper's std, its leave-one-out SE by a
    plain loop, the std of log losses beside it; `se = "bootstrap"` is a recorded setting."""
    import dataclasses
    import json

    from degeneracy.analysis.analyze import analyze
    from degeneracy.registry.errors import RegistryError
    from tests.factories import condition, make_records

    ood = np.array([0.004, 0.005, 0.006, 0.005, 0.05])
    recs = [
        dataclasses.replace(r, ood_loss=float(x), converged=True)
        for r, x in zip(make_records(range(5)), ood)
    ]
    registry.write_ensemble(condition(complexity=1), recs)

    def loo_se(v):
        loo = np.array([np.std(np.delete(v, i)) for i in range(len(v))])
        return np.sqrt((len(v) - 1) / len(v) * ((loo - loo.mean()) ** 2).sum())

    _, (row,) = analyze(registry, ["behavior"], ["complexity"])
    assert row["behavior"] == pytest.approx(np.std(ood))
    assert row["behavior_se"] == pytest.approx(loo_se(ood))
    assert row["behavior_mean"] == pytest.approx(np.mean(ood))
    assert row["behavior_log"] == pytest.approx(np.std(np.log(ood)))
    assert row["behavior_log_se"] == pytest.approx(loo_se(np.log(ood)))
    dev = np.abs(ood - 0.005)  # the median of the planted losses
    assert row["behavior_mad"] == pytest.approx(dev.mean())
    assert row["behavior_mad_se"] == pytest.approx(np.std(dev, ddof=1) / np.sqrt(5))
    assert row["behavior_n"] == 5
    # on the log scale the tail network weighs less: its std moves less when it is left out
    assert np.std(np.log(ood[:4])) / np.std(np.log(ood)) > np.std(ood[:4]) / np.std(ood)
    stored = registry.sql("SELECT DISTINCT params FROM results WHERE metric = 'behavior'")
    assert [json.loads(p) for p in stored["params"]] == [{"se": "jackknife"}]

    _, (boot,) = analyze(
        registry, ["behavior"], ["complexity"], params={"behavior": {"se": "bootstrap"}}
    )
    draws = np.random.default_rng(0).integers(0, 5, (200, 5))
    # the bootstrap draws index the group's networks in network-id order
    by_id = registry.sql("SELECT ood_loss FROM networks ORDER BY network_id")["ood_loss"]
    x = by_id.to_numpy()
    assert boot["behavior_se"] == pytest.approx(np.std(x[draws].std(axis=1), ddof=1))
    assert boot["behavior"] == row["behavior"]
    with pytest.raises(RegistryError, match="se must be 'jackknife' or 'bootstrap'"):
        analyze(registry, ["behavior"], ["complexity"], params={"behavior": {"se": "normal"}})
