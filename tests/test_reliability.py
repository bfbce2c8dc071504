"""Reliability (issue 16): one bad record never stops a run, a future date never poisons
the incremental mark, a killed run leaves no process and no scratch behind, secrets and
odd characters in parameters and paths are handled before any work.

Bad values are planted in copies of the embedded samples (the HFC database as
tests/test_bad_records.py plants its battery, the nrh NDJSON dump line by line) and run
through the stage functions the notebooks call; every value of every field of every
service's sample is also spoiled one at a time and mapped (:func:`harvest.map_validate`).
"""
from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vespa_curation import export, harvest, incremental, runfolder
from vespa_curation.config import load_config
from vespa_curation.services import get_service
from vespa_curation.sources import open_source
from vespa_curation.times import utc_now

from conftest import fresh_schema
from test_bad_records import _new_image
from test_incremental import drop_ar_primary_key, hfc_sample, make_params, run_once, \
    writable_copy  # noqa: F401


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from vespa_curation.samples import build_samples
    return build_samples(tmp_path_factory.mktemp("samples"))


def text_of(v) -> str:
    """A source id as quarantine.csv names it (bytes decoded)."""
    return bytes(v).decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _lines_of(q: pd.DataFrame, sid) -> pd.DataFrame:
    return q[q["source_id"].astype(str) == str(sid)]


# -- class 1: one bad record never stops a run --------------------------------------------

#: planted HFC record → (rule, words its reason must hold)
HFC_PLANTS = {
    "feat_x_huge": ("source.bad_value", ["FEAT_X_PIX", "1e+300"]),
    "feat_y_inf": ("source.bad_value", ["FEAT_Y_PIX", "inf"]),
    "area_text": ("source.bad_value", ["FEAT_AREA_PIX", "'many'"]),
    "qa_field_text": ("source.bad_value", ["FEAT_CARR_LONG_DEG", "'east'"]),
    "ar_number_huge": ("source.bad_value", ["HELIO_AR_NUMBER", "1e+300"]),
    "chain_blob": ("source.bad_value", ["CC", "bytes"]),
    "run_date_text": ("source.bad_date", ["RUN_DATE", "'last tuesday'"]),
    "id_text": ("source.bad_value", ["ID_AR", "'AR-7'"]),
    "exp_time_text": ("source.bad_value", ["EXP_TIME", "'long'"]),
    "naxis_huge": ("source.bad_value", ["NAXIS1", "1e+300"]),
    "unit_unknown": ("source.bad_value", ["WAVEUNIT", "'furlong'"]),
}


def plant_bad_values(db: Path, good_ids: list[int]) -> dict[str, object]:
    """One bad value per planted region (a region of its own image for an image-level
    field); returns planted name → its ID_AR (and ``id_text_was``, the ID_AR that
    became 'AR-7')."""
    con = sqlite3.connect(db)
    drop_ar_primary_key(con)
    obs = pd.read_sql_query("SELECT * FROM OBSERVATIONS", con)
    ar = pd.read_sql_query("SELECT * FROM ACTIVEREGIONS", con)
    g = iter(good_ids)
    out: dict[str, object] = {}
    for name, sql in (("feat_x_huge", "FEAT_X_PIX = 1e300"),
                      ("feat_y_inf", "FEAT_Y_PIX = 9e999"),          # SQLite: +Inf
                      ("area_text", "FEAT_AREA_PIX = 'many'"),
                      ("qa_field_text", "FEAT_CARR_LONG_DEG = 'east'"),
                      ("ar_number_huge", "HELIO_AR_NUMBER = 1e300"),
                      ("chain_blob", "CC = X'3031323334'"),           # a BLOB, not text
                      ("run_date_text", "RUN_DATE = 'last tuesday'")):
        out[name] = next(g)
        con.execute(f"UPDATE ACTIVEREGIONS SET {sql} WHERE ID_AR = ?", (out[name],))
    i = next(g)
    con.execute("UPDATE ACTIVEREGIONS SET ID_AR = 'AR-7' WHERE ID_AR = ?", (i,))
    out["id_text"], out["id_text_was"] = "AR-7", i
    t = next(g)
    out["exp_time_text"] = _new_image(con, obs, ar, t, minutes=21, EXP_TIME="long")
    out["naxis_huge"] = _new_image(con, obs, ar, t, minutes=24, NAXIS1=1e300)
    out["unit_unknown"] = _new_image(con, obs, ar, t, minutes=27)
    con.execute("INSERT INTO OBSERVATORY SELECT ID_OBSERVATORY + 1000, OBSERVAT, INSTRUME, "
                "TELESCOP, UNITS, WAVEMIN, WAVEMAX, WAVENAME, 'furlong', SPECTRAL_NAME, "
                "OBS_TYPE, COMMENT FROM OBSERVATORY")
    con.execute("UPDATE OBSERVATIONS SET OBSERVATORY_ID = OBSERVATORY_ID + 1000 WHERE "
                "ID_OBSERVATIONS = (SELECT OBSERVATIONS_ID FROM ACTIVEREGIONS WHERE ID_AR = ?)",
                (out["unit_unknown"],))
    con.commit()
    con.close()
    return out


@pytest.fixture(scope="module")
def hfc_battery(hfc_sample, tmp_path_factory):
    base = tmp_path_factory.mktemp("values")
    clean = make_params(writable_copy(hfc_sample, base / "clean.sqlite"), base / "clean")
    run_once(clean, "20260101T000000Z")
    clean_rows = runfolder.read_rows(base / "clean/runs/20260101T000000Z/hfc1ar")
    good = sorted(int(i) for i in clean_rows["qa_source_id"])
    bad_db = writable_copy(hfc_sample, base / "bad.sqlite")
    planted = plant_bad_values(bad_db, good[2::5][:10])
    params = make_params(bad_db, base / "bad", chunk_size=10)
    h, e = run_once(params, "20260101T000000Z")
    return dict(planted=planted, clean_rows=clean_rows, harvest=h, export=e, params=params,
                folder=base / "bad/runs/20260101T000000Z/hfc1ar", db=bad_db)


def test_each_bad_hfc_value_is_quarantined_by_name(hfc_battery):
    q = runfolder.read_quarantine(hfc_battery["folder"])
    assert "internal.error" not in set(q["rule"]), q[q["rule"] == "internal.error"]
    for name, (rule, words) in HFC_PLANTS.items():
        sid = hfc_battery["planted"][name]
        lines = _lines_of(q, sid)
        assert rule in set(lines["rule"]), f"{name} (ID_AR={sid}): {lines.to_dict('records')}"
        reason = " ".join(lines.loc[lines["rule"] == rule, "reason"])
        assert f"ID_AR={sid}" in reason, reason
        for w in words:
            assert w in reason, f"{name}: {w!r} not in {reason!r}"


