"""Parquet encoding of the array kinds: atomic writes, one row group per key, fast reads.

Layout measured to matter (see bench/registry_bench.py): zstd, dictionary encoding off,
byte-stream-split on the float values, rows sorted by (stage, name) / probe with one row group
per value, so loading the 50 final recurrent matrices of an ensemble reads one row group.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from degeneracy.registry.layout import temp_path
from degeneracy.registry.records import NetworkRecord
from degeneracy.schema.arrays import ARRAY_SCHEMAS

WRITE_OPTIONS = dict(
    compression="zstd",
    use_dictionary=False,
    write_statistics=True,
)


def _byte_stream_split(schema: pa.Schema) -> list[str]:
    cols = []
    for f in schema:
        if f.type == pa.float32():
            cols.append(f.name)
        elif pa.types.is_list(f.type) and f.type.value_type == pa.float32():
            cols.append(f"{f.name}.list.element")
    return cols


def _array_column(arrays: list[np.ndarray]) -> tuple[pa.Array, pa.Array]:
    """(shape, values) columns for a list of arrays, without per-element Python work."""
    flat = [np.ascontiguousarray(a, dtype=np.float32).ravel() for a in arrays]
    offsets = np.zeros(len(flat) + 1, dtype=np.int64)
    np.cumsum([f.size for f in flat], out=offsets[1:])
    values = np.concatenate(flat) if flat else np.zeros(0, np.float32)
    if offsets[-1] < 2**31:
        vals = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values))
    else:  # pragma: no cover - > 2 G floats in one file
        raise ValueError("one Parquet file would hold more than 2**31 floats; write fewer networks")
    shapes = pa.array([list(a.shape) for a in arrays], type=pa.list_(pa.int32()))
    return shapes, vals


def _groups(kind: str, ids: dict[int, str], records: list[NetworkRecord]) -> Iterable[dict]:
    """Yield column dicts, one per row group, in the file's sort order."""
    recs = sorted(records, key=lambda r: r.seed)
    rows: list[tuple[NetworkRecord, Any]]
    if kind == "weights":
        keys = sorted(
            {("init", n) for r in recs for n in r.weights_init}
            | {("final", n) for r in recs for n in r.weights_final}
        )
        for stage, name in keys:
            rows = [
                (r, (r.weights_init if stage == "init" else r.weights_final)[name])
                for r in recs
                if name in (r.weights_init if stage == "init" else r.weights_final)
            ]
            yield {"stage": stage, "name": name, "rows": rows}
    elif kind in ("trajectories", "outputs"):
        probes = sorted({p for r in recs for p in getattr(r, kind)})
        for probe in probes:
            rows = [(r, getattr(r, kind)[probe]) for r in recs if probe in getattr(r, kind)]
            yield {"probe": probe, "rows": rows}
    elif kind == "curves":
        rows = [(r, None) for r in recs if r.curve is not None]
        if rows:
            yield {"rows": rows}


def build_table(
    kind: str, records: list[NetworkRecord], ids: dict[int, str], ensemble_id: str, task: str
) -> list[pa.Table]:
    """The row groups (as tables) of one ensemble's file of `kind`; empty if it has no such data."""
    schema = ARRAY_SCHEMAS[kind]
    tables = []
    for group in _groups(kind, ids, records):
        rows = group.pop("rows")
        if kind == "curves":
            n = [len(np.asarray(r.curve["step"])) for r, _ in rows]
            cols = {
                "network_id": np.repeat([ids[r.seed] for r, _ in rows], n),
                "ensemble_id": [ensemble_id] * sum(n),
                "task": [task] * sum(n),
                "seed": np.repeat([r.seed for r, _ in rows], n).astype(np.int64),
                "step": np.concatenate([np.asarray(r.curve["step"], np.int64) for r, _ in rows]),
                "loss": np.concatenate([np.asarray(r.curve["loss"], np.float32) for r, _ in rows]),
                "lr": np.concatenate([np.asarray(r.curve["lr"], np.float32) for r, _ in rows]),
            }
        else:
            shapes, values = _array_column([a for _, a in rows])
            cols = {
                "network_id": [ids[r.seed] for r, _ in rows],
                "ensemble_id": [ensemble_id] * len(rows),
                "task": [task] * len(rows),
                "seed": [int(r.seed) for r, _ in rows],
                **{k: [v] * len(rows) for k, v in group.items()},
                "shape": shapes,
                "values": values,
            }
        tables.append(pa.table({f.name: cols[f.name] for f in schema}, schema=schema))
    return tables


