"""The standard tanh RNN of K stacked networks with a hand-written backward pass through time.

Forward, per step t (h_{-1} = 0):
    h_t = tanh(x_t W_xᵀ + b + h_{t-1} W_hᵀ),    y_t = h_t W_outᵀ + b_out
Backward, from ∂L/∂y_t (and ∂L/∂h_t, when the states are used):
    g_t = ∂L/∂h_t + ∂L/∂y_t W_out + a_{t+1} W_h,    a_t = g_t ⊙ (1 - h_t²)
    ∂L/∂W_hᵀ = Σ_t h_{t-1}ᵀ a_t,  ∂L/∂W_xᵀ = Σ_t x_tᵀ a_t,  ∂L/∂b = Σ_t Σ_trials a_t,
    ∂L/∂W_outᵀ = Σ_t h_tᵀ ∂L/∂y_t,  ∂L/∂b_out = Σ_t Σ_trials ∂L/∂y_t.

How it is computed, and why (measured on a 2-core CPU, K = 50, B = 64, T = 100, H = 64):
- Touching a whole (K, T, B, H) tensor is memory-bound (~7 ms to read 82 MB), while one step's
  (K, B, H) slice stays in cache. So each step is ONE batched matmul on cached data, using
  augmented rows and a block weight matrix, and the weight gradients are one matmul at the end.
- tanh is slow here (6x sigmoid), so the state kept is u = h/2 = σ(2z) - ½ (two cheap
  elementwise ops); the factors 2 are folded into the weights, and 1 - h² = 1 - 4u². Keeping the
  centred u rather than σ(2z) itself avoids a cancellation in the weight gradients (float32
  accuracy as autograd's, tested).

    forward   S_t = [u_{t-1}, x_t, 1]  (K, B, H+I+1),  u_{-1} = 0
              S_t W = [2 z_t, y_{t-1}],  W = [[4 W_hᵀ, 2 W_outᵀ], [2 W_xᵀ, 0], [2 b, b_out]]
              (the readout rides along one step late)
    backward  G_t = [a_t, ∂L/∂y_{t-1}]  (K, B, H+O)
              G_{t+1} [[W_h], [W_out]] = ∂L/∂h_t (through the future and the readout)
    gradient  M = Σ_t S_tᵀ G_t holds every weight gradient (the u-rows times 2).

Checked against autograd in tests/training.
"""

from __future__ import annotations

import torch


