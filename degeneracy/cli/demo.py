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
    shown = ["behavior", "dsa_corrected", "dsa", "dsa_floor", "pif", "pif_chance"]
    shown += ["pif_scaled", "pif_scaled_chance"]
    typer.echo(
        f"degeneracy over the n converged networks of each level (± SE over networks: {SE_NOTE})"
        ": behavior = std of OOD loss; dsa_corrected = the DSA distance with the probe noise "
        "removed (what the dynamics verdict reads), beside the uncorrected mean pairwise DSA "
        "distance and its noise floor (each network against itself on an independent probe "
        f"set); {_dsa_setting(res.groups)}; pif = mean permutation-invariant weight distance "
        "(‖ΔW‖_F / n²), pif_scaled = the same between matrices divided by their Frobenius "
        "norm, each beside its chance level (the same networks at initialization)"
    )
    emit(
        ["complexity", "n", *shown],
        [(g["complexity"], g["n"], *(pm(g[m], g[f"{m}_se"]) for m in shown)) for g in res.groups],
        Format.table,
    )
    from degeneracy.api import compare

    found = compare(res.groups, ["complexity"])
    if found:
        cols = ["level", "measured", "n", "difference", "tested", "p", "Holm p", "paper", "verdict",
                "seeds needed", "scale-free"]  # fmt: skip
        typer.echo("complexity 1 → 3 under the declared rules (docs/STATISTICS.md):")
        emit(cols, [tuple(v[c] for c in cols) for v in found], Format.table)
    typer.echo(f"report: {res.report} (open it in a browser; PNGs beside it)")
    typer.echo(f"registry: {reg.root}  ({time.perf_counter() - t0:.0f} s)")
    typer.echo(f"next: degeneracy --registry {reg.root} ls")


def _dsa_setting(groups: list[dict]) -> str:
    """The DSA fit the values were computed at, from the rows themselves."""
    ranks = {int(g["dsa_rank"]) for g in groups if g.get("dsa_rank") is not None}
    trials = {int(g["dsa_trials"]) for g in groups if g.get("dsa_trials") is not None}
    if len(ranks) != 1 or len(trials) != 1:
        return "DSA at each group's own setting"
    return (
        f"DSA: reference fit, 10 delays, rank {ranks.pop()} (the share rule's), "
        f"{trials.pop()} probe trials per fit, angular score, rad"
    )
