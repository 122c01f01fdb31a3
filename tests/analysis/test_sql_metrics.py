import dataclasses
import json

import numpy as np
import pytest

from degeneracy import api
from degeneracy.analysis import metrics
from degeneracy.registry.errors import RegistryError
from tests.cli.helpers import assert_user_error, run_cli
from tests.factories import condition, make_records

DSA = json.dumps({"n_delays": 2, "rank": 4, "trials": 0})  # the stored probe sets


@pytest.fixture
def counted(monkeypatch):
    """Count pairs actually computed, per metric."""
    counts = {}
    for name, m in list(metrics.METRICS.items()):
        if not m.pairwise:
            continue

        def wrap(items, pairs, p, _m=m, _name=name):
            counts[_name] = counts.get(_name, 0) + len(pairs)
            return _m.pairs(items, pairs, p)

        monkeypatch.setitem(metrics.METRICS, name, dataclasses.replace(m, pairs=wrap))
    return counts


def _registry(registry, n1=4, n2=3):
    registry.write_ensemble(condition(complexity=1), make_records(range(n1), steps=8, rng_seed=1))
    registry.write_ensemble(condition(complexity=2), make_records(range(n2), steps=8, rng_seed=2))
    return registry


QUERY = f"""
SELECT complexity, stddev_pop(ood_loss) AS behavior,
       mean_pairwise('dsa', list(network_id), '{DSA}') AS dynamics,
       mean_pairwise('pif', list(network_id)) AS weights
FROM networks GROUP BY ALL ORDER BY ALL
"""


def test_the_design_query_runs_and_the_second_run_computes_nothing(registry, counted):
    reg = _registry(registry)
    first = reg.sql(QUERY)
    assert counted == {"dsa": 6 + 3, "pif": 6 + 3}
    # 9 pif pairs under each of its 3 normalizations (one search gives all), 9 dsa rows and 9
    # more for the other DSA score from the same alignments
    assert reg.sql("SELECT count(*) AS n FROM pairwise")["n"][0] == 27 + 18
    second = reg.sql(QUERY)
    assert counted == {"dsa": 9, "pif": 9}  # zero new pairs
    assert first.equals(second)
    assert first["behavior"][0] == pytest.approx(
        np.std(reg.sql("SELECT ood_loss FROM networks WHERE complexity = 1")["ood_loss"].to_numpy())
    )


def test_mean_pairwise_equals_the_mean_of_pair_functions(registry, counted):
    reg = _registry(registry)
    ids = reg.sql("SELECT network_id FROM networks WHERE complexity = 1 ORDER BY 1")["network_id"]
    pairs = reg.sql(
        "SELECT avg(pif_distance(a.network_id, b.network_id)) AS m FROM networks a, networks b "
        "WHERE a.complexity = 1 AND b.complexity = 1 AND a.network_id < b.network_id"
    )["m"][0]
    group = reg.sql(
        "SELECT mean_pairwise('pif', list(network_id)) AS m FROM networks WHERE complexity = 1"
    )["m"][0]
    assert pairs == pytest.approx(group)
    assert counted["pif"] == 6 and len(ids) == 4


def test_regrouping_by_a_label_reuses_every_pair_and_new_networks_cost_only_new_pairs(
    registry, counted
):
    reg = _registry(registry)
    reg.sql("SELECT mean_pairwise('pif', list(network_id)) FROM networks")  # all 7: 21 pairs
    assert counted["pif"] == 21
    reg.add_label("half", "a", "seed < 2")
    reg.add_label("half", "b", "seed >= 2")
    reg.sql(
        "SELECT half, mean_pairwise('pif', list(network_id)) FROM networks_labeled GROUP BY half"
    )
    assert counted["pif"] == 21
    reg.write_ensemble(condition(complexity=1), make_records([10, 11], steps=8, rng_seed=3))
    reg.sql("SELECT mean_pairwise('pif', list(network_id)) FROM networks")
    assert counted["pif"] == 21 + (36 - 21)  # 9 networks: only the 15 new pairs


