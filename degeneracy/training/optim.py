"""Adam and ReduceLROnPlateau with one state per network of a stacked ensemble.

torch.optim's Adam keeps a single step count and learning rate for a parameter tensor; here each
of the K networks needs its own (its own schedule, and a frozen network must not advance), so the
update is written out once for the stacked tensors. Same formulas as torch.optim.Adam and
ReduceLROnPlateau(mode="min", threshold_mode="rel").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


def _col(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape((-1,) + (1,) * (like.dim() - 1))


@dataclass
class StackedAdam:
    params: dict[str, torch.Tensor]
    lr: torch.Tensor  # (K,)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    m: dict[str, torch.Tensor] = field(init=False)
    v: dict[str, torch.Tensor] = field(init=False)
    t: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.m = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.v = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.t = torch.zeros(self.lr.shape[0], dtype=torch.float64, device=self.lr.device)

    @torch.no_grad()
    def step(self, idx: torch.Tensor, grads: dict[str, torch.Tensor]) -> None:
        """Update networks `idx` (others, frozen ones included, are untouched)."""
        b1, b2 = self.betas
        self.t[idx] += 1
        t = self.t[idx]
        c1 = (1 - b1**t).to(self.lr.dtype)
        c2 = (1 - b2**t).to(self.lr.dtype)
        lr = self.lr[idx]
        for n, g in grads.items():
            m = self.m[n][idx].mul_(b1).add_(g, alpha=1 - b1)
            v = self.v[n][idx].mul_(b2).addcmul_(g, g, value=1 - b2)
            self.m[n][idx] = m
            self.v[n][idx] = v
            denom = (v / _col(c2, v)).sqrt_().add_(self.eps)
            self.params[n][idx] -= _col(lr / c1, m) * m / denom


@dataclass
class StackedPlateau:
    """Per network: lr *= factor when the loss has not improved by a relative `threshold` for
    more than `patience` checks."""

    lr: torch.Tensor
    factor: float = 0.5
    patience: int = 40
    threshold: float = 1e-4
    best: torch.Tensor = field(init=False)
    bad: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.best = torch.full_like(self.lr, float("inf"), dtype=torch.float64)
        self.bad = torch.zeros_like(self.lr, dtype=torch.int64)

    @torch.no_grad()
    def step(self, idx: torch.Tensor, losses: torch.Tensor) -> None:
        losses = losses.to(torch.float64)
        better = losses < self.best[idx] * (1 - self.threshold)
        self.best[idx] = torch.where(better, losses, self.best[idx])
        bad = torch.where(better, torch.zeros_like(self.bad[idx]), self.bad[idx] + 1)
        cut = bad > self.patience
        self.lr[idx] = torch.where(cut, self.lr[idx] * self.factor, self.lr[idx])
        self.bad[idx] = torch.where(cut, torch.zeros_like(bad), bad)
