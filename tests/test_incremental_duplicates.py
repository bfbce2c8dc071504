"""Uniqueness over a whole harvest (issue 6, duplicate ID_AR): records unique within
their chunk but not within the harvest are refused by
:func:`vespa_curation.incremental.refuse_duplicates`, both of them, with their reason."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from test_incremental import drop_ar_primary_key, hfc_sample, make_params, \
    writable_copy  # noqa: F401
from vespa_curation import harvest, incremental, runfolder
from vespa_curation.incremental import refuse_duplicates  # the real one (fixtures patch it)
from vespa_curation.services import get_service


def _copy_image(con, obs_id: int, *, hours: int, ids_from: int,
                only_ar: int | None = None) -> list[int]:
    """A new image (OBSERVATIONS row, highest id: harvested last) copying ``obs_id``,
    ``hours`` later, with copies of its regions (or of ``only_ar``) under ids from
    ``ids_from``; returns the new ID_ARs."""
    obs = pd.read_sql_query("SELECT * FROM OBSERVATIONS WHERE ID_OBSERVATIONS = ?", con,
                            params=(obs_id,))
    new_obs = int(con.execute("SELECT MAX(ID_OBSERVATIONS) FROM OBSERVATIONS")
                  .fetchone()[0]) + 1
    obs["ID_OBSERVATIONS"] = new_obs
    for c in ("DATE_OBS", "DATE_END"):
        t = pd.to_datetime(obs[c]) + pd.Timedelta(hours=hours)
        obs[c] = t.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3]
    ar = pd.read_sql_query("SELECT * FROM ACTIVEREGIONS WHERE OBSERVATIONS_ID = ?", con,
                           params=(obs_id,))
    if only_ar is not None:
        ar = ar[ar["ID_AR"] == only_ar]
    ar["OBSERVATIONS_ID"] = new_obs
    ar["ID_AR"] = range(ids_from, ids_from + len(ar))
    obs.to_sql("OBSERVATIONS", con, if_exists="append", index=False)
    ar.to_sql("ACTIVEREGIONS", con, if_exists="append", index=False)
    return list(ar["ID_AR"])


@pytest.fixture
def duplicated_db(hfc_sample, tmp_path):  # noqa: F811
    """The HFC sample (without ACTIVEREGIONS' primary key, as a faulty source may be)
    with: one region's ID_AR carried again by a region of a new image (another chunk);
    a third record of an ID_AR that a chunk already refused twice; and a new image taken
    at the same second as an existing one, whose region gets the same granule_uid."""
    db = writable_copy(hfc_sample, tmp_path / "src.sqlite")
    con = sqlite3.connect(db)
    drop_ar_primary_key(con)
    ar = pd.read_sql_query("SELECT ID_AR, OBSERVATIONS_ID FROM ACTIVEREGIONS "
                           "ORDER BY OBSERVATIONS_ID, ID_AR", con)
    per_image = ar.groupby("OBSERVATIONS_ID")["ID_AR"].apply(list)
    obs = list(per_image.index)
    top = int(ar["ID_AR"].max()) + 100
    # a: a region of the first image, its ID_AR carried again by a region of a new image
    a = int(per_image[obs[0]][0])
    new_a, = _copy_image(con, obs[0], hours=1, ids_from=top, only_ar=a)
    con.execute("UPDATE ACTIVEREGIONS SET ID_AR = ? WHERE ID_AR = ?", (a, new_a))
    # b: two regions of a middle image under one ID_AR (refused by their chunk), and a
    # third record under it on a new image
    b1, b2 = per_image[obs[4]][:2]
    con.execute("UPDATE ACTIVEREGIONS SET ID_AR = ? WHERE ID_AR = ?", (b1, b2))
    new_b, = _copy_image(con, obs[0], hours=2, ids_from=top + 10, only_ar=a)
    con.execute("UPDATE ACTIVEREGIONS SET ID_AR = ? WHERE ID_AR = ?", (b1, new_b))
    # c: a new image taken at the same second as the second one, with a copy of its
    # region c: another ID_AR, the same granule_uid
    c = int(per_image[obs[1]][0])
    same_uid, = _copy_image(con, obs[1], hours=0, ids_from=top + 20, only_ar=c)
    con.commit()
    con.close()
    return {"db": db, "a": a, "b": b1, "c": c, "same_uid": same_uid}


@pytest.fixture
def harvested(duplicated_db, tmp_path, monkeypatch):
    """The harvest as the chunk-wise checks leave it (harvest.run's own call of
    refuse_duplicates switched off, so the function is tested on its own here)."""
    from vespa_curation.quarantine import quarantine_frame
    monkeypatch.setattr(incremental, "refuse_duplicates",
                        lambda *a, **k: quarantine_frame([], [], "map", [], []))
    p = make_params(duplicated_db["db"], tmp_path, chunk_size=10)
    run = tmp_path / "runs" / "r1" / "hfc1ar"
    h = harvest.run(p, run)
    return dict(duplicated_db, run=run, harvest=h)


def test_the_harvest_refuses_them_itself(duplicated_db, tmp_path):
    """harvest.run runs the whole-harvest check: the rows leave none of them, the
    quarantine and the report list them, the counts agree."""
    run = tmp_path / "runs" / "r2" / "hfc1ar"
    h = harvest.run(make_params(duplicated_db["db"], tmp_path, chunk_size=10), run)
    rows = pd.read_parquet(run / runfolder.ROWS)
    q = runfolder.read_quarantine(run)
    a, b = str(duplicated_db["a"]), str(duplicated_db["b"])
    assert not rows["qa_source_id"].astype(str).isin([a, b]).any()
    assert rows["granule_uid"].is_unique and rows["qa_source_id"].is_unique
    assert (q.loc[q["source_id"] == a, "rule"] == "source.duplicate_id").sum() == 2
    assert (q["rule"] == "epn.granule_uid").sum() == 2
    assert h["counts"]["accepted"] == len(rows)
    assert h["by_rule"]["source.duplicate_id"] >= 5


def test_duplicates_across_chunks_are_refused_both(harvested):
    svc = get_service("hfc1ar")
    run = harvested["run"]
    rows_path = run / runfolder.ROWS
    before = pd.read_parquet(rows_path)
    sid = before["qa_source_id"].astype(str)
    a, b, c = (str(harvested[k]) for k in ("a", "b", "c"))
    # what the chunk-wise checks let through: both records of ID_AR a (two chunks), the
    # third record of b, the two rows sharing c's granule_uid
    assert (sid == a).sum() == 2 and (sid == b).sum() == 1
    uid_c = before.loc[sid == c, "granule_uid"].iloc[0]
    assert (before["granule_uid"] == uid_c).sum() == 2
    quarantine = runfolder.read_quarantine(run)
    assert (quarantine.loc[quarantine["source_id"] == b, "rule"]
            == "source.duplicate_id").sum() == 2

    q = refuse_duplicates(svc, rows_path, quarantine)

    after = pd.read_parquet(rows_path)
    assert len(after) == len(before) - len(q) == len(before) - 5
    assert not after["qa_source_id"].astype(str).isin([a, b]).any()
    assert not (after["granule_uid"] == uid_c).any()
    assert after["granule_uid"].is_unique and after["qa_source_id"].is_unique
    # every other row untouched
    kept = before[~sid.isin([a, b]) & (before["granule_uid"] != uid_c)]
    pd.testing.assert_frame_equal(after.reset_index(drop=True),
                                  kept.reset_index(drop=True))
    by = q.set_index(["source_id", "rule"])
    assert len(by.loc[(a, "source.duplicate_id")]) == 2
    assert "ID_AR=" + a + " names 2 records of this harvest" in q["reason"].iloc[0]
    qb = q[q["source_id"] == b]
    assert list(qb["rule"]) == ["source.duplicate_id"]
    assert "names 3 records" in qb["reason"].iloc[0]
    assert set(q.loc[q["rule"] == "epn.granule_uid", "granule_uid"]) == {uid_c}
    assert set(q.loc[q["rule"] == "epn.granule_uid", "source_id"]) == \
        {c, str(harvested["same_uid"])}
    # a second pass finds nothing and leaves the file as it is
    mtime = rows_path.stat().st_mtime_ns
    assert len(refuse_duplicates(svc, rows_path, quarantine)) == 0
    assert rows_path.stat().st_mtime_ns == mtime


def test_no_duplicates_nothing_refused(hfc_sample, tmp_path):  # noqa: F811
    db = writable_copy(hfc_sample, tmp_path / "src.sqlite")
    run = tmp_path / "runs" / "r1" / "hfc1ar"
    harvest.run(make_params(db, tmp_path, chunk_size=10), run)
    before = Path(run / runfolder.ROWS).read_bytes()
    q = refuse_duplicates(get_service("hfc1ar"), run / runfolder.ROWS,
                                      runfolder.read_quarantine(run))
    assert len(q) == 0 and list(q.columns) == ["granule_uid", "source_id", "stage",
                                               "rule", "reason"]
    assert (run / runfolder.ROWS).read_bytes() == before
