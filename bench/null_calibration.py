"""How often each verdict rule calls a difference where none exists, and how often it finds a
planted one: the calibration of `degeneracy.analysis.verdicts`.

Null splits: the converged networks of ONE condition are split at random into two halves
(no difference exists between them), each half summarized as `analyze` summarizes a group,
and each level's rule applied to the two halves (`verdicts.compare`, one test, α = 5 %). The
false-call rate is the share of splits with p < α. Power: the same splits with a difference
planted in the second half, of a stated size:
  - behavior: every OOD loss's deviation from the half's median × `--behavior-factor`;
  - dynamics: `--dynamics-shift` × the condition's excess added to every squared cross-probe
    distance of the half (its true mean square distance rises by that much);
  - weights: every pairwise PIF of the half × (1 + `--weights-step`), both metrics.

Everything is computed once over the whole condition (pairs, floors, PIFs through the
registry's cache, so a rerun is cheap), then re-indexed per split. Also prints what the probe
budget does: the condition's mean floor, uncorrected and corrected distance at the stored 32
trials and at 128 and 512 re-probed trials, at one rank (the share rule's at 512).

    python bench/null_calibration.py REGISTRY [--where SQL] [--splits 400] > out.md
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from degeneracy.analysis import verdicts
from degeneracy.analysis.pairwise_cache import PairwiseCache
from degeneracy.analysis.summary import (
    behavior,
    corrected_distance,
    mean_pairwise,
    spread_deviations,
)


def half_row(idx, ood, cross, floors, pifs, pif_se: str = "jackknife") -> dict:
    """A group's row, as `analyze` gives it, for the networks `idx`."""
    sub = np.ix_(idx, idx)
    std, _, se = behavior(ood[idx])
    mad, mad_se = spread_deviations(ood[idx])
    c = corrected_distance(cross[sub], floors[idx])
    row = {
        "n": len(idx),
        "behavior": std,
        "behavior_se": se,
        "behavior_mad": mad,
        "behavior_mad_se": mad_se,
        "behavior_n": len(idx),
        "dsa_corrected": c["corrected"],
        "dsa_excess": c["excess"],
        "dsa_excess_se": c["excess_se"],
    }
    for name, d in pifs.items():
        row[name], row[f"{name}_se"] = mean_pairwise(d[sub], se=pif_se)
    return row


