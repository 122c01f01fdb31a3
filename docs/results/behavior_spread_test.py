"""Behavior's verdicts against a test of equal spread, and how often each rule finds a
difference that is not there.

    python docs/results/behavior_spread_test.py REGISTRY > behavior_spread_test.md

Behavior is the std of OOD loss over a level's converged networks; its verdict compares the
lowest and highest level: a direction when |difference| > 2 SE (jackknife SE per level). That
SE is measured about 1.25x too small on heavy-tailed OOD losses (behavior_se_calibration.md),
so the rule calls "differences" between groups of one condition more often than the 4.6 % an
honest SE would give. Compared here, each at 5 %:

- the 2-SE rule (the package's);
- Brown-Forsythe: Levene's test of equal spread on absolute deviations from each group's
  median (`scipy.stats.levene(center="median")`), built for heavy tails;
- a permutation test of |std difference| on median-centred losses (PERMS random splits of the
  pooled centred losses, two-sided);
- the same permutation test without centring, which tests "same distribution" rather than
  "same spread" and is exact when the groups come from one condition: its measured rate shows
  how far this measurement itself scatters around 5 %.

1. How often each rule calls a difference between two disjoint groups of one condition (none
   exists): every condition with 16 converged networks in seeds 16-31 split at random into 8
   and 8, and every condition with 32 in seeds 16-47 into 16 and 16, SPLITS splits each.
2. Every cell of `--scale small`, lowest against highest level, on seeds 16-31 (one sample)
   and, where the fourth sample trained either end, on seeds 16-47 (one group of up to 32
   networks per level): the 2-SE rule's verdict beside Brown-Forsythe's.
"""

import sys

import numpy as np
from scipy import stats

from degeneracy import api
from degeneracy.analysis.summary import behavior, spread_deviations
from degeneracy.reproduce.cells import Seeds
from degeneracy.reproduce.run import make_plan
from degeneracy.reproduce.settle import cell_levels

PERMS = 500
SPLITS = 50
ALPHA = 0.05
RULES = ("2-SE rule", "Brown-Forsythe", "permutation, centred", "permutation, uncentred (exact)")


def two_se_call(a: np.ndarray, b: np.ndarray) -> tuple[float, float, bool]:
    """(difference of stds b − a, 2 SE, resolved) by the package's rule and SE."""
    sa, _, ea = behavior(a)
    sb, _, eb = behavior(b)
    two_se = 2 * float(np.hypot(ea, eb))
    return sb - sa, two_se, abs(sb - sa) > two_se


def brown_forsythe(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.levene(a, b, center="median").pvalue)


def permutation_p(a: np.ndarray, b: np.ndarray, rng, centred: bool) -> float:
    """Two-sided permutation p of |std(a) − std(b)|, optionally on median-centred values."""
    if centred:
        a, b = a - np.median(a), b - np.median(b)
    x = np.concatenate([a, b])
    observed = abs(a.std() - b.std())
    shuffled = x[np.argsort(rng.random((PERMS, len(x))), axis=1)]
    d = np.abs(shuffled[:, : len(a)].std(axis=1) - shuffled[:, len(a) :].std(axis=1))
    return float((1 + np.sum(d >= observed * (1 - 1e-12))) / (1 + PERMS))


def calls(a: np.ndarray, b: np.ndarray, rng) -> tuple[bool, ...]:
    return (
        two_se_call(a, b)[2],
        brown_forsythe(a, b) < ALPHA,
        permutation_p(a, b, rng, centred=True) < ALPHA,
        permutation_p(a, b, rng, centred=False) < ALPHA,
    )


def null_rates(groups: list[np.ndarray], size: int, rng) -> np.ndarray:
    """Per rule, the share of random splits into two groups of `size` it calls."""
    out = []
    for x in groups:
        for _ in range(SPLITS):
            p = rng.permutation(len(x))
            out.append(calls(x[p[:size]], x[p[size : 2 * size]], rng))
    return np.mean(out, axis=0)


def losses(reg, ids: list[str]) -> np.ndarray:
    rows = reg.sql(
        "SELECT ood_loss FROM networks WHERE network_id IN (SELECT unnest(?::VARCHAR[])) "
        "ORDER BY seed",
        [ids],
    )
    return rows["ood_loss"].to_numpy()


def main(path: str) -> None:
    reg = api.open(path)
    rng = np.random.default_rng(7)
    out = ["# Behavior's verdicts against a test of equal spread", ""]
    out += [__doc__.split("\n\n", 2)[2].strip(), ""]

    per_cell = []
    whole: dict[int, dict[str, np.ndarray]] = {16: {}, 32: {}}
    for count in (16, 32):
        plan = make_plan(None, "small", seeds=Seeds(first=16, count=count))
        for pc in plan.cells:
            levels = cell_levels(reg, pc)
            xs = [losses(reg, lv.ids) for lv in levels]
            for lv, x in zip(levels, xs):
                if len(x) == count:
                    whole[count][repr(lv.exp.condition().to_dict())] = x
            if len(levels) < 2 or min(len(xs[0]), len(xs[-1])) < 3:
                continue
            if count == 16 or max(len(xs[0]), len(xs[-1])) > 16:  # seeds 32-47 at either end
                per_cell.append((pc.cell.name, f"16-{15 + count}", levels, xs))

    out += ["## 1. Calls where there is no difference (5 % intended)", ""]
    out += ["| groups | conditions | splits | " + " | ".join(RULES) + " |"]
    out += ["| --- | --- | --- | " + " | ".join("---" for _ in RULES) + " |"]
    for count, size in ((16, 8), (32, 16)):
        groups = list(whole[count].values())
        rates = null_rates(groups, size, rng)
        out.append(
            f"| {size} vs {size} | {len(groups)} | {len(groups) * SPLITS} | "
            + " | ".join(f"{r:.1%}" for r in rates)
            + " |"
        )
    out.append("")

    out += ["## 2. Every cell, lowest against highest level", ""]
    out += [
        "| cell | seeds | levels | n | difference of stds | 2 SE | 2-SE rule | Brown-Forsythe p | "
        "Brown-Forsythe |"
    ]
    out += ["| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, seeds, levels, xs in sorted(per_cell, key=lambda c: (c[0], c[1])):
        a, b = xs[0], xs[-1]
        diff, two_se, resolved = two_se_call(a, b)
        p = brown_forsythe(a, b)
        arrow = "↑" if diff > 0 else "↓"
        bf_arrow = "↑" if spread_deviations(b)[0] > spread_deviations(a)[0] else "↓"
        out.append(
            f"| {name} | {seeds} | {levels[0].value} → {levels[-1].value} | "
            f"{len(a)} → {len(b)} | {diff:+.3g} | {two_se:.2g} | "
            f"{arrow + ' resolved' if resolved else 'not resolved'} | {p:.2g} | "
            f"{bf_arrow + ' resolved' if p < ALPHA else 'not resolved'} |"
        )
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
