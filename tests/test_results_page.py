"""docs/results: the pooling rule against hand arithmetic, and the committed current reading
against what its script makes from the committed CSVs (a new sample's CSVs, or a change of the
rule, without regenerating it fails here)."""

import csv
import math
import sys
from pathlib import Path

import numpy as np
import pytest

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


@pytest.fixture
def scripts(monkeypatch):
    monkeypatch.syspath_prepend(str(RESULTS))
    yield
    for name in ("current_reading", "pool_runs", "pool_settle"):
        sys.modules.pop(name, None)


def _level(cell, level, behavior, se, n):
    return {
        "cell": cell,
        "task": "flipflop",
        "factor": "complexity",
        "level": str(level),
        "n": str(n),
        "behavior": str(behavior),
        "behavior_se": str(se),
        "dynamics": "",
        "dynamics_se": "",
        "dynamics_floor": "",
        "weights": "",
        "weights_se": "",
        "weights_chance": "",
    }


def test_pooling_two_samples_is_the_mean_with_the_root_sum_square_error(scripts):
    from pool_runs import pool_point, pooled_levels

    a = [_level("c", 1, 1.0, 0.1, 16)]
    b = [_level("c", 1, 2.0, 0.2, 15), _level("only_b", 1, 9.0, 0.1, 16)]
    (row,) = pooled_levels([a, b])["c"]
    assert row["behavior"] == pytest.approx(1.5)
    assert row["behavior_se"] == pytest.approx(math.sqrt(0.1**2 + 0.2**2) / 2)
    assert row["n"] == 31
    assert row["dsa"] is None  # a measure a sample lacks is not pooled
    assert "only_b" not in pooled_levels([a, b])  # a cell must be in every pooled sample
    # a point: differences +0.3 and +0.1 (2 SE 0.2 each): +0.2, 2 SE √0.08 / 2 = 0.141
    diff, two_se, floor, resolved = pool_point([0.3, 0.1], [0.2, 0.2], [0.05, 0.15])
    assert (diff, floor) == pytest.approx((0.2, 0.1))
    assert two_se == pytest.approx(math.sqrt(0.08) / 2)
    assert resolved
    assert not pool_point([0.3, 0.1], [0.2, 0.2], [0.3, 0.3])[3]  # under the floor


def test_behavior_deviations_pooled_are_those_of_the_samples_taken_together(scripts):
    from pool_runs import pooled_levels

    rng = np.random.default_rng(0)
    devs = [np.abs(rng.lognormal(-5, 1, n)) for n in (16, 15)]
    samples = [
        [{**_level("c", 1, 0.1, 0.01, len(d)), "behavior_mad": str(d.mean()),
          "behavior_mad_se": str(d.std(ddof=1) / np.sqrt(len(d)))}]
        for d in devs
    ]  # fmt: skip
    (row,) = pooled_levels(samples)["c"]
    both = np.concatenate(devs)
    assert row["behavior_mad"] == pytest.approx(both.mean())
    assert row["behavior_mad_se"] == pytest.approx(both.std(ddof=1) / np.sqrt(31))
    # a sample written before the deviations: not pooled (behavior's verdict falls back)
    (old,) = pooled_levels([samples[0], [_level("c", 1, 0.1, 0.01, 16)]])["c"]
    assert old["behavior_mad"] is None


def test_the_committed_current_reading_is_what_the_committed_csvs_give(scripts):
    import current_reading

    rows = current_reading.reading()
    assert (RESULTS / "current.md").read_text() == current_reading.markdown(rows), (
        "docs/results/current.md is stale: run python docs/results/current_reading.py"
    )
    with open(RESULTS / "current.csv", newline="") as fh:
        assert list(csv.DictReader(fh)) == rows
    # every cell of the table, each with its three levels
    cells = {r["cell"] for r in rows}
    assert len(cells) == 11
    for cell in cells:
        assert {"behavior", "dynamics", "weights"} <= {
            r["level"] for r in rows if r["cell"] == cell
        }
    # S1's γ networks are S2's: never pooled twice
    for r in rows:
        if r["cell"].endswith("_gamma"):
            assert "S1" not in r["samples"].split("+")


def test_results_md_carries_the_current_condensed_table(scripts):
    """RESULTS.md's "current reading" table is the script's condensed table, verbatim."""
    import current_reading

    page = (RESULTS.parent / "RESULTS.md").read_text()
    assert current_reading.condensed(current_reading.reading()) in page, (
        "docs/RESULTS.md's table is stale: paste what `python docs/results/current_reading.py` "
        "prints"
    )
