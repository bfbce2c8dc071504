#!/usr/bin/env python
"""A nightly hfc1ar run at the live service's scale: one new day on 1.15 million rows.

Starts from the state a full run leaves — the synthetic HFC database of
``benchmarks/make_bench_db.py`` (1.15 M regions) and the import area that
``benchmarks/bench_hfc1ar.py`` exports from it (``outputs/bench/dachs/hfc1ar``) — on
copies of its own (the database copied, the import area hard-linked), adds one day of new
images and regions to the source copy, and times:

- the library work of the nightly run (target: seconds): reading the mark, the harvest
  query from the mark (bound parameters) + map + geometry + validation of what it
  returns, the export (content hashes against the 1.15 M granules kept in the import
  area, new version of the area, manifest); then the same night again (zero rows);
- the QA report of the night (figures), separately;
- papermill's start-up per stage notebook (a kernel start and one cell), separately;
- the harvest query from the night's mark with and without hfc1ar's RUN_DATE condition
  (RUN_DATE has no index in HFC: that branch scans the table);
- with ``--dachs``: ``dachs imp`` of the night on top of the existing rows, separately.
  The existing rows are a **stand-in base**: every row of the import area before the
  night, imported with its polygon replaced by a small quadrilateral (0.2° a side) at
  the polygon's first vertex — same row count, same places, one GiST key per row like
  the real table — because a base import of 1.15 M real-sized polygons takes hours
  (pgSphere's GiST key for an spoly is quadratic in the vertex count). The night's file
  is then the export's real file, read alone (the RD's ignoreSources), real polygons and
  all. DaCHS runs with its own inputsDir in the work folder, holding the tests' DaCHS
  lock (the database is shared).

Usage::

    .venv/bin/python benchmarks/bench_nightly.py [--workers 2] [--dachs] [--keep]

At a small scale first (a database of 20 000 regions, a stand-in baseline of as many
rows)::

    .venv/bin/python benchmarks/make_bench_db.py --rows 20000 --out /tmp/hfc_small.sqlite
    .venv/bin/python benchmarks/bench_nightly.py --db /tmp/hfc_small.sqlite \
        --baseline /nonexistent --rows 20000 --work /tmp/nightly_small --dachs

A script that prints figures, never a timed test.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "outputs" / "bench"


def say(msg: str) -> None:
    print(msg, flush=True)


def copy_db(src: Path, dst: Path) -> float:
    t0 = time.perf_counter()
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return time.perf_counter() - t0


def link_area(baseline: Path, inputs: Path) -> Path:
    """``inputs/hfc1ar`` → a hard-linked copy of the baseline's current version (the
    area writer never rewrites a file in place, so sharing inodes is safe)."""
    target = Path(os.path.realpath(baseline))
    if not (target / "manifest.json").is_file():
        raise SystemExit(f"no import area at {baseline}: run benchmarks/bench_hfc1ar.py "
                         "first (it exports the 1.15 M rows there)")
    versions = inputs / ".hfc1ar.versions"
    if inputs.exists():
        shutil.rmtree(inputs)
    versions.mkdir(parents=True)
    dest = versions / target.name
    subprocess.run(["cp", "-al", str(target), str(dest)], check=True)
    os.symlink(os.path.relpath(dest, inputs), inputs / "hfc1ar")
    return inputs / "hfc1ar"


def synth_baseline(db: Path, inputs: Path, work: Path, total: int, workers: int) -> Path:
    """An import area standing for the full run when bench_hfc1ar.py's is not there:
    ``total`` granules in all — the source's last three days through the real pipeline
    (so the night's boundary rows are the real ones, and the mark is real), the rest
    synthetic rows (replicated fixture rows under unique granule_uids) written with the
    project's writer, content hashes and first-publication dates included."""
    import numpy as np
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import make_hfc1ar_rows

    from vespa_curation import export, harvest, incremental, runfolder
    from vespa_curation.area import ImportArea
    from vespa_curation.export import RunExport, write_run
    from vespa_curation.config import load_config
    from vespa_curation.services import get_service
    svc = get_service("hfc1ar")
    con = sqlite3.connect(db)
    last = pd.Timestamp(con.execute("SELECT max(DATE_OBS) FROM OBSERVATIONS").fetchone()[0])
    con.close()
    params = load_config("hfc1ar", overrides={
        "source": f"sqlite:///{db}", "workers": workers, "dachs_inputs": str(inputs),
        "outputs": str(work / "baseline_runs"), "decisions": str(work / "none.csv")})
    t0 = time.perf_counter()
    run_dir = work / "baseline_runs" / "20291231T000000Z" / "hfc1ar"
    start = last.normalize() - pd.Timedelta(days=2)
    jd = start.to_julian_date()
    h = harvest.run(params, run_dir, mark={"time": start, "time_jd": jd})
    real = runfolder.read_rows(run_dir)
    n = max(total - len(real), 0)
    tmpl = make_hfc1ar_rows(1)
    rows = tmpl.iloc[np.arange(n) % len(tmpl)].reset_index(drop=True)
    rows["granule_uid"] = [f"ar_19960101_000000_{i}_0" for i in range(n)]
    rows["time_min"] = rows["time_max"] = jd - 10 - np.arange(n) * (3500.0 / max(n, 1))
    rows = rows.drop(columns=[c for c in rows.columns if c.startswith("qa_")])
    now = pd.Timestamp("2029-12-31T00:00:00")
    for c in incremental.DATE_COLUMNS:
        rows[c] = now
    state = pd.DataFrame({"granule_uid": rows["granule_uid"],
                          "content_hash": incremental.content_hash(rows, svc.columns),
                          "creation_date": now.isoformat(), "release_date": now.isoformat(),
                          "modification_date": now.isoformat()})
    write_run(ImportArea(inputs, svc.name), svc,
              RunExport(run_id="19960101T000000Z", rows=rows, granule_state=state))
    export.run(params, run_dir)
    say(f"setup: synthetic baseline ({n:,} synthetic + {len(real):,} real rows of the last "
        f"3 days, {h['counts']['source_records']} read) in {time.perf_counter() - t0:.0f} s")
    return inputs / "hfc1ar"


def add_day(db: Path, days: int = 1) -> tuple[int, int]:
    """One more day of images (the last day's, ``days`` later) and their regions under
    new ids, with SQL on the big database. Returns (images, regions) added."""
    con = sqlite3.connect(db)
    try:
        last = pd.Timestamp(con.execute("SELECT max(DATE_OBS) FROM OBSERVATIONS"
                                        ).fetchone()[0])
        # the last complete day (the database may end part-way through a day), moved
        # after the last image
        day = last.normalize() - pd.Timedelta(days=1)
        days += 1
        obs = pd.read_sql_query(
            "SELECT * FROM OBSERVATIONS WHERE DATE_OBS >= ? AND DATE_OBS < ?", con,
            params=(day.strftime("%Y-%m-%d"), last.normalize().strftime("%Y-%m-%d")))
        ids = [int(i) for i in obs["ID_OBSERVATIONS"]]
        qmarks = ",".join("?" * len(ids))
        ar = pd.read_sql_query(
            f"SELECT * FROM ACTIVEREGIONS WHERE OBSERVATIONS_ID IN ({qmarks})", con,
            params=ids)
        max_obs = con.execute("SELECT max(ID_OBSERVATIONS) FROM OBSERVATIONS").fetchone()[0]
        max_ar = con.execute("SELECT max(ID_AR) FROM ACTIVEREGIONS").fetchone()[0]
        id_map = {o: max_obs + 1 + k for k, o in enumerate(ids)}
        obs["ID_OBSERVATIONS"] = obs["ID_OBSERVATIONS"].map(id_map)
        for c in ("DATE_OBS", "DATE_END"):
            v = pd.to_datetime(obs[c], errors="coerce") + pd.Timedelta(days=days)
            obs[c] = v.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3].where(v.notna(), None)
        if "FILENAME" in obs:
            obs["FILENAME"] = obs["FILENAME"].astype(str) + f".n{days}"
        ar["OBSERVATIONS_ID"] = ar["OBSERVATIONS_ID"].map(id_map)
        ar["ID_AR"] = range(max_ar + 1, max_ar + 1 + len(ar))
        ar["RUN_DATE"] = time.strftime("%Y-%m-%dT%H:%M:%S.000", time.gmtime())
        obs.to_sql("OBSERVATIONS", con, if_exists="append", index=False)
        ar.to_sql("ACTIVEREGIONS", con, if_exists="append", index=False)
        con.commit()
        return len(obs), len(ar)
    finally:
        con.close()


