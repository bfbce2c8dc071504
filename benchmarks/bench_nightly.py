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
- with ``--dachs``: ``dachs imp`` of the night (only the new file is read; the RD's
  ignoreSources), separately — after a first full import of the 1.15 M rows into a
  DaCHS whose inputsDir is the benchmark's own folder (long; reported, not nightly).

Usage::

    .venv/bin/python benchmarks/bench_nightly.py [--workers 2] [--dachs] [--keep]

A script that prints figures, never a timed test.
"""
from __future__ import annotations

import argparse
import json
import os
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

    from vespa_curation import incremental, pipeline
    from vespa_curation.export import write_import_area
    from vespa_curation.params import load_params
    from vespa_curation.services import get_service
    svc = get_service("hfc1ar")
    con = sqlite3.connect(db)
    last = pd.Timestamp(con.execute("SELECT max(DATE_OBS) FROM OBSERVATIONS").fetchone()[0])
    con.close()
    params = load_params("hfc1ar", overrides={
        "source": f"sqlite:///{db}", "workers": workers, "dachs_inputs": str(inputs),
        "outputs": str(work / "baseline_runs"), "decisions": str(work / "none.csv")})
    t0 = time.perf_counter()
    run_dir = work / "baseline_runs" / "20291231T000000Z" / "hfc1ar"
    start = last.normalize() - pd.Timedelta(days=2)
    jd = start.to_julian_date()
    h = pipeline.harvest(params, run_dir, mark={"time": start, "time_jd": jd})
    real = pipeline.read_rows(run_dir)
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
    write_import_area(svc, rows, dachs_inputs=inputs, run_id="19960101T000000Z",
                      mark=None, granule_state=state)
    pipeline.export(params, run_dir)
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
    nb.cells = [cell, nbformat.v4.new_code_cell("import vespa_curation.pipeline")]
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
    from vespa_curation import incremental, pipeline
    from vespa_curation.params import load_params
    from vespa_curation.services import get_service

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

    params = load_params("hfc1ar", overrides={
        "source": f"sqlite:///{db}", "workers": args.workers, "dachs_inputs": str(inputs),
        "outputs": str(work / "runs"), "decisions": str(work / "decisions-none.csv")})
    svc = get_service("hfc1ar")
    results: dict = {"existing_rows": man["total_rows"], "new_regions": n_reg}

    def night(stamp: str) -> dict:
        run_dir = work / "runs" / stamp / "hfc1ar"
        t0 = time.perf_counter()
        mark = incremental.read_mark(svc, params)
        t1 = time.perf_counter()
        h = pipeline.harvest(params, run_dir, mark=mark)
        t2 = time.perf_counter()
        e = pipeline.export(params, run_dir)
        t3 = time.perf_counter()
        return {"mark_s": t1 - t0, "harvest_s": t2 - t1, "export_s": t3 - t2,
                "library_s": t3 - t0, "read": h["counts"]["source_records"],
                "accepted": h["counts"]["accepted"],
                "quarantined": h["counts"]["quarantined_records"],
                "exported": e["exported"], "written": e["written"], "run_dir": run_dir}

    r1 = night("20300101T010000Z")
    say(f"\nNIGHT (one new day on {man['total_rows']:,} rows), library work: "
        f"{r1['library_s']:.2f} s")
    say(f"  read mark {r1['mark_s']:.3f} s | harvest query + map + geometry + validate "
        f"{r1['harvest_s']:.2f} s ({r1['read']} source rows read, {r1['accepted']} "
        f"accepted, {r1['quarantined']} quarantined) | export {r1['export_s']:.2f} s "
        f"({r1['exported']} rows exported)")
    r2 = night("20300101T020000Z")
    say(f"SAME NIGHT AGAIN: library work {r2['library_s']:.2f} s; {r2['read']} rows read, "
        f"{r2['exported']} exported, import area rewritten: {r2['written']}")
    results.update(night=r1, again=r2)

    t0 = time.perf_counter()
    pipeline.qa(dict(params), r1["run_dir"])
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
        env = dachs_env(inputs, work)
        say("dachs: first full import of the baseline + the night (not nightly) ...")
        # import the baseline first: hide the night's file from this first import
        night_vot = area / "data" / f"{r1['run_dir'].parent.name}.vot"
        subprocess.run(["dachs", "drop", "hfc1ar/q"], env=env, capture_output=True,
                       stdin=subprocess.DEVNULL)
        hidden = work / "night.vot"
        os.replace(night_vot, hidden)
        try:
            t_full = timed_dachs(env, "imp", "hfc1ar/q")
        finally:
            os.replace(hidden, night_vot)
        say(f"  full import of {man['total_rows']:,} rows: {t_full:.0f} s")
        t_night = timed_dachs(env, "imp", "hfc1ar/q")
        t_none = timed_dachs(env, "imp", "hfc1ar/q")
        say(f"dachs imp of the night (only the new file read): {t_night:.1f} s; "
            f"with nothing new: {t_none:.1f} s")
        results.update(dachs_full_import_s=t_full, dachs_imp_night_s=t_night,
                       dachs_imp_nothing_s=t_none)
        subprocess.run(["dachs", "drop", "hfc1ar/q"], env=env, capture_output=True,
                       stdin=subprocess.DEVNULL)

    for k in ("night", "again"):
        results[k]["run_dir"] = str(results[k]["run_dir"])
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    say(f"\nfigures: {work / 'results.json'}")
    if not args.keep:
        db.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