def test_new_networks_cost_dsa_only_the_alignments_of_new_pairs(registry, monkeypatch):
    from degeneracy.analysis import dsa

    aligned = []  # pairs the optimiser was actually given (not just what the cache asked for)
    real = dsa.align_pairs

    def counting(a_ops, b_ops, *rest):
        aligned.append(len(a_ops))
        return real(a_ops, b_ops, *rest)

    monkeypatch.setattr(dsa, "align_pairs", counting)
    reg = _registry(registry)
    reg.sql(f"SELECT mean_pairwise('dsa', list(network_id), '{DSA}') FROM networks")
    assert sum(aligned) == 21
    reg.write_ensemble(condition(complexity=1), make_records([10, 11], steps=8, rng_seed=3))
    reg.sql(f"SELECT mean_pairwise('dsa', list(network_id), '{DSA}') FROM networks")
    assert sum(aligned) == 21 + 15


def test_dsa_operators_are_fitted_once_and_kept_across_processes(registry, monkeypatch):
    from degeneracy.analysis import dsa

    fits = []
    real = dsa.fit_operator

    def counting(traj, params):
        fits.append(1)
        return real(traj, params)

    monkeypatch.setattr(dsa, "fit_operator", counting)
    reg = _registry(registry)
    reg.sql(f"SELECT mean_pairwise('dsa', list(network_id), '{DSA}') FROM networks")
    assert len(fits) == 7
    assert reg.sql("SELECT count(*) AS n FROM prepared")["n"][0] == 7
    # a new Registry object has an empty in-memory cache, like a new process
    again = api.open(reg.root)
    tighter = json.dumps({**json.loads(DSA), "tol": 1e-10})  # new pairs, same operators
    again.sql(f"SELECT mean_pairwise('dsa', list(network_id), '{tighter}') FROM networks")
    again.sql(f"SELECT mean_pairwise('dsa_wasserstein', list(network_id), '{DSA}') FROM networks")
    assert len(fits) == 7
    # other fit parameters are other operators; a stored one equals a fresh fit
    other = json.dumps({**json.loads(DSA), "rank": 3})
    again.sql(f"SELECT mean_pairwise('dsa', list(network_id), '{other}') FROM networks")
    assert len(fits) == 14
    nid, rows, cols, value = again.sql(
        "SELECT network_id, rows, cols, value FROM prepared WHERE rows = 4 LIMIT 1"
    ).row(0)
    stored = np.frombuffer(value, dtype=np.float64).reshape(rows, cols)
    traj = again.load_trajectories([nid], "id")[0]
    np.testing.assert_array_equal(stored, real(traj, dsa.DSAParams(n_delays=2, rank=4)))


def test_metric_parameters_are_part_of_the_cache_key(registry, counted):
    reg = _registry(registry, 3, 2)
    reg.sql(f"SELECT mean_pairwise('dsa', list(network_id), '{DSA}') FROM networks")
    other = json.dumps({"n_delays": 3, "rank": 4, "trials": 0})
    reg.sql(f"SELECT mean_pairwise('dsa', list(network_id), '{other}') FROM networks")
    assert counted["dsa"] == 20
    rows = reg.sql("SELECT count(DISTINCT params_hash) AS h, max(iterations) AS it FROM pairwise")
    assert rows["h"][0] == 2 * 2 and rows["it"][0] > 0  # x 2: both DSA scores are kept


def test_bad_metric_or_parameters_are_clear(registry):
    reg = _registry(registry, 2, 2)
    with pytest.raises(RegistryError, match="unknown metric"):
        reg.sql("SELECT mean_pairwise('nope', list(network_id)) FROM networks")
    with pytest.raises(RegistryError, match="unknown parameter"):
        reg.sql("SELECT mean_pairwise('dsa', list(network_id), '{\"rnk\": 3}') FROM networks")


