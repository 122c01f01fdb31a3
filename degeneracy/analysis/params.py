"""Every metric's parameters, in one light module (no torch, no scipy): the CLI and the SQL
layer validate and hash parameters without importing the metrics' implementations.

A parameter set is a frozen dataclass; `metrics.resolve` fills defaults, rejects unknown names
and hashes the full set into the pairwise cache key, so a value is stored under exactly the
settings it was computed at.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DSAParams:
    n_delays: int = 10
    # 0: the declared rule, the smallest rank at which the median network of the networks
    # compared keeps `share` of its delay embedding's variance (at most `max_rank`), resolved
    # over the networks of one comparison (`analyze`: every level of it; a SQL call: its ids)
    # so every level is fitted at one rank; a number fixes the rank
    rank: int = 0
    share: float = 0.95
    max_rank: int = 30
    # ridge λ of the operator's least squares. Under fit="reference" it is the reference
    # package's `lamb` exactly: an absolute λ added to V₀ᵀV₀ in the unit-norm V coordinates,
    # whose Gram matrix is ≈ I (I minus each trial's last row), so it is already relative; the
    # same number gives the package's operator. Under fit="centred", λ = ridge × the mean
    # squared singular value of the kept coordinates.
    # The package defaults to lamb = 0 (DSA's documented default; its DMD class alone uses
    # 1e-8); we keep 1e-3 under both conventions. In V coordinates it shrinks the operator
    # almost uniformly by ~0.1 %, which the angular score's normalisation removes to first
    # order (measured on 6 random tanh networks, 64 units, n_delays 10, rank 10: distances move
    # by at most 2.4e-6 rad against ridge 0), and it keeps the normal equations well-posed
    # whatever the data: a coordinate whose singular value is numerically zero is set to zero
    # (its singular vector would be rounding noise) and gets a zero row and column of A, and a
    # coordinate that lives mostly in the trials' last rows (nearly singular V₀ᵀV₀) stays
    # bounded. Pass ridge=0 to reproduce the package's default exactly.
    ridge: float = 1e-3
    fit: str = "reference"  # or "centred": see the module docstring
    score: str = "angular"  # or "euclidean"
    tol: float = 1e-8
    max_iter: int = 80
    rounds: int = 3  # composition rounds for groups of 3 or more networks
    starts: int = 8  # per pair: I, diag(-1, 1, ...), then seeded random orthogonal matrices.
    #                  Measured (12 tanh networks, rank 6, against a 24-start search): with
    #                  composition rounds, 8 starts found the best known optimum on all 66 pairs
    #                  under both fits; 2 starts missed by 2.0e-2 rad (reference) and 8.2e-4
    #                  (centred), 4 starts by 1.0e-3 (centred), at ~2.3x fewer iterations
    max_cg: int = 0  # truncated-CG steps per Newton step; 0 = min(r(r-1)/2, 40). Measured at
    #                  rank 20: same optima as the full r(r-1)/2 = 190, 2.4x faster; at rank 10 a
    #                  cap of 20 doubled the Newton iterations

    def __post_init__(self) -> None:
        if self.n_delays < 1 or self.rank < 0 or self.max_rank < 1:
            raise ValueError("n_delays and max_rank must be >= 1, rank >= 0 (0: the share rule)")
        if not 0 < self.share <= 1:
            raise ValueError("share must be in (0, 1]")
        if self.starts < 1:
            raise ValueError("starts must be >= 1")
        if self.ridge < 0:
            raise ValueError("ridge must be >= 0")
        if self.fit not in ("reference", "centred"):
            raise ValueError(f"fit must be 'reference' or 'centred', got {self.fit!r}")
        if self.score not in ("angular", "euclidean"):
            raise ValueError(f"score must be 'angular' or 'euclidean', got {self.score!r}")


#: PIF's normalizations; one relabelling search serves all three (see `pif.pif_distance`)
PIF_NORMS = ("params", "rms", "frobenius")


@dataclass(frozen=True)
class PIFParams:
    restarts: int = 1
    seed: int = 0
    # "params": ÷ n² (the paper's); "rms": ÷ n; "frobenius": scale-free, each matrix divided by
    # its Frobenius norm first, the distance not divided (0 for equal shapes up to a
    # relabelling, √2 for orthogonal ones, 2 at most): a change of scale alone moves it not
    norm: str = "params"
    stage: str = "final"  # which stored W_h: "final", or "init" for the chance level
    # match W2 onto W1 and W1 onto W2, keep the smaller: the heuristic's result then does
    # not depend on argument order (the distance is symmetric), and is never worse
    symmetric: bool = True

    def __post_init__(self) -> None:
        if self.restarts < 0:
            raise ValueError("restarts must be >= 0")
        if self.norm not in PIF_NORMS:
            raise ValueError(f"norm must be one of {', '.join(PIF_NORMS)}, got {self.norm!r}")
        if self.stage not in ("final", "init"):
            raise ValueError(f"stage must be 'final' or 'init', got {self.stage!r}")


@dataclass(frozen=True)
class BehaviorParams:
    """How behavior's standard error is estimated, over networks: "jackknife" (leave one out)
    or "bootstrap" (`summary.BOOTSTRAP` seeded resamples). The jackknife is the default
    because it was measured the better calibrated on disjoint groups of networks of one
    condition, whose OOD losses are heavy-tailed (docs/results/behavior_se_calibration.md):
    over 8 and 16 networks the bootstrap's SE of the std came out 1.45-1.51x too small, the
    jackknife's 1.22-1.30x."""

    se: str = "jackknife"

    def __post_init__(self) -> None:
        if self.se not in ("jackknife", "bootstrap"):
            raise ValueError(f"se must be 'jackknife' or 'bootstrap', got {self.se!r}")


#: how every printed ± is estimated, in words (report caption, summary.md, the demo's epilogue)
SE_NOTE = f"{BehaviorParams().se} over networks (leave one out) for every level"


@dataclass(frozen=True)
class TrajParams:
    """Metrics of probe trajectories: which stored probe set ("id", or "id_b" the replica)."""

    probe: str = "id"


#: probe trials a DSA fit uses by default: stored networks are run again from their weights
#: (`analysis.probing`); at the 32 trials training stores, a network's distance to itself on
#: a second probe set (the noise floor) is as large as the differences between conditions
DSA_TRIALS = 512


@dataclass(frozen=True)
class DSAMetricParams(DSAParams):
    probe: str = "id"
    # probe trials per fit: stored networks are re-simulated on `trials` trials of the probe
    # set (`probing`); 0 fits the stored trajectories (the training's 32 trials) as they are
    trials: int = DSA_TRIALS

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.trials < 0:
            raise ValueError("trials must be >= 0 (0: the stored probe set)")
        if self.trials and self.fit != "reference":
            raise ValueError("trials > 0 fits from accumulated Grams: fit must be 'reference'")
        if self.probe not in ("id", "id_b", "ood"):
            raise ValueError(f"probe must be id, id_b or ood, got {self.probe!r}")
