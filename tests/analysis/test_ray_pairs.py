"""Pairwise distances as Ray tasks: the same values as the local executor, finished chunks kept
when a run stops, a killed worker's chunk retried, and one clear error without Ray."""

import json
import os
import sys

import numpy as np
import pytest

from degeneracy import api
from degeneracy.analysis import ray_pairs
from degeneracy.analysis.pairwise_cache import PairwiseCache
from degeneracy.registry.errors import RegistryError
from degeneracy.registry.store import Registry
from tests.cli.helpers import assert_user_error, run_cli
from tests.factories import condition, make_records

#: with composition rounds (the default): DSA's Newton batches are split over tasks, its
#: alignment is not, so every value equals the local executor's
DSA = {"n_delays": 2, "rank": 4, "trials": 0}  # the stored (planted) probe sets


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance (2 CPUs) for the module; the executor uses it and leaves it up."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra (degeneracy[ray])")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # Ray could not start here (no shared memory, ports, ...)
        if ray.is_initialized():
            ray.shutdown()
        pytest.skip(f"a local Ray instance did not start: {type(exc).__name__}: {exc}")
    yield ray
    ray.shutdown()


def _twin(tmp_path, name, n1=6, n2=4) -> Registry:
    """A registry of two ensembles (complexity 1 and 2); every call stores the same networks."""
    Registry.create(tmp_path / name)
    reg = api.open(tmp_path / name)
    reg.write_ensemble(condition(complexity=1), make_records(range(n1), steps=8, rng_seed=1))
    reg.write_ensemble(condition(complexity=2), make_records(range(n2), steps=8, rng_seed=2))
    return reg


def _same(x, y) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        return abs(x - y) <= 1e-9
    return x == y


def _pairs(reg) -> dict:
    rows = reg.sql("SELECT metric, params_hash, a, b, distance FROM pairwise").iter_rows()
    return {(m, h, a, b): d for m, h, a, b, d in rows}


def test_chunks_run_in_column_order_and_cover_every_pair_once():
    idx = np.array([(i, j) for i in range(5) for j in range(i + 1, 5)])  # row order
    parts = ray_pairs.chunk_rows(idx, 3)
    assert [len(p) for p in parts] == [3, 3, 3, 1]
    flat = np.concatenate(parts)
    assert sorted(flat.tolist()) == list(range(len(idx)))
    cols = [tuple(idx[k]) for k in flat]
    assert cols[:6] == [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]  # by column, then row


def test_bad_executor_values_are_one_line_before_any_work(registry, monkeypatch):
    with pytest.raises(RegistryError, match="executor must be"):
        api.distances(registry, "pif", "true", executor="dask")
    with pytest.raises(RegistryError, match="chunk_pairs must be >= 1"):
        api.analyze(registry, ["pif"], executor="ray", chunk_pairs=0)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    reg = _twin(registry.root.parent, "noray")
    with pytest.raises(RegistryError, match=r"pip install 'degeneracy\[ray\]'"):
        api.distances(reg, "pif", "true", executor="ray")
    with pytest.raises(RegistryError, match=r"pip install 'degeneracy\[ray\]'"):
        api.analyze(reg, ["pif"], executor="ray", converged_only=False)
    assert reg.sql("SELECT count(*) AS n FROM pairwise")["n"][0] == 0


def test_cli_bad_executor_values_are_one_line_and_exit_2(tmp_path):
    reg = _twin(tmp_path, "cli")
    for cmd in (["distances", "--metric", "pif"], ["analyze", "--metrics", "pif"]):
        assert_user_error(run_cli(*cmd, "--executor", "dask", registry=reg.root), "executor")
        assert_user_error(
            run_cli(*cmd, "--executor", "ray", "--chunk-pairs", "0", registry=reg.root),
            "chunk_pairs",
        )
    assert_user_error(
        run_cli("analyze", "--dsa-grid", "complexity", "--executor", "ray", registry=reg.root),
        "this machine only",
    )


