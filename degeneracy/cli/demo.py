"""`degeneracy demo`: the main job on the default registry, rerunnable at no cost."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from degeneracy.cli.common import RegistryOpt, app, open_registry, user_errors
from degeneracy.cli.output import Format, emit

#: Flip-flop complexity sweep at a CPU-scale preset under which every level converges (measured:
#: bench/schedule.py, docs/results/); the paper's 1e-3 is out of reach for 2-3 channels in this
#: budget. The threshold and budget are printed with every summary.
DEMO_SPEC = """
name = "demo-flipflop-complexity"
task = "flipflop"
seeds = {seeds}
hidden = {hidden}
complexity = [1, 2, 3]
[train]
max_epochs = {max_epochs}
threshold = {threshold}
lr = {lr}
"""
# Full: measured (bench/schedule.py, 16 seeds, hidden 64): under 0.01 by 40 epochs 16/16 (1 and
# 2 channels) but 14/16 (3 channels); by 60 epochs 16/16 (3 channels, median 4,608 steps).
FULL = {"seeds": 8, "hidden": 64, "max_epochs": 60, "threshold": 0.01, "lr": 1e-3}
# Quick: lr 1e-3 and a threshold every level reaches in 20 epochs (2,560 steps). Measured
# (bench/schedule.py, 16 seeds, hidden 64, the paper's schedule): 3 channels 16/16 under 0.05
# (median 1,792 steps; 16/16 under 0.03, median 2,304). At lr 3e-3 only 4/16 reached 0.08: with
# the plateau cut counted in epochs it never fires in this budget, and 3e-3 is too large.
QUICK = {"seeds": 4, "hidden": 64, "max_epochs": 20, "threshold": 0.05, "lr": 1e-3}

SUMMARY_SQL = """
SELECT complexity,
       count(*) AS networks,
       sum(converged::INT) AS converged,
       median(steps) AS median_steps,
       avg(ood_loss) FILTER (WHERE converged) AS mean_ood_loss
FROM networks
WHERE ensemble_id IN (SELECT ensemble_id FROM ensembles WHERE sweep_id = ?)
GROUP BY ALL ORDER BY ALL
"""
IN_SWEEP = "ensemble_id IN (SELECT ensemble_id FROM ensembles WHERE sweep_id = '{sid}')"


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
    from degeneracy.cli.training import pick_device, run_jobs
    from degeneracy.training.sweep import parse_spec, sweep_id

    settings = QUICK if quick else FULL
    text = DEMO_SPEC.format(**settings)
    name, jobs = parse_spec(text, "demo")
    reg = open_registry(registry, create=True)
    sid = sweep_id(text)
    reg.add_sweep(sid, name + ("-quick" if quick else ""), text)
    t0 = time.perf_counter()
    run_jobs(reg, jobs, pick_device(device), sid)
    with reg.read_query(SUMMARY_SQL, [sid]) as rel:
        columns, rows = rel.columns, rel.fetchall()
    typer.echo(
        f"\nflip-flop, hidden {settings['hidden']}, {settings['seeds']} seeds per condition, "
        f"Adam lr {settings['lr']:g}, budget {settings['max_epochs']} epochs of 128 steps, "
        f"CPU-scale threshold {settings['threshold']:g} (the paper's is 1e-3)"
    )
    emit(columns, rows, Format.table)
    from degeneracy.analysis.analyze import analyze
    from degeneracy.cli.common import pm

    _, groups = analyze(reg, ["behavior", "dsa", "pif"], ["complexity"], IN_SWEEP.format(sid=sid))
    typer.echo(
        "degeneracy over the n converged networks of each level (± bootstrap SE over networks): "
        "behavior = std of OOD loss; dsa = mean pairwise DSA distance (dynamics; reference fit, "
        "10 delays, rank 10, angular score, rad) beside its noise floor (each network against "
        "itself on an independent probe set); pif = mean permutation-invariant weight distance "
        "(‖ΔW‖_F / n²) beside its chance level (the same networks at initialization)"
    )
    shown = ["behavior", "dsa", "dsa_floor", "pif", "pif_chance"]
    emit(
        ["complexity", "n", *shown],
        [(g["complexity"], g["n"], *(pm(g[m], g[f"{m}_se"]) for m in shown)) for g in groups],
        Format.table,
    )
    from degeneracy.analysis.report import build_report
    from degeneracy.cli.common import say

    path = build_report(reg, reg.root / "report", IN_SWEEP.format(sid=sid), say)
    typer.echo(f"report: {path} (open it in a browser; PNGs beside it)")
    typer.echo(f"registry: {reg.root}  ({time.perf_counter() - t0:.0f} s)")
    typer.echo(f"next: degeneracy --registry {reg.root} ls")
