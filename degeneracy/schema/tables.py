"""Arrow schemas of the catalog tables (the single source of their DuckDB DDL).

JSON-valued columns (`factors`, `condition`, `params`, `group_key`, `extra`) are VARCHAR holding
canonical JSON, queryable with DuckDB's `->>` operator: `factors->>'lr'`.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us")

NETWORKS = pa.schema(
    [
        pa.field("network_id", pa.string(), nullable=False),
        pa.field("ensemble_id", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("hidden_size", pa.int32(), nullable=False),
        pa.field("complexity", pa.int32(), nullable=False),
        pa.field("regime", pa.string(), nullable=False),
        pa.field("gamma", pa.float64(), nullable=False),
        pa.field("l1", pa.float64(), nullable=False),
        pa.field("nuclear", pa.float64(), nullable=False),
        pa.field("factors", pa.string(), nullable=False),
        pa.field("steps", pa.int64()),
        pa.field("final_loss", pa.float64()),
        pa.field("ood_loss", pa.float64()),
        pa.field("converged", pa.bool_()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("created_at", TS, nullable=False),
        pa.field("code_version", pa.string(), nullable=False),
        # added in schema 3 (appended, as ALTER TABLE does): what the stop rule read last
        pa.field("train_loss", pa.float64()),
        # added in schema 4: JSON of what made the network (package version and git commit,
        # torch/duckdb/numpy/python versions, device, torch threads); NULL before
        pa.field("provenance", pa.string()),
    ]
)

ENSEMBLES = pa.schema(
    [
        pa.field("ensemble_id", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("condition", pa.string(), nullable=False),
        pa.field("n_networks", pa.int32(), nullable=False),
        pa.field("sweep_id", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("created_at", TS, nullable=False),
        # data files, relative to the registry root; NULL where the ensemble has no such data
        pa.field("weights_file", pa.string()),
        pa.field("trajectories_file", pa.string()),
        pa.field("outputs_file", pa.string()),
        pa.field("curves_file", pa.string()),
    ]
)

SWEEPS = pa.schema(
    [
        pa.field("sweep_id", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("spec", pa.string(), nullable=False),
        pa.field("created_at", TS, nullable=False),
    ]
)

LABELS = pa.schema(
    [
        pa.field("network_id", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("value", pa.string()),
    ]
)

PAIRWISE = pa.schema(
    [
        pa.field("metric", pa.string(), nullable=False),
        pa.field("params_hash", pa.string(), nullable=False),
        pa.field("a", pa.string(), nullable=False),  # a < b
        pa.field("b", pa.string(), nullable=False),
        pa.field("distance", pa.float64(), nullable=False),
        pa.field("iterations", pa.int32()),
        pa.field("loss", pa.float64()),
        pa.field("extra", pa.string()),
        pa.field("created_at", TS, nullable=False),
    ]
)

PREPARED = pa.schema(  # per-network fits a metric reuses (DSA operators), as float64 bytes
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("params_hash", pa.string(), nullable=False),
        pa.field("network_id", pa.string(), nullable=False),
        pa.field("rows", pa.int32(), nullable=False),
        pa.field("cols", pa.int32(), nullable=False),
        pa.field("value", pa.binary(), nullable=False),
        pa.field("created_at", TS, nullable=False),
    ]
)

RESULTS = pa.schema(
    [
        pa.field("metric", pa.string(), nullable=False),
        pa.field("params", pa.string(), nullable=False),
        pa.field("params_hash", pa.string(), nullable=False),
        pa.field("group_key", pa.string(), nullable=False),
        pa.field("n", pa.int32(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("stderr", pa.float64()),
        pa.field("created_at", TS, nullable=False),
    ]
)

FILES = pa.schema(  # schema 5: what each data file was when written, for `check`
    [
        pa.field("path", pa.string(), nullable=False),  # relative to the registry root
        pa.field("ensemble_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("bytes", pa.int64(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("created_at", TS, nullable=False),
    ]
)

META = pa.schema(
    [pa.field("key", pa.string(), nullable=False), pa.field("value", pa.string(), nullable=False)]
)

SCHEMA_VERSION_TABLE = pa.schema(
    [
        pa.field("version", pa.int32(), nullable=False),
        pa.field("applied_at", TS, nullable=False),
    ]
)

#: table name -> (schema, primary key columns)
TABLES: dict[str, tuple[pa.Schema, tuple[str, ...]]] = {
    "networks": (NETWORKS, ("network_id",)),
    "ensembles": (ENSEMBLES, ("ensemble_id",)),
    "sweeps": (SWEEPS, ("sweep_id",)),
    "labels": (LABELS, ("network_id", "name")),
    "pairwise": (PAIRWISE, ("metric", "params_hash", "a", "b")),
    "prepared": (PREPARED, ("kind", "params_hash", "network_id")),
    "results": (RESULTS, ("metric", "params_hash", "group_key")),
    "files": (FILES, ("path",)),
    "meta": (META, ("key",)),
    "schema_version": (SCHEMA_VERSION_TABLE, ()),
}
