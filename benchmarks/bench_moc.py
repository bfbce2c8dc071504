#!/usr/bin/env python
"""The coverage MOCs of hfc1ar at the live service's scale: 1.15 M polygons.

Reads the s_region of the accepted rows of a full hfc1ar run (``rows.parquet`` of the
run ``benchmarks/bench_hfc1ar.py`` leaves under ``outputs/bench/runs/``, 1.15 M regions
of median 60 vertices), row group by row group, and times

- the spatial MOC of their union at order ``--order`` (≥ 9) with
  :class:`vespa_curation.geometry.moc.PolygonUnion` (the cap test at order 6
  skips the polygons already inside the union), peak RSS included;
- the same union the plain way (one mocpy MOC per polygon, then one union) on the first
  ``--check`` polygons, and PolygonUnion on them in batches of 5 000: both MOCs must be
  equal, and the ratio of the times is printed;
- the T-MOC of the 1.15 M [time_min, time_max] intervals;
- what a night's export adds to it: the union extended by the last ``--night`` polygons
  (starting from the full union, as the export starts from the area's MOC), the T-MOC
  rebuilt, and the MOC files written and read back.

Usage::

    .venv/bin/python benchmarks/bench_moc.py [--rows PATH] [--order 9] [--check 20000]

A script that prints figures, never a timed test.
"""
from __future__ import annotations

import argparse
import glob
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def default_rows() -> str | None:
    found = sorted(glob.glob(str(ROOT / "outputs" / "bench" / "runs" / "*" / "hfc1ar"
                                / "rows.parquet")))
    return found[-1] if found else None


def plain_union(s_region, order):
    from vespa_curation import stcs
    from vespa_curation.geometry import moc as M
    poly = stcs.parse(s_region)
    mocs = M.polygon_mocs(poly, np.arange(len(poly)), order)
    mocs.pop("refused")
    ms = list(mocs.values())
    return ms[0].union(*ms[1:])


def night(args, pf, full, tt) -> None:
    """A night's increment on top of the full coverage."""
    import tempfile
    from vespa_curation.geometry import moc as M
    last = pf.read_row_group(pf.metadata.num_row_groups - 1, columns=["s_region"])
    s = last.column(0).to_pylist()[-args.night:]
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        M.write_moc(full, Path(d) / "smoc.fits")
        start = M.read_moc(Path(d) / "smoc.fits")
        t1 = time.perf_counter()
        u = M.PolygonUnion(args.order, start=start)
        u.add(s)
        t2 = time.perf_counter()
        M.time_moc(tt[:, 0], tt[:, 1])
        t3 = time.perf_counter()
    print(f"a night of {len(s)} polygons on the full coverage: MOC written + read "
          f"{t1 - t0:.2f} s, union extended {t2 - t1:.2f} s ({u.added} computed at order "
          f"{args.order}, {u.skipped} inside already), T-MOC of every granule rebuilt "
          f"{t3 - t2:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default=default_rows(), help="rows.parquet of a full run")
    ap.add_argument("--order", type=int, default=9)
    ap.add_argument("--check", type=int, default=50000,
                    help="polygons also united the plain way (0: skip)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N rows")
    ap.add_argument("--night", type=int, default=300, help="polygons of a night")
    args = ap.parse_args()
    if not args.rows or not Path(args.rows).is_file():
        raise SystemExit("no rows.parquet: run benchmarks/bench_hfc1ar.py first, or --rows")
    import pyarrow.parquet as pq
    from astropy.utils import iers
    iers.conf.auto_download = False
    from vespa_curation.geometry import moc as M

    pf = pq.ParquetFile(args.rows)
    n_total = pf.metadata.num_rows if args.limit is None else min(args.limit,
                                                                  pf.metadata.num_rows)
    print(f"{args.rows}: {n_total} rows, {pf.metadata.num_row_groups} row groups")
    base_rss = rss_mb()
    union = M.PolygonUnion(args.order)
    t_read = t_moc = 0.0
    seen = 0
    times = []
    for g in range(pf.metadata.num_row_groups):
        if seen >= n_total:
            break
        t0 = time.perf_counter()
        tab = pf.read_row_group(g, columns=["s_region", "time_min", "time_max"])
        tab = tab.slice(0, n_total - seen)
        s = tab.column("s_region").to_pylist()
        times.append(np.column_stack([tab.column("time_min").to_numpy(zero_copy_only=False),
                                      tab.column("time_max").to_numpy(zero_copy_only=False)]))
        t1 = time.perf_counter()
        union.add(s)
        t2 = time.perf_counter()
        t_read += t1 - t0
        t_moc += t2 - t1
        seen += len(s)
        if g % 20 == 0:
            print(f"  {seen} polygons, {t_moc:.1f} s, fine {union.added}, "
                  f"skipped {union.skipped}, RSS {rss_mb():.0f} MB", flush=True)
    m = union.moc
    print(f"spatial MOC, order {args.order}: {seen} polygons in {t_moc:.1f} s "
          f"({t_moc / seen * 1e3:.3f} ms/polygon; reading parquet {t_read:.1f} s); "
          f"fine coverage computed for {union.added} ({union.added / seen:.1%}), "
          f"skipped {union.skipped}, refused by mocpy {union.refused}; "
          f"sphere fraction {m.sky_fraction:.4f}; peak RSS {rss_mb():.0f} MB "
          f"(start {base_rss:.0f} MB)")
    tt = np.concatenate(times)
    t0 = time.perf_counter()
    tm = M.time_moc(tt[:, 0], tt[:, 1])
    t1 = time.perf_counter()
    print(f"T-MOC of {len(tt)} intervals, order {tm.max_order}: {t1 - t0:.2f} s; "
          f"{M.time_summary(tm)}")
    night(args, pf, m, tt)
    if args.check:
        s = pf.read(columns=["s_region"]).column(0).slice(0, args.check).to_pylist()
        t0 = time.perf_counter()
        a = M.polygon_moc(s, args.order)
        t1 = time.perf_counter()
        b = plain_union(s, args.order)
        t2 = time.perf_counter()
        print(f"first {len(s)} polygons: PolygonUnion {t1 - t0:.1f} s, plain union "
              f"{t2 - t1:.1f} s ({(t2 - t1) / (t1 - t0):.1f}x); equal: {a == b}")


if __name__ == "__main__":
    main()
