"""hfc1t3, bass2000, nrh, orfees: each service mapped on its embedded sample validates;
granule_uid forms; refusals with rule and reason; incremental marks; parameters."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from vespa_curation.config import load_config
from vespa_curation.parameter import ParameterError
from vespa_curation.services import get_service, map_chunk
from vespa_curation.sources import SourceError, open_source
from vespa_curation.validate import validate


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from vespa_curation.samples import build_samples
    return build_samples(tmp_path_factory.mktemp("samples"))


def _src(name, samples):
    return {"hfc1t3": f"sqlite:///{samples['hfc']}",
            "bass2000": f"sqlite:///{samples['bass2000']}",
            "nrh": f"ndjson:{samples['nrh']}", "orfees": f"ndjson:{samples['orfees']}"}[name]


def run(name, samples, mark=None, **over):
    svc = get_service(name)
    p = load_config(name, overrides={"source": _src(name, samples), **over})
    src = open_source(p["source"])
    svc.source.check(src)
    recs, rows, quar = [], [], []
    for rec in svc.source.records(src, p, mark):
        r, q = map_chunk(svc, rec, p)
        acc, q2 = validate(r, svc)
        recs.append(rec)
        rows.append(acc)
        quar += [q, q2]
    rows = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return svc, p, rows, pd.concat(quar, ignore_index=True) if quar else pd.DataFrame()


#: service → (accepted rows, {refusal rule: count}, granule_uid pattern)
EXPECT = {
    "hfc1t3": (11, {"tfcat.scale_mismatch": 1}, r"t3_\d{8}_\d{6}_\d+"),
    "bass2000": (9, {"source.bad_date": 1}, r"mh\d{6}\.\d{6}\.(halpha|k3|k1v)"),
    "nrh": (5, {"source.time_order": 1}, r"[A-Za-z0-9]{20}"),
    "orfees": (4, {"source.time_order": 1}, r"[A-Za-z0-9]{20}"),
}


@pytest.mark.parametrize("name", list(EXPECT))
def test_sample_maps_and_validates(name, samples):
    svc, p, rows, quar = run(name, samples)
    n, rules, pattern = EXPECT[name]
    assert len(rows) == n
    assert quar.groupby("rule").size().to_dict() == rules
    assert all(quar["reason"].str.len() > 20)        # a sentence a curator can act on
    assert rows["granule_uid"].is_unique
    assert all(re.fullmatch(pattern, u) for u in rows["granule_uid"])
    assert (rows["service_title"] == name).all()
    for c in ("time_min", "time_max", "spectral_range_min", "spectral_range_max"):
        assert np.isfinite(rows[c].astype(float)).all(), c
    assert (rows["time_min"] <= rows["time_max"]).all()
    assert (rows["spectral_range_min"] < rows["spectral_range_max"]).all()
    assert rows["datalink_url"].str.startswith(f"{p['server_url']}/{name}/q/dl/dlmeta?ID=").all()


def test_hfc1ar_maps_numbers_as_float64_even_when_empty(samples):
    """The rowmaker's numbers are float64 from the start (NaN for NULL), not Python
    objects for the validator and the caster to convert: the geometry's columns, a
    service's empty Float columns, the geometry's qa_ numbers."""
    svc = get_service("hfc1ar")
    p = load_config("hfc1ar", overrides={"source": f"sqlite:///{samples['hfc']}"})
    src = open_source(p["source"])
    rows = pd.concat([map_chunk(svc, rec, p)[0] for rec in svc.source.records(src, p)],
                     ignore_index=True)
    assert len(rows)
    floats = [c for c in rows if c in svc.column_facts
              and svc.column_facts[c].pandas_dtype == "float64"]
    empty = [c for c in floats if rows[c].isna().all()]
    assert {"c1min", "c2max"} <= set(floats) and empty
    qa_numbers = ["qa_area_ratio", "qa_n_vertices", "qa_centroid_lon"]
    for c in floats + qa_numbers:
        assert rows[c].dtype == np.float64, (c, rows[c].dtype)


def test_sample_is_deterministic(tmp_path):
    builders = [get_service(n).sample for n in ("bass2000", "nrh", "orfees")]
    a = [f(tmp_path / "a", 7) for f in builders]
    b = [f(tmp_path / "b", 7) for f in builders]
    for x, y in zip(a, b):
        (k, px), = x.items()
        assert px.read_bytes() == y[k].read_bytes()


def test_hfc1t3_columns(samples):
    svc, p, rows, quar = run("hfc1t3", samples)
    r = rows.set_index("granule_uid")
    assert (rows["dataproduct_type"] == "ci").all()
    assert (rows["spatial_frame_type"] == "none").all()
    assert rows["s_region"].isna().all()
    assert (rows["instrument_host_name"] == "Wind").all()
    assert (rows["instrument_name"] == "Waves#Rad2").all()
    # spectral range: the contour's frequency range (MHz → Hz), inside the receiver band
    assert (rows["spectral_range_min"] >= 1.075e6 - 25e3).all()
    assert (rows["spectral_range_max"] <= 13.825e6 + 25e3).all()
    np.testing.assert_allclose(rows["spectral_range_min"], rows["qa_fmin_mhz"].astype(float) * 1e6)
    assert (rows["spectral_sampling_step_min"] == 50e3).all()
    # the time range is TIME_START..TIME_END of the burst
    uid = "t3_20050419_142000_1"
    assert r.loc[uid, "time_min"] == pytest.approx(2453479.5 + (14 + 20 / 60) / 24, abs=1e-8)
    assert r.loc[uid, "access_url"].endswith(f"/hfc1t3/q/dl/static/{uid}.json")
    assert (rows["access_format"] == "application/json").all()
    bad = quar.iloc[0]
    assert bad["rule"] == "tfcat.scale_mismatch" and "CC_Y_MHZ" in bad["reason"]


def test_hfc1t3_wrong_frequency_unit_refuses_everything(samples):
    svc, p, rows, quar = run("hfc1t3", samples, t3_freq_step_unit="MHz")
    assert len(rows) == 0
    assert set(quar["rule"]) == {"tfcat.scale_mismatch"}
    assert len(quar) == 12


def test_hfc1t3_files_are_one_per_granule(samples):
    import json
    svc, p, rows, quar = run("hfc1t3", samples)
    files = svc.files(rows, p)
    assert sorted(files) == sorted(f"tfcat/{u}.json" for u in rows["granule_uid"])
    fc = json.loads(next(iter(files.values())))
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 1
    assert fc["crs"]["properties"]["time_coords_id"] == "unix"


def test_hfc1t3_incremental_query(samples):
    from vespa_curation.services.hfc1t3 import SOURCE
    src = open_source(_src("hfc1t3", samples))
    sql, args = SOURCE.query(src, {"time": pd.Timestamp("2005-04-21"), "id": 11})
    assert "T.TIME_START >= ?" in sql and "T.ID_TYPE_III > ?" in sql
    assert args == ("2005-04-21T00:00:00.000", 11)
    svc, p, rows, quar = run("hfc1t3", samples, mark={"time": pd.Timestamp("2005-04-21")})
    assert rows["granule_uid"].str.startswith("t3_20050421").all() and len(rows) == 3


def test_bass2000_visible_hemisphere(samples):
    from sunpy.coordinates import sun
    svc, p, rows, quar = run("bass2000", samples)
    assert rows["s_region"].isna().all()
    assert (rows["c2min"] == -90).all() and (rows["c2max"] == 90).all()
    width = (rows["c1max"] - rows["c1min"]) % 360
    np.testing.assert_allclose(width, 180.0)
    t = pd.Timestamp("2005-04-19")
    l0 = sun.L0(t.isoformat()).to_value("deg")
    first = rows[rows["granule_uid"].str.startswith("mh050419")].iloc[0]
    # L0 moves 13.2°/day: within 0.6° of the day's 00:00 value plus the hours
    assert (first["c1min"] + 90) % 360 == pytest.approx(l0 - 13.2 * 8.5 / 24, abs=1.0)
    assert set(rows["filter"]) == {"H-alpha", "CaII K3", "CaII K1v"}
    assert (rows["access_estsize"] > 1800).all() and (rows["access_format"] == "application/fits").all()
    assert rows["thumbnail_url"].str.endswith(".jpg").all()
    # H-alpha (656 nm) is Optical; Ca II K (393 nm) is below base's 400-nm UV edge
    assert dict(zip(rows["filter"], rows["messenger"])) == {
        "H-alpha": "Optical", "CaII K3": "UV", "CaII K1v": "UV"}
    assert (rows["c1min"] > rows["c1max"]).any()        # a range across 0/360 is kept


def test_nrh_and_orfees_from_dump_with_mark(samples):
    svc, p, rows, quar = run("nrh", samples, mark={"time": pd.Timestamp("2012-01-12")})
    assert len(rows) == 2           # 12 and 13 January (14 January is refused)
    assert (rows["time_min"] >= 2455938.5).all()
    svc, p, rows, quar = run("orfees", samples)
    assert (rows["dataproduct_type"] == "ds").all()
    assert (rows["spectral_range_min"] == 144e6).all() and (rows["spectral_range_max"] == 1004e6).all()
    assert rows["thumbnail_url"].str.endswith(".png").all()


def test_document_services_refuse_sql_sources(samples):
    svc = get_service("nrh")
    p = load_config("nrh", overrides={"source": _src("bass2000", samples)})
    with pytest.raises(SourceError, match="nrh reads documents"):
        svc.source.accept(open_source(p["source"]), "nrh")


def test_service_parameters_are_checked():
    with pytest.raises(ParameterError, match="noisy_frequencies"):
        load_config("nrh", overrides={"noisy_frequencies": "150.9, loud"})
    with pytest.raises(ParameterError, match="t3_freq_step_unit"):
        load_config("hfc1t3", overrides={"t3_freq_step_unit": "GHz"})
    for name in ("hfc1t3", "bass2000", "nrh", "orfees"):
        assert load_config(name)["source"].endswith(
            {"hfc1t3": "hfc.sqlite", "bass2000": "bass2000.sqlite", "nrh": "nrh.ndjson",
             "orfees": "orfees.ndjson"}[name])


def test_joined_tables_are_read_by_key_as_joined(samples, tmp_path, monkeypatch):
    """hfc1ar's regions read with their image's, observatory's and code's columns read
    once per joined row by key are the records the joined query gives — dtypes, values,
    NULLs —, in chunks (keys bound a few at a time, rows kept between chunks and
    dropped): a region whose image is missing (NULLs), an image whose observatory is
    missing, a text in a number column, a legacy Latin-1 text. A joined table holding a
    key twice is refused by name."""
    import dataclasses
    import shutil
    import sqlite3
    from vespa_curation.services.hfc1ar import SOURCE
    from vespa_curation.sources import sql as S
    db = tmp_path / "hfc.sqlite"
    shutil.copyfile(samples["hfc"], db)
    con = sqlite3.connect(db)
    ids = [r[0] for r in con.execute("SELECT DISTINCT OBSERVATIONS_ID FROM ACTIVEREGIONS "
                                     "ORDER BY OBSERVATIONS_ID")]
    con.execute("UPDATE ACTIVEREGIONS SET OBSERVATIONS_ID = 99999 WHERE ID_AR = "
                "(SELECT MIN(ID_AR) FROM ACTIVEREGIONS)")
    con.execute("UPDATE OBSERVATIONS SET OBSERVATORY_ID = 777 WHERE ID_OBSERVATIONS = ?",
                (ids[1],))
    con.execute("UPDATE OBSERVATIONS SET R_SUN = 'wide', FILENAME = CAST(? AS TEXT) "
                "WHERE ID_OBSERVATIONS = ?", (b"caf\xe9.fits", ids[-1]))
    con.commit()
    joined = dataclasses.replace(SOURCE, joins=tuple(
        S.Join(j.table, j.alias, f"{j.on} AND 1 = 1") for j in SOURCE.joins))
    assert [j.alias for j in SOURCE.by_key()] == ["O", "Y", "F"] and joined.by_key() == []
    monkeypatch.setattr(S._ByKey, "BATCH", 3)
    monkeypatch.setattr(S._ByKey, "KEEP", 4)
    params = {"chunk_size": 7}
    with open_source(f"sqlite:///{db}") as src:
        want = list(joined.records(src, params))
    with open_source(f"sqlite:///{db}") as src:
        got = list(SOURCE.records(src, params))
    assert [len(c) for c in got] == [len(c) for c in want] and len(got) > 5
    for a, b in zip(got, want):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    every = pd.concat(got, ignore_index=True)
    assert every["DATE_OBS"].isna().sum() == 1 and every["OBSERVAT"].isna().sum() > 1
    assert (every["R_SUN"] == "wide").any() and every["FILENAME"].str.contains("\ufffd").any()
    # an image's key twice: the harvest stops, naming the table and the key
    con.executescript("""CREATE TABLE O2 AS SELECT * FROM OBSERVATIONS;
        DROP TABLE OBSERVATIONS; ALTER TABLE O2 RENAME TO OBSERVATIONS;""")
    con.execute("INSERT INTO OBSERVATIONS SELECT * FROM OBSERVATIONS WHERE "
                "ID_OBSERVATIONS = ?", (ids[3],))
    con.commit()
    with open_source(f"sqlite:///{db}") as src:
        with pytest.raises(SourceError, match=f"OBSERVATIONS has more than one row with "
                                              f"ID_OBSERVATIONS = {ids[3]}"):
            list(SOURCE.records(src, params))


def test_quarantined_records_are_read_again_by_id(samples):
    from vespa_curation.services.bass2000 import SOURCE
    src = open_source(_src("bass2000", samples))
    sql, args = SOURCE.query(src, {"time": pd.Timestamp("2005-04-21"), "retry": [10, 2]})
    assert "ID_IMAGE IN (?, ?)" in sql and args[-2:] == (10, 2)
    sql, args = SOURCE.query(src, {"retry": [10]})      # nothing but retries: everything
    assert "WHERE" not in sql and args == ()
    # documents: the date filter OR the quarantined _ids
    svc, p, rows, quar = run("nrh", samples)
    bad_id = quar["source_id"].iloc[0]
    first = sorted(rows["granule_uid"])[0]
    svc, p, rows2, quar2 = run("nrh", samples, mark={"time": pd.Timestamp("2030-01-01"),
                                                     "retry": [bad_id, first]})
    assert list(rows2["granule_uid"]) == [first] and list(quar2["source_id"]) == [bad_id]