def test_every_other_hfc_record_is_exported(hfc_battery):
    planted = {str(v) for v in hfc_battery["planted"].values()}
    rows = runfolder.read_rows(hfc_battery["folder"])
    clean_ids = set(hfc_battery["clean_rows"]["qa_source_id"].astype(str))
    assert set(rows["qa_source_id"].astype(str)) == clean_ids - planted
    assert hfc_battery["export"]["exported"] == len(rows)
    # the QA copies of the source records, the refused ones among them, were written
    # ('AR-7' as NULL: its chunk came after chunks of numbers)
    recs = pd.read_parquet(hfc_battery["folder"] / runfolder.RECORDS)
    ids = pd.to_numeric(recs["ID_AR"], errors="coerce")
    assert {int(v) for k, v in hfc_battery["planted"].items() if k not in (
        "id_text", "id_text_was")} <= set(ids.dropna().astype(int))
    assert ids.isna().sum() == 1


def test_the_next_run_reads_the_bad_records_again_without_failing(hfc_battery):
    """The mark's retry list now names 'AR-7' (a key that is no number): the next
    incremental harvest reads it again by that text and refuses it again."""
    mark = json.loads((Path(hfc_battery["params"]["dachs_inputs"]) / "hfc1ar" /
                       "manifest.json").read_text())["mark"]
    assert "AR-7" in [str(i) for i in mark["retry"]]
    h, e = run_once(hfc_battery["params"], "20260102T000000Z")
    q = runfolder.read_quarantine(Path(hfc_battery["params"]["outputs"]) /
                                  "20260102T000000Z/hfc1ar")
    assert "source.bad_value" in set(_lines_of(q, "AR-7")["rule"])
    assert "internal.error" not in set(q["rule"])


def _nrh_doc(template: dict, _id: str, **source) -> str:
    return json.dumps({"_id": _id, "_index": "nrh",
                       "_source": {**template["_source"], **source}})


#: planted nrh document (its _id, or the dump's line for unreadable ones) → rule
NRH_PLANTS = {
    "nrh.ndjson:1": "source.bad_record",            # a truncated line
    "nrh.ndjson:3": "source.bad_record",            # a hit without _id
    "nrh.ndjson:4": "source.bad_record",            # _source is no object
    "badFrequencyText00001": "source.bad_value",     # a string in the frequency list
    "badFileSize0000000001": "source.bad_value",     # text in a number field
    "badIntegrationInf0001": "source.bad_value",     # Infinity (JSON extension)
    "futureDateObs00000001": "source.bad_date",      # observed in 2200
}


@pytest.fixture(scope="module")
def nrh_battery(samples, tmp_path_factory):
    base = tmp_path_factory.mktemp("nrh")
    lines = Path(samples["nrh"]).read_text(encoding="utf-8").splitlines()
    good = json.loads(lines[0])
    planted = [
        lines[1][:len(lines[1]) // 2],                                   # line 1
        lines[0],                                                        # line 2: good
        json.dumps({"_index": "nrh", "_source": good["_source"]}),       # line 3
        json.dumps({"_id": "notAnObject000000001", "_source": [1, 2]}),  # line 4
        _nrh_doc(good, "badFrequencyText00001", frequencies=[150.9, "bad"]),
        _nrh_doc(good, "badFileSize0000000001", file_size="big"),
        _nrh_doc(good, "badIntegrationInf0001", integration_time=float("inf")),
        _nrh_doc(good, "futureDateObs00000001", date_obs="2200-01-01T08:00:00.000Z",
                 date_end="2200-01-01T15:00:00.000Z"),
    ]
    dump = base / "nrh.ndjson"
    dump.write_text("\n".join(planted + lines[1:]) + "\n", encoding="utf-8")
    over = {"dachs_inputs": str(base / "dachs"), "outputs": str(base / "runs"),
            "workers": 1, "decisions": str(base / "decisions.csv")}
    clean = load_config("nrh", overrides={**over, "source": f"ndjson:{samples['nrh']}",
                                          "dachs_inputs": str(base / "clean")})
    hc = harvest.run(clean, base / "runs/clean/nrh")
    params = load_config("nrh", overrides={**over, "source": f"ndjson:{dump}"})
    folder = base / "runs/20260101T000000Z/nrh"
    h = harvest.run(params, folder)
    e = export.run(params, folder)
    return dict(clean=hc, clean_rows=runfolder.read_rows(base / "runs/clean/nrh"),
                harvest=h, export=e, folder=folder)


def test_each_bad_nrh_document_is_quarantined_by_name(nrh_battery):
    q = runfolder.read_quarantine(nrh_battery["folder"])
    assert "internal.error" not in set(q["rule"])
    for sid, rule in NRH_PLANTS.items():
        lines = _lines_of(q, sid)
        assert rule in set(lines["rule"]), f"{sid}: {lines.to_dict('records')}"
        assert lines["reason"].str.contains(sid, regex=False).all(), lines["reason"]
    reasons = " ".join(q["reason"])
    for words in ("'bad'", "FILE_SIZE holds 'big'", "INTEGRATION holds inf",
                  "DATE_OBS '2200-01-01T08:00:00.000Z' is after this run's time",
                  "not JSON", "without an _id"):
        assert words in reasons, words


def test_every_other_nrh_document_is_exported(nrh_battery):
    rows = runfolder.read_rows(nrh_battery["folder"])
    clean = set(nrh_battery["clean_rows"]["qa_source_id"])
    assert set(rows["qa_source_id"]) == clean
    assert nrh_battery["export"]["exported"] == len(clean)
    # the future document did not move the mark past the run's time
    mark = nrh_battery["harvest"]["mark"]
    assert mark["time_jd"] < incremental.jd(pd.Series([utc_now()]))[0]


#: Values planted in each field in turn: a huge number, an infinite one, text, bytes,
#: a boolean and a list.
SPOILERS = [1e300, math.inf, "x!", b"\xff\xfe", True, [1.0, "a"]]


def _sample_records(name, samples, n=8):
    src = {"hfc1ar": f"sqlite:///{samples['hfc']}", "hfc1t3": f"sqlite:///{samples['hfc']}",
           "bass2000": f"sqlite:///{samples['bass2000']}", "nrh": f"ndjson:{samples['nrh']}",
           "orfees": f"ndjson:{samples['orfees']}"}.get(name)
    if src is None:
        src = f"files:{Path(samples['hfc']).parent / name}"
    svc = get_service(name)
    p = load_config(name, overrides={"source": src, "workers": 1, "qa_gallery": 0})
    recs = pd.concat(list(svc.source.records(open_source(src), p, None)), ignore_index=True)
    return svc, p, svc.source.expand(recs).head(n).reset_index(drop=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hfc1ar", "hfc1t3", "bass2000", "nrh", "orfees", "nda",
                                  "expres"])
