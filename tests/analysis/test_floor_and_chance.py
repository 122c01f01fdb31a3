"""The values every degeneracy number is read against: the DSA noise floor (a network against
itself on an independent probe set), the weights' chance level (initial matrices), and groups
that never pool different settings."""

import json

import numpy as np
import pytest

from degeneracy.analysis import dsa
from degeneracy.analysis.analyze import analyze
from degeneracy.analysis.pif import PIFParams, pif_distance
from degeneracy.registry.records import NetworkRecord
from tests.factories import condition

DSA = {"n_delays": 2, "rank": 4, "trials": 0}  # the stored (planted) probe sets


def _rnn_trajectories(w: np.ndarray, u: np.ndarray, rng, trials=12, steps=40) -> np.ndarray:
    """Hidden states of h_t = tanh(W h_{t-1} + U x_t) under random input pulses."""
    x = rng.standard_normal((trials, steps, u.shape[1])) * (rng.random((trials, steps, 1)) < 0.2)
    h = np.zeros((trials, w.shape[0]))
    out = np.empty((trials, steps, w.shape[0]))
    for t in range(steps):
        h = np.tanh(h @ w.T + x[:, t] @ u.T)
        out[:, t] = h
    return out.astype(np.float32)


def _networks(n=4, hidden=6, identical_replica=False, replica=True, seed=0, factors=None):
    rng = np.random.default_rng(seed)
    records = []
    for s in range(n):
        w = rng.standard_normal((hidden, hidden)) * 1.2 / np.sqrt(hidden)
        u = rng.standard_normal((hidden, 2))
        a = _rnn_trajectories(w, u, np.random.default_rng(100))  # the same inputs for all
        b = a if identical_replica else _rnn_trajectories(w, u, np.random.default_rng(200))
        trajectories = {"id": a, "ood": a}
        if replica:
            trajectories["id_b"] = b
        records.append(
            NetworkRecord(
                seed=s,
                weights_final={"W_h": w.astype(np.float32)},
                weights_init={"W_h": rng.standard_normal((hidden, hidden)).astype(np.float32)},
                trajectories=trajectories,
                final_loss=1e-3,
                ood_loss=float(rng.random() * 1e-2),
                converged=True,
            )
        )
    return condition(hidden=hidden, factors=factors or {}), records


def _ids(reg):
    return reg.sql("SELECT network_id FROM networks ORDER BY seed")["network_id"].to_list()


def test_floor_is_zero_for_identical_probe_sets(registry):
    registry.write_ensemble(*_networks(identical_replica=True))
    with registry.read_query(
        "SELECT dsa_floor(list(network_id), ?) FROM networks", [json.dumps(DSA)]
    ) as rel:
        (value,) = rel.fetchall()[0]
    assert value == pytest.approx(0, abs=1e-6)


def test_floor_is_each_networks_distance_between_its_two_probe_fits(registry):
    cond, records = _networks()
    registry.write_ensemble(cond, records)
    from degeneracy.analysis.pairwise_cache import PairwiseCache

    cache = PairwiseCache(registry)
    floors = cache.floors("dsa", _ids(registry), DSA)
    p = dsa.DSAParams(**{k: v for k, v in DSA.items() if k != "trials"})
    for r, got in zip(records, floors):
        ops = np.stack([dsa.fit_operator(r.trajectories[k], p) for k in ("id", "id_b")])
        _, d, _, _ = dsa.all_pairs(ops, p)
        assert got == pytest.approx(float(d[0]), abs=1e-6)
        assert got > 1e-3  # independent probe sets: a positive floor
    # kept: a second call computes nothing and the SQL function gives their mean
    cache.flush()
    with registry.read_query(
        "SELECT dsa_floor(list(network_id), ?) FROM networks", [json.dumps(DSA)]
    ) as rel:
        assert rel.fetchall()[0][0] == pytest.approx(floors.mean())
    # one row per network and score (both scores come from the one alignment)
    n = registry.sql("SELECT count(*) AS n FROM pairwise WHERE metric = 'dsa_floor'")["n"][0]
    assert n == 2 * len(records)


def test_no_replica_no_floor(registry):
    registry.write_ensemble(*_networks(replica=False))
    with registry.read_query(
        "SELECT dsa_floor(list(network_id), ?) FROM networks", [json.dumps(DSA)]
    ) as rel:
        assert rel.fetchall()[0][0] is None


def test_analyze_reports_floor_kept_variance_and_the_weights_chance_level(registry):
    cond, records = _networks(n=3)
    registry.write_ensemble(cond, records)
    _, rows = analyze(registry, ["dsa", "pif"], ["task"], params={"dsa": json.dumps(DSA)})
    (row,) = rows
    assert row["dsa_floor"] > 0 and row["dsa_floor_se"] is not None
    assert 0 < row["dsa_kept"] <= 1
    init = [r.weights_init["W_h"] for r in records]
    want = np.mean(
        [pif_distance(init[i], init[j], PIFParams())[0] for i in range(3) for j in range(i + 1, 3)]
    )
    assert row["pif_chance"] == pytest.approx(want, rel=1e-9)
    stored = registry.sql("SELECT metric FROM results")["metric"].to_list()
    assert {"dsa_floor", "dsa_kept", "pif_chance"} <= set(stored)


