"""`check`: every kind of damage is found, the safe repairs fix what they can, and nothing
stored is lost on the way."""

import os
import shutil

import pytest

from degeneracy.registry import ids
from degeneracy.registry.errors import RegistryError
from degeneracy.registry.store import Registry
from degeneracy.registry.writer import stage
from tests.cli.helpers import assert_user_error, run_cli
from tests.factories import condition, make_records


def _count(reg, table):
    return reg.sql(f"SELECT count(*) AS n FROM {table}")["n"][0]


def test_a_whole_registry_checks_clean(filled):
    res = filled.check()
    assert res.ok and res.ensembles == 2 and res.files == 8


def test_every_kind_of_damage_is_found_and_the_safe_repairs_lose_nothing(filled):
    root = filled.root
    weights_before = _count(filled, "weights")
    # pending: a finished write whose catalog rows never went in
    cond, recs = condition(complexity=3), make_records([0, 1])
    nid = {r.seed: ids.network_id(cond.to_dict(), r.seed) for r in recs}
    eid = ids.ensemble_id(cond.to_dict(), [0, 1])
    stage(filled, cond, recs, nid, eid, None, "trained")
    # orphan: a data file nobody registered (a crash before its journal entry)
    first = sorted((root / "data" / "weights").glob("task=*/*.parquet"))[0]
    shutil.copy(first, first.with_name("eorphan0000000000.parquet"))
    # temp: an interrupted atomic write
    (first.parent / ".x.parquet.123.tmp").write_bytes(b"partial")
    # placeholder gone
    (root / "data" / "outputs" / "empty.parquet").unlink()
    res = filled.check()
    assert not res.ok
    f = res.findings
    assert len(f["pending"]) == 1 and f["orphan"] == [
        "data/weights/task=flipflop/eorphan0000000000.parquet"
    ]
    assert len(f["temp"]) == 1 and f["placeholder"] == ["data/outputs/empty.parquet"]
    assert f["missing"] == [] and f["unreadable"] == []

    fixed = filled.check(repair=True)
    assert fixed.ok, fixed.findings
    assert (root / "quarantine" / "data/weights/task=flipflop/eorphan0000000000.parquet").exists()
    assert _count(filled, "networks") == 8  # the pending two are registered
    assert _count(filled, "weights") > weights_before


def test_a_file_changed_after_writing_is_found_by_its_fingerprint(filled):
    """Still valid Parquet, same schema, so reads succeed: only the recorded rows, size and
    SHA-256 can tell that the file is not what was written."""
    import pyarrow.parquet as pq

    victim = sorted((filled.root / "data" / "weights").glob("task=*/*.parquet"))[0]
    rel = victim.relative_to(filled.root).as_posix()
    table = pq.read_table(victim)
    pq.write_table(table.slice(0, table.num_rows - 1), victim)  # one row fewer
    res = filled.check()
    assert not res.ok and res.findings["changed"] == [f"{rel} (rows, bytes, sha256 differ)"]
    values = table.column("values").to_pylist()
    values[0] = [v + 1.0 for v in values[0]]  # same rows, other numbers
    pq.write_table(
        table.set_column(table.schema.get_field_index("values"), "values", [values]), victim
    )
    assert filled.check().findings["changed"][0].startswith(rel)
    fixed = filled.check(repair=True, drop_missing=True)
    assert fixed.ok, fixed.findings
    assert _count(filled, "networks") == 3  # its ensemble is unregistered, the other stays


def test_duplicate_rows_in_the_views_are_found(filled):
    """An ensemble's files copied and registered a second time under another id (what a
    hand-made registration could do): every row of those networks is in the views twice."""
    import duckdb

    from degeneracy.schema.catalog import create_views

    con = duckdb.connect(str(filled.layout.catalog))
    eid, *files = con.execute(
        "SELECT ensemble_id, weights_file, trajectories_file, outputs_file, curves_file "
        "FROM ensembles LIMIT 1"
    ).fetchone()
    copies = [f.replace(eid, "ecopy") for f in files]
    for src, dst in zip(files, copies):
        shutil.copy(filled.root / src, filled.root / dst)
    con.execute(
        "INSERT INTO ensembles SELECT 'ecopy', * EXCLUDE (ensemble_id, weights_file, "
        "trajectories_file, outputs_file, curves_file), ?, ?, ?, ? FROM ensembles "
        "WHERE ensemble_id = ?",
        [*copies, eid],
    )
    create_views(con, str(filled.layout.data))
    con.close()
    res = Registry.open(filled.root).check()
    assert not res.ok
    assert [d.split(":")[0] for d in res.findings["duplicate"]] == [
        "weights",
        "trajectories",
        "outputs",
        "curves",
    ]


def test_a_missing_file_is_reported_and_dropped_only_when_asked(filled):
    victim = sorted((filled.root / "data" / "trajectories").glob("task=*/*.parquet"))[0]
    victim.unlink()
    res = filled.check()
    assert res.findings["missing"] == [victim.relative_to(filled.root).as_posix()]
    with pytest.raises(RegistryError, match="check"):
        filled.sql("SELECT count(*) FROM trajectories")
    kept = filled.check(repair=True)
    assert not kept.ok and _count(filled, "networks") == 6  # nothing dropped unasked
    done = filled.check(repair=True, drop_missing=True)
    assert done.ok and _count(filled, "networks") == 3
    assert _count(filled, "trajectories") > 0  # the other ensemble reads again