def test_no_value_of_any_field_stops_the_mapping(name, samples, tmp_path):
    """Each field holds each spoiler in turn (the first records of the sample hold one
    spoiler each, the last one or two none): nothing raises (mapping, validation, the QA copy's
    Parquet file, the mark), no record is refused as ``internal.error``, an infinite
    number or bytes refuse their record, and the untouched records are accepted as
    before."""
    svc, p, recs = _sample_records(name, samples)
    now = utc_now()
    acc, _, _ = harvest.map_validate(name, recs, p, now)
    ids = recs[svc.source_id].map(text_of).to_numpy()
    n_controls = 2 if len(recs) >= 4 else 1
    controls = set(ids[-n_controls:]) & set(acc["qa_source_id"].astype(str))
    slots = len(recs) - n_controls
    failures = []
    for col in recs.columns:
        for start in range(0, len(SPOILERS), slots):
            r = recs.copy()
            r[col] = r[col].astype(object)
            spoiled = list(enumerate(SPOILERS[start:start + slots]))
            for i, v in spoiled:
                r.at[i, col] = v
            acc2, q2, keep = harvest.map_validate(name, r, p, now)
            out = runfolder.ParquetStream(tmp_path / "records.parquet")
            out.write(keep)
            out.close([])
            marks: dict = {}
            svc.source.mark.observe(marks, acc2, now)
            incremental.merge_marks(None, marks, now)
            if len(q2) and "internal.error" in set(q2["rule"]):
                failures.append(f"{col}: internal.error {list(q2['reason'])}")
            accepted = set(acc2["qa_source_id"].astype(str)) if len(acc2) else set()
            if controls - accepted:
                failures.append(f"{col}: lost {controls - accepted}")
            for i, v in spoiled:
                sid = text_of(r.at[i, svc.source_id])
                if (v is math.inf or isinstance(v, bytes)) and sid in accepted:
                    failures.append(f"{col}={v!r}: accepted")
    assert not failures, "\n".join(failures[:30])


def test_declared_kinds_refuse_text_in_numbers_and_numbers_beyond_integers(samples):
    svc, p, recs = _sample_records("bass2000", samples)
    now = utc_now()
    for col, v, words in (("EXPTIME", "x!", "EXPTIME holds 'x!', text, not a number"),
                          ("NAXIS1", 1e300, "NAXIS1 holds 1e+300, beyond"),
                          ("NAXIS1", 12.5, "NAXIS1 holds 12.5, not a whole number"),
                          ("FILTER", 7, "FILTER holds 7, an int, not text")):
        r = recs.copy()
        r[col] = r[col].astype(object)
        r.at[0, col] = v
        _, q, _ = harvest.map_validate("bass2000", r, p, now)
        lines = _lines_of(q, r.at[0, "ID"])
        assert list(lines["rule"]) == ["source.bad_value"], (col, v, lines)
        assert words in lines["reason"].iloc[0], lines["reason"].iloc[0]


def test_parquet_stream_writes_columns_of_mixed_values(tmp_path):
    s = runfolder.ParquetStream(tmp_path / "r.parquet")
    s.write(pd.DataFrame({"A": [1.5, "x", None], "B": [b"\xff", "ok", None],
                          "C": [[1.0], "x", None], "D": [1, 2, 3]}))
    s.write(pd.DataFrame({"A": ["y", 2.0, None], "B": [1, "z", None],
                          "C": [[2.0], None, None], "D": ["w", 5, None]}))
    s.close([])
    t = pd.read_parquet(tmp_path / "r.parquet")
    assert len(t) == 6
    assert [None if pd.isna(v) else v for v in t["A"]] == ["1.5", "x", None, "y", "2.0",
                                                             None]
    assert t["D"].iloc[3] is None or pd.isna(t["D"].iloc[3])



def test_parquet_stream_dictionary_only_for_repeated_columns(tmp_path):
    """Columns of distinct values (s_region, ids) are written without a dictionary,
    repeated ones with it, LZ4-compressed; what is read back is what was written."""
    import pyarrow.parquet as pq
    n = 400
    df = pd.DataFrame({"s_region": [f"Polygon UNKNOWNFrame {k} 1 2 3 4 5" for k in range(n)],
                       "flag": ["ok", "limb_clipped"] * (n // 2),
                       "x": np.arange(n, dtype=float), "k": np.zeros(n, dtype=np.int64)})
    s = runfolder.ParquetStream(tmp_path / "r.parquet")
    s.write(df.iloc[:300])
    s.write(df.iloc[300:])
    s.close([])
    meta = pq.ParquetFile(tmp_path / "r.parquet").metadata
    for g in range(meta.num_row_groups):
        enc = {meta.row_group(g).column(i).path_in_schema:
               meta.row_group(g).column(i) for i in range(meta.num_columns)}
        assert all(c.compression.startswith("LZ4") for c in enc.values())
        assert not any("DICTIONARY" in e for e in enc["s_region"].encodings)
        assert not any("DICTIONARY" in e for e in enc["x"].encodings)
        assert any("DICTIONARY" in e for e in enc["flag"].encodings)
        assert any("DICTIONARY" in e for e in enc["k"].encodings)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "r.parquet"), df,
                                  check_dtype=False)

# -- class 4: a record from the future never moves the mark ------------------------------

