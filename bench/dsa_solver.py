"""The DSA alignment's truncated CG with and without dropping finished problems from its batch.

    python bench/dsa_solver.py [--networks 16] [--rank 10 20] [--rounds 3]

Operators of N random tanh networks (bench/metrics_bench.py's, hidden 64, n_delays 10) are
fitted and all N(N-1)/2 pairs aligned with `dsa.all_pairs` (8 starts, composition rounds), once
with `dsa._COMPACT` at its value and once with compaction off, interleaved per round; the ratio
is the median of per-round ratios. The distances must agree (compaction changes no arithmetic of
a live problem). Nothing is asserted.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from metrics_bench import dsa_bench_args, operators

from degeneracy.analysis import dsa


def main() -> None:
    args = dsa_bench_args()
    on = dsa._COMPACT
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, N = {args.networks}")
    for rank in args.rank:
        params = dsa.DSAParams(n_delays=10, rank=rank)
        ops = operators(args.networks, params)
        times: dict[str, list[float]] = {"compacted": [], "whole batch": []}
        dists = {}
        for _ in range(args.rounds):
            for name, share in (("compacted", on), ("whole batch", 2.0)):  # 2.0: never
                dsa._COMPACT = share
                t0 = time.perf_counter()
                dists[name] = dsa.all_pairs(ops, params)[1]
                times[name].append(time.perf_counter() - t0)
        dsa._COMPACT = on
        ratio = statistics.median(b / a for a, b in zip(times["compacted"], times["whole batch"]))
        print(
            f"rank {rank}: compacted {statistics.median(times['compacted']):.1f} s, whole batch "
            f"{statistics.median(times['whole batch']):.1f} s: {ratio:.2f}x faster; largest "
            f"distance difference {np.abs(dists['compacted'] - dists['whole batch']).max():.1e}"
        )


if __name__ == "__main__":
    main()
