"""Embedded samples of hfc1t3, bass2000, nrh and orfees (deterministic, seeded).

Registered into :mod:`vespa_curation.sample`'s registry on import:

``TYPE_III`` (HFC table hook → ``hfc.sqlite``)
    An OBSERVATORY row (Wind / Waves / Rad2, 1.075–13.825 MHz), an FRC_INFO row (RABAT3),
    one OBSERVATIONS row per day (a 1440 × 256 dynamic spectrum: 60-s samples from
    00:00 UT, 50-kHz channels from WAVEMIN — RABAT3's conventions, see
    :mod:`vespa_curation.tfcat`) and synthetic type III bursts drawn as pixel masks and
    encoded as chain codes with :func:`vespa_curation.synth.encode_chaincode`.
    CC_X_UTC is the chain start in decimal hours of the day, CC_Y_MHZ its frequency.
    The last burst carries a CC_Y_MHZ 2 MHz off its chain start: it must be refused
    (``tfcat.scale_mismatch``).
``bass2000`` → ``bass2000.sqlite``
    Table ``IMAGES`` in the layout :data:`vespa_curation.services.bass2000.LAYOUT`
    declares: Meudon spectroheliograph images in three filters on three days, plus one
    row without a readable DATE_OBS (refused, ``source.bad_date``).
``nrh`` → ``nrh.ndjson``, ``orfees`` → ``orfees.ndjson``
    NDJSON dumps (one ``{"_index", "_id", "_source"}`` per line) of the ``nrh`` and
    ``orfees`` indices in the layouts their service modules declare; one document of
    each has an end before its start (refused, ``source.time_order``).
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from . import sample as _sample
from . import synth
from .sources.dump import write_dump

_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))
T3_DAYS = ("2005-04-19", "2005-04-20", "2005-04-21")
T3_NAXIS = (1440, 256)
T3_CDELT = (60.0, 50.0)      # s, kHz
T3_WAVEMIN_MHZ = 1.075


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _es_id(rng) -> str:
    return "".join(rng.choice(_ALPHABET, 20))


# -- HFC TYPE_III ------------------------------------------------------------------------

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


@_sample.register_hfc_table("TYPE_III")
def fill_type_iii(con: sqlite3.Connection, ctx: dict) -> None:
    """OBSERVATORY/FRC_INFO/OBSERVATIONS rows of a Wind/Waves RAD2 spectrum per day and
    the TYPE_III bursts on them (module docstring)."""
    rng = np.random.default_rng(ctx["seed"] + 3)
    oid = ctx["observatory_id"] + 1
    fid = ctx["frc_info_id"] + 1
    _sample.insert_rows(con, "OBSERVATORY", [dict(
        ID_OBSERVATORY=oid, OBSERVAT="Wind", INSTRUME="Waves", TELESCOP="Rad2",
        UNITS="dB above background", WAVEMIN=T3_WAVEMIN_MHZ, WAVEMAX=13.825,
        WAVENAME="Decametric/Hectometric", WAVEUNIT="MHz", SPECTRAL_NAME="Radio",
        OBS_TYPE="Remote-sensing", COMMENT="synthetic sample")])
    _sample.insert_rows(con, "FRC_INFO", [dict(
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
                HELIO_T3_NUMBER=None, RUN_DATE="2026-01-01T00:00:00.000"))
    bursts[-1]["CC_Y_MHZ"] = bursts[-1]["CC_Y_MHZ"] + 2.0   # scale mismatch: refused
    _sample.insert_rows(con, "OBSERVATIONS", obs)
    _sample.insert_rows(con, "TYPE_III", bursts)


# -- BASS2000 ----------------------------------------------------------------------------

BASS_FILTERS = (("Halpha", "H-alpha", 656.28, 0.025), ("K3", "CaII K3", 393.37, 0.015),
                ("K1v", "CaII K1v", 393.23, 0.015))


def bass2000_rows(seed: int) -> list[dict]:
    """Rows of the sample's IMAGES table, keyed by the logical names of the layout."""
    rng = np.random.default_rng(seed + 20)
    rows = []
    n = 0
    for day in ("2005-04-19", "2005-04-20", "2005-04-21"):
        for code, name, wl, bw in BASS_FILTERS:
            n += 1
            t = pd.Timestamp(day) + pd.Timedelta(hours=8, minutes=int(rng.integers(0, 50)),
                                                 seconds=int(rng.integers(0, 60)))
            fname = f"mh{t:%y%m%d}.{t:%H%M%S}.{code.lower()}.fits"
            rows.append(dict(
                ID=n, FILENAME=fname, DATE_OBS=_iso(t),
                DATE_END=_iso(t + pd.Timedelta(seconds=int(rng.integers(40, 90)))),
                OBSERVATORY="Meudon", INSTRUMENT="Spectroheliograph", FILTER=name,
                WAVELENGTH_NM=wl, BANDWIDTH_NM=bw, EXPTIME=None, NAXIS1=1024, NAXIS2=1024,
                CDELT1=2.2, FILE_URL=f"ftp://ftpbass2000.obspm.fr/pub/meudon/{code}/"
                                     f"{t:%Y}/{fname}",
                FILE_SIZE=int(rng.integers(1_900_000, 2_200_000)), FILE_FORMAT="application/fits",
                THUMBNAIL_URL=f"https://bass2000.obspm.fr/thumbnails/{code}/{fname[:-5]}.jpg",
                MODIFIED="2026-01-01T00:00:00.000"))
    rows.append(dict(ID=n + 1, FILENAME="mh050422.bad.halpha.fits", DATE_OBS="2005-04-22 ??",
                     OBSERVATORY="Meudon", INSTRUMENT="Spectroheliograph", FILTER="H-alpha",
                     WAVELENGTH_NM=656.28, BANDWIDTH_NM=0.025,
                     FILE_URL="ftp://ftpbass2000.obspm.fr/pub/meudon/Halpha/2005/bad.fits",
                     FILE_SIZE=2_000_000, MODIFIED="2026-01-01T00:00:00.000"))
    return rows