def papermill_startup(n: int = 3) -> list[float]:
    """Seconds papermill takes to run a one-cell parameterized notebook (kernel start,
    injection, one cell), ``n`` times — the fixed cost of each stage notebook."""
    import nbformat
    import papermill as pm

    from vespa_curation.runs import kernel_name
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel_name(), "language": "python",
                                 "display_name": "Python 3"}
    nb.metadata["language_info"] = {"name": "python"}
    cell = nbformat.v4.new_code_cell("service = 'hfc1ar'")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("import vespa_curation.harvest")]
    out = []
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "in.ipynb"
        nbformat.write(nb, src)
        for k in range(n):
            t0 = time.perf_counter()
            pm.execute_notebook(str(src), str(Path(d) / f"out{k}.ipynb"),
                                parameters={"service": "hfc1ar"}, kernel_name=kernel_name(),
                                progress_bar=False)
            out.append(time.perf_counter() - t0)
    return out


#: Side (degrees) of the stand-in base's quadrilaterals.
QUAD_DEG = 0.2
_POLYGON = re.compile(rb"<TD>Polygon (\S+) (-?[0-9.eE+-]+) (-?[0-9.eE+-]+)[^<]*</TD>")


def _quad(m: re.Match) -> bytes:
    lon, lat = float(m.group(2)), min(max(float(m.group(3)), -89.5), 89.5 - QUAD_DEG)
    pts = [(lon, lat), (lon + QUAD_DEG, lat), (lon + QUAD_DEG, lat + QUAD_DEG),
           (lon, lat + QUAD_DEG)]
    return (b"<TD>Polygon " + m.group(1) + b" "
            + " ".join(f"{x % 360:.6f} {y:.6f}" for x, y in pts).encode() + b"</TD>")


