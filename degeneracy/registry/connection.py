"""Opening the DuckDB catalog: short-lived connections, lock retries, read-only confinement.

DuckDB allows one writer process and refuses every other open while it holds the file, so
connections are opened per operation and retried with backoff when the file is locked.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from degeneracy.registry.errors import RegistryError

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
    """Forbid access to every file but the registered data files (and the per-kind empty
    placeholders the views bind to), and any change of settings. A query too large for memory
    spills into `scratch` (a folder outside the registry), not DuckDB's default beside the
    catalog: a killed query would leave its spill files in the registry, unseen by `check`.

    An exact list, not the data folder: no file can be created there (so nothing can be added
    to what the views read), and DuckDB's COPY, which writes a temporary file beside its
    target first, cannot replace a registered file either. (COPY with USE_TMP_FILE false
    could overwrite one in place; `check_read_query` refuses every COPY before it runs.)
    Call after every view the connection needs exists (views resolve their files at use).
    """
    from degeneracy.registry.layout import PLACEHOLDER
    from degeneracy.schema.catalog import registered_files
    from degeneracy.schema.kinds import ARRAY_KINDS

    root = data_dir.parent
    paths = [str(data_dir / k / PLACEHOLDER) for k in ARRAY_KINDS]
    paths += [str(root / f) for k in ARRAY_KINDS for f in registered_files(con, k)]
    listed = ", ".join(f"'{_quoted(p)}'" for p in paths)
    con.execute(f"SET temp_directory = '{_quoted(scratch)}'")
    con.execute(f"SET allowed_paths = [{listed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _quoted(path: str | Path) -> str:
    return str(path).replace("'", "''")


_READ_TYPES = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def check_read_query(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Accept exactly one SELECT-type statement (SELECT, WITH, VALUES, PIVOT, EXPLAIN)."""
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
