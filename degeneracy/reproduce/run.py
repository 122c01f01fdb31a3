"""`reproduce`: plan, train (resumably) and analyze every cell of the paper's table, then write
the per-level numbers, the verdicts and the report.

Each cell's networks are selected by id (hash of condition and seed), so a condition two cells
share (delayed discrimination at 1 channel and delay 20 is in five cells) is trained once and
read by both. A level's numbers always come with n, standard errors, the dynamics noise floor
and the weights' chance level; a direction is a verdict only where `report.direction` resolves
it and, for dynamics, it holds at every point of the DSA setting grid.
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from degeneracy.analysis.grid import COLUMNS as GRID_COLUMNS
from degeneracy.analysis.params import SE_NOTE
from degeneracy.analysis.report import DSA_NOTE, VERDICT_NOTE, settle_family
from degeneracy.analysis.report import VERDICT_COLUMNS as REPORT_VERDICT_COLUMNS
from degeneracy.registry.ids import network_id
from degeneracy.reproduce.cells import Cell, Seeds, load, select
from degeneracy.training.sweep import Job, missing_seeds, sweep_id

Say = Callable[[str], None]

#: per level, the numbers levels.csv carries (value and standard error where there is one)
LEVEL_COLUMNS = [
    "cell",
    "task",
    "factor",
    "level",
    "setting",
    "trained",
    "converged",
    "n",
    "median_steps",
    "behavior",
    "behavior_se",
    "behavior_log",
    "behavior_log_se",
    "behavior_mad",
    "behavior_mad_se",
    "dynamics",
    "dynamics_se",
    "dynamics_floor",
    "dynamics_floor_se",
    "dynamics_corrected",
    "dynamics_corrected_se",
    "dynamics_excess",
    "dynamics_excess_se",
    "dsa_kept",
    "dsa_rank",
    "dsa_trials",
    "weights",
    "weights_se",
    "weights_chance",
    "weights_chance_se",
    "weights_scaled",
    "weights_scaled_se",
    "weights_scaled_chance",
    "weights_scaled_chance_se",
    "weight_change",
    "weight_change_se",
    "kernel_alignment",
    "kernel_alignment_se",
]
#: levels.csv name -> analyze's
RENAME = {
    "dynamics": "dsa",
    "dynamics_floor": "dsa_floor",
    "weights": "pif",
    "weights_chance": "pif_chance",
    "dynamics_corrected": "dsa_corrected",
    "dynamics_excess": "dsa_excess",
    "weights_scaled": "pif_scaled",
    "weights_scaled_chance": "pif_scaled_chance",
}
VERDICT_COLUMNS = ["cell", *REPORT_VERDICT_COLUMNS]


@dataclass
class PlannedCell:
    cell: Cell
    text: str
    name: str
    jobs: list[Job]

    @property
    def sweep(self) -> str:
        return sweep_id(self.text)

    def ids(self) -> list[str]:
        return [
            network_id(j.experiment.condition().to_dict(), s) for j in self.jobs for s in j.seeds
        ]

    @property
    def where(self) -> str:
        return "network_id IN (" + ", ".join(f"'{i}'" for i in self.ids()) + ")"


@dataclass
class Plan:
    scale: str
    cells: list[PlannedCell]
    #: unique conditions to train (shared ones once): (job, sweep id of the first cell holding it)
    work: list[tuple[Job, str]] = field(default_factory=list)
    todo: dict[int, list[int]] = field(default_factory=dict)  # work index -> missing seeds
    step_seconds: dict[int, float] = field(default_factory=dict)  # work index -> s per step
    workers: int = 1
    threads: int = 1  # torch threads per worker
    device: str = "cpu"
    seeds: Seeds = field(default_factory=Seeds)  # which sample of seeds every condition trains

    @property
    def networks(self) -> int:
        return sum(len(j.seeds) for j, _ in self.work)

    @property
    def to_train(self) -> int:
        return sum(len(v) for v in self.todo.values())

    def budget_seconds(self, i: int) -> float:
        """Work item i's measured per-step cost times its whole step budget (0 if not timed)."""
        return self.step_seconds.get(i, 0.0) * self.work[i][0].experiment.train.max_steps

    def estimate_seconds(self) -> float:
        """An upper bound: every ensemble runs its whole budget (early stops only shorten it)."""
        return sum(self.budget_seconds(i) for i in self.todo)

    def train_order(self) -> list[int]:
        """Work items still to train, costliest budget first (ties in plan order): with several
        workers a long ensemble started last would leave the other cores idle at the end."""
        return sorted(self.todo, key=lambda i: (-self.budget_seconds(i), i))


