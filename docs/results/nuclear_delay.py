"""Where the nuclear-norm networks' OOD loss comes from: error against delay length.

    python docs/results/nuclear_delay.py REGISTRY [HIDDEN] > nuclear_delay.md

The delayed-discrimination nuclear-norm cell (1 channel, trained on delays 5-20, OOD = delays
10-40; hidden HIDDEN, default 64). Every converged network is run again from its stored weights
on trials of one fixed delay each (5, 10, ..., 40; the same PAIRS pairs (f1, f2) at every
delay, trials padded to the OOD probe's length, so the time after the response window grows as
the delay shrinks). Per delay: choice accuracy (sign of the mean output in the response window
against sign(f2 - f1)), the mean signed output in the window, the squared error inside the
response window and outside it (fixation, delay and the padding after the window, where the
target is 0). First the check that the networks run here are the stored ones: the stored OOD
probe set run again reproduces the stored `ood_loss`. Networks are split into the tail (OOD
loss above 3x the unpenalized median, the cut of nuclear_tail.md) and the rest.
"""

import json
import sys

import numpy as np
import torch
from nuclear_tail import CONDITION  # the same cell, selected the same way

from degeneracy import api
from degeneracy.schema.kinds import PARAM_NAMES
from degeneracy.tasks import make_task
from degeneracy.tasks.delayed_discrimination import FIXATION, PULSE, RESPONSE
from degeneracy.training.model import ModelSpec, forward

DELAYS = (5, 10, 15, 20, 25, 30, 35, 40)
PAIRS = 128


