import re

import pytest

from degeneracy.registry.store import Registry
from tests.cli.helpers import run_cli


@pytest.mark.slow  # 12 networks trained, then every level at 512 re-probed trials
def test_quick_demo_runs_end_to_end_and_reruns_for_free(tmp_path):
    reg_path = tmp_path / "reg"
    r = run_cli("demo", "--quick", "--registry", reg_path)
    assert r.returncode == 0, r.stderr
    assert (
        "threshold 0.05 " in r.stdout
        and "dsa_floor" in r.stdout
        and "pif_chance" in r.stdout
        and "mean_ood_loss" in r.stdout
    )
    assert "pif" in r.stdout and "dsa" in r.stdout
    assert (reg_path / "report" / "report.html").exists()
    assert (reg_path / "report" / "flipflop_complexity_levels.png").exists()
    reg = Registry.open(reg_path)
    rows = reg.sql(
        "SELECT complexity, count(*) AS n FROM networks GROUP BY ALL ORDER BY ALL"
    ).rows()
    assert rows == [(1, 4), (2, 4), (3, 4)]
    before = reg.sql("SELECT network_id, created_at FROM networks ORDER BY network_id")
    r = run_cli("demo", "--quick", "--registry", reg_path)
    assert r.returncode == 0, r.stderr
    after = reg.sql("SELECT network_id, created_at FROM networks ORDER BY network_id")
    assert before.equals(after)  # nothing retrained
    assert re.search(r"\((\d+) s\)", r.stdout)
    # demo table (by complexity) and report (by task, complexity): replaced, not duplicated.
    # A group has a DSA value when >= 2 of its networks converged; which ones do varies with
    # float rounding, so the count is read, not assumed (all 3 levels in every run measured).
    groups = reg.sql(
        "SELECT count(*) AS n FROM (SELECT complexity FROM networks GROUP BY ALL "
        "HAVING sum(converged::INT) >= 2)"
    )["n"][0]
    assert groups >= 2

    def count(where):
        return reg.sql(f"SELECT count(*) AS n FROM results WHERE {where}")["n"][0]

    # the demo's table and the report analyze at one setting: 10 delays, 512 trials and the
    # share rule's rank, one for every level (no DSA grid unless `report --grid`)
    ranks = reg.sql("SELECT DISTINCT params->>'rank' AS r FROM results WHERE metric = 'dsa'")
    assert ranks.height == 1 and int(ranks["r"][0]) >= 1
    default = "metric = 'dsa' AND params->>'n_delays' = '10' AND params->>'trials' = '512'"
    assert count(default) == count("metric = 'dsa'") == 2 * groups
    assert count("metric = 'dsa_corrected'") == 2 * groups
