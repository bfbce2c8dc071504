"""A battery of bad source records (issue 6): each is quarantined with its rule and
reason, every other record is exported, and the run report lists them.

The bad records are planted in a copy of the embedded HFC sample: some good regions are
spoiled in place, others are added on new images (one region per image, so an image-level
fault — NaN CDELT, an absurd date, undecodable text — touches only its own record).
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from vespa_curation import runfolder

from test_incremental import drop_ar_primary_key, hfc_sample, make_params, run_once, \
    writable_copy  # noqa: F401

#: planted record → the rule it must be quarantined under
EXPECTED = {
    "non_digit_chain": "chaincode.bad_digit",
    "wrong_length": "chaincode.length_mismatch",
    "start_off_image": "chaincode.start_off_image",
    "nan_cdelt": "geometry.bad_image",
    "missing_observation": "source.missing_observation",
    "duplicate_id_a": "source.duplicate_id",
    "duplicate_id_b": "source.duplicate_id",
    # the same ID_AR on another image, which the harvest maps in another chunk
    "duplicate_id_other_image": "source.duplicate_id",
    "time_end_before_start": "epn.minmax_order",
    "absurd_date": "source.bad_date",          # year 800
    "future_date": "source.bad_date",          # year 2900: not an observation yet
    "not_utf8": "epn.string",
    "huge_chain": None,            # any geometry rule, with a reason, in bounded time
}


def _new_image(con, obs: pd.DataFrame, ar: pd.DataFrame, template_ar: int, *,
               minutes: int, keep_id: bool = False, **obs_changes) -> int:
    """A new observation (a copy of the template region's image, ``minutes`` later,
    with ``obs_changes``) holding one copy of the template region (under a new ID_AR,
    or the template's own when ``keep_id``); returns its ID_AR."""
    reg = ar[ar["ID_AR"] == template_ar].iloc[0].copy()
    o = obs[obs["ID_OBSERVATIONS"] == reg["OBSERVATIONS_ID"]].iloc[0].copy()
    o["ID_OBSERVATIONS"] = int(obs["ID_OBSERVATIONS"].max()) + 1 + minutes
    for c in ("DATE_OBS", "DATE_END"):
        t = pd.to_datetime(o[c], errors="coerce")
        if pd.notna(t):
            o[c] = (t + pd.Timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    for k, v in obs_changes.items():
        o[k] = v
    reg["OBSERVATIONS_ID"] = o["ID_OBSERVATIONS"]
    if not keep_id:
        reg["ID_AR"] = int(ar["ID_AR"].max()) + 1 + minutes
    pd.DataFrame([o]).to_sql("OBSERVATIONS", con, if_exists="append", index=False)
    pd.DataFrame([reg]).to_sql("ACTIVEREGIONS", con, if_exists="append", index=False)
    return int(reg["ID_AR"])


def plant_bad_records(db: Path, good_ids: list[int]) -> dict[str, int]:
    """Plant the battery in the HFC SQLite ``db``; ``good_ids`` are regions a clean run
    accepts. Returns planted name → ID_AR."""
    con = sqlite3.connect(db)
    drop_ar_primary_key(con)
    obs = pd.read_sql_query("SELECT * FROM OBSERVATIONS", con)
    ar = pd.read_sql_query("SELECT * FROM ACTIVEREGIONS", con)
    g = iter(good_ids)
    out: dict[str, int] = {}

    def upd(name, sql, args=()):
        i = next(g)
        con.execute(sql + " WHERE ID_AR = ?", (*args, i))
        out[name] = i

    upd("non_digit_chain", "UPDATE ACTIVEREGIONS SET CC = substr(CC, 1, 5) || 'x' || "
        "substr(CC, 7)")
    upd("wrong_length", "UPDATE ACTIVEREGIONS SET CC_LENGTH = CC_LENGTH + 3")
    upd("start_off_image", "UPDATE ACTIVEREGIONS SET CC_X_PIX = 5000")
    # a second region carrying the ID of a good one (another place on the same image)
    dup = next(g)
    reg = ar[ar["ID_AR"] == dup].iloc[0].copy()
    reg["FEAT_X_PIX"] = int(reg["FEAT_X_PIX"]) + 7
    pd.DataFrame([reg]).to_sql("ACTIVEREGIONS", con, if_exists="append", index=False)
    out["duplicate_id_a"] = out["duplicate_id_b"] = dup
    out["duplicate_id_other_image"] = _new_image(con, obs, ar, next(g), minutes=18,
                                                 keep_id=True)
    # a huge chain: 400 000 digits, closed (back and forth along one row)
    i = next(g)
    huge = ("4" * 1000 + "0" * 1000) * 200
    con.execute("UPDATE ACTIVEREGIONS SET CC = ?, CC_LENGTH = ? WHERE ID_AR = ?",
                (huge, len(huge), i))
    out["huge_chain"] = i
    # image-level faults, each on a new image holding one copy of a good region
    t = next(g)
    out["nan_cdelt"] = _new_image(con, obs, ar, t, minutes=3, CDELT1=float("nan"),
                                  CDELT2=None)
    out["time_end_before_start"] = _new_image(con, obs, ar, t, minutes=6)
    row = obs[obs["ID_OBSERVATIONS"] == int(ar.loc[ar["ID_AR"] == t, "OBSERVATIONS_ID"]
                                            .iloc[0])].iloc[0]
    end = (pd.Timestamp(row["DATE_OBS"]) + pd.Timedelta(minutes=6) - pd.Timedelta(hours=1))
    con.execute("UPDATE OBSERVATIONS SET DATE_END = ? WHERE ID_OBSERVATIONS = ("
                "SELECT OBSERVATIONS_ID FROM ACTIVEREGIONS WHERE ID_AR = ?)",
                (end.strftime("%Y-%m-%dT%H:%M:%S.000"), out["time_end_before_start"]))
    out["absurd_date"] = _new_image(con, obs, ar, t, minutes=9)
    con.execute("UPDATE OBSERVATIONS SET DATE_OBS = '0800-06-01T00:00:00.000', "
                "DATE_END = '0800-06-01T00:00:30.000' WHERE ID_OBSERVATIONS = ("
                "SELECT OBSERVATIONS_ID FROM ACTIVEREGIONS WHERE ID_AR = ?)",
                (out["absurd_date"],))
    out["future_date"] = _new_image(con, obs, ar, t, minutes=15)
    con.execute("UPDATE OBSERVATIONS SET DATE_OBS = '2900-06-01T00:00:00.000', "
                "DATE_END = '2900-06-01T00:00:30.000' WHERE ID_OBSERVATIONS = ("
                "SELECT OBSERVATIONS_ID FROM ACTIVEREGIONS WHERE ID_AR = ?)",
                (out["future_date"],))
    out["not_utf8"] = _new_image(con, obs, ar, t, minutes=12)
    # text stored as TEXT but not UTF-8 (Latin-1 'é' = 0xE9), as a legacy database holds
    con.execute("UPDATE OBSERVATIONS SET FILENAME = CAST(X'6d64695fe92e66697473' AS TEXT) "
                "WHERE ID_OBSERVATIONS = (SELECT OBSERVATIONS_ID FROM ACTIVEREGIONS "
                "WHERE ID_AR = ?)", (out["not_utf8"],))
    # a region pointing at no observation
    reg = ar[ar["ID_AR"] == t].iloc[0].copy()
    reg["ID_AR"] = int(ar["ID_AR"].max()) + 100
    reg["OBSERVATIONS_ID"] = 999999
    pd.DataFrame([reg]).to_sql("ACTIVEREGIONS", con, if_exists="append", index=False)
    out["missing_observation"] = int(reg["ID_AR"])
    con.commit()
    con.close()
    return out


@pytest.fixture(scope="module")
def battery(hfc_sample, tmp_path_factory):
    base = tmp_path_factory.mktemp("bad")
    clean_db = writable_copy(hfc_sample, base / "clean.sqlite")
    pc = make_params(clean_db, base / "clean")
    hc, ec = run_once(pc, "20260101T000000Z")
    clean_rows = runfolder.read_rows(base / "clean/runs/20260101T000000Z/hfc1ar")
    clean_q = runfolder.read_quarantine(base / "clean/runs/20260101T000000Z/hfc1ar")
    good = sorted(int(i) for i in clean_rows["qa_source_id"])
    # spread the plants over the images (not all on the first one)
    picks = good[3::6][:8]
    bad_db = writable_copy(hfc_sample, base / "bad.sqlite")
    planted = plant_bad_records(bad_db, picks)
    # small chunks: the duplicate on another image is mapped in another chunk
    pb = make_params(bad_db, base / "bad", qa_gallery=0, chunk_size=10)
    hb, eb = run_once(pb, "20260101T000000Z")
    folder = base / "bad/runs/20260101T000000Z/hfc1ar"
    return dict(planted=planted, clean_rows=clean_rows, clean_q=clean_q, harvest=hb,
                export=eb, folder=folder, params=pb)


def test_each_bad_record_is_quarantined_with_its_rule(battery):
    q = runfolder.read_quarantine(battery["folder"])
    by_id = q.groupby("source_id")
    for name, rule in EXPECTED.items():
        sid = str(battery["planted"][name])
        assert sid in by_id.groups, f"{name} (ID_AR={sid}) was not quarantined"
        lines = by_id.get_group(sid)
        assert lines["reason"].str.len().min() > 10, f"{name}: no reason"
        if rule is not None:
            assert rule in set(lines["rule"]), \
                f"{name}: rules {sorted(set(lines['rule']))}, expected {rule}"
        # the reason names the record
        assert lines["reason"].str.contains(sid).any() or \
            lines["granule_uid"].astype(str).str.len().min() > 0
    # both records of the ID_AR that two images carry are refused, none kept at random
    sid = str(battery["planted"]["duplicate_id_other_image"])
    two = q[(q["source_id"] == sid) & (q["rule"] == "source.duplicate_id")]
    assert two["granule_uid"].nunique() == 2, two


def test_every_other_record_is_exported(battery):
    planted = {str(v) for v in battery["planted"].values()}
    exported = runfolder.read_rows(battery["folder"])
    clean_ids = set(battery["clean_rows"]["qa_source_id"])
    assert set(exported["qa_source_id"]) == clean_ids - planted
    assert battery["export"]["exported"] == len(exported)
    # the good rows are exactly the clean run's rows
    cols = [c for c in battery["clean_rows"].columns
            if not c.endswith("_date") and c in exported]
    a = battery["clean_rows"][~battery["clean_rows"]["qa_source_id"].isin(planted)]
    pd.testing.assert_frame_equal(
        a[cols].sort_values("granule_uid", ignore_index=True),
        exported[cols].sort_values("granule_uid", ignore_index=True), check_dtype=False)


def test_run_report_lists_them(battery):
    from vespa_curation.qa.report import build_report
    folder = battery["folder"]
    build_report(battery["params"], folder)
    report = json.loads((folder / "report.json").read_text())
    text = json.dumps(report)
    for name, rule in EXPECTED.items():
        if rule:
            assert rule in text, f"report.json does not list {rule} ({name})"
    html = (folder / "report.html").read_text(encoding="utf-8")
    for name, sid in battery["planted"].items():
        assert f"ID_AR={sid}" in html or str(sid) in html, f"report.html lacks {name}"
    h = battery["harvest"]
    n_bad = len({str(v) for v in battery["planted"].values()})
    clean_bad = battery["clean_q"]["source_id"].nunique()
    assert h["counts"]["quarantined_records"] == n_bad + clean_bad
