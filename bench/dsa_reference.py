"""DSA against the reference implementation (Ostrow et al.'s `dsa-metric` package).

    pip install dsa-metric        # not a dependency of degeneracy: only this comparison uses it
    python bench/dsa_reference.py [--networks 20] [--pairs 20] [--rank 10] [--iters 3000]

Random tanh networks (hidden 64, 32 trials x 100 steps), n_delays 10, ridge 1e-3 (passed to the
package as `lamb`). Two comparisons, each on a random sample of --pairs pairs:

1. Full pipelines on the same trajectories. Reference: the package's `DMD` fits (HAVOK, in its
   default float32, as its published numbers were computed) and `SimilarityTransformDist(
   score_method="angular")` on their `A_v`, run for --iters Adam iterations (twice per pair,
   once through a reflection, as the package does). Ours: `fit_operator` with fit="reference"
   and `all_pairs` (every pair of the group at once: trust-region Newton + composition
   rounds). Also: the operators themselves, ours against the package's refitted in float64
   (and in its default float32), up to the diagonal sign similarity D A D (the package's
   singular-vector signs are arbitrary, ours fixed).
2. The alignment alone: both sides get our operators (--fit convention), so only the
   alignment differs; and rotated copies of a network (which must score ~0).
Nothing is asserted.
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
                sim.fit_score(  # it normalises its arguments in place: pass copies
                    torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
                )
            )
        )
    return np.array(out), (time.perf_counter() - t0) / max(len(out), 1)


def package_fit(traj: np.ndarray, n_delays: int, rank: int, lamb: float, float64: bool):
    """The package's DMD fit: (A_v as float64 numpy, its V[:, :rank])."""
    from DSA.dmd import DMD

    old = torch.get_default_dtype()
    if float64:  # the package allocates its embedding in the default dtype
        torch.set_default_dtype(torch.float64)
    try:
        d = DMD(traj, n_delays=n_delays, rank=rank, lamb=lamb, device="cpu")
        d.fit()
    finally:
        torch.set_default_dtype(old)
    return d.A_v.double().numpy(), d.V[:, :rank].double().numpy()


def sign_aligned(ours_v: np.ndarray, theirs_v: np.ndarray, theirs_a: np.ndarray) -> np.ndarray:
    """D A D with D = the signs that map the package's singular vectors onto ours."""
    d = np.sign((ours_v * theirs_v).sum(0))
    return d[:, None] * theirs_a * d[None, :]


def full_pipelines(trajs, sel_pairs, args) -> None:
    p = dsa.DSAParams(n_delays=10, rank=args.rank, fit="reference")
    t0 = time.perf_counter()
    ours_ops = np.stack([dsa.fit_operator(x, p) for x in trajs])
    ours_fit = (time.perf_counter() - t0) / len(trajs)
    t0 = time.perf_counter()
    ref32 = [package_fit(x, 10, args.rank, p.ridge, float64=False) for x in trajs]
    ref_fit = (time.perf_counter() - t0) / len(trajs)
    ref64 = [package_fit(x, 10, args.rank, p.ridge, float64=True) for x in trajs]
    rel64, rel32 = [], []
    for x, op, (a64, v64), (a32, v32) in zip(trajs, ours_ops, ref64, ref32):
        v = dsa._reference_coords(x, p)[0].reshape(-1, args.rank)
        want = sign_aligned(v, v64, a64)
        rel64.append(np.abs(op - want).max() / np.abs(want).max())
        rel32.append(np.abs(op - sign_aligned(v, v32, a32)).max() / np.abs(want).max())
    print(
        f"Operators (fit='reference', ridge {p.ridge:g} = lamb), ours vs the package's up to "
        f"D A D, max relative difference over {len(trajs)} networks: {max(rel64):.1e} (package "
        f"in float64), {max(rel32):.1e} (in its default float32). Fit time per network: ours "
        f"{1e3 * ours_fit:.0f} ms, package (float32) {1e3 * ref_fit:.0f} ms."
    )
    t0 = time.perf_counter()
    pairs, ours, iters, _ = dsa.all_pairs(ours_ops, p)
    ours_t = time.perf_counter() - t0
    index = {tuple(q): k for k, q in enumerate(pairs.tolist())}
    k = np.array([index[tuple(q)] for q in sel_pairs.tolist()])
    ref, ref_per_pair = reference_scores(
        [ref32[i][0] for i in sel_pairs[:, 0]], [ref32[j][0] for j in sel_pairs[:, 1]], args.iters
    )
    diff = ours[k] - ref
    print(
        f"Full pipelines: ours all {len(pairs)} pairs in {ours_t:.1f} s "
        f"({1e3 * ours_t / len(pairs):.0f} ms/pair, median {int(np.median(iters))} Newton "
        f"iterations); reference {args.iters} Adam iterations x 2 runs: {ref_per_pair:.2f} s/pair."
    )
    print("   i   j    ours (rad)   reference     ours - ref")
    for (i, j), o, r in zip(sel_pairs.tolist(), ours[k], ref):
        print(f"  {i:2d}  {j:2d}   {o:.6f}     {r:.6f}    {o - r:+.2e}")
    print(
        f"On {len(k)} pairs, max(ours - reference) {diff.max():+.2e} rad (target <= 1e-4), median "
        f"{np.median(diff):+.2e}, min {diff.min():+.2e}; ours lower by > 1e-4 on "
        f"{int((diff < -1e-4).sum())}, within 1e-4 on {int((np.abs(diff) <= 1e-4).sum())}, "
        f"higher by > 1e-4 on {int((diff > 1e-4).sum())}."
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=20)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--iters", type=int, default=3000)
    ap.add_argument("--fit", default="reference", help="our fit convention for section 2")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    try:
        import DSA  # noqa: F401
    except ImportError:
        raise SystemExit("the reference package is not installed: pip install dsa-metric") from None
    torch.set_num_threads(args.threads)
    trajs = [trajectories(s, 64) for s in range(args.networks)]
    all_pairs = np.stack(np.triu_indices(args.networks, 1), 1)
    pick = np.random.default_rng(0).choice(len(all_pairs), min(args.pairs, len(all_pairs)), False)
    print("1. Full pipelines, same trajectories")
    full_pipelines(trajs, all_pairs[pick], args)

    print(f"2. Alignment alone, same operators (ours, fit={args.fit!r})")
    p = dsa.DSAParams(n_delays=10, rank=args.rank, fit=args.fit)
    ops = np.stack([dsa.fit_operator(x, p) for x in trajs])
    t0 = time.perf_counter()
    pairs, ours, iters, _ = dsa.all_pairs(ops, p)
    ours_t = time.perf_counter() - t0
    sel = pick  # all_pairs lists the pairs in np.triu_indices order
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
    k = min(5, args.networks)
    copies = np.stack([dsa.fit_operator(trajs[i] @ q.T, p) for i in range(k)])
    ref_rot, _ = reference_scores(ops[:k], copies, args.iters)
    ours_rot = [dsa.all_pairs(np.stack([ops[i], copies[i]]), p)[1][0] for i in range(k)]
    print(
        f"Rotated copies of {k} networks: ours max {max(ours_rot):.1e} rad, reference max "
        f"{ref_rot.max():.1e} rad."
    )


if __name__ == "__main__":
    main()
