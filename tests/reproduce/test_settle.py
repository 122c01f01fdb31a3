"""The dynamics settling study's parts, each against an independent computation."""

import numpy as np
import pytest

from degeneracy.analysis import dsa
from degeneracy.reproduce import settle
from degeneracy.schema.kinds import REPLICA_PROBE
from degeneracy.tasks import make_task
from degeneracy.training.trainer import Experiment, TrainConfig, train_ensemble


@pytest.mark.parametrize("regime", ["standard", "mup"])
def test_reprobing_stored_networks_gives_back_their_stored_trajectories(registry, regime):
    """Run from their stored (effective) weights on the training's probe sets, the networks
    must produce what training itself stored (its own forward pass, raw parameters)."""
    exp = Experiment(
        make_task("flipflop", 2),
        hidden=12,
        regime=regime,
        gamma=2.0,
        train=TrainConfig(steps_per_epoch=5, max_epochs=2, threshold=1e-9, batch=8, probe_trials=6),
    )
    recs = train_ensemble(exp, [0, 1, 2])
    registry.write_ensemble(exp.condition(), recs)
    ids = registry.sql("SELECT network_id FROM networks ORDER BY seed")["network_id"].to_list()
    for replica, probe in ((0, "id"), (1, REPLICA_PROBE)):
        again = settle.reprobe(registry, exp, ids, 6, replica)
        stored = registry.load_trajectories(ids, probe)
        assert again.shape == stored.shape
        np.testing.assert_allclose(again, stored, atol=2e-6)
    bigger = settle.reprobe(registry, exp, ids, 24, 0)
    assert bigger.shape[:2] == (3, 24) and not np.allclose(bigger[:, :6], stored)


def test_variance_kept_matches_the_fits_own_report():
    rng = np.random.default_rng(0)
    traj = np.tanh(np.cumsum(rng.normal(size=(5, 30, 6)), axis=1) * 0.3)
    curve = settle.variance_kept(traj, 3, 12)
    for r in (1, 4, 9):
        kept, _ = dsa.fit_quality(traj, dsa.DSAParams(n_delays=3, rank=r))
        assert curve[r - 1] == pytest.approx(kept, rel=1e-9)
    assert np.all(np.diff(curve) >= -1e-12) and curve[-1] < 1
    # all the embedding's dimensions (6 units x 3 delays = 18) keep everything, and beyond
    full = settle.variance_kept(traj, 3, 25)
    assert full[17] == pytest.approx(1.0) and full[-1] == 1.0


def test_share_rank_is_the_first_rank_where_every_levels_median_keeps_the_share():
    ranks = np.arange(1, 11)
    easy = np.stack([1 - 0.5**ranks] * 3)  # medians reach 0.95 at rank 5 (0.96875)
    hard = np.stack([1 - 0.8 ** (ranks / 2)] * 3)  # ... at rank 27: beyond the cap
    mixed = np.stack([1 - 0.5**ranks, 1 - 0.5**ranks, 1 - 0.9**ranks])  # median is 'easy'
    assert settle.share_rank({1: easy}, 0.95, 10) == 5
    assert settle.share_rank({1: easy, 2: mixed}, 0.95, 10) == 5
    assert settle.share_rank({1: easy, 2: hard}, 0.95, 10) == 10  # capped
    assert settle.share_rank({1: easy}, 0.99, 10) == 7


def test_the_stored_probe_size_runs_last_within_each_rule():
    assert settle.units([8, 32, 128]) == [
        (t, rule) for rule in ("share", "share_centred", "fixed") for t in (32, 128, 8)
    ]


def test_level_dynamics_floor_is_zero_for_identical_fits_and_pairs_match_all_pairs():
    rng = np.random.default_rng(3)
    ops = rng.normal(size=(4, 5, 5)) * 0.3
    p = dsa.DSAParams(rank=5, starts=4)
    mean, se, floor = settle.level_dynamics(ops, ops, p)
    assert floor == pytest.approx(0.0, abs=1e-6)
    _, dist, _ = dsa.all_pairs(ops, p)[:3]
    assert mean == pytest.approx(float(np.mean(dist)))
    assert se > 0


def test_summary_names_each_rank_rule_so_the_two_fits_at_one_rank_are_told_apart():
    from degeneracy.reproduce.settle import Study, summary

    rows, verdicts = [], []
    for rule, rank in (("fixed", 10), ("share", 35), ("share_centred", 35)):
        rows.append(
            {
                "cell": "c",
                "trials": 32,
                "rank_rule": rule,
                "rank": rank,
                "capped": False,
                "level": 1,
                "dsa": 0.1,
                "dsa_se": 0.01,
                "dsa_floor": 0.05,
            }
        )
        verdicts.append(
            {
                "cell": "c",
                "trials": 32,
                "rank_rule": rule,
                "rank": rank,
                "measured": "↓",
                "difference": -0.01,
                "2 SE": 0.02,
                "floor": 0.05,
                "agrees": "not resolved",
                "paper": "↓",
            }
        )
    lines = [x for x in summary(rows, verdicts, Study()).splitlines() if x.startswith("| c |")]
    assert [x.split(" | ")[2] for x in lines] == [
        "10 (fixed)",
        "35 (95% var.)",
        "35 (95% var., centred fit)",
    ]
