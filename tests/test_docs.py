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


def test_the_ci_test_command_runs_the_slow_tests_too():
    """`slow` is for skipping locally (`-m "not slow"`); what `.ci/run` executes keeps them."""
    text = README.read_text()
    command = re.search(r"<!-- ci:test -->\n```bash\n(.*?)```", text, flags=re.S).group(1)
    pytest_args = command.split("-m pytest", 1)[1]
    assert " -m " not in pytest_args and " -k " not in pytest_args and "slow" not in command