def test_a_future_run_date_neither_moves_the_mark_nor_hides_later_changes(hfc_sample,
                                                                          tmp_path):
    from test_incremental import area_rows
    db = writable_copy(hfc_sample, tmp_path / "hfc.sqlite")
    con = sqlite3.connect(db)
    ids = [r[0] for r in con.execute("SELECT ID_AR FROM ACTIVEREGIONS ORDER BY ID_AR")]
    soon, far, later = ids[3], ids[7], ids[1]
    con.execute("UPDATE ACTIVEREGIONS SET RUN_DATE = '2200-01-01T00:00:00.000' "
                "WHERE ID_AR = ?", (soon,))
    con.execute("UPDATE ACTIVEREGIONS SET RUN_DATE = '2999-01-01T00:00:00.000' "
                "WHERE ID_AR = ?", (far,))
    con.commit()
    params = make_params(db, tmp_path)
    h, e = run_once(params, "20260101T000000Z")
    q = runfolder.read_quarantine(tmp_path / "runs/20260101T000000Z/hfc1ar")
    for sid, words in ((soon, "RUN_DATE '2200-01-01T00:00:00.000' is after this run's"),
                       (far, "RUN_DATE '2999-01-01T00:00:00.000'")):
        lines = _lines_of(q, sid)
        assert list(lines["rule"]) == ["source.bad_date"], lines
        assert words in lines["reason"].iloc[0] and f"ID_AR={sid}" in lines["reason"].iloc[0]
    now = utc_now()
    assert h["mark"]["run_date"] <= now.isoformat()
    stored = json.loads((Path(params["dachs_inputs"]) / "hfc1ar/manifest.json").read_text())
    assert stored["mark"]["run_date"] <= now.isoformat()
    # a region re-processed in place after that run is read again and re-published
    stamp = (now - pd.Timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000")
    con.execute("UPDATE ACTIVEREGIONS SET RUN_DATE = ?, HELIO_AR_NUMBER = 9999 "
                "WHERE ID_AR = ?", (stamp, later))
    con.commit()
    con.close()
    h2, e2 = run_once(params, "20260102T000000Z")
    assert e2["changed"] == 1, e2
    rows = area_rows(params)
    assert "HFC AR 9999" in set(rows.loc[rows["granule_uid"].notna(), "feature_name"])


def test_observe_ignores_times_after_the_run():
    from vespa_curation.sources import Mark
    now = pd.Timestamp("2026-01-02T00:00:00")
    rows = pd.DataFrame({"time_min": [2461000.5, 2500000.5],
                         "qa_run_date": ["2026-01-01T00:00:00.000", "2200-01-01T00:00:00"],
                         "qa_id": [3, 4]})
    marks: dict = {}
    Mark(time="T", changed="RUN_DATE", id="ID").observe(marks, rows, now)
    assert marks["time_jd"] == 2461000.5
    assert pd.Timestamp(marks["run_date"]) == pd.Timestamp("2026-01-01")
    # a stored mark written before this fix, from the future or no date, is dropped
    assert incremental.merge_marks({"run_date": "2999-01-01T00:00:00.000"},
                                   {"run_date": "2026-01-01T00:00:00.000"},
                                   now) == {"run_date": "2026-01-01T00:00:00.000"}
    assert incremental.merge_marks({"run_date": "garbage"}, {}, now) == {}


# -- class 2: a killed run leaves no process and no scratch behind ------------------------

import os          # noqa: E402
import signal      # noqa: E402
import subprocess  # noqa: E402
import sys         # noqa: E402
import time        # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "lib")] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


@pytest.fixture(scope="module")
def big_hfc(tmp_path_factory) -> Path:
    """A synthetic HFC database of 10 000 regions (benchmarks/make_bench_db.py): a
    harvest of it on two workers takes a while."""
    out = tmp_path_factory.mktemp("big") / "hfc_bench.sqlite"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks/make_bench_db.py"),
                        "--rows", "10000", "--out", str(out)], env=_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def _alive(pids) -> list[int]:
    import psutil
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _wait_for(what, timeout: float, step: float = 0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = what()
        if got:
            return got
        time.sleep(step)
    return None


def _workers_of(proc):
    """Processes of ``proc``'s tree that have two map workers: (pid of the harvest,
    [worker pids]), or None."""
    import psutil
    try:
        tree = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    for p in tree:
        try:
            kids = p.children()
        except psutil.NoSuchProcess:
            continue
        if len(kids) >= 2 and all("python" in (k.name() or "") for k in kids[:2]):
            return p.pid, [k.pid for k in kids]
    return None


def _kill_leftovers(pids) -> None:
    for pid in _alive(pids):    # only processes this test started
        os.kill(pid, signal.SIGKILL)


DRIVER = r"""
import sys
from vespa_curation import harvest
from vespa_curation.config import load_config
p = load_config("hfc1ar", overrides={"source": "sqlite:///" + sys.argv[1], "workers": 2,
                "chunk_size": 500, "outputs": sys.argv[2], "dachs_inputs": sys.argv[3],
                "decisions": sys.argv[4], "full": True})
harvest.run(p, sys.argv[2] + "/20260101T000000Z/hfc1ar")
"""


@pytest.mark.slow
def test_map_workers_die_when_their_parent_is_killed(big_hfc, tmp_path):
    import psutil
    child = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(big_hfc), str(tmp_path / "runs"),
         str(tmp_path / "dachs"), str(tmp_path / "decisions.csv")],
        env=_env(), start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    workers = []
    try:
        found = _wait_for(lambda: _workers_of(psutil.Process(child.pid)), 180)
        assert found, "the harvest never started its workers"
        workers = found[1]
        os.kill(child.pid, signal.SIGKILL)      # the parent only, not its group
        child.wait(timeout=30)
        time.sleep(5)
        assert _alive(workers) == [], "map workers survived their parent"
    finally:
        child.kill()
        _kill_leftovers(workers)


def test_local_workers_keep_what_they_inherited_out_of_garbage_collection():
    """A forked worker freezes the objects it inherited (gc.freeze), so that its full
    collections neither walk them nor copy their pages; what it makes itself is still
    collected."""
    import gc
    from vespa_curation.workers import local_pool
    inherited = [[] for _ in range(1000)]       # objects the parent holds at the fork
    submit, shutdown = local_pool(1, fork_now=True)
    try:
        frozen = submit(gc.get_freeze_count).result()
        collected = submit(_collect_a_cycle).result()
    finally:
        shutdown()
    assert frozen >= len(inherited), frozen
    assert collected >= 2, collected


def _collect_a_cycle() -> int:
    import gc
    a, b = [], []
    a.append(b)
    b.append(a)
    del a, b
    return gc.collect()


