"""File collections: how fast and how little the nda harvest reads.

1. Writes NDA products of real size (a Routine CDF night: 28 700 sweeps × 400 channels ×
   LL/RR float32, 92 MB; a NewRoutine FITS of 0.5 s sweeps) and times the reader on one
   core: files/s, and the bytes each file costs — ``rchar`` of /proc/self/io (bytes
   passed by read() calls, page cache or not) and ``read_bytes`` with the file's pages
   dropped from the cache first (what the disk delivered, read-ahead and memory-mapped
   pages included).
2. Harvests a collection of ``--files`` products (hard links to those real-size files
   under 20 000 product names, a night each: 30 years of Jupiter and Sun) with
   ``harvest.run`` on ``--workers`` processes, then a second, incremental run (nothing
   new). The links share their pages, so this part measures the harvest's own work, not
   a cold disk.

    python benchmarks/bench_files.py [--files 20000] [--workers 2] [--real 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "outputs" / "bench" / "files"


def io_counters() -> dict[str, int]:
    return {k: int(v) for k, v in (ln.split(": ") for ln in
                                   Path("/proc/self/io").read_text().splitlines())}


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def write_real(folder: Path, n: int) -> list[Path]:
    from vespa_curation.services.nda import sample
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    out = []
    for k in range(n):
        t0 = pd.Timestamp("2018-01-01T00:00") + pd.Timedelta(days=k)
        t1 = t0 + pd.Timedelta(hours=8)
        p = folder / f"{sample.product('routine', 'jup', t0, t1)}_V12.cdf"
        if not p.is_file():
            sample.write_routine_cdf(p, rng, "jup", t0, t1, sweeps=28_700)
        out.append(p)
    t0 = pd.Timestamp("2018-02-01T00:00")
    p = folder / f"{sample.product('newroutine', 'jup', t0, t0 + pd.Timedelta(hours=8), 'orn')}_v1.1.fits"
    if not p.is_file():
        sample.write_newroutine_fits(p, rng, "jup", t0, t0 + pd.Timedelta(hours=8),
                                     sweeps=57_600)
    out.append(p)
    return out


def time_reader(files: list[Path], repeat: int = 3) -> None:
    from vespa_curation.services.nda.reader import read_nda
    print("reader, one core (best of %d):" % repeat)
    for p in files:
        size = p.stat().st_size
        drop_cache(p)
        before = io_counters()
        read_nda(p)
        after = io_counters()
        cold = after["read_bytes"] - before["read_bytes"]
        best, rchar = np.inf, 0
        for _ in range(repeat):
            before = io_counters()
            t0 = time.perf_counter()
            read_nda(p)
            best = min(best, time.perf_counter() - t0)
            rchar = io_counters()["rchar"] - before["rchar"]
        print(f"  {p.name[:60]:60s} {size / 1e6:7.1f} MB  {1 / best:6.1f} files/s  "
              f"read() {rchar / 1e3:7.1f} kB ({100 * rchar / size:.2f} %)  "
              f"from disk, cold {cold / 1e3:7.1f} kB ({100 * cold / size:.2f} %)")


def build_collection(real: list[Path], folder: Path, n: int) -> None:
    """``n`` product names (Jupiter and Sun nights from 1995), each a hard link to one
    of the real-size files of its kind."""
    from vespa_curation.services.nda import sample
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.cdf")) == n:
        return
    shutil.rmtree(folder, ignore_errors=True)
    cdf = [p for p in real if p.suffix == ".cdf"]
    day0 = pd.Timestamp("1995-01-01T00:00")
    for k in range(n):
        t0 = day0 + pd.Timedelta(days=k // 2)
        target = "jup" if k % 2 == 0 else "sun"
        t0 = t0 + (pd.Timedelta(hours=0) if target == "jup" else pd.Timedelta(hours=8))
        name = f"{sample.product('routine', target, t0, t0 + pd.Timedelta(hours=8))}_V12.cdf"
        d = folder / f"{t0:%Y}" / f"{t0:%m}"
        d.mkdir(parents=True, exist_ok=True)
        src = cdf[k % len(cdf)] if target == "jup" else _sun(real, folder)
        os.link(src, d / name)


def _sun(real: list[Path], folder: Path) -> Path:
    """One real-size Sun night beside the Jupiter ones (the name and content agree)."""
    from vespa_curation.services.nda import sample
    p = real[0].parent / "srn_nda_routine_sun_edr_201801010800_201801011600_V12.cdf"
    if not p.is_file():
        t0 = pd.Timestamp("2018-01-01T08:00")
        sample.write_routine_cdf(p, np.random.default_rng(2), "sun", t0,
                                 t0 + pd.Timedelta(hours=8), sweeps=28_700)
    return p


def harvest_collection(folder: Path, workers: int) -> None:
    from vespa_curation import export, harvest
    from vespa_curation.config import load_config
    work = OUT / "run"
    shutil.rmtree(work, ignore_errors=True)
    cfg = load_config("nda", overrides={"source": f"files:{folder}", "workers": workers,
                                        "dachs_inputs": str(work / "dachs"),
                                        "outputs": str(work / "runs"), "qa_gallery": 0})
    for run_id in ("night1", "night2"):
        d = work / "runs" / run_id / "nda"
        t0 = time.perf_counter()
        h = harvest.run(cfg, d)
        th = time.perf_counter() - t0
        t0 = time.perf_counter()
        e = export.run(cfg, d)
        te = time.perf_counter() - t0
        n = h["counts"]["source_records"]
        print(f"{run_id}: {n} files read, {h['counts']['accepted']} accepted in "
              f"{th:.1f} s ({n / th:.0f} files/s on {workers} workers); export "
              f"{e['exported']} rows in {te:.1f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--real", type=int, default=3, help="real-size Routine CDFs written")
    a = ap.parse_args(argv)
    from astropy.utils import iers
    iers.conf.auto_download = False
    real = write_real(OUT / "real", a.real)
    time_reader(real + [_sun(real, OUT)])
    build_collection(real, OUT / f"collection-{a.files}", a.files)
    harvest_collection(OUT / f"collection-{a.files}", a.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
