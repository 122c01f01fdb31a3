"""The declared verdict rules (`analysis.verdicts`) and the measurement they read: the
noise-corrected DSA distance, the scale-free PIF, the share-rule rank, Holm over a family, and
the seeds-needed figure, each against an independent computation."""

import itertools

import numpy as np
import pytest
from scipy import stats

from degeneracy.analysis import dsa, verdicts
from degeneracy.analysis.params import DSAParams, PIFParams
from degeneracy.analysis.pif import pif_distance, pif_pairs
from degeneracy.analysis.report import contravariance_rows
from degeneracy.analysis.summary import corrected_distance, holm


# ------------------------------------------------------------------ the corrected estimator
def _noisy_family(rng, centres, per, sigma, dim=30):
    """Operators as points: each network a true point plus independent noise per probe set,
    so floors and cross pairs have the noise structure the estimator assumes."""
    truth = np.repeat(centres, per, axis=0)
    a = truth + sigma * rng.standard_normal(truth.shape)
    b = truth + sigma * rng.standard_normal(truth.shape)
    cross = np.linalg.norm(a[:, None] - b[None, :], axis=-1)
    cross = np.triu(cross, 1) + np.triu(cross, 1).T  # d(a_i, b_j) for i < j, symmetric
    floors = np.linalg.norm(a - b, axis=1)
    true = np.linalg.norm(truth[:, None] - truth[None, :], axis=-1)
    return cross, floors, true


def test_copies_of_one_network_under_probe_noise_score_about_zero():
    rng = np.random.default_rng(0)
    got = []
    for _ in range(200):
        cross, floors, _ = _noisy_family(rng, np.zeros((1, 30)), 12, sigma=0.05)
        c = corrected_distance(cross, floors)
        got.append(c["excess"] / c["excess_se"])
        # the raw mean is all noise: about √2 σ √dim
        assert cross[np.triu_indices(12, 1)].mean() > 0.3
    # unbiased: the z scores centre on 0 with unit spread (jackknife SE calibrated)
    assert abs(np.mean(got)) < 0.2 and 0.7 < np.std(got) < 1.4


def test_planted_families_separate_and_the_excess_is_the_true_mean_square():
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((2, 30)) * 0.1
    cross, floors, true = _noisy_family(rng, centres, 8, sigma=0.05)
    c = corrected_distance(cross, floors)
    want = (true[np.triu_indices(16, 1)] ** 2).mean()
    assert c["excess"] == pytest.approx(want, abs=3 * c["excess_se"])
    assert c["corrected"] == pytest.approx(np.sqrt(c["excess"]))
    one = corrected_distance(*_noisy_family(rng, centres[:1], 16, sigma=0.05)[:2])
    assert c["excess"] - one["excess"] > 4 * np.hypot(c["excess_se"], one["excess_se"])


def test_the_jackknife_is_leave_one_network_out():
    rng = np.random.default_rng(2)
    cross, floors, _ = _noisy_family(rng, rng.standard_normal((3, 5)), 2, sigma=0.1, dim=5)
    n = len(floors)

    def excess(keep):
        sub = cross[np.ix_(keep, keep)]
        return (sub[np.triu_indices(len(keep), 1)] ** 2).mean() - (floors[keep] ** 2).mean()

    loo = np.array([excess([j for j in range(n) if j != i]) for i in range(n)])
    want = np.sqrt((n - 1) / n * ((loo - loo.mean()) ** 2).sum())
    got = corrected_distance(cross, floors)
    assert got["excess"] == pytest.approx(excess(list(range(n))))
    assert got["excess_se"] == pytest.approx(want)
    assert np.isnan(corrected_distance(cross, np.r_[floors[:-1], np.nan])["excess"])


# ------------------------------------------------------------------ fits from accumulated Grams
def _tanh_trajectories(rng, hidden=10, trials=24, steps=40):
    w = rng.standard_normal((hidden, hidden)) * 1.3 / np.sqrt(hidden)
    u = rng.standard_normal((hidden, 2))
    x = rng.standard_normal((trials, steps, 2))
    h, out = np.zeros((trials, hidden)), []
    for t in range(steps):
        h = np.tanh(h @ w.T + x[:, t] @ u.T)
        out.append(h)
    return np.stack(out, 1)


@pytest.mark.parametrize("ridge", [0.0, 1e-3])
def test_a_fit_from_chunked_grams_is_the_fit_on_all_trials(ridge):
    traj = _tanh_trajectories(np.random.default_rng(3))
    p = DSAParams(n_delays=4, rank=7, ridge=ridge)
    stats_ = dsa.GramStats.empty(4, traj.shape[-1])
    for k in range(0, len(traj), 5):  # uneven chunks
        stats_.add(traj[k : k + 5])
    a, b = dsa.fit_operator(traj, p), dsa.fit_operator_stats(stats_, p)
    # equal up to the coordinates' signs: a diagonal ±1 similarity
    d = np.sign(a[0] * b[0])  # b = D a D with D₀₀ = 1: row 0 gives D
    np.testing.assert_allclose(b, d[:, None] * a * d[None, :], atol=1e-9)
    np.testing.assert_allclose(dsa.fit_quality_stats(stats_, p), dsa.fit_quality(traj, p))
    # a rotation of the hidden units gives the same operator, signs included
    q = np.linalg.qr(np.random.default_rng(4).standard_normal((10, 10)))[0]
    rotated = dsa.GramStats.empty(4, 10)
    rotated.add(traj @ q)
    np.testing.assert_allclose(dsa.fit_operator_stats(rotated, p), b, atol=1e-9)


