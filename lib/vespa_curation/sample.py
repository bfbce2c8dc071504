"""Embedded sample sources, built deterministically by the project.

``build_samples(outdir)`` builds every registered sample (a small registry: name →
builder) and returns ``{name: path}``. Registered here:

``hfc``
    ``hfc.sqlite`` — an HFC-schema SQLite database (tables ACTIVEREGIONS, OBSERVATIONS,
    OBSERVATORY, FRC_INFO with every column of FACTS.md, exact names and MySQL types;
    NULL where the sample has nothing) holding synthetic active regions on SoHO/MDI-like
    magnetograms of 2005-04-19..21, and ``hfc_truth.json`` — the true Carrington polygon
    of every ``ID_AR`` (the known answer for geometry tests).

Other services' samples register with :func:`register_sample`; extra HFC tables (e.g.
TYPE_III) are added by passing ``extra_tables`` to :func:`build_hfc_sample` or by
registering a hook with :func:`register_hfc_table`.

The ``SYNTH`` detection code
----------------------------
FRC_INFO.CODE = ``'SYNTH'`` marks the sample's rows. Its conventions are those of
:mod:`vespa_curation.synth`: 0-based pixel centres, x right, y up; ``arcsec = CDELT ×
(pix − CENTER)`` with the observation's own CENTER_X/CENTER_Y; chain codes
counter-clockwise from the leftmost pixel of the lowest row (as SMART); observer in
Earth's direction at the distance given by the apparent radius R_SUN × CDELT.

Columns filled for a region (one row per region per image where it is visible):

- FEAT_X_PIX/FEAT_Y_PIX — the rounded mean pixel of the region's mask (the chain's
  component); FEAT_X_ARCSEC/FEAT_Y_ARCSEC — that mean (unrounded) in arcsec.
- FEAT_CARR_LONG_DEG/FEAT_CARR_LAT_DEG — the true centroid on the sphere of the region's
  visible part; FEAT_HG_LONG_DEG/FEAT_HG_LAT_DEG — the same point in Stonyhurst.
- FEAT_AREA_PIX — pixels in the mask; FEAT_AREA_DEG2 — true area on the sphere of the
  visible part, in square heliographic degrees (1 deg² = (π/180)² R☉² ≈ 147.4 Mm²);
  FEAT_AREA_MM2 — the same in Mm².
- CC_X_PIX, CC_Y_PIX, CC_X_ARCSEC, CC_Y_ARCSEC, CC, CC_LENGTH — the chain code.
- BR_* — bounding rectangle of the mask (HFC's corner order: 0 = (xmin, ymin),
  1 = (xmin, ymax), 2 = (xmax, ymin), 3 = (xmax, ymax)), in pixels, arcsec, Stonyhurst
  and Carrington (NULL for a corner off the disk).
- FEAT_DATE = DATE_OBS; FEAT_DATE_PREV/OBSERVATIONS_ID_T = the previous image;
  HELIO_AR_NUMBER (NOAA-like) for the large regions; RUN_DATE fixed; intensities drawn
  from the seeded generator.

Dates are stored as ISO text ``YYYY-MM-DDTHH:MM:SS.sss`` (how SQLite holds HFC dates).
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.time import Time

from . import synth

__all__ = [
    "HFC_SCHEMA",
    "SYNTH_CODE",
    "build_hfc_sample",
    "build_samples",
    "create_hfc_tables",
    "create_hfc_indexes",
    "insert_rows",
    "register_sample",
    "register_hfc_table",
    "SAMPLES",
]

#: FRC_INFO.CODE of the sample's synthetic detection code.
SYNTH_CODE = "SYNTH"

# Column lists of FACTS.md (HFC MySQL dump, hfc_create.sql), verbatim: "NAME type, ...".
_HFC_COLUMNS = {
    "FRC_INFO": "ID_FRC_INFO int, INSTITUT varchar, CODE varchar, VERSION varchar, "
    "FEATURE_NAME varchar, ENC_MET varchar, PERSON varchar, CONTACT varchar, REFERENCE varchar",
    "OBSERVATORY": "ID_OBSERVATORY int, OBSERVAT varchar, INSTRUME varchar, TELESCOP varchar, "
    "UNITS varchar, WAVEMIN float, WAVEMAX float, WAVENAME varchar, WAVEUNIT varchar, "
    "SPECTRAL_NAME varchar, OBS_TYPE varchar, COMMENT text",
    "OBSERVATIONS": "ID_OBSERVATIONS int, OBSERVATORY_ID int, DATE_OBS datetime, "
    "DATE_END datetime, JDINT int, JDFRAC double, EXP_TIME float, C_ROTATION int, "
    "BSCALE double, BZERO double, BITPIX int, NAXIS1 int, NAXIS2 int, R_SUN double, "
    "CENTER_X double, CENTER_Y double, CDELT1 double, CDELT2 double, QUALITY varchar, "
    "FILENAME varchar, FILE_FORMAT varchar, COMMENT text, LOC_FILENAME varchar, URL text, "
    "QCLK_URL text, QCLK_FNAME varchar",
    "ACTIVEREGIONS": "ID_AR int, FRC_INFO_ID int, OBSERVATIONS_ID int, OBSERVATIONS_ID_T int, "
    "FEAT_DATE datetime, FEAT_DATE_PREV datetime, FEAT_X_ARCSEC double, FEAT_Y_ARCSEC double, "
    "FEAT_X_PIX int, FEAT_Y_PIX int, FEAT_HG_LONG_DEG float, FEAT_HG_LAT_DEG float, "
    "FEAT_CARR_LONG_DEG float, FEAT_CARR_LAT_DEG float, FEAT_AREA_PIX int, "
    "FEAT_AREA_MM2 float, FEAT_AREA_DEG2 float, BR_X0_ARCSEC double, BR_Y0_ARCSEC double, "
    "BR_X1_ARCSEC double, BR_Y1_ARCSEC double, BR_X2_ARCSEC double, BR_Y2_ARCSEC double, "
    "BR_X3_ARCSEC double, BR_Y3_ARCSEC double, BR_HG_LONG0_DEG double, BR_HG_LAT0_DEG double, "
    "BR_HG_LONG1_DEG double, BR_HG_LAT1_DEG double, BR_HG_LONG2_DEG double, "
    "BR_HG_LAT2_DEG double, BR_HG_LONG3_DEG double, BR_HG_LAT3_DEG double, "
    "BR_CARR_LONG0_DEG double, BR_CARR_LAT0_DEG double, BR_CARR_LONG1_DEG double, "
    "BR_CARR_LAT1_DEG double, BR_CARR_LONG2_DEG double, BR_CARR_LAT2_DEG double, "
    "BR_CARR_LONG3_DEG double, BR_CARR_LAT3_DEG double, BR_X0_PIX double, BR_Y0_PIX double, "
    "BR_X1_PIX int, BR_Y1_PIX int, BR_X2_PIX int, BR_Y2_PIX int, BR_X3_PIX double, "
    "BR_Y3_PIX double, FEAT_MAX_INT float, FEAT_MIN_INT float, FEAT_MEAN_INT float, "
    "FEAT_MEAN2QSUN double, FEAT_MAX_BZ float, FEAT_MIN_BZ float, FEAT_MEAN_BZ float, "
    "FEAT_LENGTH_NL float, FEAT_LENGTH_SG float, FEAT_MAX_GRAD float, FEAT_MEAN_GRAD float, "
    "FEAT_MEDIAN_GRAD float, FEAT_RVAL float, FEAT_WLSG float, CC_X_PIX int, CC_Y_PIX int, "
    "CC_X_ARCSEC double, CC_Y_ARCSEC double, CC text, CC_LENGTH int, SNAPSHOT_FN varchar, "
    "SNAPSHOT_PATH varchar, FEAT_FILENAME varchar, HELIO_AR_NUMBER int, RUN_DATE datetime",
    "TYPE_III": "ID_TYPE_III int, FRC_INFO_ID int, OBSERVATIONS_ID int, CC_X_PIX int, "
    "CC_Y_PIX int, CC_X_UTC double, CC_Y_MHZ float, CC text, CC_LENGTH int, SKE_CC_X_PIX int, "
    "SKE_CC_Y_PIX int, SKE_CC_X_UTC double, SKE_CC_Y_MHZ float, SKE_CC text, "
    "SKE_CC_LENGTH int, BR_X0_PIX int, BR_Y0_PIX int, BR_X1_PIX int, BR_Y1_PIX int, "
    "BR_X2_PIX int, BR_Y2_PIX int, BR_X3_PIX int, BR_Y3_PIX int, BR_X0_UTC double, "
    "BR_Y0_MHZ float, BR_X1_UTC double, BR_Y1_MHZ float, BR_X2_UTC double, BR_Y2_MHZ float, "
    "BR_X3_UTC double, BR_Y3_MHZ float, TIME_START datetime, TIME_END datetime, "
    "FEAT_MAX_INT float, FEAT_MEAN_INT float, FIT_A0 float, FIT_A1 float, DRIFT_START float, "
    "DRIFT_END float, LVL_TRUST int, MULTIPLE int, SNAPSHOT_FN varchar, SNAPSHOT_PATH varchar, "
    "FEAT_FILENAME varchar, HELIO_T3_NUMBER int, RUN_DATE datetime",
}

#: HFC tables → [(column, MySQL type)], names and types of FACTS.md (hfc_create.sql).
HFC_SCHEMA: dict[str, list[tuple[str, str]]] = {
    t: [tuple(c.split()) for c in s.split(", ")] for t, s in _HFC_COLUMNS.items()
}
_KEYS = {"FRC_INFO": "ID_FRC_INFO", "OBSERVATORY": "ID_OBSERVATORY",
         "OBSERVATIONS": "ID_OBSERVATIONS", "ACTIVEREGIONS": "ID_AR",
         "TYPE_III": "ID_TYPE_III"}
_SQL_TYPE = {"int": "INT", "varchar": "VARCHAR(255)", "datetime": "DATETIME",
             "double": "DOUBLE", "float": "FLOAT", "text": "TEXT"}
_INDEXES = ["CREATE INDEX IX_OBS_DATE ON OBSERVATIONS (DATE_OBS)",
            "CREATE INDEX IX_AR_OBS ON ACTIVEREGIONS (OBSERVATIONS_ID)"]


def create_hfc_tables(con: sqlite3.Connection, tables=("FRC_INFO", "OBSERVATORY",
                                                      "OBSERVATIONS", "ACTIVEREGIONS"),
                      indexes: bool = True):
    """Create HFC tables (exact FACTS.md column names, MySQL type names) in ``con``.

    With ``indexes=False`` the secondary indexes (OBSERVATIONS.DATE_OBS,
    ACTIVEREGIONS.OBSERVATIONS_ID) are left for :func:`create_hfc_indexes` (faster bulk
    loads).
    """
    for t in tables:
        cols = ", ".join(
            f"{c} {_SQL_TYPE[ty]}" + (" NOT NULL PRIMARY KEY" if c == _KEYS[t] else "")
            for c, ty in HFC_SCHEMA[t])
        con.execute(f"CREATE TABLE {t} ({cols})")
    if indexes:
        create_hfc_indexes(con, tables)


def create_hfc_indexes(con: sqlite3.Connection, tables=("OBSERVATIONS", "ACTIVEREGIONS")):
    """The secondary indexes a harvest uses, on those of ``tables`` that have one."""
    for ix in _INDEXES:
        if ix.split(" ON ")[1].split()[0] in tables:
            con.execute(ix)


def insert_rows(con: sqlite3.Connection, table: str, rows: list[dict]):
    """Insert dict rows; every HFC column of ``table`` is written (missing keys → NULL)."""
    cols = [c for c, _ in HFC_SCHEMA[table]]
    unknown = {k for r in rows for k in r} - set(cols)
    if unknown:
        raise KeyError(f"{table}: not HFC columns: {sorted(unknown)}")
    con.executemany(
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [tuple(_sql_value(r.get(c)) for c in cols) for r in rows])


def _sql_value(v):
    if v is None:
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    return v


def iso(t: Time) -> str:
    """A time as the sample stores HFC dates: ``YYYY-MM-DDTHH:MM:SS.sss`` (UTC)."""
    return Time(t, scale="utc", precision=3).isot


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------
#: Sample builders: name → function(outdir: Path, seed: int) → {name: path}.
SAMPLES: dict[str, Callable[[Path, int], dict[str, Path]]] = {}
#: Extra HFC tables: name → function(con, context) filling it (context: ids of the sample).
HFC_TABLE_HOOKS: dict[str, Callable] = {}


def register_sample(name: str):
    """Decorator registering a sample builder ``f(outdir, seed) -> {name: path}``."""
    def deco(f):
        SAMPLES[name] = f
        return f
    return deco


def register_hfc_table(name: str):
    """Decorator registering a filler ``f(con, context)`` for an extra HFC table (TYPE_III…).

    ``context`` holds ``observatory_id``/``frc_info_id`` maxima and the sample's seed, so
    the filler can add its own OBSERVATORY/FRC_INFO/OBSERVATIONS rows with fresh ids.
    The table itself is created from :data:`HFC_SCHEMA` before the filler runs.
    """
    def deco(f):
        HFC_TABLE_HOOKS[name] = f
        return f
    return deco


def build_samples(outdir, seed: int = 2005) -> dict[str, Path]:
    """Build every registered sample under ``outdir``; ``{name: path}`` of what was written."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name in sorted(SAMPLES):
        out.update(SAMPLES[name](outdir, seed))
    return out


