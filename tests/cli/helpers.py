import os
import subprocess
import sys


def run_cli(*args, registry=None, cwd=None, env=None, timeout=600):
    """Run the real console entry point in a subprocess (as a user would).

    The timeout is generous: on 2 cores next to another job a CLI test took over 120 s."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("DEGENERACY_REGISTRY", None) if env is None else None
    cmd = [sys.executable, "-m", "degeneracy"]
    if registry is not None:
        cmd += ["--registry", str(registry)]
    return subprocess.run(
        cmd + [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )


def assert_user_error(result, *fragments):
    """Exit code 2, exactly one line on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