def test_share_rank_is_the_smallest_rank_whose_median_network_keeps_the_share():
    curves = np.array([[0.5, 0.8, 0.96, 1.0], [0.6, 0.9, 0.94, 1.0], [0.7, 0.96, 0.97, 1.0]])
    assert dsa.share_rank(curves, 0.95) == 3  # medians 0.6, 0.9, 0.96, 1.0
    assert dsa.share_rank(curves, 0.9) == 2
    assert dsa.share_rank(curves[:, :2], 0.99) == 2  # none reaches it: the cap
    traj = _tanh_trajectories(np.random.default_rng(5))
    g = dsa.GramStats.empty(3, 10)
    g.add(traj)
    s = np.linalg.svd(dsa.hankel(traj, 3).reshape(-1, 30), compute_uv=False) ** 2
    np.testing.assert_allclose(g.kept_curve(5), np.cumsum(s)[:5] / s.sum())


# ------------------------------------------------------------------ scale-free PIF
def test_scale_free_pif_ignores_scale_and_equals_the_brute_force_optimum():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((6, 6))
    perm = rng.permutation(6)
    b = 3.7 * (a + 0.3 * rng.standard_normal((6, 6)))[np.ix_(perm, perm)]
    unit = [m / np.linalg.norm(m) for m in (a, b)]
    brute = min(
        np.linalg.norm(unit[0] - unit[1][np.ix_(p, p)]) for p in itertools.permutations(range(6))
    )
    got, _, _ = pif_distance(a, b, PIFParams(norm="frobenius", restarts=8))
    assert got == pytest.approx(brute, rel=1e-9)
    # a common growth of the weights moves the paper's PIF, not the scale-free one
    paper = [pif_distance(k * a, k * b, PIFParams(restarts=8))[0] for k in (1, 2)]
    free = [pif_distance(k * a, k * b, PIFParams(norm="frobenius", restarts=8))[0] for k in (1, 2)]
    assert paper[1] == pytest.approx(2 * paper[0]) and free[1] == pytest.approx(free[0])
    # one search gives every normalization, each as asked for alone
    dist, _, every = pif_pairs([a, b], np.array([[0, 1]]), PIFParams(restarts=8), workers=1)
    assert every["frobenius"][0] == pytest.approx(got) and dist[0] == every["params"][0]


# ------------------------------------------------------------------ the rules
def _row(c, **kw):
    return {"complexity": c, "n": 16, **kw}


def test_dynamics_is_a_t_test_on_the_excess_and_weights_on_pif():
    lo = _row(1, dsa_corrected=0.3, dsa_excess=0.09, dsa_excess_se=0.01, pif=0.1, pif_se=0.01)
    hi = _row(3, dsa_corrected=0.2, dsa_excess=0.04, dsa_excess_se=0.01, pif=0.13, pif_se=0.01)
    tests = {t.level: t for t in verdicts.compare_levels([hi, lo], "complexity")}
    dyn = tests["dynamics"]
    assert dyn.arrow == "↓" and dyn.difference == pytest.approx(-0.1)
    assert dyn.p == pytest.approx(2 * stats.t.sf(0.05 / np.hypot(0.01, 0.01), 15))
    w = tests["weights"]
    assert w.arrow == "↑" and w.p == pytest.approx(2 * stats.t.sf(0.03 / np.hypot(0.01, 0.01), 15))
    # under MIN_N networks at one end: shown, never tested
    few = verdicts.compare_levels([_row(1, **{**lo, "n": 2}), hi], "complexity")
    assert all(t.p is None for t in few)


def test_behavior_is_brown_forsythe_and_must_move_the_std_s_way():
    rng = np.random.default_rng(7)
    x0, x1 = rng.exponential(1.0, 16), rng.exponential(3.0, 16)

    def row(c, x):
        dev = np.abs(x - np.median(x))
        return _row(c, behavior=x.std(), behavior_mad=dev.mean(),
                    behavior_mad_se=dev.std(ddof=1) / 4, behavior_n=16)  # fmt: skip

    t = verdicts.compare(row(1, x0), row(3, x1), verdicts.RULE["behavior"])
    assert t.p == pytest.approx(stats.levene(x0, x1, center="median").pvalue, rel=1e-9)
    lo, hi = row(1, x0), row(3, x1)
    hi["behavior"] = lo["behavior"] - 1  # the std falls while the deviations rise
    t = verdicts.compare(lo, hi, verdicts.RULE["behavior"])
    assert not t.consistent and not t.resolved(1e-9)


