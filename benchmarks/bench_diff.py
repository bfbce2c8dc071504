#!/usr/bin/env python
"""`vespa-curate diff` at the live service's scale: 1.15 M served rows.

Builds, in a work folder, an hfc1ar import area of the 1.15 M rows of a full run
(``rows.parquet`` of ``benchmarks/bench_hfc1ar.py``'s run under ``outputs/bench/runs``)
whose polygons are **stand-ins** — a 0.2° quadrilateral at each polygon's first vertex,
as ``bench_nightly.py``'s base, because a DaCHS import of 1.15 M real polygons takes
about ten hours (pgSphere's GiST key is quadratic in the vertex count) — with the content
hashes and dates the export keeps. Imports it with ``dachs imp`` into DaCHS (its own
inputsDir, holding the tests' DaCHS lock: the database is shared), serves it with
``dachs serve debug`` on a free loopback port, and times, with the peak RSS of this
process:

1. ``diff`` of the published area: every served row read in pages of 50 000
   (granule_uid, modification_date), all unchanged;
2. ``diff --content``: every served row's content read in pages and hashed;
3. a night's export on top (300 granules changed, 300 new), then ``diff`` again: the
   changed granules' content fetched by IN lists, their columns named.

Usage::

    .venv/bin/python benchmarks/bench_diff.py [--rows PATH] [--work DIR] [--keep]

A script that prints figures, never a timed test. At the end the served table is
dropped (``--keep`` leaves it and the work folder).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "benchmarks"))

QUAD_DEG = 0.2
NOW = pd.Timestamp("2029-12-31T00:00:00")


def say(msg: str) -> None:
    print(msg, flush=True)


def rss_mb() -> float:
    """Peak RSS of this process (VmHWM: unlike ru_maxrss, not inherited by a child)."""
    for ln in Path("/proc/self/status").read_text().splitlines():
        if ln.startswith("VmHWM:"):
            return int(ln.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def quads(s_region: pd.Series) -> np.ndarray:
    """A QUAD_DEG quadrilateral at each polygon's first vertex (STC-S, 6 decimals)."""
    from vespa_curation import stcs
    poly = stcs.parse(s_region.tolist())
    first = poly.offsets[:-1]
    lon = poly.lon[np.minimum(first, len(poly.lon) - 1)]
    lat = np.clip(poly.lat[np.minimum(first, len(poly.lat) - 1)], -89.5, 89.5 - QUAD_DEG)
    pts = [(lon, lat), (lon + QUAD_DEG, lat), (lon + QUAD_DEG, lat + QUAD_DEG),
           (lon, lat + QUAD_DEG)]
    words = [np.char.mod("%.6f", np.mod(x, 360.0)).astype(object) + " "
             + np.char.mod("%.6f", y).astype(object) for x, y in pts]
    out = "Polygon UNKNOWNFrame " + words[0] + " " + words[1] + " " + words[2] + " " \
        + words[3]
    return np.where(poly.counts > 0, out, None)


def parts(rows_path: Path, svc, state_parts: list, batch: int = 100000,
          limit: int | None = None):
    """The run's rows, part by part, with stand-in polygons and the export's dates;
    each part's granule state goes into ``state_parts``."""
    import pyarrow.parquet as pq
    from vespa_curation import incremental
    pf = pq.ParquetFile(rows_path)
    seen = 0
    for b in pf.iter_batches(batch_size=batch):
        if limit is not None and seen >= limit:
            return
        df = b.to_pandas()
        if limit is not None:
            df = df.iloc[:limit - seen]
        seen += len(df)
        df = df.drop(columns=[c for c in df.columns if c.startswith("qa_")])
        df["s_region"] = quads(df["s_region"])
        for c in incremental.DATE_COLUMNS:
            df[c] = NOW
        state_parts.append(pd.DataFrame({
            "granule_uid": df["granule_uid"].astype(str),
            "content_hash": incremental.content_hash(df, svc.columns, svc.column_facts),
            **{c: NOW.isoformat() for c in ("creation_date", "release_date",
                                            "modification_date")}}))
        yield df


def build_area(rows_path: Path, inputs: Path, limit: int | None = None) -> float:
    """The stand-in import area (no coverage: not what is measured here)."""
    from vespa_curation.area import ImportArea
    from vespa_curation.export import RunExport, write_run
    from vespa_curation.services import get_service
    svc = get_service("hfc1ar")
    t0 = time.perf_counter()
    state_parts: list = []
    # the writer reads the granule state once every part is written: a lazy frame
    write_run(ImportArea(inputs, "hfc1ar"), svc,
              RunExport(run_id="20291231T000000Z", rows=parts(rows_path, svc, state_parts,
                                                                 limit=limit),
                        granule_state=_LazyState(state_parts)), coverage=None)
    return time.perf_counter() - t0


