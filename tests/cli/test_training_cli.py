import json
import signal
import subprocess
import time

import numpy as np

from degeneracy.registry.store import Registry
from tests.cli.helpers import HANG_S, assert_user_error, popen_cli, run_cli, wait_for

TINY = ["--hidden", "8", "--max-epochs", "3", "--steps-per-epoch", "10", "--batch", "8"]


def test_train_registers_everything_and_reruns_are_free(tmp_path):
    reg_path = tmp_path / "reg"
    r = run_cli("train", "flipflop", "--complexity", "2", "--seeds", "3", *TINY, registry=reg_path)
    assert r.returncode == 0, r.stderr
    assert "trained 3 networks" in r.stdout
    # stderr is not a terminal here: progress comes as plain lines (a live bar would be blank)
    assert "flipflop complexity=2" in r.stderr and "ensembles: 1/1 done: flipflop" in r.stderr
    reg = Registry.open(reg_path)
    df = reg.sql("SELECT * FROM networks ORDER BY seed")
    assert df["seed"].to_list() == [0, 1, 2] and set(df["complexity"]) == {2}
    assert df["converged"].to_list() == [False] * 3 and df["steps"].to_list() == [30] * 3
    assert df["train_loss"].null_count() == 0  # what the stop rule read last
    factors = json.loads(df["factors"][0])
    assert factors["task_params"]["channels"] == 2 and factors["train"]["max_epochs"] == 3
    ids = df["network_id"].to_list()
    assert reg.load_weights(ids, "W_h", "init").shape == (3, 8, 8)
    assert reg.load_trajectories(ids, "id").shape == (3, 32, 100, 8)
    assert reg.load_trajectories(ids, "ood").shape == (3, 32, 200, 8)
    assert reg.load_outputs(ids, "ood").shape == (3, 32, 200, 2)
    assert reg.load_curves(ids).height == 9
    r = run_cli("train", "flipflop", "--complexity", "2", "--seeds", "3", *TINY, registry=reg_path)
    assert r.returncode == 0 and "already stored" in r.stdout
    assert reg.sql("SELECT count(*) AS n FROM networks")["n"][0] == 3


def test_train_bad_input_is_one_line(tmp_path):
    assert_user_error(run_cli("train", "nope", registry=tmp_path / "r"), "unknown task")
    assert_user_error(run_cli("train", "sine", "-p", "dt", registry=tmp_path / "r"), "key=value")
    assert_user_error(run_cli("train", "sine", "--regime", "x", registry=tmp_path / "r"), "regime")
    assert not (tmp_path / "r").exists()


SPEC = """
name = "tiny"
task = "flipflop"
seeds = 2
hidden = 8
complexity = [1, 2, 3]
[train]
max_epochs = 3
steps_per_epoch = 10
batch = 8
"""


def test_sweep_dry_run_lists_the_grid(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    r = run_cli("sweep", spec, "--dry-run", registry=tmp_path / "reg")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("flipflop complexity=") == 3 and "3 condition(s), 6 networks" in r.stdout
    assert not (tmp_path / "reg").exists()


def test_sweep_skips_what_is_stored(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    reg_path = tmp_path / "reg"
    r = run_cli("train", "flipflop", "--complexity", "2", "--seeds", "2", *TINY, registry=reg_path)
    assert r.returncode == 0, r.stderr
    r = run_cli("sweep", spec, "--dry-run", registry=reg_path)
    assert "to train=0" in r.stdout
    r = run_cli("-q", "sweep", spec, registry=reg_path)
    assert r.returncode == 0, r.stderr
    assert "4 network(s) trained now" in r.stdout
    r = run_cli("sweep", spec, registry=reg_path)
    assert "0 network(s) trained now" in r.stdout
    reg = Registry.open(reg_path)
    assert reg.sql("SELECT count(*) AS n FROM networks")["n"][0] == 6
    assert reg.sql("SELECT count(*) AS n FROM sweeps")["n"][0] == 1


def test_an_interrupted_sweep_finishes_on_rerun_without_duplicates(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.replace("max_epochs = 3", "max_epochs = 40"))
    reg_path = tmp_path / "reg"
    proc = popen_cli(
        "-q",
        "sweep",
        spec,
        registry=reg_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def stored():  # the first ensemble is in: well into the sweep
        return list((reg_path / "data" / "weights").glob("task=*/*.parquet"))

    wait_for(stored, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=HANG_S)
    assert "Traceback" not in err, err
    r = run_cli("sweep", spec, registry=reg_path)
    assert r.returncode == 0, r.stderr
    reg = Registry.open(reg_path)
    rows = reg.sql(
        "SELECT complexity, count(*) AS n FROM networks GROUP BY ALL ORDER BY ALL"
    ).rows()
    assert rows == [(1, 2), (2, 2), (3, 2)]
    w = reg.load_weights(reg.sql("SELECT network_id FROM networks")["network_id"].to_list())
    assert np.isfinite(w).all()


def test_bad_spec_is_one_line(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text("task = 'flipflop'\nhidden = 8\nbogus = 1\n")
    assert_user_error(run_cli("sweep", spec, registry=tmp_path / "r"), "unknown key")
    spec.write_text("task = 'flipflop'\nhidden = [8\n")
    assert_user_error(run_cli("sweep", spec, registry=tmp_path / "r"), "not valid TOML")
    spec.write_text("task = 'flipflop'\nhidden = 8\n[train]\nmax_step = 3\n")
    assert_user_error(run_cli("sweep", spec, registry=tmp_path / "r"), "unknown train setting")
    assert_user_error(
        run_cli("sweep", tmp_path / "missing.toml", registry=tmp_path / "r"), "missing"
    )


def test_a_terminated_sweep_stops_its_worker_processes(tmp_path):
    """`kill` (SIGTERM) on a sweep with --workers 2 used to leave both workers training on,
    orphaned, for the rest of their ensembles; now it stops like Ctrl-C and takes them along."""
    import os

    spec = tmp_path / "long.toml"
    spec.write_text(
        'task = "flipflop"\nhidden = 32\nseeds = 4\ncomplexity = [1, 2]\n'
        "[train]\nmax_epochs = 500\nthreshold = 1e-9\n"
    )
    proc = popen_cli(
        "sweep",
        spec,
        "--workers",
        "2",
        "--threads",
        "1",
        registry=tmp_path / "r",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def children():
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    wait_for(lambda: len(children()) >= 2, proc, poll_s=0.5)
    kids = children()
    assert len(kids) >= 2, "the workers never started"
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(HANG_S) == 130
    assert "interrupted" in proc.stderr.read()
    time.sleep(2)
    alive = []
    for pid in kids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    assert alive == []
