"""`analyze` and `distances`: degeneracy tables and pairwise matrices from stored networks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from degeneracy.analysis.metrics import METRICS, PAIRWISE
from degeneracy.cli.common import (
    FormatOpt,
    RegistryOpt,
    app,
    open_registry,
    pm,
    progress_display,
    say,
    user_errors,
)
from degeneracy.cli.output import Format, emit
from degeneracy.registry.errors import RegistryError

ExecutorOpt = Annotated[
    str,
    typer.Option(
        help="local (this process), processes (DSA's alignments on one process per core: "
        "faster on 2+ cores, the same numbers) or ray (the missing pairs as Ray tasks, each "
        "chunk kept as it returns; needs pip install 'degeneracy[ray]')."
    ),
]
AddressOpt = Annotated[
    str | None,
    typer.Option(help="With --executor ray: the cluster's address [default: a local Ray]."),
]
ChunkPairsOpt = Annotated[
    int | None,
    typer.Option(help="With --executor ray: pairs per Ray task [default: 128]."),
]


#: columns the table leaves out (what the verdicts test, shown in the verdict table instead)
TABLE_HIDDEN = {"behavior_mean", "behavior_log", "behavior_mad", "behavior_n", "dsa_excess"}


def _params(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        metric, sep, text = item.partition("=")
        if not sep:
            raise RegistryError(f"--params expects METRIC=JSON, got {item!r}")
        out[metric.strip()] = text
    return out


@app.command()
@user_errors
def analyze(
    metrics: Annotated[
        str,
        typer.Option(help=f"Comma-separated, of: {', '.join(METRICS)}."),
    ] = "behavior,dsa,pif",
    group_by: Annotated[
        str | None,
        typer.Option(help="Comma-separated columns (labels too) [default: the condition columns]."),
    ] = None,
    where: Annotated[str | None, typer.Option(help="SQL filter on networks_labeled.")] = None,
    params: Annotated[
        list[str] | None,
        typer.Option("--params", help="METRIC=JSON, e.g. dsa='{\"rank\": 20}' (repeatable)."),
    ] = None,
    all_networks: Annotated[
        bool, typer.Option("--all", help="Include unconverged networks.")
    ] = False,
    dsa_grid: Annotated[
        str | None,
        typer.Option(
            "--dsa-grid",
            metavar="FACTOR",
            help="Instead: FACTOR's dynamics direction at every n_delays x rank of a 3 x 3 "
            "grid (5, 10, 20 each); a direction holds only if resolved at every point.",
        ),
    ] = None,
    format: FormatOpt = Format.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to FILE.")] = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    chunk_pairs: ChunkPairsOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Degeneracy per group at the behavior, dynamics and weight levels (± SE over networks).

    Results are stored in the `results` table; pairwise distances in the `pairwise` cache, so
    regrouping or adding networks computes only new pairs.

    Example: `degeneracy analyze --metrics behavior,dsa,pif --group-by task,complexity`
    """
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from degeneracy.analysis.ray_pairs import pair_executor
    from degeneracy.api import analyze as run

    pair_executor(executor, address, chunk_pairs)  # bad values: one line before any work
    reg = open_registry(registry)
    if out is not None:
        reg.outside(out)
    if format is Format.parquet and out is None:
        raise RegistryError("--format parquet needs --out FILE (Parquet is binary)")
    cols = [c.strip() for c in group_by.split(",")] if group_by else None
    if dsa_grid is not None:
        if executor == "ray":
            raise RegistryError("--dsa-grid runs on this machine only (local or processes)")
        _grid(
            reg,
            dsa_grid,
            cols,
            where,
            _params(params or []),
            not all_networks,
            format,
            out,
            executor,
        )
        return
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    if not names:
        raise RegistryError(f"--metrics names no metric (known: {', '.join(METRICS)})")
    extra = sorted(set(_params(params or [])) - set(names))
    if extra:
        raise RegistryError(
            f"--params for {', '.join(extra)}, which --metrics does not ask for "
            f"({', '.join(names)})"
        )
    shown = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pairs"),
        TimeElapsedColumn(),
    ]
    with progress_display(*shown, transient=True) as bar:
        task = bar.add_task("analyze", total=None)

        def progress(description: str, done: int, total: int) -> None:
            bar.update(task, description=description, completed=done, total=total or None)

        columns, rows = run(
            reg,
            names,
            cols,
            where,
            executor,
            address,
            chunk_pairs,
            params=_params(params or []),
            converged_only=not all_networks,
            progress=progress,
        )
    if not rows:
        say("no (converged) networks match")
        return
    keys = [k for k in rows[0] if k not in columns and not k.endswith("_se") and k[0] != "_"]
    if format is Format.table:
        from degeneracy.api import compare

        # the test's intermediates stay in CSV/JSON/Parquet and the `results` table
        main = [c for c in columns if c not in TABLE_HIDDEN]
        header = keys + main
        body = [
            tuple(r[k] for k in keys) + tuple(pm(r[c], r[f"{c}_se"]) for c in main) for r in rows
        ]
        emit(header, body, format, out)
        found = compare(rows, [k for k in keys if k != "n"])
        if found and out is None:
            vcols = ["factor", "setting", "level", "measured", "n", "difference", "tested", "p",
                     "Holm p", "verdict", "seeds needed", "scale-free"]  # fmt: skip
            say(
                "\nLowest → highest level, under the declared rules (degeneracy.analysis."
                "verdicts; one Holm family); seeds needed: networks per level that would "
                "resolve the difference at 80 % power:"
            )
            emit(vcols, [tuple(v[c] for c in vcols) for v in found], format, None)
    else:
        header = keys + [x for c in columns for x in (c, f"{c}_se")]
        emit(header, [tuple(r[h] for h in header) for r in rows], format, out)


