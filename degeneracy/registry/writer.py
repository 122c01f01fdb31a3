"""Writing an ensemble: Parquet files first (atomic), then catalog rows in one transaction."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from degeneracy import __version__
from degeneracy.registry import ids as idlib
from degeneracy.registry.connection import open_catalog
from degeneracy.registry.parquet_files import build_table, write_atomic
from degeneracy.registry.records import Condition, NetworkRecord
from degeneracy.registry.validate import validate_records
from degeneracy.schema.arrays import ARRAY_SCHEMAS
from degeneracy.schema.kinds import ARRAY_KINDS
from degeneracy.schema.tables import NETWORKS

if TYPE_CHECKING:
    from degeneracy.registry.store import Registry


@dataclass
class WriteSummary:
    """What `write_ensemble` did: the new ensemble (None if nothing was new) and network ids."""

    ensemble_id: str | None
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def write_ensemble(
    registry: Registry,
    condition: Condition,
    records: list[NetworkRecord],
    sweep_id: str | None = None,
    source: str = "trained",
) -> WriteSummary:
    """See `Registry.write_ensemble`."""
    validate_records(condition, records, source)
    cond = condition.to_dict()
    nid = {r.seed: idlib.network_id(cond, r.seed) for r in records}
    layout = registry.layout
    con = open_catalog(layout.catalog, read_only=False)
    written: list[Path] = []
    try:
        present = {
            row[0]
            for row in con.execute(
                "SELECT network_id FROM networks WHERE network_id IN (SELECT unnest(?::VARCHAR[]))",
                [list(nid.values())],
            ).fetchall()
        }
        new = [r for r in records if nid[r.seed] not in present]
        summary = WriteSummary(None, [], sorted(present))
        if not new:
            return summary
        eid = idlib.ensemble_id(cond, [r.seed for r in new])
        files: dict[str, str | None] = {}
        for kind in ARRAY_KINDS:
            tables = build_table(kind, new, nid, eid, condition.task)
            if not tables:
                files[kind] = None
                continue
            path = layout.ensemble_file(kind, condition.task, eid)
            existed = path.exists()
            write_atomic(path, ARRAY_SCHEMAS[kind], tables)
            if not existed:
                written.append(path)
            files[kind] = layout.relative(path)
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "INSERT INTO ensembles VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?, ?)",
            [
                eid,
                condition.task,
                idlib.canonical_json(cond),
                len(new),
                sweep_id,
                source,
                files["weights"],
                files["trajectories"],
                files["outputs"],
                files["curves"],
            ],
        )
        con.register("new_networks", network_rows(condition, new, nid, eid, source))
        con.execute("INSERT INTO networks SELECT * FROM new_networks")
        con.unregister("new_networks")
        con.execute("COMMIT")
        written = []
        summary.ensemble_id = eid
        summary.written = sorted(nid[r.seed] for r in new)
        return summary
    except BaseException:
        with suppress(Exception):
            con.execute("ROLLBACK")
        for path in written:  # files this call created; the catalog never saw them
            path.unlink(missing_ok=True)
        raise
    finally:
        con.close()


def network_rows(
    condition: Condition, records: list[NetworkRecord], nid: dict[int, str], eid: str, source: str
) -> pa.Table:
    """The `networks` rows of one ensemble, as an Arrow table of the catalog's schema."""

    def opt(v, cast):
        return None if v is None else cast(v)

    now = np.datetime64("now", "us").astype(object)
    rows = [
        {
            "network_id": nid[r.seed],
            "ensemble_id": eid,
            "task": condition.task,
            "seed": int(r.seed),
            "hidden_size": condition.hidden_size,
            "complexity": condition.complexity,
            "regime": condition.regime,
            "gamma": condition.gamma,
            "l1": condition.l1,
            "nuclear": condition.nuclear,
            "factors": idlib.canonical_json(dict(condition.factors)),
            "steps": opt(r.steps, int),
            "final_loss": opt(r.final_loss, float),
            "ood_loss": opt(r.ood_loss, float),
            "converged": opt(r.converged, bool),
            "source": source,
            "created_at": now,
            "code_version": __version__,
            "train_loss": opt(r.train_loss, float),
        }
        for r in sorted(records, key=lambda r: r.seed)
    ]
    return pa.Table.from_pylist(rows, schema=NETWORKS)