def trials(task, delay: int, t_total: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PAIRS trials of one delay: inputs (B, T, 1), targets (B, T, 1), window mask (B, T)."""
    f1, f2 = task.sample_pairs(np.random.default_rng(2026), PAIRS)
    t = np.arange(t_total)[None, :]
    on1 = (t >= FIXATION) & (t < FIXATION + PULSE)
    start2 = FIXATION + PULSE + delay
    on2 = (t >= start2) & (t < start2 + PULSE)
    window = (t >= start2 + PULSE) & (t < start2 + PULSE + RESPONSE)
    window = np.broadcast_to(window, (PAIRS, t_total))
    x = (on1 * f1[:, None] + on2 * f2[:, None]) / 10.0
    y = window * np.sign(f2 - f1)[:, None]
    return x[..., None].astype(np.float32), y[..., None].astype(np.float32), window


def groups(level: np.ndarray, tail: np.ndarray, whole: bool = False):
    """(level, group name, mask) per penalty level: the rest, the tail (and all, if `whole`),
    the empty ones left out."""
    for lv in np.unique(level):
        named = [("rest", ~tail), ("tail", tail)] + ([("all", np.ones_like(tail))] if whole else [])
        for name, m in named:
            sel = (level == lv) & m
            if sel.any():
                yield lv, name, sel


def run(spec, params, x: np.ndarray) -> np.ndarray:
    k = next(iter(params.values())).shape[0]
    xt = torch.from_numpy(x).expand(k, *x.shape)
    with torch.no_grad():
        _, y = forward(spec, params, xt, states=False)
    return y.numpy()


def memory(spec, params, w_h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per network, how durable the memory of f1 is with no second pulse: the largest
    eigenvalue modulus of the one-step Jacobian diag(1 - h²) W_h at the end of a 20- and a
    40-step delay (median over 9 values of f1; 1 = a mode that holds, below 1 = it decays by
    that factor per step), and the ratio of the distances between the states of neighbouring
    f1 values after 40 and after 20 steps (below 1: the values run together)."""
    f1 = np.linspace(2.0, 10.0, 9)
    t_total = FIXATION + PULSE + 41
    x = np.zeros((len(f1), t_total, 1), np.float32)
    x[:, FIXATION : FIXATION + PULSE, 0] = f1[:, None] / 10.0
    k = w_h.shape[0]
    with torch.no_grad():
        rates, _ = forward(spec, params, torch.from_numpy(x).expand(k, *x.shape))
    h = rates.numpy().astype(np.float64)  # (K, f1, T, H)
    lead = np.empty((k, 2))
    for j, delay in enumerate((20, 40)):
        t = FIXATION + PULSE + delay
        jac = (1 - h[:, :, t] ** 2)[..., None] * w_h[:, None]  # (K, f1, H, H)
        lead[:, j] = np.median(np.abs(np.linalg.eigvals(jac)).max(axis=2), axis=1)
    sep = [
        np.linalg.norm(np.diff(h[:, :, FIXATION + PULSE + d], axis=1), axis=2).mean(1)
        for d in (20, 40)
    ]
    return lead, sep[1] / sep[0]


def main(path: str, hidden: int = 64) -> None:
    hidden = int(hidden)
    torch.set_num_threads(1)
    reg = api.open(path)
    df = api.query(
        reg,
        f"SELECT network_id, nuclear, seed, ood_loss, factors FROM networks "
        f"WHERE converged AND {CONDITION.format(hidden=hidden)} ORDER BY nuclear, seed",
    )
    factors = json.loads(df["factors"][0])
    task = make_task("delayed_discrimination", **factors["task_params"])
    ids = df["network_id"].to_list()
    params = {n: torch.from_numpy(reg.load_weights(ids, n)) for n in PARAM_NAMES}
    spec = ModelSpec(task.n_inputs, task.n_outputs, hidden)
    level = df["nuclear"].to_numpy()
    ood = df["ood_loss"].to_numpy()

    tr = factors["train"]
    probe = task.probe(tr["probe_trials"], tr["probe_seed"], ood=True)
    y = run(spec, params, probe.inputs)
    again = ((y - probe.targets) ** 2 * probe.mask).sum(axis=(1, 2, 3)) / probe.mask.sum()
    gap = np.abs(again - ood).max() / ood.max()

    t_total = task.trial_steps(ood=True)
    acc, win, off, amp = (np.empty((len(ids), len(DELAYS))) for _ in range(4))
    for j, d in enumerate(DELAYS):
        x, target, window = trials(task, d, t_total)
        y = run(spec, params, x)[..., 0]  # (K, B, T)
        err = (y - target[..., 0]) ** 2
        win[:, j] = (err * window).sum(axis=(1, 2)) / window.sum()
        off[:, j] = (err * ~window).sum(axis=(1, 2)) / (~window).sum()
        choice = np.sign((y * window).sum(axis=2))
        sign = np.sign(target[..., 0].sum(axis=1))  # (B,)
        acc[:, j] = (choice == sign).mean(axis=1)
        amp[:, j] = ((y * sign[:, None]) * window).sum(axis=(1, 2)) / window.sum()

    base = np.median(ood[level == 0])
    tail = ood > 3 * base
    print("# Nuclear norm: where the OOD loss comes from, against delay length\n")
    print(__doc__.split("\n\n", 2)[2].strip() + "\n")
    print(
        f"Hidden {hidden}; {len(ids)} converged networks; the stored OOD probe set run again "
        f"reproduces the stored ood_loss to {gap:.1e} (relative, worst network). Tail = OOD "
        f"loss above {3 * base:.4f} (3x the unpenalized median {base:.4f}). Trained delays: "
        f"{task.delay_min}-{task.delay_max}.\n"
    )
    head = " | ".join(f"d={d}" for d in DELAYS)
    rule = " | ".join("---" for _ in DELAYS)
    for title, values, fmt in (
        ("Choice accuracy (mean over networks)", acc, "{:.3f}"),
        ("Squared error in the response window (median over networks)", win, "{:.4f}"),
        (
            "Signed output in the response window, y·sign(f2 − f1) (target 1; median over "
            "networks): below 1 = the answer fades, negative = it flips",
            amp,
            "{:.3f}",
        ),
        ("Squared error outside the window, target 0 (median over networks)", off, "{:.4f}"),
    ):
        print(f"## {title}\n")
        print(f"| nuclear | group | n | {head} |")
        print(f"| --- | --- | --- | {rule} |")
        for lv, name, sel in groups(level, tail, whole=True):
            agg = values[sel].mean(axis=0) if values is acc else np.median(values[sel], 0)
            cells = " | ".join(fmt.format(v) for v in agg)
            print(f"| {lv:g} | {name} | {sel.sum()} | {cells} |")
        print()

    long_ = np.array(DELAYS) > task.delay_max
    in_w = win[:, long_].sum(1) * RESPONSE
    share = in_w / (in_w + off[:, long_].sum(1) * (t_total - RESPONSE))
    print("## How much of the long-delay error is in the response window\n")
    print(
        "Per network, the response window's share of the summed squared error over the "
        f"untrained delays {', '.join(str(d) for d in np.array(DELAYS)[long_])} (window "
        f"{RESPONSE} of {t_total} steps per trial); median and range over networks.\n"
    )
    print("| nuclear | group | n | median share | min | max |")
    print("| --- | --- | --- | --- | --- | --- |")
    for lv, name, sel in groups(level, tail):
        s = share[sel]
        print(
            f"| {lv:g} | {name} | {sel.sum()} | {np.median(s):.2f} | {s.min():.2f} | "
            f"{s.max():.2f} |"
        )

    lead, ratio = memory(spec, params, params["W_h"].numpy().astype(np.float64))
    print("\n## How durable the memory of f1 is\n")
    print(" ".join(memory.__doc__.split()).replace("Per network, how", "Per network: how"))
    print("Medians over networks.\n")
    print("| nuclear | group | n | leading eigenvalue, delay 20 | delay 40 | separation 40 / 20 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for lv, name, sel in groups(level, tail):
        print(
            f"| {lv:g} | {name} | {sel.sum()} | {np.median(lead[sel, 0]):.3f} | "
            f"{np.median(lead[sel, 1]):.3f} | {np.median(ratio[sel]):.3f} |"
        )
    print("\nWithin each level, correlation of log OOD loss with them:\n")
    print("| nuclear | n | leading eigenvalue, delay 20 | f1 separation 40 / 20 |")
    print("| --- | --- | --- | --- |")
    for lv in np.unique(level):
        m = level == lv
        lo = np.log(ood[m])
        print(
            f"| {lv:g} | {m.sum()} | {np.corrcoef(lo, lead[m, 0])[0, 1]:+.2f} | "
            f"{np.corrcoef(lo, ratio[m])[0, 1]:+.2f} |"
        )


if __name__ == "__main__":
    main(*sys.argv[1:3])
