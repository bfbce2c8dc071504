#!/usr/bin/env python
"""Build a synthetic HFC-schema SQLite database at the real service's scale.

1.15 million active regions (the live hfc1ar row count) on tens of thousands of
SoHO/MDI-like 96-min magnetograms (1996-05 → 2006-10, 15 a day), chains of about 150
digits, about 10 % of the regions crossing the limb. Built in minutes:

1. A few hundred *template* regions are rendered with the real renderer
   (:func:`vespa_curation.synth.render_regions`, sunpy SkyCoord) and chain-coded
   (:func:`vespa_curation.synth.encode_chaincode`): 36 interior slots × 8 shapes on a
   reference image whose disk is the smallest of the period (so they stay on every
   disk), and 4 limb slots × 8 shapes rendered once per R_SUN bin (1.5 px wide), each
   on the smallest disk of its bin (so its limb pixels stay on the disk of every image
   of the bin and touch its limb within 1.5 px).
2. Every image draws 20 of the 40 slots (no two regions of one image overlap) and one
   shape per slot; its pixels (chain, bounding box, mean pixel) are reused as they are.
3. The image-dependent columns are recomputed vectorized for each image's own geometry
   (observer in Earth's direction at SoHO's distance, L0/B0 from sunpy on a daily grid,
   interpolated): CC/FEAT/BR arcsec from CDELT × (pix − CENTER); FEAT_CARR/FEAT_HG and
   BR_CARR/BR_HG through a closed-form line-of-sight ∩ sphere transform (checked against
   SkyCoord at the end). FEAT_AREA_DEG2 is the template's true visible area.

Detection code ``SYNTH`` (FRC_INFO), conventions of :mod:`vespa_curation.synth`.

Usage::

    .venv/bin/python benchmarks/make_bench_db.py [--rows 1150000] [--per-image 20]
        [--out outputs/bench/hfc_bench.sqlite] [--seed 1]

Prints the build time per phase, the file size and the counts (images, regions, limb
share, chain lengths).
"""
from __future__ import annotations

import argparse
import math
import os
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

N_SLOTS_IN = 36
N_SLOTS_LIMB = 4
N_SHAPES = 8
CDELT = 1.98581
NAXIS = 1024
CENTER = (512.74, 512.47)
L1_KM = 1.5e6
RSUN_KM = 695_700.0
CADENCE_MIN = 96
PER_DAY = 15
CARRINGTON_RATE_DEG_S = 14.1844 / 86400.0   # sidereal Carrington rate
C_KM_S = 299_792.458
START = np.datetime64("1996-05-01T00:00:00", "s")


def _log(msg, t0=[time.perf_counter()]):
    print(f"[{time.perf_counter() - t0[0]:7.1f} s] {msg}", flush=True)


# ---------------------------------------------------------------------------------------
# Image ephemerides
# ---------------------------------------------------------------------------------------
def image_times(n_images: int) -> np.ndarray:
    """DATE_OBS of MDI-like 96-min images: slot k of each day, 57 s before the slot."""
    k = np.arange(n_images)
    day, slot = np.divmod(k, PER_DAY)
    return START + (day * 86400 + slot * CADENCE_MIN * 60 + 3 * 60 - 57).astype(
        "timedelta64[s]")


def ephemerides(times: np.ndarray):
    """L0, B0 (deg), SoHO distance (km), Carrington rotation number per time.

    Computed with sunpy on a daily grid and interpolated (cubic spline, L0 unwrapped), L0
    shifted by SoHO's shorter light time; agrees with SkyCoord (observer at SoHO's
    distance in Earth's direction) to ~1e-7°.
    """
    import astropy.units as u
    from astropy.time import Time
    from scipy.interpolate import CubicSpline
    from sunpy.coordinates import sun

    d0 = times[0].astype("datetime64[D]")
    d1 = times[-1].astype("datetime64[D]") + np.timedelta64(2, "D")
    days = np.arange(d0, d1, np.timedelta64(1, "D")).astype("datetime64[s]")
    tg = Time(days.astype(str), scale="utc")
    l0 = np.unwrap(np.deg2rad(sun.L0(tg).to_value(u.deg)))
    b0 = sun.B0(tg).to_value(u.deg)
    dist = sun.earth_distance(tg).to_value(u.km) - L1_KM
    crot = sun.carrington_rotation_number(tg)
    # sun.L0 is for Earth's light time; SoHO is L1_KM closer: its light left L1_KM / c later
    l0 = l0 - np.deg2rad(CARRINGTON_RATE_DEG_S * L1_KM / C_KM_S)
    x = (days - days[0]).astype(float)
    xt = (times - days[0]).astype(float)
    f = CubicSpline(x, np.column_stack([l0, b0, dist, crot]))(xt)
    return np.rad2deg(f[:, 0]) % 360.0, f[:, 1], f[:, 2], f[:, 3]


