"""A sweep killed (SIGKILL) at random moments, again and again, then run to the end: no network
lost, none stored twice, and nothing left over for `check` to find."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from degeneracy.registry.store import Registry
from tests.cli.helpers import HANG_S

SPEC = """
name = "crash"
task = "flipflop"
seeds = 2
hidden = [{hidden}]
[train]
max_epochs = 2
steps_per_epoch = 3
batch = 8
threshold = 100.0
probe_trials = 4
"""
KILLS = 10


def _sweep(reg, spec) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("DEGENERACY_REGISTRY", None)
    cmd = [sys.executable, "-m", "degeneracy", "--registry", str(reg), "sweep", str(spec)]
    cmd += ["--threads", "1"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stored(reg) -> int:
    if not (reg / "catalog.duckdb").exists():
        return 0
    return int(Registry.open(reg).sql("SELECT count(*) AS n FROM networks")["n"][0])


@pytest.mark.slow  # a whole sweep, then killed ones until 10 kills landed, then one to the end
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    hidden = list(range(4, 24))  # 20 conditions, 40 networks: work left for every kill
    spec = tmp_path / "crash.toml"
    spec.write_text(SPEC.format(hidden=", ".join(map(str, hidden))))
    reg = tmp_path / "reg"
    rng = random.Random(7)
    # how long one whole run takes here, so the kills land all over it (start-up included)
    t0 = time.monotonic()
    probe = _sweep(tmp_path / "timing", spec)
    assert probe.wait(HANG_S) == 0, probe.stderr.read().decode()[-2000:]
    whole = time.monotonic() - t0
    seen = []
    while seen.count(-signal.SIGKILL) < KILLS and len(seen) < 4 * KILLS:
        # a moment within what is left of the run (a resumed run has less to do)
        left = 1 - _stored(reg) / (2 * len(hidden))
        proc = _sweep(reg, spec)
        try:
            proc.wait(rng.uniform(0.2, max(whole * left, 0.2 * whole)))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(HANG_S)
        seen.append(proc.returncode)
    assert seen.count(-signal.SIGKILL) == KILLS, seen  # every one of the 10 really was killed
    last = _sweep(reg, spec)
    assert last.wait(HANG_S) == 0, last.stderr.read().decode()[-2000:]
    r = Registry.open(reg)
    rows = r.sql("SELECT hidden_size, seed, count(*) AS n FROM networks GROUP BY ALL")
    assert rows.height == 2 * len(hidden) and set(rows["n"]) == {1}  # 0 lost, 0 twice
    weights = r.sql("SELECT network_id, count(*) AS n FROM weights GROUP BY ALL")
    assert weights.height == 2 * len(hidden) and set(weights["n"]) == {10}  # 5 params x 2 stages
    res = r.check()
    assert res.ok, res.findings  # no pending entry, orphan or temp file left by the kills
