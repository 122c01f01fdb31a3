import csv
import io
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from degeneracy.cli.app import app
from degeneracy.registry.errors import RegistryError
from tests.cli.helpers import HANG_S, assert_user_error, has_open, popen_cli, run_cli, wait_for

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands():
    import typer.main

    return sorted(typer.main.get_command(app).commands)


def test_the_app_as_imported_has_every_command():
    """`from degeneracy.cli.app import app` once held 7 of the commands (the rest registered
    only when `main()` ran), so the docs test below silently checked those 7."""
    assert set(_commands()) >= {
        "init",
        "ingest",
        "query",
        "ls",
        "label",
        "info",
        "export",
        "check",
        "train",
        "sweep",
        "analyze",
        "distances",
        "report",
        "demo",
        "reproduce",
    }


def test_every_command_has_help_with_an_example_and_is_in_the_readme():
    readme = README.read_text()
    for name in _commands():
        r = run_cli(name, "--help")
        assert r.returncode == 0, (name, r.stderr)
        assert "Example" in r.stdout, name
        assert re.search(rf"degeneracy (\S+ )*{name}\b", readme), f"{name} missing from README"


def test_no_option_help_loses_text_to_the_help_renderer():
    """The help renderer drops `<word>` as markup: "[default: <registry>/report]" printed as
    "[default: /report]"."""
    import typer.main

    for name, command in typer.main.get_command(app).commands.items():
        for param in command.params:
            assert not re.search(r"<[A-Za-z_]+>", getattr(param, "help", None) or ""), (
                name,
                param.name,
            )


def test_init_creates_and_reopens(tmp_path):
    r = run_cli("init", tmp_path / "reg")
    assert r.returncode == 0 and (tmp_path / "reg" / "catalog.duckdb").exists()
    assert run_cli("init", tmp_path / "reg").returncode == 0


def test_init_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "x").write_text("keep")
    assert_user_error(run_cli("init", tmp_path / "f"), "not an empty folder")


def test_registry_from_environment_and_default(tmp_path):
    r = run_cli("init", env={"DEGENERACY_REGISTRY": str(tmp_path / "env_reg")})
    assert r.returncode == 0 and (tmp_path / "env_reg" / "catalog.duckdb").exists()
    r = run_cli("init", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "degeneracy-registry" / "catalog.duckdb").exists()


def test_query_formats(filled, tmp_path):
    sql = "SELECT complexity, count(*) AS n FROM networks GROUP BY ALL ORDER BY ALL"
    r = run_cli("query", sql, "--format", "csv", registry=filled.root)
    assert list(csv.reader(io.StringIO(r.stdout))) == [["complexity", "n"], ["1", "3"], ["2", "3"]]
    r = run_cli("query", sql, "-f", "json", registry=filled.root)
    assert json.loads(r.stdout) == [{"complexity": 1, "n": 3}, {"complexity": 2, "n": 3}]
    out = tmp_path / "q.parquet"
    r = run_cli("query", sql, "-f", "parquet", "--out", out, registry=filled.root)
    assert r.returncode == 0 and pq.read_table(out).to_pydict() == {
        "complexity": [1, 2],
        "n": [3, 3],
    }
    r = run_cli("query", sql, registry=filled.root)
    assert "complexity" in r.stdout and r.returncode == 0
    assert_user_error(run_cli("query", sql, "-f", "parquet", registry=filled.root), "--out")


@pytest.mark.parametrize(
    "sql, fragment",
    [
        ("SELEC 1", "bad SQL"),
        ("DROP TABLE networks", "only read queries"),
        ("SELECT nope FROM networks", "query failed"),
        ("SELECT * FROM read_csv('/etc/passwd')", "query failed"),
    ],
)
def test_bad_sql_is_one_line_exit_2(filled, sql, fragment):
    from tests.factories import snapshot

    before = snapshot(filled.root)
    assert_user_error(run_cli("query", sql, registry=filled.root), fragment)
    assert snapshot(filled.root) == before


def test_ls_groups_by_condition(filled):
    r = run_cli("ls", "-f", "json", registry=filled.root)
    rows = json.loads(r.stdout)
    assert [(x["complexity"], x["networks"], x["converged_frac"]) for x in rows] == [
        (1, 3, pytest.approx(2 / 3, abs=1e-3)),
        (2, 3, pytest.approx(2 / 3, abs=1e-3)),
    ]
    r = run_cli("ls", "--where", "complexity = 2", "-f", "csv", registry=filled.root)
    assert r.stdout.count("\n") == 2


