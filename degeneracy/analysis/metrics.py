"""The metric table: every metric the registry knows, in one place.

Everything that lists metrics is derived from `METRICS`: the SQL functions (`udfs`), `analyze`'s
metrics and their columns, the CLI's help, and README's metrics table (a test compares them).
A metric is one of two kinds:

- **pairwise** (as in netrep, two stages): `prepare` turns one network's stored arrays into what
  the comparison needs (DSA: its fitted operator), once per network; `pairs` compares prepared
  items for a list of index pairs, batched. A group's value is the mean pairwise distance.
  SQL: `<name>_distance(a, b [, params])`.
- **per network**: a value per network (`network_sql`, each also a SQL function of a network
  id), summarized over the group by `group`.

`group` gives what `analyze` reports for a group: {column: (value, standard error, parameters
it was computed at)}, e.g. DSA's noise floor and kept variance beside the distance.

The table is light (no torch, no scipy): implementations are imported when first used, so the
CLI and the SQL layer read it for free. Adding a metric = its module + one entry here (SVCCA is
the example: `svcca.py` and the `"svcca"` entry).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from degeneracy.analysis import svcca
from degeneracy.analysis.params import (
    BehaviorParams,
    DSAMetricParams,
    DSAParams,
    PIFParams,
    TrajParams,
)
from degeneracy.registry.errors import RegistryError
from degeneracy.registry.ids import params_hash
from degeneracy.schema.kinds import PARAM_NAMES
from degeneracy.tasks import TASKS

#: (value, standard error, canonical parameter JSON it was computed at)
Value = tuple[float | None, float | None, str]


@dataclass(frozen=True)
class PairResult:
    distance: Any  # np.ndarray, one per pair
    iterations: Any = None
    loss: Any = None
    #: the same pairs under other parameter values that cost nothing extra, as
    #: (parameter overrides, distances): DSA's other score from the same alignment
    alternates: tuple[tuple[dict, Any], ...] = ()


@dataclass(frozen=True)
class Group:
    """One group of networks, as a metric's `group` summary sees it."""

    registry: Any
    cache: Any  # PairwiseCache
    ids: list[str]
    ood: list[float | None]
    params: str | dict | None  # this metric's parameters as the caller gave them
    kernel: bool = True  # feature learning: also the NTK kernel alignment
    quality: bool = True  # DSA: also the variance the rank keeps
    seeds: list | None = None  # per id: its seed (the paired verdict's unit)
    #: filled by `group`: {column: {seed: the column's value with that seed's network left
    #: out}}, which the verdicts use to pair two groups that share seeds
    loo: dict = field(default_factory=dict)

    def keep_loo(self, column: str, values) -> None:
        if values is not None and self.seeds is not None:
            self.loo[column] = {s: float(v) for s, v in zip(self.seeds, values)}


@dataclass(frozen=True)
class Metric:
    name: str
    level: str  # behavior, dynamics, weights, features or representation
    doc: str  # one line: what it computes (CLI help, README's table)
    params_type: type
    group: Callable[[Group], dict[str, Value]]
    # pairwise metrics
    source: str | None = None  # "weights" or "trajectories"
    prepare: Callable[[Any, Any], Any] | None = None
    pairs: Callable[..., PairResult] | None = None  # (items, index pairs, params[, solve])
    #: per-network fits worth keeping across processes: (kind, the parameters the fit uses)
    stored_prepare: Callable[[Any], tuple[str, dict]] | None = None
    #: False where a pair's value depends on the other pairs computed with it (DSA's composition
    #: rounds route through them): such a metric takes `solve=` instead of being split in chunks
    split: bool = True
    # per-network metrics: SQL function name -> fn(registry, network id) -> float | None
    network_sql: dict[str, Callable[[Any, str], float | None]] = field(default_factory=dict)

    @property
    def pairwise(self) -> bool:
        return self.pairs is not None

    @property
    def sql_functions(self) -> tuple[str, ...]:
        return (f"{self.name}_distance",) if self.pairwise else tuple(self.network_sql)


def _lazy(path: str) -> Callable:
    """`degeneracy.analysis.<module>.<name>`, imported on first call."""
    module, name = path.rsplit(".", 1)

    def call(*args, **kwargs):
        return getattr(import_module(f"degeneracy.analysis.{module}"), name)(*args, **kwargs)

    call.__name__ = name
    return call


