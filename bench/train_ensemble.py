"""Training speed: network-steps per second of the stacked ensemble vs baselines, same process.

    python bench/train_ensemble.py [--k 50] [--hidden 64 128] [--rounds 15] [--device cpu|cuda]

One network-step = forward, backward and Adam update of one network on one batch of 64 trials of
T = 100 (flip-flop, 3 channels). Rows:
  ours            stacked model, hand-written BPTT (degeneracy.training), per-network Adam
  autograd stack  the same stacked model stepped with plain autograd (baddbmm per step)
  (a) nn.RNN × K  K separate torch.nn.RNN + Linear models, each with torch.optim.Adam
  (b) torch.func  stack_module_state + vmap over a hand-written RNN cell, one Adam
  (c) matmul rate the machine's batched float32 matmul rate (K, B, H) x (K, H, H), and the
                  fraction of it our step's FLOPs reach
  µP ours         the µP regime's leaky stacked model, hand-written BPTT (training/leaky.py)
  µP autograd     the same µP model stepped with plain autograd (the path it replaced)
With --device cuda every row runs on the GPU (nn.RNN then uses cuDNN) and each timed call ends
with a synchronize.
Batches are generated once, outside the timed region. Rows run interleaved, one call each per
round in a shuffled order, and ratios are medians of per-round ratios (the VM's speed drifts).
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import time

import numpy as np
import torch
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from degeneracy.tasks import make_task
from degeneracy.training.loss import masked_mse
from degeneracy.training.model import ModelSpec, forward, forward_autograd, init_params
from degeneracy.training.optim import StackedAdam
from degeneracy.training.recurrence import Workspace
from degeneracy.training.trainer import data_rng, stack_batches


def interleaved(fns: dict[str, object], rounds: int, sync=lambda: None) -> dict[str, list[float]]:
    """Seconds per call of each function, one call of each per round, in a shuffled order.

    This machine's speed drifts by up to 2x over seconds (a shared VM), so every ratio is taken
    within a round and then the median over rounds is reported. The order is shuffled (seeded)
    so that no row always runs first, or right after the same other row."""
    for fn in fns.values():
        fn()  # warm-up: allocations, first-touch page faults
    times: dict[str, list[float]] = {name: [] for name in fns}
    order = random.Random(0)
    for _ in range(rounds):
        for name, fn in order.sample(list(fns.items()), len(fns)):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()  # a GPU's queued work counts in the call that queued it
            times[name].append(time.perf_counter() - t0)
    return times


class Net(torch.nn.Module):
    def __init__(self, i: int, h: int, o: int):
        super().__init__()
        self.rnn = torch.nn.RNN(i, h, batch_first=True)
        self.out = torch.nn.Linear(h, o)

    def forward(self, x):
        return self.out(self.rnn(x)[0])


class Cell(torch.nn.Module):
    """A hand-written RNN (vmap over torch.nn.RNN itself is not supported by PyTorch)."""

    def __init__(self, i: int, h: int, o: int):
        super().__init__()
        self.w_x = torch.nn.Linear(i, h)
        self.w_h = torch.nn.Linear(h, h, bias=False)
        self.out = torch.nn.Linear(h, o)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], self.w_h.in_features)
        drive = self.w_x(x)
        hs = []
        for d in drive.unbind(1):
            h = torch.tanh(d + self.w_h(h))
            hs.append(h)
        return self.out(torch.stack(hs, 1))


def bench(k: int, hidden: int, rounds: int, device: str = "cpu") -> dict[str, float]:
    """Median over rounds of network-steps/s per row, of ours/row, and of ours' FLOP share."""
    task = make_task("flipflop", 3)
    x, target, mask = stack_batches([task.generate(data_rng(s), 64) for s in range(k)], device)
    spec = ModelSpec(task.n_inputs, task.n_outputs, hidden)
    mup = ModelSpec(task.n_inputs, task.n_outputs, hidden, regime="mup", gamma=1.0)

    def stacked(fwd, spec=spec, **kw):
        params = init_params(spec, list(range(k)), device)
        adam = StackedAdam(params, torch.full((k,), 1e-3, device=device))
        idx = torch.arange(k, device=device)

        def step():
            sub = {n: p[idx].detach().requires_grad_(True) for n, p in params.items()}
            _, y = fwd(spec, sub, x, **kw)
            grads = torch.autograd.grad(masked_mse(y, target, mask).sum(), list(sub.values()))
            adam.step(idx, dict(zip(sub, grads)))

        return step

    # (a) K separate nn.RNN trainings: a few networks per call, counted per network-step
    nets = [Net(task.n_inputs, hidden, task.n_outputs).to(device) for _ in range(min(k, 8))]
    opts = [torch.optim.Adam(n.parameters(), lr=1e-3) for n in nets]

    def separate():
        for j, (net, opt) in enumerate(zip(nets, opts)):
            opt.zero_grad()
            loss = ((net(x[j]) - target[j]) ** 2 * mask[j]).sum() / mask[j].sum()
            loss.backward()
            opt.step()

    # (b) torch.func ensemble
    cells = [Cell(task.n_inputs, hidden, task.n_outputs).to(device) for _ in range(k)]
    params, buffers = stack_module_state(cells)
    base = copy.deepcopy(cells[0]).to("meta")
    leaves = list(params.values())
    for p in leaves:
        p.requires_grad_(False)
    opt = torch.optim.Adam(leaves, lr=1e-3)

    def loss_fn(p, b, xb, tb, mb):
        y = functional_call(base, (p, b), (xb,))
        return ((y - tb) ** 2 * mb).sum() / mb.sum()

    grad_fn = vmap(grad_and_value(loss_fn))

    def func_step():
        grads, _ = grad_fn(params, buffers, x, target, mask)
        for name, p in params.items():
            p.grad = grads[name]
        opt.step()

    # (c) the machine's batched matmul rate, on the recurrent step's shape
    a = torch.randn(k, 64, hidden, device=device)
    w = torch.randn(k, hidden, hidden, device=device)

    def matmuls():
        for _ in range(20):
            torch.bmm(a, w)

    networks = {"ours": k, "autograd stack": k, "(a) nn.RNN x K": len(nets), "(b) torch.func": k}
    networks |= {"µP ours": k, "µP autograd": k}
    fns = {
        "µP ours": stacked(forward, mup),
        "µP autograd": stacked(forward_autograd, mup),
        "ours": stacked(forward, workspace=Workspace(), states=False),
        "autograd stack": stacked(forward_autograd),
        "(a) nn.RNN x K": separate,
        "(b) torch.func": func_step,
        "matmul": matmuls,
    }
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times = interleaved(fns, rounds, sync)
    i, o, t = task.n_inputs, task.n_outputs, 100
    step_flops = 3 * 2 * 64 * t * (hidden * hidden + hidden * i + hidden * o)  # bwd ≈ 2 × fwd
    mm_flops = 20 * 2 * k * 64 * hidden * hidden
    med = statistics.median
    res = {name: med(n / s for s in times[name]) for name, n in networks.items()}
    for name, n in networks.items():
        res[f"ratio {name}"] = med(
            (k / so) / (n / sb) for so, sb in zip(times["ours"], times[name])
        )
    res["matmul FLOP/s"] = med(mm_flops / s for s in times["matmul"])
    res["share"] = med(
        (k * step_flops / so) / (mm_flops / sm) for so, sm in zip(times["ours"], times["matmul"])
    )
    res["ours FLOP/s"] = res["ours"] * step_flops
    res["µP ratio"] = med(sa / so for so, sa in zip(times["µP ours"], times["µP autograd"]))
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--hidden", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the same rows on the GPU)")
    args = ap.parse_args()
    torch.manual_seed(0)
    np.random.seed(0)
    where = (
        torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda")
        else f"{torch.get_num_threads()} CPU threads"
    )
    print(
        f"torch {torch.__version__}, {where}, K = {args.k}, batch 64, "
        f"T = 100, flip-flop 3 channels; network-steps per second"
    )
    for h in args.hidden:
        r = bench(args.k, h, args.rounds, args.device)
        print(f"\nhidden {h}  (medians over {args.rounds} interleaved rounds)")
        for name in ("ours", "autograd stack", "(a) nn.RNN x K", "(b) torch.func"):
            print(f"  {name:16s} {r[name]:8.1f}   ours / this = {r['ratio ' + name]:.2f}x")
        print(
            f"  (c) ours reach {r['ours FLOP/s'] / 1e9:.1f} GFLOP/s; the machine's batched "
            f"matmul rate {r['matmul FLOP/s'] / 1e9:.1f} GFLOP/s; share "
            f"(per round) {100 * r['share']:.0f}%"
        )
        print(
            f"  µP ours {r['µP ours']:8.1f}, µP autograd {r['µP autograd']:8.1f}: "
            f"ours / autograd = {r['µP ratio']:.2f}x"
        )


if __name__ == "__main__":
    main()