def make_plan(
    registry, scale: str, only: list[str] | None = None, seeds: Seeds | None = None
) -> Plan:
    seeds = seeds or Seeds()
    cells = []
    for cell in select(only):
        text, name, jobs = load(scale, cell, seeds)
        cells.append(PlannedCell(cell, text, name, jobs))
    plan = Plan(scale, cells, seeds=seeds)
    seen: dict[str, int] = {}
    for pc in cells:
        for job in pc.jobs:
            key = json.dumps(job.experiment.condition().to_dict(), sort_keys=True, default=str)
            if key in seen:
                have, first = plan.work[seen[key]]
                extra = [s for s in job.seeds if s not in have.seeds]
                if extra:
                    plan.work[seen[key]] = (Job(have.experiment, have.seeds + extra), first)
                continue
            seen[key] = len(plan.work)
            plan.work.append((job, pc.sweep))
    for i, (job, _) in enumerate(plan.work):
        todo = missing_seeds(registry, job.experiment, job.seeds) if registry else job.seeds
        if todo:
            plan.todo[i] = todo
    return plan


def step_seconds(exp, seeds: list[int], device: str = "cpu", repeats: int = 3) -> float:
    """Seconds per training step of `seeds` stacked, measured: the median over `repeats` of
    (9-step run − 1-step run) / 8, the difference removing set-up and evaluation, after one
    untimed run (a process's first also pays imports and first allocations). On a busy machine
    one pair's difference can come out at or under 0 (single runs moved by ±60 % here); if the
    median does, the 9-step runs' whole time / 9 is used: an upper bound, never 0."""
    from degeneracy.training.trainer import train_ensemble

    def run(steps: int) -> float:
        cfg = replace(exp.train, steps_per_epoch=steps, max_epochs=1)
        t0 = time.perf_counter()
        train_ensemble(replace(exp, train=cfg), seeds, device=device)
        return time.perf_counter() - t0

    run(1)
    diffs, whole = [], []
    for _ in range(repeats):
        long = run(9)
        diffs.append((long - run(1)) / 8)
        whole.append(long / 9)
    diff = statistics.median(diffs)
    return diff if diff > 0 else statistics.median(whole)


def measure_step_seconds(plan: Plan, device: str = "cpu", say: Say | None = None) -> None:
    """Seconds per training step of each ensemble still to train (`step_seconds`), once per
    distinct shape (task, its parameters, width, regime, networks)."""
    cache: dict[str, float] = {}
    for i, todo in plan.todo.items():
        exp = plan.work[i][0].experiment
        key = json.dumps(
            [exp.task.name, exp.task.params(), exp.hidden, exp.regime, len(todo)], default=str
        )
        if key not in cache:
            if say:
                say(f"timing {exp.task.name} hidden {exp.hidden} x {len(todo)} networks")
            cache[key] = step_seconds(exp, todo, device)
        plan.step_seconds[i] = cache[key]


def train(registry, plan: Plan, runner: Callable | None, device: str) -> None:
    """Register each cell's spec as a sweep, then train every missing network through `runner`
    (`runner(registry, jobs, device, sweeps)`: the CLI's progress-bar loop; default
    `api.train_jobs` with the plan's workers and threads)."""
    if runner is None:
        from degeneracy.api import train_jobs

        def runner(r, j, d, s):
            return train_jobs(r, j, d, s, plan.workers, plan.threads)

    for pc in plan.cells:
        registry.add_sweep(pc.sweep, pc.name, pc.text)
    order = plan.train_order()
    work = [plan.work[i] for i in order]
    jobs = [Job(j.experiment, plan.todo[i]) for i, (j, _) in zip(order, work)]
    runner(registry, jobs, device, [s for _, s in work])


