"""`analyze`: degeneracy of every group at three levels (+ feature learning), stored in `results`.

Groups are rows of `SELECT <group_by>, list(network_id) ... GROUP BY ALL` over
`networks_labeled` (so labels group like any column), converged networks only by default.
Each group gets, per metric, a value and a bootstrap standard error over networks:
behavior = std of OOD loss; pairwise metrics = mean pairwise distance (via the cache);
fl = mean relative recurrent weight change ‖W_T − W_0‖/‖W_0‖ and mean NTK kernel alignment.
Beside dsa: `dsa_floor` (mean per-network noise floor, PairwiseCache.floors) and `dsa_kept`
(variance the rank keeps); beside pif: `pif_chance` (the same distance between the networks'
initial matrices).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from degeneracy.analysis.grouping import (
    DEFAULT_GROUP_BY,
    column_sql,
    conditions,
    setting_sql,
    setting_value,
    split_settings,
)
from degeneracy.analysis.metrics import METRICS, cache_key, parse_params, resolve
from degeneracy.analysis.pairwise_cache import PairwiseCache
from degeneracy.analysis.summary import behavior, mean_pairwise
from degeneracy.registry.errors import RegistryError

LEVEL_METRICS = ("behavior", "fl", *METRICS)
#: values reported beside a metric -> the metric whose parameters they were computed at
DERIVED = {"dsa_floor": "dsa", "dsa_kept": "dsa", "pif_chance": "pif_chance"}


def groups(registry, group_by: list[str], where: str | None, converged_only: bool = True):
    """[(group key, network ids, OOD losses)]: `group_by` columns plus every setting in
    `factors` that differs among the selected networks (`split_settings`)."""
    split = split_settings(registry, group_by, where, converged_only)
    names = [*group_by, *split]
    cols = ", ".join([*(column_sql(c) for c in group_by), *(setting_sql(k) for k in split)])
    sql = (
        f"SELECT {cols}, list(network_id ORDER BY network_id) AS ids, "
        f"list(ood_loss ORDER BY network_id) AS ood FROM networks_labeled "
        f"{conditions(where, converged_only)} GROUP BY ALL ORDER BY ALL"
    )
    with registry.read_query(sql) as rel:
        rows = rel.fetchall()
    return [
        (
            {n: setting_value(v) if "." in n else v for n, v in zip(names, r[:-2])},
            r[-2],
            r[-1],
        )
        for r in rows
    ]


def _feature_learning(registry, ids: list[str], with_kernel: bool) -> dict[str, tuple]:
    from degeneracy.analysis.feature_learning import weight_change

    w_t = registry.load_weights(ids, "W_h", "final")
    w_0 = registry.load_weights(ids, "W_h", "init")
    rel = np.array([weight_change(a, b)[1] for a, b in zip(w_t, w_0)])  # one stacked read
    out = {"weight_change": _mean_se(rel)}
    if with_kernel:
        kas = [ka for ka in (network_kernel_alignment(registry, i) for i in ids) if ka is not None]
        out["kernel_alignment"] = _mean_se(np.array(kas)) if kas else (None, None)
    return out


def network_weight_change(registry, nid: str) -> float:
    """‖W_T − W_0‖_F / ‖W_0‖_F of one network's recurrent matrix."""
    from degeneracy.analysis.feature_learning import weight_change

    w_t = registry.load_weights([nid], "W_h", "final")[0]
    w_0 = registry.load_weights([nid], "W_h", "init")[0]
    return weight_change(w_t, w_0)[1]


def network_kernel_alignment(registry, nid: str, trials: int = 4, steps: int = 50):
    """KA between the NTKs at init and at the end, on the first `steps` steps of `trials` probe
    trials; None for networks whose task settings are unknown (e.g. ingested state_dicts)."""
    from degeneracy.analysis.feature_learning import kernel_alignment, ntk
    from degeneracy.tasks import TaskError, make_task
    from degeneracy.training.model import PARAM_NAMES, ModelSpec

    with registry.connect() as con:  # a plain read (also inside a query's SQL function)
        task_name, hidden, regime, gamma, factors = con.execute(
            "SELECT task, hidden_size, regime, gamma, factors FROM networks WHERE network_id = ?",
            [nid],
        ).fetchall()[0]
    factors = json.loads(factors)
    if "task_params" not in factors:
        return None
    try:
        task = make_task(task_name, **factors["task_params"])
    except TaskError:
        return None
    spec = ModelSpec(task.n_inputs, task.n_outputs, hidden, regime, gamma, factors.get("tau", 0.1))
    try:
        final = {n: registry.load_weights([nid], n, "final")[0] for n in PARAM_NAMES}
        init = {n: registry.load_weights([nid], n, "init")[0] for n in PARAM_NAMES}
    except RegistryError:
        return None
    x = task.probe(trials, factors.get("train", {}).get("probe_seed", 0)).inputs[:, :steps]
    return kernel_alignment(ntk(spec, final, x), ntk(spec, init, x))


