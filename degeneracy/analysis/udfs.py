"""SQL functions registered on every connection the registry opens for queries.

    <metric>_distance(a, b [, params_json])      -- every pairwise metric of the table
                                                    (dsa, pif, cka, procrustes, svcca, ...)
    mean_pairwise(metric, ids [, params_json])   -- ids = list(network_id) of a group
    dsa_floor(ids [, params_json])               -- mean per-network DSA noise floor: each
                                                    network's distance to itself on an
                                                    independent probe set ("id" vs "id_b")
    dsa_corrected(ids [, params_json])           -- the noise-corrected DSA distance the
                                                    dynamics verdict reads
                                                    (summary.corrected_distance)
    weight_change(id)                            -- per-network metrics of the table
    kernel_alignment(id)                            (feature learning: ‖W_T − W_0‖/‖W_0‖ of
                                                    W_h, and the NTK alignment init vs end)

They go through the pairwise cache: a pair is computed once per parameter set, ever. DuckDB
refuses same-name overloads of Python functions, so one Python function per shape is registered
and TEMP macros give the optional last argument. Every function comes from the metric table
(`metrics.METRICS`, light to import); nothing heavy is imported until a function runs.
"""

from __future__ import annotations

import math

import duckdb
from duckdb import sqltypes

from degeneracy.analysis.metrics import METRICS

#: SQL function -> pairwise metric
PAIR_FUNCTIONS = {m.sql_functions[0]: m.name for m in METRICS.values() if m.pairwise}
#: SQL function -> fn(registry, network id), of the per-network metrics
NETWORK_FUNCTIONS = {f: fn for m in METRICS.values() for f, fn in m.network_sql.items()}


def register(con: duckdb.DuckDBPyConnection, registry) -> LazyCache:
    cache = LazyCache(registry, con)

    def pair(metric, a, b, params):
        if a is None or b is None:
            return None
        return float(cache.get().matrix(metric, [a, b], params)[0, 1])

    def group_mean(metric, ids, params):
        from degeneracy.analysis.summary import mean_pairwise

        ids = [i for i in (ids or []) if i is not None]
        if len(ids) < 2:
            return None
        value, _ = mean_pairwise(cache.get().matrix(metric, ids, params))
        return None if math.isnan(value) else value

    def group_floor(ids, params):
        import numpy as np

        ids = [i for i in (ids or []) if i is not None]
        if not ids:
            return None
        floors = cache.get().floors("dsa", ids, params)
        return None if np.isnan(floors).all() else float(np.nanmean(floors))

    def group_corrected(ids, params):
        import numpy as np

        from degeneracy.analysis.summary import corrected_distance

        ids = [i for i in (ids or []) if i is not None]
        if len(ids) < 2:
            return None
        c = cache.get()
        text = c.resolve("dsa", ids, params)[2]  # the share rule's rank, once for both
        floors = c.floors("dsa", ids, text)
        if not np.isfinite(floors).all():
            return None
        value = corrected_distance(c.cross("dsa", ids, text), floors)["corrected"]
        return None if math.isnan(value) else float(value)

    def per_network(fn):
        def call(nid):
            value = None if nid is None else fn(registry, nid)
            return None if value is None or math.isnan(value) else float(value)

        return call

    v = sqltypes.VARCHAR
    for name, fn in NETWORK_FUNCTIONS.items():
        con.create_function(  # type: ignore[call-overload]  # stub lacks str null_handling
            name, per_network(fn), [v], sqltypes.DOUBLE, null_handling="special", side_effects=True
        )
    con.create_function(  # type: ignore[call-overload]  # stub lacks str null_handling
        "_degeneracy_pair",
        pair,
        [v, v, v, v],
        sqltypes.DOUBLE,
        null_handling="special",
        side_effects=True,
    )
    con.create_function(  # type: ignore[call-overload]  # stub lacks str null_handling
        "_degeneracy_mean_pairwise",
        group_mean,
        [v, duckdb.list_type(v), v],
        sqltypes.DOUBLE,
        null_handling="special",
        side_effects=True,
    )
    for sql_name, metric in PAIR_FUNCTIONS.items():
        con.execute(
            f"CREATE OR REPLACE TEMP MACRO {sql_name}(a, b) AS "
            f"_degeneracy_pair('{metric}', a, b, '{{}}'), "
            f"(a, b, params) AS _degeneracy_pair('{metric}', a, b, params)"
        )
    for name, fn in (("dsa_floor", group_floor), ("dsa_corrected", group_corrected)):
        con.create_function(  # type: ignore[call-overload]  # stub lacks str null_handling
            f"_degeneracy_{name}",
            fn,
            [duckdb.list_type(v), v],
            sqltypes.DOUBLE,
            null_handling="special",
            side_effects=True,
        )
        con.execute(
            f"CREATE OR REPLACE TEMP MACRO {name}(ids) AS _degeneracy_{name}(ids, '{{}}'), "
            f"(ids, params) AS _degeneracy_{name}(ids, params)"
        )
    con.execute(
        "CREATE OR REPLACE TEMP MACRO mean_pairwise(metric, ids) AS "
        "_degeneracy_mean_pairwise(metric, ids, '{}'), "
        "(metric, ids, params) AS _degeneracy_mean_pairwise(metric, ids, params)"
    )
    return cache


class LazyCache:
    """Builds the PairwiseCache (numpy, scipy, torch) only when a function is first called."""

    def __init__(self, registry, con):
        self.registry, self.con, self._cache = registry, con, None

    def get(self):
        if self._cache is None:
            from degeneracy.analysis.pairwise_cache import PairwiseCache

            self._cache = PairwiseCache(self.registry, self.con)
        return self._cache

    def flush(self) -> int:
        return self._cache.flush() if self._cache is not None else 0
