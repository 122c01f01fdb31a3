"""Feature learning from stored weights: weight change and empirical-NTK kernel alignment.

- ‖W_T − W_0‖_F of the recurrent matrix (and relative to ‖W_0‖_F).
- Kernel alignment KA = Tr(K_T K_0) / (‖K_T‖_F ‖K_0‖_F) of the empirical neural tangent kernel
  K = J Jᵀ, J = ∂(outputs on a fixed probe batch)/∂(trained parameters), at init and at the end.
  KA = 1 means the kernel did not move (lazy regime); lower means features were learned.
Under µP the trained parameters are J̃ = √N·W_h and W̃_out = γN·W_out, so the kernel is computed
with respect to those, as training saw them.

The output bias is left out of the kernel (`NTK_PARAMS`): ∂y/∂b_out = I ⊗ 1 whatever the weights,
so its block is a constant that carries no features, and not being under the µP readout's
1/(γN) it outweighs every other block by about (γN)². With it, KA measured the final kernel's
size against that constant (it rose with γ on flip-flop, 0.28 → 0.77), not how the kernel moved.
"""

from __future__ import annotations

import numpy as np
import torch

from degeneracy.training.model import PARAM_NAMES, ModelSpec, forward_autograd


def weight_change(w_final: np.ndarray, w_init: np.ndarray) -> tuple[float, float]:
    """(‖W_T − W_0‖_F, ‖W_T − W_0‖_F / ‖W_0‖_F)."""
    diff = float(np.linalg.norm(np.asarray(w_final, np.float64) - np.asarray(w_init, np.float64)))
    base = float(np.linalg.norm(np.asarray(w_init, np.float64)))
    return diff, diff / base if base > 0 else float("nan")


def raw_params(spec: ModelSpec, effective: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The trained parameters (leading K = 1 axis, float64) from the stored effective weights."""
    from degeneracy.training.model import raw

    eff = {
        n: torch.as_tensor(np.asarray(v), dtype=torch.float64)[None] for n, v in effective.items()
    }
    return raw(spec, eff)


#: the parameters the kernel is taken over: all trained ones but the output bias (module doc)
NTK_PARAMS = tuple(n for n in PARAM_NAMES if n != "b_out")


def ntk(
    spec: ModelSpec,
    effective: dict[str, np.ndarray],
    inputs: np.ndarray,
    names: tuple[str, ...] = NTK_PARAMS,
    chunk: int = 10,
) -> np.ndarray:
    """Empirical NTK (m, m) over all outputs of the probe batch `inputs` (B, T, I), with
    respect to the trained parameters `names`; rows in (trial, step, output) order.

    The Jacobian is taken one trial and `chunk` steps of outputs at a time, each from a forward
    pass that stops at the chunk's last step: an output depends only on its own trial and on
    earlier steps, so these are the same rows a Jacobian of the whole batch has, without
    back-propagating every output through the other trials and the later steps (about 6×
    less work at 4 trials × 50 steps)."""
    from torch.func import jacrev

    params = raw_params(spec, {n: effective[n] for n in PARAM_NAMES})
    fixed = {n: v for n, v in params.items() if n not in names}
    trained = {n: params[n] for n in names}
    x = torch.as_tensor(inputs, dtype=torch.float64)[None]
    rows = []
    for trial in range(x.shape[1]):
        for t0 in range(0, x.shape[2], chunk):
            t1 = min(t0 + chunk, x.shape[2])
            xs = x[:, trial : trial + 1, :t1]

            def f(p, xs=xs, t0=t0):
                return forward_autograd(spec, {**fixed, **p}, xs)[1][:, :, t0:].reshape(-1)

            jac = jacrev(f)(trained)
            rows.append(torch.cat([jac[n].reshape(jac[n].shape[0], -1) for n in names], dim=1))
    j = torch.cat(rows)
    return (j @ j.T).numpy()


def kernel_alignment(k1: np.ndarray, k2: np.ndarray) -> float:
    num = float(np.sum(k1 * k2))
    den = float(np.linalg.norm(k1) * np.linalg.norm(k2))
    return num / den if den > 0 else float("nan")


def stored_weight_changes(registry, ids: list[str]) -> np.ndarray:
    """‖W_T − W_0‖_F / ‖W_0‖_F of each network's stored recurrent matrix (one stacked read)."""
    w_t = registry.load_weights(ids, "W_h", "final")
    w_0 = registry.load_weights(ids, "W_h", "init")
    return np.array([weight_change(a, b)[1] for a, b in zip(w_t, w_0)], dtype=np.float64)


def stored_kernel_alignment(
    registry, nid: str, trials: int = 4, steps: int = 50, names: tuple[str, ...] = NTK_PARAMS
) -> float | None:
    """KA between one stored network's NTKs at init and at the end, on the first `steps` steps
    of `trials` of its task's probe trials; None for networks whose task settings are unknown
    (e.g. ingested state_dicts) or whose initial weights were not stored."""
    import json

    from degeneracy.registry.errors import RegistryError
    from degeneracy.tasks import TaskError, make_task

    with registry.connect() as con:  # a plain read (also inside a query's SQL function)
        task_name, hidden, regime, gamma, factors = con.execute(
            "SELECT task, hidden_size, regime, gamma, factors FROM networks WHERE network_id = ?",
            [nid],
        ).fetchall()[0]
    factors = json.loads(factors)
    if "task_params" not in factors:
        return None
    try:
        task = make_task(task_name, **factors["task_params"])
    except TaskError:
        return None
    spec = ModelSpec(task.n_inputs, task.n_outputs, hidden, regime, gamma, factors.get("tau", 0.1))
    try:
        final = {n: registry.load_weights([nid], n, "final")[0] for n in PARAM_NAMES}
        init = {n: registry.load_weights([nid], n, "init")[0] for n in PARAM_NAMES}
    except RegistryError:
        return None
    x = task.probe(trials, factors.get("train", {}).get("probe_seed", 0)).inputs[:, :steps]
    return float(kernel_alignment(ntk(spec, final, x, names), ntk(spec, init, x, names)))
