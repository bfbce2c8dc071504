"""Nightly incremental updates (issue 6): the mark, deduplication by content, first
publication dates, retried quarantine, bound parameters, the DaCHS-side mark and the
nightly ``dachs imp`` reading only new files.

The helpers at the top (a writable copy of the embedded HFC sample, "a new day of
regions", one pipeline run) are shared with test_failure_safety.py and test_secrets.py.
"""
from __future__ import annotations

import json
import shutil
import time
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vespa_curation import incremental, export, harvest, runfolder
from vespa_curation.config import load_config
from vespa_curation.services import get_service
from conftest import fresh_schema, manifest
from vespa_curation.area import ImportArea




# -- helpers ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def hfc_sample(tmp_path_factory) -> Path:
    """The embedded HFC sample, built once per session (read-only: copy it)."""
    from vespa_curation.hfc.sample import build_hfc_sample
    out = tmp_path_factory.mktemp("hfc_sample") / "hfc.sqlite"
    return build_hfc_sample(out)


def writable_copy(sample: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sample, dest)
    return dest


def drop_ar_primary_key(con) -> None:
    """ACTIVEREGIONS without its primary key on ID_AR (the real HFC has one; a copy
    without it lets a duplicate ID_AR in, as a faulty source may)."""
    con.executescript("""
        CREATE TABLE AR_COPY AS SELECT * FROM ACTIVEREGIONS;
        DROP TABLE ACTIVEREGIONS;
        ALTER TABLE AR_COPY RENAME TO ACTIVEREGIONS;
        CREATE INDEX IX_AR_OBS ON ACTIVEREGIONS (OBSERVATIONS_ID);""")


def add_day(db: Path, days: int = 1, run_date: str = "2026-02-01T00:00:00.000",
            skip=()) -> int:
    """Add one day of new images and regions to an HFC SQLite source: the last day's
    observations again, ``days`` later, with their regions (but those whose ID_AR is in
    ``skip``) under new ids. Returns the number of regions added."""
    con = sqlite3.connect(db)
    try:
        obs = pd.read_sql_query("SELECT * FROM OBSERVATIONS ORDER BY DATE_OBS", con)
        ar = pd.read_sql_query("SELECT * FROM ACTIVEREGIONS", con)
        t = pd.to_datetime(obs["DATE_OBS"])
        last_day = obs[t.dt.normalize() == t.max().normalize()].copy()
        new_obs = last_day.copy()
        id_map = {o: int(obs["ID_OBSERVATIONS"].max()) + 1 + i
                  for i, o in enumerate(last_day["ID_OBSERVATIONS"])}
        new_obs["ID_OBSERVATIONS"] = new_obs["ID_OBSERVATIONS"].map(id_map)
        for c in ("DATE_OBS", "DATE_END"):
            v = pd.to_datetime(new_obs[c], errors="coerce") + pd.Timedelta(days=days)
            new_obs[c] = v.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3].where(v.notna(), None)
        new_obs["FILENAME"] = new_obs["FILENAME"].astype(str) + f".d{days}"
        new_ar = ar[ar["OBSERVATIONS_ID"].isin(id_map)
                    & ~ar["ID_AR"].isin([int(i) for i in skip])].copy()
        new_ar["OBSERVATIONS_ID"] = new_ar["OBSERVATIONS_ID"].map(id_map)
        new_ar["ID_AR"] = int(ar["ID_AR"].max()) + 1 + np.arange(len(new_ar))
        new_ar["RUN_DATE"] = run_date
        new_obs.to_sql("OBSERVATIONS", con, if_exists="append", index=False)
        new_ar.to_sql("ACTIVEREGIONS", con, if_exists="append", index=False)
        con.commit()
        return len(new_ar)
    finally:
        con.close()


def execute(db: Path, sql: str, args=()) -> None:
    con = sqlite3.connect(db)
    con.execute(sql, args)
    con.commit()
    con.close()


