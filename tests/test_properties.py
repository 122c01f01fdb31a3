"""Property tests (hypothesis): the store gives back what it was given, and the metrics keep
their invariants on any input hypothesis can think of."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

from degeneracy.analysis import dsa
from degeneracy.analysis.pif import PIFParams, pif_distance
from degeneracy.registry.store import Registry
from tests.factories import condition, make_records

# derandomize: the same examples on every run, so CI's verdict does not depend on the draw
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(
    seeds=st.lists(st.integers(0, 10_000), min_size=1, max_size=4, unique=True),
    hidden=st.integers(1, 9),
    trials=st.integers(1, 4),
    steps=st.integers(1, 6),
    rng_seed=st.integers(0, 2**31),
    float64=st.booleans(),
)
def test_an_ensemble_reads_back_as_it_was_written(seeds, hidden, trials, steps, rng_seed, float64):
    recs = make_records(
        seeds, hidden=hidden, trials=trials, steps=steps, rng_seed=rng_seed, float64=float64
    )
    cond = condition(hidden=hidden)
    with tempfile.TemporaryDirectory() as d:
        reg = Registry.create(Path(d) / "r")
        summary = reg.write_ensemble(cond, recs)
        got_cond, got = reg.load_records(summary.ensemble_id)
        assert got_cond == cond
        by_seed = {r.seed: r for r in got}
        assert sorted(by_seed) == sorted(seeds)
        for r in recs:
            g = by_seed[r.seed]
            for stage in ("weights_final", "weights_init"):
                for name, a in getattr(r, stage).items():
                    b = getattr(g, stage)[name]
                    assert b.dtype == np.float32 and b.shape == a.shape
                    np.testing.assert_array_equal(b, a.astype(np.float32))
            for kind in ("trajectories", "outputs"):
                for probe, a in getattr(r, kind).items():
                    np.testing.assert_array_equal(getattr(g, kind)[probe], a.astype(np.float32))
            np.testing.assert_array_equal(g.curve["step"], r.curve["step"])
            np.testing.assert_allclose(g.curve["loss"], r.curve["loss"], rtol=1e-6)
            assert (g.steps, g.converged) == (r.steps, r.converged)
            assert g.final_loss == r.final_loss and g.ood_loss == r.ood_loss
        assert reg.check().ok


matrices = st.integers(2, 7).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, 2**31), st.floats(0.1, 3.0))
)


@SETTINGS
@given(matrices)
def test_pif_is_zero_on_itself_and_on_any_relabelling_and_never_negative(spec):
    n, seed, scale = spec
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n, n)) * scale
    perm = rng.permutation(n)
    assert pif_distance(w, w)[0] == 0.0
    relabelled = w[np.ix_(perm, perm)]
    d, found, _ = pif_distance(w, relabelled, PIFParams(restarts=4))
    assert d < 1e-12, (d, perm, found)
    other = rng.normal(size=(n, n)) * scale
    d_ab, perm_ab, _ = pif_distance(w, other)
    assert 0 <= d_ab <= np.linalg.norm(w - other) / n**2 + 1e-15  # never above unpermuted
    # the permutation returned is the one the distance was measured with
    assert np.linalg.norm(w - other[np.ix_(perm_ab, perm_ab)]) / n**2 == pytest.approx(d_ab)
    # symmetric, as the minimum over relabellings is: exactly, whichever direction matched best
    assert pif_distance(other, w)[0] == d_ab
    one_way = pif_distance(w, other, PIFParams(symmetric=False))[0]
    assert d_ab <= one_way  # both directions never do worse than one


def _traj(rng, trials, t_len, units):
    """Trajectories of a random stable linear system with tanh: rich enough for a rank-4 fit."""
    a = rng.normal(size=(units, units)) / np.sqrt(units) * 0.9
    x = np.zeros((trials, t_len, units))
    state = rng.normal(size=(trials, units))
    for t in range(t_len):
        state = np.tanh(state @ a.T + 0.1 * rng.normal(size=(trials, units)))
        x[:, t] = state
    return x


#: how far the alignment may miss the optimum: measured on 30 groups of 6 random networks
#: (rank 4, 8 starts, composition rounds), distances computed in reversed order differed by at
#: most 0.0076 rad (2 groups); a random draw in CI later found 0.01005 (the @example below);
#: pairs aligned alone (no composition) missed by up to 0.07 rad
ALIGNMENT_TOL = 0.015


@SETTINGS
@given(
    seed=st.integers(0, 2**31),
    units=st.integers(4, 8),
    fit=st.sampled_from(["reference", "centred"]),
)
@example(seed=4, units=4, fit="centred")  # order dependence 0.01005 rad, found in CI
def test_dsa_is_blind_to_orthogonal_changes_of_the_hidden_basis(seed, units, fit):
    """A network and the same network in a rotated (and reflected) basis of its hidden units
    have the same dynamics: distance 0; so has identical input. Distances do not depend on the
    order of the group (up to the alignment's accuracy) and lie in [0, pi]."""
    rng = np.random.default_rng(seed)
    p = dsa.DSAParams(n_delays=2, rank=4, fit=fit)
    x = _traj(rng, 6, 25, units)
    q = ortho_group.rvs(units, random_state=seed % (2**32 - 1))
    others = [_traj(rng, 6, 25, units) for _ in range(2)]
    ops = np.stack([dsa.fit_operator(v, p) for v in (x, x @ q, *others, x)])
    n = len(ops)

    def matrix(o):
        pairs, dist, _, _ = dsa.all_pairs_scores(o, p)
        d = np.zeros((n, n))
        d[pairs[:, 0], pairs[:, 1]] = d[pairs[:, 1], pairs[:, 0]] = dist["angular"]
        return d

    d = matrix(ops)
    assert d[0, 1] < 1e-5 and d[0, 4] < 1e-6  # rotated copy; identical input
    assert d[0, 2] > 1e-3 and d[0, 3] > 1e-3  # other networks are not
    assert d.min() >= 0 and d.max() <= np.pi
    back = matrix(ops[::-1])[::-1, ::-1]
    assert np.abs(back - d).max() < ALIGNMENT_TOL


@SETTINGS
@given(
    seed=st.integers(0, 2**31),
    units=st.integers(2, 8),
    trials=st.integers(1, 4),
    steps=st.integers(2, 8),
)
def test_the_other_pairwise_metrics_are_symmetric_and_zero_on_identical_input(
    seed, units, trials, steps
):
    """CKA, Procrustes, SVCCA on trajectories and the eigenvalue Wasserstein distance on
    operators. (PIF's own invariants are above; DSA's in the test before.)"""
    from degeneracy.analysis.dsa import eigen_wasserstein
    from degeneracy.analysis.representation import cka_distance, procrustes_distance
    from degeneracy.analysis.svcca import svcca_distance

    rng = np.random.default_rng(seed)
    x, y = (rng.normal(size=(trials, steps, units)) for _ in range(2))
    a, b = (rng.normal(size=(units, units)) for _ in range(2))
    for name, fn, u, v in (
        ("cka", cka_distance, x, y),
        ("procrustes", procrustes_distance, x, y),
        ("svcca", svcca_distance, x, y),
        ("dsa_wasserstein", eigen_wasserstein, a, b),
    ):
        # arccos near 1 turns rounding (1e-16) into ~1e-8: Procrustes is that exact near 0
        assert abs(fn(u, v) - fn(v, u)) < 1e-7, name
        assert abs(fn(u, u)) < 1e-7, name
        assert fn(u, v) > -1e-12, name
