"""Structural regularizers on the recurrent matrix, one value per network of a stack."""

from __future__ import annotations

import torch


def penalty(w_h: torch.Tensor, l1: float = 0.0, nuclear: float = 0.0) -> torch.Tensor:
    """λ1 Σ|W| + λ* Σ σ_i(W) for each W of the (K, H, H) stack (zeros when both are off)."""
    out = w_h.new_zeros(w_h.shape[0])
    if l1:
        out = out + l1 * w_h.abs().sum((1, 2))
    if nuclear:
        out = out + nuclear * torch.linalg.svdvals(w_h).sum(1)
    return out
