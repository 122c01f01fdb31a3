"""`degeneracy demo`: the main job on the default registry, rerunnable at no cost."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from degeneracy.analysis.params import SE_NOTE
from degeneracy.cli.common import RegistryOpt, app, open_registry, pm, say, user_errors
from degeneracy.cli.output import Format, emit


@app.command()
@user_errors
def demo(
    registry: RegistryOpt = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="4 seeds, 20 epochs, threshold 0.05: about a minute.")
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Train a flip-flop complexity sweep (1-3 channels) and measure its degeneracy.

    Rerunning reuses every stored network. Prints the threshold and budget used.

    Example: `degeneracy demo --quick`
    """
    from degeneracy.api import demo as run
    from degeneracy.cli.training import progress_bar

    reg = open_registry(registry, create=True)
    t0 = time.perf_counter()
    with progress_bar() as progress:
        res = run(reg, quick, device, progress, say)
    s = res.settings
    typer.echo(
        f"\nflip-flop, hidden {s['hidden']}, {s['seeds']} seeds per condition, "
        f"Adam lr {s['lr']:g}, budget {s['max_epochs']} epochs of 128 steps, "
        f"CPU-scale threshold {s['threshold']:g} (the paper's is 1e-3)"
    )
    emit(res.columns, res.levels, Format.table)
    typer.echo(
        f"degeneracy over the n converged networks of each level (± SE over networks: {SE_NOTE})"
        ": behavior = std of OOD loss; dsa = mean pairwise DSA distance (dynamics; reference "
        "fit, 10 delays, rank 10, angular score, rad) beside its noise floor (each network "
        "against itself on an independent probe set); pif = mean permutation-invariant weight "
        "distance (‖ΔW‖_F / n²) beside its chance level (the same networks at initialization)"
    )
    shown = ["behavior", "dsa", "dsa_floor", "pif", "pif_chance"]
    emit(
        ["complexity", "n", *shown],
        [(g["complexity"], g["n"], *(pm(g[m], g[f"{m}_se"]) for m in shown)) for g in res.groups],
        Format.table,
    )
    typer.echo(f"report: {res.report} (open it in a browser; PNGs beside it)")
    typer.echo(f"registry: {reg.root}  ({time.perf_counter() - t0:.0f} s)")
    typer.echo(f"next: degeneracy --registry {reg.root} ls")