@pytest.mark.slow
def test_kill_9_of_a_run_leaves_no_process_and_the_next_run_clears_its_scratch(
        big_hfc, tmp_path, monkeypatch):
    """``vespa-curate run`` (papermill; the kernel in a session of its own) killed with
    SIGKILL to its process group during the harvest: after 5 s no process of the run is
    left; the next run, holding the lock, removes the half-written Parquet file."""
    import psutil
    from vespa_curation import runs
    exe = Path(sys.executable).parent / "vespa-curate"
    outputs = tmp_path / "runs"
    args = ["-p", f"source=sqlite:///{big_hfc}", "-p", "workers=2", "-p", "chunk_size=500",
            "-p", f"outputs={outputs}", "-p", f"dachs_inputs={tmp_path / 'dachs'}",
            "-p", f"decisions={tmp_path / 'decisions.csv'}"]
    leader = subprocess.Popen([str(exe), "run", "hfc1ar", *args], env=_env(), cwd=ROOT,
                              start_new_session=True, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tree: list[int] = []
    try:
        proc = psutil.Process(leader.pid)
        found = _wait_for(lambda: _workers_of(proc) and list(
            outputs.glob("*/hfc1ar/*.parquet.part")), 300)
        assert found, "the run never reached its map workers"
        tree = [leader.pid] + [p.pid for p in proc.children(recursive=True)]
        assert len(tree) >= 4            # the command, the kernel, two workers
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait(timeout=30)
        time.sleep(5)
        assert _alive(tree) == [], f"processes of the killed run survive: {_alive(tree)}"
    finally:
        leader.kill()
        _kill_leftovers(tree)
    part = list(outputs.glob("*/hfc1ar/*.parquet.part"))
    assert part, "the killed harvest left no half-written file to clear"
    params = load_config("hfc1ar", overrides={"source": f"sqlite:///{big_hfc}",
                                              "outputs": str(outputs)})
    monkeypatch.setattr(runs, "run_service", lambda p, stamp, *a, **k:
                        runs.RunResult(p["service"], runs.run_dir(p, stamp)))
    runs.run([params], progress=False)
    assert not any(p.exists() for p in part)
    assert not list(outputs.glob("*/*/*.parquet.part"))


def test_remove_scratch_keeps_what_a_live_writer_holds(tmp_path):
    folder = tmp_path / "20260101T000000Z" / "hfc1ar"
    folder.mkdir(parents=True)
    (folder / runfolder.export_rows_part(1)).write_bytes(b"x" * 100)
    (folder / "rows.parquet.part").write_bytes(b"x")
    (folder / "rows.parquet").write_bytes(b"kept")
    live = runfolder.ParquetStream(tmp_path / "20260102T000000Z" / "nrh" / "rows.parquet")
    live.path.parent.mkdir(parents=True)
    live.write(pd.DataFrame({"a": [1]}))
    removed = runfolder.remove_scratch(tmp_path)
    assert sorted(p.name for p in removed) == [runfolder.export_rows_part(1),
                                               "rows.parquet.part"]
    assert (folder / "rows.parquet").exists() and live.tmp.exists()
    live.close([])
    assert live.path.exists()


# -- class 5: SQLite paths holding URI characters ------------------------------------------

@pytest.mark.parametrize("folder", ["we?ird", "hash #2", "100%25 sure", "all?#%20 three"])
def test_sqlite_path_with_uri_characters_opens_that_file_read_only(hfc_sample, tmp_path,
                                                                   folder):
    db = writable_copy(hfc_sample, tmp_path / folder / "hfc.sqlite")
    before = set(tmp_path.rglob("*"))
    src = open_source(f"sqlite:///{db}")
    assert "ACTIVEREGIONS" in src.tables()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        src.conn.execute("CREATE TABLE X (A)")
    src.close()
    assert set(tmp_path.rglob("*")) == before    # no other file opened or created


# -- class 6: -p values by their parameter's type; folders and files checked first ---------

from vespa_curation.parameter import ParameterError  # noqa: E402


def test_override_values_are_taken_by_their_parameter_type(tmp_path):
    cfg = load_config("hfc1ar", overrides=[
        f"outputs={tmp_path}/runs #2", f"dachs_inputs={tmp_path}/yes",
        f"decisions={tmp_path}/2026-01-01", f"qa_images={tmp_path}/@x",
        "workers=1", "full=yes", "limit=", "chunk_size= 500"])
    assert cfg["outputs"] == f"{tmp_path}/runs #2"            # a comment for YAML
    assert cfg["dachs_inputs"] == f"{tmp_path}/yes"           # a boolean for YAML
    assert cfg["decisions"] == f"{tmp_path}/2026-01-01"       # a date for YAML
    assert cfg["qa_images"] == f"{tmp_path}/@x"               # a YAML error
    assert cfg["full"] is True and cfg["limit"] is None and cfg["chunk_size"] == 500
    odd = load_config("hfc1ar", overrides=["outputs=!!python/object/apply:os.system"])
    assert odd["outputs"].endswith("!!python/object/apply:os.system")


@pytest.mark.parametrize("override, words", [
    ("limit=0", "'limit'"), ("limit=-5", "'limit'"), ("dachs_inputs=", "'dachs_inputs'"),
    ("outputs=", "'outputs'"), ("workers=", "'workers'"), ("source=@x", "'source'"),
    ("workers=!!python/object/apply:os.system", "'workers'"),
])
def test_refused_overrides_name_their_parameter(override, words):
    with pytest.raises(ParameterError, match=words):
        load_config("hfc1ar", overrides=[override])


def test_a_folder_parameter_naming_a_file_is_refused(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    for key in ("dachs_inputs", "outputs"):
        with pytest.raises(ParameterError, match=f"'{key}'.*not a folder"):
            load_config("hfc1ar", overrides=[f"{key}={f}"])


@pytest.mark.parametrize("content, line", [
    (b"workers: 1\nlimit: [1, 2\nfull: true\n", 3),          # an unclosed list
    (b"workers: 1\n  limit: 2\n", 2),                          # bad indentation
    (b"workers: 1\noutputs: caf\xe9\n", 2),                    # Latin-1, not UTF-8
])
def test_a_broken_parameters_file_is_refused_naming_file_and_line(tmp_path, content, line):
    f = tmp_path / "site.yaml"
    f.write_bytes(content)
    with pytest.raises(ParameterError, match=rf"site\.yaml.* line {line}\b"):
        load_config("hfc1ar", f)


def test_cli_refuses_a_zero_limit_before_any_notebook(tmp_path):
    from test_cli import curate
    out = tmp_path / "runs"
    p = curate("run", "hfc1ar", "-p", f"outputs={out}", "-p", "limit=0", env=_env())
    assert p.returncode == 2 and "'limit'" in p.stderr, p.stderr
    assert not out.exists()


# -- class 3: credentials never pass the parameter check --------------------------------------

@pytest.mark.parametrize("key, value", [
    ("source", "odbc:DRIVER={PostgreSQL Unicode};SERVER=db;UID=hfc;PWD=S3cret-pw;"),
    ("source", "odbc:Driver=x;Server=db;User=hfc;Password = S3cret-pw"),
    ("source", "es:https://vespa:S3cret-pw@es.example.org:9200"),
    ("dachs_db", "host=db dbname=gavo user=gavo password=S3cret-pw"),
    ("dachs_db", "postgresql://gavo:S3cret-pw@db/gavo"),
    ("server_url", "https://admin:S3cret-pw@voparis.example.org"),
    ("hapi_server", "https://u:S3cret-pw@hapi.example.org/hapi"),
])
def test_a_credential_in_a_parameter_is_refused_naming_the_key_only(key, value):
    service = "nrh" if key == "hapi_server" else "hfc1ar"
    with pytest.raises(ParameterError) as err:
        load_config(service, overrides={key: value})
    msg = str(err.value)
    assert f"'{key}'" in msg and "S3cret-pw" not in msg
    assert "environment variable" in msg and "file" in msg


# -- item 6: text beyond what DaCHS's indexes hold; a publish never half-imports ----------

import random  # noqa: E402
import string  # noqa: E402

from vespa_curation.publish import PublishError, publish  # noqa: E402

from test_incremental import _as_postgres_db  # noqa: E402


def _incompressible(n: int, seed: int) -> str:
    """``n`` random letters and digits (no repeats for PostgreSQL to compress away)."""
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def _fresh_schema(dachs, schema: str) -> None:
    """No import area and no tables of ``schema`` in the session DaCHS (shared by
    several tests)."""
    fresh_schema(dachs, schema)


def _orfees_doc(template: dict, _id: str, **source) -> str:
    return json.dumps({"_id": _id, "_index": "orfees",
                       "_source": {**template["_source"], **source}})


LONG_URL_ID = "longFileUrl000000001"
LONG_LINK_ID = "longHapiLink00000001"


@pytest.mark.dachs
@pytest.mark.slow
def test_text_too_long_for_an_index_is_quarantined_and_the_rest_imports(
        dachs, samples, tmp_path, monkeypatch):
    """A 1 MB file_url (the issue's case: it exported, then `dachs imp` failed in the
    links after epn_core was imported) and a link made too long by its HAPI dataset
    (a 2500-character file name as ``{obs_id}``) are quarantined by rule; a granule
    exactly at the limits (a 512-byte _id, a 2048-byte incompressible file_url) is
    published, links included: the limits fit the real index."""
    monkeypatch.setenv("GAVOSETTINGS", dachs.env["GAVOSETTINGS"])
    _fresh_schema(dachs, "orfees")
    lines = Path(samples["orfees"]).read_text(encoding="utf-8").splitlines()
    good = json.loads(lines[0])
    at_limits = _incompressible(512, 1)      # vespa_curation.limits: granule_uid, URL
    url = "https://rsdb.obs-nancay.fr/orfees/"
    planted = [
        _orfees_doc(good, LONG_URL_ID, file_url=url + "a" * 1_000_000 + ".fts"),
        _orfees_doc(good, LONG_LINK_ID, file_name="int_orf_" + "b" * 2500 + ".fts"),
        _orfees_doc(good, at_limits, file_url=url + _incompressible(2048 - len(url), 2)),
    ]
    dump = tmp_path / "orfees.ndjson"
    dump.write_text("\n".join(lines + planted) + "\n", encoding="utf-8")
    over = {"dachs_inputs": str(dachs.inputs), "server_url": dachs.url, "workers": 1,
            "decisions": str(tmp_path / "decisions.csv"), "hapi_dataset": "{obs_id}",
            "hapi_server": "https://hapi.example.org/hapi"}
    clean = load_config("orfees", overrides={**over, "source": f"ndjson:{samples['orfees']}",
                                             "dachs_inputs": str(tmp_path / "clean")})
    harvest.run(clean, tmp_path / "runs/clean/orfees")
    clean_ids = set(runfolder.read_rows(tmp_path / "runs/clean/orfees")["qa_source_id"])
    params = load_config("orfees", overrides={**over, "source": f"ndjson:{dump}",
                                              "outputs": str(tmp_path / "runs")})
    folder = tmp_path / "runs/20260101T000000Z/orfees"
    harvest.run(params, folder)
    e = export.run(params, folder)
    q = runfolder.read_quarantine(folder)
    long_url = _lines_of(q, LONG_URL_ID)
    assert list(long_url["rule"]) == ["epn.too_long"], long_url
    assert "access_url is 1000038 bytes long" in long_url["reason"].iloc[0]
    long_link = _lines_of(q, LONG_LINK_ID)
    assert list(long_link["rule"]) == ["link.too_long"], long_link
    assert "its #coderived link: access_url is" in long_link["reason"].iloc[0]
    rows = runfolder.read_rows(folder)
    assert set(rows["qa_source_id"]) == clean_ids | {at_limits}
    assert e["exported"] == len(rows)
    out = publish("orfees", params)            # dachs imp, limits, val, TAP count
    assert out["rows_served"] == len(rows)
    n_links = _as_postgres_db("gavo", "SELECT count(*) FROM orfees.links WHERE "
                              f"granule_uid = '{at_limits}' AND semantics = '#this'")
    assert n_links.stdout.strip() == "1"


def _snapshot(schema: str) -> tuple[str, str, str]:
    """What DaCHS serves of ``schema``: its rows, links and imported files."""
    return tuple(_as_postgres_db("gavo", sql).stdout for sql in (
        f"SELECT granule_uid, time_min, access_url FROM {schema}.epn_core ORDER BY 1",
        f"SELECT granule_uid, access_url, semantics FROM {schema}.links ORDER BY 1, 2, 3",
        f"SELECT source FROM {schema}.imported_sources ORDER BY 1"))


PLANTED_TRIGGER = """
CREATE OR REPLACE FUNCTION public.vc_test_planted_failure() RETURNS event_trigger
LANGUAGE plpgsql AS $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()
             WHERE object_identity = 'orfees.links') THEN
    RAISE EXCEPTION 'planted failure: orfees.links cannot be created';
  END IF; END $$;
CREATE EVENT TRIGGER vc_test_planted_failure ON ddl_command_end WHEN TAG IN
  ('CREATE TABLE') EXECUTE FUNCTION public.vc_test_planted_failure();
"""
DROP_PLANTED_TRIGGER = ("DROP EVENT TRIGGER IF EXISTS vc_test_planted_failure; "
                        "DROP FUNCTION IF EXISTS public.vc_test_planted_failure()")


@pytest.mark.dachs
@pytest.mark.slow
def test_a_publish_whose_import_fails_late_leaves_dachs_as_it_was(dachs, samples,
                                                                   tmp_path, monkeypatch):
    """`dachs imp` commits each data element of the RD on its own: a failure in the
    links after the epn_core rows were imported left a half-published service whose
    data file was recorded as imported (the next import skipped it). The publish now
    imports in one transaction: with a planted failure in the links (a constraint of
    the database), then in a full rebuild (the links table cannot be created), DaCHS
    serves exactly what it served before; once the failure is gone, the next publish
    imports everything."""
    monkeypatch.setenv("GAVOSETTINGS", dachs.env["GAVOSETTINGS"])
    _fresh_schema(dachs, "orfees")
    lines = Path(samples["orfees"]).read_text(encoding="utf-8").splitlines()
    good = json.loads(lines[0])
    dump = tmp_path / "orfees.ndjson"
    dump.write_text("\n".join(lines) + "\n", encoding="utf-8")
    params = load_config("orfees", overrides={
        "source": f"ndjson:{dump}", "dachs_inputs": str(dachs.inputs),
        "server_url": dachs.url, "outputs": str(tmp_path / "runs"), "workers": 1,
        "decisions": str(tmp_path / "decisions.csv"), "tap_check": False})

    def night(stamp: str) -> None:
        folder = tmp_path / "runs" / stamp / "orfees"
        harvest.run(params, folder)
        export.run(params, folder)

    night("20260101T000000Z")
    publish("orfees", params)
    before = _snapshot("orfees")
    new = [_orfees_doc(good, f"plantedFailure00000{i}", date_obs=f"2012-02-0{i}T08:00:00Z",
                       date_end=f"2012-02-0{i}T15:00:00Z") for i in (1, 2)]
    dump.write_text("\n".join(lines + new) + "\n", encoding="utf-8")
    night("20260102T000000Z")
    _as_postgres_db("gavo", "ALTER TABLE orfees.links ADD CONSTRAINT planted_failure "
                            "CHECK (granule_uid <> 'plantedFailure000002')")
    with pytest.raises(PublishError) as err:
        publish("orfees", params)
    assert _snapshot("orfees") == before         # not the new rows without their links
    assert "nothing of this import was kept" in str(err.value)
    _as_postgres_db("gavo", "ALTER TABLE orfees.links DROP CONSTRAINT planted_failure")
    publish("orfees", params)
    after = _snapshot("orfees")
    assert after[0].count("plantedFailure") == 2 and "plantedFailure000002|" in after[1]
    assert "orfees/data/20260102T000000Z.vot" in after[2]
    # a full rebuild that fails once the tables are dropped and epn_core imported
    try:
        _as_postgres_db("gavo", PLANTED_TRIGGER)
        with pytest.raises(PublishError) as err:
            publish("orfees", dict(params, full=True))
    finally:
        _as_postgres_db("gavo", DROP_PLANTED_TRIGGER)
    assert "planted failure" in str(err.value)
    assert _snapshot("orfees") == after
    assert "full rebuild (drop + import): nothing of this import was kept" in str(err.value)
    publish("orfees", dict(params, full=True))
    assert _snapshot("orfees") == after


# -- item 8: quietly odd rows are published and flagged, not quarantined ------------------

#: planted odd region → (its flag, words of its note)
ODD_PLANTS = {
    "empty_chain": ["empty chain code with FEAT_AREA_PIX 250"],
    "odd_rsun": ["R_SUN x CDELT1 = 1191", "not 930-1000"],
    "before_instrument": ["DATE_OBS 1990-01-01T00:00:00 is before SoHO's launch"],
    "negative_area": ["FEAT_AREA_DEG2 -3.5"],
    "uid_from_null": ["FEAT_X_PIX NULL", "the granule_uid holds 'na'"],
}


def plant_odd_records(db: Path, good_ids: list[int]) -> dict[str, int]:
    """One quietly odd region per flag (a region of its own image for an image-level
    oddity); returns flag → its ID_AR."""
    con = sqlite3.connect(db)
    obs = pd.read_sql_query("SELECT * FROM OBSERVATIONS", con)
    ar = pd.read_sql_query("SELECT * FROM ACTIVEREGIONS", con)
    g = iter(good_ids)
    out = {"empty_chain": next(g), "negative_area": next(g), "uid_from_null": next(g)}
    con.execute("UPDATE ACTIVEREGIONS SET CC = '', CC_LENGTH = 0, FEAT_AREA_PIX = 250 "
                "WHERE ID_AR = ?", (out["empty_chain"],))
    con.execute("UPDATE ACTIVEREGIONS SET FEAT_AREA_DEG2 = -3.5 WHERE ID_AR = ?",
                (out["negative_area"],))
    con.execute("UPDATE ACTIVEREGIONS SET FEAT_X_PIX = NULL WHERE ID_AR = ?",
                (out["uid_from_null"],))
    t = next(g)
    # a disk of 600 px where MDI sees 488: 1191″, an observer at 0.8 AU
    out["odd_rsun"] = _new_image(con, obs, ar, t, minutes=33, R_SUN=600.0)
    out["before_instrument"] = _new_image(con, obs, ar, t, minutes=36,
                                          DATE_OBS="1990-01-01T00:00:00.000",
                                          DATE_END="1990-01-01T00:01:00.000")
    con.commit()
    con.close()
    return out


@pytest.mark.dachs
@pytest.mark.slow
def test_quietly_odd_rows_are_published_with_their_flag_in_the_qa_report(
        dachs, hfc_sample, tmp_path, monkeypatch):
    from vespa_curation.qa.report import build_report
    from test_incremental import dachs_params, fresh_area
    monkeypatch.setenv("GAVOSETTINGS", dachs.env["GAVOSETTINGS"])
    fresh_area(dachs)
    clean = make_params(writable_copy(hfc_sample, tmp_path / "clean.sqlite"),
                        tmp_path / "clean")
    run_once(clean, "20260101T000000Z")
    clean_rows = runfolder.read_rows(tmp_path / "clean/runs/20260101T000000Z/hfc1ar")
    assert clean_rows["qa_flags"].isna().all()          # the sample holds no odd record
    good = sorted(int(i) for i in clean_rows["qa_source_id"])
    db = writable_copy(hfc_sample, tmp_path / "odd.sqlite")
    planted = plant_odd_records(db, good[3::6])
    params = dachs_params(dachs, db, tmp_path / "odd", qa_gallery=6)
    h, e = run_once(params, "20260101T000000Z")
    folder = tmp_path / "odd/runs/20260101T000000Z/hfc1ar"
    assert runfolder.read_quarantine(folder).empty       # flagged, never quarantined
    rows = runfolder.read_rows(folder)
    assert set(rows["qa_source_id"].astype(int)) == set(good) | set(planted.values())
    by_id = rows.set_index(rows["qa_source_id"].astype(int))
    for flag, words in ODD_PLANTS.items():
        row = by_id.loc[planted[flag]]
        assert row["qa_flags"] == flag, (flag, row["qa_flags"], row["qa_flag_notes"])
        for w in words:
            assert w in row["qa_flag_notes"], (flag, w, row["qa_flag_notes"])
    assert "_na_" in by_id.loc[planted["uid_from_null"], "granule_uid"]
    assert by_id.loc[planted["empty_chain"], "qa_area_ratio"] == pytest.approx(1 / 250)
    flagged = int(rows["qa_flags"].notna().sum())
    assert flagged == len(ODD_PLANTS)
    # the QA report shows each of them, drawn first in the gallery
    rep = build_report(params, folder)
    assert rep["odd_flags"] == {f: 1 for f in ODD_PLANTS}
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "Quietly odd rows (5: published, flagged for a curator)" in html
    for flag in ODD_PLANTS:
        uid = by_id.loc[planted[flag], "granule_uid"]
        assert uid in html and flag in html
    drawn = {g["granule_uid"] for g in rep["gallery"][:flagged]}
    assert drawn <= set(rows.loc[rows["qa_flags"].notna(), "granule_uid"])
    assert sum("odd:" in g["flag"] for g in rep["gallery"]) >= 4    # the empty chain
    out = publish("hfc1ar", params)
    assert out["rows_served"] == len(rows)


def test_export_json_counts_the_data_files_actually_written(hfc_sample, tmp_path):
    """``parts`` was computed (at least 1, even when nothing was written): it is now the
    number of data files the run wrote, listed in ``data_files``."""
    from test_incremental import add_day
    db = writable_copy(hfc_sample, tmp_path / "src.sqlite")
    p = make_params(db, tmp_path, export_batch=20)

    def written() -> list[str]:      # the data files of the area's last run
        man = json.loads((Path(p["dachs_inputs"]) / "hfc1ar/manifest.json").read_text())
        return sorted(f for f in man["runs"][-1]["files"] if f.startswith("data/"))
    h, e = run_once(p, "20260101T000000Z")
    # parts follow the harvest's row groups (whole groups of about 20 rows): not
    # ceil(77 / 20) = 4, what export.json said
    assert e["exported"] == 77 and e["parts"] == len(written()) > 1
    assert e["data_files"] == written()
    h, again = run_once(p, "20260102T000000Z")                 # nothing new
    assert again["written"] is False and again["parts"] == 0 and again["data_files"] == []
    Path(p["decisions"]).write_text(                             # a retraction only
        "granule_uid,decision,curator,time,reason,override\n"
        f"{runfolder.read_rows(tmp_path / 'runs/20260101T000000Z/hfc1ar')['granule_uid'][0]}"
        ",reject,test,2026-01-03T00:00:00,wrong,\n", encoding="utf-8")
    h, gone = run_once(p, "20260103T000000Z")
    assert gone["written"] is True and gone["retracted"] == 1 and gone["parts"] == 0
    n = add_day(db)
    h, night = run_once(p, "20260104T000000Z")
    assert night["exported"] == n and night["parts"] == len(written()) >= 1
    assert night["data_files"] == written()


# -- idempotence: base + incremental = a clean full run -------------------------------------

#: Tolerance (deg) on c1min/c1max/c2min/c2max between runs that cut the same records
#: into different chunks. Two float paths depend on the chunk, not on the record: the
#: Earth ephemeris of a chunk of many images per day is a spline between sunpy nodes
#: spanning the chunk's dates, of few images sunpy itself (they agree within 1e-9°,
#: geometry.solar.earth_ephemeris), and the longitude unwrapping sums differences over
#: the whole chunk (≤ 4e-12° measured on 20 000 regions). Making both independent of the
#: chunk changes the last bits of what the sample exports today, which must stay
#: byte-identical; 1e-9° is 1/1000 of the 1e-6° s_region is written to, and the content
#: hash quantizes floats below that, so such a difference never republishes a granule.
CHUNK_TOLERANCE_DEG = 1e-9


def _vertices(s_region) -> np.ndarray:
    return np.array([float(w) for w in str(s_region).split()[2:]]) if isinstance(
        s_region, str) else np.array([])


def test_base_plus_incremental_nights_equal_a_clean_full_run(hfc_sample, tmp_path):
    from test_incremental import add_day, area_rows
    db = writable_copy(hfc_sample, tmp_path / "src.sqlite")
    p = make_params(db, tmp_path / "nightly")
    run_once(p, "20260101T000000Z")
    q1 = runfolder.read_quarantine(Path(p["outputs"]) / "20260101T000000Z/hfc1ar")
    for d in (1, 2, 3):
        add_day(db, days=d, skip=q1["source_id"])
        run_once(p, f"2026010{d + 1}T000000Z")
    nightly = area_rows(p)
    clean = make_params(db, tmp_path / "full", chunk_size=50)
    run_once(clean, "20260201T000000Z")
    full = area_rows(clean)
    assert list(nightly["granule_uid"]) == list(full["granule_uid"]) and len(full) > 150
    dates = ("creation_date", "modification_date", "release_date")
    coords = ["c1min", "c1max", "c2min", "c2max"]
    for c in nightly.columns:
        if c in dates or c in coords or c == "s_region":
            continue
        pd.testing.assert_series_equal(nightly[c], full[c], check_exact=True, obj=c)
    for c in coords:
        d = np.abs(nightly[c].to_numpy(float) - full[c].to_numpy(float))
        assert np.nanmax(d) <= CHUNK_TOLERANCE_DEG, (c, np.nanmax(d))
    for a, b in zip(nightly["s_region"], full["s_region"]):
        va, vb = _vertices(a), _vertices(b)        # written to 1e-6°: a last-digit flip
        assert len(va) == len(vb) and np.all(np.abs(va - vb) <= 1.000001e-6), (a, b)