def test_analyze_and_distances_commands(registry, tmp_path):
    reg = _registry(registry)
    r = run_cli(
        "analyze",
        "--metrics",
        "behavior,pif,dsa,fl",
        "--params",
        f"dsa={DSA}",
        "--group-by",
        "complexity",
        "--all",
        "-f",
        "json",
        registry=reg.root,
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["complexity"] for x in rows] == [1, 2] and rows[0]["n"] == 4
    assert rows[0]["pif"] > 0 and rows[0]["dsa"] >= 0 and rows[0]["weight_change"] > 0
    stored = reg.sql("SELECT metric, count(*) AS n FROM results GROUP BY ALL ORDER BY ALL")
    assert dict(stored.rows())["pif"] == 2
    out = tmp_path / "d.parquet"
    r = run_cli(
        "distances", "--metric", "pif", "--where", "complexity = 1", "--out", out, registry=reg.root
    )
    assert r.returncode == 0, r.stderr
    import pyarrow.parquet as pq

    pairs = pq.read_table(out).to_pydict()
    assert len(pairs["distance"]) == 6
    mds = pq.read_table(tmp_path / "d_mds.parquet").to_pydict()
    assert len(mds["x"]) == 4
    assert_user_error(run_cli("analyze", "--metrics", "bogus", registry=reg.root), "unknown metric")
    assert_user_error(
        run_cli("distances", "--metric", "pif", "--where", "seed > 99", registry=reg.root),
        "at least 2",
    )


def test_dsa_takes_the_groups_task_defaults_unless_parameters_are_given(registry, monkeypatch):
    from degeneracy.analysis.pairwise_cache import PairwiseCache

    # synthetic networks: their stored probe sets (trials 0), not re-probed
    monkeypatch.setitem(
        metrics.DSA_TASK_DEFAULTS, "flipflop", {"n_delays": 3, "rank": 2, "trials": 0}
    )
    monkeypatch.setitem(metrics.DSA_TASK_DEFAULTS, "sine", {"n_delays": 4, "rank": 3, "trials": 0})
    registry.write_ensemble(condition(), make_records(range(3), steps=8, rng_seed=1))
    registry.write_ensemble(condition("sine"), make_records(range(2), steps=8, rng_seed=2))
    tasks = registry.sql("SELECT task, list(network_id) AS ids FROM networks GROUP BY 1 ORDER BY 1")
    flip, sine = (list(x) for x in tasks["ids"])
    cache = PairwiseCache(registry)
    _, p, _, _ = cache.resolve("dsa", flip)
    assert (p.n_delays, p.rank) == (3, 2)
    _, p, _, _ = cache.resolve("dsa", sine)
    assert (p.n_delays, p.rank) == (4, 3)
    _, p, _, _ = cache.resolve("dsa", flip, {"rank": 5})
    assert (p.n_delays, p.rank) == (3, 5)  # given parameters win, the rest stay per task
    # mixed tasks: no task's defaults (the rank by the share rule over all of them)
    _, p, _, _ = cache.resolve("dsa", flip + sine, {"trials": 0, "n_delays": 2})
    assert p.n_delays == 2 and p.rank >= 1 and p.trials == 0
    # and what is stored says which parameters were used
    registry.sql("SELECT task, mean_pairwise('dsa', list(network_id)) FROM networks GROUP BY 1")
    used = registry.sql(
        "SELECT DISTINCT extra FROM pairwise WHERE metric = 'dsa' "
        "AND extra->'params'->>'score' = 'angular'"
    )["extra"]
    ranks = sorted(json.loads(e)["params"]["rank"] for e in used)
    assert ranks == [2, 3]
    # analyze records, per group, the parameters it used
    from degeneracy.analysis.analyze import analyze

    analyze(registry, ["dsa"], group_by=["task"], converged_only=False, kernel=False)
    stored = registry.sql("SELECT group_key, params FROM results WHERE metric = 'dsa'")
    by_task = {json.loads(k)["task"]: json.loads(p)["rank"] for k, p in stored.iter_rows()}
    assert by_task == {"flipflop": 2, "sine": 3}


