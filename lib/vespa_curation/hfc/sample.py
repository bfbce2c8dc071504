"""The embedded HFC sample: a synthetic HFC database, built deterministically.

:func:`build` (the sample builder hfc1ar and hfc1t3 declare) writes

``hfc.sqlite`` — an HFC-schema SQLite database (tables ACTIVEREGIONS, OBSERVATIONS,
    OBSERVATORY, FRC_INFO with every column of HFC's schema, exact names and MySQL types;
    NULL where the sample has nothing) holding synthetic active regions on SoHO/MDI-like
    magnetograms of 2005-04-19..21, and ``hfc_truth.json`` — the true Carrington polygon
    of every ``ID_AR`` (the known answer for geometry tests). Table TYPE_III holds type
    III bursts on Wind/Waves RAD2 spectra (:func:`fill_type_iii`).

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

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord
from astropy.time import Time

from .. import synth
from .schema import create_hfc_tables, insert_rows

#: FRC_INFO.CODE of the sample's synthetic detection code.
SYNTH_CODE = "SYNTH"
#: Type III sample: days, spectrum size (time × frequency pixels), steps (s, kHz).
T3_DAYS = ("2005-04-19", "2005-04-20", "2005-04-21")
T3_NAXIS = (1440, 256)
T3_CDELT = (60.0, 50.0)
T3_WAVEMIN_MHZ = 1.075
#: RUN_DATE of every sample record.
RUN_DATE = "2026-01-01T00:00:00.000"


def iso(t: Time) -> str:
    """A time as the sample stores HFC dates: ``YYYY-MM-DDTHH:MM:SS.sss`` (UTC)."""
    return Time(t, scale="utc", precision=3).isot


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


def build(outdir: Path, seed: int = 2005) -> dict[str, Path]:
    """The sample builder of hfc1ar and hfc1t3: ``hfc.sqlite`` and ``hfc_truth.json``."""
    db = build_hfc_sample(Path(outdir) / "hfc.sqlite", seed=seed)
    return {"hfc": db, "hfc_truth": db.with_name("hfc_truth.json")}


def build_hfc_sample(path, seed: int = 2005, type_iii: bool = True) -> Path:
    """Write the synthetic HFC-schema SQLite sample and its truth file.

    Parameters
    ----------
    path : path-like
        The database to write (replaced atomically; ``hfc_truth.json`` goes beside it).
    seed : int
        Seed of the shape, intensity and centre jitter; the same seed gives the same bytes.
    type_iii : bool
        Also write the TYPE_III table and its observations.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = _images(rng)
    regions = _regions(rng)
    obs_rows, ar_rows, truth = [], [], {}
    for i, im in enumerate(images):
        obs_rows.append(_observation_row(i + 1, im))
        found = _visible_regions(regions, i, im["geometry"])
        rows, known = _region_rows(rng, found, im["geometry"], i + 1, len(ar_rows),
                                   obs_rows[-2] if i > 0 else None)
        ar_rows += rows
        truth.update(known)
    if len({(r["OBSERVATIONS_ID"], r["FEAT_X_PIX"], r["FEAT_Y_PIX"]) for r in ar_rows}) \
            != len(ar_rows):
        raise RuntimeError("two sample regions share a centroid pixel on one image")
    _write_db(path, obs_rows, ar_rows, seed, type_iii)
    truth_path = path.with_name("hfc_truth.json")
    truth_tmp = truth_path.with_name(f"{truth_path.name}.{os.getpid()}.tmp")
    truth_tmp.write_text(json.dumps(dict(
        description="True Carrington polygons (deg; edges straight in unwrapped lon/lat) "
                    "of the regions of hfc.sqlite, keyed by ID_AR; see "
                    "vespa_curation.synth and vespa_curation.hfc.sample.",
        seed=seed, regions=truth), indent=1, sort_keys=True) + "\n")
    os.replace(truth_tmp, truth_path)
    return path


def _observation_row(id_obs: int, im: dict) -> dict:
    g: synth.ImageGeometry = im["geometry"]
    date_obs = iso(g.obstime)
    jdint = int(math.floor(im["jd"]))
    return dict(
        ID_OBSERVATIONS=id_obs, OBSERVATORY_ID=1, DATE_OBS=date_obs, DATE_END=date_obs,
        JDINT=jdint, JDFRAC=im["jd"] - jdint, EXP_TIME=0.0,
        C_ROTATION=int(math.floor(im["crot"])), BSCALE=1.0, BZERO=0.0, BITPIX=-32,
        NAXIS1=g.naxis1, NAXIS2=g.naxis2, R_SUN=g.rsun_pix, CENTER_X=g.center_x,
        CENTER_Y=g.center_y, CDELT1=g.cdelt1, CDELT2=g.cdelt2, FILENAME=im["filename"],
        FILE_FORMAT="FITS", LOC_FILENAME=im["filename"],
        URL=("http://soi.Stanford.EDU/magnetic/mag//fd_M_96m_01d."
             f"{im['dayno']:06d}/{im['filename']}"))


