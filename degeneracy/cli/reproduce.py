"""`reproduce`: every cell of the paper's table, trained resumably, analyzed and reported."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from degeneracy.cli.common import RegistryOpt, app, open_registry, say, user_errors
from degeneracy.cli.output import Format, emit


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


@app.command()
@user_errors
def reproduce(
    scale: Annotated[
        str,
        typer.Option(
            help="tiny (seconds; plumbing only), small (16 seeds, hidden 64, CPU presets; "
            "about 3 hours on 2 cores) or paper (50 seeds, hidden 128, the paper's thresholds "
            "and 1,000-epoch budgets; a GPU or a cluster)."
        ),
    ] = "small",
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="A cell, or a prefix such as 'flipflop' (repeatable)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder [default: <registry>/reproduce-<scale>]."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan (with its time estimate); stop.")
    ] = False,
    grid: Annotated[
        bool, typer.Option("--grid/--no-grid", help="Check dynamics across the DSA grid.")
    ] = True,
    workers: Annotated[
        int, typer.Option(help="Ensembles trained at once, each in its own process.")
    ] = 1,
    threads: Annotated[
        int | None,
        typer.Option(help="Torch CPU threads per worker [default: the cores shared evenly]."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    registry: RegistryOpt = None,
) -> None:
    """Train, analyze and report every cell of the paper's table at one scale.

    Resumable: rerunning trains only what is missing. Writes levels.csv, verdicts.csv,
    grid.csv, summary.md and report.html (+ PNGs).

    Example: `degeneracy reproduce --scale tiny --only flipflop`
    """
    import os

    import torch

    from degeneracy.cli.training import pick_device, run_jobs
    from degeneracy.registry.errors import RegistryError
    from degeneracy.reproduce.run import (
        analyze_cell,
        make_plan,
        measure_step_seconds,
        train,
        versions,
        write_outputs,
        write_report,
    )
    from degeneracy.training.executor import thread_budget

    if threads is not None and threads < 1:
        raise RegistryError(f"--threads must be >= 1, got {threads}")
    if workers < 1:
        raise RegistryError(f"--workers must be >= 1, got {workers}")
    per_worker = thread_budget(workers, threads)
    dev = pick_device(device)
    reg = open_registry(registry, create=True)
    plan = make_plan(reg, scale, only)
    torch.set_num_threads(per_worker)  # time steps as a worker will run them
    measure_step_seconds(plan, dev, say)
    torch.set_num_threads(threads or os.cpu_count() or 1)
    rows = []
    for pc in plan.cells:
        nets = sum(len(j.seeds) for j in pc.jobs)
        rows.append((pc.cell.name, len(pc.jobs), nets, pc.cell.factor))
    typer.echo(f"reproduce --scale {scale}: {len(plan.cells)} cell(s)")
    emit(["cell", "conditions", "networks", "factor"], rows, Format.table)
    typer.echo(
        f"{len(plan.work)} distinct condition(s), {plan.networks} network(s); "
        f"{plan.to_train} to train, at most {_minutes(plan.estimate_seconds() / workers)} "
        f"(measured per-step cost x full budgets / workers; early stops shorten it); "
        f"{workers} worker(s) x {per_worker} thread(s) on {dev}"
    )
    if dry_run:
        return
    t0 = time.perf_counter()
    if plan.todo:
        train(
            reg,
            plan,
            lambda r, j, d, s: run_jobs(r, j, d, s, workers=workers, threads=per_worker),
            dev,
        )
    results = []
    for pc in plan.cells:
        results.append(analyze_cell(reg, pc, grid=grid, say=say))
    folder = out if out is not None else reg.root / f"reproduce-{scale}"
    command = "degeneracy " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    info = versions(dev)
    paths = write_outputs(folder, results, scale, command, info, time.perf_counter() - t0)
    header = [
        f"Registry: {reg.root}. Scale {scale}. " + ", ".join(f"{k} {v}" for k, v in info.items()),
        "Every value is computed over the converged networks of its level (n in levels.csv); "
        "settings per cell in summary.md.",
    ]
    report = write_report(folder, results, header)
    shown = ["cell", "level", "measured", "difference", "2 SE", "floor", "paper", "verdict"]
    verdicts = [tuple(v[c] for c in shown[1:]) for res in results for v in res.verdicts]
    names = [res.cell.name for res in results for _ in res.verdicts]
    emit(shown, [(n, *v) for n, v in zip(names, verdicts)], Format.table)
    typer.echo(f"numbers: {paths['levels']}, {paths['verdicts']}, {paths['summary']}")
    typer.echo(f"report: {report}  ({_minutes(time.perf_counter() - t0)})")
