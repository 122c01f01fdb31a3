"""The exchange format: one folder per ensemble, for networks trained elsewhere or shared.

    <folder>/ensemble.json        {"format": "degeneracy-exchange", "version": 1,
                                   "condition": {...}, "networks": [{"seed": 0, ...}, ...]}
    <folder>/weights.parquet      seed, stage, name, shape, values        (required)
    <folder>/trajectories.parquet seed, probe, shape, values              (optional)
    <folder>/outputs.parquet      seed, probe, shape, values              (optional)
    <folder>/curves.parquet       seed, step, loss, lr                    (optional)

The Parquet columns are those of the registry's own data files (extra columns are ignored),
so `export_ensemble` is a copy of stored files plus the JSON manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from degeneracy.registry.errors import RegistryError
from degeneracy.registry.parquet_files import write_atomic
from degeneracy.registry.records import Condition, NetworkRecord
from degeneracy.schema.arrays import ARRAY_KINDS

MANIFEST = "ensemble.json"
FORMAT = "degeneracy-exchange"
VERSION = 1

_KEY_COLUMNS = {"weights": ("stage", "name"), "trajectories": ("probe",), "outputs": ("probe",)}
_SUMMARY = ("steps", "final_loss", "ood_loss", "converged", "train_loss")


def read_parquet(path: Path) -> pa.Table:
    """Read a whole Parquet file; a damaged or foreign file is a RegistryError."""
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        text = str(exc).strip().splitlines()
        raise RegistryError(
            f"{path}: not a readable Parquet file ({text[0] if text else type(exc).__name__})"
        ) from exc


def _require(table: pa.Table, path: Path, columns: dict[str, str]) -> None:
    checks = {
        "int": pa.types.is_integer,
        "str": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
        "float": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
        "int_list": lambda t: pa.types.is_list(t) and pa.types.is_integer(t.value_type),
        "float_list": lambda t: (
            (pa.types.is_list(t) or pa.types.is_large_list(t))
            and pa.types.is_floating(t.value_type)
        ),
    }
    for name, kind in columns.items():
        if name not in table.column_names:
            raise RegistryError(
                f"{path}: missing column {name!r} (has: {', '.join(table.column_names)})"
            )
        typ = table.schema.field(name).type
        if not checks[kind](typ):
            raise RegistryError(
                f"{path}: column {name!r} has type {typ}, expected {kind.replace('_', ' ')}"
            )
        if table.column(name).null_count:
            raise RegistryError(f"{path}: column {name!r} has missing values")


def records_from_tables(
    summaries: list[dict[str, Any]], tables: dict[str, pa.Table], where: str = "exchange"
) -> list[NetworkRecord]:
    """Rebuild per-network records from tables in the store/exchange column layout."""
    by_seed: dict[int, NetworkRecord] = {}
    for s in summaries:
        seed = s.get("seed")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise RegistryError(f"{where}: every network needs an integer seed, got {seed!r}")
        unknown = set(s) - {"seed", *_SUMMARY}
        if unknown:
            raise RegistryError(f"{where}: unknown network field(s) {', '.join(sorted(unknown))}")
        summary: dict[str, Any] = {k: s.get(k) for k in _SUMMARY}
        by_seed[seed] = NetworkRecord(seed=seed, weights_final={}, **summary)
    for kind in ARRAY_KINDS:
        table = tables.get(kind)
        if table is None:
            continue
        src = Path(f"{where}/{kind}.parquet") if isinstance(where, str) else where
        if kind == "curves":
            _require(table, src, {"seed": "int", "step": "int", "loss": "float", "lr": "float"})
            seeds = table.column("seed").to_numpy()
            cols = {k: table.column(k).to_numpy() for k in ("step", "loss", "lr")}
            for seed in np.unique(seeds):
                rec = _record(by_seed, int(seed), src)
                m = seeds == seed
                rec.curve = {k: v[m] for k, v in cols.items()}
            continue
        keys = _KEY_COLUMNS[kind]
        _require(
            table,
            src,
            {
                "seed": "int",
                **{k: "str" for k in keys},
                "shape": "int_list",
                "values": "float_list",
            },
        )
        values = table.column("values").combine_chunks()
        flat = values.flatten().to_numpy(zero_copy_only=False)
        lengths = values.value_lengths().to_numpy(zero_copy_only=False)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        seeds = table.column("seed").to_pylist()
        shapes = table.column("shape").to_pylist()
        keyvals = [table.column(k).to_pylist() for k in keys]
        for i, seed in enumerate(seeds):
            shape = tuple(shapes[i])
            if any(d < 0 for d in shape) or int(np.prod(shape)) != lengths[i]:
                raise RegistryError(
                    f"{src}: row {i} (seed {seed}) has shape {list(shape)} but {lengths[i]} values"
                )
            arr = flat[starts[i] : starts[i] + lengths[i]].astype(np.float32).reshape(shape)
            rec = _record(by_seed, seed, src)
            if kind == "weights":
                stage, name = keyvals[0][i], keyvals[1][i]
                if stage not in ("init", "final"):
                    raise RegistryError(f"{src}: stage must be 'init' or 'final', got {stage!r}")
                target = rec.weights_init if stage == "init" else rec.weights_final
            else:
                name = keyvals[0][i]
                target = getattr(rec, kind)
            if name in target:
                raise RegistryError(f"{src}: seed {seed} has {name!r} twice")
            target[name] = arr
    return [by_seed[s] for s in sorted(by_seed)]


def _record(by_seed: dict[int, NetworkRecord], seed: int, src: Path) -> NetworkRecord:
    if seed not in by_seed:
        raise RegistryError(f"{src}: seed {seed} is not listed in {MANIFEST}")
    return by_seed[seed]


def read_exchange(folder: Path) -> tuple[Condition, list[NetworkRecord]]:
    """Load and check an exchange folder (nothing is written)."""
    manifest = folder / MANIFEST
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{manifest}: not readable JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RegistryError(f"{manifest}: 'format' must be {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise RegistryError(f"{manifest}: unsupported exchange version {meta.get('version')!r}")
    if not isinstance(meta.get("condition"), dict) or not isinstance(meta.get("networks"), list):
        raise RegistryError(f"{manifest}: needs a 'condition' object and a 'networks' list")
    try:
        condition = Condition.from_dict(meta["condition"])
    except (TypeError, RegistryError) as exc:
        raise RegistryError(f"{manifest}: {exc}") from exc
    if not (folder / "weights.parquet").exists():
        raise RegistryError(f"{folder}: missing weights.parquet")
    tables = {
        kind: read_parquet(folder / f"{kind}.parquet")
        for kind in ARRAY_KINDS
        if (folder / f"{kind}.parquet").exists()
    }
    if any(not isinstance(n, dict) for n in meta["networks"]):
        raise RegistryError(f"{manifest}: each entry of 'networks' must be an object")
    return condition, records_from_tables(meta["networks"], tables, str(folder))


def write_exchange(
    folder: Path, condition: Condition, summaries: list[dict[str, Any]], tables: dict[str, pa.Table]
) -> None:
    """Write an exchange folder from store-layout tables (used by `Registry.export_ensemble`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for kind, table in tables.items():
        write_atomic(folder / f"{kind}.parquet", table.schema, [table])
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "condition": condition.to_dict(),
        "networks": summaries,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
