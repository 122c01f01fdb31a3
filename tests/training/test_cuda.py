"""The CUDA paths of training and DSA, against the CPU. Skipped (saying so) without a GPU; on a
GPU-lent machine: `python -m pytest -q tests/training/test_cuda.py`."""

import numpy as np
import pytest
import torch

from degeneracy.analysis import dsa
from degeneracy.training.model import ModelSpec, forward, forward_autograd, init_params
from degeneracy.training.recurrence import Workspace
from degeneracy.training.trainer import train_ensemble
from tests.training.test_training import _exp

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def test_hand_written_bptt_on_cuda_equals_autograd_and_the_cpu():
    spec = ModelSpec(3, 2, 12)
    cpu = {n: v.double() for n, v in init_params(spec, [0, 1, 2]).items()}
    x = torch.randn(3, 5, 20, 3, dtype=torch.float64)
    weights = torch.randn(3, 5, 20, 2, dtype=torch.float64)
    results = []
    for device, fwd, kw in (
        ("cuda", forward, {"workspace": Workspace(), "states": False}),
        ("cuda", forward_autograd, {}),
        ("cpu", forward, {"workspace": Workspace(), "states": False}),
    ):
        p = {n: v.to(device).requires_grad_() for n, v in cpu.items()}
        _, y = fwd(spec, p, x.to(device), **kw)
        g = torch.autograd.grad((y * weights.to(device)).sum(), list(p.values()))
        results.append([t.cpu() for t in g])
    for ours, ref, on_cpu in zip(*results):
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
        torch.testing.assert_close(ours, on_cpu, rtol=0, atol=1e-12)


def test_training_on_cuda_learns_and_keeps_seeds_independent():
    exp = _exp(hidden=32, max_steps=300, batch=32, lr=3e-3)
    together = train_ensemble(exp, [0, 1, 2, 3], device="cuda")
    alone = train_ensemble(exp, [2], device="cuda")
    np.testing.assert_allclose(
        together[2].weights_final["W_h"], alone[0].weights_final["W_h"], atol=2e-5
    )
    baseline = exp.task.baseline_mse()
    assert min(r.final_loss for r in together) < 0.5 * baseline


def test_dsa_on_cuda_equals_the_cpu():
    rng = np.random.default_rng(0)
    ops = rng.standard_normal((4, 6, 6)) / 3
    params = dsa.DSAParams(n_delays=4, rank=6)
    _, on_cpu, _, _ = dsa.all_pairs(ops, params, device="cpu")
    _, on_gpu, _, _ = dsa.all_pairs(ops, params, device="cuda")
    assert on_cpu.max() > 0.1  # not trivially equal
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-6)
