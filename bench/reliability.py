"""Reliability figures for the notes (not timings): concurrent writers on a new registry, and a
sweep finishing while a reader holds the catalog.

    python bench/reliability.py [--trials 10] [--hold 120]

1. `--trials` times: 4 `degeneracy sweep` processes started at once on a new path, each a
   different tiny condition. Counts the runs that exit 0 and checks every trial's registry ends
   with all 4 ensembles, once each, and `check` clean.
2. A read-only DuckDB connection holds the catalog for `--hold` seconds while a sweep of tiny
   ensembles runs; then the sweep is rerun (registering what waited in pending/). Counts the
   networks trained, stored and duplicated.
Every process runs torch on one thread.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """name = "rel-{i}"
task = "flipflop"
seeds = 2
hidden = {hidden}
complexity = {complexity}
[train]
max_epochs = 2
steps_per_epoch = 3
batch = 8
threshold = 100.0
probe_trials = 4
"""


def sweep(reg: Path, spec: Path, extra: list[str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "degeneracy", "--registry", str(reg), "sweep", str(spec)]
    return subprocess.Popen(
        cmd + ["--threads", "1", *(extra or [])],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def concurrent_writers(tmp: Path, trials: int) -> None:
    from degeneracy.registry.store import Registry

    ok = whole = 0
    for t in range(trials):
        reg = tmp / f"new-{t}"
        specs = []
        for i in range(4):
            spec = tmp / f"w{t}-{i}.toml"
            spec.write_text(SPEC.format(i=i, hidden=8, complexity=i + 1))
            specs.append(spec)
        procs = [sweep(reg, s) for s in specs]
        codes = [p.wait(600) for p in procs]
        ok += sum(c == 0 for c in codes)
        bad = [p.stderr.read().strip().splitlines()[-1:] for p, c in zip(procs, codes) if c]
        r = Registry.open(reg)
        n = r.sql("SELECT count(*) AS n, count(DISTINCT network_id) AS d FROM networks").row(0)
        clean = r.check().ok
        whole += n == (8, 8) and clean
        print(
            f"trial {t + 1}: exit codes {codes}, networks {n[0]} ({n[1]} distinct), "
            f"check {'clean' if clean else 'NOT clean'} {bad if bad else ''}",
            flush=True,
        )
    print(
        f"concurrent writers: {ok} of {4 * trials} runs exited 0; {whole} of {trials} "
        "registries whole"
    )


def reader_held(tmp: Path, hold: float) -> None:
    import duckdb

    from degeneracy.registry.store import Registry

    reg = tmp / "held"
    Registry.create(reg)
    spec = tmp / "held.toml"
    spec.write_text(SPEC.format(i="held", hidden=list(range(4, 40)), complexity=1))
    con = duckdb.connect(str(reg / "catalog.duckdb"), read_only=True)
    t0 = time.monotonic()
    proc = sweep(reg, spec)
    time.sleep(max(0.0, hold - (time.monotonic() - t0)))
    running = proc.poll() is None
    con.close()
    code = proc.wait(3600)
    pending = len(list((reg / "pending").glob("*.json")))
    print(
        f"reader held {hold:.0f} s; the sweep was {'still running' if running else 'done'} "
        f"when it let go; sweep exit {code}; {pending} ensemble(s) waiting in pending/"
    )
    again = sweep(reg, spec)
    again.wait(3600)
    r = Registry.open(reg)
    n, d = r.sql("SELECT count(*) AS n, count(DISTINCT network_id) AS d FROM networks").row(0)
    print(
        f"after a rerun: {n} networks stored of {2 * 36} ({d} distinct), "
        f"check {'clean' if r.check().ok else 'NOT clean'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--hold", type=float, default=120.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        concurrent_writers(Path(d), args.trials)
        reader_held(Path(d), args.hold)


if __name__ == "__main__":
    main()