def test_both_dsa_scores_come_from_one_alignment(registry, counted):
    """The angular and the Frobenius (paper's) score are kept per pair from the one alignment:
    switching score computes nothing, and each equals its definition at the shared optimum."""
    registry.write_ensemble(condition(complexity=1), make_records(range(4), steps=8, rng_seed=1))
    reg = registry
    ids = reg.sql("SELECT network_id FROM networks ORDER BY 1")["network_id"].to_list()
    angular = json.dumps({"n_delays": 2, "rank": 4, "trials": 0})
    frob = json.dumps({"n_delays": 2, "rank": 4, "score": "euclidean", "trials": 0})
    sql = "SELECT mean_pairwise('dsa', list(network_id), ?) AS d FROM networks"
    a = reg.sql(sql, [angular])["d"][0]
    assert counted == {"dsa": 6}
    f = reg.sql(sql, [frob])["d"][0]
    assert counted == {"dsa": 6}  # no new alignment
    from degeneracy.analysis import dsa

    p = dsa.DSAParams(n_delays=2, rank=4)
    ops = np.stack([dsa.fit_operator(t, p) for t in reg.load_trajectories(ids)])
    _, d, _, g = dsa.all_pairs_scores(ops, p)
    assert a == pytest.approx(np.arccos(np.clip(g, -1, 1)).mean(), abs=1e-9)
    assert f == pytest.approx(d["euclidean"].mean(), abs=1e-9)
    # ‖A − C B Cᵀ‖²_F = ‖A‖² + ‖B‖² − 2‖A‖‖B‖·g at the C found (g = ⟨Â, C B̂ Cᵀ⟩)
    na = np.linalg.norm(ops, axis=(1, 2))
    ii, jj = np.triu_indices(4, 1)
    want = np.sqrt(na[ii] ** 2 + na[jj] ** 2 - 2 * na[ii] * na[jj] * g)
    np.testing.assert_allclose(d["euclidean"], want, rtol=1e-9)


def test_every_metric_of_the_table_has_its_sql_functions(filled):
    """The SQL function list once lagged the metric table (dsa_wasserstein had none): every
    function a table entry names exists on a query connection, and nothing else does."""
    from degeneracy.analysis.metrics import METRICS

    want = {f for m in METRICS.values() for f in m.sql_functions}
    assert {"dsa_distance", "pif_distance", "svcca_distance", "weight_change"} <= want
    import duckdb

    names = "SELECT DISTINCT function_name FROM duckdb_functions()"
    builtin = {r[0] for r in duckdb.connect().execute(names).fetchall()}
    with filled.read_query(names) as rel:
        have = {r[0] for r in rel.fetchall()} - builtin
    have = {f for f in have if not f.startswith("_")}  # the private shapes behind the macros
    assert have == want | {"mean_pairwise", "dsa_floor", "dsa_corrected"}


def test_feature_learning_is_sql_per_network_and_matches_analyze(registry):
    """weight_change(id) against numpy on the stored matrices; both per-network functions,
    averaged in SQL, against analyze's feature-learning columns for the same groups."""
    from degeneracy.analysis.analyze import analyze
    from degeneracy.tasks import make_task
    from degeneracy.training.trainer import Experiment, TrainConfig, train_ensemble

    for gamma in (1.0, 4.0):
        exp = Experiment(
            make_task("flipflop", 1),
            hidden=8,
            regime="mup",
            gamma=gamma,
            train=TrainConfig(steps_per_epoch=4, max_epochs=2, threshold=1e-9, batch=8),
        )
        registry.write_ensemble(exp.condition(), train_ensemble(exp, [0, 1, 2]))
    rows = registry.sql(
        "SELECT network_id, weight_change(network_id) AS wc FROM networks ORDER BY 1"
    ).rows()
    for nid, wc in rows:
        w_t = registry.load_weights([nid], "W_h", "final")[0].astype(np.float64)
        w_0 = registry.load_weights([nid], "W_h", "init")[0].astype(np.float64)
        assert wc == pytest.approx(np.linalg.norm(w_t - w_0) / np.linalg.norm(w_0), rel=1e-12)
    by_sql = registry.sql(
        "SELECT gamma, avg(weight_change(network_id)) AS wc, "
        "avg(kernel_alignment(network_id)) AS ka FROM networks GROUP BY gamma ORDER BY gamma"
    ).rows()
    _, groups = analyze(registry, ["fl"], ["gamma"], converged_only=False)
    for (gamma, wc, ka), g in zip(by_sql, sorted(groups, key=lambda r: r["gamma"])):
        assert gamma == g["gamma"]
        assert wc == pytest.approx(g["weight_change"], rel=1e-12)
        assert ka == pytest.approx(g["kernel_alignment"], rel=1e-12)
    assert registry.sql("SELECT weight_change(NULL) AS w")["w"][0] is None
