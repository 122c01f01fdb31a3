import json

import duckdb
import pytest

from degeneracy.registry.errors import RegistryError
from degeneracy.registry.store import Registry
from degeneracy.schema import catalog
from degeneracy.schema.arrays import ARRAY_SCHEMAS
from degeneracy.schema.tables import TABLES
from tests.factories import condition, make_records, snapshot


def _set_version(reg, version):
    con = duckdb.connect(str(reg.layout.catalog))
    con.execute("DELETE FROM schema_version")
    con.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [version])
    con.close()


def test_catalog_tables_match_their_arrow_schemas(registry):
    con = duckdb.connect(str(registry.layout.catalog), read_only=True)
    try:
        for name, (schema, _) in TABLES.items():
            cols = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()]
            assert cols == schema.names
        for kind, schema in ARRAY_SCHEMAS.items():
            cols = [r[0] for r in con.execute(f"DESCRIBE {kind}").fetchall()]
            assert cols == schema.names
    finally:
        con.close()


def test_a_newer_schema_is_refused_and_left_untouched(filled):
    _set_version(filled, catalog.SCHEMA_VERSION + 1)
    before = snapshot(filled.root)
    with pytest.raises(RegistryError, match="newer"):
        Registry.open(filled.root)
    assert snapshot(filled.root) == before


def test_an_older_schema_is_migrated_in_place(filled, monkeypatch):
    def add_notes(con):
        con.execute("ALTER TABLE networks ADD COLUMN notes VARCHAR")

    monkeypatch.setattr(catalog, "SCHEMA_VERSION", catalog.SCHEMA_VERSION + 1)
    monkeypatch.setitem(catalog.MIGRATIONS, catalog.SCHEMA_VERSION - 1, add_notes)
    reg = Registry.open(filled.root)
    assert reg.info()["schema_version"] == catalog.SCHEMA_VERSION
    assert "notes" in reg.sql("SELECT * FROM networks LIMIT 1").columns
    # views still work after the migration (they were recreated inside it)
    assert reg.sql("SELECT count(*) AS n FROM networks_labeled")["n"][0] == 6


def test_a_version_1_catalog_is_migrated_to_the_current_one_and_keeps_its_data(filled):
    con = duckdb.connect(str(filled.layout.catalog))
    con.execute("DROP TABLE prepared")
    con.execute("DROP TABLE files")
    con.execute("DROP VIEW networks_labeled")
    con.execute("ALTER TABLE networks DROP COLUMN provenance")
    con.execute("ALTER TABLE networks DROP COLUMN train_loss")
    con.close()
    _set_version(filled, 1)
    before = filled.sql("SELECT network_id, final_loss FROM networks ORDER BY 1")
    reg = Registry.open(filled.root)
    assert reg.info()["schema_version"] == 5
    assert reg.sql("SELECT count(*) AS n FROM prepared")["n"][0] == 0  # 2: prepared
    assert reg.sql("SELECT network_id, final_loss FROM networks ORDER BY 1").equals(before)
    # 3: train_loss, unknown (NULL) for networks stored before it, also in networks_labeled
    assert reg.sql("SELECT count(train_loss) AS n FROM networks_labeled")["n"][0] == 0
    # 4: provenance, likewise unknown before it; new networks carry it
    assert reg.sql("SELECT count(provenance) AS n FROM networks_labeled")["n"][0] == 0
    reg.write_ensemble(condition(complexity=9), make_records([0]))
    got = reg.sql("SELECT provenance FROM networks WHERE complexity = 9")["provenance"][0]
    assert json.loads(got)["degeneracy"] and "duckdb" in json.loads(got)
    # 5: files, the fingerprints check compares against: none for the files written before
    # it (a note, not a problem, until --repair records them), 4 for the new ensemble
    assert reg.sql("SELECT count(*) AS n FROM files")["n"][0] == 4
    res = reg.check()
    assert res.ok and len(res.findings["unrecorded"]) == 8
    assert not reg.check(repair=True).findings["unrecorded"]


def test_a_failing_migration_changes_nothing(filled, monkeypatch):
    def half_then_fail(con):
        con.execute("ALTER TABLE networks ADD COLUMN notes VARCHAR")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(catalog, "SCHEMA_VERSION", catalog.SCHEMA_VERSION + 1)
    monkeypatch.setitem(catalog.MIGRATIONS, catalog.SCHEMA_VERSION - 1, half_then_fail)
    with pytest.raises(RuntimeError, match="migration bug"):
        Registry.open(filled.root)
    con = duckdb.connect(str(filled.layout.catalog), read_only=True)
    try:
        assert catalog.stored_version(con) == catalog.SCHEMA_VERSION - 1
        cols = [r[0] for r in con.execute("DESCRIBE networks").fetchall()]
        assert "notes" not in cols
        assert con.execute("SELECT count(*) FROM networks").fetchone()[0] == 6
    finally:
        con.close()


def test_views_bind_before_any_data_is_written(registry):
    for kind in ARRAY_SCHEMAS:
        assert registry.sql(f"SELECT count(*) AS n FROM {kind}")["n"][0] == 0
    registry.write_ensemble(condition(), make_records([0]))
    assert registry.sql("SELECT count(*) AS n FROM curves")["n"][0] == 5
