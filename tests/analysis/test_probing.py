"""Stored networks run again from their weights (`analysis.probing`): at the training's probe
size, probe set 0 is the stored "id" set and probe set 1 the stored replica, for networks
trained here (standard and µP) and for networks ingested from torch.nn.RNN state_dicts."""

import json

import numpy as np
import pytest
import torch

from degeneracy.analysis import dsa, probing
from degeneracy.analysis.pairwise_cache import PairwiseCache
from degeneracy.analysis.params import DSAParams
from degeneracy.registry.errors import RegistryError
from degeneracy.tasks import make_task
from degeneracy.training.trainer import Experiment, TrainConfig, train_ensemble
from tests.cli.helpers import run_cli


def _trained(registry, regime="standard"):
    cfg = TrainConfig(max_epochs=2, steps_per_epoch=5, threshold=1e-9, batch=8, probe_trials=6)
    exp = Experiment(make_task("flipflop", 2), hidden=12, regime=regime, gamma=2.0, train=cfg)
    registry.write_ensemble(exp.condition(), train_ensemble(exp, [0, 1, 2]))
    return registry.sql("SELECT network_id FROM networks ORDER BY seed")["network_id"].to_list()


def _rerun(registry, ids, trials, replica):
    got = {}
    for part, chunk in probing.states(registry, ids, trials, replica):
        for nid, s in zip(part, chunk):
            got.setdefault(nid, []).append(s)
    return np.stack([np.concatenate(got[i]) for i in ids])


@pytest.mark.parametrize("regime", ["standard", "mup"])
def test_rerun_at_the_training_probe_size_is_the_stored_probe_sets(registry, regime, monkeypatch):
    ids = _trained(registry, regime)
    monkeypatch.setattr(probing, "CHUNK_TRIALS", 4)  # chunks of trials are stitched in order
    for replica, probe in ((0, "id"), (1, "id_b")):
        np.testing.assert_allclose(
            _rerun(registry, ids, 6, replica), registry.load_trajectories(ids, probe), atol=1e-5
        )


def test_ingested_rnn_networks_rerun_with_their_own_update(tmp_path):
    src = tmp_path / "nets"
    src.mkdir()
    for seed in range(3):
        torch.manual_seed(seed)
        net = torch.nn.ModuleDict(
            {"rnn": torch.nn.RNN(1, 5, batch_first=True), "fc": torch.nn.Linear(5, 1)}
        )
        torch.save(net.state_dict(), src / f"s{seed}.pt")
        (src / f"s{seed}.json").write_text(json.dumps({"task": "sine", "seed": seed}))
    assert run_cli("ingest", src, registry=tmp_path / "reg").returncode == 0
    from degeneracy.registry.store import Registry

    reg = Registry.open(tmp_path / "reg")
    ids = reg.sql("SELECT network_id FROM networks ORDER BY seed")["network_id"].to_list()
    stored = reg.load_trajectories(ids, "id")
    np.testing.assert_allclose(_rerun(reg, ids, stored.shape[1], 0), stored, atol=1e-5)
    # and their DSA at the default budget needs nothing more than the weights
    cache = PairwiseCache(reg)
    _, p, _, _ = cache.resolve("dsa", ids)
    assert p.trials == 512 and p.rank >= 1
    assert np.isfinite(cache.floors("dsa", ids)).all()


def test_operators_from_a_rerun_equal_fits_on_the_rerun_trajectories(registry):
    ids = _trained(registry)
    p = DSAParams(n_delays=3, rank=5)
    grams = probing.gram_stats(registry, ids, 20, p.n_delays)
    traj = _rerun(registry, ids, 20, 0)
    for nid, t in zip(ids, traj):
        a, b = dsa.fit_operator(t, p), dsa.fit_operator_stats(grams[nid], p)
        d = np.sign(a[0] * b[0])
        np.testing.assert_allclose(b, d[:, None] * a * d[None, :], atol=1e-6)


def test_a_network_whose_weights_do_not_fit_its_task_is_one_clear_error(registry):
    from tests.factories import condition, make_records

    registry.write_ensemble(condition(complexity=1), make_records(range(2), inputs=3))
    ids = registry.sql("SELECT network_id FROM networks")["network_id"].to_list()
    with pytest.raises(RegistryError, match="cannot be re-probed; pass DSA trials = 0"):
        probing.gram_stats(registry, ids, 8, 2)
