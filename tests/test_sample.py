"""The embedded HFC sample: schema, determinism, and consistency of every region's columns."""
import json
import re
import sqlite3
from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time
from astropy.utils import iers

from vespa_curation import synth
from vespa_curation.hfc import sample, schema
from vespa_curation.samples import build_samples

iers.conf.auto_download = False
FACTS = Path(__file__).resolve().parents[1] / "docs" / "reference" / "FACTS.md"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("samples")
    paths = build_samples(out)
    con = sqlite3.connect(paths["hfc"])
    tables = {t: pd.read_sql_query(f"SELECT * FROM {t}", con)
              for t in ("ACTIVEREGIONS", "OBSERVATIONS", "OBSERVATORY", "FRC_INFO")}
    # other helpers' hooks may add their own observatories and codes (TYPE_III):
    # keep the SYNTH active regions and their MDI images
    frc = tables["FRC_INFO"]
    synth_id = int(frc.loc[frc.CODE == sample.SYNTH_CODE, "ID_FRC_INFO"].iloc[0])
    ar = tables["ACTIVEREGIONS"]
    tables["ACTIVEREGIONS"] = ar[ar.FRC_INFO_ID == synth_id].reset_index(drop=True)
    obs = tables["OBSERVATIONS"]
    tables["OBSERVATIONS"] = obs[obs.ID_OBSERVATIONS.isin(
        tables["ACTIVEREGIONS"].OBSERVATIONS_ID)].reset_index(drop=True)
    info = {t: con.execute(f"PRAGMA table_info({t})").fetchall() for t in tables}
    con.close()
    truth = json.loads(paths["hfc_truth"].read_text())["regions"]
    return paths, tables, info, truth


def _geometry(o):
    return synth.ImageGeometry.from_rsun(o.DATE_OBS, o.R_SUN, naxis1=o.NAXIS1,
                                         naxis2=o.NAXIS2, center_x=o.CENTER_X,
                                         center_y=o.CENTER_Y, cdelt1=o.CDELT1,
                                         cdelt2=o.CDELT2)


def test_tables_have_every_hfc_column_with_its_type(built):
    _, _, info, _ = built
    for t, cols in info.items():
        assert [(c[1], c[2]) for c in cols] == [
            (n, schema._SQL_TYPE[ty]) for n, ty in schema.HFC_SCHEMA[t]]
    assert {t: len(c) for t, c in schema.HFC_SCHEMA.items()} == {
        "FRC_INFO": 9, "OBSERVATORY": 12, "OBSERVATIONS": 26, "ACTIVEREGIONS": 74,
        "TYPE_III": 46}


def test_schema_is_the_one_of_facts_md():
    txt = FACTS.read_text()
    for t, cols in schema.HFC_SCHEMA.items():
        m = re.search(r"^  - %s \(key \w+\): (.*)$" % t, txt, re.M)
        assert [tuple(c.split()) for c in m.group(1).split(", ")] == cols, t


def test_same_seed_same_bytes(built, tmp_path):
    paths, *_ = built
    again = sample.build_hfc_sample(tmp_path / "hfc.sqlite")
    assert again.read_bytes() == paths["hfc"].read_bytes()
    assert (tmp_path / "hfc_truth.json").read_bytes() == paths["hfc_truth"].read_bytes()


def test_type_iii_table_is_optional(tmp_path):
    sample.build_hfc_sample(tmp_path / "h.sqlite", type_iii=False)
    con = sqlite3.connect(tmp_path / "h.sqlite")
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "TYPE_III" not in names and "ACTIVEREGIONS" in names


def test_every_service_builds_its_sample(built):
    paths, *_ = built
    assert {"hfc", "hfc_truth", "bass2000", "nrh", "orfees", "nda", "expres"} <= set(paths)
    assert all(p.exists() for p in paths.values())


def test_observations_look_like_soho_mdi(built):
    _, t, _, _ = built
    obs, frc = t["OBSERVATIONS"], t["FRC_INFO"]
    assert (frc.CODE == sample.SYNTH_CODE).sum() == 1
    assert set(t["ACTIVEREGIONS"].FRC_INFO_ID) == {1} and set(obs.OBSERVATORY_ID) == {1}
    mdi = t["OBSERVATORY"].set_index("ID_OBSERVATORY").loc[1]
    assert (mdi.OBSERVAT, mdi.INSTRUME) == ("SoHO", "MDI")
    assert len(obs) == 9 and (obs.NAXIS1 == 1024).all() and (obs.NAXIS2 == 1024).all()
    assert obs.R_SUN.between(484, 492).all() and np.allclose(obs.CDELT1, 1.98581)
    for o in obs.itertuples():
        tt = Time(o.DATE_OBS, scale="utc")
        assert abs(o.JDINT + o.JDFRAC - tt.jd) < 1e-8
        g = _geometry(o)
        earth = synth.observer_at(tt).radius
        assert 0.985 < (g.distance / earth).decompose().value < 0.995  # L1, 1.5e6 km sunward
        from sunpy.coordinates.sun import carrington_rotation_number
        assert o.C_ROTATION == int(np.floor(carrington_rotation_number(tt)))
        assert o.FILENAME.startswith("fd_M_96m_01d.") and o.URL.endswith(o.FILENAME)


