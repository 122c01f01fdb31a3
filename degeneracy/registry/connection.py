"""Opening the DuckDB catalog: short-lived connections, lock retries, read-only confinement.

DuckDB allows one writer process and refuses every other open while it holds the file, so
connections are opened per operation and retried with backoff when the file is locked.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from degeneracy.registry.errors import RegistryError
from degeneracy.schema.catalog import quote

LOCK_TIMEOUT_S = 60.0


def open_catalog(path: Path, read_only: bool, timeout: float | None = None):
    """A connection to the catalog, retrying while another process holds the lock (for
    `timeout` seconds, default LOCK_TIMEOUT_S read at call time)."""
    timeout = LOCK_TIMEOUT_S if timeout is None else timeout
    delay, waited = 0.02, 0.0
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:  # locked, damaged, not a DuckDB file, ...
            msg = str(exc)
            locked = isinstance(exc, duckdb.IOException) and "lock" in msg.lower()
            if not locked or waited >= timeout:
                first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
                hint = (
                    " (another process holds it: a running write, or an open connection "
                    "such as a notebook's)"
                    if locked
                    else " (damaged? `degeneracy check` says what is wrong)"
                )
                raise RegistryError(f"cannot open catalog {path}: {first}{hint}") from exc
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, 1.0)


def confine(con: duckdb.DuckDBPyConnection, data_dir: Path, scratch: Path) -> None:
    """Give the connection no file access at all, and forbid any change of settings: the mode
    for SQL typed by a user.

    The array views read Arrow datasets of the registered files that pyarrow opens for reading
    (`read_arrays`); DuckDB itself may open no file (`enable_external_access = false` with
    nothing allowed). So no statement, whatever it is, can create, replace or overwrite a file:
    the write side is unreachable by construction, and `check_read_query` is a second wall,
    not the only one. A query too large for memory spills into `scratch` (a folder outside the
    registry), not DuckDB's default beside the catalog: a killed query would leave its spill
    files in the registry.
    """
    read_arrays(con, data_dir)
    con.execute(f"SET temp_directory = {quote(str(scratch))}")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def read_arrays(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    """TEMP views of the array kinds over Arrow datasets of their registered files, on this
    connection only (a cursor of it needs its own call). Each dataset carries its kind's
    schema, so a view binds with no data. A kind with a missing file gets an empty dataset
    and a view that fails, naming the file, when used. The files are listed and checked
    once per connection."""
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    from degeneracy.schema.arrays import ARRAY_SCHEMAS
    from degeneracy.schema.catalog import create_views, list_files

    root = data_dir.parent
    listing = list_files(con, str(data_dir))
    sources = {}
    for kind, (files, gone) in listing.items():
        dataset = pads.FileSystemDataset.from_paths(
            [] if gone else [str(root / f) for f in files],
            schema=ARRAY_SCHEMAS[kind],
            format=pads.ParquetFileFormat(),
            filesystem=pafs.LocalFileSystem(),
        )
        sources[kind] = f"_{kind}_files"
        con.register(sources[kind], dataset)
    create_views(con, str(data_dir), temp=True, sources=sources, listing=listing)


_READ_TYPES = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def check_read_query(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Accept exactly one SELECT-type statement (SELECT, WITH, VALUES, EXPLAIN, and PIVOT with
    an IN list: without one DuckDB expands a PIVOT into several statements, refused here)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise RegistryError(f"bad SQL: {_first_line(exc)}") from exc
    if len(statements) != 1:
        raise RegistryError(f"expected one SQL statement, got {len(statements)}")
    if statements[0].type not in _READ_TYPES:
        kind = statements[0].type.name
        raise RegistryError(f"only read queries are allowed here, got a {kind} statement")
    if statements[0].type == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE runs the statement it explains: that one must be a read too
        # (EXPLAIN ANALYZE COPY ... TO writes files and counts as an EXPLAIN)
        inner = _explained(sql)
        if inner is None:
            raise RegistryError("EXPLAIN must be followed by a query")
        check_read_query(con, inner)


#: table functions that open files by name. With external access off DuckDB still lets them
#: open the attached catalog and its WAL, so a user's query may call none of them: the plan of
#: every query is checked (`refuse_file_reads`)
FILE_FUNCTIONS = ("READ_", "PARQUET_", "GLOB", "SNIFF_CSV", "ICEBERG_", "DELTA_")


def refuse_file_reads(con: duckdb.DuckDBPyConnection, sql: str, params=None) -> None:
    """Refuse a read query whose plan calls a table function that opens files by name (the
    array views read pyarrow datasets; nothing a user types needs to name a file)."""
    import json

    stmt = con.extract_statements(sql)[0]
    inner = _explained(sql) if stmt.type == duckdb.StatementType.EXPLAIN else sql
    if inner is None:
        return
    try:
        rows = con.execute(f"EXPLAIN (FORMAT JSON) {inner}", params).fetchall()
    except duckdb.Error:
        return  # the query fails when it runs, with its own message
    stack = [json.loads(r[1]) for r in rows]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        info = node.get("extra_info")
        names = [str(node.get("name", ""))]
        if isinstance(info, dict):
            names.append(str(info.get("Function", "")))
        for name in names:
            if name.upper().startswith(FILE_FUNCTIONS):
                raise RegistryError(
                    f"{name.lower()}: a query may read the registry's tables and views only, "
                    "not files"
                )
        stack.extend(node.get("children", []))


def _explained(sql: str) -> str | None:
    """The statement an EXPLAIN [ANALYZE] [(options)] explains, as text."""
    tokens = [(pos, kind) for pos, kind in duckdb.tokenize(sql) if kind.name != "comment"]
    i = 1  # tokens[0] is EXPLAIN
    paren = None
    while i < len(tokens):
        word = sql[tokens[i][0] :].split(None, 1)[0].upper() if sql[tokens[i][0] :] else ""
        if word.startswith(("ANALYZE", "ANALYSE")):
            i += 1
        elif sql[tokens[i][0]] == "(":  # an options list: skip to its closing parenthesis
            paren = tokens[i][0] if paren is None else paren
            depth = 0
            while i < len(tokens):
                ch = sql[tokens[i][0]]
                depth += ch == "("
                depth -= ch == ")"
                i += 1
                if depth == 0:
                    break
        else:
            return sql[tokens[i][0] :]
    return None if paren is None else sql[paren:]  # "EXPLAIN (SELECT 1)": it was the query


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
