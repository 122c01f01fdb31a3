"""`train`, `sweep` and `demo`: the commands that make networks."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from degeneracy.cli.common import (
    RegistryOpt,
    ThreadsOpt,
    WorkersOpt,
    app,
    open_registry,
    progress_display,
    say,
    state,
    user_errors,
)
from degeneracy.registry.errors import RegistryError


def parse_params(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RegistryError(f"--param expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


@contextmanager
def progress_bar(total: int | None = None):
    """A rich progress display fed by the API's training events: one line for the run, one
    per ensemble (steps, loss, how many seeds stopped). Yields the `progress` callback."""
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from degeneracy.training.sweep import describe

    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with progress_display(*columns) as bar:
        overall = bar.add_task("ensembles", total=total, status="")
        rows: dict[int, int] = {}

        def progress(event, job, **info):
            label = describe(job.experiment)
            if event == "start":
                rows[id(job)] = bar.add_task(
                    f"  {label}",
                    total=job.experiment.train.max_steps,
                    status=f"{len(info['seeds'])} seeds",
                )
            elif event == "step":
                bar.update(
                    rows[id(job)],
                    completed=info["step"],
                    status=f"loss {info['loss']:.2e}, "
                    f"{info['seeds'] - info['active']}/{info['seeds']} stopped",
                )
            elif event == "done":
                if id(job) in rows:
                    bar.update(rows[id(job)], completed=job.experiment.train.max_steps)
                status = f"{label}: already stored" if info.get("stored") else f"done: {label}"
                bar.update(overall, advance=1, status=status)

        yield progress


def run_jobs(
    reg,
    jobs,
    device: str,
    sweep: str | list[str | None] | None = None,
    workers: int = 1,
    threads: int | None = None,
) -> list:
    """`api.train_jobs` with a progress bar."""
    from degeneracy.api import train_jobs

    with progress_bar(len(jobs)) as progress:
        return train_jobs(reg, jobs, device, sweep, workers, threads, progress)


@app.command()
@user_errors
def train(
    task: Annotated[
        str, typer.Argument(help="flipflop, delayed_discrimination, sine, path_integration")
    ],
    complexity: Annotated[
        int | None,
        typer.Option(help="Channels (2 or 3 dims for path integration); at most 16."),
    ] = None,
    hidden: Annotated[int, typer.Option(help="Hidden units (at most 4096).")] = 64,
    seeds: Annotated[
        int, typer.Option(min=1, help="Networks in the ensemble (seeds start..start+K-1).")
    ] = 8,
    seed_start: Annotated[int, typer.Option(min=0, help="First seed.")] = 0,
    regime: Annotated[str, typer.Option(help="standard or mup.")] = "standard",
    gamma: Annotated[float, typer.Option(help="Feature-learning strength (mup).")] = 1.0,
    l1: Annotated[float, typer.Option(help="L1 penalty on the recurrent matrix.")] = 0.0,
    nuclear: Annotated[
        float, typer.Option(help="Nuclear-norm penalty on the recurrent matrix.")
    ] = 0.0,
    max_epochs: Annotated[
        int | None,
        typer.Option(
            help="Budget in epochs [default: the task's cpu budget (60; 120 for delayed "
            "discrimination), or 1000 with --preset paper]."
        ),
    ] = None,
    steps_per_epoch: Annotated[int, typer.Option(help="Steps per epoch (the paper's 128).")] = 128,
    threshold: Annotated[
        float | None, typer.Option(help="Stop below this MSE [default: preset].")
    ] = None,
    preset: Annotated[
        str, typer.Option(help="Default threshold and budget: cpu or paper.")
    ] = "cpu",
    lr: Annotated[
        float | None,
        typer.Option(help="Adam learning rate η0 (×γ under mup) [default: 1e-3, or the task's]."),
    ] = None,
    batch: Annotated[int, typer.Option(help="Trials per step.")] = 64,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Task knob key=value (repeatable).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    registry: RegistryOpt = None,
) -> None:
    """Train one ensemble (K seeds of one condition, as one stacked model) and register it.

    Example: `degeneracy train flipflop --complexity 2 --hidden 64 --seeds 8 --max-epochs 30`
    """
    from degeneracy.api import pick_device
    from degeneracy.training.sweep import Job, build_experiment

    trainer: dict[str, Any] = {"steps_per_epoch": steps_per_epoch, "batch": batch}
    if max_epochs is not None:
        trainer["max_epochs"] = max_epochs
    if lr is not None:
        trainer["lr"] = lr
    if threshold is not None:
        trainer["threshold"] = threshold
    exp = build_experiment(
        task,
        complexity,
        hidden,
        regime,
        gamma,
        0.1,
        l1,
        nuclear,
        preset,
        parse_params(param or []),
        trainer,
    )
    dev = pick_device(device)
    reg = open_registry(registry, create=True)
    t0 = time.perf_counter()
    summaries = run_jobs(reg, [Job(exp, list(range(seed_start, seed_start + seeds)))], dev)
    if not summaries:
        typer.echo(f"all {seeds} networks already stored; nothing trained")
        return
    ids = summaries[0].written
    with reg.read_query(
        "SELECT count(*), sum(converged::INT), median(final_loss), median(ood_loss), "
        "median(steps) FROM networks WHERE network_id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    ) as rel:
        n, conv, fl, ol, st = rel.fetchall()[0]
    typer.echo(
        f"trained {n} networks in {time.perf_counter() - t0:.0f} s on {dev}: {conv}/{n} converged "
        f"(threshold {exp.train.threshold:g}), median final loss {fl:.2e}, OOD {ol:.2e}, "
        f"median steps {st:.0f}; ensemble {summaries[0].ensemble_id}"
    )


@app.command()
@user_errors
def sweep(
    spec: Annotated[Path, typer.Argument(help="TOML grid of conditions (see examples/).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the conditions; train nothing.")
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    workers: WorkersOpt = 1,
    threads: ThreadsOpt = None,
    executor: Annotated[
        str,
        typer.Option(
            help="local (worker processes on this machine) or ray (each ensemble a Ray task; "
            "needs pip install 'degeneracy[ray]')."
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="With --executor ray: the cluster's address [default: a local Ray]."),
    ] = None,
    registry: RegistryOpt = None,
) -> None:
    """Train every condition of a TOML grid; resumable (stored networks are skipped).

    Example: `degeneracy sweep examples/flipflop_complexity.toml --dry-run`
    """
    from degeneracy.api import check_run_options, pick_device, read_spec
    from degeneracy.api import sweep as run
    from degeneracy.training.sweep import describe, missing_seeds, parse_spec

    check_run_options(executor, workers, threads)
    text, _ = read_spec(spec)
    name, jobs = parse_spec(text, str(spec))
    if dry_run:
        reg = None
        try:
            from degeneracy.registry.store import Registry

            reg = Registry.open(registry if registry is not None else state.registry)
        except RegistryError:
            pass
        for job in jobs:
            todo = len(missing_seeds(reg, job.experiment, job.seeds)) if reg else len(job.seeds)
            t = job.experiment.train
            typer.echo(
                f"{describe(job.experiment)}  seeds={len(job.seeds)}  to train={todo}  "
                f"(lr {t.lr:g}, threshold {t.threshold:g}, {t.max_epochs} epochs x "
                f"{t.steps_per_epoch} steps)"
            )
        typer.echo(f"{len(jobs)} condition(s), {sum(len(j.seeds) for j in jobs)} networks")
        return
    dev = pick_device(device)
    reg = open_registry(registry, create=True)
    t0 = time.perf_counter()
    with progress_bar(len(jobs)) as progress:
        res = run(
            reg,
            text,
            dev,
            workers,
            threads,
            progress,
            source=str(spec),
            executor=executor,
            address=address,
        )
    say(f"sweep {name}: trained {res.trained} network(s) in {time.perf_counter() - t0:.0f} s")
    typer.echo(
        f"sweep {name} ({res.sweep_id}): {len(jobs)} condition(s), "
        f"{res.trained} network(s) trained now"
    )