@register_sample("hfc")
def _hfc_sample(outdir: Path, seed: int) -> dict[str, Path]:
    db = build_hfc_sample(outdir / "hfc.sqlite", seed=seed)
    return {"hfc": db, "hfc_truth": db.with_name("hfc_truth.json")}


# ---------------------------------------------------------------------------------------
# The synthetic regions
# ---------------------------------------------------------------------------------------
@dataclass
class TrueRegion:
    """A region fixed in Carrington coordinates, alive between two image indices."""

    name: str
    lon: np.ndarray
    lat: np.ndarray
    holes: list = field(default_factory=list)
    first: int = 0
    last: int = 10**9
    noaa: int | None = None
    kind: str = "plain"


def _blob(rng, lon_c, lat_c, half_lon, half_lat, n=28, rough=0.12):
    """An irregular star-shaped polygon around (lon_c, lat_c), deg (lon not wrapped)."""
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in (2, 3, 5):
        r += rough * rng.normal() * np.cos(k * th + rng.uniform(0, 2 * np.pi)) / k * 2
    r = np.clip(r, 0.55, 1.5)
    return lon_c + half_lon * r * np.cos(th), lat_c + half_lat * r * np.sin(th)


def _rect(lon_c, lat_c, half_lon, half_lat):
    return (lon_c + np.array([-1, 1, 1, -1]) * half_lon,
            lat_c + np.array([-1, -1, 1, 1]) * half_lat)


