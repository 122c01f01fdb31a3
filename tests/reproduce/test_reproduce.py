"""`reproduce`: the preset cells at every scale, and the tiny scale end to end."""

import csv
import json
import re
from types import SimpleNamespace

import pytest

from degeneracy.analysis.grouping import column_sql, setting_value
from degeneracy.registry.errors import RegistryError
from degeneracy.reproduce.cells import CELLS, SCALES, Seeds, load, select
from degeneracy.reproduce.run import default_folder, make_plan, train
from tests.cli.helpers import assert_user_error, run_cli

#: what a scale may change: seeds, widths, thresholds and budgets
SCALE_KNOBS = {"threshold", "max_epochs", "steps_per_epoch"}


def _cell_shape(scale: str, cell) -> set[str]:
    """A cell's conditions with the scale knobs removed (width too), as canonical JSON."""
    _, _, jobs = load(scale, cell)
    out = set()
    for job in jobs:
        cond = job.experiment.condition().to_dict()
        cond.pop("hidden_size")
        train = cond["factors"]["train"]
        for k in SCALE_KNOBS:
            train.pop(k)
        out.add(json.dumps(cond, sort_keys=True, default=str))
    return out


@pytest.mark.parametrize("name", sorted(CELLS))
def test_scales_differ_only_in_seeds_widths_thresholds_and_budgets(name):
    cell = CELLS[name]
    shapes = {scale: _cell_shape(scale, cell) for scale in SCALES}
    assert shapes["small"] == shapes["tiny"] == shapes["paper"]
    _, _, tiny = load("tiny", cell)
    _, _, small = load("small", cell)
    _, _, paper = load("paper", cell)
    assert len(tiny) == len(small) >= 2 or name == "flipflop_width"
    assert len(small[0].seeds) >= 16 and len(paper[0].seeds) == 50
    if name == "flipflop_width":  # at least 4 widths, 32 to 256
        widths = sorted(j.experiment.hidden for j in small)
        assert len(widths) >= 4 and widths[0] == 32 and widths[-1] == 256
        assert len({j.experiment.hidden for j in paper}) >= 4


def test_the_cells_cover_the_papers_table():
    factors = {(c.task, c.factor) for c in CELLS.values()}
    for task in ("flipflop", "delayed_discrimination", "sine", "path_integration"):
        assert (task, "complexity") in factors
    for f in ("task_params.delay_max", "task_params.aux_output", "gamma", "l1", "nuclear"):
        assert ("delayed_discrimination", f) in factors
    assert ("flipflop", "gamma") in factors and ("flipflop", "hidden_size") in factors
    _, _, gamma = load("small", CELLS["flipflop_gamma"])
    assert len({j.experiment.gamma for j in gamma}) >= 4
    assert {j.experiment.regime for j in gamma} == {"mup"}
    for reg in ("l1", "nuclear"):
        _, _, jobs = load("small", CELLS[f"delayed_discrimination_{reg}"])
        values = sorted(getattr(j.experiment, reg) for j in jobs)
        assert values[0] == 0 and len(values) >= 4


def test_shared_conditions_are_planned_once():
    plan = make_plan(None, "tiny")
    per_cell = sum(len(j.seeds) for pc in plan.cells for j in pc.jobs)
    # delayed discrimination at 1 channel, delay 20, no aux, no penalty sits in five cells
    conds = [json.dumps(j.experiment.condition().to_dict(), default=str) for j, _ in plan.work]
    assert len(conds) == len(set(conds))
    assert plan.networks == per_cell - 4 * 3 - 3  # + flip-flop 3 channels at width 16
    assert select(["flipflop"]) == [c for n, c in CELLS.items() if n.startswith("flipflop")]
    with pytest.raises(RegistryError, match="no cell"):
        select(["nonsense"])


