"""`reproduce`: every cell of the paper's table, trained resumably, analyzed and reported."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from degeneracy.cli.common import (
    RegistryOpt,
    ThreadsOpt,
    WorkersOpt,
    app,
    open_registry,
    say,
    user_errors,
)
from degeneracy.cli.output import Format, emit


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


@app.command()
@user_errors
def reproduce(
    scale: Annotated[
        str,
        typer.Option(
            help="tiny (seconds; plumbing only), small (16 seeds, hidden 64, the CPU presets; "
            "about 2 hours on 2 cores, see docs/RESULTS.md) or paper (50 seeds, hidden 128, the "
            "paper's thresholds and 1,000-epoch budgets; a GPU or a cluster)."
        ),
    ] = "small",
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="A cell, or a prefix such as 'flipflop' (repeatable)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder (default: REGISTRY/reproduce-SCALE)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan (with its time estimate); stop.")
    ] = False,
    grid: Annotated[
        bool, typer.Option("--grid/--no-grid", help="Check dynamics across the DSA grid.")
    ] = True,
    workers: WorkersOpt = 1,
    threads: ThreadsOpt = None,
    train: Annotated[
        bool,
        typer.Option(
            "--train/--no-train",
            help="--no-train: analyze and report what is stored, train nothing.",
        ),
    ] = True,
    seeds: Annotated[
        int | None,
        typer.Option(
            "--seeds",
            help="Networks per condition [default: the scale's: 3 tiny, 16 small, 50 paper].",
            show_default=False,
        ),
    ] = None,
    first_seed: Annotated[
        int,
        typer.Option(
            "--first-seed",
            help="Seeds start here: --first-seed 16 replicates the small scale on a new "
            "sample (seeds 16-31), written to reproduce-small-seeds16-31.",
        ),
    ] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    registry: RegistryOpt = None,
) -> None:
    """Train, analyze and report every cell of the paper's table at one scale.

    Resumable: rerunning trains only what is missing. Writes levels.csv, verdicts.csv,
    grid.csv, summary.md and report.html (+ PNGs).

    Example: `degeneracy reproduce --scale tiny --only flipflop`
    """
    from degeneracy.api import pick_device
    from degeneracy.cli.training import run_jobs
    from degeneracy.reproduce.cells import Seeds
    from degeneracy.reproduce.run import prepare, run

    sample = Seeds(first_seed, seeds)  # bad counts fail here, before a registry is created
    dev = pick_device(device)
    reg = open_registry(registry, create=True)
    if out is not None:  # its own pages may stand inside the registry, nothing else
        out = reg.outside(out, allowed=f"reproduce-{scale}")
    plan = prepare(reg, scale, only, workers, threads, dev, say, sample)
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
        f"{workers} worker(s) x {plan.threads} thread(s) on {dev}"
        + ("" if train else "; --no-train: analyzing what is stored")
    )
    if dry_run:
        return
    import os

    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)  # analysis runs in this process
    outcome = run(
        reg,
        plan,
        out,
        grid,
        train,
        lambda r, j, d, s: run_jobs(r, j, d, s, workers=workers, threads=plan.threads),
        say,
        "degeneracy " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    from degeneracy.analysis.report import VERDICT_COLUMNS

    # the verdicts table without the task/factor/setting the cell names, and the grid's text
    shown = ["cell", *(c for c in VERDICT_COLUMNS[3:] if c not in ("n", "DSA grid"))]
    emit(
        shown,
        [
            (res.cell.name, *(v[c] for c in shown[1:]))
            for res in outcome.results
            for v in res.verdicts
        ],
        Format.table,
    )
    p = outcome.paths
    typer.echo(f"numbers: {p['levels']}, {p['verdicts']}, {p['summary']}")
    typer.echo(
        f"report: {outcome.report}  ({_minutes(outcome.seconds)}: training "
        f"{_minutes(outcome.train_seconds)}, analysis "
        f"{_minutes(outcome.seconds - outcome.train_seconds)} and report)"
    )
