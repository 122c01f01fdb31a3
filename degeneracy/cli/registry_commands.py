"""Registry commands: init, ingest, query, ls, label, info, export, check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from degeneracy.cli.common import (
    FormatOpt,
    OutOpt,
    RegistryOpt,
    app,
    open_registry,
    say,
    state,
    user_errors,
)
from degeneracy.cli.output import Format, emit
from degeneracy.registry.errors import RegistryError


@app.command()
@user_errors
def init(
    path: Annotated[Path | None, typer.Argument(help="Folder to create (else --registry).")] = None,
) -> None:
    """Create an empty registry (an existing registry is left as it is).

    Example: `degeneracy init runs/` or `degeneracy --registry runs/ init`
    """
    from degeneracy.registry.store import Registry

    reg = Registry.create(path if path is not None else state.registry)
    typer.echo(f"registry at {reg.root}")


@app.command()
@user_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Exchange folders or .pt state_dict files.")],
    registry: RegistryOpt = None,
) -> None:
    """Register networks trained elsewhere: exchange folders or PyTorch state_dict files.

    Everything is checked before anything is written; networks already present are skipped.
    A state_dict file `net.pt` needs a sidecar `net.json` or `net.toml` with at least
    `task` and `seed` (see README, "Ingesting networks").

    Example: `degeneracy ingest shared_nets/ model_seed3.pt`
    """
    from degeneracy.api import read_networks
    from degeneracy.registry.ingest import write_batches

    batches = read_networks(paths)  # read and validate everything before touching the registry
    summaries = write_batches(open_registry(registry, create=True), batches)
    written = sum(len(s.written) for s in summaries)
    skipped = sum(len(s.skipped) for s in summaries)
    typer.echo(
        f"ingested {written} network(s) in {len(summaries)} batch(es); {skipped} already present"
    )


@app.command()
@user_errors
def query(
    sql: Annotated[str, typer.Argument(help="One read-only SQL statement.")],
    format: FormatOpt = Format.table,
    out: OutOpt = None,
    timeout: Annotated[
        float | None, typer.Option(help="Stop the query after this many seconds.")
    ] = None,
    registry: RegistryOpt = None,
) -> None:
    """Run a read-only SQL query over the registry's tables and views (Ctrl-C stops it).

    Tables: networks, ensembles, sweeps, labels, pairwise, prepared, results. Views: weights,
    trajectories, outputs, curves (the Parquet data), networks_labeled (labels as columns).

    Example: `degeneracy query "SELECT task, avg(final_loss) FROM networks GROUP BY ALL" -f csv`
    """
    if timeout is not None and not timeout > 0:
        raise RegistryError(f"--timeout must be > 0 seconds, got {timeout}")
    if format is Format.parquet and out is None:
        raise RegistryError("--format parquet needs --out FILE (Parquet is binary)")
    reg = open_registry(registry)
    if out is not None:
        reg.outside(out)
    if format is Format.parquet:
        import pyarrow.parquet as pq

        pq.write_table(reg.fetch(sql, timeout=timeout, arrow=True), out, compression="zstd")
        return
    columns, rows = reg.fetch(sql, timeout=timeout)
    emit(columns, rows, format, out)


@app.command("ls")
@user_errors
def ls_(
    where: Annotated[str | None, typer.Option(help="SQL filter on networks.")] = None,
    format: FormatOpt = Format.table,
    out: OutOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Networks grouped by task and condition, with counts and the converged fraction.

    Settings in `factors` that differ within a condition (threshold, lr, ...) get a column each.

    Example: `degeneracy ls --where "task = 'flipflop' AND hidden_size >= 64"`
    """
    from degeneracy.api import conditions_sql

    reg = open_registry(registry)
    if out is not None:
        reg.outside(out)
    with reg.read_query(conditions_sql(reg, where)) as rel:
        columns, rows = rel.columns, rel.fetchall()
    if not rows and format is Format.table:
        say(f"no networks in {reg.root}" + (" matching the filter" if where else ""))
        return
    emit(columns, rows, format, out)


@app.command()
@user_errors
def label(
    name: Annotated[str, typer.Argument(help="Label (post-hoc factor) name, an identifier.")],
    value: Annotated[str, typer.Option("--value", help="Value to give the matching networks.")],
    where: Annotated[str, typer.Option("--where", help="SQL condition on networks.")],
    registry: RegistryOpt = None,
) -> None:
    """Attach a post-hoc factor to the networks matching a SQL condition.

    Labels are stored in `labels` and appear as columns of the `networks_labeled` view, so
    they group like any other factor.

    Example: `degeneracy label wide --value yes --where "hidden_size >= 128"`
    """
    n = open_registry(registry).add_label(name, value, where)
    typer.echo(f"labelled {n} network(s) {name} = {value}")


@app.command()
@user_errors
def info(
    format: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
    registry: RegistryOpt = None,
) -> None:
    """Counts, bytes on disk, schema version and paths of the registry.

    Example: `degeneracy --registry runs/ info -f json`
    """
    data = open_registry(registry).info()
    if format is Format.json:
        typer.echo(json.dumps(data, indent=1))
        return
    rows = [(k, str(data[k])) for k in ("root", "catalog", "schema_version", "code_version")]
    rows += [(f"{k} rows", str(v)) for k, v in data["counts"].items()]
    rows += [(f"{k} bytes", f"{v:,}") for k, v in data["bytes"].items()]
    rows += [("total bytes", f"{data['total_bytes']:,}")]
    emit(["item", "value"], rows, Format.table if format is Format.table else format)


@app.command()
@user_errors
def export(
    ensemble_id: Annotated[str, typer.Argument(help="Ensemble to export (see `ensembles`).")],
    folder: Annotated[Path, typer.Argument(help="Exchange folder to write.")],
    registry: RegistryOpt = None,
) -> None:
    """Write one ensemble as an exchange folder another registry can `ingest`.

    Example: `degeneracy export e3f1c2... shared/flipflop_h64`
    """
    out = open_registry(registry).export_ensemble(ensemble_id, folder)
    typer.echo(f"exported {ensemble_id} to {out}")


@app.command()
@user_errors
def check(
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Register pending writes, quarantine orphan files, remove temp files.",
        ),
    ] = False,
    drop_missing: Annotated[
        bool,
        typer.Option(
            "--drop-missing", help="With --repair: unregister ensembles whose files are gone."
        ),
    ] = False,
    registry: RegistryOpt = None,
) -> None:
    """Check the registry: catalog against files. Exit 0 when whole, 1 when not.

    Example: `degeneracy check --repair`
    """
    from degeneracy.registry.check import summary_rows
    from degeneracy.registry.layout import Layout, default_path
    from degeneracy.registry.store import Registry

    root = Path(registry if registry is not None else state.registry or default_path())
    if not Layout(root.resolve()).catalog.exists():
        raise RegistryError(f"no registry at {root}")
    if drop_missing and not repair:
        raise RegistryError("--drop-missing needs --repair")
    reg = Registry(root)  # not Registry.open: a damaged catalog is a finding, not an error
    res = reg.check(repair=repair, drop_missing=drop_missing)
    for line in res.repaired:
        typer.echo(line)
    emit(["finding", "count", "paths"], summary_rows(res), Format.table)
    typer.echo(
        f"{res.ensembles} ensemble(s), {res.files} registered file(s): "
        + ("the registry is whole" if res.ok else "problems found (see above)")
    )
    if not res.ok:
        raise typer.Exit(1)
