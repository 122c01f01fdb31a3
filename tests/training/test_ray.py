"""The Ray executor: the same networks as the local one, and a clean error without Ray."""

import os
import sys

import numpy as np
import pytest

from degeneracy import api
from degeneracy.registry.errors import RegistryError
from tests.cli.helpers import run_cli

SPEC = (
    'task = "flipflop"\nhidden = 8\nseeds = 2\ncomplexity = [1, 2]\n'
    "[train]\nmax_epochs = 2\nsteps_per_epoch = 3\nbatch = 8\nprobe_trials = 4\n"
)


def test_without_ray_the_executor_is_one_clear_error(registry, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(RegistryError, match=r"pip install 'degeneracy\[ray\]'"):
        api.sweep(registry, SPEC, "cpu", executor="ray")
    assert registry.sql("SELECT count(*) AS n FROM networks")["n"][0] == 0
    with pytest.raises(RegistryError, match="executor must be"):
        api.sweep(registry, SPEC, "cpu", executor="dask")


def test_a_sweep_on_a_local_ray_trains_the_same_networks_as_the_local_executor(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra (degeneracy[ray])")
    local = api.open(tmp_path / "local", create=True)
    api.sweep(local, SPEC, "cpu", threads=1)
    on_ray = api.open(tmp_path / "ray", create=True)
    try:
        res = api.sweep(on_ray, SPEC, "cpu", workers=2, threads=1, executor="ray")
    except Exception as exc:  # Ray could not start here (no shared memory, ports, ...)
        if ray.is_initialized():
            ray.shutdown()
        pytest.skip(f"a local Ray instance did not start: {type(exc).__name__}: {exc}")
    assert res.trained == 4 and not ray.is_initialized()  # the local instance was stopped
    q = "SELECT network_id FROM networks ORDER BY network_id"
    ids = local.sql(q)["network_id"].to_list()
    assert on_ray.sql(q)["network_id"].to_list() == ids
    for nid in ids:  # bit for bit (the complexities differ in output size: one at a time)
        for name in ("W_h", "W_out"):
            assert np.array_equal(local.load_weights([nid], name), on_ray.load_weights([nid], name))
        assert np.array_equal(local.load_trajectories([nid]), on_ray.load_trajectories([nid]))
    assert on_ray.check().ok
    assert list((on_ray.root / "checkpoints").glob("*.pt")) == []
    again = api.sweep(on_ray, SPEC, "cpu", executor="ray")  # resume: nothing left to train
    assert again.trained == 0


def test_a_worker_killed_mid_task_is_retried_and_the_registry_ends_complete(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra (degeneracy[ray])")
    from degeneracy.training import ray_executor

    marker = tmp_path / "killed"
    real = ray_executor._train_task

    def dies_once(*args):  # runs in the worker: the first ensemble trains, then its process dies
        records = real(*args)
        try:
            open(marker, "x").close()
        except FileExistsError:
            return records
        os._exit(1)  # the result is lost with the worker: Ray must run the task again

    monkeypatch.setattr(ray_executor, "_train_task", dies_once)
    reg = api.open(tmp_path / "ray", create=True)
    try:
        res = api.sweep(reg, SPEC, "cpu", workers=2, threads=1, executor="ray")
    except Exception as exc:
        if ray.is_initialized():
            ray.shutdown()
        if marker.exists():  # Ray ran, a worker died: the retry failed (the feature broke)
            raise
        pytest.skip(f"a local Ray instance did not start: {type(exc).__name__}: {exc}")
    assert marker.exists() and res.trained == 4
    ids = reg.sql("SELECT network_id FROM networks")["network_id"].to_list()
    assert len(ids) == len(set(ids)) == 4  # nothing lost, nothing registered twice
    assert reg.sql("SELECT count(*) AS n FROM ensembles")["n"][0] == 2
    assert reg.check().ok
    assert list((reg.root / "checkpoints").glob("*.pt")) == []
    assert run_cli("check", registry=reg.root).returncode == 0
