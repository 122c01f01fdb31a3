"""`Registry`: the on-disk store of trained networks — Parquet data plus a DuckDB catalog."""

from __future__ import annotations

import copy
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from degeneracy import __version__
from degeneracy.registry.connection import (
    check_read_query,
    confine,
    open_catalog,
    refuse_file_reads,
)
from degeneracy.registry.errors import RegistryError
from degeneracy.registry.layout import Layout, default_path
from degeneracy.schema import catalog as ddl
from degeneracy.schema.kinds import ARRAY_KINDS

if TYPE_CHECKING:
    from degeneracy.registry.records import Condition, NetworkRecord
    from degeneracy.registry.writer import WriteSummary

_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def damage_message(exc: BaseException, what: str = "registry damaged") -> str:
    """One line for a DuckDB error; a missing or unreadable data file points to `check`."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if any(s in first for s in ("No files found", "Cannot open file", "No such file")):
        return f"{what}: a registered data file is missing ({first}); run `degeneracy check`"
    return f"{what}: {first}"


def interruptible(con, work, timeout: float | None = None):
    """`work()` (which runs SQL on `con`) in a worker thread; on Ctrl-C or past `timeout`
    seconds, `con.interrupt()` stops DuckDB and the wait ends. DuckDB does not see Python's
    SIGINT while it executes, so a query run in the main thread ran on to its end."""
    import threading
    import time

    out: dict[str, Any] = {}
    done = threading.Event()  # (an interrupted Thread.join may return early: wait on this)

    def run() -> None:
        try:
            out["value"] = work()
        except BaseException as exc:  # handed to the waiting thread
            out["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="degeneracy-query", daemon=True).start()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while not done.wait(0.05):
            if deadline is not None and time.monotonic() > deadline:
                con.interrupt()
                done.wait()
                raise RegistryError(f"query stopped: it ran past its {timeout:g} s timeout")
    except KeyboardInterrupt:
        con.interrupt()
        done.wait(30)
        raise
    if "error" in out:
        raise out["error"]
    return out["value"]


def _creatable(root: Path) -> bool:
    """An empty folder, or one holding only what an interrupted or concurrent `create` leaves
    (placeholder data files, temporary catalogs): creating there resumes it."""
    for entry in root.iterdir():
        if entry.name == "data" and entry.is_dir():
            leftovers = [p for p in entry.rglob("*") if p.is_file()]
            if all(
                p.name.endswith((".parquet", ".tmp")) and p.parent.parent == entry
                for p in leftovers
            ):
                continue
            return False
        if entry.name.startswith(".catalog.duckdb.") and entry.name.endswith((".tmp", ".wal")):
            continue
        return False
    return True


def _write_placeholders(layout: Layout) -> None:
    """Each array kind's empty placeholder file (the views bind to it), where missing."""
    from degeneracy.registry.parquet_files import write_placeholder
    from degeneracy.schema.arrays import ARRAY_SCHEMAS

    for kind in ARRAY_KINDS:
        if not layout.placeholder(kind).exists():
            write_placeholder(layout.placeholder(kind), ARRAY_SCHEMAS[kind])


