"""The whole nightly run, as cron sees it: `vespa-curate run hfc1ar` (the three stage
notebooks through papermill: harvest, QA, export) on an HFC database of N regions,
against the per-row way timed in the same session on regions of the same database.

Prints each stage's wall time and share of the run (from run.log), regions/s end to
end, the peak RSS summed over every process of the run (driver, kernels, workers), and
the ratio to the per-row way: the original service's method (sunpy ``Chaincode`` + one
``SkyCoord`` transform + shapely per region, ``bench_geometry.per_row_original``) timed
on ``--baseline`` regions spread over the same database, half before and half after the
run (interleaved, so that a slower spell of the machine weighs on both ways), and
extrapolated to the N regions. The per-row way runs on one core, as the original
service did; the run uses ``--workers`` processes.

Usage::

    .venv/bin/python benchmarks/bench_run.py [--rows 184000] [--workers 2] [--baseline 200]

A script that prints figures, never a timed test.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
BENCH = ROOT / "outputs" / "bench"

from bench_hfc1ar import PeakRSS, ensure_db  # noqa: E402


def baseline_regions(db: Path, n: int, seed: int = 3) -> pd.DataFrame:
    """``n`` regions spread over the database, with what the per-row way reads."""
    from vespa_curation.services import hfc1ar
    from vespa_curation.sources.sql import sqlite_source
    with sqlite_source(db) as src:
        total = int(src.scalar("SELECT COUNT(*) FROM ACTIVEREGIONS"))
        ids = np.sort(np.random.default_rng(seed).choice(total, n, replace=False)) + 1
        recs = []
        for chunk in hfc1ar.SOURCE.records(src, {"chunk_size": 50_000}, None):
            recs.append(chunk[chunk["ID_AR"].astype(int).isin(ids)])
    return pd.concat(recs, ignore_index=True)


def time_per_row(recs: pd.DataFrame) -> np.ndarray:
    """Wall seconds of the per-row way for each region."""
    from bench_geometry import per_row_original
    out = np.empty(len(recs))
    for k in range(len(recs)):
        t = time.perf_counter()
        per_row_original(recs.iloc[k:k + 1])
        out[k] = time.perf_counter() - t
    return out


def stage_times(run_log: Path) -> dict[str, float]:
    """Stage → seconds, from the run's own log."""
    out = {}
    for m in re.finditer(r"stage (\d\d_\w+) done in ([\d.]+) s", run_log.read_text()):
        out[m.group(1)] = float(m.group(2))
    return out


def stage_spans(run_log: Path) -> dict[str, tuple[float, float]]:
    """Stage → (start, end) as ``time.time()`` instants, from the run log's local
    timestamps."""
    import datetime as dt
    spans: dict[str, list] = {}
    for m in re.finditer(r"^(\S+ \S+) INFO vespa_curation\.runs: \w+: stage (\d\d_\w+) "
                         r"(starts|done)", run_log.read_text(), re.M):
        t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        spans.setdefault(m.group(2), [t, t])[0 if m.group(3) == "starts" else 1] = t
    return {k: (a, b) for k, (a, b) in spans.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=184_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baseline", type=int, default=200,
                    help="regions timed the per-row way (half before, half after)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                    help="a parameter of the run (e.g. coverage=false: no coverage MOC)")
    args = ap.parse_args(argv)
    from astropy.utils import iers
    iers.conf.auto_download = False

    db = ensure_db(args.rows)
    recs = baseline_regions(db, args.baseline)
    time_per_row(recs.head(2))                       # warm-up: imports, ephemeris
    half = len(recs) // 2
    before = time_per_row(recs.iloc[:half])

    out = BENCH / "run"
    for sub in ("runs", "dachs"):
        shutil.rmtree(out / sub, ignore_errors=True)
    exe = Path(sys.executable).parent / "vespa-curate"
    cmd = [str(exe), "run", "hfc1ar", "--no-progress",
           "-p", f"source=sqlite:///{db}", "-p", f"workers={args.workers}",
           "-p", "full=true", "-p", f"outputs={out / 'runs'}",
           "-p", f"dachs_inputs={out / 'dachs'}",
           "-p", f"decisions={out / 'decisions-none.csv'}"]
    for kv in args.param:
        cmd += ["-p", kv]
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
        wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"vespa-curate run failed ({p.returncode}):\n{p.stderr[-3000:]}")
    after = time_per_row(recs.iloc[half:])
    run_dir = next((out / "runs").glob("*/hfc1ar"))
    stages = stage_times(run_dir / "run.log")
    harvest = json.loads((run_dir / "harvest.json").read_text())
    n = harvest["counts"]["source_records"]
    per_row = np.median(np.concatenate([before, after]))
    ratio = per_row * n / wall
    print(f"regions in the source: {n:,}; accepted {harvest['counts']['accepted']:,}"
          + (f"; parameters {' '.join(args.param)}" if args.param else ""))
    print(f"`vespa-curate run hfc1ar` (papermill, {args.workers} workers): "
          f"{wall:,.1f} s end to end = {n / wall:,.0f} regions/s; "
          f"peak RSS summed over its processes {mem.peak / 2**30:.2f} GB")
    spans = stage_spans(run_dir / "run.log")
    peaks = {k: mem.peak_between(*spans[k]) / 2**30 for k in stages if k in spans}
    for stage, s in stages.items():
        print(f"  {stage:10s} {s:8.1f} s  {100 * s / wall:5.1f} % of the run, "
              f"peak RSS summed {peaks.get(stage, float('nan')):.2f} GB")
    print(f"  (papermill, kernels and the lock: {wall - sum(stages.values()):.1f} s)")
    print(f"per-row way (sunpy Chaincode + SkyCoord + shapely, one core): median "
          f"{per_row * 1e3:.1f} ms/region on {len(recs)} regions of the same database "
          f"(before the run {np.median(before) * 1e3:.1f}, after "
          f"{np.median(after) * 1e3:.1f}) → {per_row * n / 3600:.2f} h for {n:,} regions")
    print(f"RATIO end to end: {ratio:,.0f}× the per-row way (target ≥ 150×)")
    qa = stages.get("02_qa")
    if qa is not None:
        print(f"QA share: {100 * qa / wall:.1f} % of the run (target ≤ 10 %)")
    if n >= 1_150_000:
        print(f"moonshot: {n:,} regions end to end in {wall:,.1f} s (target ≤ 180 s on "
              f"2 cores): {'met' if wall <= 180 else 'not met'}")
    results = {"rows": n, "workers": args.workers, "params": args.param,
               "wall_s": round(wall, 1),
               "stages_s": stages, "peak_rss_gb": round(mem.peak / 2**30, 2),
               "stage_peak_rss_gb": {k: round(v, 2) for k, v in peaks.items()},
               "per_row_ms": round(per_row * 1e3, 2), "ratio": round(ratio, 1)}
    (BENCH / "run_results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