def prepare(
    registry,
    scale: str,
    only: list[str] | None = None,
    workers: int = 1,
    threads: int | None = None,
    device: str = "cpu",
    say: Say | None = None,
    seeds: Seeds | None = None,
) -> Plan:
    """The plan, with each condition's per-step cost measured at the threads a worker gets
    (`seeds`: another sample than the scale's seeds 0 .. count-1)."""
    import torch

    from degeneracy.registry.errors import RegistryError
    from degeneracy.training.executor import thread_budget

    if workers < 1 or (threads is not None and threads < 1):
        raise RegistryError("workers and threads must be >= 1")
    plan = make_plan(registry, scale, only, seeds)
    plan.workers, plan.threads, plan.device = workers, thread_budget(workers, threads), device
    before = torch.get_num_threads()
    torch.set_num_threads(plan.threads)
    try:
        measure_step_seconds(plan, device, say)
    finally:
        torch.set_num_threads(before)
    return plan


@dataclass
class Outcome:
    results: list[CellResult]
    paths: dict[str, Path]
    report: Path
    seconds: float
    train_seconds: float = 0.0


def run(
    registry,
    plan: Plan,
    out: Path | None = None,
    grid: bool = True,
    train_missing: bool = True,
    runner: Callable | None = None,
    say: Say | None = None,
    command: str | None = None,
) -> Outcome:
    """Train what the plan lacks (unless `train_missing` is false: then analyze what is
    stored), analyze every cell, write the CSVs, summary.md and the report."""
    from degeneracy.analysis.report import clear_page

    t0 = time.perf_counter()
    folder = Path(out) if out is not None else registry.root / default_folder(plan)
    if folder.exists():
        clear_page(folder)
    if plan.todo and train_missing:
        train(registry, plan, runner, plan.device)
    trained = time.perf_counter() - t0
    from degeneracy.analysis.newton_pool import PoolPairs

    with _analysis_pool(plan) as pool:
        executor = None if pool is None else PoolPairs(pool)
        results = [analyze_cell(registry, pc, grid, say, executor, plan.seeds) for pc in plan.cells]
        # every test of the run (cells × levels) is one family, not one per cell
        settle_family([v for res in results for v in res.verdicts])
    info = versions(plan.device)
    command = command or f"degeneracy reproduce --scale {plan.scale}"
    paths = write_outputs(
        folder, results, plan.scale, command, info, time.perf_counter() - t0, trained
    )
    header = [
        f"Registry: {registry.root}. Scale {plan.scale}. "
        + ", ".join(f"{k} {v}" for k, v in info.items()),
        "Every value is computed over the converged networks of its level (n in levels.csv); "
        "settings per cell in summary.md.",
    ]
    report = write_report(folder, results, header)
    return Outcome(results, paths, report, time.perf_counter() - t0, trained)


def default_folder(plan: Plan) -> str:
    """reproduce-SCALE for the scale's own seeds; reproduce-SCALE-seedsA-B for another sample
    (so a replication never overwrites the first sample's page)."""
    count = len(plan.cells[0].jobs[0].seeds) if plan.cells else 0
    return f"reproduce-{plan.scale}{plan.seeds.suffix(count)}"


def _analysis_pool(plan: Plan):
    """A `NewtonPool` of one process per core the run was given (workers × threads), or a
    null context (one core, or not the CPU): DSA's alignments on every core."""
    from contextlib import nullcontext

    from degeneracy.analysis.newton_pool import NewtonPool

    cores = plan.workers * plan.threads
    if cores < 2 or plan.device != "cpu":
        return nullcontext()
    return NewtonPool(cores)


def alias(factor: str) -> str:
    """The name a factor is shown and stored under: a `factors` path's last part."""
    return factor.rsplit(".", 1)[-1]


def _plain(rows: list[dict], factor: str) -> list[dict]:
    """Rows with the factor under its alias, booleans as 0/1 (an axis and a sort order)."""
    out = []
    for r in rows:
        r = dict(r)
        v = r.pop(factor)
        r[alias(factor)] = int(v) if isinstance(v, bool) else v
        out.append(r)
    return out


@dataclass
class CellResult:
    cell: Cell
    rows: list[dict]  # analyze's groups, factor under its alias
    counts: dict[Any, tuple[int, int, float | None]]  # level -> (trained, converged, med steps)
    series: list[str]
    grid: list[dict]
    verdicts: list[dict]
    settings: dict[str, Any]
    seconds: float = 0.0  # this run's wall time analyzing the cell (cached pairs are free)