def test_analysis_and_distances_on_ray_equal_the_local_executor(
    tmp_path, ray_instance, monkeypatch
):
    local, on_ray = _twin(tmp_path, "local"), _twin(tmp_path, "ray")
    real, sizes = ray_pairs.RayPairs.compute, []
    real_solver, newton = ray_pairs.RayPairs.solver, []

    def counted(self, *args):  # the chunks that came back from Ray tasks
        for rows, res in real(self, *args):
            sizes.append(len(rows))
            yield rows, res

    def counted_solver(self, params):  # DSA's Newton batches, split into tasks of 4 x 8
        solve = real_solver(self, params)

        def run(a, b, c0):
            newton.append(len(a))
            return solve(a, b, c0)

        return run

    monkeypatch.setattr(ray_pairs.RayPairs, "compute", counted)
    monkeypatch.setattr(ray_pairs.RayPairs, "solver", counted_solver)
    kw = {"params": {"dsa": DSA}, "converged_only": False, "kernel": False}
    metrics = ["behavior", "dsa", "pif"]
    cols, rows = api.analyze(local, metrics, ["complexity"], **kw)
    cols_r, rows_r = api.analyze(
        on_ray, metrics, ["complexity"], executor="ray", chunk_pairs=4, **kw
    )
    assert ray_instance.is_initialized()  # a running instance is used, not stopped
    # pif and its chance level: 15 pairs in chunks of 4, 4, 4, 3 and 6 in 4, 2; dsa whole
    assert sorted(sizes) == sorted([4, 4, 4, 3, 4, 2] * 2 + [15, 6])
    assert newton[:1] == [15 * 8] and max(newton) > 4 * 8  # batches of several tasks each
    assert cols_r == cols and len(rows_r) == len(rows) == 2
    for a, b in zip(rows, rows_r):
        assert a.keys() == b.keys()
        for k in a:
            assert _same(a[k], b[k]), (k, a[k], b[k])
    # every pair, both DSA scores, the chance level's pairs: the same rows, the same values
    want, got = _pairs(local), _pairs(on_ray)
    # dsa: 2 scores; pif and its chance level: 3 normalizations each
    assert got.keys() == want.keys() and len(want) == 2 * (15 + 6) + 2 * 3 * (15 + 6)
    for k, d in want.items():
        assert got[k] == pytest.approx(d, abs=1e-9), k
    for metric, params in (("pif", None), ("dsa", DSA)):
        ids, d, xy = api.distances(local, metric, "complexity = 1", params)
        ids_r, d_r, xy_r = api.distances(
            on_ray, metric, "complexity = 1", params, executor="ray", chunk_pairs=2
        )
        assert ids_r == ids and np.allclose(d_r, d, rtol=0, atol=1e-9)
        assert np.allclose(np.abs(xy_r), np.abs(xy), atol=1e-6)  # MDS up to sign


def test_a_run_stopped_after_one_chunk_keeps_it_and_the_rerun_computes_the_rest(
    tmp_path, ray_instance, monkeypatch
):
    local, on_ray = _twin(tmp_path, "local"), _twin(tmp_path, "ray")
    ids = sorted(local.sql("SELECT network_id FROM networks WHERE complexity = 1")["network_id"])
    real = ray_pairs.RayPairs.compute
    first: list = []

    def stop_after_one(self, *args):
        chunks = real(self, *args)
        try:
            first.append(next(chunks))
            yield first[-1]
            raise KeyboardInterrupt  # Ctrl-C while the other chunks run
        finally:
            chunks.close()

    for metric, params in (("pif", None), ("cka", None)):  # DSA is cached per matrix
        want = PairwiseCache(local).matrix(metric, ids, params)
        monkeypatch.setattr(ray_pairs.RayPairs, "compute", stop_after_one)
        with pytest.raises(KeyboardInterrupt):
            PairwiseCache(on_ray, executor=ray_pairs.RayPairs(chunk_pairs=4)).matrix(
                metric, ids, params
            )
        kept = on_ray.sql(f"SELECT a, b, distance FROM pairwise WHERE metric = '{metric}'")
        per_pair = 3 if metric == "pif" else 1  # pif: its 3 normalizations from one search
        assert len(first[-1][0]) == 4 and kept.height == 4 * per_pair  # one chunk, flushed
        monkeypatch.setattr(ray_pairs.RayPairs, "compute", real)
        rerun = PairwiseCache(on_ray, executor=ray_pairs.RayPairs(chunk_pairs=4))
        got = rerun.matrix(metric, ids, params)
        assert rerun.computed == 15 - 4  # only what the stopped run had not finished
        assert np.allclose(got, want, rtol=0, atol=1e-9)
        n = on_ray.sql(f"SELECT count(*) AS n FROM pairwise WHERE metric = '{metric}'")["n"][0]
        assert n == 15 * per_pair  # each chunk flushed as it returned, nothing written twice


