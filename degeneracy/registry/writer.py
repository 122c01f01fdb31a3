"""Writing an ensemble: Parquet files first (atomic), then catalog rows in one transaction."""

from __future__ import annotations

import functools
import json
import os
import signal
import threading
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from degeneracy import __version__
from degeneracy.registry import ids as idlib
from degeneracy.registry.connection import open_catalog
from degeneracy.registry.errors import PendingWrite, RegistryError
from degeneracy.registry.layout import stale_temps, temp_path
from degeneracy.registry.parquet_files import build_table, fingerprint, write_atomic
from degeneracy.registry.records import Condition, NetworkRecord
from degeneracy.registry.validate import validate_records
from degeneracy.schema.arrays import ARRAY_SCHEMAS
from degeneracy.schema.catalog import create_views
from degeneracy.schema.kinds import ARRAY_KINDS
from degeneracy.schema.tables import NETWORKS

if TYPE_CHECKING:
    from degeneracy.registry.store import Registry


@dataclass
class WriteSummary:
    """What `write_ensemble` did: the new ensemble (None if nothing was new) and network ids.
    `pending`: the networks are on disk but their rows wait in pending/ (a locked catalog)."""

    ensemble_id: str | None
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    pending: bool = False


def write_ensemble(
    registry: Registry,
    condition: Condition,
    records: list[NetworkRecord],
    sweep_id: str | None = None,
    source: str = "trained",
) -> WriteSummary:
    """See `Registry.write_ensemble`.

    Order: the Parquet files and a journal entry (`pending/<ensemble>.json` with the catalog
    rows) are written first, then the catalog rows in one transaction, then the entry is
    removed. If the catalog stays locked (a reader holds it) past the timeout, the finished
    networks stay in `pending/` and the next write — or `degeneracy check --repair` —
    registers them: trained work is never thrown away."""
    validate_records(condition, records, source)
    cond = condition.to_dict()
    nid = {r.seed: idlib.network_id(cond, r.seed) for r in records}
    present = _present(registry, list(nid.values()))
    new = [r for r in records if nid[r.seed] not in present]
    summary = WriteSummary(None, [], sorted(present))
    if not new:
        return summary
    eid = idlib.ensemble_id(cond, [r.seed for r in new])
    stage(registry, condition, new, nid, eid, sweep_id, source)
    summary.ensemble_id = eid
    summary.written = sorted(nid[r.seed] for r in new)
    try:
        register_pending(registry)
    except RegistryError as exc:
        summary.pending = True
        raise PendingWrite(
            f"{exc}. The {len(new)} trained network(s) are kept in "
            f"{registry.layout.pending_entry(eid)}; the next write registers them "
            "(or run `degeneracy check --repair`)",
            summary,
        ) from exc
    return summary


def _present(registry: Registry, ids: list[str]) -> set[str]:
    """The ids already in the catalog; none when it cannot be read now (a writer holds it):
    registration checks again under the lock."""
    try:
        con = open_catalog(registry.layout.catalog, read_only=True)
    except RegistryError:
        return set()
    try:
        rows = con.execute(
            "SELECT network_id FROM networks WHERE network_id IN (SELECT unnest(?::VARCHAR[]))",
            [ids],
        ).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


def stage(
    registry: Registry,
    condition: Condition,
    records: list[NetworkRecord],
    nid: dict[int, str],
    eid: str,
    sweep_id: str | None,
    source: str,
) -> Path:
    """Write an ensemble's Parquet files and its journal entry; returns the entry's path.
    Nothing is visible to queries yet (views list registered files only)."""
    layout = registry.layout
    files: dict[str, str | None] = {}
    prints: dict[str, dict] = {}
    created: list[Path] = []
    rows = layout.pending_rows(eid)
    try:
        for kind in ARRAY_KINDS:
            tables = build_table(kind, records, nid, eid, condition.task)
            if not tables:
                files[kind] = None
                continue
            path = layout.ensemble_file(kind, condition.task, eid)
            if not path.exists():
                created.append(path)
            write_atomic(path, ARRAY_SCHEMAS[kind], tables)
            files[kind] = layout.relative(path)
            prints[kind] = fingerprint(path)
        created.append(rows)
        write_atomic(rows, NETWORKS, [network_rows(condition, records, nid, eid, source)])
    except BaseException:  # no journal entry yet: nothing may keep these files
        for path in created:
            path.unlink(missing_ok=True)
        raise
    entry = {
        "ensemble_id": eid,
        "task": condition.task,
        "condition": idlib.canonical_json(condition.to_dict()),
        "n_networks": len(records),
        "sweep_id": sweep_id,
        "source": source,
        "files": files,
        "fingerprints": prints,
        "rows": layout.relative(rows),
    }
    path = layout.pending_entry(eid)
    tmp = temp_path(path)
    tmp.write_text(json.dumps(entry, sort_keys=True))
    os.replace(tmp, path)
    return path


def _entries(layout) -> list[Path]:
    """Journal entries, oldest first (an entry removed while listing is skipped)."""
    out = []
    for p in layout.pending.glob("*.json") if layout.pending.exists() else []:
        with suppress(FileNotFoundError):
            out.append((p.stat().st_mtime, p))
    return [p for _, p in sorted(out)]