def test_ls_and_analyze_split_a_condition_trained_at_two_thresholds(registry):
    from tests.factories import condition, make_records

    for thr in (0.01, 0.02):
        registry.write_ensemble(
            condition(complexity=1, factors={"train": {"threshold": thr}}),
            make_records(range(3), steps=8, rng_seed=int(thr * 100)),
        )
    rows = json.loads(run_cli("ls", "-f", "json", registry=registry.root).stdout)
    assert [(x["train.threshold"], x["networks"]) for x in rows] == [("0.01", 3), ("0.02", 3)]
    r = run_cli("analyze", "--metrics", "behavior", "--all", "-f", "json", registry=registry.root)
    assert r.returncode == 0, r.stderr
    # settings read back as their JSON values (numbers here), so they sort and plot as such
    assert [(x["train.threshold"], x["n"]) for x in json.loads(r.stdout)] == [
        (0.01, 3),
        (0.02, 3),
    ]


def test_analyze_dsa_grid_prints_the_direction_at_every_point(registry):
    from tests.factories import condition, make_records

    for c in (1, 2):
        registry.write_ensemble(
            condition(complexity=c), make_records(range(4), steps=30, rng_seed=c)
        )
    r = run_cli(
        "analyze",
        "--dsa-grid",
        "complexity",
        "--params",
        'dsa={"fit": "centred", "trials": 0}',
        "-f",
        "csv",
        registry=registry.root,
    )
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(int(x["n_delays"]), int(x["rank"])) for x in rows] == [
        (d, k) for d in (5, 10, 20) for k in (5, 10, 20)
    ]
    assert {x["verdict"] for x in rows} <= {"resolved", "not resolved", "n/a"}
    assert_user_error(
        run_cli("analyze", "--dsa-grid", "complexity", "--all", registry=registry.root),
        "converged networks only",
    )


def test_bad_metric_parameters_are_one_line(filled):
    for args in (
        ("distances", "--metric", "pif", "--params", "{bad"),
        ("analyze", "--dsa-grid", "complexity", "--params", "dsa={bad"),
    ):
        assert_user_error(run_cli(*args, registry=filled.root), "not valid JSON")


def test_ls_on_missing_registry(tmp_path):
    assert_user_error(run_cli("ls", registry=tmp_path / "none"), "no registry at")


def test_label_then_group_by_it(filled):
    r = run_cli("label", "batch", "--value", "A", "--where", "seed = 0", registry=filled.root)
    assert r.returncode == 0 and "labelled 2" in r.stdout
    r = run_cli(
        "query",
        "SELECT batch, count(*) AS n FROM networks_labeled GROUP BY ALL ORDER BY ALL NULLS LAST",
        "-f",
        "json",
        registry=filled.root,
    )
    assert json.loads(r.stdout) == [{"batch": "A", "n": 2}, {"batch": None, "n": 4}]
    assert_user_error(
        run_cli("label", "batch", "--value", "B", "--where", "nonsense = 1", registry=filled.root),
        "query failed",
    )


def test_info_json(filled):
    r = run_cli("info", "-f", "json", registry=filled.root)
    data = json.loads(r.stdout)
    assert data["counts"]["networks"] == 6 and data["schema_version"] >= 1
    assert Path(data["root"]) == filled.root


def test_export_unknown_ensemble(filled, tmp_path):
    assert_user_error(
        run_cli("export", "e_nope", tmp_path / "x", registry=filled.root), "no ensemble"
    )


SLOW_SQL = "SELECT sum(a.range * b.range) FROM range(400000) a, range(400000) b"