def _visible_regions(regions, i: int, g: "synth.ImageGeometry") -> list[tuple]:
    """The regions alive on image ``i`` with visible pixels: (pixels, region, mask
    pixel count, chain start x, y, chain code, visible area deg², centroid lon, lat)."""
    obs = g.observer
    alive = [reg for reg in regions if reg.first <= i <= reg.last]
    masks = synth.render_regions([(r.lon, r.lat, r.holes) for r in alive], g, observer=obs)
    o_carr = g.observer_carrington(obs)
    found = []
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
    return found


def _corners(found, g: "synth.ImageGeometry") -> dict[str, np.ndarray]:
    """Centroids in Stonyhurst and bounding-rectangle corners (HFC's order: 0 = (xmin,
    ymin), 1 = (xmin, ymax), 2 = (xmax, ymin), 3 = (xmax, ymax)) in pixels, arcsec,
    Stonyhurst and Carrington: one SkyCoord per image."""
    from sunpy.coordinates import HeliographicStonyhurst
    hpc, hgc = g.frames(g.observer)
    stony = HeliographicStonyhurst(obstime=g.obstime)
    clon = np.array([f[7] for f in found])
    clat = np.array([f[8] for f in found])
    hg = SkyCoord(clon * u.deg, clat * u.deg, synth.RSUN, frame=hgc).transform_to(stony)
    boxes = np.array([(f[0][0].min(), f[0][1].min(), f[0][0].max(), f[0][1].max())
                      for f in found], float)
    cx = boxes[:, [0, 0, 2, 2]]
    cy = boxes[:, [1, 3, 1, 3]]
    tx, ty = g.pix_to_arcsec(cx, cy)
    br_carr = SkyCoord(tx.ravel() * u.arcsec, ty.ravel() * u.arcsec,
                       frame=hpc).transform_to(hgc)
    br_hg = br_carr.transform_to(stony)
    return dict(hg_lon=hg.lon.to_value(u.deg), hg_lat=hg.lat.to_value(u.deg), cx=cx, cy=cy,
                tx=tx, ty=ty, cl=br_carr.lon.to_value(u.deg).reshape(cx.shape),
                cb=br_carr.lat.to_value(u.deg).reshape(cx.shape),
                hl=br_hg.lon.to_value(u.deg).reshape(cx.shape),
                hb=br_hg.lat.to_value(u.deg).reshape(cx.shape))