# ------------------------------------------------------------------ pairwise: per batch of pairs
def _dsa_pairs(items, pairs, p, solve=None):
    """All asked pairs aligned together; `solve` runs the Newton batches (default: here)."""
    import numpy as np

    from degeneracy.analysis import dsa

    ops = np.stack(items)
    if len(pairs) == 0:
        return PairResult(np.zeros(0))
    # only the asked pairs are aligned, together, so composition rounds can route through
    # every network they connect
    ordered = np.sort(np.asarray(pairs).reshape(-1, 2), axis=1)
    uniq, back = np.unique(ordered, axis=0, return_inverse=True)
    _, dist, its, g = dsa.all_pairs_scores(ops, p, pairs=uniq, solve=solve)
    back = back.reshape(-1)
    other = tuple(({"score": s}, d[back]) for s, d in dist.items() if s != p.score)
    return PairResult(dist[p.score][back], its[back], 1 - g[back], other)


def _each(path: str, params: bool = False) -> Callable:
    """Pairs one at a time with `<module>.<function>(x, y)` (`(x, y, params)` if `params`)."""
    fn = _lazy(path)

    def run(items, pairs, p):
        import numpy as np

        extra = (p,) if params else ()
        return PairResult(np.array([fn(items[a], items[b], *extra) for a, b in pairs], float))

    return run


def _pif_pairs(items, pairs, p):
    from degeneracy.analysis import pif

    dist, iterations, every = pif.pif_pairs(items, pairs, p)
    other = tuple(({"norm": k}, d) for k, d in every.items() if k != p.norm)
    return PairResult(dist, iterations, alternates=other)


def _operator_key(p: DSAMetricParams) -> tuple[str, dict]:
    """What a DSA operator depends on (not the alignment's settings): shared by both metrics."""
    return "dsa_operator", {
        "fit": "gram-2",  # bump when fit_operator's method changes: stored operators then refit
        "convention": p.fit,
        "n_delays": p.n_delays,
        "rank": p.rank,
        "ridge": p.ridge,
        "probe": p.probe,
        **({"trials": p.trials} if p.trials else {}),
    }


def _identity(x, p):
    return x


