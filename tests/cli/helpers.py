"""Running the CLI in tests: in this process (`run_cli`, the default) or as a real process
(`run_cli_process`, only where a test needs one: signals, several processes, the console script).

Both go through `degeneracy.cli.app.run`, the function the console script exits with, so the
exit codes and the one-line errors are the real ones either way. A process start costs 1–3 s
of imports (torch) on a busy machine; most CLI tests need none."""

import contextlib
import os
import signal
import subprocess
import sys
import time
import traceback
import warnings

#: a hang guard for waits on real processes, not a time limit: a slow machine never trips it
HANG_S = 3600


def _argv(args, registry):
    head = [] if registry is None else ["--registry", str(registry)]
    return head + [str(a) for a in args]


def _env_overrides(env):
    """What changes in the environment for one call: $DEGENERACY_REGISTRY unset unless `env`
    sets it (a developer's own must not leak into a test), then `env` (None unsets a name)."""
    return {"DEGENERACY_REGISTRY": None, **(env or {})}


def run_cli(*args, registry=None, cwd=None, env=None):
    """Run `degeneracy ARGS` in this process, as the console script would run it.

    Returns a `subprocess.CompletedProcess` (returncode, stdout, stderr). stdout and stderr are
    captured apart (typer's CliRunner), the environment, working folder, CLI state, SIGTERM
    handler, torch thread count and warning filters are put back afterwards. An exception that
    escapes `run` ends like an uncaught one in a process: its traceback on stderr, exit code 1.
    """
    from typer.testing import CliRunner

    from degeneracy.cli import common
    from degeneracy.cli.app import run

    argv = _argv(args, registry)
    threads = _torch_threads()
    vars(common.state).clear()  # a new process starts from the class defaults
    try:
        with (
            CliRunner().isolation(env=_env_overrides(env)) as (out, err, _),
            contextlib.chdir(cwd if cwd is not None else os.getcwd()),
            _warnings_as_in_a_process(),
        ):
            try:
                code = run(argv)
            except SystemExit as exc:  # as the interpreter maps sys.exit(...)
                code = _exit_status(exc.code)
            except BaseException:  # a bug: printed as an uncaught exception would be
                sys.stderr.write(traceback.format_exc())
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    finally:
        vars(common.state).clear()
        _torch_threads(threads)
    return subprocess.CompletedProcess(["degeneracy", *argv], code, stdout, stderr)


def run_cli_process(*args, registry=None, cwd=None, env=None):
    """Run `python -m degeneracy ARGS` in a new process, to the end; for the tests that need
    the real entry point. No time limit but the hang guard HANG_S."""
    proc = popen_cli(
        *args,
        registry=registry,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=HANG_S)
    except subprocess.TimeoutExpired:  # hung: do not leave it running
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def popen_cli(*args, registry=None, env=None, **kwargs):
    """Start `python -m degeneracy ARGS` (for tests that signal it or run several at once)."""
    full_env = {**os.environ}
    for name, value in _env_overrides(env).items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value
    cmd = [sys.executable, "-m", "degeneracy", *_argv(args, registry)]
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # a job started in the background (`cmd &`, nohup) ignores Ctrl-C, and so would the
        # process: Python then installs no handler and a test's SIGINT is lost. Give it the
        # default a terminal gives
        kwargs.setdefault("preexec_fn", _default_sigint)
    return subprocess.Popen(cmd, env=full_env, **kwargs)


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(condition, proc, poll_s=0.3):
    """Poll `condition()` until it holds or `proc` has exited; no time limit but HANG_S, since
    a busy machine may take minutes to get a process going. Returns the last value."""
    deadline = time.monotonic() + HANG_S
    while not (value := condition()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(poll_s)
    return value


def has_open(pid, path):
    """Whether process `pid` holds `path` open (Linux /proc): it has got as far as using it."""
    target = os.path.realpath(path)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except OSError:
            pass
    return False


def _exit_status(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _torch_threads(restore=None):
    """torch's intra-op thread count; with `restore`, set it back first (commands such as
    `reproduce` change it for the rest of their process)."""
    import torch

    if restore is not None:
        torch.set_num_threads(restore)
    return torch.get_num_threads()


@contextlib.contextmanager
def _warnings_as_in_a_process():
    """Python's default warning filters, and warnings printed to (captured) stderr: pytest
    records warnings instead, which would hide a stray stderr line from `assert_user_error`."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        defaults = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)
        for category in defaults:  # what Python ignores outside __main__
            warnings.simplefilter("ignore", category)

        def show(message, category, filename, lineno, file=None, line=None):
            sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

        warnings.showwarning = show
        yield


def assert_user_error(result, *fragments):
    """Exit code 2, exactly one line on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