def test_a_query_stops_at_its_timeout_and_on_ctrl_c(filled):
    import signal
    import subprocess
    import time

    t0 = time.monotonic()
    r = run_cli("query", SLOW_SQL, "--timeout", "1", registry=filled.root)
    assert_user_error(r, "timeout")
    assert time.monotonic() - t0 < 60  # the full query takes minutes
    # Ctrl-C needs a real process. Signal it once it has the catalog open (in the command,
    # the query starting): a fixed sleep could land in its start-up imports on a busy machine
    p = popen_cli(
        "query",
        SLOW_SQL,
        registry=filled.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert wait_for(lambda: has_open(p.pid, filled.root / "catalog.duckdb"), p), p.communicate()
    time.sleep(2)  # well into the query
    p.send_signal(signal.SIGINT)
    t1 = time.monotonic()
    _, err = p.communicate(timeout=HANG_S)
    assert p.returncode == 130 and err.strip() == "degeneracy: interrupted", err
    assert time.monotonic() - t1 < 30
    # the registry still answers
    assert run_cli("query", "SELECT 1 AS x", registry=filled.root).returncode == 0


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


BAD_INPUTS = [
    (("train", "flipflop", "--seed-start", "-5"), "--seed-start"),
    (("train", "flipflop", "--seeds", "0"), "--seeds"),
    (("train", "flipflop", "--seeds", "-1"), "--seeds"),
    (("train", "flipflop", "--hidden", "abc"), "--hidden"),
    (("train", "flipflop", "--bogus", "1"), "No such option"),
    (("train", "nonsense"), "unknown task"),
    (("query",), "Missing argument"),
    (("nonsense-command",), "No such command"),
    (("query", "SELECT 1", "-o", "{tmp}/nowhere/x.csv"), "No such file or directory"),
    (("report", "-o", "/proc/no/report"), "No such file or directory"),
    (("export", "{eid}", "{tmp}/full"), "not empty"),
    (("export", "{eid}", "{tmp}/a-file.csv"), "is a file"),
    (("sweep", "{tmp}/empty-axis.toml"), "hidden = []"),
    (("ingest", "{tmp}/not-an-exchange"), "no ensemble.json"),
    (("check", "--drop-missing"), "--drop-missing needs --repair"),
]


@pytest.mark.parametrize(("args", "fragment"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_leaves_the_registry_as_it_was(
    filled, tmp_path, args, fragment
):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    (tmp_path / "a-file.csv").write_text("mine")
    (tmp_path / "empty-axis.toml").write_text('task = "flipflop"\nhidden = []\nseeds = 2\n')
    (tmp_path / "not-an-exchange").mkdir()
    eid = filled.sql("SELECT min(ensemble_id) AS e FROM ensembles")["e"][0]
    before = _snapshot(filled.root)
    args = [a.format(tmp=tmp_path, eid=eid) for a in args]
    assert_user_error(run_cli(*args, registry=filled.root), fragment)
    assert _snapshot(filled.root) == before
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert (tmp_path / "a-file.csv").read_text() == "mine"


def test_version():
    from degeneracy import __version__

    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout == f"degeneracy {__version__}\n"


def test_ls_names_ensembles_and_export_takes_their_prefix(filled, tmp_path):
    from degeneracy import api

    table = api.conditions(filled)
    full = sorted(filled.sql("SELECT ensemble_id FROM ensembles")["ensemble_id"])
    shown = sorted(table["ensembles"].to_list())
    assert shown == [e[:12] for e in full]  # one ensemble per condition here
    out = api.export(filled, shown[0], tmp_path / "by_prefix")
    api.export(filled, full[0], tmp_path / "by_id")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in (tmp_path / "by_id").iterdir()
    )
    common = full[0][: next(i for i, (a, b) in enumerate(zip(*full)) if a != b)]
    with pytest.raises(RegistryError, match="ambiguous"):
        api.export(filled, common, tmp_path / "x")
    with pytest.raises(RegistryError, match="no ensemble"):
        api.export(filled, "", tmp_path / "y")


def test_table_cells_are_cut_but_csv_keeps_everything(tmp_path):
    from degeneracy.cli.output import MAX_CELL, Format, emit

    long = json.dumps({"k": "x" * 200})
    emit(["factors"], [(long,)], Format.table, tmp_path / "t.txt")
    text = (tmp_path / "t.txt").read_text()
    assert "…" in text and "x" * MAX_CELL not in text
    emit(["factors"], [(long,)], Format.csv, tmp_path / "t.csv")
    assert long.replace('"', '""') in (tmp_path / "t.csv").read_text()


def test_plain_progress_prints_start_throttled_moves_and_the_end(capsys):
    from degeneracy.cli.common import PlainProgress

    t = [0.0]
    bar = PlainProgress(every=30)
    bar._now = lambda: t[0]
    with bar:
        key = bar.add_task("pairs", total=10)  # nothing yet: a refused command prints nothing
        bar.update(key, completed=0)  # first move: printed
        t[0] = 1.0
        bar.update(key, completed=3)  # 1 s after the last line: held
        t[0] = 40.0
        bar.update(key, completed=5)  # 40 s: printed
        t[0] = 41.0
        bar.update(key, completed=10, status="done")  # complete: printed at once
        bar.update(key, completed=10, status="done")  # nothing new: not repeated
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["pairs: 0/10 [0:00]", "pairs: 5/10 [0:40]", "pairs: 10/10 done [0:41]"]