def _regions(rng) -> list[TrueRegion]:
    """The sample's regions (Carrington deg). Over the nine images the central meridian
    moves from L0 ≈ 30° to 355°, so the east limb (L0 − 90) sweeps 300° → 265° and the
    west limb (L0 + 90) 120° → 85°: each E*/W* region crosses its limb for about a day;
    Carrington 0/360 stays near disk centre."""
    R: list[TrueRegion] = []
    add = R.append
    add(TrueRegion("seam", *_blob(rng, 0.0, -9.0, 6.0, 4.0), noaa=10750, kind="seam"))
    add(TrueRegion("seam_small", *_rect(359.6, 6.0, 1.0, 0.7), first=3, kind="seam"))
    for i, (lc, la, hl, hb, first, last) in enumerate([
            (297.0, 14.0, 7.0, 4.0, 0, 8), (284.0, -12.0, 7.0, 5.0, 2, 8),
            (271.0, 18.0, 6.0, 4.0, 5, 8)]):
        add(TrueRegion(f"east_limb_{i + 1}", *_blob(rng, lc, la, hl, hb), first=first,
                       last=last, noaa=10751 + i, kind="limb_east"))
    for i, (lc, la, hl, hb) in enumerate([(117.0, -15.0, 7.0, 4.5), (104.0, 9.0, 7.0, 4.0),
                                          (91.0, -22.0, 6.5, 4.0)]):
        add(TrueRegion(f"west_limb_{i + 1}", *_blob(rng, lc, la, hl, hb), noaa=10744 + i,
                       kind="limb_west"))
    add(TrueRegion("high_north", *_blob(rng, 15.0, 62.0, 6.0, 3.5), first=0, last=3,
                   kind="high_latitude"))
    add(TrueRegion("high_south", *_blob(rng, 335.0, -66.0, 8.0, 3.0), first=5,
                   kind="high_latitude"))
    add(TrueRegion("tiny_3px", *_rect(22.0, -24.0, 0.18, 0.18), first=0, last=2, kind="tiny"))
    add(TrueRegion("tiny_1px", *_rect(341.0, 17.0, 0.07, 0.07), first=6, kind="tiny"))
    # a plage with a one-pixel-wide arm (a spur in the chain code)
    lon = np.array([25.0, 31.0, 31.0, 31.0 + 3.5, 31.0 + 3.5, 31.0, 31.0, 25.0])
    lat = np.array([4.0, 4.0, 6.93, 6.93, 7.07, 7.07, 10.0, 10.0])
    add(TrueRegion("spur", lon, lat, first=0, last=3, noaa=10748, kind="spur"))
    # a ring around a hole
    lon, lat = _blob(rng, 345.0, -28.0, 5.0, 4.0, rough=0.05)
    hole = _rect(345.0, -28.0, 1.6, 1.3)
    add(TrueRegion("ring", lon, lat, holes=[hole], first=3, last=6, noaa=10749,
                   kind="hole"))
    # a concave (C-shaped) region
    lon = np.array([40, 48, 48, 42, 42, 48, 48, 40], float)
    lat = np.array([-40, -40, -38, -38, -33, -33, -31, -31], float)
    add(TrueRegion("concave", lon, lat, first=6, kind="concave"))
    return R


