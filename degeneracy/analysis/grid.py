"""The DSA setting grid: a factor's dynamics direction at every n_delays × rank of a small grid.

DSA values move with its two main settings (delays, rank), sometimes more than with the factor
under study. The grid shows the dynamics rule (`verdicts.RULE["dynamics"]`, the noise-corrected
distance) at each point, each point's test alone at 5 %: a sensitivity display beside the
verdict, not part of it (docs/STATISTICS.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from degeneracy.analysis.grouping import setting_labels
from degeneracy.registry.errors import RegistryError

#: the columns a grid table shows (CLI and report)
COLUMNS = [
    "n_delays",
    "rank",
    "setting",
    "low",
    "high",
    "measured",
    "difference",
    "SE",
    "p",
    "verdict",
]
N_DELAYS = (5, 10, 20)
RANKS = (5, 10, 20)


def dsa_grid(
    registry,
    factor: str,
    group_by: list[str],
    where: str | None = None,
    params: dict[str, Any] | None = None,
    n_delays: tuple[int, ...] = N_DELAYS,
    ranks: tuple[int, ...] = RANKS,
    series: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
    executor=None,
) -> list[dict[str, Any]]:
    """One row per grid point and setting: the dynamics direction of `factor` there.

    `group_by` must contain `factor`; `series` are the other keys that may split groups (one
    direction per combination of those that vary). Grid points the data cannot support
    (trials shorter than the delays) are returned with verdict "n/a". `executor`: `analyze`'s."""
    from degeneracy.analysis.analyze import analyze
    from degeneracy.analysis.verdicts import RULE, compare

    if factor not in group_by:
        raise RegistryError(f"the grid needs {factor!r} among the grouping columns")
    out = []
    for d in n_delays:
        for r in ranks:
            if progress:
                progress(f"DSA grid: {d} delays, rank {r}")
            p = {**(params or {}), "n_delays": d, "rank": r}
            try:
                _, rows = analyze(
                    registry,
                    ["dsa"],
                    group_by,
                    where,
                    {"dsa": p},
                    kernel=False,
                    quality=False,
                    executor=executor,
                )
            except ValueError:  # too few time steps for the delays
                out.append({"n_delays": d, "rank": r, "setting": "all", "verdict": "n/a"})
                continue
            split: dict[str, list[dict]] = {}
            for row, label in zip(rows, setting_labels(rows, series or [])):
                split.setdefault(label, []).append(row)
            for label, sub in split.items():
                ordered = sorted(
                    (x for x in sub if x.get("dsa_corrected") is not None),
                    key=lambda x: x[factor],
                )
                if len(ordered) < 2:  # no corrected value (no replica probe set at trials 0)
                    out.append({"n_delays": d, "rank": r, "setting": label, "verdict": "n/a"})
                    continue
                lo, hi = ordered[0], ordered[-1]
                t = compare(lo, hi, RULE["dynamics"])
                assert t is not None  # both ends have the value
                ok = t.resolved(t.p)  # each point alone, before multiplicity
                out.append(
                    {
                        "n_delays": d,
                        "rank": r,
                        "setting": label,
                        "low": lo["dsa_corrected"],
                        "high": hi["dsa_corrected"],
                        "measured": t.arrow,
                        "difference": t.difference,
                        "SE": t.se,
                        "p": t.p,
                        "verdict": "resolved" if ok else "not resolved",
                    }
                )
    return out


def grid_verdict(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Per setting: "↓ at all N points", or how many points resolve which way."""
    by: dict[str, list[dict]] = {}
    for row in rows:
        by.setdefault(row["setting"], []).append(row)
    out = {}
    for label, sub in by.items():
        points = [x for x in sub if x["verdict"] != "n/a"]
        resolved = [x["measured"] for x in points if x["verdict"] == "resolved"]
        if points and len(resolved) == len(points) and len(set(resolved)) == 1:
            out[label] = f"{resolved[0]} at all {len(points)} grid points"
        else:
            ups, downs = resolved.count("↑"), resolved.count("↓")
            out[label] = (
                f"not resolved across the grid ({ups} ↑, {downs} ↓, "
                f"{len(points) - len(resolved)} unresolved of {len(points)})"
            )
    return out
