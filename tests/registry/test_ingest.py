import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from degeneracy.registry.errors import RegistryError
from degeneracy.registry.store import Registry
from tests.cli.helpers import assert_user_error, run_cli
from tests.factories import condition, make_records, snapshot


def _export(filled, tmp_path):
    eid = filled.sql("SELECT ensemble_id FROM ensembles ORDER BY ensemble_id")["ensemble_id"][0]
    return filled.export_ensemble(eid, tmp_path / "exchange"), eid


def test_exchange_folder_round_trips_through_ingest(filled, tmp_path):
    folder, eid = _export(filled, tmp_path)
    target = tmp_path / "other"
    r = run_cli("ingest", folder, registry=target)
    assert r.returncode == 0, r.stderr
    assert "ingested 3 network(s)" in r.stdout
    other = Registry.open(target)
    src_ids = filled.sql(
        "SELECT network_id FROM networks WHERE ensemble_id = ? ORDER BY seed", [eid]
    )["network_id"].to_list()
    assert (
        other.sql("SELECT network_id FROM networks ORDER BY seed")["network_id"].to_list()
        == src_ids
    )
    for name in ("W_h", "W_out"):
        assert np.array_equal(other.load_weights(src_ids, name), filled.load_weights(src_ids, name))
    assert np.array_equal(
        other.load_trajectories(src_ids, "ood"), filled.load_trajectories(src_ids, "ood")
    )
    a, b = other.load_curves(src_ids), filled.load_curves(src_ids)
    assert a.select("network_id", "step", "loss").equals(b.select("network_id", "step", "loss"))


def test_ingest_is_idempotent(filled, tmp_path):
    folder, _ = _export(filled, tmp_path)
    target = tmp_path / "other"
    assert run_cli("ingest", folder, registry=target).returncode == 0
    before = snapshot(target)
    r = run_cli("ingest", folder, registry=target)
    assert (
        r.returncode == 0
        and "ingested 0 network(s)" in r.stdout
        and "3 already present" in r.stdout
    )
    assert Registry.open(target).sql("SELECT count(*) AS n FROM networks")["n"][0] == 3
    data = {k: v for k, v in snapshot(target).items() if k.startswith("data/")}
    assert data == {k: v for k, v in before.items() if k.startswith("data/")}


def _torch_net(hidden=5, inputs=2, outputs=2, seed=0):
    torch.manual_seed(seed)
    return torch.nn.ModuleDict(
        {
            "rnn": torch.nn.RNN(inputs, hidden, batch_first=True),
            "fc": torch.nn.Linear(hidden, outputs),
        }
    )


def test_state_dict_with_toml_sidecar(tmp_path):
    net = _torch_net(seed=3)
    init = {k: v.clone() for k, v in net.state_dict().items()}
    torch.save(init, tmp_path / "net3_init.pt")
    with torch.no_grad():
        net["rnn"].weight_hh_l0.mul_(0.5)
    torch.save(net.state_dict(), tmp_path / "net3.pt")
    (tmp_path / "net3.toml").write_text(
        'task = "flipflop"\nseed = 3\ncomplexity = 2\nfinal_loss = 4e-4\nconverged = true\n'
        'init = "net3_init.pt"\n[factors]\nlr = 1e-3\n'
    )
    (tmp_path / "net3_init.toml").write_text('task = "x"\nseed = 0\n')  # not ingested: not named
    reg_path = tmp_path / "reg"
    r = run_cli("ingest", tmp_path / "net3.pt", registry=reg_path)
    assert r.returncode == 0, r.stderr
    reg = Registry.open(reg_path)
    row = reg.sql("SELECT * FROM networks").row(0, named=True)
    assert row["hidden_size"] == 5 and row["complexity"] == 2 and row["seed"] == 3
    assert row["converged"] is True and row["final_loss"] == pytest.approx(4e-4)
    assert json.loads(row["factors"]) == {"lr": 1e-3}
    nid = [row["network_id"]]
    sd = net.state_dict()
    assert np.array_equal(reg.load_weights(nid, "W_h")[0], sd["rnn.weight_hh_l0"].numpy())
    assert np.array_equal(reg.load_weights(nid, "W_x")[0], sd["rnn.weight_ih_l0"].numpy())
    b = (sd["rnn.bias_ih_l0"] + sd["rnn.bias_hh_l0"]).double().numpy().astype(np.float32)
    assert np.allclose(reg.load_weights(nid, "b")[0], b, atol=1e-7)
    assert np.array_equal(reg.load_weights(nid, "W_out")[0], sd["fc.weight"].numpy())
    assert np.array_equal(reg.load_weights(nid, "W_h", "init")[0], init["rnn.weight_hh_l0"].numpy())


