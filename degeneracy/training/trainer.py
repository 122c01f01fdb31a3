"""Training one ensemble: K seeds of one condition as one stacked model, each with its own data
stream, Adam state, learning-rate schedule and early stop (DESIGN.md, "Training")."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from degeneracy.registry.records import Condition, NetworkRecord
from degeneracy.schema.kinds import REPLICA_PROBE
from degeneracy.tasks.base import Batch, Task
from degeneracy.training import checkpoint as ckpt
from degeneracy.training.checkpoint import Checkpointing
from degeneracy.training.loss import masked_mse
from degeneracy.training.model import ModelSpec, effective, forward, init_params, to_numpy
from degeneracy.training.optim import StackedAdam, StackedPlateau
from degeneracy.training.recurrence import Workspace
from degeneracy.training.regularizers import penalty


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (all recorded with each network)."""

    lr: float = 1e-3
    batch: int = 64
    steps_per_epoch: int = 128  # the paper's epoch (App. B.4); one curve point per epoch
    max_epochs: int = 60  # the cpu budget (7,680 steps; docs/results/); the paper allows 1,000
    threshold: float = 1e-2
    stop_epochs: int = 3  # consecutive epochs with epoch-mean training MSE under threshold
    plateau_patience: int = 40  # epochs without improvement of the epoch-mean loss
    plateau_factor: float = 0.5
    grad_clip: float = 0.0  # per-network gradient-norm clip; 0 = off
    probe_trials: int = 32
    probe_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("lr", "threshold"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        names = ("batch", "steps_per_epoch", "max_epochs", "stop_epochs", "probe_trials")
        for name in names:
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not (isinstance(self.plateau_patience, int) and self.plateau_patience >= 0):
            raise ValueError(
                f"plateau_patience must be an integer >= 0, got {self.plateau_patience!r}"
            )

    @property
    def max_steps(self) -> int:
        return self.steps_per_epoch * self.max_epochs

    def identity(self) -> dict[str, Any]:
        """The settings as recorded in `factors` (and hashed into ids): settings added later
        than the first stored networks are left out while at the value they came with."""
        out = dataclasses.asdict(self)
        for name, first in LATER_TRAIN_SETTINGS.items():
            if name in out and out[name] == first:
                del out[name]
        return out


#: TrainConfig fields added after networks were first stored, each with the value it was
#: introduced with; see `TrainConfig.identity`. Every new field must be listed here
#: (tests/registry/test_ids.py checks), so adding a setting never changes stored ids.
LATER_TRAIN_SETTINGS: dict[str, Any] = {}


@dataclass(frozen=True)
class Experiment:
    """A full condition: task, model, regularization and training settings."""

    task: Task
    hidden: int
    regime: str = "standard"
    gamma: float = 1.0
    tau: float = 0.1
    l1: float = 0.0
    nuclear: float = 0.0
    train: TrainConfig = TrainConfig()

    @property
    def model(self) -> ModelSpec:
        return ModelSpec(
            self.task.n_inputs, self.task.n_outputs, self.hidden, self.regime, self.gamma, self.tau
        )

    def condition(self) -> Condition:
        factors: dict[str, Any] = {
            "task_params": self.task.params(),
            "train": self.train.identity(),
        }
        if self.regime == "mup":
            factors["tau"] = self.tau
        return Condition(
            task=self.task.name,
            hidden_size=self.hidden,
            complexity=self.task.complexity,
            regime=self.regime,
            gamma=self.gamma,
            l1=self.l1,
            nuclear=self.nuclear,
            factors=factors,
        )


def stack_batches(batches: list[Batch], device: str) -> tuple[torch.Tensor, ...]:
    return tuple(
        torch.from_numpy(np.stack([getattr(b, f) for b in batches])).to(device)
        for f in ("inputs", "targets", "mask")
    )


def device_name(device: str) -> str:
    """ "cpu", or "cuda:0 (NVIDIA H200)": the device as a reader of the provenance needs it."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


def data_rng(seed: int) -> np.random.Generator:
    """Network `seed`'s own stream of training batches (independent of its batch-mates)."""
    return np.random.default_rng([int(seed), 0xDA7A])


ProgressFn = Callable[[int, int, float], None]  # (step, networks still training, median loss)


def train_ensemble(
    exp: Experiment,
    seeds: list[int],
    device: str = "cpu",
    progress: ProgressFn | None = None,
    on_check: Callable[[int, dict[str, torch.Tensor], torch.Tensor], None] | None = None,
    checkpoint: Checkpointing | None = None,
) -> list[NetworkRecord]:
    """Train `seeds` of `exp` together; return one record per seed (trained or not).

    The paper's schedule (App. B.4), per network: epochs of `steps_per_epoch` steps; at the end
    of each, the epoch-mean training MSE drives ReduceLROnPlateau (patience in epochs) and the
    stop: `stop_epochs` consecutive epochs under the threshold stop the network (converged;
    it never changes again). `train_loss` records the last epoch mean the rule read.

    `on_check(step, params, active)` is called after every check (for inspection in tests).
    With `checkpoint`, the state is saved at epoch ends every `checkpoint.every` seconds and a
    saved state of the same ensemble is resumed (`training.checkpoint`).
    """
    cfg, spec, task = exp.train, exp.model, exp.task
    k = len(seeds)
    params = init_params(spec, seeds, device)
    init_eff = {n: p.clone() for n, p in effective(spec, params).items()}
    lr = torch.full((k,), cfg.lr * spec.lr_scale, dtype=torch.float32, device=device)
    adam = StackedAdam(params, lr)
    plateau = StackedPlateau(lr, factor=cfg.plateau_factor, patience=cfg.plateau_patience)
    rngs = [data_rng(s) for s in seeds]
    active = torch.ones(k, dtype=torch.bool, device=device)
    under = torch.zeros(k, dtype=torch.int64, device=device)
    stopped_at = [cfg.max_steps] * k
    converged = [False] * k
    curves: list[list[tuple[int, float, float]]] = [[] for _ in range(k)]
    workspace = Workspace()
    running = torch.zeros(k, dtype=torch.float64, device=device)
    n_running = 0
    first = 1
    saved = ckpt.load(checkpoint, device) if checkpoint is not None else None
    if saved is not None:  # resume: every piece of state, in place (the optimisers hold them)
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(saved["params"][n])
                adam.m[n].copy_(saved["adam_m"][n])
                adam.v[n].copy_(saved["adam_v"][n])
            for dst, name in (
                (adam.t, "adam_t"),
                (lr, "lr"),
                (plateau.best, "best"),
                (plateau.bad, "bad"),
                (active, "active"),
                (under, "under"),
            ):
                dst.copy_(saved[name])
        for r, st in zip(rngs, saved["rngs"]):
            r.bit_generator.state = st
        stopped_at, converged = list(saved["stopped_at"]), list(saved["converged"])
        curves = [[tuple(p) for p in c] for c in saved["curves"]]
        first = int(saved["step"]) + 1
    last_save = time.monotonic()
    for step in range(first, cfg.max_steps + 1):
        idx = active.nonzero().flatten()
        if idx.numel() == 0:
            break
        x, target, mask = stack_batches(
            [task.generate(rngs[i], cfg.batch) for i in idx.tolist()], device
        )
        sub = {n: p[idx].detach().requires_grad_(True) for n, p in params.items()}
        _, y = forward(spec, sub, x, workspace, states=False)
        mse = masked_mse(y, target, mask)
        loss = mse + penalty(effective(spec, sub)["W_h"], exp.l1, exp.nuclear)
        grads = dict(zip(sub, torch.autograd.grad(loss.sum(), list(sub.values()))))
        if cfg.grad_clip > 0:
            squares = [(g.flatten(1) ** 2).sum(1) for g in grads.values()]
            norm = torch.sqrt(functools.reduce(torch.add, squares))  # summed in order, as before
            scale = torch.clamp(cfg.grad_clip / (norm + 1e-12), max=1.0)
            grads = {n: g * scale.reshape((-1,) + (1,) * (g.dim() - 1)) for n, g in grads.items()}
        adam.step(idx, grads)
        running[idx] += mse.detach().to(torch.float64)
        n_running += 1
        if step % cfg.steps_per_epoch == 0:  # end of an epoch: the rule reads its mean loss
            mean = running / n_running
            for i in idx.tolist():
                curves[i].append((step, float(mean[i]), float(lr[i])))
            plateau.step(idx, mean[idx])
            ok = mean[idx] < cfg.threshold
            under[idx] = torch.where(ok, under[idx] + 1, torch.zeros_like(under[idx]))
            done = idx[under[idx] >= cfg.stop_epochs]
            for i in done.tolist():
                stopped_at[i], converged[i] = step, True
            active[done] = False
            running.zero_()
            n_running = 0
            if checkpoint is not None and time.monotonic() - last_save >= checkpoint.every:
                ckpt.save(
                    checkpoint,
                    {
                        "step": step,
                        "params": params,
                        "adam_m": adam.m,
                        "adam_v": adam.v,
                        "adam_t": adam.t,
                        "lr": lr,
                        "best": plateau.best,
                        "bad": plateau.bad,
                        "active": active,
                        "under": under,
                        "rngs": [r.bit_generator.state for r in rngs],
                        "stopped_at": stopped_at,
                        "converged": converged,
                        "curves": [[list(p) for p in c] for c in curves],
                    },
                )
                last_save = time.monotonic()
            if progress is not None:
                progress(step, int(active.sum()), float(mean[idx].median()))
            if on_check is not None:
                on_check(step, params, active)
    return _records(exp, seeds, params, init_eff, curves, stopped_at, converged, device)


@torch.no_grad()
def evaluate(
    exp: Experiment, params: dict[str, torch.Tensor], device: str, ood: bool, replica: int = 0
):
    """Rates, outputs and per-network MSE on the fixed probe set (same for every network)."""
    probe = exp.task.probe(exp.train.probe_trials, exp.train.probe_seed, ood=ood, replica=replica)
    k = next(iter(params.values())).shape[0]
    x, target, mask = (
        torch.from_numpy(getattr(probe, f)).to(device).expand(k, *getattr(probe, f).shape)
        for f in ("inputs", "targets", "mask")
    )
    rates, y = forward(exp.model, params, x)
    return rates, y, masked_mse(y, target, mask)


def _records(exp, seeds, params, init_eff, curves, stopped_at, converged, device):
    final_eff = effective(exp.model, params)
    # the replica: a second in-distribution probe set, for the dynamics metrics' noise floor
    probes = {
        name: evaluate(exp, params, device, ood, replica)
        for name, ood, replica in (("id", False, 0), ("ood", True, 0), (REPLICA_PROBE, False, 1))
    }
    made = {
        "device": device_name(device),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "ensemble_size": len(seeds),
    }
    records = []
    for i, seed in enumerate(seeds):
        curve = np.array(curves[i], dtype=np.float64).reshape(-1, 3)
        records.append(
            NetworkRecord(
                seed=int(seed),
                weights_final=to_numpy(final_eff, i),
                weights_init=to_numpy(init_eff, i),
                trajectories={n: p[0][i].cpu().numpy() for n, p in probes.items()},
                outputs={n: p[1][i].cpu().numpy() for n, p in probes.items()},
                curve={
                    "step": curve[:, 0].astype(np.int64),
                    "loss": curve[:, 1],
                    "lr": curve[:, 2],
                },
                steps=stopped_at[i],
                final_loss=float(probes["id"][2][i]),
                ood_loss=float(probes["ood"][2][i]),
                converged=converged[i],
                train_loss=float(curve[-1, 1]) if len(curve) else None,  # what the stop read
                provenance=dict(made),
            )
        )
    return records
