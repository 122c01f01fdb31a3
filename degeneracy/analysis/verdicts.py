"""The verdict rules: one per level, declared here before any run reads them, used by `analyze`'s
callers, the report and `reproduce` alike.

A factor's verdict compares its lowest and highest level (two groups of networks):

- behavior: shown, the std of OOD loss; tested, the mean absolute deviation from the median
  (`behavior_mad`) by Brown–Forsythe's test (a pooled-variance t on the deviations); the
  deviations must move the std's way.
- dynamics: shown, the noise-corrected DSA distance (`dsa_corrected`); tested, its squared-scale
  estimate (`dsa_excess`, jackknife SE over networks) by t = Δ / √(SE₀² + SE₁²) against
  Student's t with min(n₀, n₁) − 1 degrees of freedom (a jackknife SE's).
- weights: PIF ÷ n² (`pif`, the paper's), t likewise (jackknife SEs over networks).
- weights (scale-free): PIF of Frobenius-normalized matrices (`pif_scaled`), t likewise.

Multiplicity: every test of one table (the report's, or a whole `reproduce` run: cells ×
levels) is one family, adjusted by Holm's step-down method (`summary.holm`); a level is
**resolved** when its Holm-adjusted p < `ALPHA`. Holm, not Benjamini–Hochberg: each row of
the table is read as a claim on its own ("this cell's dynamics fall, as the paper says"), so
the error to bound is any false claim in the table (family-wise), not the share of false ones.

Paired design: conditions of one sample share initializations by seed. Where both ends carry
leave-one-seed-out values (`analyze`'s rows) and share at least MIN_N seeds, the dynamics and
weights tests take the SE of the difference from the jackknife over seeds, each seed left out
of both ends at once (`summary.paired_jackknife_se`): a correlation between a seed's networks
then narrows the SE (power) instead of being ignored. Behavior's test stays unpaired (a test
of spread compares each group's deviations from its own median).

Seeds needed: for a level not resolved, the networks per level at which the observed
difference would be resolved with 80 % power at the Bonferroni level α/m of its family (what
Holm needs at worst), assuming SEs shrink as 1/√n:
    n_needed = n · ((z_{1−α/(2m)} + z_{0.8}) · SE_Δ / |Δ|)².

Each rule's false-call rate on null splits (random halves of one condition) and its power on
planted differences are measured by `bench/null_calibration.py` (output committed beside it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ALPHA = 0.05
POWER = 0.80
#: groups with fewer networks have no standard error: never a verdict
MIN_N = 3


@dataclass(frozen=True)
class Rule:
    level: str  # the row's name in verdict tables
    value: str  # the column whose change is shown (and whose direction is the arrow)
    tested: str  # the column the test reads (value and `_se`)
    test: str  # "spread" (Brown–Forsythe from deviations) or "t" (difference ÷ its SE)
    doc: str


RULES: tuple[Rule, ...] = (
    Rule(
        "behavior",
        "behavior",
        "behavior_mad",
        "spread",
        "Brown–Forsythe's test of equal spread of OOD loss; the spread must move the std's way",
    ),
    Rule(
        "dynamics",
        "dsa_corrected",
        "dsa_excess",
        "t",
        "noise-corrected DSA distance: mean squared cross-probe distance minus mean squared floor",
    ),
    Rule("weights", "pif", "pif", "t", "PIF ÷ n², the paper's metric"),
    Rule(
        "weights (scale-free)",
        "pif_scaled",
        "pif_scaled",
        "t",
        "PIF between matrices each divided by its Frobenius norm: structure, not scale",
    ),
)
RULE = {r.level: r for r in RULES}
#: the level names of the paper's table each rule answers (weights' two rules both answer
#: the paper's weights claim)
PAPER_LEVEL = {r.level: r.level.split(" ")[0] for r in RULES}


@dataclass
class Test:
    """One level's comparison of the lowest and highest factor value, before multiplicity."""

    level: str
    arrow: str  # the shown value's direction: ↑, ↓ or →
    difference: float  # of the shown value
    tested_difference: float | None  # of the tested column
    se: float | None  # SE of the tested difference
    p: float | None  # None: not testable (missing SEs, n < MIN_N)
    n: tuple[int, int]
    consistent: bool = True  # behavior: the deviations moved the std's way
    paired: int = 0  # seeds shared by both ends when the SE is the paired jackknife's

    def resolved(self, p_adjusted: float | None) -> bool:
        return (
            p_adjusted is not None and p_adjusted < ALPHA and self.consistent and self.arrow != "→"
        )


def _n(row: dict) -> int:
    return int(row.get("behavior_n") or row.get("n") or 0)


