"""No output lands inside a registry, and no query reads its catalog files: each refusal is one
line, exit code 2, and the registry byte-identical (every file hashed before and after)."""

import os

import pytest

from tests.cli.helpers import assert_user_error, run_cli
from tests.factories import snapshot

INSIDE = "an output path inside the registry"


def _cases(root):
    return [
        ("query", "select 1 as a", "-f", "csv", "-o", root / "catalog.duckdb"),
        ("ls", "-f", "csv", "-o", root / "catalog.duckdb"),
        ("query", "select * from weights", "-f", "parquet", "-o",
         root / "data" / "weights" / "task=flipflop" / "zz.parquet"),
        ("distances", "--metric", "pif", "--where", "true", "--out", root / "data" / "d.parquet"),
        ("analyze", "--metrics", "behavior", "-f", "csv", "-o", root / "results.csv"),
        ("report", "--out", root / "data"),
        ("export", "e0", root / "exported"),  # refused before the id is looked up
    ]  # fmt: skip


def test_every_output_path_inside_the_registry_is_refused(filled):
    root = filled.root
    before = snapshot(root)
    for args in _cases(root):
        assert_user_error(run_cli(*args, registry=root), INSIDE)
        assert snapshot(root) == before, args


def test_a_symlink_into_the_registry_is_inside_too(filled, tmp_path):
    link = tmp_path / "innocent"
    os.symlink(filled.root / "data", link)
    before = snapshot(filled.root)
    r = run_cli("query", "select 1 as a", "-f", "csv", "-o", link / "x.csv", registry=filled.root)
    assert_user_error(r, INSIDE)
    assert snapshot(filled.root) == before


def test_outputs_outside_and_the_reports_own_folder_are_written(filled, tmp_path):
    r = run_cli(
        "query", "select 1 as a", "-f", "csv", "-o", tmp_path / "a.csv", registry=filled.root
    )
    assert r.returncode == 0 and (tmp_path / "a.csv").read_text() == "a\n1\n"
    assert filled.outside(filled.root / "report" / "x", allowed="report")
    with pytest.raises(Exception, match=INSIDE):
        filled.outside(filled.root / "reportx", allowed="report")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT size FROM read_blob('{root}/catalog.duckdb')",
        "SELECT * FROM read_text('{root}/catalog.duckdb.wal')",
        "SELECT n FROM (SELECT count(*) AS n FROM read_blob('{root}/catalog.duckdb'))",
        "EXPLAIN ANALYZE SELECT * FROM read_blob('{root}/catalog.duckdb')",
        "WITH x AS (SELECT * FROM read_blob('{root}/catalog.duckdb')) SELECT size FROM x",
    ],
)
def test_a_query_cannot_read_the_catalog_files(filled, sql):
    before = snapshot(filled.root)
    r = run_cli("query", sql.format(root=filled.root), registry=filled.root)
    assert_user_error(r, "tables and views only, not files")
    assert snapshot(filled.root) == before
