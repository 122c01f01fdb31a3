"""Group summaries: behavior spread, mean pairwise distance, their standard errors, and MDS.

Standard errors resample networks (not pairs: pairs sharing a network are not independent):
a bootstrap over networks by default (`BOOTSTRAP` resamples, seeded, so reruns agree), or the
jackknife (leave one network out).
"""

from __future__ import annotations

import numpy as np

BOOTSTRAP = 200


def bootstrap_indices(n: int, boots: int = BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """(boots, n) resamples of network indices, with replacement."""
    return np.random.default_rng(seed).integers(0, n, (boots, n))


def behavior(ood_losses: np.ndarray, se: str = "jackknife") -> tuple[float, float, float]:
    """(std across networks, mean, standard error of the std) of OOD losses."""
    x = np.asarray(ood_losses, dtype=np.float64)
    n = len(x)
    if n < 2:
        return float("nan"), float(x.mean()) if n else float("nan"), float("nan")
    std = float(x.std())
    if n < 3:  # resamples of two values say little: no error estimate
        return std, float(x.mean()), float("nan")
    if se == "bootstrap":
        return std, float(x.mean()), float(x[bootstrap_indices(n)].std(axis=1).std(ddof=1))
    loo = np.array([np.delete(x, i).std() for i in range(n)])
    return std, float(x.mean()), float(np.sqrt((n - 1) / n * ((loo - loo.mean()) ** 2).sum()))


def spread_deviations(ood_losses: np.ndarray) -> tuple[float, float]:
    """(mean, standard error of the mean) of |x − median(x)|: the spread Brown–Forsythe's test
    compares. Its SE (sample sd / √n) is a mean's, so unlike the std's it does not hinge on a
    few networks far out in the tail."""
    x = np.asarray(ood_losses, dtype=np.float64)
    if len(x) < 2:
        return float("nan"), float("nan")
    dev = np.abs(x - np.median(x))
    return float(dev.mean()), float(dev.std(ddof=1) / np.sqrt(len(x)))


def spread_test(mean0: float, se0: float, n0: int, mean1: float, se1: float, n1: int) -> float:
    """Brown–Forsythe's p for two groups, from each group's `spread_deviations` and size:
    Levene's test of equal spread on deviations from the median, which for two groups is
    Student's pooled-variance t test on the deviations (F = t²). Measured on OOD losses
    (docs/results/behavior_spread_test.md): at 5 % it calls two groups of one condition
    different 3.9–4.1 % of the time, where the 2-SE rule on the std calls 6.4–7.4 %."""
    from scipy import stats

    sd0, sd1 = se0 * np.sqrt(n0), se1 * np.sqrt(n1)
    pooled = ((n0 - 1) * sd0**2 + (n1 - 1) * sd1**2) / (n0 + n1 - 2)
    scale = np.sqrt(pooled * (1 / n0 + 1 / n1))
    if scale == 0:
        return 1.0 if mean0 == mean1 else 0.0
    t = (mean1 - mean0) / scale
    return float(2 * stats.t.sf(abs(t), n0 + n1 - 2))


def holm(ps: list[float]) -> list[float]:
    """Holm's step-down adjusted p values, in the given order: the smallest family-wise level
    at which each hypothesis is rejected when all len(ps) are tested together. Sorted
    ascending, the k-th (from 0) becomes max over j ≤ k of min(1, (m − j)·p_(j))."""
    m = len(ps)
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: ps[i])):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out


def mean_pairwise(d: np.ndarray, se: str = "bootstrap") -> tuple[float, float]:
    """(mean off-diagonal distance, standard error over networks) of a square matrix.

    Bootstrap: resample networks with replacement and average the distances between the
    distinct networks drawn (a network paired with its own copy is not a pair)."""
    d = np.asarray(d, dtype=np.float64)
    n = d.shape[0]
    if n < 2:
        return float("nan"), float("nan")
    iu = np.triu_indices(n, 1)
    mean = float(d[iu].mean())
    if n < 3:
        return mean, float("nan")
    if se == "bootstrap":
        means = []
        for idx in bootstrap_indices(n):
            sub = d[np.ix_(idx, idx)]
            keep = np.triu(idx[:, None] != idx[None, :], 1)
            if keep.any():
                means.append(sub[keep].mean())
        return mean, float(np.std(means, ddof=1))
    total = d[iu].sum()
    row = d.sum(axis=1) - np.diag(d)
    m = (n - 1) * (n - 2) / 2
    loo = (total - row) / m  # mean over pairs without network i
    return mean, float(np.sqrt((n - 1) / n * ((loo - loo.mean()) ** 2).sum()))