# ---------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------
_DAYS = ("2005-04-19", "2005-04-20", "2005-04-21")
_SLOTS = (1, 6, 11)  # 96-min MDI slots: 01:36, 09:36, 17:36 (DATE_OBS 57 s earlier)
_MDI_EPOCH = Time("1993-01-01T00:00:00", scale="utc")
_L1 = 1.5e6 * u.km   # SoHO sits at L1, this much sunward of Earth
_CDELT = 1.98581     # arcsec/pixel, as in the real SMART/MDI records


def _images(rng) -> list[dict]:
    from sunpy.coordinates import get_earth
    from sunpy.coordinates.sun import carrington_rotation_number

    out = []
    for day in _DAYS:
        for slot in _SLOTS:
            t = Time(f"{day}T00:00:00", scale="utc") + (slot * 96 * 60 - 57) * u.s
            t = Time(t.isot[:19], scale="utc")  # whole seconds
            dist = get_earth(t).radius.to(u.km) - _L1
            cx = 512.74 + round(float(rng.normal(0, 0.05)), 3)
            cy = 512.47 + round(float(rng.normal(0, 0.05)), 3)
            g = synth.ImageGeometry(t, 1024, 1024, cx, cy, _CDELT, _CDELT, dist)
            dayno = int((Time(day, scale="utc") - _MDI_EPOCH).to_value(u.day) + 0.5)
            fn = f"fd_M_96m_01d.{dayno}.{slot:04d}.fits"
            jd = t.utc.jd1 + t.utc.jd2
            out.append(dict(geometry=g, filename=fn, dayno=dayno, jd=jd,
                            crot=float(carrington_rotation_number(t))))
    return out