def compare(lo: dict, hi: dict, rule: Rule) -> Test | None:
    """The rule applied to two groups' rows (analyze's columns); None where either lacks the
    shown value."""
    from scipy import stats

    from degeneracy.analysis.summary import spread_test

    v0, v1 = lo.get(rule.value), hi.get(rule.value)
    if v0 is None or v1 is None:
        return None
    diff = float(v1 - v0)
    arrow = "↑" if diff > 0 else "↓" if diff < 0 else "→"
    n0 = _n(lo) if rule.test == "spread" else int(lo.get("n") or 0)
    n1 = _n(hi) if rule.test == "spread" else int(hi.get("n") or 0)
    t0, t1 = lo.get(rule.tested), hi.get(rule.tested)
    s0, s1 = lo.get(f"{rule.tested}_se"), hi.get(f"{rule.tested}_se")
    test = Test(rule.level, arrow, diff, None, None, None, (n0, n1))
    if None in (t0, t1, s0, s1) or min(n0, n1) < MIN_N:
        return test
    assert t0 is not None and t1 is not None and s0 is not None and s1 is not None
    test.tested_difference = float(t1 - t0)
    test.se = math.sqrt(s0**2 + s1**2)
    if rule.test == "spread":
        test.p = spread_test(t0, s0, n0, t1, s1, n1)
        test.consistent = (t1 - t0) * diff > 0
        return test
    paired = _paired_se(lo, hi, rule.tested)
    if paired is not None:
        test.se, test.paired = paired
    if test.se > 0:
        df = max(min(n0, n1) - 1, 1)
        test.p = float(2 * stats.t.sf(abs(test.tested_difference) / test.se, df))
    else:
        test.p = 1.0 if test.tested_difference == 0 else 0.0
    return test


def _paired_se(lo: dict, hi: dict, column: str) -> tuple[float, int] | None:
    """The paired jackknife's SE of the difference where both rows carry leave-one-seed-out
    values of `column` ("_loo", from `analyze`) and share at least MIN_N seeds."""
    from degeneracy.analysis.summary import paired_jackknife_se

    a = (lo.get("_loo") or {}).get(column)
    b = (hi.get("_loo") or {}).get(column)
    if not a or not b:
        return None
    return paired_jackknife_se((lo[column], hi[column]), (a, b))


def compare_levels(rows: list[dict], factor: str) -> list[Test]:
    """Every rule between the lowest and the highest value of `factor` among `rows`."""
    pts = sorted((r for r in rows if r.get(factor) is not None), key=lambda r: r[factor])
    if len(pts) < 2:
        return []
    out = []
    for rule in RULES:
        have = [r for r in pts if r.get(rule.value) is not None]
        if len(have) >= 2:
            got = compare(have[0], have[-1], rule)
            if got is not None:
                out.append(got)
    return out


def holm_adjust(ps: list[float | None]) -> list[float | None]:
    """Holm-adjusted p over the tested entries (None stays None): one family."""
    from degeneracy.analysis.summary import holm

    tested = [k for k, p in enumerate(ps) if p is not None]
    out: list[float | None] = [None] * len(ps)
    for k, adj in zip(tested, holm([ps[k] for k in tested])):  # type: ignore[misc]
        out[k] = adj
    return out


def seeds_needed(
    difference: float | None, se: float | None, n: int, family: int, power: float = POWER
) -> int | None:
    """Networks per level at which `difference` would be resolved with `power` at the
    Bonferroni level ALPHA/family, SEs shrinking as 1/√n (None: nothing to scale)."""
    from scipy import stats

    if difference is None or se is None or not difference or n < 1 or se <= 0:
        return None
    z = stats.norm.isf(ALPHA / (2 * max(family, 1))) + stats.norm.ppf(power)
    return max(n, math.ceil(n * (z * se / abs(difference)) ** 2))


def decide(tests: list[Any], paper: list[str]) -> list[dict[str, Any]]:
    """The family's verdicts: for each `Test` (with the paper's arrow beside it, "" where
    the paper states none), Holm p, "resolved"/"not resolved", the paper agreement and, where
    not resolved, the seeds needed. One call = one family."""
    adjusted = holm_adjust([t.p for t in tests])
    family = sum(t.p is not None for t in tests)
    out = []
    for t, adj, arrow in zip(tests, adjusted, paper):
        ok = t.resolved(adj)
        needed = None
        if not ok and t.p is not None:
            needed = seeds_needed(t.tested_difference, t.se, min(t.n), family)
        out.append(
            {
                "resolved": ok,
                "Holm p": adj,
                "agrees": agreement(ok, t.arrow, arrow),
                "seeds needed": needed,
            }
        )
    return out


def agreement(resolved: bool, arrow: str, paper: str) -> str:
    """ "not resolved" unless resolved, then "agrees" or "disagrees" with the paper's arrow
    ("resolved" where the paper states none)."""
    if not resolved:
        return "not resolved"
    if not paper:
        return "resolved"
    return "agrees" if arrow == paper else "disagrees"


def scale_free_reading(weights: dict | None, scaled: dict | None) -> str:
    """Whether the paper's weights verdict survives the scale-free metric: "survives" (both
    resolved the same way), "scale only" (the paper's metric resolved, the scale-free one
    not, or the other way), "" where the paper's is not resolved."""
    if not weights or not weights.get("resolved"):
        return ""
    if scaled and scaled.get("resolved") and scaled.get("arrow") == weights.get("arrow"):
        return "survives"
    return "scale only"
