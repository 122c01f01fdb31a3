"""DSA's Newton batches on a pool of worker processes: the same alignment, problem by problem,
as one process (each problem is solved alone), every batch really shipped, and an analysis
through the pool storing the values of one without it."""

import numpy as np
import pytest
import torch

from degeneracy import api
from degeneracy.analysis import dsa, newton_pool
from degeneracy.analysis.params import DSAParams
from degeneracy.registry.errors import RegistryError
from degeneracy.registry.store import Registry
from tests.cli.helpers import assert_user_error, run_cli
from tests.factories import condition, make_records


@pytest.fixture(scope="module")
def pool():
    with newton_pool.NewtonPool(2) as p:
        yield p


def _problems(n: int, r: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, r, r, generator=gen, dtype=torch.float64)
    b = torch.randn(n, r, r, generator=gen, dtype=torch.float64)
    a, b = (x / torch.linalg.matrix_norm(x)[:, None, None] for x in (a, b))
    c0 = torch.linalg.qr(torch.randn(n, r, r, generator=gen, dtype=torch.float64))[0]
    return a, b, c0


def test_a_batch_solved_on_the_pool_equals_each_problem_solved_alone(pool):
    p = DSAParams(rank=6)
    a, b, c0 = _problems(40, 6, 0)
    c, g, it = pool.solver(p)(a, b, c0)
    for k in (0, 1, 17, 39):  # worker 0 and worker 1 rows, against a batch of one
        ck, gk, itk = dsa.maximize(a[k : k + 1], b[k : k + 1], c0[k : k + 1], p.tol, p.max_iter)
        assert torch.equal(c[k], ck[0]) and g[k] == gk[0] and it[k] == itk[0]
    whole = dsa.maximize(a, b, c0, p.tol, p.max_iter)
    for x, y in zip((c, g, it), whole):
        assert torch.equal(x, y)


def test_distances_through_the_pool_equal_one_process_and_use_it(pool, monkeypatch):
    ops = np.random.default_rng(3).normal(size=(7, 5, 5))
    p = DSAParams(rank=5)
    shipped = []
    real_submit = newton_pool.ProcessPoolExecutor.submit

    def submit(self, fn, *args, **kw):
        shipped.append(len(args[0]))  # problems shipped to a worker
        return real_submit(self, fn, *args, **kw)

    monkeypatch.setattr(newton_pool.ProcessPoolExecutor, "submit", submit)
    local = dsa.all_pairs_scores(ops, p)
    pooled = dsa.all_pairs_scores(ops, p, solve=pool.solver(p))
    assert sum(shipped) >= 21 * 8  # at least the first batch: 21 pairs x 8 starts
    np.testing.assert_array_equal(local[1]["angular"], pooled[1]["angular"])
    np.testing.assert_array_equal(local[2], pooled[2])  # the same Newton iterations


def _pair(tmp_path, name) -> Registry:
    Registry.create(tmp_path / name)
    reg = api.open(tmp_path / name)
    for cx, seed in ((1, 1), (2, 2)):
        reg.write_ensemble(condition(complexity=cx), make_records(range(9), steps=8, rng_seed=seed))
    return reg


def test_an_analysis_on_processes_stores_the_single_process_values(tmp_path):
    params = {"dsa": {"n_delays": 2, "rank": 4, "trials": 0}}
    rows, stored = {}, {}
    for executor in ("local", "processes"):
        reg = _pair(tmp_path, executor)
        rows[executor] = api.analyze(
            reg, ["dsa"], ["complexity"], executor=executor, params=params, converged_only=False
        )[1]
        stored[executor] = sorted(
            reg.sql("SELECT a, b, distance FROM pairwise WHERE metric = 'dsa'").iter_rows()
        )
    assert rows["local"] == rows["processes"]
    assert (
        len(stored["local"]) >= 2 * 36 and stored["local"] == stored["processes"]
    )  # 36 pairs a group


def test_cli_grid_and_distances_run_on_processes(tmp_path, monkeypatch):
    reg = _pair(tmp_path, "cli")
    shipped = []
    real_submit = newton_pool.ProcessPoolExecutor.submit

    def submit(self, fn, *args, **kw):
        shipped.append(len(args[0]))
        return real_submit(self, fn, *args, **kw)

    monkeypatch.setattr(newton_pool.ProcessPoolExecutor, "submit", submit)
    grid = run_cli(
        "analyze",
        "--dsa-grid",
        "complexity",
        "--executor",
        "processes",
        "--params",
        'dsa={"n_delays": 2, "trials": 0}',
        "--format",
        "csv",
        registry=reg.root,
    )
    assert grid.returncode == 0, grid.stderr[-2000:]
    assert "n_delays,rank" in grid.stdout
    assert sum(shipped) >= 10 * 8  # a group of 5 converged networks: 10 pairs x 8 starts
    bad = run_cli(
        "distances",
        "--metric",
        "dsa",
        "--executor",
        "processes",
        "--chunk-pairs",
        "4",
        registry=reg.root,
    )
    assert_user_error(bad, "ray executor only")


def test_a_pool_needs_two_workers():
    with pytest.raises(RegistryError, match="at least 2 workers"):
        newton_pool.NewtonPool(1)