class Registry:
    """A registry folder: `catalog.duckdb` plus `data/<kind>/task=<task>/<ensemble>.parquet`.

    Connections are short-lived (DuckDB admits one writer process at a time), so a Registry
    object holds no open connection and may live as long as you like.

    >>> reg = Registry.create("runs")                                   # doctest: +SKIP
    >>> reg.sql("SELECT task, count(*) FROM networks GROUP BY ALL")    # doctest: +SKIP
    """

    #: adds SQL functions to each query's connection: `hook(con, registry)` returns an object
    #: whose `flush()` runs once the query is closed (to store what the functions computed), or
    #: None. Handed in by the layer above (`degeneracy.open` and the CLI install the metric
    #: functions of `analysis.udfs`): the storage layer knows no metric.
    sql_functions: Callable[[Any, Registry], Any] | None = None

    def __init__(self, root: Path):
        self.layout = Layout(Path(root).resolve())
        self._temp_views = False
        self._file_cache: dict[tuple[str, str], str] = {}  # (kind, network_id) -> data file
        self._shared = None  # set only on the views `_query` hands to SQL functions

    @property
    def root(self) -> Path:
        return self.layout.root

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    def require_writable(self) -> None:
        """One clear error, before any training, where this process cannot write the registry
        (another user's registry, a read-only mount): not a DuckDB error after the work."""
        import os

        places = [self.root, self.layout.catalog, self.layout.data, self.layout.pending]
        blocked = [p for p in places if p.exists() and not os.access(p, os.W_OK)]
        if blocked:
            raise RegistryError(
                f"registry {self.root} is read-only for this user ({blocked[0].name} is not "
                "writable): nothing can be stored"
            )

    def outside(self, path: str | Path, allowed: str | None = None) -> Path:
        """`path`, checked to resolve (symlinks included, the missing part taken as written)
        outside this registry's folder, where no output may land: a file written there could
        replace the catalog or add rows to a kind's data. `allowed`: the one subfolder a
        command owns (`report`'s and `reproduce`'s default pages), which it may write into."""
        target = Path(path).expanduser().resolve()
        root = self.root.resolve()
        if target != root and root not in target.parents:
            return target
        if allowed is not None:
            own = (root / allowed).resolve()
            if target == own or own in target.parents:
                return target
        raise RegistryError(
            f"{path}: an output path inside the registry ({root}) is refused; write it elsewhere"
        )

    # ---------------------------------------------------------------- create / open
    @classmethod
    def create(cls, path: str | Path | None = None) -> Registry:
        """Create a registry at `path` (default: $DEGENERACY_REGISTRY or ./degeneracy-registry).

        Opening an existing registry is not an error; a non-empty folder that is not a registry is.
        """
        root = Path(path) if path is not None else default_path()
        layout = Layout(root.resolve())
        if layout.catalog.exists():
            return cls.open(root)
        if root.exists() and (not root.is_dir() or not _creatable(root)):
            raise RegistryError(f"{root} exists and is not an empty folder or a registry")
        # Safe against concurrent creators and a kill midway: every step is idempotent, the
        # catalog is built under a per-process temporary name and linked into place only if
        # no other process got there first (os.link never overwrites).
        tmp = layout.root / f".{layout.catalog.name}.{os.getpid()}.tmp"
        try:
            _write_placeholders(layout)
            tmp.unlink(missing_ok=True)
            con = duckdb.connect(str(tmp))
            try:
                con.execute("BEGIN TRANSACTION")
                ddl.create_catalog(con, str(layout.data))
                con.execute("INSERT INTO meta VALUES ('root', ?)", [str(layout.root)])
                con.execute("COMMIT")
            finally:
                con.close()
            try:
                os.link(tmp, layout.catalog)
            except FileExistsError:
                pass  # another process created it first: use theirs
        except OSError as exc:
            raise RegistryError(f"cannot create registry at {root}: {exc.strerror or exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)
        return cls.open(layout.root)

    @classmethod
    def open(cls, path: str | Path | None = None, create: bool = False) -> Registry:
        """Open an existing registry (or create it if `create`), migrating an older schema."""
        root = Path(path) if path is not None else default_path()
        if not Layout(root.resolve()).catalog.exists():
            if create:
                return cls.create(root)
            raise RegistryError(
                f"no registry at {root} (create one with `degeneracy init`, or pass --registry)"
            )
        reg = cls(root)
        reg._prepare()
        return reg

    def _prepare(self) -> None:
        """Check the schema version; migrate an older catalog; repair views of a moved one."""
        con = open_catalog(self.layout.catalog, read_only=True)
        try:
            try:
                version = ddl.stored_version(con)
                row = con.execute("SELECT value FROM meta WHERE key = 'root'").fetchone()
                views = con.execute("SELECT value FROM meta WHERE key = 'views'").fetchone()
            except duckdb.Error as exc:
                raise RegistryError(f"{self.layout.catalog} is not a degeneracy catalog") from exc
        finally:
            con.close()
        if version > ddl.SCHEMA_VERSION:
            raise RegistryError(
                f"registry {self.root} has schema version {version}, newer than this "
                f"degeneracy {__version__} understands ({ddl.SCHEMA_VERSION}); upgrade degeneracy"
            )
        moved = row is None or row[0] != str(self.root)
        stale = views is None or views[0] != ddl.VIEWS_VERSION  # views of an older release
        if version == ddl.SCHEMA_VERSION and not moved and not stale:
            return
        try:
            con = open_catalog(self.layout.catalog, read_only=False)
        except RegistryError:
            if version < ddl.SCHEMA_VERSION:
                raise
            self._temp_views = True  # read-only copy of a moved registry: shadow the views
            return
        try:
            if version < ddl.SCHEMA_VERSION:
                ddl.migrate(con, str(self.layout.data))
            if moved or stale:
                # a catalog copied without its data folder: the views' empty placeholders
                # (no data) are rewritten so they bind; registered files stay missing, which
                # reading them and `check` then report
                try:
                    _write_placeholders(self.layout)
                except OSError as exc:
                    raise RegistryError(
                        f"cannot write the empty placeholders under {self.layout.data}: "
                        f"{exc.strerror or exc}"
                    ) from exc
                con.execute("BEGIN TRANSACTION")
                ddl.create_views(con, str(self.layout.data))
                con.execute("INSERT OR REPLACE INTO meta VALUES ('root', ?)", [str(self.root)])
                con.execute("COMMIT")
        finally:
            con.close()

    # ---------------------------------------------------------------- connections and SQL
    @contextmanager
    def connect(self, read_only: bool = True, confined: bool = False) -> Iterator[Any]:
        """A short-lived DuckDB connection with the views resolving; closed on exit.

        `confined` (read-only only) forbids DuckDB any file access and any settings change,
        its views reading the registered files through pyarrow: the mode for SQL typed by a
        user (`connection.confine`).
        """
        if self._shared is not None and read_only:
            # inside a query's SQL functions: read through the query's own connection (a
            # cursor of it, confined too: catalog tables only, arrays through pyarrow)
            yield self._shared.cursor()
            return
        con = open_catalog(self.layout.catalog, read_only=read_only)
        scratch = Path(tempfile.mkdtemp(prefix="degeneracy-query-")) if confined else None
        try:
            try:
                if scratch is not None:
                    confine(con, self.layout.data, scratch)
                elif self._temp_views:
                    ddl.create_views(con, str(self.layout.data), temp=True)
            except duckdb.Error as exc:
                raise RegistryError(damage_message(exc)) from exc
            yield con
        finally:
            con.close()
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

    @contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[Any]:
        """A read-write connection inside one transaction: committed when the block ends,
        rolled back on any error (Ctrl-C included), closed either way. Keep blocks short:
        while it is open every other process waits. `timeout`: how long to wait for the
        lock (default `connection.LOCK_TIMEOUT_S`)."""
        con = open_catalog(self.layout.catalog, read_only=False, timeout=timeout)
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                with suppress(Exception):
                    con.execute("ROLLBACK")
                raise
        finally:
            con.close()

    @contextmanager
    def read_query(self, query: str, params: Sequence[Any] | None = None) -> Iterator[Any]:
        """A DuckDB relation for one read-only query, on a confined connection with the SQL
        functions `sql_functions` adds (the metrics', `mean_pairwise`, `dsa_distance`, ...,
        when the registry was opened through `degeneracy.open` or the CLI).

        Any DuckDB error inside the block (bad SQL, a failing cast) becomes a RegistryError.
        Distances the query computed are written to the pairwise cache after it closes.
        """
        with self._query(query, params) as (_, rel):
            yield rel

    @contextmanager
    def _query(self, query: str, params: Sequence[Any] | None = None) -> Iterator[Any]:
        """(connection, relation) of `read_query`. The SQL functions get their own view of this
        registry whose reads go through the query's connection while it is open (a second
        connection to the catalog from inside a running query is not possible); this object
        is never changed."""
        with self.connect(read_only=True, confined=True) as con:
            check_read_query(con, query)
            bound = copy.copy(self)
            bound._shared = con
            extra = self.sql_functions(con, bound) if self.sql_functions is not None else None
            refuse_file_reads(con, query, params)
            try:
                yield con, con.sql(query, params=params)
            except duckdb.Error as exc:
                raise RegistryError(damage_message(exc, "query failed")) from exc
            finally:
                bound._shared = None  # what runs after the query (the cache flush) reads afresh
        if extra is not None:  # e.g. pairs the metric functions computed, now it is closed
            extra.flush()

    def fetch(
        self,
        query: str,
        params: Sequence[Any] | None = None,
        timeout: float | None = None,
        arrow: bool = False,
    ):
        """Run one read-only query to completion: (column names, rows), or an Arrow table with
        `arrow`. Ctrl-C stops it promptly (KeyboardInterrupt), and so does `timeout` seconds
        (RegistryError): the query runs in a worker thread this one can interrupt."""
        with self._query(query, params) as (con, rel):

            def work():
                return rel.to_arrow_table() if arrow else (rel.columns, rel.fetchall())

            return interruptible(con, work, timeout)

    def sql(self, query: str, params: Sequence[Any] | None = None):
        """Run one read-only query (confined to the registry) and return a Polars DataFrame."""
        import polars as pl

        with self.read_query(query, params) as rel:
            table = rel.to_arrow_table()
        try:
            return pl.from_arrow(table)
        except Exception as exc:  # a type Polars has no counterpart for (e.g. DuckDB's UNION)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RegistryError(
                f"the result has a column Polars cannot hold ({first}); "
                "cast it in the query, or use Registry.fetch(..., arrow=True)"
            ) from exc

    # ---------------------------------------------------------------- write side
    def write_ensemble(
        self,
        condition: Condition,
        records: list[NetworkRecord],
        sweep_id: str | None = None,
        source: str = "trained",
    ) -> WriteSummary:
        """Store networks of one condition: Parquet files first (atomic), then catalog rows in
        one transaction. Networks already present (same condition and seed) are skipped, so
        writing the same networks twice leaves one row each."""
        from degeneracy.registry.writer import write_ensemble

        return write_ensemble(self, condition, records, sweep_id, source)

    def check(self, repair: bool = False, drop_missing: bool = False):
        """Catalog against files: missing, damaged, pending, orphan and temp files
        (`registry.check.CheckResult`); `repair` applies the safe repairs first."""
        from degeneracy.registry import check

        return check.repair(self, drop_missing) if repair else check.check(self)

    def add_sweep(self, sweep_id: str, name: str, spec: str, timeout: float | None = None) -> None:
        """Record a sweep (idempotent: the id is a hash of its spec text)."""
        with self.transaction(timeout) as con:
            con.execute(
                "INSERT OR IGNORE INTO sweeps VALUES (?, ?, ?, now()::TIMESTAMP)",
                [sweep_id, name, spec],
            )

    def add_label(self, name: str, value: str | None, where: str) -> int:
        """Attach the post-hoc factor `name = value` to every network matching the SQL `where`.

        Labels appear as columns of the `networks_labeled` view. Returns how many were labelled.
        """
        if not _LABEL.match(name):
            raise RegistryError(f"label name must be an identifier like my_group, got {name!r}")
        from degeneracy.schema.tables import NETWORKS

        if name.lower() in {f.name for f in NETWORKS}:
            raise RegistryError(f"label name {name!r} is already a column of networks")
        matched = self.sql(f"SELECT network_id FROM networks WHERE {where}")
        ids = matched["network_id"].to_list()
        with self.transaction() as con:
            con.execute(
                "INSERT OR REPLACE INTO labels SELECT unnest(?::VARCHAR[]), ?, ?",
                [ids, name, value],
            )
            ddl.create_views(con, str(self.layout.data))
        return len(ids)

    # ---------------------------------------------------------------- read side
    def data_files(self, ids: Sequence[str], kind: str) -> dict[str, str | None]:
        """network id -> its `kind` data file (relative to the root; None when it has none),
        for the ids the catalog holds. Files never change once written, so the map is kept
        on this object."""
        found: dict[str, str | None] = {
            i: self._file_cache[(kind, i)] for i in ids if (kind, i) in self._file_cache
        }
        todo = [i for i in ids if i not in found]
        if todo:
            with self.connect(read_only=True) as con:
                rows = con.execute(
                    f"SELECT n.network_id, e.{kind}_file FROM networks n JOIN ensembles e "
                    "USING (ensemble_id) WHERE n.network_id IN (SELECT unnest(?::VARCHAR[]))",
                    [todo],
                ).fetchall()
            for nid, rel in rows:
                found[nid] = rel
                if rel is not None:
                    self._file_cache[(kind, nid)] = rel
        return found

    def load_weights(self, ids: Sequence[str], name: str = "W_h", stage: str = "final"):
        """Stacked parameter `name` at `stage` ("init"/"final") of the networks, in `ids` order."""
        from degeneracy.registry.reader import stack

        return stack(self, ids, "weights", {"stage": stage, "name": name})

    def load_trajectories(self, ids: Sequence[str], probe: str = "id"):
        """Hidden states on probe set `probe` as one (networks, trials, time, units) array."""
        from degeneracy.registry.reader import stack

        return stack(self, ids, "trajectories", {"probe": probe})

    def load_outputs(self, ids: Sequence[str], probe: str = "id"):
        """Readouts on probe set `probe` as one (networks, trials, time, outputs) array."""
        from degeneracy.registry.reader import stack

        return stack(self, ids, "outputs", {"probe": probe})

    def load_curves(self, ids: Sequence[str]):
        """Training curves (network_id, seed, step, loss, lr) as a Polars DataFrame."""
        from degeneracy.registry.reader import curves

        return curves(self, ids)

    def load_records(self, ensemble_id: str) -> tuple[Condition, list[NetworkRecord]]:
        """Everything stored for one ensemble, back as in-memory records."""
        from degeneracy.registry.reader import load_records

        return load_records(self, ensemble_id)

    def ensemble_id(self, prefix: str) -> str:
        """The one ensemble id starting with `prefix` (as `ls` shows them: 12 characters)."""
        with self.connect(read_only=True) as con:
            hits = [
                r[0]
                for r in con.execute(
                    "SELECT ensemble_id FROM ensembles WHERE starts_with(ensemble_id, ?) "
                    "ORDER BY 1 LIMIT 6",
                    [prefix],
                ).fetchall()
            ]
        if not prefix or not hits:
            raise RegistryError(
                f"no ensemble {prefix!r} in {self.root} (`degeneracy ls` lists them)"
            )
        if len(hits) > 1:
            more = ", ..." if len(hits) > 5 else ""
            raise RegistryError(
                f"ensemble prefix {prefix!r} is ambiguous: {', '.join(hits[:5])}{more}"
            )
        return hits[0]

    def export_ensemble(self, ensemble_id: str, folder: str | Path) -> Path:
        """Write one ensemble (its id, or a unique prefix of it) as an exchange folder that
        `degeneracy ingest` reads back."""
        from degeneracy.registry.exchange import write_exchange
        from degeneracy.registry.reader import ensemble_tables

        folder = self.outside(folder)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            what = "a file" if not folder.is_dir() else "a folder that is not empty"
            raise RegistryError(f"{folder} is {what}: export writes a new folder")
        condition, summaries, tables = ensemble_tables(self, self.ensemble_id(ensemble_id))
        write_exchange(folder, condition, summaries, tables)
        return folder

    # ---------------------------------------------------------------- summary
    def info(self) -> dict[str, Any]:
        """Counts, bytes on disk per kind, schema version and paths."""
        with self.connect(read_only=True) as con:
            counts = {
                t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in (
                    "networks",
                    "ensembles",
                    "sweeps",
                    "labels",
                    "pairwise",
                    "prepared",
                    "results",
                )
            }
            version = ddl.stored_version(con)
        sizes = {k: sum(p.stat().st_size for p in v) for k, v in self.layout.data_files().items()}
        sizes["catalog"] = self.layout.catalog.stat().st_size
        return {
            "root": str(self.root),
            "catalog": str(self.layout.catalog),
            "schema_version": version,
            "code_version": __version__,
            "counts": counts,
            "bytes": sizes,
            "total_bytes": sum(sizes.values()),
        }
