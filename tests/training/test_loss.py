import torch

from degeneracy.training.loss import masked_mse


def test_masked_mse_and_its_gradient_equal_the_plain_formula():
    g = torch.Generator().manual_seed(0)
    k, b, t, o = 3, 5, 7, 2
    # y as the model gives it: a transposed view of time-major outputs
    y = torch.randn(k, t, b, o, generator=g, dtype=torch.float64).requires_grad_(True)
    target = torch.randn(k, b, t, o, generator=g, dtype=torch.float64)
    mask = (torch.rand(k, b, t, o, generator=g) > 0.3).double()
    weights = torch.randn(k, generator=g, dtype=torch.float64)  # a loss that mixes networks

    ours = masked_mse(y.transpose(1, 2), target, mask)
    (grad_ours,) = torch.autograd.grad((weights * ours).sum(), [y])

    # independent: per network, a Python loop over the unmasked entries
    plain = []
    for i in range(k):
        d = [
            (y.transpose(1, 2)[i, bb, tt, oo] - target[i, bb, tt, oo]) ** 2
            for bb in range(b)
            for tt in range(t)
            for oo in range(o)
            if mask[i, bb, tt, oo] == 1
        ]
        plain.append(sum(d) / len(d))
    plain = torch.stack(plain)
    (grad_plain,) = torch.autograd.grad((weights * plain).sum(), [y])

    torch.testing.assert_close(ours, plain, rtol=1e-12, atol=0)
    torch.testing.assert_close(grad_ours, grad_plain, rtol=1e-12, atol=1e-15)
