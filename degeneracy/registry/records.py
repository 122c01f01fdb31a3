"""What one trained network and its condition are, in memory, before they are stored."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from degeneracy.registry.errors import RegistryError
from degeneracy.schema.kinds import MAX_COMPLEXITY, MAX_HIDDEN

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

CONDITION_FIELDS = ("task", "hidden_size", "complexity", "regime", "gamma", "l1", "nuclear")


@dataclass(frozen=True)
class Condition:
    """Everything that defines an ensemble except the seed; hashed into every network id.

    The typed fields are columns of `networks`; everything else (task parameters, training
    settings) goes in `factors`, stored as JSON.
    """

    task: str
    hidden_size: int
    complexity: int = 1
    regime: str = "standard"
    gamma: float = 1.0
    l1: float = 0.0
    nuclear: float = 0.0
    factors: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("task", "regime"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _NAME.match(value):
                raise RegistryError(
                    f"condition: {name} must be a lower-case name like 'flipflop', got {value!r}"
                )
        for name, high in (("hidden_size", MAX_HIDDEN), ("complexity", MAX_COMPLEXITY)):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, np.integer))
                or not 1 <= value <= high
            ):
                raise RegistryError(
                    f"condition: {name} must be an integer 1..{high}, got {value!r}"
                )
            object.__setattr__(self, name, int(value))
        for name, positive in (("gamma", True), ("l1", False), ("nuclear", False)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value < 0 or (positive and value == 0):
                bound = "> 0" if positive else ">= 0"
                raise RegistryError(f"condition: {name} must be a number {bound}, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not isinstance(self.factors, Mapping):
            raise RegistryError("condition: factors must be a table of names to values")
        _check_json(dict(self.factors), "factors")
        object.__setattr__(self, "factors", dict(self.factors))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in CONDITION_FIELDS}
        out["factors"] = dict(self.factors)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Condition:
        unknown = sorted(set(data) - set(CONDITION_FIELDS) - {"factors"})
        if unknown:
            raise RegistryError(
                f"condition: unknown field(s) {', '.join(unknown)} "
                f"(known: {', '.join(CONDITION_FIELDS)}, factors)"
            )
        missing = [f for f in ("task", "hidden_size") if f not in data]
        if missing:
            raise RegistryError(f"condition: missing field(s) {', '.join(missing)}")
        return cls(**dict(data))


def _check_json(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise RegistryError(f"condition: {where} holds a non-finite number")
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise RegistryError(f"condition: {where} keys must be strings")
            _check_json(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_json(v, f"{where}[{i}]")
    elif not isinstance(value, (str, int, float, bool, type(None))):
        raise RegistryError(f"condition: {where} must be JSON data, got {type(value).__name__}")


@dataclass
class NetworkRecord:
    """One trained network: parameters, probe responses, training curve and summary numbers.

    `trajectories` and `outputs` map a probe set name ("id", "ood") to (trials, time, units)
    arrays; `curve` maps "step", "loss", "lr" to equal-length 1-D arrays.
    """

    seed: int
    weights_final: dict[str, np.ndarray]
    weights_init: dict[str, np.ndarray] = field(default_factory=dict)
    trajectories: dict[str, np.ndarray] = field(default_factory=dict)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    curve: dict[str, np.ndarray] | None = None
    steps: int | None = None
    final_loss: float | None = None
    ood_loss: float | None = None
    converged: bool | None = None
    #: the epoch-mean training MSE the stop rule read last (converged = it and the
    #: `stop_epochs - 1` epochs before it were under the threshold); `final_loss` is the probe's
    train_loss: float | None = None
    #: what trained it (device, torch version and threads), completed by the writer with the
    #: package version, git commit and library versions; stored as `networks.provenance`
    provenance: dict[str, Any] = field(default_factory=dict)
