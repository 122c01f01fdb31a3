"""N-bit flip-flop: N channels of ±1 pulses; each output holds its channel's last pulse."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from degeneracy.tasks.base import Batch, ChannelTask, TaskError, check_positive


def hold_last_nonzero(pulses: np.ndarray) -> np.ndarray:
    """Along axis 1 (time), the last nonzero value seen so far (0 before the first)."""
    b, t, n = pulses.shape
    idx = np.where(pulses != 0, np.arange(t)[None, :, None], -1)
    last = np.maximum.accumulate(idx, axis=1)
    held = np.take_along_axis(pulses, np.maximum(last, 0), axis=1)
    return np.where(last >= 0, held, 0.0).astype(np.float32)


@dataclass(frozen=True)
class FlipFlop(ChannelTask):
    """Inputs: N channels, each step ±1 with probability `p` (else 0). Target: the last nonzero
    input of each channel. Complexity = N. OOD: trial length doubled."""

    name = "flipflop"
    paper_threshold = 1e-3
    cpu_threshold = 1e-2

    channels: int = 1
    steps: int = 100
    p: float = 0.05

    def __post_init__(self) -> None:
        check_positive("channels", self.channels, integer=True)
        check_positive("steps", self.steps, integer=True)
        if not 0 < self.p <= 1:
            raise TaskError(f"p must be in (0, 1], got {self.p!r}")

    def generate(self, rng: np.random.Generator, batch: int, ood: bool = False) -> Batch:
        t = self.steps * (2 if ood else 1)
        shape = (batch, t, self.channels)
        fire = rng.random(shape) < self.p
        sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        inputs = (fire * sign).astype(np.float32)
        targets = hold_last_nonzero(inputs)
        return Batch(inputs, targets, np.ones(shape, np.float32))