@_sample.register_sample("bass2000")
def build_bass2000_sample(outdir: Path, seed: int) -> dict[str, Path]:
    """``bass2000.sqlite``: table IMAGES in the declared layout (atomic replace)."""
    from .services.bass2000 import LAYOUT, TABLE
    path = Path(outdir) / "bass2000.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    types = {"ID": "INTEGER PRIMARY KEY", "NAXIS1": "INT", "NAXIS2": "INT",
             "FILE_SIZE": "BIGINT", "WAVELENGTH_NM": "DOUBLE", "BANDWIDTH_NM": "DOUBLE",
             "EXPTIME": "DOUBLE", "CDELT1": "DOUBLE", "DATE_OBS": "DATETIME",
             "DATE_END": "DATETIME", "MODIFIED": "DATETIME"}
    con = sqlite3.connect(tmp)
    try:
        cols = ", ".join(f"{src} {types.get(name, 'VARCHAR(255)')}"
                         for name, src in LAYOUT.items())
        con.execute(f"CREATE TABLE {TABLE} ({cols})")
        con.execute(f"CREATE INDEX IX_IMAGES_DATE ON {TABLE} ({LAYOUT['DATE_OBS']})")
        names = list(LAYOUT)
        con.executemany(
            f"INSERT INTO {TABLE} ({', '.join(LAYOUT.values())}) "
            f"VALUES ({', '.join('?' * len(names))})",
            [tuple(r.get(n) for n in names) for r in bass2000_rows(seed)])
        con.commit()
    finally:
        con.close()
    os.replace(tmp, path)
    return {"bass2000": path}


# -- NRH and ORFEES dumps ----------------------------------------------------------------

