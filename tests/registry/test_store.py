import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from degeneracy.registry import ids
from degeneracy.registry.errors import RegistryError
from degeneracy.registry.store import Registry
from tests.cli.helpers import HANG_S
from tests.factories import condition, make_records


@contextmanager
def _reader_holding(reg):
    """Another process holds a read-only connection to `reg`'s catalog (as a notebook does)
    for the length of the block; every writer is locked out meanwhile."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True);"
            " print('held', flush=True); sys.stdin.readline()",
            str(reg.root / "catalog.duckdb"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(10)


def _ids(reg, where="TRUE"):
    return reg.sql(f"SELECT network_id FROM networks WHERE {where} ORDER BY seed")[
        "network_id"
    ].to_list()


def test_arrays_round_trip_bit_exact(registry):
    recs = make_records([3, 1, 2], hidden=6)
    registry.write_ensemble(condition(hidden=6), recs)
    nids = _ids(registry)
    by_seed = {r.seed: r for r in recs}
    seeds = [1, 2, 3]
    for name in ("W_h", "W_x", "b", "W_out", "b_out"):
        for stage, attr in (("final", "weights_final"), ("init", "weights_init")):
            got = registry.load_weights(nids, name=name, stage=stage)
            want = np.stack([getattr(by_seed[s], attr)[name] for s in seeds])
            assert got.dtype == np.float32
            assert np.array_equal(got, want)
    for probe in ("id", "ood"):
        assert np.array_equal(
            registry.load_trajectories(nids, probe),
            np.stack([by_seed[s].trajectories[probe] for s in seeds]),
        )
        assert np.array_equal(
            registry.load_outputs(nids, probe),
            np.stack([by_seed[s].outputs[probe] for s in seeds]),
        )
    curves = registry.load_curves(nids)
    for s, nid in zip(seeds, nids):
        c = curves.filter(pl.col("network_id") == nid)
        assert np.array_equal(c["loss"].to_numpy(), by_seed[s].curve["loss"])
        assert np.array_equal(c["step"].to_numpy(), by_seed[s].curve["step"])


def test_load_preserves_requested_order_and_reports_missing(filled):
    nids = _ids(filled)
    rev = nids[::-1]
    assert np.array_equal(filled.load_weights(rev), filled.load_weights(nids)[::-1])
    with pytest.raises(RegistryError, match="no network nope"):
        filled.load_weights(["nope"])


def test_load_records_returns_everything(registry):
    recs = make_records([0, 1])
    registry.write_ensemble(condition(), recs)
    eid = registry.sql("SELECT ensemble_id FROM ensembles")["ensemble_id"][0]
    cond, back = registry.load_records(eid)
    assert cond == condition()
    for a, b in zip(recs, back):
        assert a.seed == b.seed and a.steps == b.steps and a.converged == b.converged
        assert a.final_loss == pytest.approx(b.final_loss)
        for k in a.weights_final:
            assert np.array_equal(a.weights_final[k], b.weights_final[k])
        for k in a.trajectories:
            assert np.array_equal(a.trajectories[k], b.trajectories[k])


def test_writing_the_same_networks_twice_is_one_row_each(registry):
    recs = make_records([0, 1, 2])
    first = registry.write_ensemble(condition(), recs)
    second = registry.write_ensemble(condition(), recs)
    assert len(first.written) == 3 and second.written == [] and len(second.skipped) == 3
    assert second.ensemble_id is None
    assert registry.sql("SELECT count(*) AS n FROM networks")["n"][0] == 3
    assert registry.sql("SELECT count(*) AS n FROM weights WHERE name = 'W_h'")["n"][0] == 6
    # a partly new ensemble writes only the new seeds
    third = registry.write_ensemble(condition(), make_records([2, 3, 4]))
    assert len(third.written) == 2 and len(third.skipped) == 1
    assert registry.sql("SELECT count(*) AS n FROM networks")["n"][0] == 5


def test_network_id_is_a_stable_hash_of_condition_and_seed(tmp_path):
    a = Registry.create(tmp_path / "a")
    b = Registry.create(tmp_path / "b")
    a.write_ensemble(condition(factors={"lr": 1e-3}), make_records([0, 1]))
    b.write_ensemble(condition(factors={"lr": 1e-3}), make_records([1]))
    b.write_ensemble(condition(factors={"lr": 2e-3}), make_records([1]))
    ida = set(_ids(a))
    idb = _ids(b)
    assert len(ida & set(idb)) == 1  # same condition + seed, written separately
    cond = condition(factors={"lr": 1e-3}).to_dict()
    assert ids.network_id(cond, 1) in ida


def test_views_resolve_from_a_plain_duckdb_client_in_another_directory(
    filled, tmp_path, monkeypatch
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    con = duckdb.connect(str(filled.root / "catalog.duckdb"), read_only=True)
    try:
        n = con.execute("SELECT count(*) FROM weights WHERE name = 'W_h' AND stage = 'final'")
        assert n.fetchone()[0] == 6
        assert con.execute("SELECT count(DISTINCT network_id) FROM trajectories").fetchone()[0] == 6
        assert con.execute("SELECT count(*) FROM curves").fetchone()[0] == 30
        # arrays are usable with no project code: reshape values by shape
        shape, values = con.execute(
            "SELECT shape, \"values\" FROM weights WHERE name = 'W_h' LIMIT 1"
        ).fetchone()
        assert shape == [8, 8] and len(values) == 64
    finally:
        con.close()


def test_data_reads_with_polars_scan_parquet(filled):
    lf = pl.scan_parquet(str(filled.root / "data" / "weights" / "**" / "*.parquet"))
    df = lf.filter((pl.col("name") == "W_h") & (pl.col("stage") == "final")).collect()
    assert df.height == 6
    nids = df["network_id"].to_list()
    arr = df["values"].cast(pl.Array(pl.Float32, 64)).to_numpy().reshape(-1, 8, 8)
    assert np.array_equal(arr, filled.load_weights(nids))


def test_a_moved_registry_still_opens(filled, tmp_path):
    before = filled.load_weights(_ids(filled))
    dest = tmp_path / "moved" / "reg2"
    dest.parent.mkdir()
    shutil.move(str(filled.root), str(dest))
    reg = Registry.open(dest)
    assert np.array_equal(reg.load_weights(_ids(reg)), before)
    assert reg.sql("SELECT count(*) AS n FROM weights")["n"][0] == 60
    # and the stored views now point at the new place for plain clients too
    con = duckdb.connect(str(dest / "catalog.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM outputs").fetchone()[0] == 12
    finally:
        con.close()


def test_a_catalog_copied_without_its_data_opens_and_names_what_is_missing(filled, tmp_path):
    """Only catalog.duckdb copied (the arrays left behind): the catalog tables read, the
    placeholders come back, and reading an array kind is one error naming `check`."""
    dest = tmp_path / "catalog-only"
    dest.mkdir()
    shutil.copy(filled.root / "catalog.duckdb", dest / "catalog.duckdb")
    reg = Registry.open(dest)
    assert reg.sql("SELECT count(*) AS n FROM networks")["n"][0] == 6
    with pytest.raises(RegistryError, match="registered data file.* missing.*check"):
        reg.sql("SELECT count(*) FROM weights")
    # the original is untouched
    assert filled.sql("SELECT count(*) AS n FROM weights")["n"][0] == 60


def test_a_moved_copy_opened_while_another_process_reads_it(filled, tmp_path):
    """A copied registry whose catalog another process holds (so its views cannot be
    rewritten): it opens with views of its own per connection, reads its own arrays, and a
    copy of the catalog alone still names what is missing instead of failing to bind."""
    dest = tmp_path / "copy"
    shutil.copytree(filled.root, dest)
    ids = _ids(filled)
    with _reader_holding(Registry(dest)):
        copy = Registry.open(dest)
        assert copy._temp_views  # the read-only path, not the rewrite
        assert copy.sql("SELECT count(*) AS n FROM weights")["n"][0] == 60
        np.testing.assert_array_equal(copy.load_weights(ids), filled.load_weights(ids))
    shutil.rmtree(filled.root / "data")  # the copy reads its own files, not the original's
    with _reader_holding(Registry(dest)):
        assert Registry.open(dest).load_weights(ids).shape[0] == len(ids)
    alone = tmp_path / "catalog-only"
    alone.mkdir()
    shutil.copy(dest / "catalog.duckdb", alone / "catalog.duckdb")
    with _reader_holding(Registry(alone)):
        reg = Registry.open(alone)
        assert reg.sql("SELECT count(*) AS n FROM networks")["n"][0] == 6
        with pytest.raises(RegistryError, match="missing"):
            reg.load_weights(ids)


def test_a_copied_registry_opens_in_both_places(filled, tmp_path):
    dest = tmp_path / "copy"
    shutil.copytree(filled.root, dest)
    copy = Registry.open(dest)
    copy.write_ensemble(condition(complexity=3), make_records([0]))
    assert copy.sql("SELECT count(*) AS n FROM networks")["n"][0] == 7
    assert Registry.open(filled.root).sql("SELECT count(*) AS n FROM networks")["n"][0] == 6
    assert filled.sql("SELECT count(*) AS n FROM weights")["n"][0] == 60


def test_open_missing_registry_is_a_clear_error(tmp_path):
    with pytest.raises(RegistryError, match="no registry at"):
        Registry.open(tmp_path / "missing")


def test_create_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(RegistryError, match="not an empty folder"):
        Registry.create(tmp_path / "x")
    assert (tmp_path / "x" / "notes.txt").read_text() == "mine"


def test_user_sql_is_confined_to_reads_inside_the_registry(filled, tmp_path):
    target = filled.root / "data" / "weights" / "empty.parquet"
    before = target.read_bytes()
    for bad in (
        f"COPY (SELECT 1) TO '{target}'",
        "DROP TABLE networks",
        "SELECT 1; DROP TABLE networks",
        "INSERT INTO labels VALUES ('a', 'b', 'c')",
        # EXPLAIN ANALYZE runs what it explains: a COPY inside writes (and doubled the views)
        f"EXPLAIN ANALYZE COPY (SELECT * FROM weights) TO '{target.parent / 'extra.parquet'}'",
        f"EXPLAIN (ANALYZE) COPY (SELECT 1) TO '{target}'",
        f"/* x */ EXPLAIN ANALYZE /* y */ COPY (SELECT 1) TO '{target}'",
    ):
        with pytest.raises(RegistryError):
            filled.sql(bad)
    assert not (target.parent / "extra.parquet").exists()
    assert filled.sql("EXPLAIN ANALYZE SELECT count(*) FROM networks").height >= 1
    with pytest.raises(RegistryError, match="Permission|disabled"):
        filled.sql("SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(RegistryError):
        filled.sql("SET enable_external_access = true")
    assert target.read_bytes() == before
    assert filled.sql("SELECT count(*) AS n FROM networks")["n"][0] == 6


#: every way found to make SQL write (or widen what a query may touch), in the forms the
#: statement filter must see through: EXPLAIN options, comments, case, CTEs, several
#: statements, table functions that run SQL. {new}: a hand-made file in the data folder,
#: {reg}: a registered data file
WRITE_PROBES = [
    "COPY (SELECT 1) TO '{new}'",
    "COPY (SELECT 1) TO '{reg}' (FORMAT parquet, USE_TMP_FILE false)",
    "COPY weights TO '{new}'",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{new}'",
    "EXPLAIN ANALYSE COPY (SELECT 1) TO '{new}'",
    "EXPLAIN (ANALYZE, FORMAT json) COPY (SELECT 1) TO '{new}'",
    "EXPLAIN (FORMAT json, ANALYZE) COPY (SELECT 1) TO '{reg}' (USE_TMP_FILE false)",
    "EXPLAIN -- c\n ANALYZE /* c */ COPY (SELECT 1) TO '{new}'",
    "explain analyze copy (select 1) to '{new}'",
    "EXPLAIN COPY (SELECT 1) TO '{new}'",
    "EXPLAIN ANALYZE EXPLAIN ANALYZE COPY (SELECT 1) TO '{new}'",
    "EXPLAIN ANALYZE (COPY (SELECT 1) TO '{new}')",
    "EXPLAIN ANALYZE INSERT INTO labels VALUES ('a', 'b', 'c')",
    "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
    "WITH x AS (SELECT 1) COPY (SELECT 1) TO '{new}'",
    "SELECT * FROM query('COPY (SELECT 1) TO ''{new}''')",
    "SELECT 1; COPY (SELECT 1) TO '{new}'",
    "SELECT 1 /* ; */ ; -- x\n COPY (SELECT 1) TO '{new}'",
    "ATTACH '{new}.duckdb' AS x",
    "EXPORT DATABASE '{new}.d'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "RESET allowed_paths",
    "SET GLOBAL allowed_paths = []",
    "SET temp_directory = '{new}.d'",
    "CALL checkpoint()",
    "CHECKPOINT",
    "SELECT * FROM force_checkpoint()",
    "PRAGMA enable_profiling",
    "VACUUM",
    "ANALYZE",
    "CREATE TEMP TABLE t AS SELECT 1",
    "CREATE OR REPLACE TEMP MACRO cka_distance(a, b) AS 1",
    "CREATE SECRET s (TYPE s3)",
    "UPDATE networks SET seed = 5",
    "DELETE FROM networks",
    "INSERT INTO networks SELECT * FROM networks",
    "DETACH memory",
    "USE memory",
    "BEGIN TRANSACTION",
    "PREPARE p AS SELECT 1",
    "SELECT * FROM read_parquet('{new}')",
    "SELECT * FROM glob('{folder}/*')",
    "SELECT * FROM read_text('/etc/hostname')",
]


def test_no_probe_writes_or_widens_access(filled):
    from tests.factories import snapshot

    reg = sorted((filled.root / "data" / "weights").glob("task=*/*.parquet"))[0]
    new = reg.parent / "hand-made.parquet"
    new.write_bytes(reg.read_bytes())  # readable Parquet: only the confinement keeps it out
    before = snapshot(filled.root)
    for probe in WRITE_PROBES:
        with pytest.raises(RegistryError):
            filled.sql(probe.format(new=new, reg=reg, folder=reg.parent))
        assert snapshot(filled.root) == before, probe
    assert filled.sql("SELECT count(*) AS n FROM networks")["n"][0] == 6


def test_the_query_connection_itself_can_write_no_file(filled):
    """Below the statement filter: the confined connection may open no file at all (its views
    read the registered files through pyarrow), so every write probe run on it directly, the
    in-place COPY over a registered file included, fails and changes nothing."""
    import duckdb

    from tests.factories import snapshot

    reg = sorted((filled.root / "data" / "weights").glob("task=*/*.parquet"))[0]
    new = reg.parent / "hand-made.parquet"
    before = snapshot(filled.root)
    with filled.connect(read_only=True, confined=True) as con:
        for sql in (
            f"COPY (SELECT * FROM weights) TO '{new}'",
            f"COPY (SELECT * FROM weights LIMIT 1) TO '{reg}' (FORMAT parquet, USE_TMP_FILE false)",
            f"COPY (SELECT 1) TO '{reg}'",
            f"EXPORT DATABASE '{reg.parent / 'export'}'",
            f"SELECT * FROM read_parquet('{reg}')",  # nor read a file outside the views
            "SET enable_external_access = true",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
        assert con.execute("SELECT count(*) FROM weights").fetchone()[0] > 0
    assert snapshot(filled.root) == before


def test_a_query_too_large_for_memory_spills_outside_the_registry(filled, tmp_path):
    """DuckDB spills to `catalog.duckdb.tmp/` beside the catalog by default: a query killed
    mid-spill left its files inside the registry, where `check` does not look."""
    from degeneracy.registry.connection import confine
    from degeneracy.schema.catalog import create_views
    from tests.factories import snapshot

    with filled.connect(read_only=True, confined=True) as con:
        scratch = Path(con.execute("SELECT current_setting('temp_directory')").fetchone()[0])
        assert scratch.exists() and not scratch.is_relative_to(filled.root)
    assert not scratch.exists()  # gone with the connection
    before = snapshot(filled.root)
    con = duckdb.connect(str(filled.layout.catalog), read_only=True)
    try:
        con.execute("SET memory_limit = '30MB'; SET threads = 1")  # small enough to spill
        create_views(con, str(filled.layout.data), temp=True)
        confine(con, filled.layout.data, tmp_path)
        sort = "SELECT md5(range::VARCHAR) AS m FROM range(3000000) ORDER BY m"
        assert con.execute(f"SELECT count(*) FROM ({sort})").fetchone()[0] == 3_000_000
        assert not (filled.root / "catalog.duckdb.tmp").exists()
        assert snapshot(filled.root) == before
    finally:
        con.close()


def test_labels_group_like_any_column(filled):
    n = filled.add_label("grp", "low", "complexity = 1")
    assert n == 3
    filled.add_label("grp", "high", "complexity = 2 AND seed < 2")
    df = filled.sql(
        "SELECT grp, count(*) AS n FROM networks_labeled GROUP BY grp ORDER BY grp NULLS LAST"
    )
    assert df.rows() == [("high", 2), ("low", 3), (None, 1)]
    # relabelling replaces, never duplicates
    filled.add_label("grp", "low2", "complexity = 1")
    assert filled.sql("SELECT count(*) AS n FROM labels")["n"][0] == 5
    with pytest.raises(RegistryError, match="already a column"):
        filled.add_label("seed", "x", "TRUE")
    with pytest.raises(RegistryError, match="identifier"):
        filled.add_label("bad name", "x", "TRUE")


def test_a_writer_waits_for_a_lock_held_by_another_process(filled):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(1.5); c.close()",
            str(filled.root / "catalog.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        summary = filled.write_ensemble(condition(complexity=5), make_records([0]))
        assert summary.written
    finally:
        holder.wait(10)


def test_a_lock_held_too_long_is_a_clear_error(filled):
    from degeneracy.registry import connection

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(5)",
            str(filled.root / "catalog.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RegistryError, match="cannot open catalog"):
            connection.open_catalog(filled.layout.catalog, read_only=True, timeout=0.2)
    finally:
        holder.kill()
        holder.wait(10)


def test_a_failed_catalog_write_leaves_no_new_data_file(registry, monkeypatch):
    from degeneracy.registry import writer

    def boom(*a, **k):
        raise RuntimeError("simulated crash between files and catalog")

    monkeypatch.setattr(writer, "network_rows", boom)
    with pytest.raises(RuntimeError):
        registry.write_ensemble(condition(), make_records([0, 1]))
    files = [p for p in (registry.root / "data").rglob("*.parquet") if p.name != "empty.parquet"]
    assert files == []
    assert registry.sql("SELECT count(*) AS n FROM ensembles")["n"][0] == 0


def test_ctrl_c_during_registration_lands_after_the_ensemble_is_registered(registry, monkeypatch):
    """Ctrl-C that arrives while the catalog rows are written is held until they commit, then
    stops the program; before this, DuckDB aborted the transaction with a RuntimeError."""
    import signal

    from degeneracy.registry import writer

    real = writer.record_files

    def signalled(*a, **k):  # the user presses Ctrl-C in the middle of the transaction
        os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)

    monkeypatch.setattr(writer, "record_files", signalled)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background
    with pytest.raises(KeyboardInterrupt):
        registry.write_ensemble(condition(), make_records([0, 1]))
    assert registry.sql("SELECT count(*) AS n FROM networks")["n"][0] == 2
    assert list(registry.layout.pending.glob("*.json")) == []
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


def test_info_counts_and_sizes(filled):
    info = filled.info()
    assert info["counts"]["networks"] == 6 and info["counts"]["ensembles"] == 2
    assert info["schema_version"] >= 1
    assert (
        info["bytes"]["weights"] > 0
        and info["total_bytes"]
        >= sum(v for k, v in info["bytes"].items()) - info["bytes"]["catalog"]
    )
    assert os.path.isabs(info["root"])


def test_a_reader_holding_the_catalog_never_costs_finished_networks(filled, monkeypatch):
    """A notebook's read-only connection blocks every writer; the write gives up after the
    timeout but keeps its networks in pending/, invisible to queries, and the next write
    registers them, once."""
    from degeneracy.registry import connection

    with _reader_holding(filled):
        monkeypatch.setattr(connection, "LOCK_TIMEOUT_S", 0.3)
        with pytest.raises(RegistryError, match="kept in .*pending"):
            filled.write_ensemble(condition(complexity=7), make_records([0, 1]))
    pending = list((filled.root / "pending").glob("*.json"))
    assert len(pending) == 1
    assert filled.sql("SELECT count(*) AS n FROM networks")["n"][0] == 6
    assert (
        filled.sql("SELECT count(*) AS n FROM weights WHERE seed >= 0")["n"][0]
        == (filled.sql("SELECT count(*) AS n FROM weights")["n"][0])
    )
    before = filled.sql("SELECT count(*) AS n FROM weights")["n"][0]
    # the next write registers the kept ensemble first, then its own
    filled.write_ensemble(condition(complexity=8), make_records([0]))
    assert list((filled.root / "pending").glob("*")) == []
    got = filled.sql("SELECT complexity, count(*) AS n FROM networks GROUP BY ALL ORDER BY 1")
    assert dict(got.rows())[7] == 2 and dict(got.rows())[8] == 1
    assert filled.sql("SELECT count(*) AS n FROM weights")["n"][0] > before
    # rewriting the same networks changes nothing
    filled.write_ensemble(condition(complexity=7), make_records([0, 1]))
    assert filled.sql("SELECT count(*) AS n FROM networks")["n"][0] == 9


def test_views_read_registered_files_only_and_a_missing_one_is_an_error(filled):
    """An unregistered file (a killed write's leftover) adds no rows; a registered file that
    went missing fails the query instead of returning fewer rows."""
    import shutil

    weights = sorted((filled.root / "data" / "weights").glob("task=*/*.parquet"))
    n = filled.sql("SELECT count(*) AS n FROM weights")["n"][0]
    shutil.copy(weights[0], weights[0].with_name("eorphan.parquet"))
    assert filled.sql("SELECT count(*) AS n FROM weights")["n"][0] == n
    weights[0].unlink()
    with pytest.raises(RegistryError, match="missing|No files found"):
        filled.sql("SELECT count(*) AS n FROM weights")


def test_concurrent_creators_all_get_one_registry(tmp_path):
    """Four processes creating the same new registry at once: every one succeeds and they
    share one catalog (before: 'Could not set lock on .catalog.duckdb.tmp', duplicate key)."""
    path = tmp_path / "new"
    code = (
        "import sys; from degeneracy.registry.store import Registry; "
        "r = Registry.create(sys.argv[1]); print(r.sql('SELECT count(*) AS n FROM meta')['n'][0])"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=HANG_S) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [r[1][-500:] for r in results]
    assert sorted(x.name for x in path.iterdir()) == ["catalog.duckdb", "data"]
    Registry.open(path).write_ensemble(condition(), make_records([0]))


def test_a_create_killed_midway_is_resumed(tmp_path):
    path = tmp_path / "half"
    Registry.create(path)
    (path / "catalog.duckdb").unlink()  # as if killed before the catalog was linked in
    (path / ".catalog.duckdb.4242.tmp").write_bytes(b"partial")
    reg = Registry.create(path)
    assert reg.sql("SELECT count(*) AS n FROM networks")["n"][0] == 0
    assert reg.check().findings["temp"] == [".catalog.duckdb.4242.tmp"]
    assert reg.check(repair=True).ok and not (path / ".catalog.duckdb.4242.tmp").exists()


def test_a_plain_client_never_reads_the_originals_files_from_a_copy(filled, tmp_path):
    """The stored views name files by absolute path. Opened by a plain DuckDB client, a copy's
    views used to read the original's files silently; now they refuse until any degeneracy
    command has opened the copy, and then read the copy's own files."""
    dest = tmp_path / "copy"
    shutil.copytree(filled.root, dest)
    con = duckdb.connect(str(dest / "catalog.duckdb"), read_only=True)
    try:
        with pytest.raises(duckdb.Error, match="copied or moved"):
            con.execute("SELECT count(*) FROM weights").fetchall()
        assert con.execute("SELECT count(*) FROM networks").fetchone()[0] == 6  # tables: fine
    finally:
        con.close()
    Registry.open(dest)  # any command: the views now name the copy's files
    shutil.rmtree(filled.root)  # the original is gone; the copy must not need it
    con = duckdb.connect(str(dest / "catalog.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM weights").fetchone()[0] == 60
    finally:
        con.close()


def test_a_sweep_keeps_training_while_a_reader_holds_the_catalog(registry, monkeypatch):
    """The reader is there before the sweep starts (it cannot even record the sweep) and
    stays to the end: every ensemble is still trained and kept, the sweep ends with one clear
    error naming pending/, and a rerun once the reader is gone registers them all and trains
    nothing."""
    from degeneracy import api
    from degeneracy.registry import connection

    spec = (
        'task = "flipflop"\nhidden = 8\nseeds = 2\ncomplexity = [1, 2]\n'
        "[train]\nmax_epochs = 1\nsteps_per_epoch = 2\n"
    )
    with _reader_holding(registry):
        monkeypatch.setattr(connection, "LOCK_TIMEOUT_S", 0.3)
        with pytest.raises(RegistryError, match="2 trained ensemble"):
            api.sweep(registry, spec, "cpu")
    assert len(list((registry.root / "pending").glob("*.json"))) == 2
    again = api.sweep(registry, spec, "cpu")
    assert again.summaries == [] and again.trained == 0
    assert registry.check().ok
    assert registry.sql("SELECT count(*) AS n FROM networks")["n"][0] == 4
    assert registry.sql("SELECT count(*) AS n FROM sweeps")["n"][0] == 1


def test_networks_a_locked_catalog_kept_waiting_count_as_trained(registry, monkeypatch):
    """The catalog is locked when each ensemble finishes and free again at the end of the run:
    the networks are registered then, and the run reports them (it said "0 trained" for an
    ensemble that had waited in pending/, and `train` had no summary to print)."""
    from degeneracy import api
    from degeneracy.registry import writer

    real = writer.register_pending
    calls = {"n": 0}

    def locked_at_first(reg):
        calls["n"] += 1
        if calls["n"] <= 3:  # the run's start and each ensemble's write: the catalog is held
            raise RegistryError("catalog locked")
        return real(reg)

    monkeypatch.setattr(writer, "register_pending", locked_at_first)
    spec = (
        'task = "flipflop"\nhidden = 8\nseeds = 2\ncomplexity = [1, 2]\n'
        "[train]\nmax_epochs = 1\nsteps_per_epoch = 2\n"
    )
    res = api.sweep(registry, spec, "cpu")
    assert res.trained == 4 and not any(s.pending for s in res.summaries)
    assert registry.sql("SELECT count(*) AS n FROM networks")["n"][0] == 4
    assert registry.check().ok


def test_the_storage_layer_imports_no_analysis():
    """Layering: registry and schema never import the analysis layer (the metric SQL functions
    are handed to query connections by `degeneracy.open`)."""
    import ast

    root = Path(__file__).resolve().parents[2] / "degeneracy"
    for folder in ("registry", "schema"):
        for path in (root / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                assert not any(n.startswith("degeneracy.analysis") for n in names), path


def test_a_bare_registry_has_no_metric_functions_and_degeneracy_open_adds_them(filled):
    from degeneracy import api

    bare = Registry.open(filled.root)
    with pytest.raises(RegistryError):
        bare.sql("SELECT dsa_distance('a', 'b') AS d")
    got = api.open(filled.root).sql("SELECT pif_distance(NULL, NULL) AS d")
    assert got["d"][0] is None


def test_a_result_polars_cannot_hold_is_one_clear_error(filled):
    with pytest.raises(RegistryError, match="Polars cannot hold"):
        filled.sql("SELECT INTERVAL '1 month' AS i")
    assert filled.fetch("SELECT INTERVAL '1 month' AS i", arrow=True).num_rows == 1
