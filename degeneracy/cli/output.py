"""Printing rows: a rich table on the terminal, or CSV / JSON / Parquet for other programs."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from degeneracy.registry.errors import RegistryError


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


#: longest cell a table shows (JSON columns such as `factors` or `provenance` flooded the
#: screen); csv, json and parquet carry every character
MAX_CELL = 60


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit(
    columns: list[str],
    rows: list[tuple],
    fmt: Format = Format.table,
    out: Path | None = None,
    title: str | None = None,
) -> None:
    """Write rows in `fmt` to `out` (or stdout). Parquet needs `out`: it is binary."""
    if fmt is Format.parquet:
        if out is None:
            raise RegistryError("--format parquet needs --out FILE (Parquet is binary)")
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = (
            pa.Table.from_pylist([dict(zip(columns, r)) for r in rows])
            if rows
            else (pa.table({c: pa.array([], pa.null()) for c in columns}))
        )
        pq.write_table(table, out, compression="zstd")
        return
    if fmt is Format.csv:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[("" if v is None else v) for v in r] for r in rows])
        text = buf.getvalue()
    elif fmt is Format.json:
        text = (
            json.dumps([{c: _jsonable(v) for c, v in zip(columns, r)} for r in rows], indent=1)
            + "\n"
        )
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for c in columns:
            table.add_column(c, overflow="fold")
        for r in rows:
            table.add_row(*[_cell(v) for v in r])
        if out is None:
            console = Console()
            if not console.is_terminal:  # piped: do not squeeze columns to 80 characters
                console = Console(width=250)
            console.print(table)
            return
        buffer = io.StringIO()
        Console(file=buffer, width=200).print(table)
        text = buffer.getvalue()
    if out is None:
        sys.stdout.write(text)
    else:
        Path(out).write_text(text)