def test_check_cli_exit_codes_and_a_damaged_catalog(filled, tmp_path):
    r = run_cli("check", registry=filled.root)
    assert r.returncode == 0 and "whole" in r.stdout
    sorted((filled.root / "data" / "curves").glob("task=*/*.parquet"))[0].unlink()
    r = run_cli("check", registry=filled.root)
    assert r.returncode == 1 and "missing" in r.stdout and "Traceback" not in r.stderr
    # a catalog overwritten in the middle: one line everywhere, check names it
    cat = filled.root / "catalog.duckdb"
    data = bytearray(cat.read_bytes())
    data[4096:8192] = b"\xff" * 4096
    cat.write_bytes(bytes(data))
    r = run_cli("check", registry=filled.root)
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
    for args in (("ls",), ("query", "SELECT count(*) FROM networks"), ("analyze",), ("report",)):
        r = run_cli(*args, registry=filled.root)
        assert r.returncode in (0, 2) and "Traceback" not in r.stderr, (args, r.stderr)
    assert_user_error(run_cli("check", "--drop-missing", registry=filled.root), "--repair")


def test_reading_a_missing_or_damaged_file_is_one_clear_error(filled):
    """Array reads (analyze's feature learning, report, load_*) used to end in a pyarrow
    traceback when a registered file was gone or damaged."""
    ids = filled.sql("SELECT network_id FROM networks ORDER BY 1")["network_id"].to_list()
    traj = sorted((filled.root / "data" / "trajectories").glob("task=*/*.parquet"))[0]
    traj.unlink()
    with pytest.raises(RegistryError, match="missing: .*check"):
        filled.load_trajectories(ids)
    weights = sorted((filled.root / "data" / "weights").glob("task=*/*.parquet"))[0]
    weights.write_bytes(weights.read_bytes()[:100])  # truncated: unreadable
    with pytest.raises(RegistryError, match="unreadable: .*check"):
        filled.load_weights(ids)
    assert filled.check().findings["unreadable"] == [weights.relative_to(filled.root).as_posix()]


def test_a_writer_removes_temp_files_of_dead_processes_on_this_host_only(filled):
    """What a write killed mid-file leaves; the next write clears it when its process is gone
    on this host. A live process's file, or another host's (a shared filesystem), stays."""
    import subprocess
    import sys

    from degeneracy.registry.layout import temp_path

    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(done.stdout)
    folder = filled.root / "data" / "weights" / "task=flipflop"
    mine = temp_path(folder / "x.parquet")
    dead = mine.with_name(mine.name.replace(f".{os.getpid()}.tmp", f".{dead_pid}.tmp"))
    alive = mine.with_name(mine.name.replace(f".{os.getpid()}.tmp", f".{os.getppid()}.tmp"))
    foreign = folder / f".x.parquet.otherhost.{dead_pid}.tmp"
    for p in (dead, alive, foreign):
        p.write_bytes(b"partial")
    filled.write_ensemble(condition(complexity=7), make_records([0]))
    assert not dead.exists() and alive.exists() and foreign.exists()
    assert len(filled.check().findings["temp"]) == 2  # check still lists the rest


def test_an_entry_another_writer_registered_meanwhile_is_skipped(filled, monkeypatch):
    """Two writers list pending/ at once; the first registers and removes an entry while the
    second waits for the lock. The second must skip it (it crashed with FileNotFoundError in
    4-writer runs), not fail its own write."""
    from degeneracy.registry import writer

    cond, recs = condition(complexity=4), make_records([0, 1])
    nid = {r.seed: ids.network_id(cond.to_dict(), r.seed) for r in recs}
    entry = stage(filled, cond, recs, nid, ids.ensemble_id(cond.to_dict(), [0, 1]), None, "x")
    ghost = entry.with_name("egone00000000000.json")  # listed, then removed by the other
    monkeypatch.setattr(writer, "_entries", lambda layout: [ghost, entry])
    assert writer.register_pending(filled) == [entry.stem]
    assert _count(filled, "networks") == 8


def test_network_rows_of_an_unlisted_ensemble_are_found(filled):
    import duckdb

    con = duckdb.connect(str(filled.layout.catalog))
    eid = con.execute("SELECT min(ensemble_id) FROM ensembles").fetchone()[0]
    con.execute("DELETE FROM ensembles WHERE ensemble_id = ?", [eid])
    con.close()
    res = filled.check()
    assert res.findings["dangling"] == [f"3 network row(s) of unlisted ensemble {eid}"]
    assert not res.ok


def test_a_killed_creates_catalog_log_is_a_temp_file_repair_removes(filled):
    """A create killed while building its temporary catalog can leave that catalog's WAL."""
    wal = filled.root / ".catalog.duckdb.somehost.12345.tmp.wal"
    wal.write_bytes(b"x")
    res = filled.check()
    assert res.findings["temp"] == [wal.name] and not res.ok
    assert filled.check(repair=True).ok and not wal.exists()
