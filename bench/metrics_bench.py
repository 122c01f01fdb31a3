"""DSA alignment and PIF speed and quality on a group of random tanh networks.

    python bench/metrics_bench.py [--networks 50] [--rank 10 20] [--hidden 64] [--pif-hidden 128]

DSA: operators of N networks (hidden 64, 32 trials x 100 steps, n_delays 10) are fitted, then all
N(N-1)/2 pairs are aligned (our batched trust-region Newton with composition rounds). Quality
baseline in the same run: a 20-start multi-start search (same Newton, random orthogonal starts)
on a subset of pairs; rotated copies of networks must score ~0.
PIF: all pairs of N random recurrent matrices (n = --pif-hidden), serial, with scipy's FAQ.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from degeneracy.analysis import dsa
from degeneracy.analysis.pif import PIFParams, pif_distance, pif_pairs


def trajectories(seed: int, hidden: int, trials: int = 32, steps: int = 100) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((hidden, hidden)) * 1.5 / np.sqrt(hidden)
    h = rng.standard_normal((trials, hidden))
    out = np.zeros((trials, steps, hidden))
    for t in range(steps):
        h = np.tanh(h @ w.T)
        out[:, t] = h
    return out


def dsa_bench_args() -> argparse.Namespace:
    """The options of the DSA timing benches (dsa_solver, dsa_pool): networks, ranks, rounds."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=16)
    ap.add_argument("--rank", type=int, nargs="+", default=[10, 20])
    ap.add_argument("--rounds", type=int, default=3)
    return ap.parse_args()


def operators(networks: int, params: dsa.DSAParams, hidden: int = 64) -> np.ndarray:
    """Fitted DSA operators of `networks` random tanh networks (seeds 0..networks-1)."""
    return np.stack([dsa.fit_operator(trajectories(s, hidden), params) for s in range(networks)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=50)
    ap.add_argument("--rank", type=int, nargs="+", default=[10, 20])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--pif-hidden", type=int, default=128)
    ap.add_argument("--check-pairs", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(2)
    n = args.networks
    trajs = [trajectories(s, args.hidden) for s in range(n)]
    for rank in args.rank:
        p = dsa.DSAParams(n_delays=10, rank=rank)
        t0 = time.perf_counter()
        ops = np.stack([dsa.fit_operator(x, p) for x in trajs])
        fit = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        pairs, d, iters, g = dsa.all_pairs(ops, p)
        align = time.perf_counter() - t0
        # quality: 20 random starts per pair on a subset
        rng = np.random.default_rng(0)
        sel = rng.choice(len(pairs), min(args.check_pairs, len(pairs)), replace=False)
        s = 20
        a = dsa.normalize(np.repeat(ops[pairs[sel, 0]], s, 0))
        b = dsa.normalize(np.repeat(ops[pairs[sel, 1]], s, 0))
        gen = torch.Generator().manual_seed(1)
        c0 = torch.linalg.qr(torch.randn(len(a), rank, rank, dtype=torch.float64, generator=gen))[0]
        t1 = time.perf_counter()
        _, g_multi, _ = dsa.maximize(a, b, c0)
        multi_t = time.perf_counter() - t1
        best = np.arccos(np.clip(g_multi.view(len(sel), s).max(1).values.numpy(), -1, 1))
        gap = d[sel] - best
        # rotated copies
        q = np.linalg.qr(np.random.default_rng(2).standard_normal((args.hidden, args.hidden)))[0]
        copies = np.stack([dsa.fit_operator(trajs[k] @ q.T, p) for k in range(5)])
        _, dc, _, _ = dsa.all_pairs(np.stack([ops[:5], copies], 1).reshape(-1, rank, rank)[:2], p)
        print(
            f"DSA rank {rank}: operator fit {1e3 * fit:.0f} ms/network; all {len(pairs)} pairs "
            f"of {n} networks aligned in {align:.1f} s ({1e3 * align / len(pairs):.1f} ms/pair, "
            f"median {int(np.median(iters))} Newton iterations/pair); vs a 20-start search on "
            f"{len(sel)} pairs ({multi_t:.1f} s, {1e3 * multi_t / len(sel):.0f} ms/pair): "
            f"ours - best = max {gap.max():+.1e}, {int((gap > 1e-3).sum())} pairs worse by >1e-3,"
            f" {int((gap < -1e-3).sum())} better; rotated copy {dc[0]:.1e}"
        )
    # PIF
    rng = np.random.default_rng(3)
    h = args.pif_hidden
    ws = [rng.standard_normal((h, h)) / np.sqrt(h) for _ in range(n)]
    ii, jj = np.triu_indices(n, 1)
    pairs = np.stack([ii, jj], 1)
    t0 = time.perf_counter()
    pif_pairs(ws, pairs[:100], PIFParams(), workers=1)
    serial_t = (time.perf_counter() - t0) / 100
    t0 = time.perf_counter()
    pif_pairs(ws, pairs, PIFParams())
    pif_t = time.perf_counter() - t0
    perm = rng.permutation(h)
    noise = rng.standard_normal((h, h)) * 0.5 / np.sqrt(h) / np.sqrt(h)
    planted, _, _ = pif_distance(ws[0], (ws[0] + noise)[np.ix_(perm, perm)])
    print(
        f"PIF n={h}: all {len(ii)} pairs in {pif_t:.1f} s ({1e3 * pif_t / len(ii):.0f} ms/pair "
        f"over all cores; serial {1e3 * serial_t:.0f} ms/pair; barycenter + 1 random start); "
        f"planted pair with noise 0.5/sqrt(n) per row: "
        f"{planted:.2e} (noise RMS {np.linalg.norm(noise) / h:.2e})"
    )


if __name__ == "__main__":
    main()
