"""`report`: the offline HTML report and a PNG of every chart."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from degeneracy.cli.common import RegistryOpt, app, open_registry, say, user_errors


@app.command()
@user_errors
def report(
    where: Annotated[str | None, typer.Option(help="SQL filter on networks_labeled.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder (default: REGISTRY/report).")
    ] = None,
    grid: Annotated[
        bool,
        typer.Option(
            "--grid",
            help="Also each factor's dynamics at every point of the 3 x 3 DSA setting grid "
            "(a sensitivity display beside the verdict; 9 more analyses).",
        ),
    ] = False,
    registry: RegistryOpt = None,
) -> None:
    """Write report.html (renders offline) and a PNG per chart: degeneracy vs each factor at
    three levels, MDS maps, feature learning, training curves, and the contravariance table.

    Example: `degeneracy report --where "task = 'flipflop'" --out flipflop_report/`
    """
    from degeneracy.api import report as run

    reg = open_registry(registry)
    if out is not None:
        out = reg.outside(out, allowed="report")
    path = run(reg, out, where, grid, progress=say)
    typer.echo(f"report: {path}")
