"""Trainability of path integration's input encodings, with the project's own trainer.

    python bench/path_integration_inputs.py [--dims 2 3] [--encodings cartesian polar polar-cos_sin]
        [--seeds 4] [--hidden 64] [--batch 64] [--lr 1e-3] [--epochs 10] [--steps-per-epoch 128]
        [--thresholds 0.2 0.05] [--threads 1]

Encodings (PathIntegration's `inputs` / `angle_code`): cartesian = velocity (d channels);
polar = the paper's heading angle(s) and speed, angles raw (2-D: θ, v; 3-D: θ, φ, v);
polar-cos_sin = each angle as (cos, sin). All get the start position on the first step. Seeds
0..K-1 give the same data stream to every encoding (same draws, same target paths).

Each (encoding, d) is one ensemble trained on the paper's schedule (TrainConfig: epochs of
`steps_per_epoch` steps, ReduceLROnPlateau on the epoch-mean training MSE, a network stops after
`stop_epochs` epochs in a row under the threshold) at the lowest threshold given. A looser
threshold's stop would have fired at the first point where its rule holds on the same curve (the
run is identical up to there), so the curves give every threshold from one run. Printed per row:
networks converged at each threshold, the median step of that stop, the median training MSE of
the last epoch each network ran (the same data stream for every encoding), the final MSE on the
task's probe set (TrainConfig.probe_trials trials; the probe set is drawn from the task's
parameters, so it differs between encodings) and that set's input-ignoring baseline MSE.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

try:
    from schedule import stop_step
except ImportError:  # run from the repository root
    from bench.schedule import stop_step

from degeneracy.tasks import make_task
from degeneracy.training.trainer import Experiment, TrainConfig, train_ensemble

ENCODINGS = {
    "cartesian": {"inputs": "cartesian"},
    "polar": {"inputs": "polar", "angle_code": "raw"},
    "polar-cos_sin": {"inputs": "polar", "angle_code": "cos_sin"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--encodings", nargs="+", default=list(ENCODINGS), choices=list(ENCODINGS))
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=10, help="TrainConfig.max_epochs (the budget)")
    ap.add_argument("--steps-per-epoch", type=int, default=128)
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.2, 0.05])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    thresholds = sorted(args.thresholds, reverse=True)
    cfg = TrainConfig(
        lr=args.lr,
        batch=args.batch,
        steps_per_epoch=args.steps_per_epoch,
        max_epochs=args.epochs,
        threshold=thresholds[-1],
    )
    print(
        f"seeds {args.seeds}, hidden {args.hidden}, batch {args.batch}, lr {args.lr}, "
        f"{cfg.max_epochs} epochs x {cfg.steps_per_epoch} steps = {cfg.max_steps} steps, "
        f"stop after {cfg.stop_epochs} epochs under threshold, {args.threads} thread(s)"
    )
    head = ["encoding", "d", "inputs"]
    head += [f"conv@{t:g}" for t in thresholds] + [f"step@{t:g}" for t in thresholds]
    head += ["median last-epoch MSE", "median probe MSE", "probe MSE range", "baseline"]
    head += ["seconds"]
    print(" | ".join(head))
    for d in args.dims:
        for name in args.encodings:
            task = make_task("path_integration", d, **ENCODINGS[name])
            exp = Experiment(task, hidden=args.hidden, train=cfg)
            t0 = time.perf_counter()
            recs = train_ensemble(exp, list(range(args.seeds)))
            secs = time.perf_counter() - t0
            stops = {
                t: [stop_step(r.curve["step"], r.curve["loss"], t, cfg.stop_epochs) for r in recs]
                for t in thresholds
            }
            assert [s is not None for s in stops[thresholds[-1]]] == [r.converged for r in recs]
            final = [r.final_loss for r in recs]
            row = [name, str(d), str(task.n_inputs)]
            row += [f"{sum(s is not None for s in stops[t])}/{len(recs)}" for t in thresholds]
            row += [
                str(int(statistics.median(done))) if (done := [s for s in stops[t] if s]) else "-"
                for t in thresholds
            ]
            row += [
                f"{statistics.median(r.train_loss for r in recs):.3g}",
                f"{statistics.median(final):.3g}",
                f"{min(final):.3g}-{max(final):.3g}",
                f"{task.baseline_mse():.3g}",
                f"{secs:.0f}",
            ]
            print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main()