def _kept_variance(registry, ids: list[str], p) -> tuple[float | None, float | None]:
    """Mean fraction of the delay embedding's variance the DSA rank keeps (fit quality)."""
    from degeneracy.analysis.dsa import fit_quality

    traj = registry.load_trajectories(ids, p.probe)
    return _mean_se(np.array([fit_quality(t, p)[0] for t in traj]))


def _mean_se(x: np.ndarray) -> tuple[float | None, float | None]:
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return None, None
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else None
    return float(x.mean()), se


def analyze(
    registry,
    metrics: list[str],
    group_by: list[str] | None = None,
    where: str | None = None,
    params: dict[str, str] | None = None,
    converged_only: bool = True,
    kernel: bool = True,
    quality: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    executor=None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Compute, store in `results` and return (metric columns, one row per group).

    `progress(description, pairs_done, pairs_total)` is called after each metric of each group.
    `kernel`: NTK kernel alignment with fl; `quality`: the DSA rank's kept variance with dsa.
    `executor`: where missing pairs are computed (`PairwiseCache`; None: in this process).
    """
    unknown = [m for m in metrics if m not in LEVEL_METRICS]
    if unknown:
        raise RegistryError(
            f"unknown metric(s) {', '.join(unknown)} (known: {', '.join(LEVEL_METRICS)})"
        )
    params = params or {}
    group_by = group_by or DEFAULT_GROUP_BY
    for m in metrics:  # bad parameters fail before any work
        if m in METRICS:
            resolve(m, params.get(m))
    cache = PairwiseCache(registry, executor=executor)
    rows, results, columns = [], [], []
    found = groups(registry, group_by, where, converged_only)
    n_pair_metrics = sum(1 for m in metrics if m in METRICS)
    total = n_pair_metrics * sum(len(ids) * (len(ids) - 1) // 2 for _, ids, _ in found)
    done = 0
    for key, ids, ood in found:
        row: dict[str, Any] = {**key, "n": len(ids)}
        values: dict[str, tuple] = {}
        resolved = {m: cache.resolve(m, ids, params.get(m)) for m in metrics if m in METRICS}
        for m in metrics:
            if m in METRICS:
                done += len(ids) * (len(ids) - 1) // 2
            if progress:
                progress(f"{m}: {json.dumps(key, default=str)}", done, total)
            if m == "behavior":
                std, mean, se = behavior(np.array([x for x in ood if x is not None]))
                values["behavior"] = (std, se)
                values["behavior_mean"] = (mean, None)
            elif m == "fl":
                values.update(_feature_learning(registry, ids, kernel))
            elif len(ids) < 2:
                values[m] = (None, None)
            else:
                values[m] = mean_pairwise(cache.matrix(m, ids, params.get(m)))
            if m == "dsa":  # what each dynamics value must be read against
                if resolved[m][1].probe == "id":  # the replica probe exists for "id" only
                    floors = cache.floors(m, ids, params.get(m))
                    values["dsa_floor"] = _mean_se(floors[np.isfinite(floors)])
                else:
                    values["dsa_floor"] = (None, None)
                if quality:
                    values["dsa_kept"] = _kept_variance(registry, ids, resolved[m][1])
            if m == "pif":  # the chance level: the same networks' matrices at initialization
                chance = {**parse_params(m, params.get(m)), "stage": "init"}
                resolved["pif_chance"] = cache.resolve(m, ids, chance)
                values["pif_chance"] = (
                    mean_pairwise(cache.matrix(m, ids, chance)) if len(ids) >= 2 else (None, None)
                )
        for name, (value, se) in values.items():
            value = (
                None if value is None or (isinstance(value, float) and math.isnan(value)) else value
            )
            se = None if se is None or (isinstance(se, float) and math.isnan(se)) else se
            row[name] = value
            row[f"{name}_se"] = se
            if name not in columns:
                columns.append(name)
            source = DERIVED.get(name, name)
            ptext = (
                resolved[source][2]
                if source in resolved
                else json.dumps(
                    {"kernel_trials": 4, "kernel_steps": 50} if name == "kernel_alignment" else {}
                )
            )
            results.append(
                (
                    name,
                    ptext,
                    cache_key(name, json.loads(ptext)),
                    json.dumps(
                        {**key, **({"where": where} if where else {})}, sort_keys=True, default=str
                    ),
                    len(ids),
                    value,
                    se,
                )
            )
        rows.append(row)
    cache.flush()
    _store_results(registry, results)
    return columns, rows


def _store_results(registry, results: list[tuple]) -> None:
    if not results:
        return
    with registry.transaction() as con:
        con.executemany(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)", results
        )
