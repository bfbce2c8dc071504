"""Failure safety of the nightly update (issue 6).

A night's run is killed (SIGKILL, no clean-up) at several points — during the harvest,
while the export writes its files, just before and just after the import area's swap,
and during ``dachs imp`` — and after each kill the previous export and its mark must be
intact (or, past the swap, the new export complete), the next run must complete, and in
the end the DaCHS table must equal the one a clean full run over the same source gives
(compared through the real DaCHS database). Running the same night twice changes nothing.

The stages run in a child process (``pipeline.harvest`` / ``pipeline.export``, the
functions the notebooks call) in which one library function is wrapped to SIGKILL the
process when it is reached; ``dachs imp`` is killed from outside when its log shows it
is importing.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import verify
from test_incremental import (add_day, area_rows, dachs_params, execute, fresh_area,  # noqa: F401
                              hfc_sample, imported_sources, run_once, served,
                              writable_copy)

pytestmark = [pytest.mark.dachs, pytest.mark.slow]

#: Runs one stage in a child process; ``kill`` names where it SIGKILLs itself.
DRIVER = r"""
import json, os, signal, sys
from vespa_curation import runfolder
from vespa_curation import area, export, harvest
from vespa_curation.export import writer
stage, params, folder, kill = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]

def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)

def after(owner, name):
    orig = getattr(owner, name)
    def wrapped(*a, **k):
        out = orig(*a, **k)
        die()
        return out
    setattr(owner, name, wrapped)

if kill == "harvest_first_chunk":      # the first chunk's rows are being written
    after(runfolder.ParquetStream, "write")
elif kill == "export_data_written":    # the new version's data file is written
    after(writer, "write_epn_votable")
elif kill == "export_before_swap":     # the new version is complete, not yet current
    setattr(area.ImportArea, "_swap", die)
elif kill == "export_after_swap":      # the new version is current, old not cleaned
    after(area.ImportArea, "_swap")
{"harvest": harvest, "export": export}[stage].run(params, folder)
"""


def stage(name: str, params: dict, folder: Path, kill: str = "none") -> int:
    folder.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([sys.executable, "-c", DRIVER, name, json.dumps(dict(params)),
                        str(folder), kill], capture_output=True, text=True, timeout=900,
                       stdin=subprocess.DEVNULL)
    if kill == "none":
        assert p.returncode == 0, p.stderr[-3000:]
    return p.returncode


def snapshot(params: dict) -> dict:
    """The import area's manifest bytes, its mark and whether it verifies."""
    area = Path(params["dachs_inputs"]) / "hfc1ar"
    man = (area / "manifest.json").read_bytes()
    return {"manifest": man, "mark": json.loads(man)["mark"], "bad": verify(area)}


def imp_killed_at(dachs, pattern: str) -> str:
    """Run ``dachs imp hfc1ar/q`` and SIGKILL it when a log line contains ``pattern``;
    returns the log read so far."""
    env = dict(dachs.env, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(["dachs", "imp", "hfc1ar/q"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if pattern in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=300)
    proc.stdout.close()
    return "".join(seen)


def test_killed_anywhere_then_next_run_equals_clean_full_run(dachs, hfc_sample, tmp_path,
                                                              monkeypatch):
    monkeypatch.setenv("GAVOSETTINGS", dachs.env["GAVOSETTINGS"])
    fresh_area(dachs)
    db = writable_copy(hfc_sample, tmp_path / "src.sqlite")
    p = dachs_params(dachs, db, tmp_path)
    runs = Path(p["outputs"])

    # night 1: a clean run, imported
    run_once(p, "20260101T000000Z")
    dachs.run("imp", "hfc1ar/q")
    night1 = served(dachs)
    good = snapshot(p)
    assert not good["bad"]

    # the source changes: a new day, and an old region re-processed
    add_day(db)
    execute(db, "UPDATE ACTIVEREGIONS SET HELIO_AR_NUMBER = 12399, "
                "RUN_DATE = '2026-02-01T00:00:00.000' WHERE ID_AR = 5")

    # night 2, killed during the harvest: nothing of the import area changes
    assert stage("harvest", p, runs / "20260102T000000Z/hfc1ar",
                 "harvest_first_chunk") == -signal.SIGKILL
    assert snapshot(p) == good
    # killed while the export writes, and just before the swap
    for i, point in enumerate(("export_data_written", "export_before_swap")):
        folder = runs / f"2026010{3 + i}T000000Z/hfc1ar"
        stage("harvest", p, folder)
        assert stage("export", p, folder, point) == -signal.SIGKILL, point
        assert snapshot(p) == good, point
    # killed just after the swap: the new export is complete and current
    folder = runs / "20260105T000000Z/hfc1ar"
    stage("harvest", p, folder)
    assert stage("export", p, folder, "export_after_swap") == -signal.SIGKILL
    after_swap = snapshot(p)
    assert not after_swap["bad"]
    assert after_swap["mark"]["time_jd"] > good["mark"]["time_jd"]
    man = json.loads(after_swap["manifest"])
    assert man["runs"][-1]["run_id"] == "20260105T000000Z"

    # dachs imp killed while it imports the new file: rolled back, nothing recorded
    log = imp_killed_at(dachs, "Starting")
    assert "Starting" in log
    done = imported_sources(dachs)
    now = served(dachs)
    if "hfc1ar/data/20260105T000000Z.vot" in done:     # the kill came after the commit
        assert len(now) > len(night1)
    else:
        pd.testing.assert_frame_equal(now, night1)
    assert snapshot(p) == after_swap                    # imp never touches the area
    # ... and killed between the rows and the retractions
    imp_killed_at(dachs, "#retract")
    # the next night's run completes (a run of the same night again: nothing new)
    h, e = run_once(p, "20260106T000000Z")
    assert e["exported"] == 0 and e["written"] is False
    assert snapshot(p) == after_swap
    dachs.run("imp", "hfc1ar/q")
    incremental_table = served(dachs)
    assert len(incremental_table) > len(night1)
    assert "HFC AR 12399" in set(incremental_table["feature_name"].dropna())
    # the same night twice changes nothing, in the area or in DaCHS
    h, e = run_once(p, "20260107T000000Z")
    assert e["exported"] == 0 and snapshot(p) == after_swap
    out = dachs.run("imp", "hfc1ar/q")
    assert "Starting" not in out.stdout + out.stderr          # no file read again
    pd.testing.assert_frame_equal(served(dachs), incremental_table)

    # a clean full run over the same source, from nothing
    fresh_area(dachs)
    clean = dict(p, outputs=str(tmp_path / "clean_runs"))
    run_once(clean, "20260201T000000Z")
    dachs.run("imp", "hfc1ar/q")
    pd.testing.assert_frame_equal(incremental_table, served(dachs))