def build_hfc_sample(path, seed: int = 2005, extra_tables=None) -> Path:
    """Write the synthetic HFC-schema SQLite sample and its truth file.

    Parameters
    ----------
    path : path-like
        The database to write (replaced atomically; ``hfc_truth.json`` goes beside it).
    seed : int
        Seed of the shape, intensity and centre jitter; the same seed gives the same bytes.
    extra_tables : mapping, optional
        ``{table: filler(con, context)}`` for further HFC tables (default: the hooks
        registered with :func:`register_hfc_table`).

    Returns
    -------
    Path
        ``path``.
    """
    from sunpy.coordinates import HeliographicStonyhurst

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = _images(rng)
    regions = _regions(rng)
    run_date = "2026-01-01T00:00:00.000"

    obs_rows, ar_rows, truth = [], [], {}
    id_ar = 0
    for i, im in enumerate(images):
        g: synth.ImageGeometry = im["geometry"]
        obs = g.observer
        hpc, hgc = g.frames(obs)
        id_obs = i + 1
        date_obs = iso(g.obstime)
        jdint = int(math.floor(im["jd"]))
        obs_rows.append(dict(
            ID_OBSERVATIONS=id_obs, OBSERVATORY_ID=1, DATE_OBS=date_obs, DATE_END=date_obs,
            JDINT=jdint, JDFRAC=im["jd"] - jdint, EXP_TIME=0.0,
            C_ROTATION=int(math.floor(im["crot"])), BSCALE=1.0, BZERO=0.0, BITPIX=-32,
            NAXIS1=g.naxis1, NAXIS2=g.naxis2, R_SUN=g.rsun_pix, CENTER_X=g.center_x,
            CENTER_Y=g.center_y, CDELT1=g.cdelt1, CDELT2=g.cdelt2, FILENAME=im["filename"],
            FILE_FORMAT="FITS", LOC_FILENAME=im["filename"],
            URL=("http://soi.Stanford.EDU/magnetic/mag//fd_M_96m_01d."
                 f"{im['dayno']:06d}/{im['filename']}")))
        found = []
        alive = [reg for reg in regions if reg.first <= i <= reg.last]
        masks = synth.render_regions([(r.lon, r.lat, r.holes) for r in alive], g,
                                     observer=obs)
        o_carr = g.observer_carrington(obs)
        for reg, mask in zip(alive, masks):
            if not mask.any():
                continue
            xs, ys = synth.component_pixels(mask)
            x0, y0, cc = synth.encode_chaincode(mask)
            area = float(synth.region_polygon(reg.lon, reg.lat, reg.holes).area)
            step = float(np.clip(math.sqrt(area) / 150, 0.004, 0.04))
            a_deg2, clon, clat = synth.visible_area_and_centroid(
                reg.lon, reg.lat, g, holes=reg.holes, step=step, observer_carrington=o_carr)
            found.append(((xs, ys), reg, int(mask.sum()), x0, y0, cc, a_deg2, clon, clat))
        if not found:
            continue
        # one SkyCoord per image for the centroids (→ Stonyhurst) and the BR corners
        clon = np.array([f[7] for f in found])
        clat = np.array([f[8] for f in found])
        hg = SkyCoord(clon * u.deg, clat * u.deg, synth.RSUN, frame=hgc).transform_to(
            HeliographicStonyhurst(obstime=g.obstime))
        boxes = []
        for f in found:
            xs, ys = f[0]
            boxes.append((xs.min(), ys.min(), xs.max(), ys.max()))
        boxes = np.array(boxes, float)
        cx = boxes[:, [0, 0, 2, 2]]   # corners 0..3: (xmin,ymin) (xmin,ymax) (xmax,ymin) (xmax,ymax)
        cy = boxes[:, [1, 3, 1, 3]]
        tx, ty = g.pix_to_arcsec(cx, cy)
        cc_hpc = SkyCoord(tx.ravel() * u.arcsec, ty.ravel() * u.arcsec, frame=hpc)
        br_carr = cc_hpc.transform_to(hgc)
        br_hg = br_carr.transform_to(HeliographicStonyhurst(obstime=g.obstime))
        br_cl = br_carr.lon.to_value(u.deg).reshape(cx.shape)
        br_cb = br_carr.lat.to_value(u.deg).reshape(cx.shape)
        br_hl = br_hg.lon.to_value(u.deg).reshape(cx.shape)
        br_hb = br_hg.lat.to_value(u.deg).reshape(cx.shape)
        prev = obs_rows[-2] if i > 0 else None
        for j, ((xs, ys), reg, npix_all, x0, y0, cc, a_deg2, lon_c, lat_c) in enumerate(found):
            id_ar += 1
            mx, my = xs.mean(), ys.mean()
            fx, fy = g.pix_to_arcsec(mx, my)
            ccx, ccy = g.pix_to_arcsec(x0, y0)
            big = reg.noaa is not None
            fmax = float(rng.uniform(300, 2500))
            fmin = -float(rng.uniform(300, 2500))
            row = dict(
                ID_AR=id_ar, FRC_INFO_ID=1, OBSERVATIONS_ID=id_obs,
                OBSERVATIONS_ID_T=prev["ID_OBSERVATIONS"] if prev else None,
                FEAT_DATE=date_obs, FEAT_DATE_PREV=prev["DATE_OBS"] if prev else None,
                FEAT_X_ARCSEC=float(fx), FEAT_Y_ARCSEC=float(fy),
                FEAT_X_PIX=int(round(mx)), FEAT_Y_PIX=int(round(my)),
                FEAT_HG_LONG_DEG=float(hg.lon.to_value(u.deg)[j]),
                FEAT_HG_LAT_DEG=float(hg.lat.to_value(u.deg)[j]),
                FEAT_CARR_LONG_DEG=lon_c, FEAT_CARR_LAT_DEG=lat_c,
                FEAT_AREA_PIX=int(xs.size),
                FEAT_AREA_MM2=a_deg2 * (math.pi / 180 * synth.RSUN.to_value(u.Mm)) ** 2,
                FEAT_AREA_DEG2=a_deg2,
                FEAT_MAX_INT=fmax, FEAT_MIN_INT=fmin,
                FEAT_MEAN_INT=float(rng.normal(0, 40)),
                FEAT_LENGTH_NL=float(rng.uniform(5, 60)) if big else None,
                FEAT_RVAL=float(10 ** rng.uniform(8, 10.5)) if big else None,
                CC_X_PIX=x0, CC_Y_PIX=y0, CC_X_ARCSEC=float(ccx), CC_Y_ARCSEC=float(ccy),
                CC=cc, CC_LENGTH=len(cc),
                SNAPSHOT_FN=f"synth_{g.obstime.strftime('%Y%m%d_%H%M')}.png",
                SNAPSHOT_PATH="outputs/samples/snapshots/",
                FEAT_FILENAME=f"synth_ar_{g.obstime.strftime('%Y%m%d')}.csv",
                HELIO_AR_NUMBER=reg.noaa, RUN_DATE=run_date,
            )
            for k in range(4):
                row[f"BR_X{k}_PIX"] = int(cx[j, k]) if k in (1, 2) else float(cx[j, k])
                row[f"BR_Y{k}_PIX"] = int(cy[j, k]) if k in (1, 2) else float(cy[j, k])
                row[f"BR_X{k}_ARCSEC"] = float(tx[j, k])
                row[f"BR_Y{k}_ARCSEC"] = float(ty[j, k])
                row[f"BR_HG_LONG{k}_DEG"] = float(br_hl[j, k])
                row[f"BR_HG_LAT{k}_DEG"] = float(br_hb[j, k])
                row[f"BR_CARR_LONG{k}_DEG"] = float(br_cl[j, k])
                row[f"BR_CARR_LAT{k}_DEG"] = float(br_cb[j, k])
            ar_rows.append(row)
            r_pix = np.hypot(xs - g.center_x, ys - g.center_y)
            truth[str(id_ar)] = dict(
                name=reg.name, kind=reg.kind, observations_id=id_obs,
                lon=[round(float(v), 6) for v in reg.lon],
                lat=[round(float(v), 6) for v in reg.lat],
                holes=[[[round(float(v), 6) for v in h[0]], [round(float(v), 6) for v in h[1]]]
                       for h in reg.holes],
                visible_area_deg2=round(a_deg2, 6),
                centroid=[round(lon_c, 6), round(lat_c, 6)],
                mask_pixels=npix_all, components_dropped=npix_all - int(xs.size),
                limb=bool(r_pix.max() > g.rsun_pix - 1.5),
                seam=_straddles_seam(reg),
            )
    if len({(r["OBSERVATIONS_ID"], r["FEAT_X_PIX"], r["FEAT_Y_PIX"]) for r in ar_rows}) \
            != len(ar_rows):
        raise RuntimeError("two sample regions share a centroid pixel on one image")

    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # private: safe if run twice at once
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    try:
        create_hfc_tables(con)
        insert_rows(con, "FRC_INFO", [dict(
            ID_FRC_INFO=1, INSTITUT="VESPA curation workbench", CODE=SYNTH_CODE,
            VERSION="1.0", FEATURE_NAME="ACTIVE REGIONS", ENC_MET="CHAIN CODE",
            PERSON="synthetic", CONTACT=None,
            REFERENCE="vespa_curation.sample: synthetic known-answer regions (SYNTH code)")])
        insert_rows(con, "OBSERVATORY", [dict(
            ID_OBSERVATORY=1, OBSERVAT="SoHO", INSTRUME="MDI", TELESCOP="MDI",
            UNITS="Gauss", WAVEMIN=676.8, WAVEMAX=676.8, WAVENAME="Ni I", WAVEUNIT="nm",
            SPECTRAL_NAME="visible", OBS_TYPE="line_of_sight magnetic field",
            COMMENT="96-min fd (synthetic sample)")])
        insert_rows(con, "OBSERVATIONS", obs_rows)
        insert_rows(con, "ACTIVEREGIONS", ar_rows)
        hooks = HFC_TABLE_HOOKS if extra_tables is None else extra_tables
        ctx = dict(seed=seed, observatory_id=1, frc_info_id=1,
                   observations_id=len(obs_rows), id_ar=id_ar)
        for name in sorted(hooks):
            create_hfc_tables(con, (name,))
            hooks[name](con, ctx)
        con.commit()
    finally:
        con.close()
    os.replace(tmp, path)
    truth_path = path.with_name("hfc_truth.json")
    truth_tmp = truth_path.with_name(f"{truth_path.name}.{os.getpid()}.tmp")
    truth_tmp.write_text(json.dumps(dict(
        description="True Carrington polygons (deg; edges straight in unwrapped lon/lat) "
                    "of the regions of hfc.sqlite, keyed by ID_AR; see "
                    "vespa_curation.synth and vespa_curation.sample.",
        seed=seed, regions=truth), indent=1, sort_keys=True) + "\n")
    os.replace(truth_tmp, truth_path)
    return path


def _straddles_seam(reg: TrueRegion) -> bool:
    poly = synth.region_polygon(reg.lon, reg.lat, reg.holes)
    x0, _, x1, _ = poly.bounds
    return bool(math.floor(x0 / 360.0) != math.floor(x1 / 360.0))


# Samples of the other services register themselves (hfc1t3 TYPE_III hook, bass2000,
# nrh, orfees): see vespa_curation.sample_services.
from . import sample_services  # noqa: E402,F401