def planted(idx, ood, cross, floors, pifs, args, excess) -> tuple:
    """The second half's data with the stated differences planted."""
    ood = ood.copy()
    med = np.median(ood[idx])
    ood[idx] = med + args.behavior_factor * (ood[idx] - med)
    cross = cross.copy()
    sub = np.ix_(idx, idx)
    shift = args.dynamics_shift * excess
    cross[sub] = np.sqrt(cross[sub] ** 2 + shift)
    pifs = {k: v.copy() for k, v in pifs.items()}
    for v in pifs.values():
        v[sub] *= 1 + args.weights_step
    return ood, cross, floors, pifs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("registry")
    ap.add_argument("--where", default="converged")
    ap.add_argument("--splits", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--behavior-factor", type=float, default=2.0)
    ap.add_argument("--dynamics-shift", type=float, default=0.5)
    ap.add_argument("--weights-step", type=float, default=0.05)
    ap.add_argument("--budgets", default="0,128,512", help="probe trials (0: the stored 32)")
    ap.add_argument("--pif-se", default="jackknife", help="jackknife (analyze's) or bootstrap")
    args = ap.parse_args()

    import degeneracy

    reg = degeneracy.open(args.registry)
    rows = reg.sql(
        f"SELECT network_id, ood_loss, task, complexity, hidden_size FROM networks "
        f"WHERE {args.where} ORDER BY seed"
    )
    conds = rows.select("task", "complexity", "hidden_size").unique()
    if conds.height != 1:
        raise SystemExit(f"--where must select one condition, got {conds.height}")
    ids = rows["network_id"].to_list()
    ood = rows["ood_loss"].to_numpy().astype(np.float64)
    n = len(ids)
    cache = PairwiseCache(reg)
    t0 = time.perf_counter()
    # the rank: the share rule's over the whole condition at the default budget
    _, p512, text, _ = cache.resolve("dsa", ids)
    rank = p512.rank
    budget_rows = []
    cross = floors = None
    for trials in [int(x) for x in args.budgets.split(",")]:
        params = {**json.loads(text), "trials": trials, "rank": rank}
        t = time.perf_counter()
        x = cache.cross("dsa", ids, params)
        f = cache.floors("dsa", ids, params)
        same = cache.matrix("dsa", ids, params)
        cache.flush()
        c = corrected_distance(x, f)
        iu = np.triu_indices(n, 1)
        budget_rows.append(
            (
                trials or 32,
                f.mean(),
                same[iu].mean(),
                x[iu].mean(),
                c["corrected"],
                c["corrected_se"],
                time.perf_counter() - t,
            )  # fmt: skip
        )
        if trials == p512.trials:
            cross, floors = x, f
    assert cross is not None and floors is not None, "--budgets must include the default"
    pifs = {
        "pif": cache.matrix("pif", ids),
        "pif_scaled": cache.matrix("pif", ids, {"norm": "frobenius"}),
    }
    cache.flush()
    setup = time.perf_counter() - t0
    excess = corrected_distance(cross, floors)["excess"]

    rng = np.random.default_rng(args.seed)
    null = {r.level: [] for r in verdicts.RULES}
    power = {r.level: [] for r in verdicts.RULES}
    for _ in range(args.splits):
        perm = rng.permutation(n)
        a, b = perm[: n // 2], perm[n // 2 : 2 * (n // 2)]
        ra = half_row(a, ood, cross, floors, pifs, args.pif_se)
        rb = half_row(b, ood, cross, floors, pifs, args.pif_se)
        rp = half_row(b, *planted(b, ood, cross, floors, pifs, args, excess), args.pif_se)
        for rule in verdicts.RULES:
            for out, other in ((null, rb), (power, rp)):
                t = verdicts.compare(ra, other, rule)
                ok = t is not None and t.p is not None and t.resolved(t.p)
                out[rule.level].append(ok)

    cond = conds.row(0, named=True)
    print("# Null-split calibration of the verdict rules\n")
    print(
        f"Registry `{args.registry}`, condition {cond['task']} complexity {cond['complexity']} "
        f"hidden {cond['hidden_size']}: {n} converged networks, {args.splits} random splits "
        f"into {n // 2} vs {n // 2} (seed {args.seed}). Setup (every pair, floor and PIF, "
        f"from the cache when stored) {setup:.0f} s.\n"
    )
    print(
        f'Command: `python bench/null_calibration.py REGISTRY --where "{args.where}" '
        f"--splits {args.splits}` (REGISTRY: the 32 networks of "
        "`degeneracy train flipflop --complexity 2 --hidden 64 --seeds 32 --seed-start 100 "
        "--max-epochs 60 --threshold 0.01`)\n"
    )
    print(
        "| level | rule | false calls at α = 5 % (null) | power on the planted difference | "
        "planted |\n| --- | --- | --- | --- | --- |"
    )
    plants = {
        "behavior": f"deviations from the median × {args.behavior_factor:g}",
        "dynamics": f"excess + {args.dynamics_shift:g} × the condition's ({excess:.3g} rad²)",
        "weights": f"PIF × {1 + args.weights_step:g}",
        "weights (scale-free)": f"PIF × {1 + args.weights_step:g}",
    }
    for rule in verdicts.RULES:
        fa, pw = np.mean(null[rule.level]), np.mean(power[rule.level])
        se = np.sqrt(fa * (1 - fa) / args.splits)
        print(
            f"| {rule.level} | {rule.doc} | {fa:.1%} (± {se:.1%}) | {pw:.0%} | "
            f"{plants[rule.level]} |"
        )
    print(
        f"\nThe probe budget, on all {n} networks at rank {rank} (the share rule's at "
        f"{p512.trials} trials): floor = a network's DSA distance to itself on a second probe "
        "set; corrected = √(mean squared cross-probe distance − mean squared floor).\n"
    )
    print(
        "| trials per fit | mean floor | mean pairwise (one probe set) | mean cross-probe | "
        "corrected ± SE | seconds (cached pairs cost none) |\n| --- | --- | --- | --- | --- | --- |"
    )
    for trials, f, same, x, corr, cse, secs in budget_rows:
        print(
            f"| {trials} | {f:.4f} | {same:.4f} | {x:.4f} | {corr:.4f} ± {cse:.4f} | {secs:.0f} |"
        )


if __name__ == "__main__":
    main()
