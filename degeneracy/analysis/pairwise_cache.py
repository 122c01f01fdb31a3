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

#: bytes of accumulated Grams a cache keeps between uses (hidden 64 at 10 delays: 13 MB per
#: network and probe set, so a 4-level cell of 32 networks each, 128 networks, fits and the
#: share rule's spectra and the operators at its rank share one re-probe; hidden 256: 210 MB)
GRAM_BUDGET = 4 << 30


def _trials(obj) -> int:
    """A parameter set's re-probed trials (0: the stored probe sets; metrics without one)."""
    return int(getattr(obj, "trials", 0) or 0)


def _take(res, sel: np.ndarray):
    """A PairResult's rows `sel` (its alternates too)."""
    from dataclasses import replace

    def pick(x):
        return None if x is None else np.asarray(x)[sel]

    return replace(
        res,
        distance=pick(res.distance),
        iterations=pick(res.iterations),
        loss=pick(res.loss),
        alternates=tuple((o, pick(d)) for o, d in res.alternates),
    )


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
        #: accumulated Grams of re-probed networks, kept while a comparison needs them (the
        #: share rule's spectra, then the operators at its rank): (id, trials, n_delays, probe)
        self._grams: dict[tuple, Any] = {}

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
        """`metrics.resolve_pairwise` with the task the networks share (per-task defaults) and,
        for DSA under the share rule (rank 0), the rank that rule gives over `ids`."""
        group = tuple(sorted(set(ids)))
        out = resolve_pairwise(metric_name, params, self.task(group))
        if getattr(out[1], "rank", None) == 0:
            rank = self.share_rank(list(group), out[1])
            out = resolve_pairwise(metric_name, {**json.loads(out[2]), "rank": rank})
        return out

    def task(self, ids) -> str | None:
        """The task every network of `ids` has, else None (looked up once per group)."""
        group = tuple(sorted(set(ids)))
        if group not in self._tasks:
            tasks = self._query(
                "SELECT DISTINCT task FROM networks "
                "WHERE network_id IN (SELECT unnest(?::VARCHAR[]))",
                [list(group)],
            )
            self._tasks[group] = tasks[0][0] if len(tasks) == 1 else None
        return self._tasks[group]

    # ------------------------------------------------------------- re-probed DSA fits
    def per_gram(self, ids: list[str], obj, fn) -> dict[str, Any]:
        """{id: fn(its accumulated Grams)} for `ids` re-probed on `obj.trials` trials of
        `obj.probe` ("id": probe set 0, "id_b": its replica, "ood"). Networks are run a chunk
        at a time and their Grams kept in memory up to `GRAM_BUDGET` bytes (the share rule's
        spectra, then the operators at its rank, reuse them), so memory stays bounded at any
        width."""
        from degeneracy.analysis.probing import CHUNK_NETWORKS, gram_stats

        replica, ood = {"id": (0, False), "id_b": (1, False), "ood": (0, True)}[obj.probe]

        def key(i):
            return (i, obj.trials, obj.n_delays, obj.probe)

        out = {i: fn(self._grams[key(i)]) for i in dict.fromkeys(ids) if key(i) in self._grams}
        todo = [i for i in dict.fromkeys(ids) if i not in out]
        for start in range(0, len(todo), CHUNK_NETWORKS):
            part = todo[start : start + CHUNK_NETWORKS]
            got = gram_stats(self.registry, part, obj.trials, obj.n_delays, replica, ood, self.con)
            for i in part:
                out[i] = fn(got[i])
                self._grams[key(i)] = got[i]
            self._trim_grams()
        return out

    def _trim_grams(self) -> None:
        """Forget the oldest Grams beyond GRAM_BUDGET bytes."""
        total = sum(g.nbytes for g in self._grams.values())
        for k in list(self._grams):
            if total <= GRAM_BUDGET:
                break
            total -= self._grams.pop(k).nbytes

    def kept_curves(self, ids: list[str], obj) -> np.ndarray:
        """(networks, max_rank): the share of each network's delay-embedding variance the top
        r coordinates keep, r = 1..max_rank, on the fit's own probe trials; kept in `prepared`
        (kind "dsa_spectrum")."""
        from degeneracy.analysis.dsa import GramStats

        fit = {
            "n_delays": obj.n_delays,
            "trials": obj.trials,
            "probe": obj.probe,
            "max_rank": obj.max_rank,
        }
        stored_key = ("dsa_spectrum", params_hash({"kind": "dsa_spectrum", **fit}))
        have = {k[2]: v for k, v in self._prepared.items() if k[:2] == stored_key}
        have.update(self._stored_prepared(stored_key, [i for i in ids if i not in have]))
        todo = [i for i in dict.fromkeys(ids) if i not in have]
        if todo:

            def curve(g):
                return g.kept_curve(obj.max_rank)[None, :]

            if obj.trials:
                curves = self.per_gram(todo, obj, curve)
            else:
                curves = {}
                for i, traj in zip(todo, self.registry.load_trajectories(todo, obj.probe)):
                    g = GramStats.empty(obj.n_delays, traj.shape[-1])
                    g.add(traj)
                    curves[i] = curve(g)
            for i in todo:
                have[i] = curves[i]
                self.pending_prepared[(*stored_key, i)] = curves[i]
        for i, v in have.items():
            self._prepared[(*stored_key, i)] = v
        return np.concatenate([have[i] for i in ids])

    def share_rank(self, ids: list[str], obj) -> int:
        """The share rule's rank over `ids`: the smallest r at which their median network
        keeps `obj.share` of its variance, at most `obj.max_rank` (`share_rank`)."""
        from degeneracy.analysis.dsa import share_rank

        return share_rank(self.kept_curves(ids, obj), obj.share)

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
        fits: list = []
        if todo and _trials(obj) and metric.source == "trajectories":
            from degeneracy.analysis.dsa import fit_operator_stats

            found = self.per_gram(todo, obj, lambda g: fit_operator_stats(g, obj))
            fits = [found[i] for i in todo]
        elif todo:
            if metric.source == "weights":
                arrays = self.registry.load_weights(todo, "W_h", getattr(obj, "stage", "final"))
            else:
                arrays = self.registry.load_trajectories(todo, obj.probe)
            fits = [metric.prepare(arr, obj) for arr in arrays]
        for i, fit in zip(todo, fits):
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
        have = self._with_replica(missing, obj) if missing else set()
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

    def has_replicas(self, ids: list[str], params=None) -> bool:
        """Whether every network of `ids` has a replica probe set to fit (always, re-probed)."""
        _, obj, _, _ = self.resolve("dsa", ids, params)
        return self._with_replica(ids, obj) == set(ids)

    def _with_replica(self, ids: list[str], obj) -> set[str]:
        """Those of `ids` with a replica probe set to fit: all when re-probed, else the ones
        stored with one ("id_b")."""
        if _trials(obj):
            return set(ids)
        rows = self._query(
            "SELECT DISTINCT network_id FROM trajectories WHERE probe = ? "
            "AND network_id IN (SELECT unnest(?::VARCHAR[]))",
            [REPLICA_PROBE, sorted(set(ids))],
            arrays=True,
        )
        return {r[0] for r in rows}

    def cross(self, metric_name: str, ids: list[str], params=None) -> np.ndarray:
        """Square (n, n) matrix over `ids` of distances between *independent* probe sets: for
        networks a < b (by id), the distance between a's fit on "id" and b's fit on its replica
        "id_b". Its noise is that of the floors (`floors`), which the corrected dynamics value
        (`summary.corrected_distance`) relies on: a pair on one probe set shares its inputs,
        so its two fits' errors are correlated and the floors would over-correct it.

        Kept in `pairwise` as metric "<metric>_cross". The missing ones are aligned in one
        batch with the same-set pairs and the floors of their networks (also kept), so the
        composition rounds route a cross pair through the networks around it."""
        metric, obj, text, key = self.resolve(metric_name, ids, params)
        if getattr(obj, "probe", None) != "id":
            raise RegistryError(f"{metric_name}: cross-set pairs need probe 'id' (and 'id_b')")
        name = f"{metric.name}_cross"
        uniq = sorted(set(ids))
        stored = self._stored(name, key, uniq)
        missing = [
            (a, b) for i, a in enumerate(uniq) for b in uniq[i + 1 :] if (a, b) not in stored
        ]
        if missing:
            involved = sorted({x for pair in missing for x in pair})
            pos = {nid: k for k, nid in enumerate(involved)}
            n = len(involved)
            replica = json.loads(text) | {"probe": REPLICA_PROBE}
            _, obj_b, _, key_b = resolve_pairwise(metric.name, replica)
            items = self._load(metric, obj, key, involved)
            items += self._load(metric, obj_b, key_b, involved)
            same = [(i, j) for i in range(n) for j in range(i + 1, n)]
            cross = [(pos[a], n + pos[b]) for a, b in missing]
            floor = [(i, n + i) for i in range(n)]
            idx = np.array(same + cross + floor, dtype=np.int64)
            res = metric.pairs(items, idx, obj)
            parts = np.split(np.arange(len(idx)), [len(same), len(same) + len(cross)])
            rows = (
                [(involved[i], involved[j]) for i, j in same],
                missing,
                [(nid, nid) for nid in involved],
            )
            for label, sel, done in zip((metric.name, name, f"{metric.name}_floor"), parts, rows):
                # a same-set pair or floor already known keeps its value: every reader of the
                # cache, in this process or a later one, sees one value per pair
                known = self._stored(label, key, involved) if label != name else {}
                fresh = [k for k, pair in enumerate(done) if pair not in known]
                sub = _take(res, sel[fresh])
                kept = self._keep(label, metric.name, text, [done[k] for k in fresh], sub)
                if label == name:
                    stored.update(zip(done, kept))
                    self.computed += len(done)
        out = np.zeros((len(ids), len(ids)))
        for i in range(len(ids)):
            for j in range(i + 1, len(ids)):
                a, b = sorted((ids[i], ids[j]))
                out[i, j] = out[j, i] = 0.0 if a == b else stored[(a, b)]
        return out

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
