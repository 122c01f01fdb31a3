"""`analyze`: degeneracy of every group at three levels (+ feature learning), stored in `results`.

Groups are rows of `SELECT <group_by>, list(network_id) ... GROUP BY ALL` over
`networks_labeled` (so labels group like any column), converged networks only by default.
Each group gets, per metric, what the metric table's `group` summary gives (`metrics.METRICS`):
values with a standard error over networks, each stored with the parameters it was computed at.
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

from degeneracy.analysis.grouping import (
    DEFAULT_GROUP_BY,
    column_sql,
    conditions,
    setting_sql,
    setting_value,
    split_settings,
)
from degeneracy.analysis.metrics import METRICS, Group, cache_key, resolve
from degeneracy.analysis.pairwise_cache import PairwiseCache
from degeneracy.analysis.params import DSAParams
from degeneracy.registry.errors import RegistryError


def groups(registry, group_by: list[str], where: str | None, converged_only: bool = True):
    """[(group key, network ids, OOD losses, seeds)]: `group_by` columns plus every setting in
    `factors` that differs among the selected networks (`split_settings`)."""
    split = split_settings(registry, group_by, where, converged_only)
    names = [*group_by, *split]
    cols = ", ".join([*(column_sql(c) for c in group_by), *(setting_sql(k) for k in split)])
    sql = (
        f"SELECT {cols}, list(network_id ORDER BY network_id) AS ids, "
        f"list(ood_loss ORDER BY network_id) AS ood, "
        f"list(seed ORDER BY network_id) AS seeds FROM networks_labeled "
        f"{conditions(where, converged_only)} GROUP BY ALL ORDER BY ALL"
    )
    with registry.read_query(sql) as rel:
        rows = rel.fetchall()
    return [
        (
            {n: setting_value(v) if "." in n else v for n, v in zip(names, r[:-3])},
            r[-3],
            r[-2],
            r[-1],
        )
        for r in rows
    ]


def analyze(
    registry,
    metrics: list[str],
    group_by: list[str] | None = None,
    where: str | None = None,
    params: dict[str, str | dict] | None = None,
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
    A row also carries "_loo": {column: {seed: the value without that seed's network}}, for
    the columns the verdicts pair on (`verdicts.compare`).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise RegistryError(f"unknown metric(s) {', '.join(unknown)} (known: {', '.join(METRICS)})")
    params = params or {}
    group_by = group_by or DEFAULT_GROUP_BY
    for m in metrics:  # bad parameters fail before any work
        resolve(m, params.get(m))
    cache = PairwiseCache(registry, executor=executor)
    rows, results, columns = [], [], []
    found = groups(registry, group_by, where, converged_only)
    pairwise = [m for m in metrics if METRICS[m].pairwise]
    total = len(pairwise) * sum(len(ids) * (len(ids) - 1) // 2 for _, ids, _, _ in found)
    done = 0
    per_group = _pooled_ranks(cache, metrics, params, [ids for _, ids, _, _ in found])
    for (key, ids, ood, seeds), group_params in zip(found, per_group):
        row: dict[str, Any] = {**key, "n": len(ids)}
        group_key = json.dumps(
            {**key, **({"where": where} if where else {})}, sort_keys=True, default=str
        )
        for m in metrics:
            if m in pairwise:
                done += len(ids) * (len(ids) - 1) // 2
            if progress:
                progress(f"{m}: {json.dumps(key, default=str)}", done, total)
            group = Group(registry, cache, ids, ood, group_params.get(m), kernel, quality, seeds)
            for name, (value, se, ptext) in METRICS[m].group(group).items():
                value, se = _finite(value), _finite(se)
                row[name], row[f"{name}_se"] = value, se
                if name not in columns:
                    columns.append(name)
                key_hash = cache_key(name, json.loads(ptext))
                results.append((name, ptext, key_hash, group_key, len(ids), value, se))
            if group.loo:
                row.setdefault("_loo", {}).update(group.loo)
        rows.append(row)
    cache.flush()
    _store_results(registry, results)
    return columns, rows


def _pooled_ranks(cache, metrics, params, groups: list[list[str]]) -> list[dict]:
    """Each group's parameters, with DSA's share-rule rank (rank 0) resolved once over every
    group of the same task: the levels compared are fitted at one rank, the rule's on their
    pooled networks (`DSAParams.rank`)."""
    out = [dict(params) for _ in groups]
    for m in metrics:
        if not issubclass(METRICS[m].params_type, DSAParams):
            continue
        by_task: dict[str | None, list[int]] = {}
        for k, ids in enumerate(groups):
            if ids:
                by_task.setdefault(cache.task(ids), []).append(k)
        for task, members in by_task.items():
            if task is None:
                continue  # mixed tasks in one group: the rule runs over that group alone
            pooled = sorted({i for k in members for i in groups[k]})
            text = cache.resolve(m, pooled, params.get(m))[2]
            for k in members:
                out[k][m] = text
    return out


def _finite(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _store_results(registry, results: list[tuple]) -> None:
    if not results:
        return
    with registry.transaction() as con:
        con.executemany(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)", results
        )
