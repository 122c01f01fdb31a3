"""DSA alignments on 2 cores: one process at 1 thread, one process at 2 threads, and a
`NewtonPool` of 2 single-thread processes.

    python bench/dsa_pool.py [--networks 16] [--rank 10 20] [--rounds 3]

Operators of N random tanh networks (bench/metrics_bench.py's, hidden 64, n_delays 10) are
fitted and all N(N-1)/2 pairs aligned with `dsa.all_pairs` (8 starts, composition rounds), the
three ways interleaved per round; ratios are medians of per-round ratios against 1 thread. The
distances must be equal (the pool solves the same problems, each alone). The pool's process
start (once per analysis) is paid before the first timed round. Run on an idle machine.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from metrics_bench import dsa_bench_args, operators

from degeneracy.analysis import dsa
from degeneracy.analysis.newton_pool import NewtonPool


def main() -> None:
    args = dsa_bench_args()
    print(f"torch {torch.__version__}, N = {args.networks}")
    with NewtonPool(2) as pool:
        for rank in args.rank:
            params = dsa.DSAParams(n_delays=10, rank=rank)
            ops = operators(args.networks, params)
            dsa.all_pairs(ops[:4], params, solve=pool.solver(params))  # start the processes
            ways = {
                "1 thread": (1, None),
                "2 threads": (2, None),
                "pool of 2": (1, pool.solver(params)),
            }
            times: dict[str, list[float]] = {k: [] for k in ways}
            dists = {}
            for _ in range(args.rounds):
                for name, (threads, solve) in ways.items():
                    torch.set_num_threads(threads)
                    t0 = time.perf_counter()
                    dists[name] = dsa.all_pairs(ops, params, solve=solve)[1]
                    times[name].append(time.perf_counter() - t0)
            base = times["1 thread"]
            parts = [
                f"{name} {statistics.median(t):.1f} s "
                f"({statistics.median(b / x for b, x in zip(base, t)):.2f}x)"
                for name, t in times.items()
            ]
            diff = max(np.abs(d - dists["1 thread"]).max() for d in dists.values())
            print(f"rank {rank}: " + ", ".join(parts) + f"; largest distance difference {diff:.1e}")


if __name__ == "__main__":
    main()