def jd_utc(times: np.ndarray) -> np.ndarray:
    """Julian date (UTC calendar days) of datetime64[s] values."""
    return (times - np.datetime64("1970-01-01T00:00:00", "s")).astype(float) / 86400.0 \
        + 2440587.5


def pix_to_carrington(x, y, center, cdelt, dist_km, b0_deg, l0_deg):
    """Closed-form pixel → Carrington (lon, lat) in deg; NaN off the disk.

    The line of sight through the pixel centre (helioprojective Tx, Ty) from an observer
    at ``dist_km`` in Stonyhurst (lon 0, lat B0) meets the sphere of radius R☉; the
    Stonyhurst point is rotated by L0 to Carrington. Arrays broadcast.
    """
    tx = np.deg2rad(cdelt * (x - center[0]) / 3600.0)
    ty = np.deg2rad(cdelt * (y - center[1]) / 3600.0)
    D = dist_km / RSUN_KM
    c = np.cos(ty) * np.cos(tx)
    disc = D * D * c * c - D * D + 1.0
    with np.errstate(invalid="ignore"):
        d = D * c - np.sqrt(disc)
    hx = d * np.cos(ty) * np.sin(tx)          # heliocentric: x west, y north, z observer
    hy = d * np.sin(ty)
    hz = D - d * c
    b = np.deg2rad(b0_deg)
    sb, cb = np.sin(b), np.cos(b)
    # Stonyhurst cartesian (X to lon 0, Y to lon 90 west, Z north); observer at lon 0
    X = -hy * sb + hz * cb
    Y = hx
    Z = hy * cb + hz * sb
    with np.errstate(invalid="ignore"):
        lat = np.rad2deg(np.arcsin(np.clip(Z, -1, 1)))
        hg_lon = np.rad2deg(np.arctan2(Y, X))
    lat = np.where(disc < 0, np.nan, lat)
    hg_lon = np.where(disc < 0, np.nan, hg_lon)
    return (hg_lon + l0_deg) % 360.0, lat, hg_lon


# ---------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------
def _slots():
    """(Stonyhurst lon offset, lat, half-lon, half-lat) of the 36 interior + 4 limb slots."""
    inner = [(lo, la) for la in (-32, -20, -8, 8, 20, 32) for lo in (-60, -36, -12, 12, 36, 60)]
    limb = [(-88.0, 14.0), (88.0, -14.0), (-88.0, -16.0), (88.0, 16.0)]
    return inner, limb