def make_params(db: Path, base: Path, **more) -> dict:
    over = {"source": f"sqlite:///{db}", "dachs_inputs": str(base / "dachs"),
            "outputs": str(base / "runs"), "workers": 1,
            "decisions": str(base / "decisions.csv")}
    over.update(more)
    return load_config("hfc1ar", overrides=over)


def run_once(params: dict, run_id: str) -> tuple[dict, dict]:
    """harvest + export of one run (the stage functions the notebooks call)."""
    folder = Path(params["outputs"]) / run_id / "hfc1ar"
    h = harvest.run(params, folder)
    e = export.run(params, folder)
    return h, e


def area_rows(params: dict) -> pd.DataFrame:
    """The current content of the import area: every granule's row from the run that
    holds it (what a fresh `dachs imp` would load)."""
    from vespa_curation.export import read_votable
    area = Path(params["dachs_inputs"]) / "hfc1ar"
    st = ImportArea.at(area).state()
    parts = []
    for run_id, uids in st.groupby("run_id")["granule_uid"]:
        t = read_votable(area / "data" / f"{run_id}.vot")
        t = t.to_pandas() if hasattr(t, "to_pandas") else t
        parts.append(t[t["granule_uid"].isin(set(uids))])
    return pd.concat(parts, ignore_index=True).sort_values("granule_uid", ignore_index=True)


# -- the mark and deduplication ---------------------------------------------------------

def test_unchanged_source_exports_zero_rows_then_exactly_the_new(hfc_sample, tmp_path):
    db = writable_copy(hfc_sample, tmp_path / "src.sqlite")
    p = make_params(db, tmp_path)
    h1, e1 = run_once(p, "20260101T000000Z")
    total = h1["counts"]["source_records"]
    assert e1["exported"] == h1["counts"]["accepted"] > 0
    man1 = (tmp_path / "dachs/hfc1ar/manifest.json").read_bytes()

    # same night again, unchanged source: boundary rows read again, nothing exported,
    # the import area (manifest, files) untouched
    h2, e2 = run_once(p, "20260102T000000Z")
    assert 0 < h2["counts"]["source_records"] < total     # bounded by the mark
    assert e2["exported"] == 0 and e2["unchanged"] == h2["counts"]["accepted"]
    assert e2["written"] is False
    assert (tmp_path / "dachs/hfc1ar/manifest.json").read_bytes() == man1

    # N new source rows → exactly those N (the sample's regions beyond the limb,
    # quarantined, are not copied)
    q1 = runfolder.read_quarantine(Path(p["outputs"]) / "20260101T000000Z/hfc1ar")
    n = add_day(db, skip=q1["source_id"])
    assert n > 0
    h3, e3 = run_once(p, "20260103T000000Z")
    assert e3["exported"] == n and e3["new"] == n and e3["changed"] == 0
    new = runfolder.read_rows(Path(p["outputs"]) / "20260103T000000Z/hfc1ar")
    man = manifest(tmp_path / "dachs/hfc1ar")
    assert man["total_rows"] == h1["counts"]["accepted"] + n
    assert man["runs"][-1]["rows"] == n
    assert man["mark"]["time_jd"] > json.loads(man1)["mark"]["time_jd"]
    assert len(new) >= n   # the harvest read the new day plus the boundary