def analyze_cell(
    registry,
    pc: PlannedCell,
    grid: bool = True,
    say: Say | None = None,
    executor=None,
    seeds: Seeds | None = None,
) -> CellResult:
    """A cell's levels, verdicts and DSA grid (`executor`: where missing pairs are computed,
    `analyze`'s; None: in this process)."""
    from degeneracy.analysis.analyze import analyze
    from degeneracy.analysis.grid import dsa_grid, grid_verdict
    from degeneracy.analysis.grouping import column_sql, setting_value, split_settings
    from degeneracy.analysis.report import contravariance_rows

    t0 = time.perf_counter()
    cell, where, factor = pc.cell, pc.where, pc.cell.factor
    name = alias(factor)
    with registry.read_query(
        f"SELECT {column_sql(factor, alias=False)} AS f, count(*), sum(converged::INT), "
        f"median(steps) FROM networks_labeled WHERE {where} GROUP BY ALL ORDER BY ALL"
    ) as rel:
        counts = {}
        for f, n, c, s in rel.fetchall():
            f = setting_value(f) if "." in factor else f
            counts[int(f) if isinstance(f, bool) else f] = (n, c or 0, s)
    group_by = ["task", factor]
    series = split_settings(registry, group_by, where)
    if say:
        say(f"{cell.name}: behavior, dynamics, weights, feature learning")
    _, rows = analyze(
        registry, ["behavior", "dsa", "pif", "fl"], group_by, where, executor=executor
    )
    grid_rows: list[dict] = []
    verdict_grid = None
    if grid and len(rows) >= 2:
        grid_rows = dsa_grid(
            registry,
            factor,
            group_by,
            where,
            series=series,
            progress=(lambda m: say(f"{cell.name}: {m}")) if say else None,
            executor=executor,
        )
        verdict_grid = {(cell.task, name): grid_verdict(grid_rows)}
    plain = _plain(rows, factor)
    verdicts = contravariance_rows({(cell.task, name): (plain, series)}, verdict_grid)
    exp = pc.jobs[0].experiment
    from degeneracy.analysis.report import provenance_lines

    settings = {
        "provenance": provenance_lines(registry, where),
        "seeds": (seeds or Seeds()).label(len(pc.jobs[0].seeds)),
        "hidden": sorted({j.experiment.hidden for j in pc.jobs}),
        "threshold": exp.train.threshold,
        "budget": f"{exp.train.max_epochs} epochs x {exp.train.steps_per_epoch} steps",
        "lr": exp.train.lr,
        "grad_clip": exp.train.grad_clip,
        "regime": exp.regime,
    }
    seconds = time.perf_counter() - t0
    return CellResult(cell, plain, counts, series, grid_rows, verdicts, settings, seconds)


def level_rows(res: CellResult) -> list[dict]:
    from degeneracy.analysis.grouping import setting_labels

    name = alias(res.cell.factor)
    out = []
    labels = setting_labels(res.rows, res.series)
    by_level = {r[name]: (r, lab) for r, lab in zip(res.rows, labels)}
    for level in sorted(set(res.counts) | set(by_level)):
        trained, conv, steps = res.counts.get(level, (0, 0, None))
        r, label = by_level.get(level, ({}, ""))
        row = {
            "cell": res.cell.name,
            "task": res.cell.task,
            "factor": name,
            "level": level,
            "setting": label,
            "trained": trained,
            "converged": conv,
            "n": r.get("n", 0),
            "median_steps": steps,
        }
        for col in LEVEL_COLUMNS[9:]:
            src = col[:-3] if col.endswith("_se") else col
            src = RENAME.get(src, src) + ("_se" if col.endswith("_se") else "")
            row[col] = r.get(src)
        out.append(row)
    return out


def versions(device: str) -> dict[str, str | None]:
    """What ran the analysis: the writer's software record (`writer.software`), torch, device."""
    import torch

    from degeneracy.registry.writer import software

    sw = software()
    return {
        "degeneracy": f"{sw['degeneracy']}" + (f" (git {sw['git']})" if sw["git"] else ""),
        "torch": torch.__version__,
        "duckdb": sw["duckdb"],
        "python": sw["python"],
        "device": device,
    }