def _region_rows(rng, found, g: "synth.ImageGeometry", id_obs: int, n_before: int,
                 prev: dict | None) -> tuple[list[dict], dict]:
    """ACTIVEREGIONS rows of one image's visible regions, and their truth entries."""
    if not found:
        return [], {}
    k = _corners(found, g)
    date_obs = iso(g.obstime)
    rows, truth = [], {}
    for j, ((xs, ys), reg, npix_all, x0, y0, cc, a_deg2, lon_c, lat_c) in enumerate(found):
        id_ar = n_before + j + 1
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
            FEAT_HG_LONG_DEG=float(k["hg_lon"][j]), FEAT_HG_LAT_DEG=float(k["hg_lat"][j]),
            FEAT_CARR_LONG_DEG=lon_c, FEAT_CARR_LAT_DEG=lat_c, FEAT_AREA_PIX=int(xs.size),
            FEAT_AREA_MM2=a_deg2 * (math.pi / 180 * synth.RSUN.to_value(u.Mm)) ** 2,
            FEAT_AREA_DEG2=a_deg2, FEAT_MAX_INT=fmax, FEAT_MIN_INT=fmin,
            FEAT_MEAN_INT=float(rng.normal(0, 40)),
            FEAT_LENGTH_NL=float(rng.uniform(5, 60)) if big else None,
            FEAT_RVAL=float(10 ** rng.uniform(8, 10.5)) if big else None,
            CC_X_PIX=x0, CC_Y_PIX=y0, CC_X_ARCSEC=float(ccx), CC_Y_ARCSEC=float(ccy),
            CC=cc, CC_LENGTH=len(cc),
            SNAPSHOT_FN=f"synth_{g.obstime.strftime('%Y%m%d_%H%M')}.png",
            SNAPSHOT_PATH="outputs/samples/snapshots/",
            FEAT_FILENAME=f"synth_ar_{g.obstime.strftime('%Y%m%d')}.csv",
            HELIO_AR_NUMBER=reg.noaa, RUN_DATE=RUN_DATE)
        for c in range(4):
            row[f"BR_X{c}_PIX"] = int(k["cx"][j, c]) if c in (1, 2) else float(k["cx"][j, c])
            row[f"BR_Y{c}_PIX"] = int(k["cy"][j, c]) if c in (1, 2) else float(k["cy"][j, c])
            row[f"BR_X{c}_ARCSEC"] = float(k["tx"][j, c])
            row[f"BR_Y{c}_ARCSEC"] = float(k["ty"][j, c])
            row[f"BR_HG_LONG{c}_DEG"] = float(k["hl"][j, c])
            row[f"BR_HG_LAT{c}_DEG"] = float(k["hb"][j, c])
            row[f"BR_CARR_LONG{c}_DEG"] = float(k["cl"][j, c])
            row[f"BR_CARR_LAT{c}_DEG"] = float(k["cb"][j, c])
        rows.append(row)
        r_pix = np.hypot(xs - g.center_x, ys - g.center_y)
        truth[str(id_ar)] = dict(
            name=reg.name, kind=reg.kind, observations_id=id_obs,
            lon=[round(float(v), 6) for v in reg.lon],
            lat=[round(float(v), 6) for v in reg.lat],
            holes=[[[round(float(v), 6) for v in h[0]], [round(float(v), 6) for v in h[1]]]
                   for h in reg.holes],
            visible_area_deg2=round(a_deg2, 6), centroid=[round(lon_c, 6), round(lat_c, 6)],
            mask_pixels=npix_all, components_dropped=npix_all - int(xs.size),
            limb=bool(r_pix.max() > g.rsun_pix - 1.5), seam=_straddles_seam(reg))
    return rows, truth


def _write_db(path: Path, obs_rows, ar_rows, seed: int, type_iii: bool) -> None:
    """The SQLite file (written under a private name, then renamed)."""
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
        if type_iii:
            create_hfc_tables(con, ("TYPE_III",))
            fill_type_iii(con, dict(seed=seed, observatory_id=1, frc_info_id=1,
                                    observations_id=len(obs_rows)))
        con.commit()
    finally:
        con.close()
    os.replace(tmp, path)


def _straddles_seam(reg: TrueRegion) -> bool:
    poly = synth.region_polygon(reg.lon, reg.lat, reg.holes)
    x0, _, x1, _ = poly.bounds
    return bool(math.floor(x0 / 360.0) != math.floor(x1 / 360.0))


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


# -- TYPE_III bursts --------------------------------------------------------------------

def burst_mask(rng, x_start: int, y_lo: int, y_hi: int) -> np.ndarray:
    """A type III burst in a (256, 1440) dynamic spectrum: it starts at high frequency
    and drifts to later times and longer durations at lower frequencies."""
    mask = np.zeros(T3_NAXIS[::-1], dtype=bool)
    d = rng.uniform(0.01, 0.03)
    g = rng.uniform(0.01, 0.04)
    w0 = int(rng.integers(2, 4))
    for y in range(y_lo, y_hi + 1):
        x0 = x_start + int((y_hi - y) * d)
        mask[y, x0:x0 + w0 + int((y_hi - y) * g)] = True
    return mask


