"""The metric table is the one list: README's metrics table, the CLI's choices and analyze's
columns follow it; SVCCA against independent computations."""

import re
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

from degeneracy.analysis.metrics import METRICS, PAIRWISE, resolve, resolve_pairwise
from degeneracy.analysis.svcca import SVCCAParams, canonical_correlations, svcca_distance
from degeneracy.registry.errors import RegistryError
from tests.factories import condition, make_records

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_rows() -> dict[str, tuple[str, str]]:
    text = README.read_text().split("## Metrics", 1)[1]
    rows = {}
    for line in text.splitlines()[2:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = re.fullmatch(r"`(\w+)`", cells[1])
        if name:
            rows[name.group(1)] = (cells[0], cells[2])
    return rows


def test_readme_lists_every_metric_with_its_level_and_sql_functions():
    rows = _readme_rows()
    assert set(rows) == set(METRICS)
    for name, (level, sql) in rows.items():
        assert level == METRICS[name].level, name
        for fn in METRICS[name].sql_functions:
            assert f"`{fn}`" in sql, (name, fn)


def test_per_network_metrics_have_no_pairwise_distance():
    assert "behavior" not in PAIRWISE and "fl" not in PAIRWISE and "svcca" in PAIRWISE
    with pytest.raises(RegistryError, match="per-network metric"):
        resolve_pairwise("fl")
    with pytest.raises(RegistryError, match="unknown parameter"):
        resolve("behavior", {"rank": 3})
    with pytest.raises(RegistryError, match="JSON object"):
        resolve("svcca", "[1]")
    with pytest.raises(RegistryError, match="keep"):
        resolve("svcca", {"keep": 0})


def _cca_by_covariance(x: np.ndarray, y: np.ndarray, keep: float) -> np.ndarray:
    """Canonical correlations the textbook way: PCA by an eigendecomposition of each covariance,
    then the eigenvalues of Σxx⁻¹ Σxy Σyy⁻¹ Σyx (= ρ²). No SVD of the data, no QR."""

    def pca(z):
        z = z.reshape(-1, z.shape[-1])
        z = z - z.mean(axis=0)
        vals, vecs = np.linalg.eigh(z.T @ z)
        vals, vecs = vals[::-1], vecs[:, ::-1]
        k = int(np.searchsorted(np.cumsum(vals) / vals.sum(), keep - 1e-12) + 1)
        return z @ vecs[:, :k]

    a, b = pca(x), pca(y)
    sxx, syy, sxy = a.T @ a, b.T @ b, a.T @ b
    m = np.linalg.solve(sxx, sxy) @ np.linalg.solve(syy, sxy.T)
    rho2 = np.sort(np.real(scipy.linalg.eigvals(m)))[::-1][: min(a.shape[1], b.shape[1])]
    return np.sqrt(np.clip(rho2, 0, 1))


@pytest.mark.parametrize("keep", [0.9, 0.99, 1.0])
def test_svcca_matches_the_covariance_computation(keep):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 40, 7)) @ rng.normal(size=(7, 7))  # uneven variances
    y = np.tanh(x @ rng.normal(size=(7, 5))) + 0.3 * rng.normal(size=(6, 40, 5))
    want = _cca_by_covariance(x, y, keep)
    np.testing.assert_allclose(canonical_correlations(x, y, keep), want, atol=1e-9)
    assert svcca_distance(x, y, SVCCAParams(keep=keep)) == pytest.approx(1 - want.mean(), abs=1e-9)


def test_svcca_planted_answers():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(8, 100, 6))
    mixed = x @ rng.normal(size=(6, 6))  # an invertible map of the units: the same subspace
    assert svcca_distance(x, mixed, SVCCAParams(keep=1.0)) == pytest.approx(0, abs=1e-10)
    # planted canonical correlations: y_i = ρ_i z_i + √(1 − ρ_i²) e_i, on many samples
    rho = np.array([0.9, 0.6, 0.3])
    z = rng.normal(size=(200_000, 3))
    y = rho * z + np.sqrt(1 - rho**2) * rng.normal(size=z.shape)
    got = canonical_correlations(z[None], y[None], 1.0)
    np.testing.assert_allclose(got, rho, atol=0.01)
    assert svcca_distance(z[None], y[None], SVCCAParams(keep=1.0)) == pytest.approx(
        1 - rho.mean(), abs=0.01
    )


def test_svcca_is_sql_and_an_analyze_column(registry):
    from degeneracy.analysis.analyze import analyze

    registry.write_ensemble(condition(), make_records([0, 1, 2], steps=8, rng_seed=1))
    ids = sorted(registry.sql("SELECT network_id FROM networks")["network_id"].to_list())
    trajs = registry.load_trajectories(ids, "id")
    want = np.mean([svcca_distance(trajs[i], trajs[j]) for i in range(3) for j in range(i + 1, 3)])
    got = registry.sql("SELECT mean_pairwise('svcca', list(network_id)) AS d FROM networks")
    assert got["d"][0] == pytest.approx(want, rel=1e-9)
    one = registry.sql(f"SELECT svcca_distance('{ids[0]}', '{ids[1]}') AS d")["d"][0]
    assert one == pytest.approx(svcca_distance(trajs[0], trajs[1]), rel=1e-9)
    columns, rows = analyze(registry, ["svcca"], ["task"], converged_only=False)
    assert columns == ["svcca"] and rows[0]["svcca"] == pytest.approx(want, rel=1e-9)


def test_distance_on_arrays_equals_each_metrics_own_function():
    import torch

    from degeneracy import distance, pairwise
    from degeneracy.analysis import dsa, pif, representation

    rng = np.random.default_rng(5)
    x, y, z = (np.tanh(rng.normal(size=(4, 30, 6))) for _ in range(3))
    assert distance("cka", x, torch.as_tensor(y)) == pytest.approx(
        representation.cka_distance(x, y), abs=1e-12
    )
    assert distance("svcca", x, y, {"keep": 0.9}) == pytest.approx(
        svcca_distance(x, y, SVCCAParams(keep=0.9)), abs=1e-12
    )
    w1, w2 = rng.normal(size=(2, 7, 7))
    assert distance("pif", w1, w2) == pytest.approx(pif.pif_distance(w1, w2)[0], abs=1e-12)
    p = dsa.DSAParams(n_delays=2, rank=4)
    ops = np.stack([dsa.fit_operator(t, p) for t in (x, y, z)])
    _, want, _, _ = dsa.all_pairs(ops, p)
    got = pairwise("dsa", [x, y, z], {"n_delays": 2, "rank": 4})
    np.testing.assert_allclose(got[np.triu_indices(3, 1)], want, atol=1e-12)
    assert np.allclose(got, got.T) and not np.diag(got).any()
    with pytest.raises(RegistryError, match="per-network"):
        distance("behavior", x, y)
