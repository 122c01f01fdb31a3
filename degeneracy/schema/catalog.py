"""DuckDB DDL generated from the Arrow schemas, the pure-SQL views, and schema migrations.

The stored views read the registry's *registered* Parquet files (those `ensembles` lists) by
absolute path, so a plain `duckdb` client resolves them from any working directory, a file
written but never registered (a crash, a pending write) is not read, and a registered file that
went missing is an error rather than fewer rows. Every registration rewrites them in its
transaction; when a registry is moved, opening it read-write with this package rewrites them,
and read-only connections shadow them with TEMP views.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from degeneracy.schema.kinds import ARRAY_KINDS

#: Bump when the catalog layout changes, and add a migration from the previous version.
SCHEMA_VERSION = 5

_DUCK_TYPES = {
    "string": "VARCHAR",
    "int64": "BIGINT",
    "int32": "INTEGER",
    "double": "DOUBLE",
    "float": "FLOAT",
    "bool": "BOOLEAN",
    "timestamp[us]": "TIMESTAMP",
    "binary": "BLOB",
}


def table_ddl(name: str) -> str:
    """CREATE TABLE statement for one catalog table, from its Arrow schema."""
    from degeneracy.schema.tables import TABLES

    schema, key = TABLES[name]
    cols = [
        f"{f.name} {_DUCK_TYPES[str(f.type)]}{'' if f.nullable else ' NOT NULL'}" for f in schema
    ]
    if key:
        cols.append(f"PRIMARY KEY ({', '.join(key)})")
    return f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(cols)})"


def quote(text: str) -> str:
    """`text` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


#: the view definitions' version, kept in `meta` ('views'): older stored views are rewritten
VIEWS_VERSION = "listed-guarded-1"


def array_view_sql(
    kind: str, data_dir: str, files: list[str], temp: bool = False, source: str | None = None
) -> str:
    """The view over one array kind: its empty placeholder (so the view binds with no data)
    plus every registered file (`files`, relative to the registry root); or, with `source`,
    over that relation instead (a query connection's Arrow dataset of the same files)."""
    from degeneracy.registry.layout import PLACEHOLDER

    data = data_dir.rstrip("/")
    root = data.rsplit("/", 1)[0]
    paths = [f"{data}/{kind}/{PLACEHOLDER}", *(f"{root}/{f}" for f in files)]
    scan = f"read_parquet([{', '.join(quote(p) for p in paths)}], hive_partitioning = false)"
    sql = (
        f"CREATE OR REPLACE {'TEMP ' if temp else ''}VIEW {kind} AS SELECT * FROM {source or scan}"
    )
    if not temp:
        sql += " WHERE " + _same_place_guard(root)
    return sql


def _same_place_guard(root: str) -> str:
    """A stored view names its files by absolute path; in a copy of the registry opened by a
    plain DuckDB client those are the *original's* files. Fail loudly there instead: the view
    reads only while a catalog at `root` is attached (DuckDB reports absolute paths)."""
    catalog = f"{root}/catalog.duckdb"
    message = (
        f"this catalog's views read the files of {root}, but no catalog is open there: if the "
        "registry was copied or moved, run any degeneracy command on it once (e.g. "
        f"degeneracy info -r <its folder>); if you opened it through a symlink, open {catalog}"
    )
    return (
        f"(SELECT CASE WHEN count(*) > 0 THEN true ELSE error({quote(message)}) END "
        f"FROM duckdb_databases() WHERE path = {quote(catalog)})"
    )


def labeled_view_sql(label_names: list[str], temp: bool = False) -> str:
    """`networks_labeled`: networks with one VARCHAR column per post-hoc label name."""
    prefix = f"CREATE OR REPLACE {'TEMP ' if temp else ''}VIEW networks_labeled AS "
    if not label_names:
        return prefix + "SELECT * FROM networks"
    cols = ", ".join(
        f"max(value) FILTER (WHERE name = {quote(n)}) AS {n}" for n in sorted(label_names)
    )
    return (
        prefix
        + f"SELECT n.*, {', '.join('l.' + x for x in sorted(label_names))} FROM networks n "
        + f"LEFT JOIN (SELECT network_id, {cols} FROM labels GROUP BY network_id) l "
        + "USING (network_id)"
    )