def corrected_distance(cross: np.ndarray, floors: np.ndarray) -> dict[str, float]:
    """A group's between-network distance with the probe noise removed.

    A fitted operator is its network's true operator plus an error from the finite probe set.
    For small errors the squared distance between two fits adds the errors' squares to the
    true one: E[x²_ij] ≈ δ²_ij + σ²_i + σ²_j for fits of i and j on independent probe sets
    (`cross`), and E[f²_i] ≈ 2σ²_i for network i's floor (its two fits). Each network enters
    n − 1 of the n(n − 1)/2 pairs, so
        excess = mean over pairs x²_ij − mean over networks f²_i   ≈   mean over pairs δ²_ij,
    unbiased for the mean squared true distance (negative when there is none: copies of one
    network under probe noise score about 0). `corrected` = sign(excess)·√|excess| is in the
    distance's unit. SEs by the jackknife over networks (leave one network out of every pair
    and floor it enters), which accounts for pairs sharing networks.

    Returns {excess, excess_se, corrected, corrected_se, n, loo} (`loo`: the excess with each
    network left out, in order; None under 3 networks); NaN where a floor is missing or n < 2
    (SEs: n < 3)."""
    x = np.asarray(cross, dtype=np.float64) ** 2
    f = np.asarray(floors, dtype=np.float64) ** 2
    n = len(f)
    nan = float("nan")
    out: dict = {
        "excess": nan, "excess_se": nan, "corrected": nan, "corrected_se": nan, "n": n,
        "loo": None,
    }  # fmt: skip
    if n < 2 or not np.isfinite(f).all():
        return out

    def signed_root(v):
        return np.sign(v) * np.sqrt(np.abs(v))

    iu = np.triu_indices(n, 1)
    excess = float(x[iu].mean() - f.mean())
    out.update(excess=excess, corrected=float(signed_root(excess)))
    if n < 3:
        return out
    total, row = x[iu].sum(), x.sum(axis=1) - np.diag(x)
    loo = (total - row) / ((n - 1) * (n - 2) / 2) - (f.sum() - f) / (n - 1)
    jack = np.sqrt((n - 1) / n * ((loo - loo.mean()) ** 2).sum())
    root = signed_root(loo)
    out.update(
        loo=loo,
        excess_se=float(jack),
        corrected_se=float(np.sqrt((n - 1) / n * ((root - root.mean()) ** 2).sum())),
    )
    return out


def pairwise_loo(d: np.ndarray) -> np.ndarray | None:
    """The mean off-diagonal distance with each network left out, in order (None under 3)."""
    d = np.asarray(d, dtype=np.float64)
    n = d.shape[0]
    if n < 3:
        return None
    iu = np.triu_indices(n, 1)
    row = d.sum(axis=1) - np.diag(d)
    return (d[iu].sum() - row) / ((n - 1) * (n - 2) / 2)


def paired_jackknife_se(
    full: tuple[float, float], loo: tuple[dict, dict]
) -> tuple[float, int] | None:
    """SE of θ₁ − θ₀ by the jackknife over seeds, for two groups that share seeds (networks of
    one seed start from the same initialization): each seed is left out of every group it is
    in at once, so a correlation between a seed's networks enters the SE. `full`: (θ₀, θ₁);
    `loo`: per group {seed: θ without that seed's network}. Returns (SE, shared seeds), None
    where fewer than 3 seeds are shared."""
    shared = set(loo[0]) & set(loo[1])
    if len(shared) < 3:
        return None
    seeds = sorted(set(loo[0]) | set(loo[1]), key=str)
    m = len(seeds)
    d = np.array([loo[1].get(s, full[1]) - loo[0].get(s, full[0]) for s in seeds], dtype=np.float64)
    return float(np.sqrt((m - 1) / m * ((d - d.mean()) ** 2).sum())), len(shared)


def classical_mds(d: np.ndarray, dims: int = 2) -> np.ndarray:
    """Torgerson MDS: coordinates (n, dims) whose distances best match `d` (double centring)."""
    d = np.asarray(d, dtype=np.float64)
    n = d.shape[0]
    j = np.eye(n) - np.ones((n, n)) / n
    b = -0.5 * j @ (d**2) @ j
    vals, vecs = np.linalg.eigh(b)
    order = np.argsort(vals)[::-1][:dims]
    vals = np.clip(vals[order], 0, None)
    out = vecs[:, order] * np.sqrt(vals)
    if out.shape[1] < dims:
        out = np.pad(out, ((0, 0), (0, dims - out.shape[1])))
    return out