@pytest.mark.parametrize(
    ("durations", "want"),
    [
        # (1-step, then per repeat 9-step and 1-step): a quiet machine, 0.1 s per step
        ([9.0, 1.8, 1.0, 1.9, 1.1, 1.8, 1.0], 0.1),
        # a busy one: the 1-step runs outlast the 9-step ones, so no difference is positive;
        # the 9-step runs' whole time / 9 (median 1.8 s / 9), not the 0 the plan once printed
        ([9.0, 1.8, 2.0, 0.9, 1.0, 2.7, 3.0], 0.2),
    ],
)
def test_the_per_step_timer_is_the_median_difference_and_never_zero(monkeypatch, durations, want):
    """`reproduce --dry-run` printed "at most 0 s" for 64 networks to train on a busy machine:
    one 5-step run had finished faster than a 1-step run. Planted run times, no clock."""
    from degeneracy.reproduce import run as run_module
    from degeneracy.training import trainer

    clock = iter(t for d in durations for t in (0.0, d))
    steps: list[int] = []
    monkeypatch.setattr(run_module, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    monkeypatch.setattr(
        trainer, "train_ensemble", lambda exp, seeds, device: steps.append(exp.train.max_steps)
    )
    exp = make_plan(None, "tiny").work[0][0].experiment
    got = run_module.step_seconds(exp, [0, 1], "cpu")
    assert steps == [1, 9, 1, 9, 1, 9, 1]  # max_steps = steps_per_epoch x 1 epoch
    assert got == pytest.approx(want)


def test_the_costliest_ensembles_train_first():
    """With 2 workers, the longest ensemble queued last left one core idle for half an hour of
    the small run (width 256): jobs go to the runner by measured cost x budget, descending."""
    plan = make_plan(None, "tiny")
    todo = sorted(plan.todo)
    # planted costs: per-step seconds that do not follow plan order
    for rank, i in enumerate(todo):
        plan.step_seconds[i] = ((rank * 7) % len(todo) + 1) / 1000
    seen: dict = {}

    class Catalog:  # what train needs from a registry
        def add_sweep(self, *a):
            pass

    def runner(_registry, jobs, _device, sweeps):
        seen["jobs"], seen["sweeps"] = jobs, sweeps

    train(Catalog(), plan, runner, "cpu")

    def key(exp):
        return json.dumps(exp.condition().to_dict(), sort_keys=True, default=str)

    def budget(i):
        return plan.step_seconds[i] * plan.work[i][0].experiment.train.max_steps

    index = {key(plan.work[i][0].experiment): i for i in todo}
    order = [index[key(j.experiment)] for j in seen["jobs"]]
    assert sorted(order) == todo
    assert seen["sweeps"] == [plan.work[i][1] for i in order]
    costs = [budget(i) for i in order]
    assert costs == sorted(costs, reverse=True)
    assert costs != [budget(i) for i in todo]  # the planted costs are not in plan order


def test_group_keys_may_name_factors_paths():
    assert column_sql("hidden_size") == "hidden_size"
    assert column_sql("task_params.delay_max") == (
        "factors->'task_params'->>'delay_max' AS \"task_params.delay_max\""
    )
    for bad in ("x; DROP TABLE networks", "a..b", "1a.b", "a.b'"):
        with pytest.raises(RegistryError):
            column_sql(bad)
    assert setting_value("40") == 40 and setting_value("true") is True
    assert setting_value("polar") == "polar" and setting_value(None) is None


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow  # every cell trained at the tiny scale, analyzed, then resumed
def test_tiny_scale_end_to_end_and_resumable(tmp_path):
    reg = tmp_path / "reg"
    out = tmp_path / "out"
    res = run_cli(
        "reproduce",
        "--scale",
        "tiny",
        "--no-grid",
        "--threads",
        "1",
        "-o",
        out,
        registry=reg,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    levels = _read(out / "levels.csv")
    verdicts = _read(out / "verdicts.csv")
    for name in CELLS:
        _, _, jobs = load("tiny", CELLS[name])
        mine = [r for r in levels if r["cell"] == name]
        assert len(mine) == len(jobs), name  # one row per level
        for r in mine:  # tiny's threshold is met by every network: all levels measured
            assert int(r["trained"]) == int(r["converged"]) == int(r["n"]) == 3, r
            for col in (
                "dynamics",
                "dynamics_se",
                "dynamics_floor",
                "dynamics_corrected",
                "dynamics_excess_se",
                "dsa_rank",
                "dsa_trials",
                "weights",
                "weights_se",
                "weights_chance",
                "weights_scaled",
                "weights_scaled_chance",
                "behavior",
                "behavior_mad",
                "behavior_mad_se",
                "weight_change",
            ):
                assert r[col] != "", (name, col)
            assert float(r["dsa_trials"]) == 512
        # one rank per cell: the share rule's over all its levels
        assert len({r["dsa_rank"] for r in mine}) == 1, name
        levels_seen = {r["level"] for r in verdicts if r["cell"] == name}
        assert levels_seen == {"behavior", "dynamics", "weights", "weights (scale-free)"}, name
    assert {r["verdict"] for r in verdicts} <= {"agrees", "disagrees", "not resolved", "resolved"}
    # every test of the run is one Holm family: the smallest p times the family size
    tested = sorted((float(r["p"]), float(r["Holm p"])) for r in verdicts if r["p"])
    assert len(tested) >= 3 * len(CELLS)
    assert tested[0][1] == pytest.approx(min(1.0, len(tested) * tested[0][0]), rel=0.11)
    for r in verdicts:  # weights rows say whether they survive the scale-free metric
        if r["level"] == "weights" and r["verdict"] in ("agrees", "disagrees"):
            assert r["scale-free"] in ("survives", "scale only"), r
    delay = sorted(int(r["level"]) for r in levels if r["cell"] == "delayed_discrimination_delay")
    assert delay == [10, 20, 40]
    assert (out / "report.html").stat().st_size > 10_000
    summary = (out / "summary.md").read_text()
    assert "## Verdicts" in summary
    # the run's wall time, split into training and analysis, and each cell's analysis time
    assert re.search(r"\(\d+ min: training \d+, analysis \d+;", summary)
    for name in CELLS:
        assert re.search(rf"\| {name} \|.*\| \d+\.\d min \|", summary), name
    assert re.search(r"report: .*: training .*, analysis .* and report\)", res.stdout)

    count = run_cli("query", "SELECT count(*) AS n FROM networks", "--format", "csv", registry=reg)
    again = run_cli(
        "reproduce",
        "--scale",
        "tiny",
        "--only",
        "flipflop_complexity",
        "--threads",
        "2",  # the analysis' alignments on a pool of 2 processes: the same numbers as 1
        "-o",
        out,
        registry=reg,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 to train" in again.stdout
    after = run_cli("query", "SELECT count(*) AS n FROM networks", "--format", "csv", registry=reg)
    assert count.stdout == after.stdout
    grid = _read(out / "grid.csv")  # this run checked dynamics across the grid
    assert {(g["n_delays"], g["rank"]) for g in grid} == {
        (d, r) for d in ("5", "10", "20") for r in ("5", "10", "20")
    }


def test_another_sample_draws_new_seeds_of_the_same_conditions():
    cell = CELLS["delayed_discrimination_l1"]
    text, _, jobs = load("small", cell)
    text16, _, jobs16 = load("small", cell, Seeds(first=16))
    text32, _, jobs32 = load("small", cell, Seeds(count=32))
    assert [j.seeds for j in jobs] == [list(range(16))] * len(jobs)
    assert [j.seeds for j in jobs16] == [list(range(16, 32))] * len(jobs)
    assert [j.seeds for j in jobs32] == [list(range(32))] * len(jobs)
    # the conditions are the same; the registered spec names the exact seeds trained
    assert [j.experiment for j in jobs16] == [j.experiment for j in jobs]
    assert "seeds = [16, 17," in text16 and "seeds = 16\n" in text
    assert text16.replace("seeds = " + str(list(range(16, 32))), "seeds = 16") == text
    assert load("small", cell, Seeds())[0] == text  # the default sample: the same sweep id

    plain = make_plan(None, "small", ["delayed_discrimination_l1"])
    other = make_plan(None, "small", ["delayed_discrimination_l1"], Seeds(first=16))
    bigger = make_plan(None, "small", ["delayed_discrimination_l1"], Seeds(count=32))
    ids, ids16, ids32 = (set(p.cells[0].ids()) for p in (plain, other, bigger))
    assert len(ids) == len(ids16) == 64 and not ids & ids16  # an independent sample
    assert ids32 == ids | ids16  # 32 seeds: the first sample and the second, pooled
    assert default_folder(plain) == "reproduce-small"
    assert default_folder(other) == "reproduce-small-seeds16-31"
    assert default_folder(bigger) == "reproduce-small-seeds0-31"
    assert Seeds().label(16) == "16" and Seeds(16).label(16) == "16 (seeds 16-31)"
    for bad in (dict(first=-1), dict(count=0)):
        with pytest.raises(RegistryError, match="--first-seed"):
            Seeds(**bad)


def test_a_replication_trains_and_reports_its_own_seeds(tmp_path):
    reg = tmp_path / "reg"
    args = ("reproduce", "--scale", "tiny", "--only", "flipflop_complexity", "--no-grid")
    res = run_cli(*args, "--first-seed", "5", "--seeds", "2", "--threads", "1", registry=reg)
    assert res.returncode == 0, res.stderr[-3000:]
    seeds = run_cli(
        "query", "SELECT DISTINCT seed FROM networks ORDER BY 1", "--format", "csv", registry=reg
    )
    assert seeds.stdout.split() == ["seed", "5", "6"]
    out = reg / "reproduce-tiny-seeds5-6"
    assert [int(r["n"]) for r in _read(out / "levels.csv")] == [2, 2, 2]
    assert "| flipflop_complexity | 2 (seeds 5-6) |" in (out / "summary.md").read_text()
    assert "networks per condition 2 (seeds 5-6)" in (out / "report.html").read_text()
    assert not (reg / "reproduce-tiny").exists()  # the default sample's page is not touched
    sweep = run_cli("query", "SELECT spec FROM sweeps", "--format", "csv", registry=reg)
    assert "seeds = [5, 6]" in sweep.stdout
    # the default sample of the same cell shares no network with this one: all 9 to train
    dry = run_cli(*args, "--dry-run", registry=reg)
    assert "9 network(s); 9 to train" in dry.stdout, dry.stdout


def test_bad_reproduce_input_is_one_line(tmp_path):
    assert_user_error(run_cli("reproduce", "--scale", "huge", registry=tmp_path / "r"), "--scale")
    for flag, value in (("--seeds", "0"), ("--first-seed", "-2")):
        bad = run_cli("reproduce", flag, value, "--dry-run", registry=tmp_path / "s")
        assert_user_error(bad, "--first-seed")
    assert not (tmp_path / "s").exists()  # refused before a registry was created
    assert_user_error(
        run_cli("reproduce", "--only", "nonsense", "--dry-run", registry=tmp_path / "r"),
        "no cell",
    )
