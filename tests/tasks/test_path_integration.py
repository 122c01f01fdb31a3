import numpy as np
import pytest

from degeneracy.tasks import TaskError, make_task

# Made by the code before `inputs` existed: PathIntegration(dims=d, steps=3).generate(
# np.random.default_rng(7), 2), rounded to 6 decimals; and the final targets of probe(2).
CARTESIAN_BEFORE = {
    2: {
        "start": [[1.000764, 3.17771], [2.205486, -2.198343]],
        "velocity": [
            [[0.0, 0.0], [-0.022431, 0.261104], [-0.000121, 0.001575]],
            [[0.0, 0.0], [0.003843, 0.23909], [0.021444, 0.138733]],
        ],
        "targets": [
            [[1.000764, 3.17771], [0.978333, 3.438815], [0.978212, 3.44039]],
            [[2.205486, -2.198343], [2.209328, -1.959252], [2.230772, -1.82052]],
        ],
        "probe_end": [[-5.0, -0.940915], [-5.0, 4.349445]],
    },
    3: {
        "start": [[1.000764, 3.17771, 2.205486], [-2.198343, -1.59867, 2.988428]],
        "velocity": [
            [[0.0, 0.0, 0.0], [-0.071994, -0.217, -0.09179], [-0.039446, -0.150719, -0.181402]],
            [[0.0, 0.0, 0.0], [0.025794, -0.085954, -0.014534], [0.010452, -0.082168, -0.010774]],
        ],
        "targets": [
            [
                [1.000764, 3.17771, 2.205486],
                [0.92877, 2.960711, 2.113695],
                [0.889324, 2.809992, 1.932294],
            ],
            [
                [-2.198343, -1.59867, 2.988428],
                [-2.172549, -1.684623, 2.973893],
                [-2.162096, -1.766791, 2.96312],
            ],
        ],
        "probe_end": [[1.851024, 2.991111, -3.598721], [3.393603, -2.248271, 3.155512]],
    },
}


def velocity_from_polar(motion: np.ndarray, dims: int, angle_code: str) -> np.ndarray:
    """Velocity from the polar channels, by the definition of θ (azimuth), φ (elevation), v."""
    v = motion[..., -1:]
    if angle_code == "raw":
        cos_t, sin_t = np.cos(motion[..., 0]), np.sin(motion[..., 0])
        if dims == 3:
            cos_p, sin_p = np.cos(motion[..., 1]), np.sin(motion[..., 1])
    else:
        cos_t, sin_t = motion[..., 0], motion[..., 1]
        if dims == 3:
            cos_p, sin_p = motion[..., 2], motion[..., 3]
    if dims == 2:
        return v * np.stack([cos_t, sin_t], axis=-1)
    return v * np.stack([cos_p * cos_t, cos_p * sin_t, sin_p], axis=-1)


@pytest.mark.parametrize("angle_code", ["raw", "cos_sin"])
@pytest.mark.parametrize("dims", [2, 3])
def test_polar_inputs_integrate_to_the_target_path(dims, angle_code):
    task = make_task(
        "path_integration", dims, steps=80, max_speed=0.8, inputs="polar", angle_code=angle_code
    )
    b = task.generate(np.random.default_rng(5), 16)
    x = b.inputs.astype(np.float64)
    assert np.all(x[:, 1:, :dims] == 0)  # the start position only on the first step
    velocity = velocity_from_polar(x[:, :, dims:], dims, angle_code)
    pos = x[:, 0, :dims]
    for t in range(80):
        pos = np.minimum(np.maximum(pos + velocity[:, t], -5), 5)
        assert np.allclose(b.targets[:, t], pos, atol=1e-4)
    assert (np.abs(b.targets) == 5).any()  # the walls were hit, so the clipping was checked
    speed = x[:, :, -1]
    assert np.all(speed[:, 0] == 0) and 0 <= speed.min() and speed.max() <= 0.8
    if angle_code == "raw":
        theta = x[:, :, dims]
        assert -np.pi - 1e-6 <= theta.min() and theta.max() <= np.pi + 1e-6
        assert theta.min() < -3 and theta.max() > 3  # wrapped, not a drifting sum
        if dims == 3:
            assert np.abs(x[:, :, dims + 1]).max() <= np.pi / 2 + 1e-6