def registered_files(con: duckdb.DuckDBPyConnection, kind: str) -> list[str]:
    """The files of one array kind the catalog registers, relative to the registry root."""
    sql = f"SELECT {kind}_file FROM ensembles WHERE {kind}_file IS NOT NULL ORDER BY 1"
    return [r[0] for r in con.execute(sql).fetchall()]


def missing_files(data_dir: str, files: list[str]) -> list[str]:
    """The registered `files` (relative to the registry root) that are gone."""
    root = Path(data_dir).parent
    return [f for f in files if not (root / f).exists()]


#: per array kind: (its registered files, the ones of them that are gone)
Listing = dict[str, tuple[list[str], list[str]]]


def list_files(con: duckdb.DuckDBPyConnection, data_dir: str) -> Listing:
    """Every array kind's registered files and which of them are missing (one catalog read
    and one stat per file)."""
    listing: Listing = {}
    for kind in ARRAY_KINDS:
        files = registered_files(con, kind)
        listing[kind] = (files, missing_files(data_dir, files))
    return listing


def create_views(
    con: duckdb.DuckDBPyConnection,
    data_dir: str,
    temp: bool = False,
    sources: dict[str, str] | None = None,
    listing: Listing | None = None,
) -> None:
    """(Re)create every view; TEMP views shadow stored ones on this connection only.
    `sources`: kind -> a relation the kind's view reads instead of its files (TEMP only);
    `listing`: what `list_files` returned, when the caller has it already."""
    listing = list_files(con, data_dir) if listing is None else listing
    for kind in ARRAY_KINDS:
        files, gone = listing[kind]
        source = (sources or {}).get(kind)
        sql = array_view_sql(kind, data_dir, [] if gone else files, temp, source)
        if gone:  # fail when the view is used, with a message, not when it is created
            what = f"{gone[0]}" + (f" and {len(gone) - 1} more" if len(gone) > 1 else "")
            message = f"{kind}: registered data file(s) missing: {what}; run degeneracy check"
            sql += f" {'WHERE' if temp else 'AND'} (SELECT error({quote(message)}))"
        con.execute(sql)
    names = [r[0] for r in con.execute("SELECT DISTINCT name FROM labels").fetchall()]
    con.execute(labeled_view_sql(names, temp))
    if not temp:
        con.execute("INSERT OR REPLACE INTO meta VALUES ('views', ?)", [VIEWS_VERSION])


def create_catalog(con: duckdb.DuckDBPyConnection, data_dir: str) -> None:
    """Create every table and view of the current schema version (inside the caller's txn)."""
    from degeneracy.schema.tables import TABLES

    for name in TABLES:
        con.execute(table_ddl(name))
    con.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [SCHEMA_VERSION])
    create_views(con, data_dir)


def _add_prepared(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(table_ddl("prepared"))


def _add_train_loss(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("ALTER TABLE networks ADD COLUMN train_loss DOUBLE")


def _add_provenance(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("ALTER TABLE networks ADD COLUMN provenance VARCHAR")


def _add_files(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(table_ddl("files"))


#: version v -> function migrating a catalog from v to v + 1 (runs inside one transaction).
MIGRATIONS: dict[int, Callable[[duckdb.DuckDBPyConnection], None]] = {
    1: _add_prepared,  # 2: per-network fits (DSA operators) kept across processes
    2: _add_train_loss,  # 3: networks.train_loss, what the stop rule read
    3: _add_provenance,  # 4: networks.provenance, what made each network
    4: _add_files,  # 5: files, each data file's rows, size and SHA-256 when written
}


def stored_version(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(con: duckdb.DuckDBPyConnection, data_dir: str, target: int | None = None) -> int:
    """Bring the catalog from its stored version to `target`, all steps in one transaction."""
    target = SCHEMA_VERSION if target is None else target
    version = stored_version(con)
    if version >= target:
        return version
    con.execute("BEGIN TRANSACTION")
    try:
        for v in range(version, target):
            if v not in MIGRATIONS:
                raise RuntimeError(f"no migration from schema version {v} to {v + 1}")
            MIGRATIONS[v](con)
            con.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [v + 1])
        create_views(con, data_dir)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return target
