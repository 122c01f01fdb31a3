"""Sweeps: a TOML grid of conditions, trained ensemble by ensemble, resumable.

    name = "flipflop-complexity"
    task = "flipflop"
    seeds = 8                  # a count (0..7) or an explicit list
    hidden = 32                # any key below may be a list: the grid is their product
    complexity = [1, 2, 3]
    regime = "standard"        # or "mup" (with gamma, tau)
    gamma = 1.0
    l1 = 0.0
    nuclear = 0.0
    preset = "cpu"             # default threshold and budget: "cpu" (this machine) or "paper"
    [task_params]              # the task's own knobs, e.g. p, steps, delay_max
    [train]                    # TrainConfig fields: max_epochs, steps_per_epoch, threshold, lr,
                               # batch, stop_epochs, plateau_patience, ...

Networks already in the registry (same condition and seed) are skipped, so rerunning a sweep
after a crash or Ctrl-C finishes the work without duplicates.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from degeneracy.registry.errors import RegistryError
from degeneracy.registry.ids import digest, network_id
from degeneracy.registry.validate import check_keys
from degeneracy.schema.kinds import MAX_HIDDEN
from degeneracy.tasks import TaskError, make_task
from degeneracy.training.trainer import Experiment, TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOP_KEYS = {
    "name",
    "task",
    "seeds",
    "hidden",
    "complexity",
    "regime",
    "gamma",
    "tau",
    "l1",
    "nuclear",
    "preset",
    "task_params",
    "train",
}
GRID_KEYS = ("hidden", "complexity", "regime", "gamma", "tau", "l1", "nuclear")
PRESETS = ("cpu", "paper")
PAPER_MAX_EPOCHS = 1000  # App. B.4; the cpu preset uses each task's `cpu_max_epochs`


@dataclass(frozen=True)
class Job:
    experiment: Experiment
    seeds: list[int]


def build_experiment(
    task: str,
    complexity: int | None,
    hidden: int,
    regime: str = "standard",
    gamma: float = 1.0,
    tau: float = 0.1,
    l1: float = 0.0,
    nuclear: float = 0.0,
    preset: str = "cpu",
    task_params: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
) -> Experiment:
    """One condition from plain values; bad values raise RegistryError with one clear line."""
    try:
        t = make_task(task, complexity, **(task_params or {}))
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        train = dict(train or {})
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(train) - fields)
        if unknown:
            raise ValueError(
                f"unknown train setting(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(fields))})"
            )
        train.setdefault("threshold", t.paper_threshold if preset == "paper" else t.cpu_threshold)
        train.setdefault("max_epochs", PAPER_MAX_EPOCHS if preset == "paper" else t.cpu_max_epochs)
        for key, value in t.train_defaults.items():
            train.setdefault(key, value)
        cfg = TrainConfig(**train)
        if regime not in ("standard", "mup"):
            raise ValueError(f"regime must be 'standard' or 'mup', got {regime!r}")
        if not (isinstance(hidden, int) and 1 <= hidden <= MAX_HIDDEN):
            raise ValueError(f"hidden must be an integer 1..{MAX_HIDDEN}, got {hidden!r}")
        for name, v in (("gamma", gamma), ("tau", tau)):
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"{name} must be > 0, got {v!r}")
        for name, v in (("l1", l1), ("nuclear", nuclear)):
            if not (isinstance(v, (int, float)) and v >= 0):
                raise ValueError(f"{name} must be >= 0, got {v!r}")
        return Experiment(
            t, hidden, regime, float(gamma), float(tau), float(l1), float(nuclear), cfg
        )
    except (TaskError, ValueError, TypeError) as exc:
        raise RegistryError(str(exc)) from exc


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list) else [v]


def parse_spec(text: str, source: str = "spec") -> tuple[str, list[Job]]:
    """(sweep name, jobs) from TOML text; every condition is built (and checked) up front."""
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{source}: not valid TOML ({exc})") from exc
    check_keys(source, spec, TOP_KEYS, ("task", "hidden"))
    seeds = spec.get("seeds", 8)
    seeds = list(range(seeds)) if isinstance(seeds, int) else seeds
    if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise RegistryError(f"{source}: seeds must be a count or a list of integers >= 0")
    axes: list[tuple[str, str, list[Any]]] = [
        ("top", k, _as_list(spec[k])) for k in GRID_KEYS if k in spec
    ]
    for section in ("task_params", "train"):
        table = spec.get(section, {})
        if not isinstance(table, dict):
            raise RegistryError(f"{source}: [{section}] must be a table")
        axes += [(section, k, _as_list(v)) for k, v in table.items()]
    empty = [key for _, key, values in axes if not values]
    if empty:
        raise RegistryError(f"{source}: {empty[0]} = [] gives no condition (list at least one)")
    jobs = []
    for combo in itertools.product(*(values for _, _, values in axes)):
        kw: dict[str, Any] = {"task_params": {}, "train": {}}
        for (where, key, _), value in zip(axes, combo):
            if where == "top":
                kw[key] = value
            else:
                kw[where][key] = value
        try:
            exp = build_experiment(
                spec["task"],
                kw.pop("complexity", None),
                kw.pop("hidden"),
                preset=spec.get("preset", "cpu"),
                **kw,
            )
        except RegistryError as exc:
            raise RegistryError(f"{source}: {exc}") from exc
        jobs.append(Job(exp, list(seeds)))
    return str(spec.get("name", source)), jobs


def sweep_id(text: str) -> str:
    return digest({"spec": text}, "s", 12)


def check_seeds(seeds: list[int]) -> list[int]:
    """Seeds are integers >= 0, at least one (numpy seeds only non-negative integers)."""
    if not seeds or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in seeds
    ):
        raise RegistryError("seeds must be at least one integer >= 0")
    return [int(s) for s in seeds]


def missing_seeds(registry, exp: Experiment, seeds: list[int]) -> list[int]:
    """The seeds of `exp` not yet in the registry."""
    cond = exp.condition().to_dict()
    ids = {network_id(cond, s): s for s in seeds}
    with registry.connect(read_only=True) as con:
        present = {
            r[0]
            for r in con.execute(
                "SELECT network_id FROM networks WHERE network_id IN (SELECT unnest(?::VARCHAR[]))",
                [list(ids)],
            ).fetchall()
        }
    return [s for i, s in ids.items() if i not in present]


def describe(exp: Experiment) -> str:
    parts = [
        exp.task.name,
        f"complexity={exp.task.complexity}",
        f"hidden={exp.hidden}",
        f"regime={exp.regime}",
    ]
    if exp.regime == "mup":
        parts.append(f"gamma={exp.gamma:g}")
    if exp.l1:
        parts.append(f"l1={exp.l1:g}")
    if exp.nuclear:
        parts.append(f"nuclear={exp.nuclear:g}")
    return " ".join(parts)
