"""Checks run on every network before anything is written: shapes, dtypes, finiteness."""

from __future__ import annotations

import math
import re

import numpy as np

from degeneracy.registry.errors import RegistryError
from degeneracy.registry.records import Condition, NetworkRecord

RECURRENT = "W_h"
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_PROBE = re.compile(r"^[a-z][a-z0-9_]*$")


def check_keys(source: str, data: dict, allowed, required) -> None:
    """A settings table (TOML/JSON) has no unknown keys and every required one."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise RegistryError(f"{source}: unknown key(s) {', '.join(unknown)}")
    for key in required:
        if key not in data:
            raise RegistryError(f"{source}: missing required key {key!r}")


def _check_array(value: object, where: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise RegistryError(f"{where}: expected an array, got {type(value).__name__}")
    if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
        raise RegistryError(f"{where}: expected numbers, got dtype {value.dtype}")
    if value.size and not np.isfinite(value).all():
        raise RegistryError(f"{where}: contains NaN or infinite values")
    return value


def validate_records(condition: Condition, records: list[NetworkRecord], source: str) -> None:
    """Raise RegistryError naming the first problem; `source` says where the data came from."""
    if not records:
        raise RegistryError(f"{source}: no networks")
    seeds = [r.seed for r in records]
    if len(set(seeds)) != len(seeds):
        raise RegistryError(f"{source}: the same seed appears twice")
    h = condition.hidden_size
    for r in records:
        at = f"{source}: seed {r.seed}"
        if isinstance(r.seed, bool) or not isinstance(r.seed, (int, np.integer)):
            raise RegistryError(f"{at}: seed must be an integer")
        if RECURRENT not in r.weights_final:
            raise RegistryError(f"{at}: final weights lack the recurrent matrix {RECURRENT}")
        for stage, weights in (("final", r.weights_final), ("init", r.weights_init)):
            for name, w in weights.items():
                if not _PARAM.match(name):
                    raise RegistryError(f"{at}: bad parameter name {name!r}")
                _check_array(w, f"{at}: {stage} {name}")
            if RECURRENT in weights and weights[RECURRENT].shape != (h, h):
                raise RegistryError(
                    f"{at}: {stage} {RECURRENT} has shape {weights[RECURRENT].shape}, "
                    f"expected ({h}, {h}) for hidden_size {h}"
                )
        for kind, arrays, last in (
            ("trajectories", r.trajectories, h),
            ("outputs", r.outputs, None),
        ):
            for probe, a in arrays.items():
                if not _PROBE.match(probe):
                    raise RegistryError(f"{at}: bad probe name {probe!r}")
                _check_array(a, f"{at}: {kind}[{probe}]")
                if a.ndim != 3 or (last is not None and a.shape[-1] != last):
                    want = f"(trials, time, {last})" if last else "(trials, time, outputs)"
                    raise RegistryError(
                        f"{at}: {kind}[{probe}] has shape {a.shape}, expected {want}"
                    )
        if r.curve is not None:
            missing = {"step", "loss", "lr"} - set(r.curve)
            if missing:
                raise RegistryError(f"{at}: curve lacks {', '.join(sorted(missing))}")
            lengths = {len(np.asarray(r.curve[k])) for k in ("step", "loss", "lr")}
            if len(lengths) != 1:
                raise RegistryError(f"{at}: curve columns differ in length")
            for k in ("step", "loss", "lr"):
                _check_array(np.asarray(r.curve[k]), f"{at}: curve {k}")
        for name in ("final_loss", "ood_loss", "train_loss"):
            v = getattr(r, name)
            if v is not None and not (
                isinstance(v, (int, float, np.floating)) and math.isfinite(v)
            ):
                raise RegistryError(f"{at}: {name} must be a finite number, got {v!r}")
