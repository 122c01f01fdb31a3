"""`check`: is the registry whole? Catalog against files, and the safe repairs.

Findings, each with the paths involved:
- missing: a file the catalog registers is gone (queries over that kind fail until it is back);
- unreadable: a registered file exists but is not valid Parquet;
- changed: a registered file's rows, size or SHA-256 differ from what was recorded when it was
  written (damaged, or replaced by hand);
- duplicate: a row key (network and stage/name, probe or step) more than once in the views;
- dangling: `networks` rows whose ensemble the catalog does not list (their data is unreachable);
- pending: a finished write whose catalog rows are not in yet (a reader held the catalog, or
  the process died between files and catalog);
- orphan: a data file neither registered nor pending (a crash before its journal entry);
- temp: a `.tmp` file (or a temporary catalog's `.tmp.wal`) left by an interrupted write;
- placeholder: an empty per-kind file the views bind to is gone;
- catalog: the catalog itself cannot be opened or read (damaged, or locked by a writer).

Files written before schema 5 have no recorded fingerprint: they are listed under
`unrecorded` (a note, not a problem) and `--repair` records them as they are now.

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

KINDS = (
    "catalog",
    "missing",
    "unreadable",
    "changed",
    "duplicate",
    "dangling",
    "pending",
    "orphan",
    "temp",
    "placeholder",
)
NOTES = ("unrecorded",)  # listed, but not problems
#: the columns that identify one row of each array kind (with network_id)
ROW_KEYS = {"weights": "stage, name", "trajectories": "probe", "outputs": "probe", "curves": "step"}


@dataclass
class CheckResult:
    findings: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS + NOTES})
    ensembles: int = 0
    files: int = 0
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.findings[k] for k in KINDS)


def _registered(registry: Registry) -> dict[str, list[tuple[str, str]]]:
    """ensemble_id -> [(kind, relative path)] as the catalog has them."""
    return _catalog(registry)[0]


def _catalog(registry: Registry) -> tuple[dict, dict, list[str]]:
    """(ensemble_id -> [(kind, relative path)], relative path -> recorded fingerprint,
    dangling network rows described)."""
    import duckdb

    con = open_catalog(registry.layout.catalog, read_only=True)
    try:
        cols = ", ".join(f"{k}_file" for k in ARRAY_KINDS)
        rows = con.execute(f"SELECT ensemble_id, {cols} FROM ensembles").fetchall()
        has_files = con.execute(  # schema 5; an older catalog is upgraded by any command
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'files'"
        ).fetchone()[0]
        sql = "SELECT path, rows, bytes, sha256 FROM files"
        prints = {
            p: {"rows": r, "bytes": b, "sha256": h}
            for p, r, b, h in (con.execute(sql).fetchall() if has_files else [])
        }
        dangling = con.execute(
            "SELECT ensemble_id, count(*) FROM networks WHERE ensemble_id NOT IN "
            "(SELECT ensemble_id FROM ensembles) GROUP BY ALL ORDER BY 1"
        ).fetchall()
    except duckdb.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RegistryError(f"catalog unreadable: {first}") from exc
    finally:
        con.close()
    files = {r[0]: [(k, f) for k, f in zip(ARRAY_KINDS, r[1:]) if f is not None] for r in rows}
    unlisted = [f"{n} network row(s) of unlisted ensemble {e}" for e, n in dangling]
    return files, prints, unlisted


def _duplicates(registry: Registry) -> list[str]:
    """Row keys present more than once in each array view (read from the key columns only)."""
    out = []
    with registry.connect(read_only=True) as con:
        for kind, key in ROW_KEYS.items():
            n = con.execute(
                f"SELECT count(*) FROM (SELECT network_id, {key} FROM {kind} "
                "GROUP BY ALL HAVING count(*) > 1)"
            ).fetchone()[0]
            if n:
                out.append(f"{kind}: {n} row key(s) stored more than once")
    return out


def check(registry: Registry) -> CheckResult:
    from degeneracy.registry.parquet_files import fingerprint

    layout = registry.layout
    res = CheckResult()
    try:
        registered, prints, res.findings["dangling"] = _catalog(registry)
    except RegistryError as exc:  # damaged or locked: say so, check the files still
        res.findings["catalog"].append(str(exc))
        registered, prints = {}, {}
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
                now = fingerprint(path)  # reads the Parquet footer: fails on a damaged file
            except Exception:  # any parse failure: damaged
                res.findings["unreadable"].append(rel)
                continue
            if rel not in prints:
                res.findings["unrecorded"].append(rel)
            elif now != prints[rel]:
                what = [k for k in ("rows", "bytes", "sha256") if now[k] != prints[rel][k]]
                res.findings["changed"].append(f"{rel} ({', '.join(what)} differ)")
    for entry in sorted(layout.pending.glob("*.json")) if layout.pending.exists() else []:
        res.findings["pending"].append(layout.relative(entry))
        try:
            files = json.loads(entry.read_text())["files"].values()
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # not a journal entry: --repair sets it aside
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
    res.findings["temp"] = sorted(  # a write's temporary file; a catalog's also has a WAL
        layout.relative(p)
        for pattern in (".*.tmp", ".*.tmp.wal")
        for p in layout.root.rglob(pattern)
        if p.is_file()
    )
    whole = not any(res.findings[k] for k in ("catalog", "missing", "unreadable", "placeholder"))
    if whole:  # the views read every registered file only when all are there
        try:
            res.findings["duplicate"] = _duplicates(registry)
        except Exception as exc:  # a file that fails mid-read: say so, do not crash
            res.findings["unreadable"].append(f"views: {str(exc).strip().splitlines()[0]}")
    return res


def repair(registry: Registry, drop_missing: bool = False) -> CheckResult:
    """Apply the safe repairs (see the module docstring), then check again."""
    from degeneracy.registry.parquet_files import write_placeholder
    from degeneracy.registry.writer import register_pending
    from degeneracy.schema.arrays import ARRAY_SCHEMAS
    from degeneracy.schema.catalog import create_views

    layout = registry.layout
    before = check(registry)
    if not before.findings["catalog"]:  # a readable catalog of an older schema: upgrade it
        type(registry).open(registry.root)
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
    if before.findings["unrecorded"]:
        from degeneracy.registry.parquet_files import fingerprint
        from degeneracy.registry.writer import record_files

        owner = {rel: (eid, kind) for eid, fs in _registered(registry).items() for kind, rel in fs}
        with registry.transaction() as con:
            for rel in before.findings["unrecorded"]:
                eid, kind = owner[rel]
                record_files(con, eid, {kind: rel}, {kind: fingerprint(layout.absolute(rel))})
        done.append(f"recorded fingerprints of {len(before.findings['unrecorded'])} file(s)")
    if before.findings["pending"]:
        aside: list[str] = []
        done += [
            f"registered pending ensemble {e}" for e in register_pending(registry, None, aside)
        ]
        done += [f"moved {rel} to quarantine/ (not a readable journal entry)" for rel in aside]
    changed = {c.split(" (", 1)[0] for c in before.findings["changed"]}
    bad = set(before.findings["missing"]) | set(before.findings["unreadable"]) | changed
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
            for table in ("ensembles", "files"):
                con.execute(
                    f"DELETE FROM {table} WHERE ensemble_id IN (SELECT unnest(?::VARCHAR[]))",
                    [drop],
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
            f"{len(bad)} registered file(s) missing, damaged or changed: restore them, or pass "
            "--drop-missing to unregister their ensembles"
        )
    after = check(registry)
    after.repaired = done
    return after


def summary_rows(res: CheckResult) -> list[tuple[str, int, str]]:
    """(finding, count, first few paths) for printing."""
    out = []
    for kind in KINDS + NOTES:
        items = res.findings[kind]
        shown = ", ".join(items[:3]) + (f" (+{len(items) - 3} more)" if len(items) > 3 else "")
        out.append((kind, len(items), shown))
    return out
