"""File collections (nda, expres): the embedded samples mapped, bad files quarantined
each with its rule, attribute/data disagreements flagged, versions, incremental runs,
and how little of each file is read."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vespa_curation import export, harvest, runfolder
from vespa_curation.config import load_config
from vespa_curation.services import get_service
from vespa_curation.services.nda import sample as nda_sample
from vespa_curation.services.nda.reader import read_nda


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("collections")
    for name in ("nda", "expres"):
        get_service(name).sample(out, 2005)
    return out


def config(name: str, folder: Path, tmp: Path, **over):
    return load_config(name, overrides={"source": f"files:{folder}", "workers": 1,
                                        "dachs_inputs": str(tmp / "dachs"),
                                        "outputs": str(tmp / "runs"), **over})


def run(cfg, tmp: Path, run_id: str):
    folder = tmp / "runs" / run_id / cfg.service
    h = harvest.run(cfg, folder)
    return h, folder, runfolder.read_rows(folder), runfolder.read_quarantine(folder)


def test_nda_sample(built, tmp_path):
    h, folder, rows, q = run(config("nda", built / "nda", tmp_path), tmp_path, "r1")
    rows = rows.set_index("granule_uid")
    assert len(rows) == 4 and h["counts"]["source_records"] == 5
    night = rows.loc["srn_nda_routine_jup_edr_201801010000_201801010800"]
    assert night["target_name"] == "Jupiter" and night["target_class"] == "planet"
    assert night["dataproduct_type"] == "ds"
    assert night["instrument_name"] == "NDA#RoutineJup"
    assert night["instrument_host_name"] == "Nancay Radio Observatory"   # the short form
    assert (night["spectral_range_min"], night["spectral_range_max"]) == (10e6, 40e6)
    assert night["time_min"] == pd.Timestamp("2018-01-01T00:00").to_julian_date()
    assert night["time_max"] == pd.Timestamp("2018-01-01T08:00").to_julian_date()
    assert night["time_sampling_step_min"] == pytest.approx(8 * 3600 / 47)
    assert night["access_url"].endswith("routine/2018/01/" + night["qa_path"].split("/")[-1])
    assert night["access_format"] == "application/x-cdf"
    assert night["thumbnail_url"].endswith(
        "T_srn_nda_routine_jup_edr_201801010000_201801010800.png")
    sun = rows.loc["srn_nda_routine_sun_edr_201801020800_201801021600"]
    assert (sun["target_name"], sun["target_class"], sun["spectral_range_max"]) == \
        ("Sun", "star", 80e6)
    fits_row = rows.loc["orn_nda_newroutine_jup_edr_201801030000_201801030800"]
    assert fits_row["instrument_name"] == "NDA#NewRoutine"
    assert fits_row["access_format"] == "application/fits"
    assert fits_row["spectral_range_min"] == pytest.approx(10.01e6)
    # the older version is reported, not published; the broken file is quarantined
    assert h["superseded"] == [
        "routine/2018/01/srn_nda_routine_jup_edr_201801010000_201801010800_V11.cdf"]
    assert list(q["rule"]) == ["source.bad_file"]
    assert "201801040000" in q["source_id"].iloc[0] and "not a readable CDF" in \
        q["reason"].iloc[0]


def test_attributes_disagreeing_with_the_data(built, tmp_path):
    _, _, rows, _ = run(config("nda", built / "nda", tmp_path), tmp_path, "r1")
    flagged = rows[rows["qa_attr_mismatch"].notna()]
    assert list(flagged["granule_uid"]) == ["srn_nda_routine_jup_edr_201801020000_201801020800"]
    assert flagged["qa_attr_mismatch"].iloc[0] == \
        "spectral_range_max: attribute 4e+08 Hz, data 4e+07 Hz"
    assert flagged["spectral_range_max"].iloc[0] == 40e6      # the data win
    _, _, ex, _ = run(config("expres", built / "expres", tmp_path), tmp_path, "r2")
    juno = ex.set_index("granule_uid").loc[
        "expres_juno_jupiter_io_jrm09_lossc-wid1deg_3kev_20180913"]
    assert "spectral_range_max: attribute 4.4e+08 Hz, data 4.4e+07 Hz" in \
        juno["qa_attr_mismatch"]
    assert juno["spectral_range_max"] == pytest.approx(44e6)


def test_expres_sample(built, tmp_path):
    cfg = config("expres", built / "expres", tmp_path)
    h, folder, rows, q = run(cfg, tmp_path, "r1")
    assert len(rows) == 2 and len(q) == 0
    r = rows.set_index("granule_uid").loc[
        "expres_juno_jupiter_io_jrm09_lossc-wid1deg_3kev_20180913"]
    assert (r["target_name"], r["target_class"]) == ("Jupiter#Io", "planet#satellite")
    assert (r["instrument_host_name"], r["instrument_name"]) == ("Juno", "ExPRES")
    assert (r["dataproduct_type"], r["processing_level"]) == ("ds", 5)
    assert r["spectral_range_min"] == pytest.approx(10e3)
    links = get_service("expres").links(rows, cfg)
    aux = links[(links["granule_uid"] == r.name) & (links["semantics"] == "#auxiliary")]
    assert aux["access_url"].iloc[0].endswith(
        "juno/2018/09/expres_juno_jupiter_io_jrm09_lossc-wid1deg_3kev_20180913_v01.json")
    assert "SRP_Source_Name" not in aux["description"].iloc[0]
    assert "Name=Io" in aux["description"].iloc[0]


def _battery(folder: Path, rng) -> dict[str, str]:
    """One file per way to be wrong, named as products; {rule: name}."""
    t0, t1 = pd.Timestamp("2019-03-01T00:00"), pd.Timestamp("2019-03-01T08:00")
    write = nda_sample.write_routine_cdf
    good = write(folder / f"{nda_sample.product('routine', 'jup', t0, t1)}_V12.cdf", rng,
                 "jup", t0, t1)
    out = {"ok": good.name}

    def name(day, target="jup"):
        a, b = pd.Timestamp(f"2019-03-{day}T00:00"), pd.Timestamp(f"2019-03-{day}T08:00")
        return f"{nda_sample.product('routine', target, a, b)}_V12.cdf", a, b
    n, a, b = name("02")
    (folder / n).write_bytes(good.read_bytes()[:2000])
    out["truncated"] = n
    n, a, b = name("03")
    (folder / n).write_text("SIMPLE  =                    T / not a CDF at all\n")
    out["not_a_cdf"] = n
    n, a, b = name("04")
    write(folder / n, rng, "jup", a, b, sweeps=1)
    _rewrite_epoch(folder / n, np.array([], dtype="datetime64[ns]"))
    out["source.no_time"] = n
    n, a, b = name("05")
    write(folder / n, rng, "jup", a, b)
    _rewrite_epoch(folder / n, pd.date_range(b, a, periods=nda_sample.SWEEPS).to_numpy())
    out["source.time_not_increasing"] = n
    n, a, b = name("06")
    _no_unit(folder / n, rng, a, b)
    out["source.no_unit"] = n
    n, a, b = name("07")                      # named Jupiter, holds the Sun
    write(folder / n, rng, "sun", a, b)
    out["source.wrong_product"] = n
    n, a, b = name("08")
    fits_name = n.replace("srn_nda_routine", "orn_nda_newroutine").replace("_V12.cdf",
                                                                         "_v1.1.fits")
    from astropy.io import fits
    fits.HDUList([fits.PrimaryHDU()]).writeto(folder / fits_name)
    out["fits_without_tables"] = fits_name
    n, a, b = name("09")
    os.symlink(folder / "nowhere.cdf", folder / n)
    out["dangling"] = n
    return out


def _rewrite_epoch(path: Path, times: np.ndarray) -> None:
    """Write the file again with another Epoch (same attributes and frequency axis)."""
    from vespa_curation.formats import cdf as C
    c = C.open_cdf(path)
    attrs = {k: v for k, v in C.global_attributes(c).items()}
    freq, unit = C.axis(c, "Frequency")
    C.write_cdf(path, attrs, [("Epoch", times, "CDF_TIME_TT2000", {"UNITS": "ns"}, True),
                              ("Frequency", freq.astype(np.float32), "CDF_FLOAT",
                               {"UNITS": unit}, False)])


def _no_unit(path: Path, rng, a, b) -> None:
    from vespa_curation.formats import cdf as C
    nda_sample.write_routine_cdf(path, rng, "jup", a, b)
    c = C.open_cdf(path)
    attrs = C.global_attributes(c)
    C.write_cdf(path, attrs, [
        ("Epoch", C.time_axis(c), "CDF_TIME_TT2000", {"UNITS": "ns"}, True),
        ("Frequency", C.axis(c, "Frequency")[0].astype(np.float32), "CDF_FLOAT", {}, False)])


def test_each_bad_file_is_quarantined_with_its_rule(tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    files = _battery(folder, np.random.default_rng(3))
    cfg = config("nda", folder, tmp_path)
    h, run_dir, rows, q = run(cfg, tmp_path, "r1")
    assert list(rows["qa_path"]) == [files["ok"]]
    by_file = dict(zip(q["source_id"], zip(q["rule"], q["reason"])))
    for key, name in files.items():
        if key == "ok":
            continue
        rule, reason = by_file[name]
        want = key if key.startswith("source.") else "source.bad_file"
        assert rule == want, (key, rule, reason)
        assert name in reason
    assert "read length" in by_file[files["truncated"]][1] or "CDF" in \
        by_file[files["truncated"]][1]
    assert "HDU" in by_file[files["fits_without_tables"]][1]
    assert "FileNotFoundError" in by_file[files["dangling"]][1]
    assert "the name says routine Jupiter, the file holds routine Sun" in \
        by_file[files["source.wrong_product"]][1]
    # the rest is exported
    assert export.run(cfg, run_dir)["exported"] == 1


def test_unreadable_file_is_quarantined(tmp_path):
    """A file the harvesting user may not read (chmod 000). Root reads every file, so
    under root the file is read by a forked child that has dropped to ``nobody``."""
    import json
    from vespa_curation.sources.files import _read_one
    folder = tmp_path / "archive"
    folder.mkdir()
    t0, t1 = pd.Timestamp("2019-04-01T00:00"), pd.Timestamp("2019-04-01T08:00")
    p = nda_sample.write_routine_cdf(
        folder / f"{nda_sample.product('routine', 'jup', t0, t1)}_V12.cdf",
        np.random.default_rng(4), "jup", t0, t1)
    p.chmod(0)
    if os.geteuid() != 0:
        fields = _read_one(read_nda, p)
    else:
        for d in [p.parent, *p.parent.parents]:
            d.chmod(d.stat().st_mode | 0o001)     # traversable by others
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                               # the child: nobody, reads, reports
            try:
                os.close(r)
                os.setgid(65534)
                os.setuid(65534)
                os.write(w, json.dumps(_read_one(read_nda, p), default=str).encode())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r) as fh:
            fields = json.loads(fh.read() or "{}")
        os.waitpid(pid, 0)
    assert "PermissionError" in fields.get("READ_ERROR", ""), fields


def test_incremental_runs_read_only_what_changed(built, tmp_path):
    folder = tmp_path / "archive"
    shutil.copytree(built / "nda", folder)
    cfg = config("nda", folder, tmp_path)
    h1, d1, rows1, q1 = run(cfg, tmp_path, "r1")
    assert export.run(cfg, d1)["exported"] == 4
    time.sleep(0.01)
    h2, d2, rows2, q2 = run(cfg, tmp_path, "r2")
    assert h2["counts"]["source_records"] == 1          # only the quarantined file again
    # read alone, it is refused for what it is, as among the others (not internal.error)
    assert q2[["source_id", "rule"]].values.tolist() == \
        q1[["source_id", "rule"]].values.tolist() and "internal.error" not in set(q2["rule"])
    e2 = export.run(cfg, d2)
    assert e2["exported"] == 0 and not e2["written"]
    # a new version of one product: read alone, replaces the published row
    old = next(folder.rglob("*201801020000*_V12.cdf"))
    t0, t1 = pd.Timestamp("2018-01-02T00:00"), pd.Timestamp("2018-01-02T08:00")
    time.sleep(1.1)
    nda_sample.write_routine_cdf(old.with_name(old.name.replace("_V12", "_V13")),
                                 np.random.default_rng(9), "jup", t0, t1)
    h3, d3, rows3, _ = run(cfg, tmp_path, "r3")
    assert list(rows3["granule_uid"]) == ["srn_nda_routine_jup_edr_201801020000_201801020800"]
    assert rows3["qa_version"].iloc[0] == "13" and rows3["qa_attr_mismatch"].isna().all()
    assert old.relative_to(folder).as_posix() in h3["superseded"]
    e3 = export.run(cfg, d3)
    assert (e3["changed"], e3["new"]) == (1, 0)
    # a published product whose file is gone is reported (not retracted: nda does not
    # declare it)
    next(folder.rglob("*sun_edr*.cdf")).unlink()
    h4, d4, _, _ = run(cfg, tmp_path, "r4")
    assert h4["missing"] == ["srn_nda_routine_sun_edr_201801020800_201801021600"]
    assert export.run(cfg, d4)["retracted"] == 0


def test_expres_run_with_nothing_new_exports_nothing(built, tmp_path):
    """The nightly run after a publication: no new file, no row; the export writes
    nothing and does not fail (the datalinks of no rows need no column)."""
    cfg = config("expres", built / "expres", tmp_path)
    h1, d1, rows1, _ = run(cfg, tmp_path, "r1")
    assert len(rows1) and export.run(cfg, d1)["written"]
    h2, d2, rows2, _ = run(cfg, tmp_path, "r2")
    assert h2["counts"]["source_records"] == 0 and len(rows2) == 0
    e2 = export.run(cfg, d2)
    assert e2["exported"] == 0 and not e2["written"]


def test_the_reader_reads_little(tmp_path):
    """A night of 4000 sweeps (12.8 MB): the reader's read() calls take under 2 % of
    the file (the Epoch and Frequency variables, attributes and descriptors)."""
    p = nda_sample.write_routine_cdf(tmp_path / "srn_nda_routine_jup_edr_big_V12.cdf",
                                     np.random.default_rng(1), "jup",
                                     pd.Timestamp("2018-01-01"),
                                     pd.Timestamp("2018-01-01T08:00"), sweeps=4000)

    def rchar():
        return int(Path("/proc/self/io").read_text().split()[1])
    before = rchar()
    fields = read_nda(p)
    used = rchar() - before
    assert fields["N_TIMES"] == 4000
    assert used < 0.02 * p.stat().st_size, (used, p.stat().st_size)


def test_a_service_declaring_it_retracts_products_whose_file_is_gone(built, tmp_path,
                                                                      monkeypatch):
    import dataclasses
    from vespa_curation import services
    svc = get_service("nda")
    monkeypatch.setitem(services._LOADED, "nda", dataclasses.replace(
        svc, source=dataclasses.replace(svc.source, retract_missing=True)))
    folder = tmp_path / "archive"
    shutil.copytree(built / "nda", folder)
    cfg = config("nda", folder, tmp_path)
    _, d1, _, _ = run(cfg, tmp_path, "r1")
    export.run(cfg, d1)
    next(folder.rglob("*sun_edr*.cdf")).unlink()
    h2, d2, _, _ = run(cfg, tmp_path, "r2")
    e2 = export.run(cfg, d2)
    assert e2["retracted"] == 1
    area = cfg.area
    assert "srn_nda_routine_sun_edr_201801020800_201801021600" in area.retracted_uids()
    assert "srn_nda_routine_sun_edr_201801020800_201801021600" not in area.published_uids()


def test_vespa_attributes_are_converted_to_the_columns_units():
    from vespa_curation.services.collections import attribute_value
    r = pd.DataFrame({"VESPA_SPECTRAL_RANGE_MIN": [20, 1e6, 5],
                      "VESPA_SPECTRAL_RANGE_MIN_UNIT": ["kHz", None, "m"],
                      "VESPA_TIME_SAMPLING_STEP": [2, 3, 4],
                      "VESPA_TIME_SAMPLING_STEP_UNIT": ["min", "s", None]})
    hz = attribute_value(r, "spectral_range_min")
    assert hz[:2].tolist() == [20e3, 1e6] and np.isnan(hz[2])   # metres are no frequency
    assert attribute_value(r, "time_sampling_step").tolist() == [120.0, 3.0, 4.0]
    assert np.isnan(attribute_value(r, "spectral_range_max")).all()


def test_an_attribute_start_time_outside_the_time_axis_is_a_finding(tmp_path):
    from vespa_curation.formats import cdf as C
    folder = tmp_path / "archive"
    folder.mkdir()
    t0, t1 = pd.Timestamp("2019-05-01T00:00"), pd.Timestamp("2019-05-01T08:00")
    p = nda_sample.write_routine_cdf(
        folder / f"{nda_sample.product('routine', 'jup', t0, t1)}_V12.cdf",
        np.random.default_rng(5), "jup", t0, t1)
    c = C.open_cdf(p)
    attrs = {**C.global_attributes(c), "PDS_Observation_start_time": "2019-04-30T20:00:00Z"}
    freq, unit = C.axis(c, "Frequency")
    C.write_cdf(p, attrs, [("Epoch", C.time_axis(c), "CDF_TIME_TT2000", {}, True),
                           ("Frequency", freq.astype(np.float32), "CDF_FLOAT",
                            {"UNITS": unit}, False)])
    _, _, rows, _ = run(config("nda", folder, tmp_path), tmp_path, "r1")
    assert rows["qa_attr_mismatch"].iloc[0].startswith("start time: attribute 2019-04-30 20:00")
    assert rows["time_min"].iloc[0] == t0.to_julian_date()          # the data win