def test_one_family_holm_decides_and_seeds_needed_scale_with_the_se():
    def cell(excess_hi):
        return [
            _row(1, dsa_corrected=0.3, dsa_excess=0.09, dsa_excess_se=0.01),
            _row(3, dsa_corrected=0.2, dsa_excess=excess_hi, dsa_excess_se=0.01),
        ]

    # t 3.5, 2.3 and 2.2 (15 df): p 0.003, 0.036 and 0.044
    cells = {"flipflop": cell(0.04), "sine": cell(0.0575), "path_integration": cell(0.0589)}
    table = contravariance_rows({(t, "complexity"): (rows, []) for t, rows in cells.items()})
    got = {r["task"]: r for r in table}
    se = np.hypot(0.01, 0.01)
    p = [2 * stats.t.sf((0.09 - c[1]["dsa_excess"]) / se, 15) for c in cells.values()]
    for task, adjusted in zip(cells, holm(p)):
        assert got[task]["Holm p"] == f"{adjusted:.2g}"
    assert got["flipflop"]["verdict"] == "agrees"  # the paper: complexity ↓ dynamics
    # p 0.036 and 0.044 alone would pass; in a family of 3 neither does
    assert max(p[1:]) < 0.05 and {got[t]["verdict"] for t in ("sine", "path_integration")} == {
        "not resolved"
    }
    alone = contravariance_rows({("sine", "complexity"): (cells["sine"], [])})
    assert alone[0]["verdict"] == "agrees"
    # seeds needed at 80 % power, Bonferroni α/3: n (z·SE/Δ)²
    z = stats.norm.isf(0.05 / 6) + stats.norm.ppf(0.8)
    diff = 0.09 - 0.0575
    want = int(np.ceil(16 * (z * se / diff) ** 2))
    assert got["sine"]["seeds needed"] == str(want)
    assert verdicts.seeds_needed(diff, se, 16, 3) == want
    # quartering the SE (16x the networks) leaves that difference resolved at n
    assert verdicts.seeds_needed(diff, se / 4, 16 * 16, 3) == 16 * 16


def test_the_grid_is_a_display_not_a_veto_and_weights_say_if_they_survive_scale():
    rows = [
        _row(1, dsa_corrected=0.3, dsa_excess=0.09, dsa_excess_se=0.001, pif=0.1, pif_se=0.001,
             pif_scaled=0.5, pif_scaled_se=0.01),
        _row(3, dsa_corrected=0.2, dsa_excess=0.04, dsa_excess_se=0.001, pif=0.2, pif_se=0.001,
             pif_scaled=0.5, pif_scaled_se=0.01),
    ]  # fmt: skip
    grids = {("flipflop", "complexity"): {"all": "↓ at 5 of 9, ↑ at 4"}}
    table = {r["level"]: r for r in contravariance_rows(
        {("flipflop", "complexity"): (rows, [])}, grids)}  # fmt: skip
    assert table["dynamics"]["verdict"] == "agrees"
    assert table["dynamics"]["DSA grid"] == "↓ at 5 of 9, ↑ at 4"
    assert table["weights"]["verdict"] == "agrees"
    assert table["weights"]["scale-free"] == "scale only"  # the scale-free PIF did not move
    assert table["weights (scale-free)"]["verdict"] == "not resolved"


def test_paired_jackknife_leaves_each_seed_out_of_both_levels():
    rng = np.random.default_rng(8)
    n = 10
    seed_effect = rng.normal(0, 1.0, n)  # what a seed's initialization does at every level
    x0 = 5 + seed_effect + rng.normal(0, 0.1, n)
    x1 = 5.3 + seed_effect + rng.normal(0, 0.1, n)
    d0 = np.abs(x0[:, None] - x0[None, :])  # pairwise "distances" of each level
    d1 = np.abs(x1[:, None] - x1[None, :])
    from degeneracy.analysis.summary import paired_jackknife_se, pairwise_loo

    def mean(d):
        return d[np.triu_indices(len(d), 1)].mean()

    loo = (dict(enumerate(pairwise_loo(d0))), dict(enumerate(pairwise_loo(d1))))
    se, shared = paired_jackknife_se((mean(d0), mean(d1)), loo)
    # by hand: drop seed s from both levels, recompute the difference
    keep = [[j for j in range(n) if j != s] for s in range(n)]
    diffs = np.array([mean(d1[np.ix_(k, k)]) - mean(d0[np.ix_(k, k)]) for k in keep])
    assert shared == n
    assert se == pytest.approx(np.sqrt((n - 1) / n * ((diffs - diffs.mean()) ** 2).sum()))
    # the rows carry the values; the verdict takes the paired SE and says so
    lo = _row(1, pif=mean(d0), pif_se=1.0, _loo={"pif": loo[0]})
    hi = _row(3, pif=mean(d1), pif_se=1.0, _loo={"pif": loo[1]})
    t = verdicts.compare(lo, hi, verdicts.RULE["weights"])
    assert t.paired == n and t.se == pytest.approx(se)
    # two seeds in common are too few to pair: the independent SEs
    few = (dict(list(loo[0].items())[:2]), {s + 100: v for s, v in loo[1].items()})
    few[1].update(dict(list(loo[1].items())[:2]))
    assert paired_jackknife_se((mean(d0), mean(d1)), few) is None