def write_atomic(path: Path, schema: pa.Schema, tables: list[pa.Table]) -> None:
    """Write the row groups to a temp file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with pq.ParquetWriter(
            tmp, schema, use_byte_stream_split=_byte_stream_split(schema), **WRITE_OPTIONS
        ) as writer:
            for t in tables:
                writer.write_table(t, row_group_size=max(t.num_rows, 1))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def fingerprint(path: Path) -> dict[str, int | str]:
    """What `check` compares a data file against later: its rows (from the Parquet footer),
    its size and its SHA-256."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {
        "rows": int(pq.ParquetFile(path).metadata.num_rows),
        "bytes": path.stat().st_size,
        "sha256": digest.hexdigest(),
    }


def write_placeholder(path: Path, schema: pa.Schema) -> None:
    write_atomic(path, schema, [])


def _matching_row_groups(pf: pq.ParquetFile, where: dict[str, str]) -> list[int]:
    """Row groups whose statistics say every row has the wanted key values."""
    md = pf.metadata
    names = pf.schema_arrow.names
    out = []
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        ok = True
        for col, want in where.items():
            st = rg.column(names.index(col)).statistics
            if st is None or not st.has_min_max:
                ok = True  # cannot tell: read it and filter rows
                continue
            if not (st.min <= want <= st.max):
                ok = False
                break
        if ok and rg.num_rows:
            out.append(i)
    return out


def _damaged(path: Path, exc: BaseException):
    from degeneracy.registry.errors import RegistryError

    what = "missing" if isinstance(exc, FileNotFoundError) else "unreadable"
    return RegistryError(f"a registered data file is {what}: {path}; run `degeneracy check`")


def read_arrays(path: Path, where: dict[str, str], wanted: set[str]) -> dict[str, np.ndarray]:
    """network_id -> array, for the rows of one file matching `where` (e.g. stage/name).
    A missing or damaged file is a RegistryError naming `check`."""
    try:
        pf = pq.ParquetFile(path)
        groups = _matching_row_groups(pf, where)
        if not groups:
            return {}
        tb = pf.read_row_groups(
            groups, columns=["network_id", *where, "shape", "values"], use_threads=False
        )
    except (OSError, pa.ArrowException) as exc:
        raise _damaged(path, exc) from exc
    mask = np.ones(tb.num_rows, dtype=bool)
    for col, want in where.items():
        mask &= np.asarray(tb.column(col).to_pylist(), dtype=object) == want
    ids = tb.column("network_id").to_pylist()
    shapes = tb.column("shape").to_pylist()
    values = tb.column("values").combine_chunks()
    flat = values.flatten().to_numpy(zero_copy_only=False)
    out: dict[str, np.ndarray] = {}
    start = 0
    for i, (nid, shape) in enumerate(zip(ids, shapes)):
        size = int(np.prod(shape)) if shape else 1
        if mask[i] and nid in wanted:
            out[nid] = flat[start : start + size].reshape(shape)
        start += size
    return out


def read_curves(path: Path, wanted: set[str]) -> pa.Table:
    try:
        tb = pq.read_table(path, columns=["network_id", "seed", "step", "loss", "lr"])
    except (OSError, pa.ArrowException) as exc:
        raise _damaged(path, exc) from exc
    keep = np.isin(np.asarray(tb.column("network_id").to_pylist(), dtype=object), list(wanted))
    return tb.filter(pa.array(keep))