def test_changed_row_keeps_creation_date_and_gets_new_modification_date(hfc_sample,
                                                                        tmp_path):
    db = writable_copy(hfc_sample, tmp_path / "src.sqlite")
    p = make_params(db, tmp_path)
    run_once(p, "20260101T000000Z")
    st1 = ImportArea.at(tmp_path / "dachs/hfc1ar").state().set_index("granule_uid")
    # an old region re-processed at the source: new NOAA number, later RUN_DATE
    execute(db, "UPDATE ACTIVEREGIONS SET HELIO_AR_NUMBER = 12345, "
                "RUN_DATE = '2026-03-01T00:00:00.000' WHERE ID_AR = 4")
    time.sleep(1.1)   # run times have a resolution of one second
    h2, e2 = run_once(p, "20260301T000000Z")
    assert e2["exported"] == 1 and e2["changed"] == 1 and e2["new"] == 0
    rows = area_rows(p).set_index("granule_uid")
    uid = [u for u in rows.index if rows.loc[u, "feature_name"] == "HFC AR 12345"]
    assert len(uid) == 1
    uid = uid[0]
    st2 = ImportArea.at(tmp_path / "dachs/hfc1ar").state().set_index("granule_uid")
    assert st2.loc[uid, "creation_date"] == st1.loc[uid, "creation_date"]
    assert st2.loc[uid, "modification_date"] > st1.loc[uid, "modification_date"]
    assert pd.Timestamp(st2.loc[uid, "modification_date"]) == pd.Timestamp(
        h2["time"]).tz_localize(None)
    assert st2.loc[uid, "content_hash"] != st1.loc[uid, "content_hash"]
    # the exported row itself carries the first creation date
    assert pd.Timestamp(rows.loc[uid, "creation_date"]) == pd.Timestamp(
        st1.loc[uid, "creation_date"])
    assert pd.Timestamp(rows.loc[uid, "modification_date"]) > pd.Timestamp(
        rows.loc[uid, "creation_date"])
    # every other granule still dated from its first publication
    others = st2.drop(index=uid)
    assert (others["modification_date"] == others["creation_date"]).all()


def test_quarantined_record_is_retried_by_id_and_exported_once_fixed(hfc_sample, tmp_path):
    db = writable_copy(hfc_sample, tmp_path / "src.sqlite")
    good = sqlite3.connect(db).execute("SELECT CC FROM ACTIVEREGIONS WHERE ID_AR = 3"
                                       ).fetchone()[0]
    execute(db, "UPDATE ACTIVEREGIONS SET CC = 'x9' || CC WHERE ID_AR = 3")  # early image
    p = make_params(db, tmp_path)
    h1, e1 = run_once(p, "20260101T000000Z")
    q = runfolder.read_quarantine(Path(p["outputs"]) / "20260101T000000Z/hfc1ar")
    assert "3" in set(q["source_id"])
    man = manifest(tmp_path / "dachs/hfc1ar")
    retry = man["mark"]["retry"]
    assert 3 in retry and sorted(retry) == sorted(int(i) for i in set(q["source_id"]))
    # still bad: read again (by id, below the mark), quarantined again, kept for later
    h2, e2 = run_once(p, "20260102T000000Z")
    assert h2["mark_in"]["retry"] == retry
    assert e2["exported"] == 0 and e2["written"] is False
    # fixed at the source without a new RUN_DATE: the id brings it back
    execute(db, "UPDATE ACTIVEREGIONS SET CC = ? WHERE ID_AR = 3", (good,))
    h3, e3 = run_once(p, "20260103T000000Z")
    assert e3["exported"] == 1 and e3["new"] == 1
    man = manifest(tmp_path / "dachs/hfc1ar")
    assert man["mark"].get("retry", []) == [i for i in retry if i != 3]
    assert man["total_rows"] == h1["counts"]["accepted"] + 1


def test_mark_never_moves_back():
    old = {"time_jd": 2453480.5, "run_date": "2026-01-01T00:00:00.000", "id": 85}
    new = {"time_jd": 2453400.0, "run_date": "2025-01-01T00:00:00", "id": 2}
    m = incremental.merge_marks(old, new)
    assert m == {"time_jd": 2453480.5, "run_date": "2026-01-01T00:00:00.000", "id": 85}


def test_harvest_query_uses_bound_parameters_only(hfc_sample):
    from vespa_curation.services.hfc1ar import SOURCE
    from vespa_curation.sources import open_source
    src = open_source(f"sqlite:///{hfc_sample}")
    mark = incremental.to_source_mark({"time_jd": 2453480.5,
                                       "run_date": "2026-01-01T00:00:00.000",
                                       "id": 85, "retry": [2, 7]})
    sql, args = SOURCE.query(src, mark)
    assert sql.count("?") == len(args) == 5
    assert "2005" not in sql and "2026" not in sql and "85" not in sql
    assert list(args[-2:]) == [2, 7]
    # a source id that is not a number (a record refused for its key) is read again as
    # a bound text, never as SQL text
    sql, args = SOURCE.query(src, {"time": pd.Timestamp("2005-04-20"),
                                   "retry": ["1) OR (1=1"]})
    assert "1=1" not in sql and args[-1] == "1) OR (1=1"