def render_templates(rng, reference_time, r_lo_bins):
    """Chain-coded templates: interior (on the smallest disk) and limb (per R_SUN bin).

    Returns a dict of arrays over templates: x0, y0, cc, mean_x, mean_y, bbox, npix,
    area_deg2, and ``slot`` / ``bin`` (bin −1 for interior templates).
    """
    import astropy.units as u

    from vespa_curation import synth
    from vespa_curation.hfc.sample import _blob

    inner, limb = _slots()
    out = {k: [] for k in ("x0", "y0", "cc", "mx", "my", "bx0", "by0", "bx1", "by1",
                           "npix", "area", "rmax", "slot", "bin")}

    def geometry(r_pix):
        dist = (synth.RSUN / np.sin(np.deg2rad(r_pix * CDELT / 3600.0))).to(u.km)
        return synth.ImageGeometry(reference_time, NAXIS, NAXIS, CENTER[0], CENTER[1],
                                   CDELT, CDELT, dist)

    def do(g, slot_ids, centres, half, bin_id):
        obs = g.observer
        hpc, hgc = g.frames(obs)
        o_carr = g.observer_carrington(obs)
        l0 = math.degrees(o_carr[0])
        for shape in range(N_SHAPES):
            regs = []
            for (lo, la), (hl, hb) in zip(centres, half[shape]):
                regs.append(_blob(rng, l0 + lo, la, hl, hb))
            masks = synth.render_regions(regs, g, observer=obs)
            for sid, (lon, lat), m in zip(slot_ids, regs, masks):
                if not m.any():
                    continue
                xs, ys = synth.component_pixels(m)
                x0, y0, cc = synth.encode_chaincode(m)
                if len(cc) < 8:
                    continue
                a, _, _ = synth.visible_area_and_centroid(lon, lat, g, step=0.04,
                                                          observer_carrington=o_carr)
                for k, v in (("x0", x0), ("y0", y0), ("cc", cc), ("mx", xs.mean()),
                             ("my", ys.mean()), ("bx0", xs.min()), ("by0", ys.min()),
                             ("bx1", xs.max()), ("by1", ys.max()), ("npix", xs.size),
                             ("area", a), ("slot", sid), ("bin", bin_id),
                             ("rmax", np.hypot(xs - CENTER[0], ys - CENTER[1]).max())):
                    out[k].append(v)

    # interior: sizes drawn so that chains average ~150 digits
    half_in = [[(rng.uniform(2.8, 7.0), rng.uniform(2.0, 4.4)) for _ in inner]
               for _ in range(N_SHAPES)]
    do(geometry(r_lo_bins[0]), list(range(N_SLOTS_IN)), inner, half_in, -1)
    for b, r_lo in enumerate(r_lo_bins):
        half_l = [[(rng.uniform(5.0, 9.0), rng.uniform(3.0, 5.0)) for _ in limb]
                  for _ in range(N_SHAPES)]
        do(geometry(r_lo), list(range(N_SLOTS_IN, N_SLOTS_IN + N_SLOTS_LIMB)), limb,
           half_l, b)
    return {k: np.array(v, dtype=object if k == "cc" else None) for k, v in out.items()}


