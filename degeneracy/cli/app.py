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
    try:
        app(prog_name="degeneracy")
    except RegistryError as exc:  # raised outside a command (e.g. in an option callback)
        print(f"degeneracy: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C outside a command body (start-up, teardown)
        print("degeneracy: interrupted", file=sys.stderr)
        sys.exit(130)
