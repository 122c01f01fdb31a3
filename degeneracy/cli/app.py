"""`degeneracy`: the command-line interface. Each command parses arguments and calls the library.

Importing this module registers every command on `app` (each command module imports only
`cli.common`), so `from degeneracy.cli.app import app` is the whole CLI."""

from __future__ import annotations

import sys

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

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    import signal

    import typer

    def terminated(signum, frame):  # `kill`: stop like Ctrl-C (workers and Ray tasks stopped)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)
    try:
        code = app(prog_name="degeneracy", standalone_mode=False)
    except typer.TyperException as exc:  # bad arguments: one line, not the boxed usage text
        ctx = getattr(exc, "ctx", None)  # usage errors name the command they belong to
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        print(f"degeneracy: error: {exc.format_message()}{hint}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))
    except RegistryError as exc:  # raised outside a command (e.g. in an option callback)
        print(f"degeneracy: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):  # Ctrl-C outside a command body
        print("degeneracy: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
