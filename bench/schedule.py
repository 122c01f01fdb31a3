"""The paper's training schedule (epochs) against the landed one (10-step checks), per task.

    python bench/schedule.py [--task flipflop] [--channels 1 2 3] [--seeds 16] [--hidden 64]
                             [--lr 1e-3]
                             [--budget 5120] [--threads 1] [--out docs/results/schedule.csv]

Two schedules, the same networks (seeds), data streams and step budget:
  paper:  epochs of 128 steps; ReduceLROnPlateau on the epoch-mean training MSE, patience 40
          epochs; stop after 3 epochs in a row under the threshold (App. B.4).
  landed: the same rules on 10-step "epochs" (the code before this schedule: patience 40
          checks = 400 steps, stop after 3 checks = 30 steps).
Each run trains with the paper's flip-flop threshold (1e-3). A looser threshold's stop would
have fired at the first point where its rule holds on the same curve (the run is identical up
to that point: only the stop differs), so the curves give both thresholds from one run.
Resumable: finished (schedule, channels) cells are kept in `<out>.json` and skipped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from degeneracy.tasks import make_task
from degeneracy.training.trainer import Experiment, TrainConfig, train_ensemble

SCHEDULES = {"paper": 128, "landed": 10}  # steps per epoch; patience 40 and stop 3 for both


def stop_step(steps: np.ndarray, loss: np.ndarray, threshold: float, k: int = 3) -> int | None:
    """The step at which `k` consecutive curve points under `threshold` first hold, else None."""
    run = 0
    for s, v in zip(steps, loss):
        run = run + 1 if v < threshold else 0
        if run >= k:
            return int(s)
    return None


def cell(schedule: str, channels: int, args) -> dict:
    spe = SCHEDULES[schedule]
    task = make_task(args.task, channels)
    cfg = TrainConfig(
        **{**task.train_defaults, "lr": args.lr},
        steps_per_epoch=spe,
        max_epochs=args.budget // spe,
        threshold=args.strict,
        plateau_patience=40,
        stop_epochs=3,
    )
    exp = Experiment(task, args.hidden, train=cfg)
    t0 = time.perf_counter()
    records = train_ensemble(exp, list(range(args.seeds)))
    out = {
        "task": args.task,
        "schedule": schedule,
        "channels": channels,
        "lr": args.lr,
        "budget_steps": args.budget,
        "hidden": args.hidden,
        "seeds": args.seeds,
        "seconds": time.perf_counter() - t0,
    }
    for thr in (args.strict, args.loose):
        stops = [stop_step(r.curve["step"], r.curve["loss"], thr) for r in records]
        done = [s for s in stops if s is not None]
        out[f"converged@{thr:g}"] = len(done)
        out[f"median_steps@{thr:g}"] = float(np.median(done)) if done else None
        for mark in args.marks:  # what a shorter budget would have converged
            out[f"converged@{thr:g}_by_{mark}"] = sum(1 for s in done if s <= mark)
    out["n"] = len(records)
    out["median_final_train_loss"] = float(np.median([r.curve["loss"][-1] for r in records]))
    out["final_lr_min"] = float(min(r.curve["lr"][-1] for r in records))
    out["final_lr_median"] = float(np.median([r.curve["lr"][-1] for r in records]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="flipflop")
    ap.add_argument("--channels", type=int, nargs="+", default=[1, 2, 3], help="complexity")
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--budget", type=int, default=5120, help="steps (a multiple of 128 and 10)")
    ap.add_argument("--strict", type=float, default=1e-3, help="the paper's threshold")
    ap.add_argument("--loose", type=float, default=1e-2, help="the CPU preset's threshold")
    ap.add_argument("--schedules", nargs="+", default=list(SCHEDULES), choices=list(SCHEDULES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--marks", type=int, nargs="*", default=[], help="also count convergence by these steps"
    )
    ap.add_argument("--out", default="docs/results/schedule.csv")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    state_path = out.with_suffix(".json")
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    for channels in args.channels:
        for schedule in args.schedules:
            key = (
                f"{args.task}/{schedule}/{channels}/{args.seeds}/{args.hidden}/{args.lr:g}/{args.budget}/"
                f"{args.strict:g}/{args.loose:g}" + "".join(f"/{m}" for m in args.marks)
            )
            if key not in state:
                state[key] = cell(schedule, channels, args)
                state_path.write_text(json.dumps(state, indent=1))
            print(json.dumps(state[key]), flush=True)
    rows = list(state.values())
    cols = list(rows[0])
    lines = [",".join(cols)] + [
        ",".join("" if r.get(c) is None else str(r.get(c)) for c in cols) for r in rows
    ]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
