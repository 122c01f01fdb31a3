"""`degeneracy`: the command-line interface. Each command parses arguments and calls the library.

Importing this module registers every command on `app` (each command module imports only
`cli.common`), so `from degeneracy.cli.app import app` is the whole CLI."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from degeneracy.cli import (  # noqa: F401  (each module registers its commands)
    analysis,
    demo,
    registry_commands,
    report,
    reproduce,
    training,
)
from degeneracy.cli.common import app
from degeneracy.registry.errors import RegistryError

__all__ = ["app", "main", "run"]


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on `argv` (default: `sys.argv[1:]`) and return its exit code.

    What the console script does, minus the exit, so tests can call it in-process: errors
    outside a command body become one line on stderr and exit code 2 (130 for Ctrl-C), never a
    traceback. `kill` (SIGTERM) stops the run like Ctrl-C; the previous SIGTERM handler is put
    back on return."""
    import signal
    import threading

    import typer

    def terminated(signum, frame):  # `kill`: stop like Ctrl-C (workers and Ray tasks stopped)
        raise KeyboardInterrupt

    # signal handlers can only be set from the main thread; elsewhere SIGTERM keeps its handler
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminated) if main_thread else None
    try:
        code = app(
            args=None if argv is None else list(argv),
            prog_name="degeneracy",
            standalone_mode=False,
        )
    except typer.TyperException as exc:  # bad arguments: one line, not the boxed usage text
        ctx = getattr(exc, "ctx", None)  # usage errors name the command they belong to
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        print(f"degeneracy: error: {exc.format_message()}{hint}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except RegistryError as exc:  # raised outside a command (e.g. in an option callback)
        print(f"degeneracy: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, typer.Abort):  # Ctrl-C outside a command body
        print("degeneracy: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:  # None: a handler not set from Python, nothing to restore
            signal.signal(signal.SIGTERM, previous)
    return code if isinstance(code, int) else 0


def main() -> None:
    """Console-script entry point (`degeneracy`, `python -m degeneracy`)."""
    sys.exit(run())
