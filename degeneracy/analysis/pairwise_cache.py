"""All-pairs driver with the `pairwise` cache: every distance is computed once per parameter set.

`PairwiseCache.matrix(metric, ids, params)` reads the stored pairs (a < b) among `ids`,
computes only the missing ones (loading and preparing only the networks involved, batched), and
keeps the new rows pending; `flush()` writes them in one transaction. Queries run on read-only
connections, so the registry writes the pending rows after the query's connection is closed.

The missing pairs are computed here in one batch, or, with `executor` a `ray_pairs.RayPairs`,
in chunks as Ray tasks; each chunk is then written as it comes back (`flush`), so a stopped run
keeps what finished.
"""

from __future__ import annotations

import json
from contextlib import closing
from typing import Any

import numpy as np

from degeneracy.analysis.metrics import cache_key, resolve_pairwise
from degeneracy.registry.connection import read_arrays
from degeneracy.registry.errors import RegistryError
from degeneracy.registry.ids import params_hash
from degeneracy.schema.kinds import REPLICA_PROBE


class PairwiseCache:
    def __init__(self, registry, con=None, executor=None):
        self.registry = registry
        self.con = con  # a connection (cursor) to read the cache through, else open one
        self.executor = executor  # None: pairs computed here; a RayPairs: as Ray tasks
        self.pending: dict[tuple[str, str, str, str], tuple] = {}
        self.pending_prepared: dict[tuple[str, str, str], np.ndarray] = {}
        self.computed = 0  # pairs this object computed (a resumed run computes only the rest)
        self._prepared: dict[tuple[str, str, str], Any] = {}
        self._tasks: dict[tuple[str, ...], str | None] = {}

    def _query(self, sql: str, args: list, arrays: bool = False) -> list[tuple]:
        """Rows of a read; `arrays`: it reads an array view (a cursor of a confined query
        connection sees neither its views nor any file, so it gets its own views)."""
        if self.con is not None:
            cursor = self.con.cursor()
            if arrays:
                read_arrays(cursor, self.registry.layout.data)
            return cursor.execute(sql, args).fetchall()
        with self.registry.connect(read_only=True) as con:
            return con.execute(sql, args).fetchall()

    def resolve(self, metric_name: str, ids: list[str], params=None):
        """`metrics.resolve_pairwise` with the task the networks share (per-task defaults)."""
        group = tuple(sorted(set(ids)))
        if group not in self._tasks:  # looked up once per group (analyze, then its matrix)
            tasks = self._query(
                "SELECT DISTINCT task FROM networks "
                "WHERE network_id IN (SELECT unnest(?::VARCHAR[]))",
                [list(group)],
            )
            self._tasks[group] = tasks[0][0] if len(tasks) == 1 else None
        return resolve_pairwise(metric_name, params, self._tasks[group])

    def _stored(self, metric: str, key: str, ids: list[str]) -> dict[tuple[str, str], float]:
        sql = (
            "SELECT a, b, distance FROM pairwise WHERE metric = ? AND params_hash = ? "
            "AND a IN (SELECT unnest(?::VARCHAR[])) AND b IN (SELECT unnest(?::VARCHAR[]))"
        )
        out = {(a, b): d for a, b, d in self._query(sql, [metric, key, ids, ids])}
        for (m, k, a, b), row in self.pending.items():
            if m == metric and k == key:
                out[(a, b)] = row[0]
        return out

    @staticmethod
    def _prepared_key(metric, obj) -> tuple[str, str] | None:
        """(kind, hash of the fit's parameters) for fits kept in `prepared`, else None."""
        if metric.stored_prepare is None:
            return None
        kind, fit_params = metric.stored_prepare(obj)
        return kind, params_hash({"kind": kind, **fit_params})

    def _stored_prepared(self, stored_key, ids: list[str]) -> dict[str, np.ndarray]:
        """Per-network fits kept by earlier processes (DSA operators), keyed by network id."""
        if stored_key is None or not ids:
            return {}
        kind, phash = stored_key
        rows = self._query(
            "SELECT network_id, rows, cols, value FROM prepared WHERE kind = ? AND params_hash = ? "
            "AND network_id IN (SELECT unnest(?::VARCHAR[]))",
            [kind, phash, ids],
        )
        return {
            nid: np.frombuffer(value, dtype=np.float64).reshape(r, c).copy()
            for nid, r, c, value in rows
        }

    def _load(self, metric, obj, key: str, ids: list[str]) -> list:
        todo = [i for i in ids if (metric.name, key, i) not in self._prepared]
        stored_key = self._prepared_key(metric, obj)
        for i, arr in self._stored_prepared(stored_key, todo).items():
            self._prepared[(metric.name, key, i)] = arr
        todo = [i for i in todo if (metric.name, key, i) not in self._prepared]
        if todo:
            if metric.source == "weights":
                arrays = self.registry.load_weights(todo, "W_h", getattr(obj, "stage", "final"))
            else:
                arrays = self.registry.load_trajectories(todo, obj.probe)
            for i, arr in zip(todo, arrays):
                fit = metric.prepare(arr, obj)
                self._prepared[(metric.name, key, i)] = fit
                if stored_key is not None:
                    self.pending_prepared[(*stored_key, i)] = np.asarray(fit, dtype=np.float64)
        return [self._prepared[(metric.name, key, i)] for i in ids]

    def matrix(self, metric_name: str, ids: list[str], params=None) -> np.ndarray:
        """Square (n, n) distance matrix over `ids` (order kept; duplicates allowed)."""
        metric, obj, text, key = self.resolve(metric_name, ids, params)
        uniq = sorted(set(ids))
        stored = self._stored(metric.name, key, uniq)
        missing = [
            (a, b) for i, a in enumerate(uniq) for b in uniq[i + 1 :] if (a, b) not in stored
        ]
        if missing:
            involved = sorted({x for pair in missing for x in pair})
            pos = {n: k for k, n in enumerate(involved)}
            items = self._load(metric, obj, key, involved)
            idx = np.array([(pos[a], pos[b]) for a, b in missing], dtype=np.int64)
            with closing(self._compute(metric, items, idx, obj)) as chunks:
                for rows, res in chunks:
                    done = [missing[k] for k in rows]
                    kept = self._keep(metric.name, metric.name, text, done, res)
                    stored.update(zip(done, kept))
                    self.computed += len(done)
                    if self.executor is not None:
                        self.flush()  # kept if the run stops before the other chunks return
        n = len(ids)
        out = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                a, b = sorted((ids[i], ids[j]))
                out[i, j] = out[j, i] = 0.0 if a == b else stored[(a, b)]
        return out

    def _compute(self, metric, items: list, idx: np.ndarray, obj):
        """(rows of `idx`, their PairResult): here in one batch, or per chunk from the executor."""
        if self.executor is None:
            yield np.arange(len(idx)), metric.pairs(items, idx, obj)
            return
        with closing(self.executor.compute(metric.name, items, idx, obj)) as chunks:
            yield from chunks

    def floors(self, metric_name: str, ids: list[str], params=None) -> np.ndarray:
        """Per network of `ids`: the metric's distance between its fits on two independent probe
        sets of the same size and input distribution ("id" and its replica "id_b"), at the same
        parameters as the pairwise distances: the noise floor a difference between networks is
        read against. NaN for networks stored without the replica (ingested, older registries).
        Kept in `pairwise` as metric "<metric>_floor" with a = b = the network."""
        metric, obj, text, key = self.resolve(metric_name, ids, params)
        if getattr(obj, "probe", None) != "id":
            raise RegistryError(f"{metric_name}: a noise floor needs probe 'id' (and 'id_b')")
        name = f"{metric.name}_floor"
        uniq = sorted(set(ids))
        stored = {a: d for (a, _), d in self._stored(name, key, uniq).items()}
        missing = [i for i in uniq if i not in stored]
        if missing:
            have = {
                r[0]
                for r in self._query(
                    "SELECT DISTINCT network_id FROM trajectories WHERE probe = ? "
                    "AND network_id IN (SELECT unnest(?::VARCHAR[]))",
                    [REPLICA_PROBE, missing],
                    arrays=True,
                )
            }
            todo = [i for i in missing if i in have]
            if todo:
                replica = json.loads(text) | {"probe": REPLICA_PROBE}
                _, obj_b, _, key_b = resolve_pairwise(metric.name, replica)
                items = self._load(metric, obj, key, todo) + self._load(metric, obj_b, key_b, todo)
                n = len(todo)
                idx = np.array([(i, n + i) for i in range(n)], dtype=np.int64)
                res = metric.pairs(items, idx, obj)
                rows = [(nid, nid) for nid in todo]
                for nid, d in zip(todo, self._keep(name, metric.name, text, rows, res)):
                    stored[nid] = d
        return np.array([stored.get(i, np.nan) for i in ids], dtype=np.float64)

    def _keep(self, name: str, metric: str, text: str, rows: list, res) -> list[float]:
        """Pend `res` for `rows` [(a, b)] as metric `name` at parameters `text`, plus its
        alternates (DSA's other score) at their own parameter hashes; returns the distances."""
        base = json.loads(text)
        for overrides, values in [({}, res.distance), *res.alternates]:
            params = {**base, **overrides}
            key = cache_key(metric, params)
            extra = json.dumps({"params": params})
            for k, (a, b) in enumerate(rows):
                it = None if res.iterations is None else int(res.iterations[k])
                loss = None if res.loss is None else float(res.loss[k])
                self.pending[(name, key, a, b)] = (float(values[k]), it, loss, extra)
        return [float(x) for x in res.distance]

    def flush(self) -> int:
        """Write pending pairs and per-network fits to the catalog (one transaction); returns
        how many pairs."""
        if not self.pending and not self.pending_prepared:
            return 0
        rows = [(m, k, a, b, *v) for (m, k, a, b), v in self.pending.items()]
        fits = [
            (kind, h, nid, *arr.shape, arr.tobytes())
            for (kind, h, nid), arr in self.pending_prepared.items()
        ]
        with self.registry.transaction() as con:
            if rows:
                con.executemany(
                    "INSERT OR IGNORE INTO pairwise "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
                    rows,
                )
            if fits:
                con.executemany(
                    "INSERT OR IGNORE INTO prepared VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
                    fits,
                )
        n = len(rows)
        self.pending.clear()
        self.pending_prepared.clear()
        return n