def _fmt(v: Any, se: Any = None) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        text = f"{v:.3g}"
    else:
        text = str(v)
    if se is not None:
        text += f" ± {se:.2g}"
    return text


def write_outputs(
    out: Path,
    results: list[CellResult],
    scale: str,
    command: str,
    info: dict[str, str | None],
    seconds: float | None = None,
    train_seconds: float = 0.0,
) -> dict[str, Path]:
    """levels.csv, verdicts.csv, grid.csv and summary.md under `out` (`seconds`: the run's
    wall time, `train_seconds` of it training)."""
    out.mkdir(parents=True, exist_ok=True)
    levels = [row for res in results for row in level_rows(res)]
    verdicts = [{"cell": res.cell.name, **v} for res in results for v in res.verdicts]
    grid = [{"cell": res.cell.name, **g} for res in results for g in res.grid]
    paths = {}
    for stem, rows, cols in (
        ("levels", levels, LEVEL_COLUMNS),
        ("verdicts", verdicts, VERDICT_COLUMNS),
        ("grid", grid, ["cell", *GRID_COLUMNS]),
    ):
        path = out / f"{stem}.csv"
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, cols, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({c: "" if r.get(c) is None else r.get(c) for c in cols})
        paths[stem] = path
    lines = [
        f"# Reproduction of the paper's table, scale `{scale}`",
        "",
        f"Command: `{command}`"
        + (
            f" ({seconds / 60:.0f} min: training {train_seconds / 60:.0f}, analysis "
            f"{sum(r.seconds for r in results) / 60:.0f}; analysis of pairs already in the "
            "registry's cache costs nothing)"
            if seconds
            else ""
        ),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in info.items()),
        "",
        "Dynamics: the noise-corrected DSA distance (pairs across two independent probe sets, "
        "minus each network's distance to itself across them, on the squared scale), beside "
        f"the uncorrected mean pairwise distance and the noise floor. {DSA_NOTE} "
        "Weights: mean pairwise PIF distance (‖ΔW‖_F / n², the paper's) and the scale-free PIF "
        "(each matrix ÷ its Frobenius norm), each beside its chance level (the same networks "
        "at initialization). Behavior: std of OOD loss (the paper's measure), beside it log "
        "behavior, the std of log OOD loss. "
        f"± = standard error over networks ({SE_NOTE}); n = converged networks used. "
        f"{VERDICT_NOTE}.",
        "",
        "## Settings",
        "",
        "| cell | seeds | hidden | threshold | budget | lr | grad clip | regime | analysis |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for res in results:
        s = res.settings
        lines.append(
            f"| {res.cell.name} | {s['seeds']} | {', '.join(map(str, s['hidden']))} | "
            f"{s['threshold']:g} | {s['budget']} | {s['lr']:g} | {s['grad_clip']:g} | "
            f"{s['regime']} | {res.seconds / 60:.1f} min |"
        )
    lines += ["", "## Provenance of the networks", ""]
    lines += [f"- {res.cell.name}: " + "; ".join(res.settings["provenance"]) for res in results]
    lines += [
        "",
        "## Per level",
        "",
        "| cell | level | converged / trained | n | behavior | log behavior | dynamics "
        "(corrected) | uncorrected | floor | rank, trials | weights | chance | scale-free "
        "weights | chance | ‖ΔW‖/‖W₀‖ | kernel alignment |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
        "| --- | --- |",
    ]
    for r in levels:
        lines.append(
            f"| {r['cell']} | {r['factor']} = {r['level']}"
            + (f" ({r['setting']})" if r["setting"] not in ("", "all") else "")
            + f" | {r['converged']} / {r['trained']} | {r['n']} | "
            f"{_fmt(r['behavior'], r['behavior_se'])} | "
            f"{_fmt(r['behavior_log'], r['behavior_log_se'])} | "
            f"{_fmt(r['dynamics_corrected'], r['dynamics_corrected_se'])} | "
            f"{_fmt(r['dynamics'], r['dynamics_se'])} | {_fmt(r['dynamics_floor'])} | "
            f"{_fmt(r['dsa_rank'])}, {_fmt(r['dsa_trials'])} | "
            f"{_fmt(r['weights'], r['weights_se'])} | {_fmt(r['weights_chance'])} | "
            f"{_fmt(r['weights_scaled'], r['weights_scaled_se'])} | "
            f"{_fmt(r['weights_scaled_chance'])} | "
            f"{_fmt(r['weight_change'], r['weight_change_se'])} | "
            f"{_fmt(r['kernel_alignment'], r['kernel_alignment_se'])} |"
        )
    lines += [
        "",
        "## Verdicts",
        "",
        "| cell | level | measured | n | difference | tested | p | Holm p | paper | verdict "
        "| seeds needed | scale-free | DSA grid |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for v in verdicts:
        lines.append(
            f"| {v['cell']}"
            + (f" ({v['setting']})" if v["setting"] != "all" else "")
            + f" | {v['level']} | {v['measured']} | {v['n']} | {v['difference']} | "
            f"{v['tested'] or '–'} | {v['p'] or '–'} | {v['Holm p'] or '–'} | {v['paper']} | "
            f"{v['verdict']} | {v['seeds needed'] or '–'} | {v['scale-free'] or '–'} | "
            f"{v['DSA grid'] or '–'} |"
        )
    missing = [res.cell.name for res in results if not res.verdicts]
    if missing:
        lines += [
            "",
            "No verdict (fewer than 2 levels with converged networks): " + ", ".join(missing),
        ]
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    paths["summary"] = path
    return paths


def report_sections(results: list[CellResult]) -> list:
    """One report section per cell: its three levels and feature learning versus the factor."""
    from degeneracy.analysis.report import FL, LEVELS, Section, caption, level_chart

    sections = []
    for res in results:
        name = alias(res.cell.factor)
        sec = Section(res.cell.title)
        chart = level_chart(
            res.rows, name, LEVELS, f"{res.cell.title}: behavior, dynamics, weights", res.series
        )
        if chart is not None:
            sec.charts.append((f"{res.cell.name}_levels", chart))
            sec.captions[f"{res.cell.name}_levels"] = caption(res.rows, name, res.series)
        fl = level_chart(
            res.rows,
            name,
            {k: (v, v) for k, v in FL.items()},
            f"{res.cell.title}: feature learning",
            res.series,
        )
        if fl is not None:
            sec.charts.append((f"{res.cell.name}_feature_learning", fl))
        counts = ", ".join(
            f"{name} = {lvl}: {c}/{n} converged" for lvl, (n, c, _) in sorted(res.counts.items())
        )
        sec.notes.append(f"{counts}. Degeneracy uses converged networks only.")
        if not res.rows:
            sec.notes.append("No level has converged networks: nothing to measure.")
        sections.append(sec)
    return sections


def caveats(results: list[CellResult]) -> list[str]:
    """Per task: the thresholds, seeds and widths used beside the paper's; the DSA settings."""
    from degeneracy.tasks import TASKS

    by: dict[str, list[dict]] = {}
    for res in results:
        by.setdefault(res.cell.task, []).append(res.settings)
    out = []
    for task, settings in by.items():
        thr = sorted({s["threshold"] for s in settings})
        seeds = sorted({s["seeds"] for s in settings})
        widths = sorted({h for s in settings for h in s["hidden"]})
        out.append(
            f"{task}: MSE threshold {', '.join(f'{t:g}' for t in thr)} (the paper's: "
            f"{TASKS[task].paper_threshold:g}); networks per condition "
            f"{', '.join(map(str, seeds))} (the paper: 50); hidden "
            f"{', '.join(map(str, widths))} (the paper: 128 outside its width sweep)."
        )
    out += [
        DSA_NOTE,
        "Every other departure from the paper (inputs, learning rates, budgets, regularizer "
        "strengths) is listed with its reason in docs/FIDELITY.md.",
    ]
    return out


def write_report(out: Path, results: list[CellResult], header: list[str]) -> Path:
    from degeneracy.analysis.report import write_page

    sections = report_sections(results)
    table = [v for res in results for v in res.verdicts]
    title = "Reproduction of the paper's table"
    return write_page(out, title, header, sections, table, caveats(results))