def test_chains_close_counter_clockwise_and_start_where_the_row_says(built):
    _, t, _, _ = built
    ar = t["ACTIVEREGIONS"].merge(t["OBSERVATIONS"], left_on="OBSERVATIONS_ID",
                                  right_on="ID_OBSERVATIONS")
    for r in ar.itertuples():
        p = synth.decode_chaincode(r.CC_X_PIX, r.CC_Y_PIX, r.CC)
        assert (p[0] == p[-1]).all() and r.CC_LENGTH == len(r.CC)
        if len(r.CC) > 4:
            x, y = p[:, 0].astype(float), p[:, 1].astype(float)
            assert np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]) > 0
        assert r.CC_X_ARCSEC == pytest.approx(r.CDELT1 * (r.CC_X_PIX - r.CENTER_X), abs=1e-9)
        assert r.CC_Y_ARCSEC == pytest.approx(r.CDELT2 * (r.CC_Y_PIX - r.CENTER_Y), abs=1e-9)
        assert r.BR_X0_PIX <= r.CC_X_PIX <= r.BR_X3_PIX
        assert r.CC_Y_PIX == r.BR_Y0_PIX  # SMART's start: the lowest row
        assert r.BR_X0_PIX <= r.FEAT_X_PIX <= r.BR_X3_PIX
        assert r.FEAT_AREA_PIX >= len(set(map(tuple, p)))
    key = ar[["OBSERVATIONS_ID", "FEAT_X_PIX", "FEAT_Y_PIX"]]
    assert not key.duplicated().any()


def test_sample_covers_limb_seam_high_latitude_and_tiny_regions(built):
    _, t, _, truth = built
    ar = t["ACTIVEREGIONS"]
    assert 40 <= len(ar) <= 80
    kinds = pd.Series({int(k): v["kind"] for k, v in truth.items()})
    limb = pd.Series({int(k): v["limb"] for k, v in truth.items()})
    assert (limb & (kinds == "limb_east")).sum() >= 3
    assert (limb & (kinds == "limb_west")).sum() >= 3
    assert (ar.FEAT_CARR_LAT_DEG.abs() > 55).sum() >= 4
    assert (ar.FEAT_AREA_PIX == 1).sum() >= 2 and (ar.FEAT_AREA_PIX.between(2, 12)).sum() >= 2
    assert (kinds == "hole").any() and (kinds == "spur").any()


def test_region_columns_agree_with_skycoord_and_the_truth(built):
    """Chain start, centroid and bounding box, recomputed with SkyCoord, match the row."""
    _, t, _, truth = built
    obs = t["OBSERVATIONS"].set_index("ID_OBSERVATIONS")
    ar = t["ACTIVEREGIONS"]
    seams = 0
    for oid, rows in ar.groupby("OBSERVATIONS_ID"):
        g = _geometry(obs.loc[oid].rename(None).to_frame().T.itertuples().__next__())
        o = g.observer
        hpc, hgc = g.frames(o)
        # every chain pixel of a region lies on the disk within 1 px of its true polygon
        for r in rows.itertuples():
            tr = truth[str(r.ID_AR)]
            p = synth.decode_chaincode(r.CC_X_PIX, r.CC_Y_PIX, r.CC)
            lon, lat = g.pix_to_carrington(p[:, 0], p[:, 1], o)
            assert np.isfinite(lon).all(), r.ID_AR
            poly = synth.region_polygon(tr["lon"], tr["lat"])
            ref = poly.exterior.coords[0][0]
            ulon = ref + (lon - ref + 180) % 360 - 180
            import shapely
            d = shapely.distance(poly, shapely.points(ulon, lat))
            pix_deg = np.degrees(g.cdelt1 / g.rsun_arcsec)  # one pixel at disk centre
            mu = np.sqrt(np.clip(1 - ((p[:, 0] - g.center_x) ** 2 + (p[:, 1] - g.center_y) ** 2)
                                 / g.rsun_pix ** 2, 1e-6, 1))
            assert (d <= 1.5 * pix_deg / mu).all(), r.ID_AR
            if tr["seam"] and (lon > 355).any() and (lon < 5).any():
                seams += 1
            # centroid = the truth's visible centroid; Stonyhurst = its transform
            assert (r.FEAT_CARR_LONG_DEG, r.FEAT_CARR_LAT_DEG) == pytest.approx(
                tuple(tr["centroid"]), abs=1e-5)
            c = SkyCoord(r.FEAT_CARR_LONG_DEG * u.deg, r.FEAT_CARR_LAT_DEG * u.deg,
                         synth.RSUN, frame=hgc)
            from sunpy.coordinates import HeliographicStonyhurst
            hg = c.transform_to(HeliographicStonyhurst(obstime=g.obstime))
            assert r.FEAT_HG_LONG_DEG == pytest.approx(hg.lon.to_value(u.deg), abs=1e-4)
            # bounding-rectangle corner 3 (xmax, ymax) through SkyCoord
            if np.isfinite(r.BR_CARR_LONG3_DEG):
                lo, la = g.pix_to_carrington(r.BR_X3_PIX, r.BR_Y3_PIX, o)
                assert (r.BR_CARR_LONG3_DEG, r.BR_CARR_LAT3_DEG) == pytest.approx(
                    (float(lo), float(la)), abs=1e-6)
            assert r.BR_X3_ARCSEC == pytest.approx(g.cdelt1 * (r.BR_X3_PIX - g.center_x))
    assert seams >= 6