# ---------------------------------------------------------------------------------------
# The database
# ---------------------------------------------------------------------------------------
def build(out: Path, rows: int, per_image: int, seed: int, chunk_images: int = 5000):
    from astropy.time import Time

    from vespa_curation.hfc import sample, schema

    rng = np.random.default_rng(seed)
    n_img = math.ceil(rows / per_image)
    t_all = time.perf_counter()

    times = image_times(n_img)
    L0, B0, DIST, CROT = ephemerides(times)
    rsun = np.rad2deg(np.arcsin(RSUN_KM / DIST)) * 3600.0 / CDELT
    edges = np.arange(rsun.min(), rsun.max() + 1.5, 1.5)
    img_bin = np.clip(np.searchsorted(edges, rsun, side="right") - 1, 0, len(edges) - 1)
    _log(f"{n_img} images {str(times[0])} → {str(times[-1])}; R_SUN {rsun.min():.2f}–"
         f"{rsun.max():.2f} px in {len(edges)} bins")
    t1 = time.perf_counter()
    tpl = render_templates(rng, Time(str(times[0]), scale="utc"), edges)
    t_tpl = time.perf_counter() - t1
    ntpl = len(tpl["cc"])
    lens = np.array([len(c) for c in tpl["cc"]])
    _log(f"{ntpl} templates rendered + chain-coded in {t_tpl:.1f} s "
         f"(chain length {lens.min()}–{lens.max()}, mean {lens.mean():.0f})")

    # per (slot, bin) the template indices
    slot_tpl = {}
    for i, (s, b) in enumerate(zip(tpl["slot"], tpl["bin"])):
        slot_tpl.setdefault((int(s), int(b)), []).append(i)

    out.parent.mkdir(parents=True, exist_ok=True)
    # a private temporary name: concurrent builders never clobber each other's file
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-200000")
    schema.create_hfc_tables(con, indexes=False)
    schema.insert_rows(con, "FRC_INFO", [dict(
        ID_FRC_INFO=1, INSTITUT="VESPA curation workbench", CODE=sample.SYNTH_CODE,
        VERSION="1.0-bench", FEATURE_NAME="ACTIVE REGIONS", ENC_MET="CHAIN CODE",
        PERSON="synthetic", REFERENCE="benchmarks/make_bench_db.py")])
    schema.insert_rows(con, "OBSERVATORY", [dict(
        ID_OBSERVATORY=1, OBSERVAT="SoHO", INSTRUME="MDI", TELESCOP="MDI", UNITS="Gauss",
        WAVEMIN=676.8, WAVEMAX=676.8, WAVENAME="Ni I", WAVEUNIT="nm",
        SPECTRAL_NAME="visible", OBS_TYPE="line_of_sight magnetic field",
        COMMENT="96-min fd (synthetic benchmark)")])

    # OBSERVATIONS, vectorized
    date_txt = np.datetime_as_string(times, unit="ms")
    jd = jd_utc(times)
    jdint = np.floor(jd).astype(np.int64)
    dayno = ((times.astype("datetime64[D]") - np.datetime64("1993-01-01", "D"))
             .astype(np.int64))
    slot = np.arange(n_img) % PER_DAY
    fname = [f"fd_M_96m_01d.{d}.{s:04d}.fits" for d, s in zip(dayno.tolist(), slot.tolist())]
    obs_cols = [c for c, _ in schema.HFC_SCHEMA["OBSERVATIONS"]]
    ids = np.arange(1, n_img + 1)
    vals = dict(
        ID_OBSERVATIONS=ids.tolist(), OBSERVATORY_ID=[1] * n_img, DATE_OBS=date_txt.tolist(),
        DATE_END=date_txt.tolist(), JDINT=jdint.tolist(), JDFRAC=(jd - jdint).tolist(),
        EXP_TIME=[0.0] * n_img, C_ROTATION=np.floor(CROT).astype(np.int64).tolist(),
        BSCALE=[1.0] * n_img, BZERO=[0.0] * n_img, BITPIX=[-32] * n_img,
        NAXIS1=[NAXIS] * n_img, NAXIS2=[NAXIS] * n_img, R_SUN=rsun.tolist(),
        CENTER_X=[CENTER[0]] * n_img, CENTER_Y=[CENTER[1]] * n_img, CDELT1=[CDELT] * n_img,
        CDELT2=[CDELT] * n_img, FILENAME=fname, FILE_FORMAT=["FITS"] * n_img,
        LOC_FILENAME=fname,
        URL=[f"http://soi.Stanford.EDU/magnetic/mag//fd_M_96m_01d.{d:06d}/{f}"
             for d, f in zip(dayno.tolist(), fname)])
    con.executemany(f"INSERT INTO OBSERVATIONS ({', '.join(obs_cols)}) VALUES "
                    f"({', '.join('?' * len(obs_cols))})",
                    zip(*[vals.get(c, [None] * n_img) for c in obs_cols]))
    _log("OBSERVATIONS written")

    ar_cols = [c for c, _ in schema.HFC_SCHEMA["ACTIVEREGIONS"]]
    sql = (f"INSERT INTO ACTIVEREGIONS ({', '.join(ar_cols)}) VALUES "
           f"({', '.join('?' * len(ar_cols))})")
    cc_len = np.array([len(c) for c in tpl["cc"]])
    cc_list = list(tpl["cc"])
    run_dates = np.array(["2011-02-18T11:56:38.000", "2013-06-04T08:12:00.000"])
    id_ar = 0
    n_written = n_limb = 0
    chain_total = 0
    t_rows = time.perf_counter()
    for c0 in range(0, n_img, chunk_images):
        c1 = min(c0 + chunk_images, n_img)
        crng = np.random.default_rng([seed, c0])
        m = c1 - c0
        # 20 distinct slots of 40 per image, then a shape per slot
        slots = np.argsort(crng.random((m, N_SLOTS_IN + N_SLOTS_LIMB)), axis=1)[:, :per_image]
        img = np.repeat(np.arange(c0, c1), per_image)
        slots = slots.ravel()
        if id_ar + img.size > rows:
            keep = rows - id_ar
            img, slots = img[:keep], slots[:keep]
        n = img.size
        bins = np.where(slots >= N_SLOTS_IN, img_bin[img], -1)
        pick = crng.random(n)
        t_idx = np.empty(n, np.int64)
        for key in set(zip(slots.tolist(), bins.tolist())):
            sel = (slots == key[0]) & (bins == key[1])
            cand = np.array(slot_tpl[key])
            t_idx[sel] = cand[(pick[sel] * cand.size).astype(np.int64)]
        ids_ar = np.arange(id_ar + 1, id_ar + n + 1)
        id_ar += n
        cx, cy = CENTER
        mx, my = tpl["mx"][t_idx].astype(float), tpl["my"][t_idx].astype(float)
        fx, fy = np.rint(mx).astype(np.int64), np.rint(my).astype(np.int64)
        geo = (CENTER, CDELT, DIST[img], B0[img], L0[img])
        clon, clat, hlon = pix_to_carrington(mx, my, *geo)
        bx = np.stack([tpl["bx0"], tpl["bx0"], tpl["bx1"], tpl["bx1"]], 1)[t_idx].astype(float)
        by = np.stack([tpl["by0"], tpl["by1"], tpl["by0"], tpl["by1"]], 1)[t_idx].astype(float)
        g4 = tuple(a[:, None] if np.ndim(a) else a for a in geo[2:])
        bcl, bcb, bhl = pix_to_carrington(bx, by, CENTER, CDELT, *g4)
        x0 = tpl["x0"][t_idx].astype(np.int64)
        y0 = tpl["y0"][t_idx].astype(np.int64)
        area = tpl["area"][t_idx].astype(float)
        npix = tpl["npix"][t_idx].astype(np.int64)
        limb = tpl["rmax"][t_idx].astype(float) > (rsun[img] - 1.5)
        n_limb += int(limb.sum())
        chain_total += int(cc_len[t_idx].sum())
        prev = np.where(img > 0, img - 1, -1)
        big = npix > 1200
        cols = dict(
            ID_AR=ids_ar, FRC_INFO_ID=np.ones(n, np.int64), OBSERVATIONS_ID=img + 1,
            OBSERVATIONS_ID_T=np.where(prev >= 0, prev + 1, 0),
            FEAT_DATE=date_txt[img], FEAT_DATE_PREV=date_txt[np.maximum(prev, 0)],
            FEAT_X_ARCSEC=CDELT * (mx - cx), FEAT_Y_ARCSEC=CDELT * (my - cy),
            FEAT_X_PIX=fx, FEAT_Y_PIX=fy, FEAT_HG_LONG_DEG=hlon, FEAT_HG_LAT_DEG=clat,
            FEAT_CARR_LONG_DEG=clon, FEAT_CARR_LAT_DEG=clat, FEAT_AREA_PIX=npix,
            FEAT_AREA_MM2=area * (math.pi / 180 * RSUN_KM / 1000) ** 2, FEAT_AREA_DEG2=area,
            FEAT_MAX_INT=crng.uniform(300, 2500, n), FEAT_MIN_INT=-crng.uniform(300, 2500, n),
            FEAT_MEAN_INT=crng.normal(0, 40, n),
            CC_X_PIX=x0, CC_Y_PIX=y0, CC_X_ARCSEC=CDELT * (x0 - cx),
            CC_Y_ARCSEC=CDELT * (y0 - cy), CC_LENGTH=cc_len[t_idx],
            HELIO_AR_NUMBER=np.where(big, 7900 + (img * 7 // 100) % 3000 + slots, -1),
            RUN_DATE=run_dates[(img >= n_img // 2).astype(int)],
        )
        for k in range(4):
            cols[f"BR_X{k}_PIX"] = bx[:, k]
            cols[f"BR_Y{k}_PIX"] = by[:, k]
            cols[f"BR_X{k}_ARCSEC"] = CDELT * (bx[:, k] - cx)
            cols[f"BR_Y{k}_ARCSEC"] = CDELT * (by[:, k] - cy)
            cols[f"BR_HG_LONG{k}_DEG"] = bhl[:, k]
            cols[f"BR_HG_LAT{k}_DEG"] = bcb[:, k]
            cols[f"BR_CARR_LONG{k}_DEG"] = bcl[:, k]
            cols[f"BR_CARR_LAT{k}_DEG"] = bcb[:, k]
        for k in (1, 2):  # int columns in the HFC schema
            cols[f"BR_X{k}_PIX"] = cols[f"BR_X{k}_PIX"].astype(np.int64)
            cols[f"BR_Y{k}_PIX"] = cols[f"BR_Y{k}_PIX"].astype(np.int64)
        lists = []
        for c in ar_cols:
            if c == "CC":
                lists.append([cc_list[i] for i in t_idx.tolist()])
            elif c in cols:
                v = cols[c]
                lv = v.tolist()
                if c == "OBSERVATIONS_ID_T":
                    lv = [None if x == 0 else x for x in lv]
                elif c == "HELIO_AR_NUMBER":
                    lv = [None if x < 0 else x for x in lv]
                elif c == "FEAT_DATE_PREV":
                    lv = [None if p < 0 else d for p, d in zip(prev.tolist(), lv)]
                lists.append(lv)
            else:
                lists.append([None] * n)
        con.executemany(sql, zip(*lists))
        n_written += n
        if id_ar >= rows:
            break
    con.commit()
    t_rows = time.perf_counter() - t_rows
    _log(f"ACTIVEREGIONS: {n_written} rows in {t_rows:.1f} s "
         f"({n_written / t_rows:,.0f} rows/s)")
    t2 = time.perf_counter()
    schema.create_hfc_indexes(con)
    con.commit()
    con.close()
    os.replace(tmp, out)
    _log(f"indexes in {time.perf_counter() - t2:.1f} s")
    total = time.perf_counter() - t_all
    size = out.stat().st_size
    print()
    print(f"database        {out}")
    print(f"build time      {total:.1f} s (templates {t_tpl:.1f} s, rows {t_rows:.1f} s)")
    print(f"file size       {size / 1e9:.2f} GB ({size / n_written:.0f} B/region)")
    print(f"images          {n_img}")
    print(f"regions         {n_written}")
    print(f"templates       {ntpl}")
    print(f"limb regions    {n_limb} ({100 * n_limb / n_written:.1f} %, a pixel within "
          "1.5 px of the limb)")
    print(f"chain length    mean {chain_total / n_written:.1f} digits")
    return out


def check(path: Path, n: int = 200, seed: int = 7):
    """Closed-form FEAT_CARR vs SkyCoord on random rows; chains close; starts on disk."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    from vespa_curation import synth

    con = sqlite3.connect(path)
    nmax = con.execute("SELECT MAX(ID_AR) FROM ACTIVEREGIONS").fetchone()[0]
    ids = np.random.default_rng(seed).choice(np.arange(1, nmax + 1), n, replace=False)
    q = ("SELECT A.ID_AR, A.CC_X_PIX, A.CC_Y_PIX, A.CC, A.FEAT_X_ARCSEC, A.FEAT_Y_ARCSEC, "
         "A.FEAT_CARR_LONG_DEG, A.FEAT_CARR_LAT_DEG, O.DATE_OBS, O.R_SUN, O.CENTER_X, "
         "O.CENTER_Y, O.CDELT1, O.CDELT2 FROM ACTIVEREGIONS A JOIN OBSERVATIONS O ON "
         "A.OBSERVATIONS_ID = O.ID_OBSERVATIONS WHERE A.ID_AR IN "
         f"({','.join(map(str, ids.tolist()))})")
    worst = 0.0
    for r in con.execute(q).fetchall():
        (i, x0, y0, cc, fx, fy, clon, clat, date, rs, cx, cy, c1, c2) = r
        p = synth.decode_chaincode(x0, y0, cc)
        assert (p[0] == p[-1]).all(), f"ID_AR={i}: chain does not close"
        assert np.hypot(x0 - cx, y0 - cy) <= rs, f"ID_AR={i}: chain start off the disk"
        g = synth.ImageGeometry.from_rsun(date, rs, naxis1=NAXIS, naxis2=NAXIS, center_x=cx,
                                          center_y=cy, cdelt1=c1, cdelt2=c2)
        hpc, hgc = g.frames()
        s = SkyCoord(fx * u.arcsec, fy * u.arcsec, frame=hpc).transform_to(hgc)
        dlon = (s.lon.to_value(u.deg) - clon + 180) % 360 - 180
        worst = max(worst, abs(dlon), abs(s.lat.to_value(u.deg) - clat))
    con.close()
    print(f"check           {n} random rows: chains close, starts on disk; FEAT_CARR vs "
          f"SkyCoord max |Δ| = {worst:.2e}°")
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_150_000)
    ap.add_argument("--per-image", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "hfc_bench.sqlite"))
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--check-only", action="store_true", help="check an existing --out")
    a = ap.parse_args(argv)
    from astropy.utils import iers
    iers.conf.auto_download = False
    if a.check_only:
        check(Path(a.out))
        return 0
    out = build(Path(a.out), a.rows, a.per_image, a.seed)
    if not a.no_check:
        check(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
