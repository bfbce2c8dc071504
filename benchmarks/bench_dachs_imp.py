"""How long `dachs imp` takes per 1000 epn_core rows, for each s_region encoding.

Writes synthetic hfc1ar-like rows (polygons of --vertices vertices, some across 0/360)
into a throw-away import area with the project's writer, then times a full
`dachs imp` (table dropped first) of a schema of its own (``vcbench``; dropped at the
end). Needs DaCHS and its PostgreSQL running; no server. Prints a table of figures.

    .venv/bin/python benchmarks/bench_dachs_imp.py --rows 200,1000 --vertices 24,120

pgSphere's polygon input and (in the Debian package) its GiST key cost about O(n^2) in
the vertex count — the pgSphere-only figures printed first (psql COPY, then CREATE
INDEX) show it — so the vertex count, not the VOTable encoding, sets the import time.
``time_import`` is also used by ``bench_hfc1ar.py --dachs-sample``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import make_hfc1ar_rows  # noqa: E402
from vespa_curation.area import ImportArea  # noqa: E402
from vespa_curation.export import RunExport, write_run  # noqa: E402
from vespa_curation.services import get_service  # noqa: E402

SCHEMA = "vcbench"
ENCODINGS = {"stcs/binary2": ("binary2", "stcs"), "stcs/tabledata": ("tabledata", "stcs"),
             "dali/binary2": ("binary2", "dali")}


def rows_for(n: int, vertices: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = make_hfc1ar_rows(1).iloc[[0]]
    rows = base.loc[base.index.repeat(n)].reset_index(drop=True)
    lon = rng.uniform(0, 360, n)
    lat = rng.uniform(-35, 35, n)
    a = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    r = 1.0 + 0.3 * np.sin(5 * a)                       # a wavy, non-convex outline
    lons = (lon[:, None] + 3 * r[None, :] * np.cos(a)[None, :]) % 360
    lats = lat[:, None] + 2 * r[None, :] * np.sin(a)[None, :]
    text = np.char.mod("%.4f", np.stack([lons, lats], axis=2).reshape(n, -1))
    rows["s_region"] = ["Polygon UNKNOWNFrame " + " ".join(t) for t in text]
    rows["granule_uid"] = [f"ar_bench_{i:08d}" for i in range(n)]
    rows["service_title"] = SCHEMA
    rows["c1min"], rows["c1max"] = (lon - 4) % 360, (lon + 4) % 360
    rows["c2min"], rows["c2max"] = lat - 3, lat + 3
    rows["time_min"] = rows["time_max"] = 2453462.5 + np.arange(n) / 1440
    return rows


def scratch_dachs(tmp: Path) -> tuple[Path, dict]:
    """An inputs folder under ``tmp`` and the environment that makes DaCHS use it."""
    inputs = tmp / "inputs"
    (inputs / "__system").mkdir(parents=True)
    rc = tmp / "gavo.rc"
    rc.write_text(f"[general]\ninputsDir: {inputs}\n")
    return inputs, dict(os.environ, GAVOSETTINGS=str(rc))


def dachs(env, *args) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(["dachs", *args], env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    if p.returncode and args[0] != "drop":
        raise SystemExit(f"dachs {' '.join(args)} failed:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return dt


def time_import(rows: pd.DataFrame, label: str, fmt: str = "tabledata",
                region: str = "stcs") -> float:
    """Seconds of a full ``dachs imp`` of ``rows`` (epn_core, hfc1ar-like) as the table of
    a throw-away schema (``vcbench``, dropped before and after) in a DaCHS whose
    inputsDir is a temporary folder."""
    service = dataclasses.replace(get_service("hfc1ar"), name=SCHEMA)
    rows = rows.copy()
    rows["service_title"] = SCHEMA
    with tempfile.TemporaryDirectory() as tmp:
        inputs, env = scratch_dachs(Path(tmp))
        write_run(ImportArea(inputs, service.name), service,
                  RunExport(run_id=label, rows=rows), fmt=fmt, region=region)
        dachs(env, "drop", f"{SCHEMA}/q")
        try:
            return dachs(env, "imp", f"{SCHEMA}/q")
        finally:
            dachs(env, "drop", f"{SCHEMA}/q")


def pgsphere_costs(vertex_counts, n: int = 300) -> None:
    """Per-polygon cost of pgSphere alone: spoly input (COPY) and the GiST index build,
    on a temp table (psql as the postgres superuser; needs root)."""
    import shutil as _sh
    if _sh.which("psql") is None or os.geteuid() != 0:
        print("pgSphere figures skipped (needs root and psql)")
        return
    print(f"\npgSphere alone, {n} polygons per vertex count (ms per polygon)")
    print(f"{'verts':>5s} {'spoly input':>12s} {'GiST build':>11s}")
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        for v in vertex_counts:
            rows = rows_for(n, v)
            f = Path(tmp) / f"p{v}.txt"
            with open(f, "w") as fh:
                for text in rows["s_region"]:
                    w = text.split()[2:]
                    fh.write("{" + ",".join(f"({w[i]}d,{w[i + 1]}d)"
                                            for i in range(0, len(w), 2)) + "}\n")
            f.chmod(0o644)
            sql = (f"\\timing on\nCREATE TEMP TABLE p (s spoly);\n"
                   f"\\copy p FROM '{f}'\nCREATE INDEX ON p USING gist (s);\n")
            out = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-q",
                                  "-d", "gavo"], input=sql, capture_output=True,
                                 text=True).stdout
            ms = [float(x) for x in re.findall(r"Time: ([0-9.]+) ms", out)]
            if len(ms) >= 3:
                print(f"{v:5d} {ms[1] / n:12.2f} {ms[2] / n:11.2f}", flush=True)
            else:
                print(f"{v:5d} failed: {out[-300:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="200,1000")
    ap.add_argument("--vertices", default="24,120",
                    help="vertex counts (the sample's hfc1ar polygons: median ~120)")
    ap.add_argument("--encodings", default=",".join(ENCODINGS))
    ap.add_argument("--pgsphere", default="4,8,16,24,48,120",
                    help="vertex counts for the pgSphere-only figures ('' to skip)")
    args = ap.parse_args()
    if args.pgsphere:
        pgsphere_costs([int(x) for x in args.pgsphere.split(",")])
        print()
    sizes = [int(x) for x in args.rows.split(",")]
    service = dataclasses.replace(get_service("hfc1ar"), name=SCHEMA)
    with tempfile.TemporaryDirectory() as tmp:
        inputs, env = scratch_dachs(Path(tmp))
        print(f"dachs imp of {SCHEMA}.epn_core (full import, table dropped first)")
        print(f"{'encoding':16s} {'verts':>5s} {'rows':>6s} {'write s':>8s} "
              f"{'file MB':>8s} {'imp s':>7s} {'s/1000 rows':>12s}", flush=True)
        results = {}
        for nv in [int(x) for x in args.vertices.split(",")]:
            for enc in args.encodings.split(","):
                fmt, region = ENCODINGS[enc]
                for n in sizes:
                    rows = rows_for(n, nv)
                    run = f"{enc.replace('/', '-')}-{nv}-{n}"
                    area = inputs / SCHEMA
                    if area.is_symlink():
                        area.unlink()
                    shutil.rmtree(inputs / f".{SCHEMA}.versions", ignore_errors=True)
                    t0 = time.perf_counter()
                    write_run(ImportArea(inputs, service.name), service,
                              RunExport(run_id=run, rows=rows), fmt=fmt, region=region)
                    t_write = time.perf_counter() - t0
                    size = sum(p.stat().st_size
                               for p in (area / "data").glob("*.vot")) / 1e6
                    dachs(env, "drop", f"{SCHEMA}/q")
                    t_imp = dachs(env, "imp", f"{SCHEMA}/q")
                    results[(nv, enc, n)] = t_imp
                    print(f"{enc:16s} {nv:5d} {n:6d} {t_write:8.2f} {size:8.2f} "
                          f"{t_imp:7.2f} {t_imp / n * 1000:12.3f}", flush=True)
                if len(sizes) > 1:
                    lo, hi = min(sizes), max(sizes)
                    marginal = (results[(nv, enc, hi)] - results[(nv, enc, lo)]) \
                        / (hi - lo) * 1000
                    print(f"{enc:16s} {nv:5d} marginal: {marginal:.2f} s per 1000 rows "
                          "(start-up excluded)", flush=True)
        dachs(env, "drop", f"{SCHEMA}/q")


if __name__ == "__main__":
    main()
