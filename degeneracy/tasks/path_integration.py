"""Path integration: integrate velocity inputs to track position in a walled box."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from degeneracy.tasks.base import Batch, Task, TaskError, check_positive


def integrate_clipped(start: np.ndarray, velocity: np.ndarray, half_width: float) -> np.ndarray:
    """Positions p_t = clip(p_{t-1} + v_t, ±half_width), p_{-1} = start; (B, T, d)."""
    pos = np.empty_like(velocity)
    p = start
    for t in range(velocity.shape[1]):
        p = np.clip(p + velocity[:, t], -half_width, half_width)
        pos[:, t] = p
    return pos


@dataclass(frozen=True)
class PathIntegration(Task):
    """Inputs: d channels carrying the start position on the first step only (0 after), then d
    channels of velocity v_t = speed_t · heading_t (speed ~ U[0, max_speed], heading a random walk
    with step `turn_sd` radians in 2-D, a normalised Gaussian walk in 3-D). Target: position in
    the box [-half_width, half_width]^d, walls clip. Complexity = d ∈ {2, 3}.
    OOD: trial length doubled."""

    name = "path_integration"
    paper_threshold = 5e-2
    cpu_threshold = 0.2

    dims: int = 2
    steps: int = 100
    max_speed: float = 0.3
    turn_sd: float = 0.3
    half_width: float = 5.0

    def __post_init__(self) -> None:
        if self.dims not in (2, 3):
            raise TaskError(f"dims must be 2 or 3, got {self.dims!r}")
        check_positive("steps", self.steps, integer=True)
        check_positive("max_speed", self.max_speed)
        check_positive("half_width", self.half_width)

    @property
    def complexity(self) -> int:
        return self.dims

    @property
    def n_inputs(self) -> int:
        return 2 * self.dims

    @property
    def n_outputs(self) -> int:
        return self.dims

    def headings(self, rng: np.random.Generator, batch: int, t: int) -> np.ndarray:
        if self.dims == 2:
            angle = rng.uniform(0, 2 * np.pi, (batch, 1)) + np.cumsum(
                rng.normal(0, self.turn_sd, (batch, t)), axis=1
            )
            return np.stack([np.cos(angle), np.sin(angle)], axis=2)
        h = rng.normal(size=(batch, 3))
        out = np.empty((batch, t, 3))
        for i in range(t):
            h = h / np.linalg.norm(h, axis=1, keepdims=True)
            out[:, i] = h
            h = h + rng.normal(0, self.turn_sd, (batch, 3))
        return out

    def generate(self, rng: np.random.Generator, batch: int, ood: bool = False) -> Batch:
        t = self.steps * (2 if ood else 1)
        d = self.dims
        start = rng.uniform(-0.8 * self.half_width, 0.8 * self.half_width, (batch, d))
        speed = rng.uniform(0, self.max_speed, (batch, t, 1))
        velocity = speed * self.headings(rng, batch, t)
        velocity[:, 0] = 0.0  # the first step carries the start position
        inputs = np.zeros((batch, t, 2 * d))
        inputs[:, 0, :d] = start
        inputs[:, :, d:] = velocity
        targets = integrate_clipped(start, velocity, self.half_width)
        return Batch(
            inputs.astype(np.float32),
            targets.astype(np.float32),
            np.ones(targets.shape, np.float32),
        )