def test_area_in_square_degrees_matches_the_deprojected_pixels(built):
    """Away from the limb, FEAT_AREA_DEG2 ≈ Σ pixel area / μ in heliographic deg²."""
    _, t, _, truth = built
    ar = t["ACTIVEREGIONS"].merge(t["OBSERVATIONS"], left_on="OBSERVATIONS_ID",
                                  right_on="ID_OBSERVATIONS")
    checked = 0
    for r in ar.itertuples():
        tr = truth[str(r.ID_AR)]
        rho2 = ((r.FEAT_X_PIX - r.CENTER_X) ** 2 + (r.FEAT_Y_PIX - r.CENTER_Y) ** 2) / r.R_SUN ** 2
        mu = np.sqrt(1 - rho2)
        if tr["limb"] or r.FEAT_AREA_PIX < 300 or tr["holes"] or mu < 0.75:
            continue
        # μ at the centroid pixel is enough for a 6 % check on regions of a few degrees
        px_deg2 = np.degrees(1 / r.R_SUN) ** 2
        assert r.FEAT_AREA_PIX * px_deg2 / mu == pytest.approx(r.FEAT_AREA_DEG2, rel=0.06), \
            r.ID_AR
        assert r.FEAT_AREA_MM2 == pytest.approx(r.FEAT_AREA_DEG2 * 147.43, rel=1e-3)
        checked += 1
    assert checked >= 10


def test_sqlite_frames_are_those_from_records_builds(built, tmp_path):
    """SQLite's rows become the DataFrame pandas' from_records makes of them — dtypes,
    values and NULLs —, whether Arrow builds a column (numbers, texts, NULLs) or
    from_records does (a text in a numeric column, bytes, integers past 64 bits, a
    column of NULLs only); on every table of the samples, read in chunks."""
    from vespa_curation.sources.sql import _sqlite_columns, sqlite_source

    def _sqlite_frame(rows, names):
        return _sqlite_columns(list(zip(*rows)), names, len(rows))
    names = ["I", "F", "IN", "FN", "S", "SN", "NUL", "MIX", "B", "BIG", "IF"]
    rows = [(k, k * 0.5, None if k % 3 else k, None if k % 4 else k / 3,
             f"t{k}", None if k % 5 else f"é{k}", None,
             "x" if k == 7 else k, b"\x00\x01" if k % 2 else None,
             2 ** 70 if k == 3 else k, k if k % 2 else k + 0.25) for k in range(40)]
    want = pd.DataFrame.from_records(rows, columns=names)
    pd.testing.assert_frame_equal(_sqlite_frame(rows, names), want, check_exact=True)
    assert _sqlite_frame([], names).equals(pd.DataFrame.from_records([], columns=names))
    dup = ["A", "A"]
    pd.testing.assert_frame_equal(_sqlite_frame([(1, "x")], dup),
                                  pd.DataFrame.from_records([(1, "x")], columns=dup))
    # a table of SQLite's dynamic types (a few odd values among thousands) and the
    # samples' tables, through the source's query, in chunks
    rng = np.random.default_rng(8)
    odd = tmp_path / "odd.sqlite"
    con = sqlite3.connect(odd)
    con.execute("CREATE TABLE T (I INTEGER, F REAL, S TEXT, B BLOB)")
    vals = [(int(i), float(f), f"s{i}", None) for i, f in
            zip(rng.integers(-10**12, 10**12, 5000), rng.normal(0, 1e3, 5000))]
    for k, v in ((101, ("text", 1.0, "a", None)), (2300, (5, "NaN?", None, None)),
                 (4000, (None, None, 7, b"\x01")), (4999, (2.5, 3, "z", None))):
        vals[k] = v
    con.executemany("INSERT INTO T VALUES (?, ?, ?, ?)", vals)
    con.commit()
    con.close()
    n = 0
    for db in [odd] + sorted(Path(p) for p in build_samples(tmp_path).values()
                             if str(p).endswith(".sqlite")):
        with sqlite_source(db) as src:
            for table in sorted(src.tables()):
                sql = f"SELECT * FROM {table}"
                got = list(src.query(sql, chunksize=700))
                cur = src.conn.execute(sql)
                cols = [d[0].upper() for d in cur.description]
                for frame in got:
                    want = pd.DataFrame.from_records(cur.fetchmany(700), columns=cols)
                    pd.testing.assert_frame_equal(frame, want, check_exact=True)
                    n += len(frame)
    assert n > 5000
