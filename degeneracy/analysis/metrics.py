"""The pairwise metrics the registry knows: what each loads, fits per network, and compares.

A metric is two stages (as in netrep): `prepare` turns one network's stored arrays into what the
comparison needs (DSA: its fitted operator), once per network; `pairs` compares prepared items
for a list of index pairs, batched. Parameters are validated up front and hashed into the
pairwise cache key.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from degeneracy.analysis import dsa, pif, representation
from degeneracy.registry.errors import RegistryError
from degeneracy.registry.ids import params_hash
from degeneracy.tasks import TASKS


@dataclass(frozen=True)
class PairResult:
    distance: np.ndarray
    iterations: np.ndarray | None = None
    loss: np.ndarray | None = None
    #: the same pairs under other parameter values that cost nothing extra, as
    #: (parameter overrides, distances): DSA's other score from the same alignment
    alternates: tuple[tuple[dict, np.ndarray], ...] = ()


@dataclass(frozen=True)
class Metric:
    name: str
    source: str  # "weights" or "trajectories"
    params_type: type
    prepare: Callable[[np.ndarray, Any], Any]
    pairs: Callable[[list, np.ndarray, Any], PairResult]
    doc: str
    #: per-network fits worth keeping across processes: (kind, the parameters the fit uses)
    stored_prepare: Callable[[Any], tuple[str, dict]] | None = None


def _dsa_pairs(items, pairs, p):
    ops = np.stack(items)
    if len(pairs) == 0:
        return PairResult(np.zeros(0))
    # only the asked pairs are aligned, together, so composition rounds can route through
    # every network they connect
    ordered = np.sort(np.asarray(pairs).reshape(-1, 2), axis=1)
    uniq, back = np.unique(ordered, axis=0, return_inverse=True)
    _, dist, its, g = dsa.all_pairs_scores(ops, p, pairs=uniq)
    back = back.reshape(-1)
    other = tuple(({"score": s}, d[back]) for s, d in dist.items() if s != p.score)
    return PairResult(dist[p.score][back], its[back], 1 - g[back], other)


def _each(fn):
    def run(items, pairs, p):
        return PairResult(np.array([fn(items[a], items[b]) for a, b in pairs], dtype=np.float64))

    return run


def _pif_pairs(items, pairs, p):
    dist, iterations = pif.pif_pairs(items, pairs, p)
    return PairResult(dist, iterations)


@dataclass(frozen=True)
class TrajParams:
    probe: str = "id"


@dataclass(frozen=True)
class DSAMetricParams(dsa.DSAParams):
    probe: str = "id"


def _operator_key(p: DSAMetricParams) -> tuple[str, dict]:
    """What a DSA operator depends on (not the alignment's settings): shared by both metrics."""
    return "dsa_operator", {
        "fit": "gram-2",  # bump when fit_operator's method changes: stored operators then refit
        "convention": p.fit,
        "n_delays": p.n_delays,
        "rank": p.rank,
        "ridge": p.ridge,
        "probe": p.probe,
    }


METRICS: dict[str, Metric] = {
    "dsa": Metric(
        "dsa",
        "trajectories",
        DSAMetricParams,
        lambda traj, p: dsa.fit_operator(traj, p),
        _dsa_pairs,
        "Dynamical Similarity Analysis: angular Procrustes distance between fitted operators",
        _operator_key,
    ),
    "dsa_wasserstein": Metric(
        "dsa_wasserstein",
        "trajectories",
        DSAMetricParams,
        lambda traj, p: dsa.fit_operator(traj, p),
        _each(dsa.eigen_wasserstein),
        "fast DSA approximation: Wasserstein distance between operator eigenvalues",
        _operator_key,
    ),
    "pif": Metric(
        "pif",
        "weights",
        pif.PIFParams,
        lambda w, p: w,
        _pif_pairs,
        "permutation-invariant distance between recurrent matrices (÷ n², the paper's)",
    ),
    "cka": Metric(
        "cka",
        "trajectories",
        TrajParams,
        lambda t, p: t,
        _each(representation.cka_distance),
        "1 - linear CKA between probe trajectories",
    ),
    "procrustes": Metric(
        "procrustes",
        "trajectories",
        TrajParams,
        lambda t, p: t,
        _each(representation.procrustes_distance),
        "angular Procrustes shape distance between probe trajectories",
    ),
}


#: DSA's `n_delays` and `rank` per task, chosen from the sensitivity check in
#: docs/dsa_sensitivity.md (`python bench/dsa_sensitivity.py`): 10 delays and the smallest rank
#: keeping >= 80 % of the delay embedding's variance with one-step R² >= 0.95. They apply when
#: every network of one call (a group for `mean_pairwise`, the two for `dsa_distance`) has that
#: task and the caller did not set the parameter; calls over mixed tasks use DSAParams' own, so
#: pass explicit parameters to compare across tasks.
#: per task, DSA's default delays and rank (each task class states its own `dsa_defaults`)
DSA_TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    name: dict(cls.dsa_defaults) for name, cls in TASKS.items()
}


def parse_params(metric: str, params: str | dict | None) -> dict:
    """A metric's parameters as a dict, from a JSON string (bad JSON is RegistryError)."""
    if isinstance(params, str):
        try:
            return json.loads(params) if params.strip() else {}
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{metric}: parameters are not valid JSON ({exc.msg})") from exc
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
    if issubclass(m.params_type, dsa.DSAParams) and task in DSA_TASK_DEFAULTS:
        params = {**DSA_TASK_DEFAULTS[task], **params}
    fields = {f.name for f in dataclasses.fields(m.params_type)}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise RegistryError(
            f"{metric}: unknown parameter(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(fields))})"
        )
    try:
        obj = m.params_type(**params)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{metric}: {exc}") from exc
    full = dataclasses.asdict(obj)
    text = json.dumps(full, sort_keys=True)
    return m, obj, text, cache_key(metric, full)
