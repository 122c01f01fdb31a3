"""What path integration's dynamics rise is made of: the pairwise DSA distances behind it.

    python docs/results/pi_modes.py REGISTRY [HIDDEN] > pi_modes.md

The path-integration cell (2-D against 3-D, hidden HIDDEN, default 64, threshold 0.2): per
sample of 16 seeds whose networks the registry holds and per dimension, the converged
networks' DSA distances at the reproduction's own setting (10 delays, rank 5, the stored
32-trial probe set; every pair from the cache). The paper's measure is the mean over all
pairs. Beside it: each network's mean distance to the others, the networks whose mean is over
3x the median network's (a descriptive cut, chosen after looking, not a test), the mean
distance among the other networks and between the two groups, and the far networks' losses.
"""

import sys

import numpy as np

from degeneracy import api

PARAMS = {"n_delays": 10, "rank": 5}
CONDITION = (
    "task = 'path_integration' AND complexity = {dims} AND hidden_size = {hidden} AND converged "
    "AND seed BETWEEN {lo} AND {hi}"
)


def main(path: str, hidden: int = 64) -> None:
    hidden = int(hidden)
    reg = api.open(path)
    seeds = api.query(
        reg, "SELECT DISTINCT seed FROM networks WHERE task = 'path_integration' ORDER BY 1"
    )["seed"].to_list()
    samples = sorted({16 * (s // 16) for s in seeds})
    print("# Path integration: the pairwise distances behind dynamics' rise\n")
    print(__doc__.split("\n\n", 2)[2].strip() + "\n")
    print(f"Hidden {hidden}.\n")
    print(
        "| seeds | dims | n | mean of all pairs (the paper's) | median pair | far networks "
        "(seed: final loss, OOD loss) | among the rest (max) | far to rest |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for lo in samples:
        for dims in (2, 3):
            where = CONDITION.format(dims=dims, lo=lo, hi=lo + 15, hidden=hidden)
            ids, d, _ = api.distances(reg, "dsa", where, PARAMS)
            n = len(ids)
            info = api.query(
                reg,
                "SELECT network_id, seed, final_loss, ood_loss FROM networks WHERE network_id "
                f"IN ({', '.join(repr(i) for i in ids)})",
            )
            row = {r["network_id"]: r for r in info.iter_rows(named=True)}
            per = d.sum(axis=1) / (n - 1)
            far = per > 3 * np.median(per)
            rest = np.flatnonzero(~far)
            inner = d[np.ix_(rest, rest)][np.triu_indices(len(rest), 1)]
            between = d[np.ix_(np.flatnonzero(far), rest)]
            pairs = d[np.triu_indices(n, 1)]
            names = ", ".join(
                f"{row[ids[k]]['seed']}: {row[ids[k]]['final_loss']:.3f}, "
                f"{row[ids[k]]['ood_loss']:.3f}"
                for k in np.flatnonzero(far)
            )
            far_text = f"{int(far.sum())} ({names})" if far.any() else "0"
            between_text = f"{between.mean():.3f}" if far.any() else "–"
            print(
                f"| {lo}-{lo + 15} | {dims} | {n} | {pairs.mean():.4f} | {np.median(pairs):.4f} "
                f"| {far_text} | {inner.mean():.4f} ({inner.max():.4f}) | {between_text} |"
            )
    print()
    losses = api.query(
        reg,
        "SELECT complexity AS dims, count(*) AS n, median(final_loss) AS final, "
        "median(ood_loss) AS ood FROM networks WHERE task = 'path_integration' AND converged "
        f"AND hidden_size = {hidden} GROUP BY 1 ORDER BY 1",
    )
    print("Median losses of every converged network in the registry, per dimension:\n")
    print("| dims | n | median final loss | median OOD loss |")
    print("| --- | --- | --- | --- |")
    for r in losses.iter_rows(named=True):
        print(f"| {r['dims']} | {r['n']} | {r['final']:.3f} | {r['ood']:.3f} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