class _LazyState:
    """Quacks like the granule-state frame the writer reads once every part is written."""

    def __init__(self, parts):
        self._parts = parts

    def _frame(self):
        return pd.concat(self._parts, ignore_index=True)

    @property
    def columns(self):
        return self._frame().columns if self._parts else ["granule_uid"]

    def drop_duplicates(self, *a, **kw):
        return self._frame().drop_duplicates(*a, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(env: dict, work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    rc = Path(env["GAVOSETTINGS"])
    rc.write_text(rc.read_text() + f"[web]\nserverPort: {port}\nbindAddress: 127.0.0.1\n"
                  f"serverURL: http://127.0.0.1:{port}\n", encoding="utf-8")
    log = open(work / "serve.log", "wb")
    proc = subprocess.Popen(["dachs", "serve", "debug"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(180):
        try:
            urllib.request.urlopen(url + "/tap/capabilities", timeout=5).read()
            return proc, url
        except Exception:  # noqa: BLE001
            time.sleep(1)
    proc.kill()
    raise SystemExit("dachs serve debug did not answer")


def night(inputs: Path, n: int = 300) -> None:
    """A night's export: ``n`` served granules renamed, ``n`` new ones."""
    from vespa_curation import incremental
    from vespa_curation.area import ImportArea
    from vespa_curation.export import RunExport, write_run
    from vespa_curation.export.votable import read_votable
    from vespa_curation.services import get_service
    svc = get_service("hfc1ar")
    area = ImportArea(inputs, "hfc1ar")
    first = sorted((area.path / "data").glob("*.vot"))[0]
    base = read_votable(first).head(2 * n)
    changed = base.iloc[:n].assign(feature_name="HFC AR 99999")
    new = base.iloc[n:].assign(granule_uid=lambda d: d["granule_uid"] + "_new")
    rows = pd.concat([changed, new], ignore_index=True)
    later = NOW + pd.Timedelta(days=1)
    for c in incremental.DATE_COLUMNS:
        rows[c] = later
    state = pd.DataFrame({"granule_uid": rows["granule_uid"].astype(str),
                          "content_hash": incremental.content_hash(rows, svc.columns,
                                                                   svc.column_facts),
                          **{c: later.isoformat() for c in ("creation_date",
                                                            "release_date",
                                                            "modification_date")}})
    write_run(area, svc, RunExport(run_id="20300101T000000Z", rows=rows,
                                   granule_state=state), coverage=None)


def _child(cfg_values: dict, kw: dict, out) -> None:
    """One diff in a fresh process (its own peak RSS)."""
    from astropy.utils import iers
    iers.conf.auto_download = False
    from vespa_curation.config import load_config
    from vespa_curation.diff import diff
    cfg = load_config("hfc1ar", overrides=cfg_values)
    base = rss_mb()
    t0 = time.perf_counter()
    d = diff(cfg, **kw)
    out.put({"s": time.perf_counter() - t0, "queries": d.queries, "counts": d.counts,
             "columns": d.changed_columns, "rss_mb": rss_mb(), "rss_start_mb": base})


def timed_diff(cfg_values: dict, **kw) -> dict:
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(cfg_values, kw, q))
    p.start()
    res = q.get()
    p.join()
    return res


def main() -> None:
    import bench_moc
    import bench_nightly as N
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default=bench_moc.default_rows())
    ap.add_argument("--work", default=str(ROOT / "outputs" / "bench" / "diff"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--limit", type=int, default=None, help="only the first N rows (a trial)")
    args = ap.parse_args()
    from astropy.utils import iers
    iers.conf.auto_download = False
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    inputs = work / "inputs"
    inputs.mkdir(parents=True)
    say(f"building the stand-in import area from {args.rows} ...")
    say(f"  area written in {build_area(Path(args.rows), inputs, args.limit):.0f} s; RSS {rss_mb():.0f} MB")
    env = N.dachs_env(inputs, work)
    proc = None
    with N.dachs_lock():
        try:
            subprocess.run(["dachs", "drop", "hfc1ar/q"], env=env, capture_output=True)
            say(f"dachs imp of the stand-in rows: {N.timed_dachs(env, 'imp', 'hfc1ar/q'):.0f} s")
            proc, url = serve(env, work)
            report({"dachs_inputs": str(inputs), "server_url": url,
                    "outputs": str(work / "runs"), "decisions": str(work / "none.csv")},
                   inputs)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)
            if not args.keep:
                subprocess.run(["dachs", "drop", "hfc1ar/q"], env=env, capture_output=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def report(cfg_values: dict, inputs: Path) -> None:
    def line(what, r):
        say(f"{what}: {r['s']:.1f} s, {r['queries']} TAP queries, counts {r['counts']}"
            + (f", columns {r['columns']}" if r["columns"] else "")
            + f"; peak RSS of the diff's process {r['rss_mb']:.0f} MB (after imports "
            f"{r['rss_start_mb']:.0f} MB)")
    line("diff of the published area", timed_diff(cfg_values))
    line("diff --content", timed_diff(cfg_values, content=True))
    night(inputs)
    line("diff after a night's export (300 changed, 300 new)", timed_diff(cfg_values))


if __name__ == "__main__":
    main()
