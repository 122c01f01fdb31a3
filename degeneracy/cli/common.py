"""What every command module shares: the typer app, global options, error handling, helpers.

Command modules import only this (never each other's privates); `cli/app.py` imports them all,
so `from degeneracy.cli.app import app` is the whole CLI."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from degeneracy.cli.output import Format
from degeneracy.registry.errors import RegistryError

app = typer.Typer(
    name="degeneracy",
    help="Train RNN ensembles, store everything in a DuckDB/Parquet registry, and measure "
    "solution degeneracy with SQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


class State:
    registry: Path | None = None
    quiet: bool = False


state = State()


def user_errors(fn):
    """Turn a RegistryError into one line on stderr and exit code 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RegistryError as exc:
            typer.echo(f"degeneracy: error: {exc}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("degeneracy: interrupted", err=True)
            raise typer.Exit(130) from None
        except OSError as exc:  # a path the user gave: missing folder, no permission, ...
            where = f": {exc.filename}" if exc.filename else ""
            typer.echo(f"degeneracy: error: {exc.strerror or exc}{where}", err=True)
            raise typer.Exit(2) from None
        except Exception as exc:
            # Ctrl-C while DuckDB is executing surfaces as its InterruptException (or, inside
            # a write, a RuntimeError with that message)
            if type(exc).__name__ == "InterruptException" or str(exc) == "Query interrupted":
                typer.echo("degeneracy: interrupted", err=True)
                raise typer.Exit(130) from None
            raise

    return wrapper


def open_registry(registry: Path | None = None, create: bool = False):
    """The registry named on the command, else the global --registry / $DEGENERACY_REGISTRY."""
    from degeneracy.api import open as open_api

    return open_api(registry if registry is not None else state.registry, create=create)


def say(text: str) -> None:
    """A note on stderr, unless --quiet."""
    if not state.quiet:
        typer.echo(text, err=True)


RegistryOpt = Annotated[
    Path | None,
    typer.Option("--registry", "-r", help="Registry folder (may also come before the command)."),
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, csv, json or parquet.")]
WorkersOpt = Annotated[
    int, typer.Option(help="Ensembles trained at once, each in its own process.")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(help="Torch CPU threads per worker [default: the cores shared evenly]."),
]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Write to FILE, not stdout.")]


def _print_version(value: bool) -> None:
    if value:
        from degeneracy import __version__

        typer.echo(f"degeneracy {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    registry: Annotated[
        Path | None,
        typer.Option(
            "--registry",
            "-r",
            envvar="DEGENERACY_REGISTRY",
            help="Registry folder [default: ./degeneracy-registry].",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notes.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version; exit."
        ),
    ] = False,
) -> None:
    state.registry = registry
    state.quiet = quiet


def pm(value, se) -> str:
    """value ± SE for tables ("n/a (n < 2)" when there is no value)."""
    if value is None:
        return "n/a (n < 2)"
    return f"{value:.4g}" + (f" ± {se:.2g}" if se is not None else "")


class PlainProgress:
    """The part of rich's `Progress` the commands use, as plain lines on stderr: for logs and
    pipes, where a live display shows nothing (a demo logged to a file was silent for its whole
    run). A task prints when it first moves, then at most every `every` seconds, and when it
    completes; a task that never moves (a command refused before any work) prints nothing."""

    def __init__(self, every: float = 30.0, quiet: bool = False):
        import time

        self._now = time.monotonic
        self.every, self.quiet = every, quiet
        self.tasks: dict[int, dict] = {}

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, **fields) -> int:
        key = len(self.tasks)
        self.tasks[key] = {
            "description": description,
            "total": total,
            "completed": 0,
            "fields": fields,
            "start": self._now(),
            "printed": None,
        }
        return key

    def update(self, key: int, advance: float | None = None, **changes) -> None:
        task = self.tasks[key]
        for name in ("description", "total", "completed"):
            if name in changes:
                task[name] = changes.pop(name)
        task["fields"].update(changes)
        if advance:
            task["completed"] += advance
        done = task["total"] is not None and task["completed"] >= task["total"]
        if done or task["printed"] is None or self._now() - task["printed"] >= self.every:
            self._print(key)

    def _print(self, key: int) -> None:
        task = self.tasks[key]
        task["printed"] = self._now()
        if self.quiet:
            return
        total = f"/{task['total']:g}" if task["total"] is not None else ""
        count = f" {task['completed']:g}{total}" if task["total"] or task["completed"] else ""
        status = task["fields"].get("status") or ""
        line = f"{task['description'].strip()}:{count} {status}".rstrip()
        if line == task.get("line"):  # nothing moved since the last line
            return
        task["line"] = line
        elapsed = int(self._now() - task["start"])
        typer.echo(f"{line} [{elapsed // 60}:{elapsed % 60:02d}]", err=True)


def progress_display(*columns, transient: bool = False):
    """rich's live `Progress` on stderr when it is a terminal, else `PlainProgress` lines."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    if console.is_terminal:
        return Progress(*columns, console=console, disable=state.quiet, transient=transient)
    return PlainProgress(quiet=state.quiet)