def test_state_dict_folder_groups_one_ensemble_per_condition(tmp_path):
    src = tmp_path / "nets"
    src.mkdir()
    for seed in range(3):
        torch.save(_torch_net(seed=seed, inputs=1, outputs=1).state_dict(), src / f"s{seed}.pt")
        (src / f"s{seed}.json").write_text(json.dumps({"task": "sine", "seed": seed}))
    r = run_cli("ingest", src, registry=tmp_path / "reg")
    assert r.returncode == 0, r.stderr
    reg = Registry.open(tmp_path / "reg")
    assert reg.sql("SELECT count(*) AS n, count(DISTINCT ensemble_id) AS e FROM networks").row(
        0
    ) == (3, 1)


def _bad_inputs(tmp_path, filled):
    """name -> path of an input that must be refused."""
    out = {}
    folder, _ = _export(filled, tmp_path)
    trunc = tmp_path / "truncated"
    trunc.mkdir()
    for f in folder.iterdir():
        (trunc / f.name).write_bytes(f.read_bytes())
    data = (trunc / "weights.parquet").read_bytes()
    (trunc / "weights.parquet").write_bytes(data[: len(data) // 2])
    out["truncated parquet"] = (trunc, "not a readable Parquet file")

    wrong = tmp_path / "wrong_schema"
    wrong.mkdir()
    for f in folder.iterdir():
        (wrong / f.name).write_bytes(f.read_bytes())
    pq.write_table(pa.table({"seed": [0], "stuff": ["x"]}), wrong / "weights.parquet")
    out["parquet of the wrong schema"] = (wrong, "missing column")

    mism = tmp_path / "shape_mismatch"
    mism.mkdir()
    for f in folder.iterdir():
        (mism / f.name).write_bytes(f.read_bytes())
    t = pq.read_table(mism / "weights.parquet")
    shapes = [[7, 7] if s == [8, 8] else s for s in t.column("shape").to_pylist()]
    t = t.set_column(
        t.schema.get_field_index("shape"), "shape", pa.array(shapes, pa.list_(pa.int32()))
    )
    pq.write_table(t, mism / "weights.parquet")
    out["shape that does not match the values"] = (mism, "values")

    alien = tmp_path / "unknown_task"
    alien.mkdir()
    for f in folder.iterdir():
        (alien / f.name).write_bytes(f.read_bytes())
    meta = json.loads((alien / "ensemble.json").read_text())
    meta["condition"]["task"] = "nonsense"
    (alien / "ensemble.json").write_text(json.dumps(meta))
    out["exchange folder of an unknown task"] = (alien, "unknown task 'nonsense'")

    sd = tmp_path / "sd"
    sd.mkdir()
    net = _torch_net(hidden=5)
    bad = dict(net.state_dict())
    bad["rnn.weight_hh_l0"] = torch.zeros(5, 4)
    torch.save(bad, sd / "wrong_shape.pt")
    (sd / "wrong_shape.json").write_text(json.dumps({"task": "flipflop", "seed": 0}))
    out["state_dict with wrong shapes"] = (sd / "wrong_shape.pt", "W_h has shape")

    nan = dict(net.state_dict())
    nan["fc.weight"] = nan["fc.weight"].clone()
    nan["fc.weight"][0, 0] = float("nan")
    torch.save(nan, sd / "nan.pt")
    (sd / "nan.json").write_text(json.dumps({"task": "flipflop", "seed": 1}))
    out["state_dict with NaN"] = (sd / "nan.pt", "NaN")

    torch.save(net.state_dict(), sd / "hidden.pt")
    (sd / "hidden.json").write_text(json.dumps({"task": "flipflop", "seed": 2, "hidden_size": 9}))
    out["sidecar hidden_size that disagrees"] = (sd / "hidden.pt", "expected (9, 9)")

    torch.save(net.state_dict(), sd / "nosidecar.pt")
    out["state_dict without sidecar"] = (sd / "nosidecar.pt", "no sidecar")

    (sd / "garbage.pt").write_bytes(b"not a torch file")
    (sd / "garbage.json").write_text(json.dumps({"task": "flipflop", "seed": 3}))
    out["a file that is not a state_dict"] = (sd / "garbage.pt", "not a loadable state_dict")

    out["a path that does not exist"] = (tmp_path / "nope", "no such file")
    return out


def test_bad_inputs_exit_2_with_one_line_and_change_nothing(filled, tmp_path):
    cases = _bad_inputs(tmp_path, filled)
    good, _ = _export(filled, tmp_path / "good")  # export writes a new folder only
    before = snapshot(filled.root)
    for name, (path, fragment) in cases.items():
        # a bad input next to a good one: nothing at all is written
        r = run_cli("ingest", good, path, registry=filled.root)
        assert_user_error(r, fragment)
        assert snapshot(filled.root) == before, name


def test_ingest_refuses_duplicate_seeds_across_files(tmp_path):
    src = tmp_path / "nets"
    src.mkdir()
    for name in ("a", "b"):
        torch.save(_torch_net().state_dict(), src / f"{name}.pt")
        (src / f"{name}.json").write_text(json.dumps({"task": "sine", "seed": 0}))
    r = run_cli("ingest", src, registry=tmp_path / "reg")
    assert_user_error(r, "the same seed appears twice")
    assert not (tmp_path / "reg").exists()


def test_float64_exchange_values_are_stored_as_float32(tmp_path):
    from degeneracy.registry.exchange import write_exchange
    from degeneracy.registry.parquet_files import build_table

    recs = make_records([0], float64=True)
    tables = {k: build_table(k, recs, {0: "x"}, "e", "flipflop") for k in ("weights",)}
    t = tables["weights"][0]
    for tb in tables["weights"][1:]:
        t = pa.concat_tables([t, tb])
    t = t.drop_columns(["network_id", "ensemble_id", "task"])
    vals = pa.array(
        [np.asarray(v, np.float64) for v in t.column("values").to_pylist()], pa.list_(pa.float64())
    )
    t = t.set_column(t.schema.get_field_index("values"), "values", vals)
    write_exchange(tmp_path / "ex", condition(), [{"seed": 0}], {"weights": t})
    r = run_cli("ingest", tmp_path / "ex", registry=tmp_path / "reg")
    assert r.returncode == 0, r.stderr
    reg = Registry.open(tmp_path / "reg")
    got = reg.load_weights(reg.sql("SELECT network_id FROM networks")["network_id"].to_list())
    assert got.dtype == np.float32
    assert np.array_equal(got[0], recs[0].weights_final["W_h"].astype(np.float32))


def test_state_dict_networks_are_run_on_the_probe_sets(tmp_path):
    """Their trajectories are torch.nn.RNN's own states on this project's probe inputs, the
    missing summaries come from those probes, and every metric then works on them."""
    from degeneracy import api
    from degeneracy.schema.kinds import REPLICA_PROBE
    from degeneracy.tasks import make_task
    from degeneracy.training.trainer import TrainConfig

    nets = {seed: _torch_net(seed=seed, outputs=2) for seed in (0, 1)}
    for seed, net in nets.items():
        torch.save(net.state_dict(), tmp_path / f"n{seed}.pt")
        extra = "final_loss = 0.5\n" if seed == 1 else ""
        (tmp_path / f"n{seed}.toml").write_text(
            f'task = "flipflop"\nseed = {seed}\ncomplexity = 2\n{extra}'
            "[factors.train]\nthreshold = 10.0\n"
        )
    reg = api.open(tmp_path / "reg", create=True)
    api.ingest(reg, [tmp_path / "n0.pt", tmp_path / "n1.pt"])
    rows = reg.sql("SELECT * FROM networks ORDER BY seed").rows(named=True)
    task, cfg = make_task("flipflop", complexity=2), TrainConfig()
    for row in rows:
        net, nid = nets[row["seed"]], [row["network_id"]]
        for probe, ood, rep in (("id", False, 0), ("ood", True, 0), (REPLICA_PROBE, False, 1)):
            batch = task.probe(cfg.probe_trials, cfg.probe_seed, ood, rep)
            with torch.no_grad():
                states, _ = net["rnn"](torch.from_numpy(batch.inputs))
                y = net["fc"](states)
            got = reg.load_trajectories(nid, probe)[0]
            np.testing.assert_allclose(got, states.numpy(), atol=2e-6)
            np.testing.assert_allclose(reg.load_outputs(nid, probe)[0], y.numpy(), atol=2e-6)
            mse = float((((y.numpy() - batch.targets) ** 2) * batch.mask).sum() / batch.mask.sum())
            if probe == "ood":
                assert row["ood_loss"] == pytest.approx(mse, rel=1e-5)
            if probe == "id" and row["seed"] == 0:
                assert row["final_loss"] == pytest.approx(mse, rel=1e-5)
        assert row["converged"] is True  # under the sidecar's threshold of 10
    assert rows[1]["final_loss"] == pytest.approx(0.5)  # the sidecar's own value is kept
    _, groups = api.analyze(reg, ["behavior", "dsa", "pif", "svcca"], ["task"])
    assert groups[0]["n"] == 2 and groups[0]["dsa"] > 0 and groups[0]["dsa_floor"] is not None
    assert groups[0]["pif"] > 0 and groups[0]["pif_chance"] is None  # no initial weights given


def test_a_state_dict_whose_inputs_do_not_fit_the_task_is_one_clear_error(tmp_path):
    from degeneracy import api

    torch.save(_torch_net(seed=0).state_dict(), tmp_path / "n.pt")
    (tmp_path / "n.toml").write_text('task = "flipflop"\nseed = 0\ncomplexity = 3\n')
    with pytest.raises(RegistryError, match="input matrix must be"):
        api.read_networks([tmp_path / "n.pt"])
