"""Registry speed: write cost and bytes per network, array loads, grouped queries, `ls` start-up.

    python bench/registry_bench.py [--networks 3400] [--hidden 128] [--trials 32] [--steps 100]

Builds a synthetic registry (random weights, smooth random-walk trajectories; no training) of
ensembles of 50 networks and prints figures; baselines run in the same process:
 - loading one ensemble's 50 recurrent matrices vs pyarrow's default layout (all networks in
   one file, default row groups, dictionary on) filtered by network_id;
 - a grouped query over `networks` vs a full scan of the Parquet weights view.
Nothing is asserted: speed is reported, not tested.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from degeneracy.registry.records import Condition, NetworkRecord
from degeneracy.registry.store import Registry


def synthetic(seeds, hidden, trials, steps, rng):
    recs = []
    for s in seeds:

        def w(*shape):
            return (rng.standard_normal(shape) / np.sqrt(hidden)).astype(np.float32)

        walk = np.tanh(np.cumsum(rng.standard_normal((trials, steps, hidden)) * 0.1, axis=1))
        recs.append(
            NetworkRecord(
                seed=s,
                weights_final={
                    "W_h": w(hidden, hidden),
                    "W_x": w(hidden, 3),
                    "b": w(hidden),
                    "W_out": w(3, hidden),
                    "b_out": w(3),
                },
                weights_init={
                    "W_h": w(hidden, hidden),
                    "W_x": w(hidden, 3),
                    "b": w(hidden),
                    "W_out": w(3, hidden),
                    "b_out": w(3),
                },
                trajectories={"id": walk.astype(np.float32)},
                outputs={"id": walk[..., :3].astype(np.float32)},
                curve={
                    "step": np.arange(0, 3000, 100),
                    "loss": rng.random(30),
                    "lr": np.full(30, 1e-3),
                },
                steps=3000,
                final_loss=float(rng.random() * 1e-3),
                ood_loss=float(rng.random() * 1e-2),
                converged=bool(rng.random() < 0.8),
            )
        )
    return recs


def timeit(fn, repeat=7):
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=3400)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--per-ensemble", type=int, default=50)
    ap.add_argument("--keep", type=Path, default=None, help="build the registry here and keep it")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="degeneracy-bench-"))
    root = args.keep or tmp / "reg"
    reg = Registry.create(root)
    rng = np.random.default_rng(0)
    k = args.per_ensemble
    n_ens = args.networks // k
    tasks = ["flipflop", "delayed_discrimination", "sine", "path_integration"]
    write_s = 0.0
    gen_s = 0.0
    first_ids = None
    for e in range(n_ens):
        t0 = time.perf_counter()
        recs = synthetic(range(k), args.hidden, args.trials, args.steps, rng)
        gen_s += time.perf_counter() - t0
        cond = Condition(
            task=tasks[e % 4],
            hidden_size=args.hidden,
            complexity=1 + (e // 4) % 3,
            gamma=[0.5, 1.0, 2.0, 4.0][(e // 12) % 4],
            factors={"replicate": e},
        )
        t0 = time.perf_counter()
        summary = reg.write_ensemble(cond, recs)
        write_s += time.perf_counter() - t0
        if first_ids is None:
            first_ids = summary.written
        if (e + 1) % 10 == 0:
            print(f"  wrote {e + 1}/{n_ens} ensembles", file=sys.stderr, flush=True)
    n = n_ens * k
    info = reg.info()
    data_bytes = info["total_bytes"] - info["bytes"]["catalog"]

    print(
        f"\nsynthetic registry: {n} networks, hidden {args.hidden}, "
        f"trajectories {args.trials} x {args.steps}, {n_ens} ensembles of {k}"
    )
    print(
        f"write: {1e3 * write_s / n:.1f} ms per network ({write_s:.1f} s total; "
        f"data generation {gen_s:.1f} s not counted)"
    )
    per_kind = {kd: v for kd, v in info["bytes"].items() if kd != "catalog"}
    print(
        f"bytes per network: {data_bytes / n / 1e3:.0f} kB data "
        f"({', '.join(f'{kd} {v / n / 1e3:.0f} kB' for kd, v in per_kind.items())}); "
        f"catalog {info['bytes']['catalog'] / 1e6:.1f} MB total"
    )

    # -- loading one ensemble's recurrent matrices
    cold = timeit(lambda: Registry(root).load_weights(first_ids))  # fresh object: no cache
    ours = timeit(lambda: reg.load_weights(first_ids))
    # baseline: every W_h in one file with pyarrow's default layout, filtered by id
    base_file = tmp / "all_wh.parquet"
    tables = [
        pq.read_table(p, filters=[("name", "=", "W_h"), ("stage", "=", "final")])
        for p in sorted((root / "data" / "weights").glob("task=*/*.parquet"))
    ]
    pq.write_table(pa.concat_tables(tables), base_file, compression="zstd")
    wanted = pa.array(first_ids)

    def baseline():
        t = pq.read_table(
            base_file, columns=["network_id", "values"], filters=pc.field("network_id").isin(wanted)
        )
        return (
            t.column("values")
            .combine_chunks()
            .flatten()
            .to_numpy()
            .reshape(-1, args.hidden, args.hidden)
        )

    base = timeit(baseline)
    print(
        f"load {k} final W_h (hidden {args.hidden}): {1e3 * cold:.1f} ms with the catalog "
        f"lookup, {1e3 * ours:.1f} ms once ids are known; baseline one-file default layout "
        f"{1e3 * base:.1f} ms; ratio {base / cold:.1f}x / {base / ours:.1f}x"
    )

    # -- grouped query over networks
    q = (
        "SELECT task, complexity, gamma, count(*) AS n, avg(converged::INT) AS conv, "
        "stddev_pop(ood_loss) AS behavior FROM networks GROUP BY ALL ORDER BY ALL"
    )
    with reg.connect(read_only=True) as con:
        grouped = timeit(lambda: con.execute(q).fetchall())
        scan = timeit(
            lambda: con.execute(
                "SELECT task, count(*) FROM weights WHERE name = 'W_h' GROUP BY ALL"
            ).fetchall(),
            3,
        )
    opened = timeit(lambda: reg.sql(q))
    print(
        f"grouped query over {n} networks: {1e3 * grouped:.1f} ms on an open connection, "
        f"{1e3 * opened:.1f} ms including open + confinement (reg.sql); "
        f"baseline scan of the weights view {1e3 * scan:.0f} ms"
    )

    # -- array views for user SQL: Arrow datasets on a connection with no file access (reg.sql)
    #    vs DuckDB's own Parquet scan (the stored views, on a plain read-only connection)
    for label, sql in (
        (
            "weights W_h count",
            "SELECT task, count(*) AS n FROM weights WHERE name = 'W_h' GROUP BY ALL",
        ),
        (
            "trajectory values sum",
            "SELECT sum(list_sum(values)) AS s FROM trajectories WHERE probe = 'id'",
        ),
    ):
        with reg.connect(read_only=True) as con:
            native = timeit(lambda sql=sql: con.execute(sql).fetchall(), 3)
        confined = timeit(lambda sql=sql: reg.sql(sql), 3)
        print(
            f"user SQL, {label} over {n} networks: {1e3 * confined:.0f} ms confined (Arrow, "
            f"including open) vs {1e3 * native:.0f} ms DuckDB Parquet scan; "
            f"ratio {confined / native:.2f}x"
        )

    # -- ls including start-up
    cmd = [sys.executable, "-m", "degeneracy", "--registry", str(root), "ls"]
    ls = timeit(lambda: subprocess.run(cmd, capture_output=True, check=True), 5)
    noop = timeit(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 5)
    print(
        f"`degeneracy ls` including start-up: {1e3 * ls:.0f} ms "
        f"(bare python start-up {1e3 * noop:.0f} ms)"
    )
    if args.keep is None:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