def test_content_hash_ignores_dates_types_and_last_bits(hfc1ar_rows, hfc1ar_service):
    cols = hfc1ar_service.columns
    h = incremental.content_hash(hfc1ar_rows, cols)
    assert len(set(h)) == len(h)
    r2 = hfc1ar_rows.copy()
    r2["creation_date"] = pd.Timestamp("2030-01-01")
    r2["c1min"] = r2["c1min"].astype(object)                 # other dtype
    r2["time_min"] = np.nextafter(r2["time_min"], np.inf)     # last bit
    assert (incremental.content_hash(r2, cols) == h).all()
    r2.loc[3, "s_region"] = r2.loc[3, "s_region"].replace("Polygon", "Polygon ")
    r2.loc[5, "c2max"] += 1e-4
    changed = incremental.content_hash(r2, cols) != h
    assert changed.tolist() == [i in (3, 5) for i in range(len(h))]


def test_content_hash_is_pandas_frame_hash(hfc1ar_rows, hfc1ar_service, tmp_path):
    """The row hash combines the columns' hashes as pandas' hash_pandas_object of a
    frame does (the hashes stored in import areas were made that way), and the
    s_region hash changed_rows hands to the coverage is the coverage's own."""
    from vespa_curation.export.coverage import _region_hash
    rows = hfc1ar_rows.copy()
    rows.loc[2, "s_region"] = None
    cols = hfc1ar_service.columns
    names = sorted(incremental.column_hashes(rows, cols))
    assert len(names) > 10
    # pandas' frame hash of the values as column_hashes casts them
    vals = {}
    for c in names:
        v = incremental.epncore.COLUMNS[c].cast(
            rows[c] if c in rows else pd.Series([None] * len(rows)))
        if v.dtype.kind == "M":
            vals[c] = v.astype("int64").where(v.notna(), -1).to_numpy()
        elif v.dtype.kind in "fiu" or str(v.dtype) == "Int64":
            vals[c] = incremental._quantize(v.to_numpy(dtype=float, na_value=np.nan))
        else:
            t = v.to_numpy(dtype=object).copy()
            t[pd.isna(t)] = ""
            vals[c] = pd.Series(t, dtype=object)
    expected = pd.util.hash_pandas_object(pd.DataFrame(vals).set_axis(range(len(rows))),
                                          index=False).to_numpy(dtype=np.uint64)
    got = incremental.content_hash(rows, cols)
    assert got.tolist() == [f"{x:016x}" for x in expected.tolist()]
    out, _state, counts = incremental.changed_rows(
        hfc1ar_service, rows, incremental.ImportArea(tmp_path, "hfc1ar"))
    assert counts["new"] == len(rows)
    assert out[incremental.REGION_HASH].tolist() == _region_hash(rows["s_region"]).tolist()
    assert out[incremental.REGION_HASH].iloc[2] == 0


