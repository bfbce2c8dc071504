"""The export stage alone, in process and with writer processes, on the rows of the
last ``bench_run.py`` run (``outputs/bench/run/runs/*/hfc1ar``): wall time, the time of
its two phases (from its progress lines: decisions/changes/links, then the VOTables),
the peak RSS of each process and of their sum, and whether both ways wrote the same
data files (sha256).

Usage::

    .venv/bin/python benchmarks/bench_run.py --rows 1150000     # makes the run folder
    .venv/bin/python benchmarks/bench_export.py [--workers 1 2]

Each export goes into a fresh import area under ``outputs/bench/export/``. A script
that prints figures, never a timed test.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "outputs" / "bench"
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_hfc1ar import PeakRSS  # noqa: E402


class Phases(logging.Handler):
    """The export's own progress lines: ``... in 12.3 s`` per phase."""

    def __init__(self):
        super().__init__()
        self.seconds = {}

    def emit(self, record):
        m = re.search(r"^(.*?): [\d ]+ (?:of [\d ]+ )?rows in (.+?) \(", record.getMessage())
        if m:
            self.seconds[m.group(1).split(" export ")[-1]] = _seconds(m.group(2))


def _seconds(text: str) -> float:
    """``4.2 s``, ``1 min 53 s``, ``2 h 05 min`` (:func:`vespa_curation.progress.duration`)
    in seconds."""
    scale = {"h": 3600, "min": 60, "s": 1}
    words = text.split()
    return sum(float(v) * scale[u] for v, u in zip(words[::2], words[1::2]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--one", action="store_true",
                    help="(internal) run the one export asked, in this process")
    args = ap.parse_args(argv)
    if not args.one:
        # each export in a fresh process: a process that exported before would be
        # larger, and the writers it forks would count its pages
        digests = []
        for w in args.workers:
            out = subprocess.run([sys.executable, __file__, "--one", "--workers", str(w)],
                                 capture_output=True, text=True)
            if out.returncode:
                sys.exit(out.stderr[-3000:])
            lines = out.stdout.strip().splitlines()
            print(lines[0], flush=True)
            digests.append(lines[-1])
        print("data files identical:", len(set(digests)) == 1)
        return
    from astropy.utils import iers
    iers.conf.auto_download = False
    from vespa_curation import export
    from vespa_curation.config import load_config

    runs = sorted((BENCH / "run" / "runs").glob("*/hfc1ar"))
    if not runs:
        sys.exit("no run folder: run benchmarks/bench_run.py first")
    run_dir = runs[-1]
    source = next(iter(BENCH.glob("hfc_bench*.sqlite")))
    phases = Phases()
    logging.getLogger().addHandler(phases)
    logging.getLogger().setLevel(logging.INFO)
    files = {}
    for w in args.workers:
        area = BENCH / "export" / f"workers{w}"
        shutil.rmtree(area, ignore_errors=True)
        cfg = load_config("hfc1ar", overrides={
            "source": f"sqlite:///{source}", "full": True, "workers": w,
            "dachs_inputs": str(area),
            "decisions": str(BENCH / "run" / "decisions-none.csv")})
        phases.seconds = {}
        with PeakRSS(interval=0.1) as mem:
            t0 = time.perf_counter()
            rep = export.run(cfg, run_dir)
            wall = time.perf_counter() - t0
        files[w] = {f: hashlib.sha256((area / "hfc1ar" / f).read_bytes()).hexdigest()
                    for f in rep["data_files"]}
        me = os.getpid()
        each = ", ".join(f"{'this process' if pid == me else f'writer {pid}'} "
                         f"{v / 2**30:.2f}" for pid, v in sorted(
                             mem.each.items(), key=lambda kv: kv[0] != me))
        print(f"workers={w}: export of {rep['exported']:,} rows in {rep['parts']} parts: "
              f"{wall:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in phases.seconds.items())}); "
              f"peak RSS summed {mem.peak / 2**30:.2f} GB ({each} GB)", flush=True)
    print(hashlib.sha256(repr(sorted(files[w].items())).encode()).hexdigest())


if __name__ == "__main__":
    main()
