"""What every task is: a seeded, pure batch generator with knobs, an OOD variant and probes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class Batch:
    """inputs (B, T, I), targets (B, T, O), mask (B, T, O): float32; loss = masked MSE."""

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray


class TaskError(ValueError):
    """A bad task name or parameter (shown to the user as one line)."""


@dataclass(frozen=True)
class Task:
    """Base class: subclasses are frozen dataclasses whose fields are the task's knobs."""

    name: ClassVar[str]
    #: MSE thresholds: the paper's (for long runs) and ours for a CPU budget (DESIGN.md).
    paper_threshold: ClassVar[float]
    cpu_threshold: ClassVar[float]
    #: the cpu preset's budget in epochs of 128 steps: what this task needs for at least 90 %
    #: of seeds to converge under `cpu_threshold` at every complexity (docs/FIDELITY.md)
    cpu_max_epochs: ClassVar[int] = 60
    #: the field the generic `complexity` knob sets ("channels", "dims")
    complexity_field: ClassVar[str] = "channels"
    #: DSA's default delays and rank for this task's trajectories (docs/dsa_sensitivity.md)
    dsa_defaults: ClassVar[dict[str, int]] = {"n_delays": 10, "rank": 10}
    #: training settings this task needs to train at all (override TrainConfig's defaults)
    train_defaults: ClassVar[dict[str, Any]] = {}
    #: knobs added after networks of this task were first stored, each with the value it was
    #: introduced with. At that value a knob is left out of `params()` (and so of network ids,
    #: ensemble ids and probe seeds), so adding a knob never changes stored identities.
    #: Every new knob must be listed here (tests/registry/test_ids.py checks).
    later_knobs: ClassVar[dict[str, Any]] = {}

    @property
    def complexity(self) -> int:
        raise NotImplementedError

    @property
    def n_inputs(self) -> int:
        raise NotImplementedError

    @property
    def n_outputs(self) -> int:
        raise NotImplementedError

    def generate(self, rng: np.random.Generator, batch: int, ood: bool = False) -> Batch:
        """A batch of trials; `ood` gives the out-of-distribution (longer) variant."""
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The knobs that identify this task setting (less later knobs at their first value)."""
        out = dataclasses.asdict(self)
        for name, first in self.later_knobs.items():
            if name in out and out[name] == first:
                del out[name]
        return out

    def probe(
        self, n_trials: int, probe_seed: int = 0, ood: bool = False, replica: int = 0
    ) -> Batch:
        """The fixed probe set: identical for every network with the same task parameters.

        `replica` > 0 gives independent probe sets of the same size and distribution (the
        noise floor of trajectory metrics compares a network's fits on two of them)."""
        spec = {"task": self.name, "params": self.params(), "seed": probe_seed, "ood": ood}
        if replica:
            spec["replica"] = replica
        key = json.dumps(spec, sort_keys=True)
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
        return self.generate(np.random.default_rng(seed), n_trials, ood=ood)

    def baseline_mse(self, n_trials: int = 512) -> float:
        """MSE of the best input-ignoring predictor (the per-time-step mean target)."""
        b = self.probe(n_trials, probe_seed=12345)
        w = b.mask.sum(axis=0)
        mean = np.where(w > 0, (b.targets * b.mask).sum(axis=0) / np.maximum(w, 1e-12), 0.0)
        return float(((b.targets - mean) ** 2 * b.mask).sum() / b.mask.sum())


def check_positive(name: str, value: float, integer: bool = False, minimum: float = 0) -> None:
    if integer and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
        raise TaskError(f"{name} must be an integer, got {value!r}")
    if not isinstance(value, (int, float, np.integer, np.floating)) or value <= minimum:
        raise TaskError(f"{name} must be > {minimum}, got {value!r}")


class ChannelTask(Task):
    """A task made of `channels` independent copies: one input and one output per channel."""

    channels: int

    @property
    def complexity(self) -> int:
        return self.channels

    @property
    def n_inputs(self) -> int:
        return self.channels

    @property
    def n_outputs(self) -> int:
        return self.channels
