"""The four tasks as pure, seeded batch generators, with complexity knobs and OOD variants."""

from __future__ import annotations

import dataclasses
from typing import Any

from degeneracy.schema.kinds import MAX_COMPLEXITY, MAX_TASK_INT
from degeneracy.tasks.base import Batch, Task, TaskError
from degeneracy.tasks.delayed_discrimination import DelayedDiscrimination
from degeneracy.tasks.flipflop import FlipFlop
from degeneracy.tasks.path_integration import PathIntegration
from degeneracy.tasks.sine import Sine

TASKS: dict[str, type[Task]] = {
    t.name: t for t in (FlipFlop, DelayedDiscrimination, Sine, PathIntegration)
}
#: the field of each task that the generic `complexity` knob sets (each task class says)
COMPLEXITY_FIELD = {name: cls.complexity_field for name, cls in TASKS.items()}


def make_task(name: str, complexity: int | None = None, **params: Any) -> Task:
    """Build a task by name; `complexity` sets its complexity knob; params override defaults."""
    if name not in TASKS:
        raise TaskError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    cls = TASKS[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise TaskError(
            f"{name}: unknown parameter(s) {', '.join(unknown)} (known: {', '.join(fields)})"
        )
    if complexity is not None:
        if not isinstance(complexity, bool) and isinstance(complexity, int):
            if not 1 <= complexity <= MAX_COMPLEXITY:
                raise TaskError(f"{name}: complexity must be 1..{MAX_COMPLEXITY}, got {complexity}")
        key = COMPLEXITY_FIELD[name]
        if key in params and params[key] != complexity:
            raise TaskError(f"{name}: complexity {complexity} disagrees with {key}={params[key]}")
        params[key] = complexity
    coerced: dict[str, Any] = {}
    for k, v in params.items():
        typ: Any = type(fields[k].default)
        if typ is bool and isinstance(v, str):
            if v.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise TaskError(f"{name}: {k} must be true or false, got {v!r}")
            coerced[k] = v.lower() in ("true", "1", "yes")
            continue
        try:
            coerced[k] = typ(v) if not isinstance(v, typ) else v
        except (TypeError, ValueError) as exc:
            raise TaskError(f"{name}: {k} must be {typ.__name__}, got {v!r}") from exc
        if typ is int and float(v) != int(float(v)):
            raise TaskError(f"{name}: {k} must be an integer, got {v!r}")
        if typ is int and abs(coerced[k]) > MAX_TASK_INT:
            raise TaskError(f"{name}: {k} must be at most {MAX_TASK_INT:,}, got {v!r}")
    return cls(**coerced)


__all__ = [
    "TASKS",
    "Batch",
    "Task",
    "TaskError",
    "make_task",
    "DelayedDiscrimination",
    "FlipFlop",
    "PathIntegration",
    "Sine",
]
