"""Checkpoints of an ensemble in training, so a killed or interrupted run resumes where it was.

`train_ensemble` saves its whole state at the end of an epoch once `every` seconds have passed
since the last save: the parameters, Adam's moments and step counts, the learning rates and the
plateau scheduler's memory, each network's data-stream state, the stop bookkeeping and the
curves so far. Resuming from it continues the *same* computation: the finished networks equal
those of an uninterrupted run bit for bit on the CPU (tested). The file is keyed by the
ensemble's condition and seeds (`key`); a file with another key is ignored. The caller removes
it once the ensemble is stored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

EVERY_S = 120.0  # at most this much training is lost to a kill (plus the epoch in progress)


@dataclass(frozen=True)
class Checkpointing:
    path: Path
    key: str  # the ensemble id: condition + seeds
    every: float = EVERY_S


def save(cp: Checkpointing, state: dict[str, Any]) -> None:
    """Write atomically (a temporary file beside it, then a rename)."""
    from degeneracy.registry.layout import temp_path

    cp.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(cp.path)
    try:
        torch.save({"key": cp.key, **state}, tmp)
        os.replace(tmp, cp.path)
    finally:
        tmp.unlink(missing_ok=True)


def load(cp: Checkpointing, device: str) -> dict[str, Any] | None:
    """The saved state if there is one for this ensemble, else None (a damaged or foreign
    file is ignored: training starts over and overwrites it)."""
    if not cp.path.exists():
        return None
    try:
        state = torch.load(cp.path, map_location=device, weights_only=True)
    except Exception:  # unreadable (a kill mid-rename cannot do this, a full disk can)
        return None
    return state if state.get("key") == cp.key else None
