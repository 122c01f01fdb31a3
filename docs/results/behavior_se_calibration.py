"""Is behavior's standard error honest? Checked on independent groups of the same condition.

    python docs/results/behavior_se_calibration.py REGISTRY > behavior_se_calibration.md

Behavior is the std of OOD loss over a group's converged networks. Two disjoint groups of
networks of one condition measure the same quantity, so z = (s_A - s_B) / sqrt(SE_A² + SE_B²)
has rms 1 (median |z| 0.67) when the SE is honest; rms above 1 means the SE is too small by
about that factor. Compared: the SE by the bootstrap over networks and by the jackknife
(`summary.behavior`, the package's two estimators), for the std of OOD loss (the paper's
measure) and for the std of log OOD loss. Groups:

- halves: every condition with 16 networks (seeds 16-31), split at random into two groups of
  8, 50 splits each; a condition's z² is averaged over its splits, so each condition counts once;
- 16 vs 16: every condition with 32 networks (seeds 16-47), split at random into two groups of
  16, 50 splits each (the conditions with a fourth sample);
- seeds: those conditions' seeds 16-31 against 32-47, the two samples as trained (one split).
"""

import sys

import numpy as np

from degeneracy import api
from degeneracy.analysis.summary import behavior

SPLITS = 50
KEYS = [(t, s) for t in ("std", "log std") for s in ("bootstrap", "jackknife")]


def estimates(x: np.ndarray) -> dict:
    out = {}
    for t, f in (("std", lambda v: v), ("log std", np.log)):
        for s in ("bootstrap", "jackknife"):
            value, _, se = behavior(f(x), se=s)
            out[(t, s)] = (value, se)
    return out


def z(a: np.ndarray, b: np.ndarray) -> dict:
    ea, eb = estimates(a), estimates(b)
    return {k: (ea[k][0] - eb[k][0]) / np.hypot(ea[k][1], eb[k][1]) for k in KEYS}


def split_rms(x: np.ndarray, size: int, rng) -> dict:
    """Per estimator, sqrt(mean z²) over random splits of x into two disjoint groups of size."""
    zs = []
    for _ in range(SPLITS):
        p = rng.permutation(len(x))
        zs.append(z(x[p[:size]], x[p[size : 2 * size]]))
    return {k: float(np.sqrt(np.mean([q[k] ** 2 for q in zs]))) for k in KEYS}


def table(title: str, per_condition: list[dict], note: str, middle: str) -> list[str]:
    """`middle`: what the median column is (and its value for an honest SE)."""
    lines = [f"### {title}", "", note, "", f"| measure | SE | conditions | rms z | {middle} |"]
    lines.append("| --- | --- | --- | --- | --- |")
    for k in KEYS:
        v = np.array([c[k] for c in per_condition])
        lines.append(
            f"| {k[0]} | {k[1]} | {len(v)} | {np.sqrt(np.mean(v**2)):.2f} | "
            f"{np.median(np.abs(v)):.2f} |"
        )
    return [*lines, ""]


def main(path: str) -> None:
    reg = api.open(path)
    rows = api.query(
        reg,
        """SELECT task, hidden_size, complexity, regime, gamma, l1, nuclear, factors,
                  list(ood_loss ORDER BY seed) FILTER (seed BETWEEN 16 AND 31) AS a,
                  list(ood_loss ORDER BY seed) FILTER (seed BETWEEN 32 AND 47) AS b
           FROM networks WHERE converged AND ood_loss > 0 GROUP BY ALL""",
    ).to_dicts()
    rng = np.random.default_rng(1)
    sixteen = [np.array(r["a"]) for r in rows if r["a"] and len(r["a"]) == 16]
    both = [
        (np.array(r["a"]), np.array(r["b"]))
        for r in rows
        if r["a"] and r["b"] and min(len(r["a"]), len(r["b"])) >= 15
    ]
    out = ["# Behavior's standard error against independent groups", ""]
    out += [__doc__.split("\n\n", 2)[2].strip(), ""]
    halves = [split_rms(x, 8, rng) for x in sixteen]
    out += table(
        "Halves (8 vs 8)",
        halves,
        f"{len(halves)} conditions; per condition the rms of z over {SPLITS} random splits.",
        "median of the conditions' rms (honest: about 1)",
    )
    pooled = [split_rms(np.concatenate(ab), (len(ab[0]) + len(ab[1])) // 2, rng) for ab in both]
    out += table(
        "16 vs 16 (15 vs 16 where a condition lost a network)",
        pooled,
        f"{len(pooled)} conditions with a fourth sample; rms of z over {SPLITS} random splits.",
        "median of the conditions' rms (honest: about 1)",
    )
    seeds = [z(a, b) for a, b in both]
    out += table(
        "Seeds 16-31 against seeds 32-47",
        seeds,
        "One z per condition.",
        "median |z| (honest: 0.67)",
    )
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
