"""Bad input is one line and exit code 2 before any work, and leaves the registry byte-identical:
sidecars strictly typed, weights finite as stored, readouts that fit, sizes bounded."""

import json

import pytest
import torch

from tests.cli.helpers import assert_user_error, run_cli
from tests.factories import snapshot


def _net(folder, name="net", hidden=8, outputs=1, readout=True, scale=1.0, **side):
    torch.manual_seed(0)
    sd = {
        "rnn.weight_hh_l0": torch.randn(hidden, hidden) * scale,
        "rnn.weight_ih_l0": torch.randn(hidden, 1),
        "rnn.bias_ih_l0": torch.zeros(hidden),
    }
    if readout:
        sd["fc.weight"] = torch.randn(outputs, hidden if readout is True else readout)
        sd["fc.bias"] = torch.zeros(outputs)
    torch.save(sd, folder / f"{name}.pt")
    (folder / f"{name}.json").write_text(json.dumps({"task": "sine", "seed": 0, **side}))
    return folder / f"{name}.pt"


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"converged": "no"}, "converged must be true or false"),
        ({"converged": "yes"}, "converged must be true or false"),
        ({"seed": -3}, "seed must be an integer >= 0"),
        ({"final_loss": "low"}, "final_loss must be a finite number"),
        ({"factors": {"train": {"threshold": "low"}}}, "threshold must be a number > 0"),
        ({"complexity": 100000}, "complexity must be an integer 1..16"),
        ({"readout": False}, "no readout found"),
        ({"readout": 5}, "the readout must be (1, 8)"),
        ({"scale": 1e300}, "NaN or infinite values (as float32)"),
    ],
)
def test_a_bad_sidecar_or_state_dict_is_one_line_and_changes_nothing(tmp_path, kw, message):
    reg = tmp_path / "reg"
    assert run_cli("init", reg).returncode == 0
    before = snapshot(reg)
    src = tmp_path / "src"
    src.mkdir()
    args = {k: kw.pop(k) for k in ("readout", "scale") if k in kw}
    path = _net(src, **args, **kw)
    assert_user_error(run_cli("ingest", path, registry=reg), message)
    assert snapshot(reg) == before


def test_a_pickle_is_refused_in_one_line_without_a_warning(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    torch.save({"model": torch.nn.Linear(2, 2)}, src / "net.pt")  # a module: not weights only
    (src / "net.json").write_text(json.dumps({"task": "sine", "seed": 0}))
    assert_user_error(run_cli("ingest", src / "net.pt", registry=tmp_path / "reg"), "state_dict")


@pytest.mark.parametrize(
    "args, message",
    [
        (("--hidden", "100000000"), "hidden must be an integer 1..4096"),
        (("--complexity", "99999"), "complexity must be 1..16"),
        (("-p", "steps=99999999"), "steps must be at most 10,000"),
    ],
)
def test_sizes_past_their_bound_are_refused_before_training(tmp_path, args, message):
    reg = tmp_path / "reg"
    assert_user_error(run_cli("train", "flipflop", *args, registry=reg), message)
    assert not reg.exists()


def test_good_values_still_ingest(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    path = _net(src, converged=False, final_loss=0.5, steps=10)
    r = run_cli("ingest", path, registry=tmp_path / "reg")
    assert r.returncode == 0, r.stderr
    got = run_cli("query", "SELECT converged, seed FROM networks", "-f", "csv",
                  registry=tmp_path / "reg")  # fmt: skip
    assert got.stdout.splitlines()[1] == "False,0"


def test_bad_arguments_are_refused_before_any_work_or_write(filled, tmp_path):
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_bytes(b"\xff\xfe garbage")
    spec = "examples/flipflop_complexity.toml"
    cases = [
        (("report", "--where", "bad ("), "bad SQL"),
        (("analyze", "--metrics", ""), "names no metric"),
        (("analyze", "--metrics", "behavior", "--params", "nosuch={}"), "does not ask for"),
        (("analyze", "--metrics", "behavior", "-f", "parquet"), "needs --out"),
        (("distances", "--metric", "pif", "--out", tmp_path / "d.txt"), ".csv or .parquet"),
        (("distances", "--metric", "pif", "--out", tmp_path / "no" / "d.csv"), "does not exist"),
        (("sweep", bad_toml), "not UTF-8"),
        (("sweep", spec, "--executor", "foo"), "executor must be"),
        (("sweep", spec, "--workers", "-1", "--dry-run"), "must be >= 1"),
    ]
    before = snapshot(filled.root)
    for args, message in cases:
        assert_user_error(run_cli(*args, registry=filled.root), message)
        assert snapshot(filled.root) == before, args
    assert not (filled.root / "report").exists()


def test_a_read_only_registry_is_one_line_before_training(filled, monkeypatch):
    """Tests run as root, whom file modes do not stop: the check is what os.access says."""
    import os

    from degeneracy.training import trainer

    catalog = str(filled.layout.catalog)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == catalog else real(p, mode))
    monkeypatch.setattr(trainer, "train_ensemble", lambda *a, **k: pytest.fail("trained"))
    before = snapshot(filled.root)
    r = run_cli("train", "flipflop", "--seeds", "1", "--max-epochs", "1", registry=filled.root)
    assert_user_error(r, "is read-only for this user")
    assert snapshot(filled.root) == before


@pytest.mark.parametrize("garbage", ["{broken", "[1, 2]", '{"ensemble_id": 3}', ""])
def test_garbage_in_pending_is_set_aside_not_fatal(filled, garbage):
    """check --repair, and every later write, move an unreadable journal entry to
    quarantine/pending/ (never deleted) and go on."""
    from tests.factories import condition, make_records

    (filled.root / "pending").mkdir(exist_ok=True)
    (filled.root / "pending" / "ebad.json").write_text(garbage)
    r = run_cli("check", "--repair", registry=filled.root)
    assert r.returncode == 0, r.stderr
    assert "moved pending/ebad.json to quarantine/" in r.stdout and r.stderr == ""
    assert (filled.root / "quarantine" / "pending" / "ebad.json").read_text() == garbage
    (filled.root / "pending" / "ebad2.json").write_text(garbage)
    filled.write_ensemble(condition(complexity=3), make_records([0]))  # a write goes on
    assert not (filled.root / "pending" / "ebad2.json").exists()
    assert run_cli("check", registry=filled.root).returncode == 0