#: what every journal entry holds; one without them is garbage, set aside by the next write
ENTRY_KEYS = {"ensemble_id", "rows", "files"}


def quarantine_entry(layout, path: Path) -> Path:
    """Move an unreadable journal entry to quarantine/pending/ (never deleted): it cannot be
    registered, and left in pending/ it would stop every later write."""
    import shutil

    target = layout.root / "quarantine" / "pending" / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), target)
    return target


def register_pending(
    registry: Registry, timeout: float | None = None, set_aside: list[str] | None = None
) -> list[str]:
    """Register every journal entry in `pending/` (oldest first), each in one transaction with
    the views rewritten to list the new files; returns the ensembles registered. An entry
    that cannot be read is moved to quarantine/pending/ (its path appended to `set_aside`)."""
    layout = registry.layout
    for leftover in stale_temps(layout.root):  # a killed write's half file: nothing owns it
        leftover.unlink(missing_ok=True)
    if not _entries(layout):
        return []
    kw = {} if timeout is None else {"timeout": timeout}
    con = open_catalog(layout.catalog, read_only=False, **kw)
    done = []
    try:
        # listed again under the lock: another writer may have registered some meanwhile
        for path in _entries(layout):
            try:
                entry = json.loads(path.read_text())
                if not isinstance(entry, dict) or not ENTRY_KEYS <= set(entry):
                    raise ValueError("not a journal entry")
            except FileNotFoundError:  # registered (and removed) by that writer just now
                continue
            except (OSError, ValueError):  # garbage: set aside, never fatal to a write
                quarantine_entry(layout, path)
                if set_aside is not None:
                    set_aside.append(layout.relative(path))
                continue
            with sigint_deferred():
                if _register_entry(con, layout, path, entry):
                    done.append(entry["ensemble_id"])
    finally:
        con.close()
    return done


@contextmanager
def sigint_deferred():
    """Hold Ctrl-C (and the SIGTERM handler the CLI maps onto it) until the block ends, then
    raise KeyboardInterrupt. Registering one ensemble takes milliseconds; interrupting DuckDB in
    the middle surfaces as a bare `RuntimeError: Query interrupted` and throws the transaction
    away. Outside the main thread (where signals cannot be handled) the block runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        raise KeyboardInterrupt


def _register_entry(con, layout, path: Path, entry: dict) -> bool:
    """One journal entry's catalog rows in one transaction, then the entry removed; False when
    an earlier replay had registered it."""
    eid = entry["ensemble_id"]
    rows = layout.absolute(entry["rows"])
    new = False
    con.execute("BEGIN TRANSACTION")
    try:
        if con.execute("SELECT 1 FROM ensembles WHERE ensemble_id = ?", [eid]).fetchone():
            con.execute("ROLLBACK")  # registered by an earlier replay
        else:
            table = pq.read_table(rows)
            clash = con.execute(
                "SELECT count(*) FROM networks WHERE network_id IN (SELECT unnest(?::VARCHAR[]))",
                [table.column("network_id").to_pylist()],
            ).fetchone()[0]
            if clash:
                raise RegistryError(
                    f"{path}: {clash} of its networks were registered by another "
                    "write meanwhile; `degeneracy check` lists it"
                )
            f = entry["files"]
            con.execute(
                "INSERT INTO ensembles VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?, ?)",
                [
                    eid,
                    entry["task"],
                    entry["condition"],
                    entry["n_networks"],
                    entry["sweep_id"],
                    entry["source"],
                    f.get("weights"),
                    f.get("trajectories"),
                    f.get("outputs"),
                    f.get("curves"),
                ],
            )
            record_files(con, eid, f, entry.get("fingerprints", {}))
            con.register("new_networks", table)
            con.execute("INSERT INTO networks BY NAME SELECT * FROM new_networks")
            con.unregister("new_networks")
            create_views(con, str(layout.data))
            con.execute("COMMIT")
            new = True
    except BaseException:
        with suppress(Exception):
            con.execute("ROLLBACK")
        raise
    path.unlink(missing_ok=True)
    rows.unlink(missing_ok=True)
    return new


def record_files(con, eid: str, files: dict, prints: dict) -> None:
    """`files` rows for an ensemble's data files (those with a fingerprint; journal entries
    written before schema 5 have none)."""
    for kind, rel in files.items():
        fp = prints.get(kind)
        if rel and fp:
            con.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
                [rel, eid, kind, fp["rows"], fp["bytes"], fp["sha256"]],
            )


@functools.cache
def software() -> dict[str, str | None]:
    """The package version and git commit ("+dirty" with uncommitted changes; None outside a
    checkout), and the versions of the libraries that shape the numbers."""
    import platform
    import subprocess

    import duckdb

    here = Path(__file__).resolve().parent
    try:
        run = functools.partial(
            subprocess.run, cwd=here, capture_output=True, text=True, timeout=5, check=True
        )
        commit = run(["git", "rev-parse", "--short=12", "HEAD"]).stdout.strip() or None
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
        if commit and dirty:
            commit += "+dirty"
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "degeneracy": __version__,
        "git": commit,
        "duckdb": duckdb.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


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
            "provenance": idlib.canonical_json({**r.provenance, **software()}),
        }
        for r in sorted(records, key=lambda r: r.seed)
    ]
    return pa.Table.from_pylist(rows, schema=NETWORKS)