def nrh_hits(seed: int) -> list[dict]:
    """Documents of the sample's ``nrh`` index (layout of services.nrh.LAYOUT)."""
    from .services.nrh import LAYOUT, NRH_FREQUENCIES_MHZ
    rng = np.random.default_rng(seed + 30)
    hits = []
    for k, day in enumerate(pd.date_range("2012-01-09", periods=5, freq="D")):
        t0 = day + pd.Timedelta(hours=8, minutes=int(rng.integers(0, 30)),
                                seconds=int(rng.integers(0, 60)), milliseconds=999)
        t1 = day + pd.Timedelta(hours=15, minutes=int(rng.integers(0, 59)))
        freqs = list(NRH_FREQUENCIES_MHZ) if k != 2 else list(NRH_FREQUENCIES_MHZ[1:6])
        fname = f"nrh2_0000_h80_{t0:%Y%m%d_%H%M%S}c04_b.fts"
        src = {
            LAYOUT["DATE_OBS"]: _iso(t0) + "Z", LAYOUT["DATE_END"]: _iso(t1) + "Z",
            LAYOUT["FILENAME"]: fname,
            LAYOUT["FILE_URL"]: f"https://rsdb.obs-nancay.fr/nrh/{t0:%Y/%m/%d}/{fname}",
            LAYOUT["FILE_SIZE"]: int(rng.integers(200_000_000, 400_000_000)),
            LAYOUT["FILE_FORMAT"]: "application/fits",
            LAYOUT["FREQUENCIES"]: freqs, LAYOUT["INTEGRATION"]: 0.25,
            LAYOUT["OBS_MODE"]: "2D images"}
        hits.append({"_index": "nrh", "_id": _es_id(rng), "_source": src})
    bad = dict(hits[-1]["_source"])
    bad[LAYOUT["DATE_END"]] = "2012-01-13T07:00:00.000Z"
    bad[LAYOUT["DATE_OBS"]] = "2012-01-14T08:00:00.000Z"
    hits.append({"_index": "nrh", "_id": _es_id(rng), "_source": bad})
    return hits


def orfees_hits(seed: int) -> list[dict]:
    """Documents of the sample's ``orfees`` index (layout of services.orfees.LAYOUT)."""
    from .services.orfees import LAYOUT
    rng = np.random.default_rng(seed + 40)
    hits = []
    for day in pd.date_range("2012-01-09", periods=4, freq="D"):
        t0 = day + pd.Timedelta(hours=7, minutes=59, seconds=59)
        t1 = day + pd.Timedelta(hours=15, minutes=int(rng.integers(30, 59)))
        fname = f"int_orf{t0:%Y%m%d_%H%M%S}_0.1.fts"
        hits.append({"_index": "orfees", "_id": _es_id(rng), "_source": {
            LAYOUT["DATE_OBS"]: _iso(t0) + "Z", LAYOUT["DATE_END"]: _iso(t1) + "Z",
            LAYOUT["FILENAME"]: fname,
            LAYOUT["FILE_URL"]: f"https://rsdb.obs-nancay.fr/orfees/{t0:%Y/%m}/{fname}",
            LAYOUT["FILE_SIZE"]: int(rng.integers(300_000_000, 600_000_000)),
            LAYOUT["FILE_FORMAT"]: "application/fits",
            LAYOUT["FREQ_MIN"]: 144.0, LAYOUT["FREQ_MAX"]: 1004.0,
            LAYOUT["TIME_RES"]: 0.1,
            LAYOUT["QUICKLOOK_URL"]: f"https://rsdb.obs-nancay.fr/QL/Orfees/png/"
                                     f"orf{t0:%Y%m%d}.png"}})
    bad = dict(hits[0]["_source"])
    bad[LAYOUT["DATE_END"]] = "2012-01-01T00:00:00.000Z"
    hits.append({"_index": "orfees", "_id": _es_id(rng), "_source": bad})
    return hits


@_sample.register_sample("nrh")
def build_nrh_sample(outdir: Path, seed: int) -> dict[str, Path]:
    path = Path(outdir) / "nrh.ndjson"
    tmp = write_dump(nrh_hits(seed), path.with_name(path.name + ".tmp"))
    os.replace(tmp, path)
    return {"nrh": path}


@_sample.register_sample("orfees")
def build_orfees_sample(outdir: Path, seed: int) -> dict[str, Path]:
    path = Path(outdir) / "orfees.ndjson"
    tmp = write_dump(orfees_hits(seed), path.with_name(path.name + ".tmp"))
    os.replace(tmp, path)
    return {"orfees": path}