# ------------------------------------------------------------------ group summaries
def mean_se(x) -> tuple[float | None, float | None]:
    """(mean, standard error of the mean) of per-network values; SE None under 2 values."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return None, None
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else None
    return float(x.mean()), se


#: a group's mean pairwise distance's SE: the jackknife over networks (each left out of every
#: pair it enters). Measured on null splits of 32 flip-flop networks (1,000 splits, 16 vs 16,
#: bench/null_calibration.py): the weights rule at 5 % called 8.2 % with the bootstrap's SE,
#: 4.0 % with the jackknife's against Student's t (min n − 1 df)
PAIRWISE_SE = "jackknife"


def _mean_pairwise(name: str, g: Group, params=None, loo: str | None = None) -> Value:
    """The group's mean pairwise distance ± SE; `loo`: also keep it with each network left
    out under that column name (`Group.keep_loo`)."""
    from degeneracy.analysis.summary import mean_pairwise, pairwise_loo

    params = g.params if params is None else params
    text = g.cache.resolve(name, g.ids, params)[2]
    if len(g.ids) < 2:
        return None, None, text
    d = g.cache.matrix(name, g.ids, params)
    if loo:
        g.keep_loo(loo, pairwise_loo(d))
    return (*mean_pairwise(d, se=PAIRWISE_SE), text)


def _pairwise_group(name: str) -> Callable[[Group], dict[str, Value]]:
    return lambda g: {name: _mean_pairwise(name, g)}


def _dsa_group(g: Group) -> dict[str, Value]:
    """The mean pairwise distance (the paper's measure), its noise floor (each network's
    distance to itself fitted on the independent replica probe set), the corrected value
    the verdict reads (`summary.corrected_distance`, from pairs across the two probe sets),
    the share of the delay embedding's variance the rank keeps, and the rank and probe trials
    every value was computed at."""
    import numpy as np

    from degeneracy.analysis.dsa import fit_quality, fit_quality_stats
    from degeneracy.analysis.summary import corrected_distance

    _, p, text, _ = g.cache.resolve("dsa", g.ids, g.params)
    given = json.loads(text)  # the resolved rank: every call below uses the same
    out: dict[str, Value] = {}
    nan: tuple = (None, None)
    cross = None
    if p.probe == "id" and len(g.ids) >= 2 and g.cache.has_replicas(g.ids, given):
        # first: same-set pairs, cross pairs and floors aligned in one batch, the values that
        # every later read of the cache returns
        cross = g.cache.cross("dsa", g.ids, given)
    out["dsa"] = _mean_pairwise("dsa", g, given)
    out["dsa_floor"] = out["dsa_corrected"] = out["dsa_excess"] = (*nan, text)
    if p.probe == "id" and len(g.ids) >= 2:  # the replica probe exists for "id" only
        floors = g.cache.floors("dsa", g.ids, given)  # NaN: no replica stored (trials 0)
        out["dsa_floor"] = (*mean_se(floors[np.isfinite(floors)]), text)
        if cross is not None and np.isfinite(floors).all():
            c = corrected_distance(cross, floors)
            out["dsa_corrected"] = (c["corrected"], c["corrected_se"], text)
            out["dsa_excess"] = (c["excess"], c["excess_se"], text)
            g.keep_loo("dsa_excess", c["loo"])
    if g.quality:
        if p.trials:
            got = g.cache.per_gram(g.ids, p, lambda s: fit_quality_stats(s, p)[0])
            kept = [got[i] for i in g.ids]
        else:
            kept = [fit_quality(t, p)[0] for t in g.registry.load_trajectories(g.ids, p.probe)]
        out["dsa_kept"] = (*mean_se(kept), text)
    out["dsa_rank"] = (float(p.rank), None, text)
    out["dsa_trials"] = (float(p.trials), None, text)
    return out


def _pif_group(g: Group) -> dict[str, Value]:
    """The distance and its chance level (the same networks' matrices at initialization), and
    beside them the scale-free PIF (`norm="frobenius"`: each matrix ÷ its Frobenius norm) and
    its chance level: whether the weights' structure changed, not only their scale. One
    relabelling search gives both (`pif.pif_pairs`), so the scale-free pair costs nothing."""
    given = parse_params("pif", g.params)
    scaled = {**given, "norm": "frobenius"}
    out: dict[str, Value] = {}
    for name, base in (("pif", given), ("pif_scaled", scaled)):
        if name == "pif_scaled" and given.get("norm") == "frobenius":
            out[name], out[f"{name}_chance"] = out["pif"], out["pif_chance"]
            continue
        chance = {**base, "stage": "init"}
        out[name] = _mean_pairwise("pif", g, base, loo=name)
        try:
            out[f"{name}_chance"] = _mean_pairwise("pif", g, chance)
        except RegistryError:  # initial matrices not stored (e.g. ingested without `init`)
            out[f"{name}_chance"] = (None, None, g.cache.resolve("pif", g.ids, chance)[2])
    return out


def _behavior_group(g: Group) -> dict[str, Value]:
    """The paper's spread (std of OOD loss) and, beside it, the spread of log OOD loss: a
    ratio scale on which one network far out in the tail weighs less (None if a loss is 0);
    and the mean absolute deviation from the median with its SE, which behavior's verdict
    tests (`summary.spread_test`)."""
    import numpy as np

    from degeneracy.analysis.summary import behavior, spread_deviations

    _, p, text, _ = resolve("behavior", g.params)
    x = np.array([x for x in g.ood if x is not None], dtype=np.float64)
    std, mean, se = behavior(x, se=p.se)
    log: Value = (None, None, text)
    if len(x) and (x > 0).all():
        log_std, _, log_se = behavior(np.log(x), se=p.se)
        log = (log_std, log_se, text)
    return {
        "behavior": (std, se, text),
        "behavior_mean": (mean, None, text),
        "behavior_log": log,
        "behavior_mad": (*spread_deviations(x), text),
        # the networks with an OOD loss: the test's n (a group's n counts all its networks)
        "behavior_n": (len(x), None, text),
    }


@dataclass(frozen=True)
class FeatureParams:
    """Kernel alignment's probe batch (the first `steps` steps of `trials` probe trials) and
    the trained parameters its NTK is taken over (comma-separated; by default all but the
    output bias, whose block is a weight-independent constant: feature_learning.py)."""

    kernel_trials: int = 4
    kernel_steps: int = 50
    kernel_over: str = "W_h,W_x,b,W_out"

    def __post_init__(self) -> None:
        if self.kernel_trials < 1 or self.kernel_steps < 1:
            raise ValueError("kernel_trials and kernel_steps must be >= 1")
        names = self.kernel_over.split(",")
        if not names or any(n not in PARAM_NAMES for n in names) or len(set(names)) != len(names):
            raise ValueError(f"kernel_over must be distinct names from {', '.join(PARAM_NAMES)}")


def _feature_group(g: Group) -> dict[str, Value]:
    """Mean relative recurrent weight change and mean NTK kernel alignment (± SE of the mean)."""
    from degeneracy.analysis.feature_learning import (
        stored_kernel_alignment,
        stored_weight_changes,
    )

    p = resolve("fl", g.params)[1]
    try:
        out = {"weight_change": (*mean_se(stored_weight_changes(g.registry, g.ids)), "{}")}
    except RegistryError:  # initial matrices not stored (e.g. ingested without `init`)
        out = {"weight_change": (None, None, "{}")}
    if g.kernel:
        kas = [
            stored_kernel_alignment(
                g.registry, i, p.kernel_trials, p.kernel_steps, tuple(p.kernel_over.split(","))
            )
            for i in g.ids
        ]
        kas = [k for k in kas if k is not None]
        text = json.dumps(dataclasses.asdict(p), sort_keys=True)
        out["kernel_alignment"] = (*mean_se(kas), text)
    return out


def _weight_change_sql(registry, nid: str) -> float:
    return _lazy("feature_learning.stored_weight_changes")(registry, [nid])[0]


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "behavior",
            "behavior",
            "std of OOD loss across the group's networks (mean and std of log loss beside it)",
            BehaviorParams,
            _behavior_group,
        ),
        Metric(
            "dsa",
            "dynamics",
            "Dynamical Similarity Analysis: angular Procrustes distance between fitted operators",
            DSAMetricParams,
            _dsa_group,
            "trajectories",
            _lazy("dsa.fit_operator"),
            _dsa_pairs,
            _operator_key,
            split=False,
        ),
        Metric(
            "dsa_wasserstein",
            "dynamics",
            "fast DSA approximation: Wasserstein distance between operator eigenvalues",
            DSAMetricParams,
            _pairwise_group("dsa_wasserstein"),
            "trajectories",
            _lazy("dsa.fit_operator"),
            _each("dsa.eigen_wasserstein"),
            _operator_key,
        ),
        Metric(
            "pif",
            "weights",
            "permutation-invariant distance between recurrent matrices (÷ n², the paper's)",
            PIFParams,
            _pif_group,
            "weights",
            _identity,
            _pif_pairs,
        ),
        Metric(
            "fl",
            "features",
            "feature learning: relative recurrent weight change and NTK kernel alignment",
            FeatureParams,
            _feature_group,
            network_sql={
                "weight_change": _weight_change_sql,
                "kernel_alignment": _lazy("feature_learning.stored_kernel_alignment"),
            },
        ),
        Metric(
            "cka",
            "representation",
            "1 - linear CKA between probe trajectories",
            TrajParams,
            _pairwise_group("cka"),
            "trajectories",
            _identity,
            _each("representation.cka_distance"),
        ),
        Metric(
            "procrustes",
            "representation",
            "angular Procrustes shape distance between probe trajectories",
            TrajParams,
            _pairwise_group("procrustes"),
            "trajectories",
            _identity,
            _each("representation.procrustes_distance"),
        ),
        Metric(
            "svcca",
            "representation",
            "1 - mean SVCCA correlation of probe trajectories (the paper's App. G)",
            svcca.SVCCAParams,
            _pairwise_group("svcca"),
            "trajectories",
            _identity,
            _each("svcca.svcca_distance", params=True),
        ),
    )
}

PAIRWISE = tuple(n for n, m in METRICS.items() if m.pairwise)

#: DSA's `n_delays` and `rank` per task, chosen from the sensitivity check in
#: docs/dsa_sensitivity.md (`python bench/dsa_sensitivity.py`): 10 delays and the smallest rank
#: keeping >= 80 % of the delay embedding's variance with one-step R² >= 0.95. They apply when
#: every network of one call (a group for `mean_pairwise`, the two for `dsa_distance`) has that
#: task and the caller did not set the parameter; calls over mixed tasks use DSAParams' own, so
#: pass explicit parameters to compare across tasks. Each task class states its own.
DSA_TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    name: {"n_delays": cls.dsa_defaults["n_delays"]} for name, cls in TASKS.items()
}
#: each task's fixed rank, the sensitivity grid's middle row (`grid.dsa_grid`); the verdict's
#: rank comes from the share rule (`DSAParams.rank` = 0)
FIXED_RANKS: dict[str, int] = {name: cls.dsa_defaults["rank"] for name, cls in TASKS.items()}


def parse_params(metric: str, params: str | dict | None) -> dict:
    """A metric's parameters as a dict, from a JSON string (bad JSON is RegistryError)."""
    if isinstance(params, str):
        try:
            out = json.loads(params) if params.strip() else {}
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{metric}: parameters are not valid JSON ({exc.msg})") from exc
        if not isinstance(out, dict):
            raise RegistryError(f"{metric}: parameters must be a JSON object, got {params!r}")
        return out
    return dict(params or {})


def cache_key(metric: str, full: dict) -> str:
    """The key a value is stored under: the metric and its full parameter set, defaults in."""
    return params_hash({"metric": metric, **full})


def resolve(
    metric: str, params: str | dict | None = None, task: str | None = None
) -> tuple[Metric, Any, str, str]:
    """(metric, params object, canonical params JSON, cache hash); bad input is RegistryError.

    `task`: the task every compared network shares, if any (selects per-task defaults)."""
    if metric not in METRICS:
        raise RegistryError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    m = METRICS[metric]
    params = parse_params(metric, params)
    if issubclass(m.params_type, DSAParams) and task in DSA_TASK_DEFAULTS:
        params = {**DSA_TASK_DEFAULTS[task], **params}
    fields = {f.name for f in dataclasses.fields(m.params_type)}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise RegistryError(
            f"{metric}: unknown parameter(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(fields)) or 'none'})"
        )
    try:
        obj = m.params_type(**params)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{metric}: {exc}") from exc
    full = dataclasses.asdict(obj)
    text = json.dumps(full, sort_keys=True)
    return m, obj, text, cache_key(metric, full)


def resolve_pairwise(
    metric: str, params: str | dict | None = None, task: str | None = None
) -> tuple[Metric, Any, str, str]:
    """`resolve` for a metric with a pairwise distance (else one clear RegistryError)."""
    if metric in METRICS and not METRICS[metric].pairwise:
        raise RegistryError(
            f"{metric} is a per-network metric, with no pairwise distance "
            f"(pairwise: {', '.join(PAIRWISE)})"
        )
    return resolve(metric, params, task)


# ------------------------------------------------------------------ on a user's own arrays
def pairwise(metric: str, arrays, params: str | dict | None = None, task: str | None = None):
    """Square distance matrix of a pairwise metric between a user's own arrays, no registry:
    trajectories (trials, steps, units) for dsa, cka, procrustes, svcca; recurrent matrices
    (n, n) for pif. NumPy arrays or torch tensors. `task` picks that task's DSA defaults.
    Each array is prepared once and every pair compared in one batch, as in `analyze`."""
    import numpy as np

    m, p, _, _ = resolve_pairwise(metric, params, task)
    assert m.prepare is not None and m.pairs is not None  # a pairwise metric has both
    items = [m.prepare(np.asarray(_numpy(a), dtype=np.float64), p) for a in arrays]
    n = len(items)
    idx = np.array([(i, j) for i in range(n) for j in range(i + 1, n)], dtype=np.int64)
    out = np.zeros((n, n))
    if len(idx):
        d = m.pairs(items, idx, p).distance
        out[idx[:, 0], idx[:, 1]] = out[idx[:, 1], idx[:, 0]] = d
    return out


def distance(metric: str, x, y, params: str | dict | None = None, task: str | None = None):
    """One pairwise distance between two arrays (see `pairwise`)."""
    return float(pairwise(metric, [x, y], params, task)[0, 1])


def _numpy(a):
    return a.detach().cpu().numpy() if hasattr(a, "detach") else a
