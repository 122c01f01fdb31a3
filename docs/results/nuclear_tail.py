"""Why behavior spreads under the nuclear-norm penalty: the per-network OOD losses behind it.

    python docs/results/nuclear_tail.py REGISTRY [HIDDEN] > nuclear_tail.md

The delayed-discrimination nuclear-norm cell (1 channel, delay 5-20, threshold 1e-2, hidden
HIDDEN, default 64): per penalty level and per sample of 16 seeds (0-15, 16-31, ...: the
samples are independent), the converged networks'
OOD loss (delay doubled) as a distribution: median, 90th percentile, largest, the paper's std,
the std of log loss, and how many networks sit beyond 3x the unpenalized networks' median;
beside it the loss the networks reached in distribution and what the penalty did to the
recurrent matrix (nuclear norm, participation-ratio rank (Σσ)²/Σσ², steps to converge), and
within each level the correlation of log OOD loss with those.
"""

import sys

import numpy as np

from degeneracy import api
from degeneracy.analysis.summary import spread_deviations, spread_test

CONDITION = """task = 'delayed_discrimination' AND regime = 'standard' AND l1 = 0
  AND hidden_size = {hidden}
  AND factors = (SELECT any_value(factors) FROM networks WHERE nuclear > 0)"""


def main(path: str, hidden: int = 64) -> None:
    reg = api.open(path)
    df = api.query(
        reg,
        f"SELECT network_id, nuclear, seed, ood_loss, final_loss, steps FROM networks "
        f"WHERE converged AND {CONDITION.format(hidden=int(hidden))} ORDER BY nuclear, seed",
    )
    w = reg.load_weights(df["network_id"].to_list())  # final W_h, (networks, n, n)
    sv = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    nuc = sv.sum(axis=1)
    pr = nuc**2 / (sv**2).sum(axis=1)
    level = df["nuclear"].to_numpy()
    sample = np.array([f"{16 * (s // 16)}-{16 * (s // 16) + 15}" for s in df["seed"].to_list()])
    samples = sorted(set(sample), key=lambda t: int(t.split("-")[0]))
    ood = df["ood_loss"].to_numpy()
    fin = df["final_loss"].to_numpy()
    steps = df["steps"].to_numpy()
    base = np.median(ood[level == 0])
    print("# Nuclear norm: the OOD losses behind behavior's spread\n")
    print(__doc__.split("\n\n", 2)[2].strip() + "\n")
    print(
        f"Hidden {hidden}. Unpenalized median OOD loss (all samples): {base:.4f}; "
        f"tail = above {3 * base:.4f}.\n"
    )
    print(
        "| nuclear | seeds | n | median | 90th pct | largest | std (paper) | std of log | "
        "in tail | final ID loss | ‖W_h‖_* | PR rank | median steps |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for lv in np.unique(level):
        for s in [*samples, "all"]:
            m = (level == lv) & ((sample == s) | (s == "all"))
            if not m.any():
                continue
            x = ood[m]
            print(
                f"| {lv:g} | {s} | {m.sum()} | {np.median(x):.4f} | {np.quantile(x, 0.9):.4f} | "
                f"{x.max():.4f} | {x.std():.4f} | {np.log(x).std():.2f} | "
                f"{(x > 3 * base).sum()} | {fin[m].mean():.4f} | {nuc[m].mean():.1f} | "
                f"{pr[m].mean():.1f} | {np.median(steps[m]):.0f} |"
            )
    print(
        "\nEach penalty against the unpenalized networks: behavior's verdict test "
        "(Brown–Forsythe, `summary.spread_test`; 'all': the samples as one group):\n"
    )
    print("| nuclear | " + " | ".join(f"seeds {t}" for t in samples) + " | all seeds |")
    print("| --- | " + " | ".join("---" for _ in [*samples, "all"]) + " |")
    for lv in np.unique(level)[1:]:
        ps = []
        for s in [*samples, "all"]:
            a, b = (ood[(level == v) & ((sample == s) | (s == "all"))] for v in (0, lv))
            if min(len(a), len(b)) < 3:
                ps.append("–")
                continue
            p = spread_test(*spread_deviations(a), len(a), *spread_deviations(b), len(b))
            ps.append(f"{'↑' if b.std() > a.std() else '↓'} p {p:.2g} ({len(a)} → {len(b)})")
        print(f"| {lv:g} | " + " | ".join(ps) + " |")
    print("\nWithin each level (all samples), correlation of log OOD loss with:\n")
    print("| nuclear | n | final ID loss | ‖W_h‖_* | PR rank | steps |")
    print("| --- | --- | --- | --- | --- | --- |")
    for lv in np.unique(level):
        m = level == lv
        lo = np.log(ood[m])
        cs = [np.corrcoef(lo, v[m])[0, 1] for v in (np.log(fin), nuc, pr, steps)]
        print(f"| {lv:g} | {m.sum()} | " + " | ".join(f"{c:+.2f}" for c in cs) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
