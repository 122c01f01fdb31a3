"""Feature learning from stored weights: weight change and empirical-NTK kernel alignment.

- ‖W_T − W_0‖_F of the recurrent matrix (and relative to ‖W_0‖_F).
- Kernel alignment KA = Tr(K_T K_0) / (‖K_T‖_F ‖K_0‖_F) of the empirical neural tangent kernel
  K = J Jᵀ, J = ∂(outputs on a fixed probe batch)/∂(trained parameters), at init and at the end.
  KA = 1 means the kernel did not move (lazy regime); lower means features were learned.
Under µP the trained parameters are J̃ = √N·W_h and W̃_out = γN·W_out, so the kernel is computed
with respect to those, as training saw them.
"""

from __future__ import annotations

import numpy as np
import torch

from degeneracy.training.model import ModelSpec, forward_autograd


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


def ntk(spec: ModelSpec, effective: dict[str, np.ndarray], inputs: np.ndarray) -> np.ndarray:
    """Empirical NTK (m, m) over all outputs of the probe batch `inputs` (B, T, I)."""
    from torch.func import jacrev

    params = raw_params(spec, {n: effective[n] for n in ("W_h", "W_x", "b", "W_out", "b_out")})
    x = torch.as_tensor(inputs, dtype=torch.float64)[None]

    def f(p):
        return forward_autograd(spec, p, x)[1].reshape(-1)

    jac = jacrev(f)(params)
    j = torch.cat([jac[n].reshape(jac[n].shape[0], -1) for n in params], dim=1)
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


def stored_kernel_alignment(registry, nid: str, trials: int = 4, steps: int = 50) -> float | None:
    """KA between one stored network's NTKs at init and at the end, on the first `steps` steps
    of `trials` of its task's probe trials; None for networks whose task settings are unknown
    (e.g. ingested state_dicts) or whose initial weights were not stored."""
    import json

    from degeneracy.registry.errors import RegistryError
    from degeneracy.tasks import TaskError, make_task
    from degeneracy.training.model import PARAM_NAMES

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
    return float(kernel_alignment(ntk(spec, final, x), ntk(spec, init, x)))
