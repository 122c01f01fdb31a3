"""The dynamics settling study: is a cell's dynamics direction real once the DSA fit is fair?

At `--scale small` no dynamics direction survives (docs/RESULTS.md) for two measured reasons:
the noise floor (a network's DSA distance to itself fitted on a second, independent probe set
of the same size) is as large as the differences between levels, and a fixed rank keeps a
smaller share of a harder condition's dynamics, so the direction flips with the rank. Both are
properties of the *fit*, not of the networks, and neither needs retraining:

- **more probe trials**: the stored networks are run again from their stored weights on larger
  probe sets (`reprobe`) — the training's probe size times each of `Study.sizes`, two
  independent sets (replicas 0 and 1) each — so the operators are fitted on more data and the
  floor falls;
- **a rank that keeps a fixed share of the variance**: besides the task's fixed rank, the
  smallest rank at which the median network of *every* level keeps `Study.share` of its
  delay-embedding's variance (one rank per cell, so levels are still compared at one rank).

Settings are fixed here, before the study runs, and the verdict rule is the reproduction's
(`report.direction`: the difference must exceed 2 SE and the larger floor). At 32 trials and the
fixed rank the study recomputes the reproduction's own dynamics numbers (the stored "id" probe
set is replica 0 at the training's probe size), which ties the two together.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Study:
    sizes: tuple[int, ...] = (1, 4, 16)  # probe trials per fit, in units of the stored probe set
    share: float = 0.95  # variance the "share" rank keeps (median network, every level)
    cap: int = 40  # the share rule's highest rank (cost grows ~r^3 per Newton step); marked


#: fixed before the study ran; tiny only exercises the plumbing in seconds
STUDIES = {"tiny": Study((1, 2), 0.95, 12), "small": Study(), "paper": Study()}
CHUNK = 4  # networks run through the forward pass at once (bounds memory at 512 trials)

SETTLE_COLUMNS = [
    "cell",
    "trials",
    "rank_rule",
    "rank",
    "capped",
    "level",
    "n",
    "dsa",
    "dsa_se",
    "dsa_floor",
    "kept_variance",
]
SETTLE_VERDICT_COLUMNS = [
    "cell",
    "trials",
    "rank_rule",
    "rank",
    "measured",
    "difference",
    "2 SE",
    "floor",
    "verdict",
    "paper",
    "agrees",
]


def reprobe(registry, exp, ids: list[str], trials: int, replica: int = 0) -> np.ndarray:
    """Hidden states (networks, trials, time, units) of stored networks on probe set `replica`
    of size `trials`, run from their stored final weights (float32, as training stored them).

    With `trials` = the training's probe size, replica 0 is the stored "id" probe set and
    replica 1 the stored noise-floor set ("id_b"): the result equals the stored trajectories."""
    import torch

    from degeneracy.training.model import PARAM_NAMES, forward, raw

    probe = exp.task.probe(trials, exp.train.probe_seed, replica=replica)
    x = torch.from_numpy(probe.inputs)
    out = []
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        eff = {n: torch.from_numpy(registry.load_weights(part, n)) for n in PARAM_NAMES}
        params = raw(exp.model, eff)
        with torch.no_grad():
            rates, _ = forward(exp.model, params, x.expand(len(part), *x.shape))
        assert rates is not None  # forward returns the rates unless states=False
        out.append(rates.numpy())
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def variance_kept(traj: np.ndarray, n_delays: int, max_rank: int) -> np.ndarray:
    """Share of the delay embedding's variance the top-r coordinates keep, r = 1..max_rank, as
    `dsa.fit_quality` reports it under the reference fit (uncentred, ‖H‖²_F)."""
    import scipy.linalg

    from degeneracy.analysis.dsa import hankel

    h = hankel(np.asarray(traj, dtype=np.float64), n_delays)
    flat = h.reshape(-1, h.shape[-1])
    gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    s2 = np.clip(scipy.linalg.eigvalsh(gram)[::-1], 0, None)
    kept = np.cumsum(s2) / max(float(s2.sum()), 1e-300)
    return np.pad(kept, (0, max(0, max_rank - len(kept))), constant_values=1.0)[:max_rank]


def share_rank(curves: dict[Any, np.ndarray], share: float, cap: int) -> int:
    """The smallest rank at which the median network of every level keeps `share` (curves:
    level -> (networks, max_rank) kept shares); `cap` when none up to it does."""
    medians = np.stack([np.median(c, axis=0) for c in curves.values()])  # (levels, max_rank)
    ok = np.flatnonzero((medians >= share).all(axis=0))
    return int(ok[0]) + 1 if len(ok) else cap


def level_dynamics(
    ops0: np.ndarray, ops1: np.ndarray, params, solve=None
) -> tuple[float, float, float]:
    """(mean pairwise DSA distance, its SE over networks, mean noise floor) of one level from
    its operators on two independent probe sets (replica 0 for the pairs, both for the floor);
    `solve`: where the Newton batches run (`dsa.Solver`; default this process)."""
    from degeneracy.analysis import dsa
    from degeneracy.analysis.summary import mean_pairwise

    n = len(ops0)
    pairs, dist, _, _ = dsa.all_pairs(ops0, params, solve=solve)
    d = np.zeros((n, n))
    d[pairs[:, 0], pairs[:, 1]] = d[pairs[:, 1], pairs[:, 0]] = dist
    mean, se = mean_pairwise(d)
    al = dsa.align_pairs(ops0, ops1, params, solve=solve)
    floor = float(dsa.score(ops0, ops1, al, params.score).mean())
    return mean, se, floor


@dataclass
class Level:
    value: Any
    exp: Any  # the condition's Experiment
    ids: list[str]  # its converged networks


def cell_levels(registry, pc) -> list[Level]:
    """The converged networks of each of the cell's conditions, with the factor's value."""
    from degeneracy.analysis.grouping import column_sql, setting_value
    from degeneracy.registry.ids import network_id

    out = []
    for job in pc.jobs:
        ids = [network_id(job.experiment.condition().to_dict(), s) for s in job.seeds]
        with registry.read_query(
            f"SELECT network_id, {column_sql(pc.cell.factor, alias=False)} AS f "
            "FROM networks_labeled WHERE converged AND network_id IN "
            "(SELECT unnest(?::VARCHAR[])) ORDER BY seed",
            [ids],
        ) as rel:
            rows = rel.fetchall()
        if not rows:
            continue
        value = rows[0][1]
        value = setting_value(value) if "." in pc.cell.factor else value
        out.append(
            Level(
                int(value) if isinstance(value, bool) else value,
                job.experiment,
                [r[0] for r in rows],
            )
        )
    return sorted(out, key=lambda lv: lv.value)


#: (rank rule, DSA fit). The share rule first: it is the one the question turns on. At the
#: share rank the study also runs DSA's other fit convention ("centred": principal scores
#: about the mean instead of the reference's uncentred unit-norm coordinates), so a direction
#: that depends on the convention shows it. Neither convention down-weights a direction that
#: carries little variance: an operator's self-dynamics do not depend on the coordinates'
#: scale, so at a rank past a simple network's dimensionality both fit its near-empty
#: directions too.
RULES = ("share", "share_centred", "fixed")
FITS = {"share": "reference", "share_centred": "centred", "fixed": "reference"}


def units(trials: list[int]) -> list[tuple[int, str]]:
    """The study's (trials, rank rule) points, in the order they run: the stored probe size
    (the first, which only recomputes the reproduction's own numbers) last within a rule."""
    order = [*trials[1:], trials[0]]
    return [(t, rule) for rule in RULES for t in order]


def settle_cell(
    registry,
    pc,
    study: Study = Study(),
    done: Collection[tuple[int, str]] = frozenset(),
    say: Callable[[str], None] | None = None,
    pool=None,
) -> Iterator[tuple[list[dict], dict]]:
    """The study on one cell, one (trials, rule) point at a time: (per level rows, the verdict
    row), skipping the points in `done`; see the module docstring. `pool`: a `NewtonPool` for
    the alignments (None: this process)."""
    from degeneracy.analysis.dsa import DSAParams, fit_operator
    from degeneracy.analysis.report import PAPER, agreement, direction
    from degeneracy.reproduce.run import alias

    levels = cell_levels(registry, pc)
    base = levels[0].exp.train.probe_trials if levels else 0
    trials = [base * k for k in study.sizes]
    todo = [u for u in units(trials) if u not in done]
    if len(levels) < 2 or not todo:
        return
    share, cap = study.share, study.cap
    task = levels[0].exp.task
    n_delays, fixed = task.dsa_defaults["n_delays"], task.dsa_defaults["rank"]
    name = alias(pc.cell.factor)
    trajs: dict[tuple[int, int, Any], np.ndarray] = {}

    def traj(t: int, rep: int, lv: Level) -> np.ndarray:
        if (t, rep, lv.value) not in trajs:
            if say and rep == 0:
                say(
                    f"{pc.cell.name}: re-probing {name}={lv.value} ({len(lv.ids)} networks) "
                    f"on {t} trials"
                )
            trajs[t, rep, lv.value] = reprobe(registry, lv.exp, lv.ids, t, rep)
        return trajs[t, rep, lv.value]

    largest = max(trials)
    curves = {  # the share rank comes from the largest probe sets (the best variance estimate)
        lv.value: np.stack([variance_kept(x, n_delays, cap) for x in traj(largest, 0, lv)])
        for lv in levels
    }
    ranks = {"fixed": fixed, "share": share_rank(curves, share, cap)}
    ranks["share_centred"] = ranks["share"]
    for t, rule in todo:
        r = ranks[rule]
        params = DSAParams(n_delays=n_delays, rank=r, fit=FITS[rule])
        if say:
            say(f"{pc.cell.name}: DSA at {t} trials, rank {r} ({rule})")
        rows, group = [], []
        for lv in levels:
            ops = [np.stack([fit_operator(x, params) for x in traj(t, rep, lv)]) for rep in (0, 1)]
            solve = None if pool is None else pool.solver(params)
            mean, se, floor = level_dynamics(ops[0], ops[1], params, solve)
            row = {
                "cell": pc.cell.name,
                "trials": t,
                "rank_rule": rule,
                "rank": r,
                "capped": rule != "fixed" and r == cap,
                "level": lv.value,
                "n": len(lv.ids),
                "dsa": mean,
                "dsa_se": se,
                "dsa_floor": floor,
                "kept_variance": float(np.median(curves[lv.value][:, r - 1])),
            }
            rows.append(row)
            group.append({name: lv.value, **row})
        for key in [k for k in trajs if k[0] == t]:
            del trajs[key]  # re-probing takes seconds; memory stays at one probe size
        found = direction(group, name, "dsa")  # None: under 2 levels with a value
        arrow, verdict = (found[0], found[1]) if found else ("", "n/a")
        diff, two_se, worst = (found[2], found[3], found[4]) if found else (None, None, None)
        paper = PAPER.get(name, {}).get("dynamics", "")
        yield (
            rows,
            {
                "cell": pc.cell.name,
                "trials": t,
                "rank_rule": rule,
                "rank": r,
                "measured": arrow,
                "difference": diff,
                "2 SE": two_se,
                "floor": worst,  # the larger of the two ends' floors
                "verdict": verdict,
                "paper": paper,
                "agrees": agreement(verdict, arrow, paper),
            },
        )


def _read(path: Path) -> list[dict]:
    import polars as pl

    return pl.read_csv(path).to_dicts() if path.exists() else []


def _write(path: Path, rows: list[dict], columns: list[str]) -> None:
    import polars as pl

    tmp = path.with_name(f".{path.name}.tmp")
    if rows:
        pl.DataFrame(rows, schema=columns, orient="row", strict=False).write_csv(tmp)
    else:
        tmp.write_text(",".join(columns) + "\n")
    tmp.replace(path)


def run(
    registry, plan, folder: Path, say: Callable[[str], None] | None = None, pool=None
) -> dict[str, Path]:
    """The study on every cell of `plan`: settle.csv (per level), settle_verdicts.csv and
    settle.md in `folder`. Resumable: the points already in settle_verdicts.csv are kept.
    `pool`: a `NewtonPool` for the alignments (None: this process)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "settle": folder / "settle.csv",
        "settle_verdicts": folder / "settle_verdicts.csv",
        "settle_summary": folder / "settle.md",
    }
    study = STUDIES[plan.scale]
    rows = [{c: r.get(c) for c in SETTLE_COLUMNS} for r in _read(paths["settle"])]
    verdicts = [
        {c: r.get(c) for c in SETTLE_VERDICT_COLUMNS} for r in _read(paths["settle_verdicts"])
    ]
    for pc in plan.cells:
        done = {
            (int(str(v["trials"])), str(v["rank_rule"]))
            for v in verdicts
            if v["cell"] == pc.cell.name
        }
        for level_rows, verdict in settle_cell(registry, pc, study, done, say, pool):
            rows += [{c: r.get(c) for c in SETTLE_COLUMNS} for r in level_rows]
            verdicts.append(verdict)
            _write(paths["settle"], rows, SETTLE_COLUMNS)  # after each point: a kill loses one
            _write(paths["settle_verdicts"], verdicts, SETTLE_VERDICT_COLUMNS)
    paths["settle_summary"].write_text(summary(rows, verdicts, study))
    return paths


def _g(x: Any) -> str:
    return "" if x is None else f"{x:.3g}" if isinstance(x, float) else str(x)


def summary(rows: list[dict], verdicts: list[dict], study: Study) -> str:
    """settle.md: the settings, then per cell one line per (trials, rule) point."""
    out = [
        "# Dynamics settling study",
        "",
        f"Stored networks re-probed on {', '.join(f'{k}x' for k in study.sizes)} the stored "
        "probe set's trials (two independent "
        "probe sets each: one for the pairs, both for the noise floor), DSA with the reference "
        "fit, the task's delays, at the task's fixed rank and at the smallest rank where the "
        f"median network of every level keeps {study.share:.0%} of its delay embedding's "
        f"variance (cap {study.cap}, marked); at that rank also under DSA's other fit "
        "convention (centred principal scores). Verdict: the "
        "difference between the lowest and highest level must exceed 2 SE and the larger "
        "floor. Converged networks only.",
        "",
        "| cell | trials | rank | levels: distance ± SE (floor) | difference | 2 SE | floor "
        "| verdict | paper |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for v in verdicts:
        pts = [
            f"{r['level']}: {_g(r['dsa'])} ± {_g(r['dsa_se'])} ({_g(r['dsa_floor'])})"
            for r in rows
            if r["cell"] == v["cell"]
            and r["trials"] == v["trials"]
            and r["rank_rule"] == v["rank_rule"]
        ]
        capped = any(r["capped"] for r in rows if r["cell"] == v["cell"] and r["rank"] == v["rank"])
        rule = (
            "fixed"
            if v["rank_rule"] == "fixed"
            else f"{study.share:.0%} var."
            + (", centred fit" if FITS[v["rank_rule"]] == "centred" else "")
            + (", cap" if capped else "")
        )
        out.append(
            f"| {v['cell']} | {v['trials']} | {v['rank']} ({rule}) | {'; '.join(pts)} "
            f"| {v['measured']} {_g(v['difference'])} | {_g(v['2 SE'])} | {_g(v['floor'])} "
            f"| {v['agrees']} | {v['paper']} |"
        )
    return "\n".join(out) + "\n"