class TanhRNN(torch.autograd.Function):
    """x (K, T, B, I); W_xᵀ (K, I, H); b (K, H); W_hᵀ (K, H, H); W_outᵀ (K, H, O); b_out (K, O)
    -> states (K, T, B, H) (only `with_states`), outputs (K, T, B, O)."""

    @staticmethod
    def forward(ctx, x, w_x_t, b, w_h_t, w_out_t, b_out, workspace, with_states):
        ctx.set_materialize_grads(False)
        k, t_len, bsz, i_dim = x.shape
        h_dim, o_dim = w_h_t.shape[-1], w_out_t.shape[-1]
        s = workspace.get(f"S{h_dim}", (k, t_len + 1, bsz, h_dim + i_dim + 1), x, _init_rows(h_dim))
        w = torch.cat(
            [
                torch.cat([4 * w_h_t, 2 * w_out_t], 2),
                torch.cat([2 * w_x_t, w_x_t.new_zeros(k, i_dim, o_dim)], 2),
                torch.cat([2 * b, b_out], 1)[:, None],
            ],
            1,
        )
        ys = x.new_empty(k, t_len, bsz, o_dim)
        buf = x.new_empty(k, bsz, h_dim + o_dim)
        z = buf[..., :h_dim]
        for t in range(t_len):
            s[:, t, :, h_dim:-1] = x[:, t]  # here, not all at once: this row is about to be read
            torch.bmm(s[:, t], w, out=buf)
            if t:
                ys[:, t - 1].copy_(buf[..., h_dim:])
            torch.sigmoid(z, out=z)
            torch.sub(z, 0.5, out=s[:, t + 1, :, :h_dim])  # u = tanh(z) / 2
        torch.bmm(s[:, t_len], w[..., h_dim:], out=ys[:, t_len - 1])
        ctx.save_for_backward(w_h_t, w_out_t)
        ctx.s, ctx.workspace, ctx.with_states = s, workspace, with_states
        ctx.s_version = s._version  # a later forward on the same workspace bumps it
        if not with_states:
            return ys
        return 2 * s[:, 1:, :, :h_dim], ys

    @staticmethod
    def backward(ctx, *grads):
        grad_hs, grad_ys = grads if ctx.with_states else (None, grads[0])
        w_h_t, w_out_t = ctx.saved_tensors
        s = ctx.s
        k, t_plus_1, bsz, rows = s.shape
        t_len, h_dim, o_dim = t_plus_1 - 1, w_h_t.shape[-1], w_out_t.shape[-1]
        if s._version != ctx.s_version:
            raise RuntimeError("the workspace was reused by another forward before this backward")
        g = ctx.workspace.get(f"G{h_dim}", (k, t_plus_1, bsz, h_dim + o_dim), s, _init_grads(h_dim))
        if grad_ys is None:
            g[:, 1:, :, h_dim:] = 0
        v = torch.cat([w_h_t.transpose(1, 2), w_out_t.transpose(1, 2)], 1)
        buf = s.new_empty(k, bsz, h_dim)
        tmp = s.new_empty(k, bsz, h_dim)
        for t in range(t_len - 1, -1, -1):
            if grad_ys is not None:
                g[:, t + 1, :, h_dim:] = grad_ys[:, t]
            torch.bmm(g[:, t + 1], v, out=buf)  # ∂L/∂h_t
            if grad_hs is not None:
                buf.add_(grad_hs[:, t])
            u = s[:, t + 1, :, :h_dim]
            torch.mul(buf, u, out=tmp)  # a_t = (1 - 4u²) ∂L/∂h_t:
            torch.addcmul(buf, tmp, u, value=-4, out=g[:, t, :, :h_dim])
        n = t_plus_1 * bsz
        m = torch.bmm(s.view(k, n, rows).transpose(1, 2), g.view(k, n, h_dim + o_dim))
        m[:, :h_dim].mul_(2)  # rows of u -> rows of h = 2u
        return (
            None,
            m[:, h_dim:-1, :h_dim],
            m[:, -1, :h_dim],
            m[:, :h_dim, :h_dim],
            m[:, :h_dim, h_dim:],
            m[:, -1, h_dim:],
            None,
            None,
        )


def _init_rows(h_dim: int):
    """S's constant parts: u_{-1} = 0 (h_{-1} = 0), no input after the last step, the ones."""

    def init(s: torch.Tensor) -> None:
        s[:, 0, :, :h_dim] = 0
        s[:, -1, :, h_dim:-1] = 0
        s[..., -1] = 1

    return init


def _init_grads(h_dim: int):
    """G's constant parts: a_T = 0 and ∂L/∂y_{-1} = 0."""

    def init(g: torch.Tensor) -> None:
        g[:, -1, :, :h_dim] = 0
        g[:, 0, :, h_dim:] = 0

    return init


class Workspace:
    """Large buffers kept between training steps.

    A fresh 50×100×64×64 float32 tensor costs ~22 ms of page faults on first touch here (the
    allocator returns big blocks to the OS); reusing it costs nothing. Tensors from a workspace
    are overwritten by the next call that uses it, so only the training loop passes one.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor, init=None) -> torch.Tensor:
        """A buffer of this shape; `init(buf)` runs only when it is newly allocated."""
        buf = self._buffers.get(name)
        if (
            buf is None
            or buf.shape != tuple(shape)
            or buf.dtype != like.dtype
            or (buf.device != like.device)
        ):
            buf = like.new_empty(shape)
            if init is not None:
                init(buf)
            self._buffers[name] = buf
        return buf


class _NoWorkspace:
    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor, init=None) -> torch.Tensor:
        buf = like.new_empty(shape)
        if init is not None:
            init(buf)
        return buf


def tanh_rnn(
    x_network_major: torch.Tensor,
    params: dict[str, torch.Tensor],
    workspace: Workspace | None = None,
    states: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """States (K, T, B, H) (None unless `states`) and outputs (K, T, B, O) of each network."""
    out = TanhRNN.apply(
        x_network_major,
        params["W_x"].transpose(1, 2),
        params["b"],
        params["W_h"].transpose(1, 2),
        params["W_out"].transpose(1, 2),
        params["b_out"],
        workspace if workspace is not None else _NoWorkspace(),
        states,
    )
    return out if states else (None, out)
