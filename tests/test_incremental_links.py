"""Nightly publishes of a service with datalinks (bass2000) on the real DaCHS: the links
import reads only the links files it has not imported yet, a granule exported again
keeps only its new links, a retraction deletes the retracted granule's links, and a full
rebuild reads every file and gives the same table (issue 6)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from conftest import fresh_schema
from test_incremental import _as_postgres_db, writable_copy
from vespa_curation.config import load_config

pytestmark = [pytest.mark.dachs, pytest.mark.slow]

SCHEMA = "bass2000"
LINK_COLS = ["granule_uid", "access_url", "semantics", "content_type", "description",
             "content_length"]


@pytest.fixture(scope="module")
def bass_sample(tmp_path_factory) -> Path:
    from vespa_curation.services.bass2000.sample import build_sample
    return build_sample(tmp_path_factory.mktemp("bass"), 2005)["bass2000"]


def add_day(db: Path, modified: str) -> int:
    """The last day's images again one day later, under new ids and file names."""
    con = sqlite3.connect(db)
    try:
        img = pd.read_sql_query("SELECT * FROM IMAGES", con)
        t = pd.to_datetime(img["DATE_OBS"], errors="coerce")
        day = img[t.dt.normalize() == t.max().normalize()].copy()
        for c in ("DATE_OBS", "DATE_END"):
            v = pd.to_datetime(day[c], errors="coerce") + pd.Timedelta(days=1)
            day[c] = v.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3]
        day["FILENAME"] = "n" + day["FILENAME"]
        day["ID_IMAGE"] = int(img["ID_IMAGE"].max()) + 1 + pd.RangeIndex(len(day))
        day["MODIFIED"] = modified
        day.to_sql("IMAGES", con, if_exists="append", index=False)
        con.commit()
        return len(day)
    finally:
        con.close()


def served_links() -> pd.DataFrame:
    r = _as_postgres_db("gavo", "COPY (SELECT " + ", ".join(LINK_COLS)
                        + f" FROM {SCHEMA}.links) TO STDOUT WITH CSV HEADER")
    import io
    return _norm(pd.read_csv(io.StringIO(r.stdout), dtype=str, keep_default_na=False))


def _norm(t: pd.DataFrame) -> pd.DataFrame:
    t = t[LINK_COLS].astype(object).where(t[LINK_COLS].notna(), "")
    t = t.map(lambda v: v.decode() if isinstance(v, bytes) else str(v))
    t["content_length"] = t["content_length"].str.replace(r"\.0$", "", regex=True) \
        .replace({"<NA>": "", "nan": "", "--": ""})
    return t.sort_values(["granule_uid", "semantics", "access_url"], ignore_index=True)


def imported() -> dict[str, str]:
    """imported_sources: file → when DaCHS imported it (re-reading a file updates it)."""
    r = _as_postgres_db("gavo", f"SELECT source, imported FROM {SCHEMA}.imported_sources")
    return dict(ln.split("|") for ln in r.stdout.splitlines() if ln.strip())


def links_by_file() -> dict[str, int]:
    r = _as_postgres_db("gavo", f"SELECT source_file, count(*) FROM {SCHEMA}.links "
                        "GROUP BY 1")
    return {a: int(b) for a, b in (ln.split("|") for ln in r.stdout.splitlines()
                                   if ln.strip())}


def fresh(dachs) -> None:
    fresh_schema(dachs, SCHEMA)


def bass_params(db: Path, base: Path, **more) -> dict:
    over = {"source": f"sqlite:///{db}", "dachs_inputs": str(base / "dachs"),
            "outputs": str(base / "runs"), "workers": 1,
            "decisions": str(base / "decisions.csv")}
    over.update(more)
    return load_config(SCHEMA, overrides=over)