def quad_votable(src: Path, dst: Path) -> tuple[int, int]:
    """A copy of an epn_core VOTable (TABLEDATA, one row a line, as the export writes
    it) with every s_region polygon replaced by a :data:`QUAD_DEG` quadrilateral at its
    first vertex. Returns (rows, polygons replaced)."""
    rows = quads = 0
    with open(src, "rb") as fh:
        binary = b"<BINARY" in fh.read(200000)
    proc = None
    if binary:   # an older export's BINARY2 file: STILTS streams it as TABLEDATA
        proc = subprocess.Popen(["stilts", "tcopy", f"in={src}", "ifmt=votable",
                                 "ofmt=votable-tabledata", "out=-"],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        fi = proc.stdout
    else:
        fi = open(src, "rb")
    try:
        with open(dst, "wb") as fo:
            for line in fi:
                rows += line.count(b"<TR")
                if b"Polygon" in line:
                    line, n = _POLYGON.subn(_quad, line)
                    quads += n
                fo.write(line)
    finally:
        fi.close()
        if proc is not None and proc.wait():
            raise SystemExit(f"stilts could not read {src}")
    return rows, quads


@contextlib.contextmanager
def dachs_lock(timeout: float = 7200):
    """The tests' DaCHS lock (conftest.py): DaCHS's database is shared, one user at a
    time."""
    import fcntl
    with open(Path(tempfile.gettempdir()) / "vespa-curation-dachs.lock", "a+") as fh:
        end = time.time() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.time() > end:
                    raise SystemExit("another session holds the DaCHS lock for too long")
                time.sleep(5)
        yield


def served_count(env) -> int:
    p = subprocess.run(["dachs", "adql", "SELECT COUNT(*) AS n FROM hfc1ar.epn_core"],
                       env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if p.returncode:
        raise SystemExit(f"counting hfc1ar.epn_core failed:\n{p.stdout[-1000:]}"
                         f"{p.stderr[-1000:]}")
    import io
    from astropy.table import Table
    return int(Table.read(io.BytesIO(p.stdout.encode()), format="votable")["n"][0])


def imported_sources() -> dict[str, str]:
    """DaCHS's list of imported files of hfc1ar (file → when), read as the postgres
    superuser (the table is not in TAP)."""
    cmd = ["psql", "-X", "-q", "-t", "-A", "-d", "gavo", "-c",
           "SELECT source, imported FROM hfc1ar.imported_sources"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if p.returncode:
        raise SystemExit(f"reading hfc1ar.imported_sources failed: {p.stderr[-500:]}")
    return dict(ln.split("|", 1) for ln in p.stdout.splitlines() if ln.strip())


def mark_query_times(db: Path, mark: dict, repeat: int = 3) -> dict:
    """Seconds of the nightly harvest query (all rows fetched) from ``mark``, with and
    without the RUN_DATE condition (best of ``repeat``), and the rows it returns."""
    from vespa_curation.services.hfc1ar import SOURCE
    from vespa_curation.sources import open_source
    src = open_source(f"sqlite:///{db}")
    out = {}
    try:
        for name, m in (("with_run_date", mark),
                        ("without_run_date", {k: v for k, v in mark.items()
                                              if k != "run_date"})):
            sql, args = SOURCE.query(src, m)
            ts = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                n = sum(len(c) for c in src.query(sql, args, chunksize=20000))
                ts.append(time.perf_counter() - t0)
            out[name] = {"s": min(ts), "rows": n}
    finally:
        if hasattr(src, "close"):
            src.close()
    return out


def dachs_env(inputs: Path, work: Path) -> dict:
    rc = work / "gavo.rc"
    rc.write_text(f"[general]\ninputsDir: {inputs}\n", encoding="utf-8")
    env = dict(os.environ, GAVOSETTINGS=str(rc), PYTHONUNBUFFERED="1")
    env.pop("GAVO_INPUTSDIR", None)
    return env


def timed_dachs(env, *args) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(["dachs", *args], env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    if p.returncode:
        raise SystemExit(f"dachs {' '.join(args)} failed:\n{p.stdout[-2000:]}\n"
                         f"{p.stderr[-2000:]}")
    return dt


def dachs_night(area: Path, work: Path, night: dict) -> dict:
    """``dachs imp`` of the night's real file on top of a stand-in base (quadrilaterals,
    see the module docstring) of every row the area held before the night."""
    night_rel = f"data/{night['run_dir'].parent.name}.vot"
    inputs = work / "dachs_base"
    base = inputs / "hfc1ar"
    if inputs.exists():
        shutil.rmtree(inputs)
    (base / "data").mkdir(parents=True)
    (inputs / "__system").mkdir()
    shutil.copyfile(area / "q.rd", base / "q.rd")
    t0 = time.perf_counter()
    n_base = n_quads = 0
    # the files holding the area's current rows (an earlier file whose granules were
    # all exported again since holds none: its rows would only be replaced)
    runs = set(pd.read_parquet(area / "state" / "granules.parquet",
                               columns=["run_id"])["run_id"])
    for f in sorted((area / "data").glob("*.vot")):
        if f"data/{f.name}" == night_rel or f.stem.split("-")[0] not in runs:
            continue
        r, q = quad_votable(f, base / "data" / f.name)
        n_base += r
        n_quads += q
    t_quads = time.perf_counter() - t0
    env = dachs_env(inputs, work)
    out: dict = {"base_rows": n_base, "base_quads": n_quads, "quad_deg": QUAD_DEG,
                 "night_rows": night["exported"]}
    say(f"\nDACHS (own inputsDir {inputs}; waiting for the DaCHS lock if a test session "
        "holds it)")
    with dachs_lock():
        subprocess.run(["dachs", "drop", "hfc1ar/q"], env=env, capture_output=True,
                       stdin=subprocess.DEVNULL)
        try:
            say(f"  stand-in base: {n_base:,} rows of the area before the night, "
                f"{n_quads:,} polygons replaced by {QUAD_DEG}° quadrilaterals at their "
                f"first vertex (NOT the real polygons: a base import of real-sized "
                f"polygons takes hours), written in {t_quads:.0f} s")
            t_base = timed_dachs(env, "imp", "hfc1ar/q")
            served_base = served_count(env)
            say(f"  base import (dachs imp, quadrilaterals; not nightly): {t_base:.0f} s, "
                f"{served_base:,} rows served")
            before = imported_sources()
            os.link(area / night_rel, base / night_rel)
            t_night = timed_dachs(env, "imp", "hfc1ar/q")
            after = imported_sources()
            served_night = served_count(env)
            read = sorted(set(after) - set(before))
            reread = sorted(k for k in before if after.get(k) != before[k])
            say(f"  NIGHTLY dachs imp of the night's real file ({night['exported']} rows, "
                f"real polygons) on {served_base:,} rows: {t_night:.1f} s; files read: "
                f"{', '.join(read) or 'none'}; earlier files read again: "
                f"{len(reread)}; rows served {served_night:,}")
            t_none = timed_dachs(env, "imp", "hfc1ar/q")
            say(f"  dachs imp with nothing new: {t_none:.1f} s")
            if reread or read != [f"hfc1ar/{night_rel}"]:
                raise SystemExit("the nightly import did not read exactly the new file")
            out.update(quads_write_s=t_quads, base_import_s=t_base,
                       served_base=served_base, imp_night_s=t_night,
                       imp_nothing_s=t_none, served_after_night=served_night,
                       files_read=read)
        finally:
            subprocess.run(["dachs", "drop", "hfc1ar/q"], env=env, capture_output=True,
                           stdin=subprocess.DEVNULL)
    shutil.rmtree(inputs)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default=str(BENCH / "hfc_bench.sqlite"))
    ap.add_argument("--baseline", default=str(BENCH / "dachs" / "hfc1ar"),
                    help="import area of the full run (bench_hfc1ar.py)")
    ap.add_argument("--work", default=str(BENCH / "nightly"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rows", type=int, default=1_150_000,
                    help="granules of the stand-in baseline (when no full-run area)")
    ap.add_argument("--dachs", action="store_true", help="also time dachs imp")
    ap.add_argument("--no-papermill", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)

    from astropy.utils import iers
    iers.conf.auto_download = False
    from vespa_curation import export, harvest, incremental, qa
    from vespa_curation.config import load_config

    work = Path(args.work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    db = work / "hfc_nightly.sqlite"
    inputs = work / "dachs"
    say(f"setup: copying {args.db} ...")
    t_copy = copy_db(Path(args.db), db)
    if (Path(args.baseline) / "manifest.json").is_file():
        area = link_area(Path(args.baseline), inputs)
    else:
        say(f"setup: no full-run import area at {args.baseline} (bench_hfc1ar.py): "
            "building a stand-in")
        area = synth_baseline(db, inputs, work, args.rows, args.workers)
    man = json.loads((area / "manifest.json").read_text())
    say(f"setup: database copied in {t_copy:.1f} s; import area with "
        f"{man['total_rows']:,} rows linked")
    t0 = time.perf_counter()
    n_img, n_reg = add_day(db)
    say(f"setup: one new day added to the source: {n_img} images, {n_reg} regions "
        f"({time.perf_counter() - t0:.1f} s)")

    params = load_config("hfc1ar", overrides={
        "source": f"sqlite:///{db}", "workers": args.workers, "dachs_inputs": str(inputs),
        "outputs": str(work / "runs"), "decisions": str(work / "decisions-none.csv")})
    results: dict = {"existing_rows": man["total_rows"], "new_regions": n_reg}

    def night(stamp: str) -> dict:
        run_dir = work / "runs" / stamp / "hfc1ar"
        t0 = time.perf_counter()
        mark = incremental.read_mark(params)
        t1 = time.perf_counter()
        h = harvest.run(params, run_dir, mark=mark)
        t2 = time.perf_counter()
        e = export.run(params, run_dir)
        t3 = time.perf_counter()
        return {"mark_s": t1 - t0, "harvest_s": t2 - t1, "export_s": t3 - t2,
                "library_s": t3 - t0, "read": h["counts"]["source_records"],
                "accepted": h["counts"]["accepted"],
                "quarantined": h["counts"]["quarantined_records"],
                "exported": e["exported"], "written": e["written"], "run_dir": run_dir,
                "mark": mark}

    r1 = night("20300101T010000Z")
    say(f"\nNIGHT (one new day on {man['total_rows']:,} rows), library work: "
        f"{r1['library_s']:.2f} s")
    say(f"  read mark {r1['mark_s']:.3f} s | harvest query + map + geometry + validate "
        f"{r1['harvest_s']:.2f} s ({r1['read']} source rows read, {r1['accepted']} "
        f"accepted, {r1['quarantined']} quarantined) | export {r1['export_s']:.2f} s "
        f"({r1['exported']} rows exported)")
    mq = mark_query_times(db, r1["mark"])
    say("  harvest query from the night's mark (all rows fetched, best of 3): "
        f"{mq['with_run_date']['s']:.2f} s with hfc1ar's RUN_DATE condition (no index: "
        f"a scan), {mq['without_run_date']['s']:.3f} s without "
        f"({mq['with_run_date']['rows']} / {mq['without_run_date']['rows']} rows)")
    results["mark_query"] = mq
    r2 = night("20300101T020000Z")
    say(f"SAME NIGHT AGAIN: library work {r2['library_s']:.2f} s; {r2['read']} rows read, "
        f"{r2['exported']} exported, import area rewritten: {r2['written']}")
    results.update(night=r1, again=r2)

    t0 = time.perf_counter()
    qa.run(params, r1["run_dir"])
    t_qa = time.perf_counter() - t0
    say(f"QA report of the night (figures, report.html): {t_qa:.1f} s")
    results["qa_s"] = t_qa

    if not args.no_papermill:
        pm_t = papermill_startup(3)
        say("papermill start-up per stage notebook: "
            + ", ".join(f"{t:.1f}" for t in pm_t) + f" s (× 3 stages ≈ {3 * min(pm_t):.0f}"
            f"–{3 * max(pm_t):.0f} s a night)")
        results["papermill_startup_s"] = pm_t

    if args.dachs:
        if shutil.which("dachs") is None:
            raise SystemExit("--dachs: DaCHS is not installed")
        results["dachs"] = dachs_night(area, work, r1)

    for k in ("night", "again"):
        results[k]["run_dir"] = str(results[k]["run_dir"])
        results[k]["mark"] = json.loads(json.dumps(results[k]["mark"], default=str))
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    say(f"\nfigures: {work / 'results.json'}")
    if not args.keep:
        db.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