def _grid(reg, factor, cols, where, params, converged_only, format, out, executor) -> None:
    from contextlib import nullcontext

    from degeneracy.analysis.grid import COLUMNS, dsa_grid, grid_verdict
    from degeneracy.analysis.grouping import DEFAULT_GROUP_BY, split_settings
    from degeneracy.analysis.metrics import parse_params
    from degeneracy.analysis.ray_pairs import pair_executor

    if not converged_only:
        raise RegistryError("--dsa-grid uses converged networks only (drop --all)")
    group_by = cols or list(DEFAULT_GROUP_BY)
    if factor not in group_by:
        group_by.append(factor)
    series = [c for c in group_by if c != factor] + split_settings(reg, group_by, where)
    base = parse_params("dsa", params.get("dsa"))
    pairs = pair_executor(executor)
    with pairs or nullcontext():
        rows = dsa_grid(
            reg, factor, group_by, where, base, series=series, progress=say, executor=pairs
        )
    if not rows:
        say("no (converged) networks match, or fewer than two levels of " + factor)
        return
    header = COLUMNS
    body = [tuple(r.get(h) for h in header) for r in rows]
    if format is Format.table:
        body = [tuple(f"{v:.4g}" if isinstance(v, float) else v for v in b) for b in body]
    emit(header, body, format, out)
    if format is Format.table:
        for label, text in grid_verdict(rows).items():
            typer.echo(f"{factor} ({label}): dynamics {text}")


@app.command()
@user_errors
def distances(
    metric: Annotated[str, typer.Option(help=f"One of: {', '.join(PAIRWISE)}.")],
    where: Annotated[str, typer.Option(help="SQL filter selecting networks.")] = "converged",
    params: Annotated[str, typer.Option(help="Metric parameters as JSON.")] = "{}",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="FILE.parquet or FILE.csv: pairs (a, b, distance); MDS beside it."
        ),
    ] = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    chunk_pairs: ChunkPairsOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """The pairwise distance matrix of the selected networks, and its classical MDS coordinates.

    Writes FILE with one row per pair and FILE's stem + `_mds` with (network_id, x, y).

    Example: `degeneracy distances --metric dsa --where "task = 'flipflop'" --out d.parquet`
    """
    import numpy as np
    import pyarrow as pa

    from degeneracy.api import distances as run

    reg = open_registry(registry)
    if out is not None:  # checked before any pair is computed
        out = reg.outside(out)
        if out.suffix not in (".csv", ".parquet"):
            raise RegistryError(f"--out must end in .csv or .parquet, got {out.name!r}")
        if not out.parent.is_dir():
            raise RegistryError(f"--out: folder {out.parent} does not exist")
    ids, d, coords = run(reg, metric, where, params, executor, address, chunk_pairs, say)
    iu = np.triu_indices(len(ids), 1)
    pairs = pa.table(
        {"a": [ids[i] for i in iu[0]], "b": [ids[j] for j in iu[1]], "distance": d[iu]}
    )
    mds = pa.table({"network_id": ids, "x": coords[:, 0], "y": coords[:, 1]})
    if out is None:
        emit(
            ["a", "b", "distance"],
            list(zip(*[pairs.column(c).to_pylist() for c in pairs.column_names])),
        )
        return
    mds_path = out.with_name(out.stem + "_mds" + out.suffix)
    for table, path in ((pairs, out), (mds, mds_path)):
        if out.suffix == ".csv":
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, path)
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, path)
    typer.echo(f"{len(ids)} networks, {pairs.num_rows} pairs -> {out}; MDS -> {mds_path}")
