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
  augmented rows and a block weight matrix. S (all steps) is kept for the backward; the inputs
  go into it in one copy (not one per step: fewer calls).
- The backward keeps only CHUNK = 8 steps of G (cached) and adds their S_tᵀ G_t to the weight
  gradients at once: storing all of G and one big matmul at the end cost 6-8 % more at H = 64
  (~270 MB more memory traffic), and the same at H = 128.
- Few calls per step: forward 3 (matmul, σ, affine), backward 2 (matmul, tanh_backward); the
  outputs, the ∂L/∂y and the gradient matmul go once per CHUNK steps. On this shared VM the
  cost of a call varies more than that of the arithmetic: in its slow phases 4 calls per step
  each way ran 1.24x slower than this, in its fast phases 1.04x.
- tanh is slow here (6x sigmoid), so h = 2σ(2z) - 1 (two cheap elementwise ops; the factor 2
  on z is folded into the weights). Centring in the forward, rather than keeping σ(2z) itself,
  avoids a cancellation in the weight gradients (float32 accuracy as autograd's, tested).
  The backward's (1 - h²) ⊙ ∂L/∂h is aten's tanh_backward: one pass, not two.
- G's width H + O is padded with zero columns to a multiple of 8 (67 -> 72): MKL's kernels are
  10-30 % faster on it, for the forward's matmuls and the gradient's (not for the backward's
  ∂L/∂h matmul, which skips the padding).

    forward   S_t = [h_{t-1}, x_t, 1]  (K, B, H+I+1),  h_{-1} = 0
              S_t W = [2 z_t, y_{t-1}, 0],
              W = [[2 W_hᵀ, W_outᵀ, 0], [2 W_xᵀ, 0, 0], [2 b, b_out, 0]]
              (the readout rides along one step late)
    backward  G_t = [a_t, ∂L/∂y_{t-1}, 0]  (K, B, H+O+pad)
              G_{t+1} [[W_h], [W_out], [0]] = ∂L/∂h_t (through the future and the readout)
    gradient  M = Σ_t S_tᵀ G_t holds every weight gradient.

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
        one, cols = h_dim + i_dim, _padded(h_dim + o_dim)
        s = workspace.get(f"S{h_dim}", (k, t_len + 1, bsz, one + 1), x, _init_rows(h_dim, i_dim))
        w = x.new_zeros(k, one + 1, cols)
        w[:, :h_dim, :h_dim] = 2 * w_h_t
        w[:, :h_dim, h_dim : h_dim + o_dim] = w_out_t
        w[:, h_dim:one, :h_dim] = 2 * w_x_t
        w[:, one, :h_dim] = 2 * b
        w[:, one, h_dim : h_dim + o_dim] = b_out
        s[:, :t_len, :, h_dim:one] = x
        ys = x.new_empty(k, t_len + 1, bsz, o_dim)  # step t yields y_{t-1}: index 0 unused
        # step t's output goes to slot t % CHUNK (slot-major: each slot contiguous, as bmm's
        # out= needs), and the outputs are copied out once per CHUNK steps
        ring = workspace.get(f"Z{h_dim}", (CHUNK, k, bsz, cols), x)
        outs, zs = ring.unbind(0), ring[..., :h_dim].unbind(0)
        ring_y = ring[..., h_dim : h_dim + o_dim].transpose(0, 1)
        s_steps, hs = s.unbind(1), s[..., :h_dim].unbind(1)
        minus_one = x.new_tensor(-1.0)
        for t in range(t_len + 1):
            j = t % CHUNK
            torch.bmm(s_steps[t], w, out=outs[j])
            if t < t_len:
                torch.sigmoid(zs[j], out=zs[j])
                torch.add(minus_one, zs[j], alpha=2, out=hs[t + 1])  # h = 2σ(2z) - 1 = tanh(z)
            if j == CHUNK - 1 or t == t_len:
                ys[:, t - j : t + 1] = ring_y[:, : j + 1]
        ys = ys[:, 1:]
        ctx.save_for_backward(w_h_t, w_out_t)
        ctx.s, ctx.workspace, ctx.with_states, ctx.cols = s, workspace, with_states, cols
        ctx.s_version = s._version  # a later forward on the same workspace bumps it
        if not with_states:
            return ys
        return s[:, 1:, :, :h_dim].clone(), ys

    @staticmethod
    def backward(ctx, *grads):
        grad_hs, grad_ys = grads if ctx.with_states else (None, grads[0])
        w_h_t, w_out_t = ctx.saved_tensors
        s, cols = ctx.s, ctx.cols
        k, t_plus_1, bsz, rows = s.shape
        t_len, h_dim, o_dim = t_plus_1 - 1, w_h_t.shape[-1], w_out_t.shape[-1]
        if s._version != ctx.s_version:
            raise RuntimeError("the workspace was reused by another forward before this backward")
        # G_t lives in slot t % CHUNK (cached); M += S_tᵀ G_t is taken once per CHUNK steps
        ring = ctx.workspace.get(f"G{h_dim}", (k, CHUNK, bsz, cols), s, lambda r: r.zero_())
        v = s.new_zeros(k, h_dim + o_dim, h_dim)
        v[:, :h_dim] = w_h_t.transpose(1, 2)
        v[:, h_dim:] = w_out_t.transpose(1, 2)
        buf = s.new_empty(k, bsz, h_dim)
        g_used = ring[..., : h_dim + o_dim].unbind(1)  # the padding would only add work here
        a_slots, y_part = ring[..., :h_dim].unbind(1), ring[..., h_dim : h_dim + o_dim]
        hs = s[..., :h_dim].unbind(1)
        m = s.new_zeros(k, rows, cols)
        for t0 in range(t_len // CHUNK * CHUNK, -1, -CHUNK):  # chunks of steps t0 .. t0+n-1
            n = min(CHUNK, t_plus_1 - t0)
            # G_t's ∂L/∂y_{t-1}, for t = t0+1 .. t0+n-1 now; slot 0 still holds G_{t0+CHUNK}
            if grad_ys is None:
                y_part[:, 1:n] = 0
            else:
                y_part[:, 1:n] = grad_ys[:, t0 : t0 + n - 1]
            for t in range(t0 + n - 1, t0 - 1, -1):
                if t == t_len:
                    a_slots[t % CHUNK].zero_()  # a_T = 0
                    continue
                torch.bmm(g_used[(t + 1) % CHUNK], v, out=buf)  # ∂L/∂h_t
                if grad_hs is not None:
                    buf.add_(grad_hs[:, t])
                # a_t = (1 - h_t²) ∂L/∂h_t
                _tanh_backward(buf, hs[t + 1], grad_input=a_slots[t % CHUNK])
            y_part[:, 0] = 0 if t0 == 0 or grad_ys is None else grad_ys[:, t0 - 1]
            m.baddbmm_(
                s[:, t0 : t0 + n].reshape(k, n * bsz, rows).transpose(1, 2),
                ring[:, :n].reshape(k, n * bsz, cols),
            )
        one = rows - 1
        return (
            None,
            m[:, h_dim:one, :h_dim],
            m[:, one, :h_dim],
            m[:, :h_dim, :h_dim],
            m[:, :h_dim, h_dim : h_dim + o_dim],
            m[:, one, h_dim : h_dim + o_dim],
            None,
            None,
        )


CHUNK = 8  # steps per output copy (forward) and per gradient matmul (backward)

_tanh_backward = torch.ops.aten.tanh_backward.grad_input  # grad ⊙ (1 - out²), one pass


def _padded(n: int) -> int:
    """G's width, rounded up to a multiple of 8: MKL's kernels run 10-30 % faster on such widths
    than on H + O = 67 or 131 (measured, K = 50)."""
    return -(-n // 8) * 8


def _init_rows(h_dim: int, i_dim: int):
    """S's constant parts: h_{-1} = 0, no input after the last step, the ones."""

    def init(s: torch.Tensor) -> None:
        s[:, 0, :, :h_dim] = 0
        s[:, -1, :, h_dim : h_dim + i_dim] = 0
        s[..., -1] = 1

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
        workspace if workspace is not None else Workspace(),  # buffers for this call only
        states,
    )
    return out if states else (None, out)