def fill_type_iii(con: sqlite3.Connection, ctx: dict) -> None:
    """OBSERVATORY/FRC_INFO/OBSERVATIONS rows of a Wind/Waves RAD2 spectrum per day and
    the TYPE_III bursts on them (module docstring)."""
    rng = np.random.default_rng(ctx["seed"] + 3)
    oid = ctx["observatory_id"] + 1
    fid = ctx["frc_info_id"] + 1
    insert_rows(con, "OBSERVATORY", [dict(
        ID_OBSERVATORY=oid, OBSERVAT="Wind", INSTRUME="Waves", TELESCOP="Rad2",
        UNITS="dB above background", WAVEMIN=T3_WAVEMIN_MHZ, WAVEMAX=13.825,
        WAVENAME="Decametric/Hectometric", WAVEUNIT="MHz", SPECTRAL_NAME="Radio",
        OBS_TYPE="Remote-sensing", COMMENT="synthetic sample")])
    insert_rows(con, "FRC_INFO", [dict(
        ID_FRC_INFO=fid, INSTITUT="OBSPM", CODE="RABAT3", VERSION="2.03",
        FEATURE_NAME="TYPE III", ENC_MET="CHAINCODE", PERSON="synthetic", CONTACT=None,
        REFERENCE="doi:10.1029/2008SW000425")])
    obs, bursts = [], []
    n_id = 0
    for k, day in enumerate(T3_DAYS):
        t0 = pd.Timestamp(day)
        ob = ctx["observations_id"] + 1 + k
        fname = f"{t0:%Y%m%d}.R2"
        obs.append(dict(
            ID_OBSERVATIONS=ob, OBSERVATORY_ID=oid, DATE_OBS=_iso(t0),
            DATE_END=_iso(t0 + pd.Timedelta(seconds=(T3_NAXIS[0] - 1) * T3_CDELT[0])),
            NAXIS1=T3_NAXIS[0], NAXIS2=T3_NAXIS[1], CDELT1=T3_CDELT[0], CDELT2=T3_CDELT[1],
            CENTER_X=T3_NAXIS[0] / 2, CENTER_Y=T3_NAXIS[1] / 2, FILENAME=fname,
            LOC_FILENAME=fname, URL=f"ftp://stereowaves.gsfc.nasa.gov/wind_rad2/rad2a/"
                                    f"{fname}.Z",
            QCLK_FNAME=f"{fname}.jpg", COMMENT="60 sec. average data (synthetic sample)"))
        starts = np.sort(rng.choice(np.arange(60, 1380, 40), 4, replace=False))
        for xs in starts:
            n_id += 1
            y_hi = int(rng.integers(200, 255))
            y_lo = int(rng.integers(5, 80))
            m = burst_mask(rng, int(xs), y_lo, y_hi)
            x0, y0, cc = synth.encode_chaincode(m)
            ys, xs_ = np.nonzero(m)
            hours = lambda x: float(x) * T3_CDELT[0] / 3600.0  # noqa: E731
            mhz = lambda y: T3_WAVEMIN_MHZ + float(y) * T3_CDELT[1] / 1000.0  # noqa: E731
            bx0, bx1, by0, by1 = int(xs_.min()), int(xs_.max()), int(ys.min()), int(ys.max())
            bursts.append(dict(
                ID_TYPE_III=n_id, FRC_INFO_ID=fid, OBSERVATIONS_ID=ob,
                CC_X_PIX=x0, CC_Y_PIX=y0, CC_X_UTC=hours(x0), CC_Y_MHZ=mhz(y0),
                CC=cc, CC_LENGTH=len(cc),
                BR_X0_PIX=bx0, BR_Y0_PIX=by0, BR_X1_PIX=bx0, BR_Y1_PIX=by1,
                BR_X2_PIX=bx1, BR_Y2_PIX=by0, BR_X3_PIX=bx1, BR_Y3_PIX=by1,
                BR_X0_UTC=hours(bx0), BR_Y0_MHZ=mhz(by0), BR_X1_UTC=hours(bx0),
                BR_Y1_MHZ=mhz(by1), BR_X2_UTC=hours(bx1), BR_Y2_MHZ=mhz(by0),
                BR_X3_UTC=hours(bx1), BR_Y3_MHZ=mhz(by1),
                TIME_START=_iso(t0 + pd.Timedelta(seconds=bx0 * T3_CDELT[0])),
                TIME_END=_iso(t0 + pd.Timedelta(seconds=(bx1 + 1) * T3_CDELT[0])),
                FEAT_MAX_INT=round(float(rng.uniform(5, 25)), 2),
                FEAT_MEAN_INT=round(float(rng.uniform(2, 5)), 2),
                FIT_A0=None, FIT_A1=None,
                DRIFT_START=round(float(rng.uniform(-0.5, -0.05)), 3),
                DRIFT_END=round(float(rng.uniform(-0.05, -0.01)), 3),
                LVL_TRUST=int(rng.integers(1, 6)), MULTIPLE=0,
                FEAT_FILENAME=f"rabat3_203_wind_{t0:%Y%m%d}T000000_feat.csv",
                HELIO_T3_NUMBER=None, RUN_DATE=RUN_DATE))
    bursts[-1]["CC_Y_MHZ"] = bursts[-1]["CC_Y_MHZ"] + 2.0   # scale mismatch: refused
    insert_rows(con, "OBSERVATIONS", obs)
    insert_rows(con, "TYPE_III", bursts)
