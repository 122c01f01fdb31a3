"""The real entry point in its own process, and the in-process runner the other CLI tests use.

Most CLI tests call `degeneracy.cli.app.run` in-process (tests/cli/helpers.py); these few start
the real thing and check the in-process runner gives the same exit codes and the same bytes."""

import os
import signal
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from degeneracy.cli import common
from tests.cli.helpers import HANG_S, assert_user_error, run_cli, run_cli_process

BAD_INPUTS = [
    ("query",),  # a usage error (typer's), raised before any command runs
    ("nonsense-command",),
    ("ls",),  # a RegistryError inside a command: no registry there
    ("query", "SELEC 1"),
]


def test_help_through_the_real_entry_point():
    r = run_cli_process("--help")
    assert r.returncode == 0, r.stderr
    assert "query" in r.stdout and "train" in r.stdout and r.stderr == ""


@pytest.mark.parametrize("args", BAD_INPUTS, ids=" ".join)
def test_bad_input_is_the_same_one_line_in_a_process_and_in_process(tmp_path, args):
    real = run_cli_process(*args, registry=tmp_path / "none")
    assert_user_error(real)
    mine = run_cli(*args, registry=tmp_path / "none")
    assert (mine.returncode, mine.stdout, mine.stderr) == (
        real.returncode,
        real.stdout,
        real.stderr,
    )


def test_a_query_through_the_real_entry_point(filled):
    sql = "SELECT complexity, count(*) AS n FROM networks GROUP BY ALL ORDER BY ALL"
    real = run_cli_process("query", sql, "-f", "csv", registry=filled.root)
    assert real.returncode == 0 and real.stdout == "complexity,n\n1,3\n2,3\n", real.stderr
    assert run_cli("query", sql, "-f", "csv", registry=filled.root).stdout == real.stdout
    # $DEGENERACY_REGISTRY names the registry for a process too
    env = {"DEGENERACY_REGISTRY": str(filled.root)}
    assert run_cli_process("query", sql, "-f", "csv", env=env).stdout == real.stdout


def test_the_console_script_is_main():
    try:
        (script,) = metadata.entry_points(group="console_scripts", name="degeneracy")
    except ValueError:
        pytest.skip("degeneracy is not installed (pip install -e .): no console script")
    assert script.value == "degeneracy.cli.app:main"
    exe = Path(sys.executable).with_name("degeneracy")
    if exe.exists():  # the installed script (this checkout's code first on PYTHONPATH)
        env = {k: v for k, v in os.environ.items() if k != "DEGENERACY_REGISTRY"}
        r = subprocess.run([exe, "query"], capture_output=True, text=True, env=env, timeout=HANG_S)
        assert_user_error(r, "Missing argument")


def test_main_exits_with_what_run_returns(monkeypatch, capsys):
    from degeneracy.cli.app import main

    monkeypatch.setattr(sys, "argv", ["degeneracy", "query"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("degeneracy: error: Missing argument")


def test_an_in_process_run_leaves_this_process_as_it_was(tmp_path, monkeypatch):
    monkeypatch.setenv("DEGENERACY_REGISTRY", str(tmp_path / "mine"))
    sigterm, cwd = signal.getsignal(signal.SIGTERM), os.getcwd()
    r = run_cli("-q", "init", cwd=tmp_path, env={"DEGENERACY_REGISTRY": str(tmp_path / "env")})
    assert r.returncode == 0 and (tmp_path / "env" / "catalog.duckdb").exists(), r.stderr
    assert signal.getsignal(signal.SIGTERM) is sigterm and os.getcwd() == cwd
    assert os.environ["DEGENERACY_REGISTRY"] == str(tmp_path / "mine")
    assert vars(common.state) == {}  # --quiet and the registry do not carry over
    # nor does the developer's $DEGENERACY_REGISTRY reach a call that does not set it
    assert run_cli("init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "degeneracy-registry" / "catalog.duckdb").exists()
    assert not (tmp_path / "mine").exists()


def test_an_in_process_crash_is_a_traceback_and_exit_1(monkeypatch):
    """What a bug looks like from a process, so `"Traceback" not in stderr` still means it."""

    def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("degeneracy.cli.app.app", boom)
    r = run_cli("ls")
    assert r.returncode == 1 and "Traceback" in r.stderr and "RuntimeError: a bug" in r.stderr


def test_in_process_warnings_reach_stderr(monkeypatch):
    """pytest records warnings; a process prints them, and so must the in-process runner."""
    import warnings

    def warns(*args, **kwargs):
        warnings.warn("careful", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr("degeneracy.cli.app.app", warns)
    r = run_cli("ls")
    assert r.returncode == 0 and "UserWarning: careful" in r.stderr