def expected_links(db: Path, base: Path, decisions: str, server_url: str) -> pd.DataFrame:
    """The links of a clean full export of the source as it is now (own import area,
    the same curator decisions), not through DaCHS."""
    from vespa_curation.export import read_votable
    p = bass_params(db, base, decisions=decisions, server_url=server_url)
    run_once_as(p, "20990101T000000Z")
    t = read_votable(base / "dachs" / SCHEMA / "links" / "20990101T000000Z.vot")
    return _norm(t.to_pandas() if hasattr(t, "to_pandas") else t)


def run_once_as(params: dict, run_id: str):
    from vespa_curation import export, harvest
    folder = Path(params["outputs"]) / run_id / SCHEMA
    return harvest.run(params, folder), export.run(params, folder)


def test_nightly_links_read_only_new_files_replaced_and_retracted(
        dachs, bass_sample, tmp_path, monkeypatch):
    from vespa_curation.publish import publish
    monkeypatch.setenv("GAVOSETTINGS", dachs.env["GAVOSETTINGS"])
    fresh(dachs)
    db = writable_copy(bass_sample, tmp_path / "src.sqlite")
    p = bass_params(db, tmp_path, dachs_inputs=str(dachs.inputs), server_url=dachs.url)
    run_once_as(p, "20260101T000000Z")
    publish(SCHEMA, dict(p, tap_check=False))
    first = f"{SCHEMA}/links/20260101T000000Z.vot"
    seen1 = imported()
    assert first in seen1 and len(served_links()) == links_by_file()[first]

    # night 2: a new day of images, and one image of night 1 changed (its thumbnail
    # moved): exported again with all its links, the old thumbnail link must go
    n = add_day(db, "2026-01-02T00:00:00.000")
    con = sqlite3.connect(db)
    old_thumb, = con.execute("SELECT THUMBNAIL_URL FROM IMAGES WHERE ID_IMAGE = 1").fetchone()
    con.execute("UPDATE IMAGES SET THUMBNAIL_URL = 'https://bass2000.obspm.fr/moved.jpg', "
                "MODIFIED = '2026-01-02T00:00:00.000' WHERE ID_IMAGE = 1")
    con.commit()
    con.close()
    _, e2 = run_once_as(p, "20260102T000000Z")
    assert e2["new"] == n and e2["changed"] == 1
    publish(SCHEMA, dict(p, tap_check=False))
    second = f"{SCHEMA}/links/20260102T000000Z.vot"
    seen2 = imported()
    # the second import read only the new files: night 1's file keeps its import time
    assert seen2[first] == seen1[first]
    assert set(seen2) - set(seen1) == {second, f"{SCHEMA}/data/20260102T000000Z.vot"}
    links = served_links()
    assert not links.duplicated(["granule_uid", "access_url", "semantics"]).any()
    assert old_thumb not in set(links["access_url"])
    assert "https://bass2000.obspm.fr/moved.jpg" in set(links["access_url"])
    # night 1's file still holds the rows of the granules not exported again
    assert links_by_file()[second] + links_by_file()[first] == len(links)
    pd.testing.assert_frame_equal(
        links, expected_links(db, tmp_path / "clean2", p["decisions"], dachs.url))

    # night 3: a curator retracts a granule of night 1; its links go with it
    gone = sorted(links.loc[links["access_url"].str.contains("/K3/"), "granule_uid"])[0]
    Path(p["decisions"]).write_text(
        "granule_uid,decision,curator,time,reason,override\n"
        f"{gone},reject,test,2026-01-03T00:00:00,wrong,\n", encoding="utf-8")
    _, e3 = run_once_as(p, "20260103T000000Z")
    assert e3["retracted"] == 1
    publish(SCHEMA, dict(p, tap_check=False))
    nightly = served_links()
    assert gone not in set(nightly["granule_uid"])
    assert imported()[second] == seen2[second]
    want = expected_links(db, tmp_path / "clean3", p["decisions"], dachs.url)
    pd.testing.assert_frame_equal(nightly, want)

    # a full rebuild reads every file again (links before the retraction) and gives the
    # same table
    publish(SCHEMA, dict(p, tap_check=False, full=True))
    pd.testing.assert_frame_equal(served_links(), want)
    assert imported()[first] != seen1[first]
