"""Networks trained elsewhere, run on this project's probe sets, so every metric works on them.

A state_dict gives weights only. Its sidecar names the task (and, optionally, its settings under
`[factors] task_params`); the network is then run on exactly the probe sets a network trained
here gets — "id" (in distribution), "id_b" (its independent replica, for DSA's noise floor) and
"ood" — which fills its trajectories and outputs, and the summaries the sidecar left out:
`final_loss` (MSE on "id"), `ood_loss` (on "ood") and `converged` (`final_loss` under the
threshold: `[factors.train] threshold` if the sidecar gives one, else the task's paper threshold).

The update rule is the sidecar's `update`:
- "rnn" (the default; `torch.nn.RNN` with tanh): h_t = tanh(W_x x_t + W_h h_{t-1} + b),
  h_0 = 0; the trajectory is h, the output W_out h_t + b_out;
- "leaky": this project's standard network, x_t = (1 − τ) x_{t-1} + τ (W_h tanh(x_{t-1}) + b)
  + input (τ from `[factors] tau`, default 0.1), as `training.model` runs it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from degeneracy.registry.errors import RegistryError
from degeneracy.registry.records import Condition, NetworkRecord
from degeneracy.schema.kinds import REPLICA_PROBE
from degeneracy.tasks import TaskError, make_task
from degeneracy.training.trainer import TrainConfig

UPDATES = ("rnn", "leaky")
PROBES = (("id", False, 0), ("ood", True, 0), (REPLICA_PROBE, False, 1))


def needs_probing(records: list[NetworkRecord]) -> bool:
    return any(not r.trajectories for r in records)


def _rnn(w: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """torch.nn.RNN's update (tanh), float64: (states (B, T, H), outputs (B, T, O) or None)."""
    w_h = torch.as_tensor(w["W_h"], dtype=torch.float64)
    w_x = torch.as_tensor(w["W_x"], dtype=torch.float64)
    b = torch.as_tensor(w.get("b", np.zeros(len(w_h))), dtype=torch.float64)
    xs = torch.as_tensor(x, dtype=torch.float64)
    h = torch.zeros(xs.shape[0], w_h.shape[0], dtype=torch.float64)
    drive = xs @ w_x.T + b  # (B, T, H)
    states = []
    for t in range(xs.shape[1]):
        h = torch.tanh(drive[:, t] + h @ w_h.T)
        states.append(h)
    hs = torch.stack(states, 1)
    if "W_out" not in w:
        return hs.numpy(), None
    w_out = torch.as_tensor(w["W_out"], dtype=torch.float64)
    b_out = torch.as_tensor(w.get("b_out", np.zeros(len(w_out))), dtype=torch.float64)
    return hs.numpy(), (hs @ w_out.T + b_out).numpy()


def _leaky(spec, w: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from degeneracy.training.model import PARAM_NAMES, forward, raw

    missing = [n for n in PARAM_NAMES if n not in w]
    if missing:
        raise RegistryError(f"update 'leaky' needs {', '.join(missing)} in the state_dict")
    eff = {n: torch.as_tensor(w[n], dtype=torch.float32)[None] for n in PARAM_NAMES}
    with torch.no_grad():
        rates, y = forward(spec, raw(spec, eff), torch.as_tensor(x, dtype=torch.float32)[None])
    assert rates is not None
    return rates[0].numpy(), y[0].numpy()


def _mse(y: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    m = np.broadcast_to(mask, target.shape).astype(np.float64)
    return float(((y - target) ** 2 * m).sum() / max(m.sum(), 1.0))


def probe_records(
    condition: Condition, records: list[NetworkRecord], update: str = "rnn"
) -> list[NetworkRecord]:
    """`records` with trajectories, outputs and the missing summaries filled from the probe
    sets (records that already have trajectories are returned as they are)."""
    if update not in UPDATES:
        raise RegistryError(f"update must be one of {', '.join(UPDATES)}, got {update!r}")
    factors: dict[str, Any] = dict(condition.factors or {})
    try:
        task = make_task(
            condition.task, complexity=condition.complexity, **factors.get("task_params", {})
        )
    except TaskError as exc:
        raise RegistryError(f"cannot run the probes: {exc}") from exc
    cfg = TrainConfig()
    threshold = float(factors.get("train", {}).get("threshold", task.paper_threshold))
    batches = {
        name: task.probe(cfg.probe_trials, cfg.probe_seed, ood, rep) for name, ood, rep in PROBES
    }
    spec = None
    if update == "leaky":
        from degeneracy.training.model import ModelSpec

        spec = ModelSpec(
            task.n_inputs,
            task.n_outputs,
            condition.hidden_size,
            condition.regime,
            condition.gamma,
            factors.get("tau", 0.1),
        )
    out = []
    for r in records:
        if r.trajectories:
            out.append(r)
            continue
        w = r.weights_final
        shape = np.shape(w["W_x"]) if "W_x" in w else None
        if shape != (condition.hidden_size, task.n_inputs):
            raise RegistryError(
                f"seed {r.seed}: the input matrix must be ({condition.hidden_size}, "
                f"{task.n_inputs}) for {condition.task}, got {shape}"
            )
        want = (task.n_outputs, condition.hidden_size)
        if "W_out" in w and np.shape(w["W_out"]) != want:
            raise RegistryError(
                f"seed {r.seed}: the readout must be {want} ({task.n_outputs} outputs of "
                f"{condition.hidden_size} units) for {condition.task}, got {np.shape(w['W_out'])}"
            )
        trajs, outs, loss = {}, {}, {}
        for name, batch in batches.items():
            states, y = _rnn(w, batch.inputs) if spec is None else _leaky(spec, w, batch.inputs)
            trajs[name] = states.astype(np.float32)
            if y is not None:
                outs[name] = y.astype(np.float32)
                loss[name] = _mse(y, batch.targets, batch.mask)
        final = r.final_loss if r.final_loss is not None else loss.get("id")
        converged = r.converged
        if converged is None and final is not None and math.isfinite(final):
            converged = final <= threshold
        out.append(
            dataclasses.replace(
                r,
                trajectories=trajs,
                outputs=outs,
                final_loss=final,
                ood_loss=r.ood_loss if r.ood_loss is not None else loss.get("ood"),
                converged=converged,
                provenance={
                    **(r.provenance or {}),
                    "probed": f"update {update}; converged: final_loss <= {threshold:g}",
                },
            )
        )
    return out
