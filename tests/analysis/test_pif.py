import itertools

import numpy as np
import pytest

from degeneracy.analysis.pif import PIFParams, pif_distance


def test_planted_permutation_is_recovered():
    rng = np.random.default_rng(0)
    n = 64
    w = rng.standard_normal((n, n)) / np.sqrt(n)
    perm = rng.permutation(n)
    d, found, _ = pif_distance(w, w[np.ix_(perm, perm)])
    assert d < 1e-12
    assert np.allclose(w[np.ix_(perm, perm)][np.ix_(found, found)], w)


@pytest.mark.parametrize("eps", [0.05, 0.2, 0.5])
def test_noise_of_norm_eps_gives_at_most_about_eps(eps):
    rng = np.random.default_rng(1)
    n = 64
    w = rng.standard_normal((n, n)) / np.sqrt(n)
    noise = rng.standard_normal((n, n))
    noise *= eps / np.linalg.norm(noise)
    perm = rng.permutation(n)
    d, _, _ = pif_distance(w, (w + noise)[np.ix_(perm, perm)], PIFParams(norm="rms"))
    assert d * n <= eps * 1.001


def test_never_above_the_identity_permutation():
    rng = np.random.default_rng(2)
    for _ in range(5):
        a, b = rng.standard_normal((2, 20, 20))
        d, _, _ = pif_distance(a, b, PIFParams(restarts=0))
        assert d <= np.linalg.norm(a - b) / 400 + 1e-12


def test_against_brute_force_on_small_matrices():
    """FAQ is a heuristic: never below the true optimum, and close to it on unrelated pairs;
    exact when the pair is a noisy permuted copy."""
    rng = np.random.default_rng(3)
    perms = [list(p) for p in itertools.permutations(range(6))]
    for _ in range(4):
        a, b = rng.standard_normal((2, 6, 6))
        brute = min(np.linalg.norm(a - b[np.ix_(p, p)]) for p in perms)
        d, _, _ = pif_distance(a, b, PIFParams(restarts=8, norm="rms"))
        assert brute - 1e-9 <= d * 6 <= brute * 1.10  # seen: up to 4 % above
        perm = rng.permutation(6)
        noisy = (a + 0.05 * rng.standard_normal((6, 6)))[np.ix_(perm, perm)]
        brute = min(np.linalg.norm(a - noisy[np.ix_(p, p)]) for p in perms)
        d, _, _ = pif_distance(a, noisy, PIFParams(restarts=8, norm="rms"))
        assert d * 6 == pytest.approx(brute, rel=1e-9)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        pif_distance(np.zeros((3, 3)), np.zeros((4, 4)))


def test_params_norm_is_the_papers_and_equals_rms_over_n():
    """norm="params" (default) = ‖W1 − PᵀW2P‖_F / n² at the found permutation; = rms / n."""
    rng = np.random.default_rng(4)
    n = 24
    a, b = rng.standard_normal((2, n, n))
    d_params, perm, _ = pif_distance(a, b)
    d_rms, perm_rms, _ = pif_distance(a, b, PIFParams(norm="rms"))
    assert np.array_equal(perm, perm_rms)
    assert d_params == pytest.approx(np.linalg.norm(a - b[np.ix_(perm, perm)]) / n**2, rel=1e-12)
    assert d_params == pytest.approx(d_rms / n, rel=1e-14)
    with pytest.raises(ValueError):
        PIFParams(norm="entries")
