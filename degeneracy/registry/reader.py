"""Reading stored arrays back: stacked per network, one row group per file where possible."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from degeneracy.registry.errors import RegistryError
from degeneracy.registry.exchange import read_parquet, records_from_tables
from degeneracy.registry.parquet_files import read_arrays, read_curves
from degeneracy.registry.records import Condition, NetworkRecord
from degeneracy.schema.kinds import ARRAY_KINDS

if TYPE_CHECKING:
    from degeneracy.registry.store import Registry


def files_of(registry: Registry, ids: Sequence[str], kind: str) -> dict[str, list[str]]:
    """Data file (absolute) -> the requested network ids stored in it.

    (`Registry.data_files` keeps the id -> file map.)
    """
    found = registry.data_files(ids, kind)
    missing = [i for i in ids if i not in found]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise RegistryError(f"no network {missing[0]} in {registry.root}{more}")
    lacking = [i for i in ids if found[i] is None]
    if lacking:
        raise RegistryError(f"network {lacking[0]} has no stored {kind}")
    by_file: dict[str, list[str]] = {}
    for i in dict.fromkeys(ids):
        by_file.setdefault(str(registry.layout.absolute(str(found[i]))), []).append(i)
    return by_file


def stack(registry: Registry, ids: Sequence[str], kind: str, where: dict[str, str]) -> np.ndarray:
    """One array per network (rows matching `where`), stacked in the order of `ids`."""
    ids = list(ids)
    got: dict[str, np.ndarray] = {}
    for path, members in files_of(registry, ids, kind).items():
        got.update(read_arrays(Path(path), where, set(members)))
    missing = [i for i in ids if i not in got]
    if missing:
        what = ", ".join(f"{k}={v}" for k, v in where.items())
        raise RegistryError(f"network {missing[0]} has no {kind} row with {what}")
    shapes = {got[i].shape for i in ids}
    if len(shapes) > 1:
        raise RegistryError(f"cannot stack {kind} of different shapes: {sorted(shapes)}")
    return np.stack([got[i] for i in ids]) if ids else np.zeros((0,), np.float32)


def curves(registry: Registry, ids: Sequence[str]):
    import polars as pl

    tables = [read_curves(Path(p), set(m)) for p, m in files_of(registry, ids, "curves").items()]
    if not tables:
        return pl.DataFrame(
            schema={
                "network_id": pl.String,
                "seed": pl.Int64,
                "step": pl.Int64,
                "loss": pl.Float32,
                "lr": pl.Float32,
            }
        )
    frame = pl.from_arrow(pa.concat_tables(tables))
    assert isinstance(frame, pl.DataFrame)  # a table gives a frame (a Series only from arrays)
    return frame.sort("network_id", "step")


def ensemble_tables(
    registry: Registry, ensemble_id: str
) -> tuple[Condition, list[dict[str, Any]], dict[str, pa.Table]]:
    """(condition, per-network summaries, kind -> table without the id columns)."""
    with registry.connect(read_only=True) as con:
        row = con.execute(
            "SELECT condition, weights_file, trajectories_file, outputs_file, curves_file "
            "FROM ensembles WHERE ensemble_id = ?",
            [ensemble_id],
        ).fetchone()
        if row is None:
            raise RegistryError(f"no ensemble {ensemble_id} in {registry.root}")
        nets = con.execute(
            "SELECT seed, steps, final_loss, ood_loss, converged, train_loss FROM networks "
            "WHERE ensemble_id = ? ORDER BY seed",
            [ensemble_id],
        ).fetchall()
    keys = ("seed", "steps", "final_loss", "ood_loss", "converged", "train_loss")
    summaries = [dict(zip(keys, n)) for n in nets]
    tables = {
        kind: read_parquet(registry.layout.absolute(rel)).drop_columns(
            ["network_id", "ensemble_id", "task"]
        )
        for kind, rel in zip(ARRAY_KINDS, row[1:])
        if rel is not None
    }
    return Condition.from_dict(json.loads(row[0])), summaries, tables


def load_records(registry: Registry, ensemble_id: str) -> tuple[Condition, list[NetworkRecord]]:
    condition, summaries, tables = ensemble_tables(registry, ensemble_id)
    return condition, records_from_tables(summaries, tables, ensemble_id)
