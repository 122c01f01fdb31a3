"""`check`: is the registry whole? Catalog against files, and the safe repairs.

Findings, each with the paths involved:
- missing: a file the catalog registers is gone (queries over that kind fail until it is back);
- unreadable: a registered file exists but is not valid Parquet;
- pending: a finished write whose catalog rows are not in yet (a reader held the catalog, or
  the process died between files and catalog);
- orphan: a data file neither registered nor pending (a crash before its journal entry);
- temp: a `.tmp` file left by an interrupted write;
- placeholder: an empty per-kind file the views bind to is gone;
- catalog: the catalog itself cannot be opened or read (damaged, or locked by a writer).

Repairs never delete data: pending entries are registered, orphans are moved to
`quarantine/`, temp files removed, placeholders rewritten; ensembles with missing files are
unregistered only with `drop_missing` (their data is already gone).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from degeneracy.registry.connection import open_catalog
from degeneracy.registry.errors import RegistryError
from degeneracy.schema.kinds import ARRAY_KINDS

if TYPE_CHECKING:
    from degeneracy.registry.store import Registry

KINDS = ("catalog", "missing", "unreadable", "pending", "orphan", "temp", "placeholder")


@dataclass
class CheckResult:
    findings: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})
    ensembles: int = 0
    files: int = 0
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.findings.values())


def _registered(registry: Registry) -> dict[str, list[tuple[str, str]]]:
    """ensemble_id -> [(kind, relative path)] as the catalog has them."""
    import duckdb

    con = open_catalog(registry.layout.catalog, read_only=True)
    try:
        cols = ", ".join(f"{k}_file" for k in ARRAY_KINDS)
        rows = con.execute(f"SELECT ensemble_id, {cols} FROM ensembles").fetchall()
    except duckdb.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RegistryError(f"catalog unreadable: {first}") from exc
    finally:
        con.close()
    return {r[0]: [(k, f) for k, f in zip(ARRAY_KINDS, r[1:]) if f is not None] for r in rows}


def check(registry: Registry) -> CheckResult:
    import pyarrow.parquet as pq

    layout = registry.layout
    res = CheckResult()
    try:
        registered = _registered(registry)
    except RegistryError as exc:  # damaged or locked: say so, check the files still
        res.findings["catalog"].append(str(exc))
        registered = {}
    res.ensembles = len(registered)
    known: set[Path] = set()
    for _eid, files in sorted(registered.items()):
        for _kind, rel in files:
            path = layout.absolute(rel)
            known.add(path)
            res.files += 1
            if not path.exists():
                res.findings["missing"].append(rel)
                continue
            try:
                pq.ParquetFile(path).metadata  # noqa: B018 - reading the footer is the check
            except Exception:  # any parse failure: damaged
                res.findings["unreadable"].append(rel)
    for entry in sorted(layout.pending.glob("*.json")) if layout.pending.exists() else []:
        res.findings["pending"].append(layout.relative(entry))
        try:
            files = json.loads(entry.read_text())["files"].values()
        except (OSError, ValueError, KeyError):
            continue
        known |= {layout.absolute(f) for f in files if f}
    for kind in ARRAY_KINDS:
        placeholder = layout.placeholder(kind)
        if not placeholder.exists():
            res.findings["placeholder"].append(layout.relative(placeholder))
    placeholders = {layout.placeholder(k) for k in ARRAY_KINDS}
    unknown = bool(res.findings["catalog"])  # without the catalog no file can be an orphan
    for path in [] if unknown else sorted(layout.data.rglob("*.parquet")):
        if path.name.startswith(".") or path in placeholders:
            continue
        if path not in known:
            res.findings["orphan"].append(layout.relative(path))
    res.findings["temp"] = sorted(
        layout.relative(p) for p in layout.root.rglob(".*.tmp") if p.is_file()
    )
    return res


def repair(registry: Registry, drop_missing: bool = False) -> CheckResult:
    """Apply the safe repairs (see the module docstring), then check again."""
    from degeneracy.registry.parquet_files import write_placeholder
    from degeneracy.registry.writer import register_pending
    from degeneracy.schema.arrays import ARRAY_SCHEMAS
    from degeneracy.schema.catalog import create_views

    layout = registry.layout
    before = check(registry)
    done: list[str] = []
    for rel in before.findings["temp"]:
        layout.absolute(rel).unlink(missing_ok=True)
        done.append(f"removed {rel}")
    for rel in before.findings["placeholder"]:
        kind = Path(rel).parent.name
        write_placeholder(layout.absolute(rel), ARRAY_SCHEMAS[kind])
        done.append(f"rewrote {rel}")

    def quarantine(rels: list[str]) -> None:
        for rel in rels:
            target = layout.root / "quarantine" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(layout.absolute(rel)), target)
            done.append(f"moved {rel} to quarantine/")

    quarantine(before.findings["orphan"])
    if before.findings["pending"]:
        done += [f"registered pending ensemble {e}" for e in register_pending(registry)]
    bad = set(before.findings["missing"]) | set(before.findings["unreadable"])
    if bad and drop_missing:
        drop = sorted(
            eid
            for eid, files in _registered(registry).items()
            if any(rel in bad for _, rel in files)
        )
        with registry.transaction() as con:
            con.execute(
                "DELETE FROM networks WHERE ensemble_id IN (SELECT unnest(?::VARCHAR[]))", [drop]
            )
            con.execute(
                "DELETE FROM ensembles WHERE ensemble_id IN (SELECT unnest(?::VARCHAR[]))", [drop]
            )
            create_views(con, str(layout.data))
        for eid in drop:
            done.append(f"unregistered ensemble {eid} (a data file was missing or damaged)")
        quarantine(check(registry).findings["orphan"])  # the dropped ensembles' other files
    if not drop_missing and not before.findings["catalog"]:  # views as the files now stand
        with registry.transaction() as con:
            create_views(con, str(layout.data))
    if bad and not drop_missing:
        done.append(
            f"{len(bad)} registered file(s) missing or damaged: restore them, or pass "
            "--drop-missing to unregister their ensembles"
        )
    after = check(registry)
    after.repaired = done
    return after


def summary_rows(res: CheckResult) -> list[tuple[str, int, str]]:
    """(finding, count, first few paths) for printing."""
    out = []
    for kind in KINDS:
        items = res.findings[kind]
        shown = ", ".join(items[:3]) + (f" (+{len(items) - 3} more)" if len(items) > 3 else "")
        out.append((kind, len(items), shown))
    return out
