"""The README's Python blocks run, and every example spec parses and plans."""

import re
from pathlib import Path

import pytest

from degeneracy.training.sweep import parse_spec
from tests.cli.helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_python_blocks_run_in_order(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    api = next(b for b in blocks if "import degeneracy as dg" in b)
    namespace: dict = {}
    exec(compile(api, "README.md (Python API)", "exec"), namespace)  # creates runs/
    for i, block in enumerate(b for b in blocks if b is not api):
        exec(compile(block, f"README.md (python block {i})", "exec"), {})


@pytest.mark.parametrize(
    "spec", sorted(p for p in (ROOT / "examples").rglob("*.toml")), ids=lambda p: p.name
)
def test_every_example_spec_parses_and_dry_runs(spec, tmp_path):
    name, jobs = parse_spec(spec.read_text(), str(spec))
    assert jobs and name
    if spec.parent.name == "examples":  # the reproduce specs are covered by tests/reproduce
        r = run_cli("sweep", spec, "--dry-run", registry=tmp_path / "none")
        assert r.returncode == 0 and "condition(s)" in r.stdout, r.stderr


def _readme_commands() -> list[list[str]]:
    """Every `degeneracy ...` invocation in README's bash blocks, as argv (comments dropped)."""
    import shlex

    out = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                argv = shlex.split(part, comments=True)
                if argv[:1] == ["degeneracy"]:
                    out.append(argv[1:])
    return out


def test_every_readme_command_names_a_command_and_options_that_exist():
    """Each README command line parses against the CLI as it is (a renamed option or command
    fails here); the ones that run quickly also run, in tests/cli."""
    import click
    import typer.main

    from degeneracy.cli.app import app

    root = typer.main.get_command(app)
    commands = _readme_commands()
    assert len(commands) >= 20
    for argv in commands:
        with root.make_context("degeneracy", list(argv)) as ctx:
            name, sub, rest = root.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
            assert sub is not None, argv
            try:
                sub.make_context(name, rest, parent=ctx)
            except click.exceptions.Exit:  # --help
                pass


def test_the_ci_test_command_runs_the_slow_tests_too():
    """`slow` is for skipping locally (`-m "not slow"`); what `.ci/run` executes keeps them."""
    text = README.read_text()
    command = re.search(r"<!-- ci:test -->\n```bash\n(.*?)```", text, flags=re.S).group(1)
    pytest_args = command.split("-m pytest", 1)[1]
    assert " -m " not in pytest_args and " -k " not in pytest_args and "slow" not in command