def test_column_hashes_of_arrow_strings_are_those_of_python_strings(hfc1ar_rows,
                                                                    hfc1ar_service):
    """Text columns held as Arrow strings (what the export reads from Parquet) hash
    as their Python strings do through the cast: NULL as "", repeated and distinct
    texts, non-ASCII, several Arrow chunks, no row at all."""
    import pyarrow as pa
    rng = np.random.default_rng(5)
    n = 3000
    texts = np.array(["", " ", "Sun", "sun", "Soleil ☉", "é", "a\tb", "x" * 500], dtype=object)
    rows = hfc1ar_rows.sample(n, replace=True, random_state=1).reset_index(drop=True)
    rows["target_name"] = texts[rng.integers(0, len(texts), n)]        # repeated texts
    rows.loc[rng.random(n) < 0.1, "target_name"] = None
    rows["obs_id"] = [f"obs_{k}_ü" for k in range(n)]                     # distinct
    rows.loc[::7, "obs_id"] = None
    rows["feature_name"] = None                                          # all NULL
    cols = hfc1ar_service.columns
    facts = hfc1ar_service.column_facts
    text = [c for c in sorted(incremental.column_hashes(rows, cols, facts))
            if c in rows and (c not in facts or facts[c].type == "Text")]
    assert {"target_name", "obs_id", "s_region", "feature_name"} <= set(text)
    python, arrow = rows.copy(), rows.copy()
    for c in text:
        values = [None if pd.isna(v) else v for v in rows[c]]
        python[c] = pd.Series(values, dtype=object)        # Python strings
        assert incremental.arrow_strings(python[c]) is None
        a = pa.array(values, pa.large_string())            # Arrow strings, two chunks
        arrow[c] = pd.Series(pd.arrays.ArrowStringArray(
            pa.chunked_array([a.slice(0, n // 3), a.slice(n // 3)])))
        assert incremental.arrow_strings(arrow[c]) is not None
    plain = incremental.column_hashes(python, cols, facts)
    got = incremental.column_hashes(arrow, cols, facts)
    for c in plain:
        assert got[c].tolist() == plain[c].tolist(), c
    assert got["target_name"][rows["target_name"].isna().to_numpy()].tolist() == \
        pd.util.hash_array(np.array([""], dtype=object)).tolist() * \
        int(rows["target_name"].isna().sum())
    none = incremental.column_hashes(arrow.head(0), cols, facts)
    assert all(len(v) == 0 for v in none.values())


def test_dachs_db_literal_password_refused():
    with pytest.raises(incremental.MarkError, match="file:PATH"):
        incremental.dsn_text("dbname=gavo user=x password=hunter2")
    with pytest.raises(incremental.MarkError) as e:
        incremental.dsn_text("postgresql://x:hunter2@localhost/gavo")
    assert "hunter2" not in str(e.value)


# -- DaCHS: the mark from the served table; nightly imports read only new files ----------

def _adql_rows(dachs, query: str) -> pd.DataFrame:
    from astropy.table import Table
    import io
    p = dachs.run("adql", query)
    return Table.read(io.BytesIO(p.stdout.encode()), format="votable").to_pandas()


def served(dachs) -> pd.DataFrame:
    """hfc1ar.epn_core as served (through DaCHS's ADQL), dates left out."""
    from vespa_curation.services import get_service
    cols = [c for c in get_service("hfc1ar").columns
            if c not in incremental.DATE_COLUMNS]
    t = _adql_rows(dachs, f"SELECT TOP 100000 {', '.join(cols)} FROM hfc1ar.epn_core")
    for c in t.columns:
        if t[c].dtype == object:
            t[c] = t[c].map(lambda v: v.decode() if isinstance(v, bytes) else v)
    return t.sort_values("granule_uid", ignore_index=True)


def imported_sources(dachs) -> list[str]:
    r = _as_postgres_db("gavo", "SELECT source FROM hfc1ar.imported_sources ORDER BY 1")
    return [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]


def _as_postgres_db(db: str, sql: str) -> subprocess.CompletedProcess:
    import os
    cmd = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r


def dachs_params(dachs, db: Path, base: Path, **more) -> dict:
    return make_params(db, base, dachs_inputs=str(dachs.inputs), server_url=dachs.url,
                       **more)


def fresh_area(dachs) -> None:
    """Start from no import area and no hfc1ar tables in DaCHS's database."""
    fresh_schema(dachs, "hfc1ar")


@pytest.mark.dachs
@pytest.mark.slow
def test_nightly_publish_reads_only_new_files_full_rebuild_reads_all(
        dachs, hfc_sample, tmp_path, monkeypatch):
    from vespa_curation.publish import publish
    monkeypatch.setenv("GAVOSETTINGS", dachs.env["GAVOSETTINGS"])
    fresh_area(dachs)
    db = writable_copy(hfc_sample, tmp_path / "src.sqlite")
    p = dachs_params(dachs, db, tmp_path)
    h1, e1 = run_once(p, "20260101T000000Z")
    publish("hfc1ar", dict(p, tap_check=False))
    assert imported_sources(dachs) == ["hfc1ar/data/20260101T000000Z.vot"]
    n = add_day(db)
    run_once(p, "20260102T000000Z")
    # a curator retracts one granule of the first night
    gone = sorted(served(dachs)["granule_uid"])[0]
    Path(p["decisions"]).write_text(
        "granule_uid,decision,curator,time,reason,override\n"
        f"{gone},reject,test,2026-01-03T00:00:00,wrong,\n", encoding="utf-8")
    h3, e3 = run_once(p, "20260103T000000Z")
    assert e3["retracted"] == 1 and e3["exported"] == 0
    p_imp = dachs.run("imp", "hfc1ar/q")
    log = p_imp.stdout + p_imp.stderr
    # only the two new files were read: the second night's rows, then the retraction
    assert imported_sources(dachs) == ["hfc1ar/data/20260101T000000Z.vot",
                                       "hfc1ar/data/20260102T000000Z.vot",
                                       "hfc1ar/retract/20260103T000000Z.txt"]
    assert f"Rows affected: {n}" in log
    nightly = served(dachs)
    assert len(nightly) == h1["counts"]["accepted"] + n - 1
    assert gone not in set(nightly["granule_uid"])
    # a full rebuild reads every file again and gives the same table
    out = publish("hfc1ar", dict(p, tap_check=False, full=True))
    assert out["full"] and "imp" in out["timings"]
    pd.testing.assert_frame_equal(served(dachs), nightly)
    assert len(imported_sources(dachs)) == 3


@pytest.mark.dachs
def test_mark_read_from_dachs_database(dachs, hfc_sample, tmp_path, pg, monkeypatch):
    """dachs_db (a file holding the DSN) gives max(time_min) of the served table."""
    monkeypatch.setenv("GAVOSETTINGS", dachs.env["GAVOSETTINGS"])
    fresh_area(dachs)
    db = writable_copy(hfc_sample, tmp_path / "src.sqlite")
    dsn = tmp_path / "dachs_db.dsn"
    dsn.write_text(f"host={pg.host} port={pg.port} dbname=gavo user={pg.user} "
                   f"password={pg.password}\n", encoding="utf-8")
    p = dachs_params(dachs, db, tmp_path, dachs_db=f"file:{dsn}")
    svc = get_service("hfc1ar")
    # no table yet: a full harvest
    assert incremental.dachs_max_time(svc, p["dachs_db"]) is None
    run_once(p, "20260101T000000Z")
    dachs.run("imp", "hfc1ar/q")
    _as_postgres_db("gavo", f"GRANT USAGE ON SCHEMA hfc1ar TO {pg.user}; "
                            f"GRANT SELECT ON hfc1ar.epn_core TO {pg.user}")
    served_max = float(_adql_rows(dachs, "SELECT MAX(time_min) AS m FROM hfc1ar.epn_core"
                                  )["m"][0])
    assert incremental.dachs_max_time(svc, p["dachs_db"]) == pytest.approx(served_max)
    # the DB says less than the manifest (a night exported, not yet imported): the
    # harvest starts from the DB's mark
    add_day(db)
    run_once(p, "20260102T000000Z")
    man = manifest(Path(p["dachs_inputs"]) / "hfc1ar")
    assert man["mark"]["time_jd"] > served_max
    mark = incremental.read_mark(p)
    assert mark["time_jd"] == pytest.approx(served_max)
    # the same through ODBC
    odbc = tmp_path / "dachs_db.odbc"
    odbc.write_text(f"DRIVER={{PostgreSQL Unicode}};SERVER={pg.host};PORT={pg.port};"
                    f"DATABASE=gavo;UID={pg.user};PWD={pg.password}", encoding="utf-8")
    assert incremental.dachs_max_time(svc, f"file:{odbc}") == pytest.approx(served_max)