def _dies_once(real, marker):
    """`real`, except that the first call anywhere (a marker file decides) kills its worker."""

    def task(*args):  # runs in the Ray worker
        try:
            open(marker, "x").close()
        except FileExistsError:
            return real(*args)
        os._exit(1)

    return task


def test_a_killed_worker_is_retried_and_the_matrix_is_complete(tmp_path, ray_instance, monkeypatch):
    local, on_ray = _twin(tmp_path, "local"), _twin(tmp_path, "ray")
    ids = sorted(local.sql("SELECT network_id FROM networks WHERE complexity = 1")["network_id"])
    marker = tmp_path / "killed"
    monkeypatch.setattr(ray_pairs, "_pairs_task", _dies_once(ray_pairs._pairs_task, marker))
    cache = PairwiseCache(on_ray, executor=ray_pairs.RayPairs(chunk_pairs=4))
    got = cache.matrix("pif", ids)
    assert marker.exists()  # a worker did die, and its chunk came back from a retry
    assert cache.computed == 15
    assert np.allclose(got, PairwiseCache(local).matrix("pif", ids), rtol=0, atol=1e-12)
    assert on_ray.sql("SELECT count(*) AS n FROM pairwise")["n"][0] == 15 * 3  # 3 norms
    # DSA's Newton tasks the same way
    marker.unlink()
    monkeypatch.setattr(ray_pairs, "_newton_task", _dies_once(ray_pairs._newton_task, marker))
    got = PairwiseCache(on_ray, executor=ray_pairs.RayPairs(chunk_pairs=4)).matrix("dsa", ids, DSA)
    assert marker.exists()
    np.testing.assert_allclose(
        got, PairwiseCache(local).matrix("dsa", ids, DSA), rtol=0, atol=1e-12
    )


def test_the_cli_on_a_ray_cluster_writes_the_local_distances(tmp_path, ray_instance):
    """`distances --executor ray --address` as a second driver on the module's Ray instance."""
    local, on_ray = _twin(tmp_path, "local"), _twin(tmp_path, "ray")
    args = ["distances", "--metric", "dsa", "--params", json.dumps(DSA)]
    want = run_cli(*args, "--out", tmp_path / "local.csv", registry=local.root)
    assert want.returncode == 0, want.stderr
    address = ray_instance.get_runtime_context().gcs_address
    out = tmp_path / "ray.csv"
    got = run_cli(
        *args,
        *("--executor", "ray", "--address", address, "--chunk-pairs", "3", "--out", out),
        registry=on_ray.root,
    )
    assert got.returncode == 0, got.stderr
    import polars as pl

    a, b = pl.read_csv(tmp_path / "local.csv"), pl.read_csv(out)
    assert a.height == 10 and a.select("a", "b").equals(b.select("a", "b"))  # 5 converged
    assert np.allclose(a["distance"].to_numpy(), b["distance"].to_numpy(), rtol=0, atol=1e-9)
    assert on_ray.sql("SELECT count(*) AS n FROM pairwise")["n"][0] == 2 * 10
    assert ray_instance.is_initialized()  # the cluster is left running
