"""hfc1ar at real scale: harvest → geometry → validate → export of 1.15 million regions.

Runs the project's own stage functions (``vespa_curation.harvest.run`` and
``export.run``, the ones the notebooks call) on the synthetic HFC database of
``benchmarks/make_bench_db.py`` (built first when missing) with 2 worker processes, and
prints:

- wall time and rows/s of harvest (source read + map + geometry + validate), of export
  (VOTable + manifest), and end to end (target: ≤ 15 min on 2 cores);
- peak memory summed over the driver and its worker processes (target: ≤ 3 GB);
- the geometry stage's ms per region against the per-row way of the original service,
  both on one core on the same sample, in this same run (``bench_geometry.py``; target
  ≥ 300×);
- with ``--dachs``: the time of ``dachs imp`` of the full export, reported separately
  (needs DaCHS and PostgreSQL with pgSphere, as set up by .ci/run).

Usage::

    .venv/bin/python benchmarks/bench_hfc1ar.py [--rows 1150000] [--workers 2] [--dachs]

A script that prints figures, never a timed test.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "outputs" / "bench"


class PeakRSS:
    """Samples the summed RSS of this process and all its descendants (``peak``), and
    the peak of each of them (``each``: pid → bytes)."""

    def __init__(self, interval: float = 0.25):
        self.interval = interval
        self.peak = 0
        self.each: dict[int, int] = {}
        self.samples: list[tuple[float, int]] = []     # (time.time(), summed RSS)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            try:
                procs = [me] + me.children(recursive=True)
                for p in procs:
                    try:
                        rss = p.memory_info().rss
                    except psutil.Error:
                        continue
                    total += rss
                    self.each[p.pid] = max(self.each.get(p.pid, 0), rss)
            except psutil.Error:
                pass
            self.peak = max(self.peak, total)
            self.samples.append((time.time(), total))
            self._stop.wait(self.interval)

    def peak_between(self, t0: float, t1: float) -> int:
        """The highest summed RSS sampled between two ``time.time()`` instants."""
        return max((m for t, m in self.samples if t0 <= t <= t1), default=0)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def ensure_db(rows: int) -> Path:
    db = BENCH / (f"hfc_bench_{rows}.sqlite" if rows != 1_150_000 else "hfc_bench.sqlite")
    if not db.is_file():
        print(f"building {db} ({rows} regions) …", flush=True)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_bench_db.py"),
                        "--rows", str(rows), "--out", str(db)], check=True)
    return db


def dachs_sample(run_dir: Path, db: Path, n_sample: int, n_total: int) -> dict:
    """``dachs imp`` of the first regions of the run: as published (vertex budget) and
    with every vertex of the outline (``vertex_tol_px=0``), same rows otherwise."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from bench_dachs_imp import time_import
    from vespa_curation.geometry import hfc_ar_polygons
    from vespa_curation.services import hfc1ar
    from vespa_curation.sources.sql import sqlite_source

    pf = pq.ParquetFile(run_dir / "rows.parquet")
    groups, k = [], 0
    while k < n_sample and len(groups) < pf.num_row_groups:
        k += pf.metadata.row_group(len(groups)).num_rows
        groups.append(len(groups))
    rows = pf.read_row_groups(groups).to_pandas().iloc[:n_sample].reset_index(drop=True)
    with sqlite_source(db) as src:
        recs = pd.concat(hfc1ar.SOURCE.records(src, {"limit": 2 * n_sample + 1000,
                                              "chunk_size": 2 * n_sample + 1000}, None),
                         ignore_index=True)
    recs = recs[recs["ID_AR"].astype(str).isin(rows["qa_id_ar"].astype(str))]
    recs = recs.set_index(recs["ID_AR"].astype(str))
    rows = rows[rows["qa_id_ar"].astype(str).isin(recs.index)].reset_index(drop=True)
    full = hfc_ar_polygons(recs, vertex_tol_px=0)
    dense = rows.copy()
    dense["s_region"] = full["s_region"].reindex(rows["qa_id_ar"].astype(str)).to_numpy()
    assert dense["s_region"].notna().all()
    nv_pub = rows["qa_n_vertices"].astype(float)
    nv_full = full["n_vertices"].astype(float)
    out = {}
    print(f"\ndachs imp of the first {len(rows):,} regions (throw-away schema, full import):")
    for label, frame, nv in (("published", rows, nv_pub), ("every_vertex", dense, nv_full)):
        t = time_import(frame, f"sample-{label}")
        per = t / len(frame)
        out[f"dachs_imp_{label}"] = {
            "rows": len(frame), "seconds": round(t, 1), "ms_per_row": round(per * 1e3, 2),
            "median_vertices": float(np.median(nv)),
            "extrapolated_full_h": round(per * n_total / 3600, 2)}
        print(f"  {label:13s} median {np.median(nv):5.0f} vertices: {t:7.1f} s = "
              f"{per * 1e3:6.2f} ms/row → {n_total:,} rows ≈ {per * n_total / 3600:.2f} h "
              "(extrapolated)", flush=True)
    ratio = out["dachs_imp_every_vertex"]["seconds"] / out["dachs_imp_published"]["seconds"]
    print(f"  vertex budget: dachs imp {ratio:.1f}× faster", flush=True)
    out["dachs_imp_budget_ratio"] = round(ratio, 2)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_150_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=None,
                    help="records per chunk (default: chunk_size of parameters/hfc1ar.yaml)")
    ap.add_argument("--limit", type=int, default=None,
                    help="harvest only the first N regions of the database (a quick look)")
    ap.add_argument("--dachs", action="store_true", help="also time `dachs imp`")
    ap.add_argument("--dachs-sample", type=int, default=0, metavar="N",
                    help="time `dachs imp` of the first N exported regions, with the "
                         "published vertex budget and with every vertex, and extrapolate")
    ap.add_argument("--skip-geometry-ratio", action="store_true")
    args = ap.parse_args(argv)

    from astropy.utils import iers
    iers.conf.auto_download = False
    from vespa_curation import export, harvest
    from vespa_curation.config import load_config

    db = ensure_db(args.rows)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir = BENCH / "runs" / stamp / "hfc1ar"
    inputs = BENCH / "dachs"
    decisions = BENCH / "decisions-none.csv"
    if args.chunk is None:
        args.chunk = int(load_config("hfc1ar")["chunk_size"])
    params = load_config("hfc1ar", overrides={
        "source": f"sqlite:///{db}", "workers": args.workers, "chunk_size": args.chunk,
        "full": True, "dachs_inputs": str(inputs), "outputs": str(BENCH / "runs"),
        "decisions": str(decisions), "limit": args.limit})
    results = {"rows_in_source": args.rows, "workers": args.workers, "chunk": args.chunk}
    # a full export into a fresh import area (an area left by an earlier run would make
    # the export compare content hashes and write only what changed)
    import shutil
    for old in (inputs / "hfc1ar", inputs / ".hfc1ar.versions"):
        if old.is_symlink():
            old.unlink()
        elif old.exists():
            shutil.rmtree(old)

    me = psutil.Process()

    def cpu() -> float:   # this process and its finished (joined) children, seconds
        c = me.cpu_times()
        return c.user + c.system + c.children_user + c.children_system

    with PeakRSS() as mem:
        t0, c0 = time.perf_counter(), cpu()
        h = harvest.run(params, run_dir)
        t_h, c_h = time.perf_counter() - t0, cpu() - c0
        t1, c1 = time.perf_counter(), cpu()
        e = export.run(params, run_dir)
        t_e, c_e = time.perf_counter() - t1, cpu() - c1
    total = t_h + t_e
    n = h["counts"]["source_records"]
    results.update(
        harvest_s=round(t_h, 1), export_s=round(t_e, 1), end_to_end_s=round(total, 1),
        rows_per_s=round(n / total, 0), accepted=h["counts"]["accepted"],
        quarantined=h["counts"]["quarantined_records"], by_rule=h["by_rule"],
        peak_rss_gb=round(mem.peak / 2**30, 2), exported=e.get("exported"),
        harvest_cores_busy=round(c_h / t_h, 2), export_cores_busy=round(c_e / t_e, 2))
    print(f"\nsource regions: {n:,}; accepted {h['counts']['accepted']:,}; "
          f"quarantined {h['counts']['quarantined_records']:,} {h['by_rule']}")
    print(f"harvest+map+geometry+validate: {t_h:,.1f} s ({n / t_h:,.0f} rows/s; "
          f"CPU {c_h / t_h:.2f} cores busy on average)")
    print(f"export (VOTable + manifest):   {t_e:,.1f} s (CPU {c_e / t_e:.2f} cores busy)")
    print(f"END TO END: {total / 60:.2f} min on {args.workers} workers "
          f"({n / total:,.0f} rows/s; target ≤ 15 min)")
    print(f"PEAK RSS summed over processes: {mem.peak / 2**30:.2f} GB (target ≤ 3 GB)")

    if args.dachs:
        from vespa_curation.publish import publish
        t2 = time.perf_counter()
        try:
            pub = publish("hfc1ar", params)
            results["dachs_imp"] = pub
        except Exception as exc:  # report, do not hide the other figures
            results["dachs_imp_error"] = str(exc)
            print(f"dachs publish failed: {exc}")
        results["dachs_publish_s"] = round(time.perf_counter() - t2, 1)
        print(f"dachs imp + limits + val + TAP check: {results['dachs_publish_s']} s "
              "(reported separately)")

    if args.dachs_sample:
        results.update(dachs_sample(run_dir, db, args.dachs_sample, n))

    if not args.skip_geometry_ratio:
        print("\ngeometry stage vs the per-row way (one core, same sample, this run):",
              flush=True)
        p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_geometry.py"),
                            "--regions", "20000", "--baseline", "40"],
                           capture_output=True, text=True)
        print(p.stdout)
        for line in p.stdout.splitlines():
            if line.startswith("RATIO"):
                results["geometry_ratio"] = line
    out = BENCH / "results.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
