import numpy as np
import pytest

from degeneracy.tasks import TaskError, make_task
from degeneracy.tasks.delayed_discrimination import FIXATION, PULSE, RESPONSE


def test_flipflop_target_is_the_last_pulse_per_channel():
    task = make_task("flipflop", 3, steps=60, p=0.1)
    b = task.generate(np.random.default_rng(1), 5)
    want = np.zeros_like(b.targets)
    for i in range(5):
        for c in range(3):
            held = 0.0
            for t in range(60):
                if b.inputs[i, t, c] != 0:
                    held = b.inputs[i, t, c]
                want[i, t, c] = held
    assert np.array_equal(b.targets, want)
    assert set(np.unique(b.inputs)) <= {-1.0, 0.0, 1.0}


def test_delayed_discrimination_structure():
    task = make_task("delayed_discrimination", 2, aux_output=True)
    b = task.generate(np.random.default_rng(2), 40)
    assert b.inputs.shape == (40, 25 + 20, 2) and b.targets.shape == (40, 45, 4)
    for i in range(40):
        for c in range(2):
            x = b.inputs[i, :, c] * 10
            f1 = x[FIXATION]
            assert np.allclose(x[FIXATION : FIXATION + PULSE], f1, atol=1e-5)
            assert np.all(x[:FIXATION] == 0)
            start2 = FIXATION + PULSE + np.flatnonzero(x[FIXATION + PULSE :])[0]
            f2 = x[start2]
            delay = start2 - FIXATION - PULSE
            assert 5 <= delay <= 20 and abs(f2 - f1) >= 1 - 1e-5 and 2 <= min(f1, f2)
            want = np.zeros(45)
            want[start2 + PULSE : start2 + PULSE + RESPONSE] = np.sign(f2 - f1)
            assert np.allclose(b.targets[i, :, c], want)
            aux = np.zeros(45)
            aux[start2 + PULSE : start2 + PULSE + RESPONSE] = (f2 - f1) / 8
            assert np.allclose(b.targets[i, :, 2 + c], aux, atol=1e-5)


def test_delayed_discrimination_ood_doubles_the_delay():
    task = make_task("delayed_discrimination", 1)
    b = task.generate(np.random.default_rng(3), 200, ood=True)
    assert b.inputs.shape[1] == 25 + 40
    delays = []
    for i in range(200):
        x = b.inputs[i, :, 0]
        delays.append(
            FIXATION + PULSE + np.flatnonzero(x[FIXATION + PULSE :])[0] - FIXATION - PULSE
        )
    assert min(delays) >= 10 and max(delays) <= 40 and max(delays) > 20


def test_sine_target_is_the_selected_frequency():
    task = make_task("sine", 2, n_freq=5, dt=0.002)
    b = task.generate(np.random.default_rng(4), 8)
    freqs = np.linspace(1, 30, 5)
    for i in range(8):
        for c in range(2):
            code = b.inputs[i, 0, c]
            assert np.all(b.inputs[i, :, c] == code)
            f = (code - 0.25) * (30 - 1) + 1
            assert np.isclose(freqs, f, atol=1e-4).any()
            t = np.arange(100) * 0.002
            assert np.allclose(b.targets[i, :, c], np.sin(2 * np.pi * f * t), atol=1e-4)


@pytest.mark.parametrize("dims", [2, 3])
def test_path_integration_is_a_clipped_cumulative_sum(dims):
    task = make_task("path_integration", dims, steps=80, max_speed=0.8)
    b = task.generate(np.random.default_rng(5), 6)
    for i in range(6):
        pos = b.inputs[i, 0, :dims].astype(np.float64)
        for t in range(80):
            pos = np.minimum(np.maximum(pos + b.inputs[i, t, dims:], -5), 5)
            assert np.allclose(b.targets[i, t], pos, atol=1e-4)
        speeds = np.linalg.norm(b.inputs[i, 1:, dims:], axis=1)
        assert speeds.max() <= 0.8 + 1e-5
    assert np.abs(b.targets).max() <= 5


@pytest.mark.parametrize("name", ["flipflop", "delayed_discrimination", "sine", "path_integration"])
def test_probe_sets_are_deterministic_and_ood_is_longer(name):
    task = make_task(name)
    a, b = task.probe(8, probe_seed=0), make_task(name).probe(8, probe_seed=0)
    assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.targets, b.targets)
    assert not np.array_equal(a.inputs, task.probe(8, probe_seed=1).inputs)
    ood = task.probe(8, ood=True)
    assert ood.inputs.shape[1] > a.inputs.shape[1]
    assert 0 < task.baseline_mse()


def test_task_errors_are_clear():
    with pytest.raises(TaskError, match="unknown task"):
        make_task("nope")
    with pytest.raises(TaskError, match="unknown parameter"):
        make_task("flipflop", foo=1)
    with pytest.raises(TaskError, match="dims must be 2 or 3"):
        make_task("path_integration", 4)
    with pytest.raises(TaskError, match="true or false"):
        make_task("delayed_discrimination", aux_output="maybe")
    assert make_task("delayed_discrimination", aux_output="true").aux_output is True
    assert make_task("flipflop", steps="50").steps == 50
