"""DSA alignment against the reference implementation (Ostrow et al.'s `dsa-metric` package).

    pip install dsa-metric        # not a dependency of degeneracy: only this comparison uses it
    python bench/dsa_reference.py [--networks 20] [--pairs 20] [--rank 10] [--iters 3000]

Both sides get the same fitted operators (ours: delay embedding + HAVOK/DMD, n_delays 10), so
only the alignment differs. For a sample of pairs of a group of random tanh networks (hidden 64,
32 trials x 100 steps): the reference's `SimilarityTransformDist(score_method="angular")` run
for --iters Adam iterations (it runs twice per pair, once through a reflection, as the package
does), against ours (all pairs of the group at once: trust-region Newton + composition rounds).
Also: rotated copies of a network (which must score ~0). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from degeneracy.analysis import dsa

try:
    from metrics_bench import trajectories
except ImportError:  # run from the repository root
    from bench.metrics_bench import trajectories


def reference_scores(ops_a, ops_b, iters: int) -> tuple[np.ndarray, float]:
    from DSA.simdist import SimilarityTransformDist

    out = []
    t0 = time.perf_counter()
    for a, b in zip(ops_a, ops_b):
        sim = SimilarityTransformDist(iters=iters, score_method="angular", lr=0.01)
        out.append(
            float(
                sim.fit_score(
                    torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
                )
            )
        )
    return np.array(out), (time.perf_counter() - t0) / max(len(out), 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=20)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--iters", type=int, default=3000)
    args = ap.parse_args()
    try:
        import DSA  # noqa: F401
    except ImportError:
        raise SystemExit("the reference package is not installed: pip install dsa-metric") from None
    torch.set_num_threads(2)
    p = dsa.DSAParams(n_delays=10, rank=args.rank)
    trajs = [trajectories(s, 64) for s in range(args.networks)]
    ops = np.stack([dsa.fit_operator(x, p) for x in trajs])
    t0 = time.perf_counter()
    pairs, ours, iters, _ = dsa.all_pairs(ops, p)
    ours_t = time.perf_counter() - t0
    sel = np.random.default_rng(0).choice(len(pairs), min(args.pairs, len(pairs)), replace=False)
    ref, ref_per_pair = reference_scores(ops[pairs[sel, 0]], ops[pairs[sel, 1]], args.iters)
    diff = ours[sel] - ref
    print(
        f"{args.networks} networks, rank {args.rank}: ours all {len(pairs)} pairs in "
        f"{ours_t:.1f} s ({1e3 * ours_t / len(pairs):.0f} ms/pair, median "
        f"{int(np.median(iters))} Newton iterations); reference {args.iters} Adam iterations x 2 "
        f"runs: {ref_per_pair:.2f} s/pair.\n"
        f"On {len(sel)} pairs, ours - reference (rad): max {diff.max():+.2e}, median "
        f"{np.median(diff):+.2e}, min {diff.min():+.2e}; ours lower on "
        f"{int((diff < -1e-4).sum())}, within 1e-4 on {int((np.abs(diff) <= 1e-4).sum())}, "
        f"higher by > 1e-4 on {int((diff > 1e-4).sum())}."
    )
    q = np.linalg.qr(np.random.default_rng(2).standard_normal((64, 64)))[0]
    k = 5
    copies = np.stack([dsa.fit_operator(trajs[i] @ q.T, p) for i in range(k)])
    ref_rot, _ = reference_scores(ops[:k], copies, args.iters)
    ours_rot = [dsa.all_pairs(np.stack([ops[i], copies[i]]), p)[1][0] for i in range(k)]
    print(
        f"Rotated copies of {k} networks: ours max {max(ours_rot):.1e} rad, reference max "
        f"{ref_rot.max():.1e} rad."
    )


if __name__ == "__main__":
    main()