def test_groups_are_split_by_settings_that_differ(registry):
    for thr in (0.01, 0.02):
        cond, records = _networks(n=2, factors={"train": {"threshold": thr, "lr": 1e-3}})
        registry.write_ensemble(cond, records)
    _, rows = analyze(registry, ["behavior"])
    assert sorted(r["train.threshold"] for r in rows) == [0.01, 0.02]  # read back as JSON values
    assert [r["n"] for r in rows] == [2, 2]
    assert all("train.lr" not in r for r in rows)  # the same everywhere: not a key


def test_grid_direction_holds_only_if_resolved_with_one_sign_everywhere():
    from degeneracy.analysis.grid import grid_verdict

    def row(arrow, verdict, setting="all"):
        return {"setting": setting, "measured": arrow, "verdict": verdict}

    assert grid_verdict([row("↓", "resolved")] * 4) == {"all": "↓ at all 4 grid points"}
    mixed = grid_verdict([row("↓", "resolved")] * 3 + [row("↑", "resolved")])
    assert mixed["all"].startswith("not resolved") and "1 ↑, 3 ↓" in mixed["all"]
    weak = grid_verdict([row("↓", "resolved")] * 3 + [row("↓", "not resolved")])
    assert weak["all"].startswith("not resolved")
    assert grid_verdict([row("↓", "resolved")] + [{"setting": "all", "verdict": "n/a"}]) == {
        "all": "↓ at all 1 grid points"
    }


def test_grid_runs_analyze_at_every_point(registry):
    from degeneracy.analysis.grid import dsa_grid

    for c in (1, 2):
        cond, records = _networks(n=3, seed=c)
        registry.write_ensemble(condition(hidden=6, complexity=c), records)
    stored = {"trials": 0}  # the planted probe sets
    rows = dsa_grid(
        registry, "complexity", ["task", "complexity"], None, stored, n_delays=(1, 2), ranks=(3, 4)
    )
    assert [(r["n_delays"], r["rank"]) for r in rows] == [(1, 3), (1, 4), (2, 3), (2, 4)]
    for r in rows:
        _, groups = analyze(
            registry,
            ["dsa"],
            ["task", "complexity"],
            params={"dsa": {"n_delays": r["n_delays"], "rank": r["rank"], **stored}},
            kernel=False,
        )
        assert [r["low"], r["high"]] == pytest.approx([g["dsa_corrected"] for g in groups])
    # trials too short for the delays: that point is "n/a", not an error
    assert (
        dsa_grid(registry, "complexity", ["task", "complexity"], None, stored, (60,), (3,))[0][
            "verdict"
        ]
        == "n/a"
    )


def test_the_corrected_distance_and_scale_free_pif_come_from_sql_and_analyze_alike(registry):
    """The cross pairs are each network's fit on "id" against the other's on "id_b", and
    analyze's corrected value is the estimator on them; SQL gives the same numbers."""
    from degeneracy.analysis.pairwise_cache import PairwiseCache
    from degeneracy.analysis.summary import corrected_distance

    cond, records = _networks(n=5)
    registry.write_ensemble(cond, records)
    ids = _ids(registry)
    _, rows = analyze(registry, ["dsa", "pif"], ["task"], params={"dsa": DSA}, kernel=False)
    (row,) = rows
    p = dsa.DSAParams(**{k: v for k, v in DSA.items() if k != "trials"})
    ops = {k: [dsa.fit_operator(r.trajectories[k], p) for r in records] for k in ("id", "id_b")}
    cross = PairwiseCache(registry).cross("dsa", ids, DSA)
    for i in range(5):
        for j in range(i + 1, 5):
            a, b = sorted((i, j), key=lambda k: ids[k])  # a < b by id: a on id, b on id_b
            _, d, _, _ = dsa.all_pairs(np.stack([ops["id"][a], ops["id_b"][b]]), p)
            assert cross[i, j] == pytest.approx(float(d[0]), abs=1e-3)
    floors = PairwiseCache(registry).floors("dsa", ids, DSA)
    assert row["dsa_corrected"] == pytest.approx(corrected_distance(cross, floors)["corrected"])
    got = registry.sql(
        "SELECT dsa_corrected(list(network_id), ?) AS c, "
        "mean_pairwise('pif', list(network_id), '{\"norm\": \"frobenius\"}') AS s FROM networks",
        [json.dumps(DSA)],
    ).row(0, named=True)
    assert got["c"] == pytest.approx(row["dsa_corrected"])
    assert got["s"] == pytest.approx(row["pif_scaled"])
    w = [r.weights_final["W_h"] / np.linalg.norm(r.weights_final["W_h"]) for r in records]
    assert (
        row["pif_scaled"]
        <= np.mean([np.linalg.norm(w[i] - w[j]) for i in range(5) for j in range(i + 1, 5)]) + 1e-9
    )  # never above the unpermuted distance


def test_a_rerun_reads_exactly_the_values_the_first_run_used(registry):
    """Same-set pairs, cross pairs and floors are aligned in one batch the first time; a later
    analysis (a new process reading the cache) must report identical numbers, not the values
    of a second alignment of the same pairs."""
    cond, records = _networks(n=6)
    registry.write_ensemble(cond, records)
    cols = ["dsa", "dsa_floor", "dsa_corrected", "dsa_excess"]
    first = analyze(registry, ["dsa"], ["task"], params={"dsa": DSA}, kernel=False)[1][0]
    again = analyze(registry, ["dsa"], ["task"], params={"dsa": DSA}, kernel=False)[1][0]
    assert [first[c] for c in cols] == [again[c] for c in cols]
    assert [first[f"{c}_se"] for c in cols] == [again[f"{c}_se"] for c in cols]