@pytest.mark.parametrize("angle_code", ["raw", "cos_sin"])
@pytest.mark.parametrize("dims", [2, 3])
def test_polar_and_cartesian_share_the_path_for_the_same_draws(dims, angle_code):
    cart = make_task("path_integration", dims, steps=30)
    polar = make_task("path_integration", dims, steps=30, inputs="polar", angle_code=angle_code)
    a = cart.generate(np.random.default_rng(9), 4, ood=True)
    b = polar.generate(np.random.default_rng(9), 4, ood=True)
    assert np.array_equal(a.targets, b.targets)
    assert np.array_equal(a.inputs[:, :, :dims], b.inputs[:, :, :dims])


@pytest.mark.parametrize("dims", [2, 3])
def test_cartesian_inputs_are_unchanged(dims):
    want = CARTESIAN_BEFORE[dims]
    b = make_task("path_integration", dims, steps=3).generate(np.random.default_rng(7), 2)
    assert b.inputs.shape == (2, 3, 2 * dims)
    assert np.allclose(b.inputs[:, 0, :dims], want["start"], atol=2e-6)
    assert np.all(b.inputs[:, 1:, :dims] == 0)
    assert np.allclose(b.inputs[:, :, dims:], want["velocity"], atol=2e-6)
    assert np.allclose(b.targets, want["targets"], atol=2e-6)
    # probe sets (and condition ids) of cartesian tasks stay as they were
    task = make_task("path_integration", dims)
    assert set(task.params()) == {"dims", "steps", "max_speed", "turn_sd", "half_width"}
    assert np.allclose(task.probe(2).targets[:, -1], want["probe_end"], atol=2e-6)


def test_polar_knobs_are_recorded_and_round_trip():
    task = make_task("path_integration", 3, inputs="polar", angle_code="cos_sin")
    assert task.params()["inputs"] == "polar" and task.params()["angle_code"] == "cos_sin"
    assert make_task("path_integration", **task.params()) == task
    raw = make_task("path_integration", 3, inputs="polar")
    assert raw.params()["inputs"] == "polar" and "angle_code" not in raw.params()
    assert make_task("path_integration", **raw.params()) == raw
    assert not np.array_equal(
        raw.probe(4).targets, make_task("path_integration", 3).probe(4).targets
    )


@pytest.mark.parametrize(
    ("dims", "inputs", "angle_code", "n"),
    [
        (2, "cartesian", "raw", 4),
        (3, "cartesian", "raw", 6),
        (2, "polar", "raw", 4),
        (3, "polar", "raw", 6),
        (2, "polar", "cos_sin", 5),
        (3, "polar", "cos_sin", 8),
    ],
)
def test_n_inputs_follows_the_encoding(dims, inputs, angle_code, n):
    task = make_task("path_integration", dims, steps=5, inputs=inputs, angle_code=angle_code)
    assert task.n_inputs == n and task.n_outputs == dims
    b = task.generate(np.random.default_rng(0), 3)
    assert b.inputs.shape == (3, 5, n) and b.targets.shape == (3, 5, dims)


def test_bad_encodings_are_rejected():
    with pytest.raises(TaskError, match="inputs must be 'cartesian' or 'polar', got 'spherical'"):
        make_task("path_integration", inputs="spherical")
    with pytest.raises(TaskError, match="angle_code must be 'raw' or 'cos_sin', got 'deg'"):
        make_task("path_integration", inputs="polar", angle_code="deg")
    with pytest.raises(TaskError, match="angle_code='cos_sin' needs inputs='polar'"):
        make_task("path_integration", angle_code="cos_sin")
