"""Synthetic networks for storage tests: random arrays of the right shapes (no training)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from degeneracy.registry.records import Condition, NetworkRecord


def make_records(
    seeds,
    hidden: int = 8,
    inputs: int = 2,
    outputs: int = 2,
    trials: int = 3,
    steps: int = 5,
    rng_seed: int = 0,
    float64: bool = False,
) -> list[NetworkRecord]:
    rng = np.random.default_rng(rng_seed)
    dt = np.float64 if float64 else np.float32
    out = []
    for s in seeds:

        def w(*shape):
            return rng.standard_normal(shape).astype(dt)

        out.append(
            NetworkRecord(
                seed=s,
                weights_final={
                    "W_h": w(hidden, hidden),
                    "W_x": w(hidden, inputs),
                    "b": w(hidden),
                    "W_out": w(outputs, hidden),
                    "b_out": w(outputs),
                },
                weights_init={
                    "W_h": w(hidden, hidden),
                    "W_x": w(hidden, inputs),
                    "b": w(hidden),
                    "W_out": w(outputs, hidden),
                    "b_out": w(outputs),
                },
                trajectories={"id": w(trials, steps, hidden), "ood": w(trials, 2 * steps, hidden)},
                outputs={"id": w(trials, steps, outputs), "ood": w(trials, 2 * steps, outputs)},
                curve={"step": np.arange(0, 50, 10), "loss": np.abs(w(5)), "lr": np.full(5, 1e-3)},
                steps=40 + s,
                final_loss=float(abs(rng.standard_normal()) * 1e-3),
                ood_loss=float(abs(rng.standard_normal()) * 1e-2),
                converged=bool(s % 2 == 0),
            )
        )
    return out


def condition(task: str = "flipflop", hidden: int = 8, **kw) -> Condition:
    return Condition(task=task, hidden_size=hidden, **kw)


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under `root` (to prove nothing changed)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
