"""K recurrent networks as one stacked model: parameters with a leading K axis, batched matmuls.

Two parameterizations (DESIGN.md, "Training" and "The γ knob"):

standard  h_t = tanh(W_h h_{t-1} + W_x x_t + b),  y_t = W_out h_t + b_out,
          every parameter ~ U(-1/√H, 1/√H) (PyTorch's RNN/Linear init).
mup       u_t = (1-τ) u_{t-1} + τ (J̃/√H · φ(u_{t-1}) + b) + U x_t,  φ = tanh,
          y_t = W̃_out φ(u_t) / (γ H) + b_out, with J̃, W̃_out ~ N(0, 1), U ~ N(0, 1/I), b = 0,
          and the learning rate scaled by γ (the trainer's job). Larger γ = richer feature learning.

Stored weights are the *effective* matrices the dynamics use (W_h = J̃/√H, W_out = W̃_out/(γH)),
so metrics compare like with like across regimes. Trajectories are φ(state): what the readout sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from degeneracy.schema.kinds import PARAM_NAMES
from degeneracy.training.leaky import leaky_rnn
from degeneracy.training.recurrence import tanh_rnn


@dataclass(frozen=True)
class ModelSpec:
    n_inputs: int
    n_outputs: int
    hidden: int
    regime: str = "standard"
    gamma: float = 1.0
    tau: float = 0.1

    def __post_init__(self) -> None:
        if self.regime not in ("standard", "mup"):
            raise ValueError(f"regime must be 'standard' or 'mup', got {self.regime!r}")

    @property
    def lr_scale(self) -> float:
        """µP: lr = γ · η0 (DESIGN.md measured this gives ‖ΔJ‖ ∝ γ^0.8 at matched loss)."""
        return self.gamma if self.regime == "mup" else 1.0


def init_params(spec: ModelSpec, seeds: list[int], device: str = "cpu") -> dict[str, torch.Tensor]:
    """Raw (trained) parameters, (K, ...) float32; network k depends only on seeds[k]."""
    h, i, o = spec.hidden, spec.n_inputs, spec.n_outputs
    per = []
    for seed in seeds:
        g = torch.Generator().manual_seed(int(seed))
        if spec.regime == "standard":
            bound = 1 / math.sqrt(h)

            def u(*shape, g=g, bound=bound):
                return (torch.rand(shape, generator=g) * 2 - 1) * bound

            per.append({"W_h": u(h, h), "W_x": u(h, i), "b": u(h), "W_out": u(o, h), "b_out": u(o)})
        else:
            per.append(
                {
                    "W_h": torch.randn(h, h, generator=g),  # J̃
                    "W_x": torch.randn(h, i, generator=g) / math.sqrt(i),
                    "b": torch.zeros(h),
                    "W_out": torch.randn(o, h, generator=g),  # W̃_out
                    "b_out": torch.zeros(o),
                }
            )
    return {n: torch.stack([p[n] for p in per]).to(device) for n in PARAM_NAMES}


def effective(spec: ModelSpec, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The matrices the dynamics use (identical to the raw ones for `standard`)."""
    if spec.regime == "standard":
        return dict(params)
    h = spec.hidden
    return {
        **params,
        "W_h": params["W_h"] / math.sqrt(h),
        "W_out": params["W_out"] / (spec.gamma * h),
    }


def raw(spec: ModelSpec, eff: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of `effective`: the trained parameters back from stored effective matrices
    (so stored networks can be run again, e.g. on a larger probe set)."""
    if spec.regime == "standard":
        return dict(eff)
    h = spec.hidden
    return {**eff, "W_h": eff["W_h"] * math.sqrt(h), "W_out": eff["W_out"] * (spec.gamma * h)}


def forward(
    spec: ModelSpec,
    params: dict[str, torch.Tensor],
    x: torch.Tensor,
    workspace=None,
    states: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """x (K, B, T, I) -> rates (K, B, T, H), outputs (K, B, T, O); h_0 = 0.

    The standard regime runs the hand-written BPTT of `recurrence.py`, µP that of `leaky.py`.
    `workspace` (training only) keeps large buffers between calls; `states=False` skips
    materialising the rates where only the outputs are needed (rates is then None).
    """
    if spec.regime != "standard":
        return _forward_mup(spec, params, x)
    hs, ys = tanh_rnn(x.transpose(1, 2), params, workspace, states)  # (K, T, B, ·) inside
    return (None if hs is None else hs.transpose(1, 2)), ys.transpose(1, 2)


def _forward_mup(
    spec: ModelSpec, params: dict[str, torch.Tensor], x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    eff = effective(spec, params)
    tau = spec.tau
    # step-major (T, K, B, ·) throughout: permuting a (K, B, T, H) tensor costs more than the
    # recurrence (strided copies); only the narrow inputs and outputs are permuted
    rates = leaky_rnn(
        x.permute(2, 0, 1, 3),
        eff["W_x"].transpose(1, 2),
        tau * eff["b"],
        tau * eff["W_h"].transpose(1, 2),
        1 - tau,
    )
    y = torch.matmul(rates, eff["W_out"].transpose(1, 2)) + eff["b_out"][:, None, :]
    return rates.permute(1, 2, 0, 3), y.permute(1, 2, 0, 3)


def forward_autograd(
    spec: ModelSpec, params: dict[str, torch.Tensor], x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same dynamics stepped with plain autograd (reference and µP path)."""
    eff = effective(spec, params)
    w_h_t = eff["W_h"].transpose(1, 2)
    k, b, t, _ = x.shape
    drive = torch.einsum("kbti,khi->kbth", x, eff["W_x"])
    if spec.regime == "standard":
        drive = drive + eff["b"][:, None, None, :]
    state = x.new_zeros(k, b, spec.hidden)
    rates = []
    if spec.regime == "standard":
        for d in drive.unbind(2):
            state = torch.tanh(torch.baddbmm(d, state, w_h_t))
            rates.append(state)
    else:
        tau = spec.tau
        bias = (tau * eff["b"])[:, None, :]
        for d in drive.unbind(2):
            r = torch.tanh(state)
            state = (1 - tau) * state + tau * torch.bmm(r, w_h_t) + bias + d
            rates.append(torch.tanh(state))
    hs = torch.stack(rates, dim=2)
    y = torch.einsum("kbth,koh->kbto", hs, eff["W_out"]) + eff["b_out"][:, None, None, :]
    return hs, y


def to_numpy(params: dict[str, torch.Tensor], k: int) -> dict[str, np.ndarray]:
    return {n: p[k].detach().cpu().numpy().astype(np.float32) for n, p in params.items()}
