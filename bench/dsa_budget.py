"""What a DSA fit at the default probe budget costs per network, against today's fit on the
stored 32-trial probe set, in the same run.

Per network: the 32-trial fit (`dsa.fit_operator` on stored-size trajectories) against the
512-trial route the metrics now take (run the network again on 512 trials in chunks,
accumulate the delay embedding's Grams, fit from them: `probing` + `dsa.GramStats`), both for
the operator on one probe set. Random standard-regime flip-flop networks (3 channels), 10
delays, rank 10, float64 fits; torch threads as set by the environment.

    OMP_NUM_THREADS=2 python bench/dsa_budget.py [--networks 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from degeneracy.analysis import dsa
from degeneracy.analysis.params import DSAParams
from degeneracy.tasks import make_task
from degeneracy.training.model import ModelSpec, forward, init_params


def states(spec, params, x) -> np.ndarray:
    with torch.no_grad():
        rates, _ = forward(spec, params, torch.from_numpy(x).expand(len(params["W_h"]), *x.shape))
    assert rates is not None
    return rates.numpy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=8)
    ap.add_argument("--trials", type=int, default=512)
    ap.add_argument("--chunk", type=int, default=128)
    args = ap.parse_args()
    task = make_task("flipflop", 3)
    p = DSAParams(n_delays=10, rank=10)
    print(f"torch threads {torch.get_num_threads()}; {args.networks} networks per width\n")
    print("| hidden | 32 stored trials: fit s/network | 512 trials: run + Grams + fit s/network "
          "| ratio | Grams MB/network |")  # fmt: skip
    print("| --- | --- | --- | --- | --- |")
    for hidden in (64, 128):
        spec = ModelSpec(task.n_inputs, task.n_outputs, hidden)
        params = init_params(spec, list(range(args.networks)))
        small = states(spec, params, task.probe(32).inputs)
        t = time.perf_counter()
        for s in small:
            dsa.fit_operator(s, p)
        old = (time.perf_counter() - t) / args.networks
        big = task.probe(args.trials).inputs
        t = time.perf_counter()
        grams = [dsa.GramStats.empty(p.n_delays, hidden) for _ in range(args.networks)]
        for k in range(0, args.trials, args.chunk):
            for g, s in zip(grams, states(spec, params, big[k : k + args.chunk])):
                g.add(s)
        for g in grams:
            dsa.fit_operator_stats(g, p)
        new = (time.perf_counter() - t) / args.networks
        print(f"| {hidden} | {old:.3f} | {new:.3f} | {new / old:.1f}x | "
              f"{grams[0].nbytes / 2**20:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
