"""TFCat: time–frequency catalogues of radio features (Cecconi et al.).

A TFCat file is a GeoJSON-like ``FeatureCollection`` whose positions are
``[time, frequency]`` pairs in a local coordinate reference system (``crs``: the time axis
by ``time_coords_id``, the spectral axis by ``spectral_coords``), with declared
``fields`` for the features' properties. This module writes the HFC type III bursts'
contours:

Chain code → [time, frequency] polygon (HFC/RABAT3 conventions)
    RABAT3 detects bursts on a dynamic spectrum whose pixel ``(x, y)`` is time sample
    ``x`` and frequency channel ``y`` (0-based). The spectrum's OBSERVATIONS row carries
    the scales RABAT3 writes (github HELIO-HFC/RABAT3, ``lib/python/data/waves.py`` and
    ``hfc/prod/wrapper/rabat3_hfc_processing.py``): ``DATE_OBS`` = time of sample 0,
    ``CDELT1`` = seconds per time sample (``dt = 60.0`` for Wind/Waves 60-s averages),
    ``CDELT2`` = frequency step in **kHz** (``RAD2_FREQ_STEP = 50.0``); the first
    channel's frequency is the observatory's ``WAVEMIN`` (MHz, ``RAD2_FREQ_MIN = 1075
    kHz`` → ``WAVEMIN = 1.075``). So ::

        t(x) = DATE_OBS + x · CDELT1 [s]
        f(y) = WAVEMIN [MHz] + y · CDELT2 [kHz]

    (``CENTER_X/Y`` are ``NAXIS/2`` in RABAT3's rows and are not used). The record's
    ``CC_X_UTC``/``CC_Y_MHZ`` are the chain's start in those units; every record is
    checked against them (:func:`scale_check`) and refused (``tfcat.scale_mismatch``)
    when the start pixel maps more than half a pixel (plus 1 s / 1 kHz) away.
    The polygon is the outline of the burst's pixel *edges*
    (:func:`vespa_curation.geometry.chaincode.pixel_outline`, counter-clockwise with
    x = time right and y = frequency up, so counter-clockwise in [time, frequency] too):
    it covers the burst's pixels, not just their centres.
CC_X_UTC
    A ``double`` in the HFC schema ("start time in UTC"). RABAT3 carries times as decimal
    hours of the day (its ``TIME_START`` CSV column, split by ``waves.split_time``), so a
    value below 48 is read as hours after 00:00 UT of DATE_OBS's day; between 2 000 000
    and 3 500 000 as a Julian Date; from 10⁸ on as Unix seconds; anything else is
    unreadable (and the record refused).

Files: :func:`feature_collection` builds a collection (``crs``: ``unix`` seconds and MHz),
:func:`validate_file` runs the Starlink validator Debian's ``stilts`` package ships.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..times import jd_to_datetime
from .registry import register_reader

#: Coordinate reference system of the files written here.
CRS = {
    "type": "local",
    "properties": {
        "name": "Time-Frequency",
        "time_coords_id": "unix",
        "spectral_coords": {"type": "frequency", "unit": "MHz"},
        "ref_position_id": "GEOCENTER",
    },
}

#: Declared fields of the type III features (name → info, datatype, ucd, unit).
T3_FIELDS = {
    "granule_uid": {"info": "EPN-TAP granule_uid of the burst", "datatype": "str",
                    "ucd": "meta.id;meta.main"},
    "id_type_iii": {"info": "HFC TYPE_III.ID_TYPE_III", "datatype": "int", "ucd": "meta.id"},
    "time_start": {"info": "Burst start (TYPE_III.TIME_START, UTC ISO 8601)",
                   "datatype": "str", "ucd": "time.start"},
    "time_end": {"info": "Burst end (TYPE_III.TIME_END, UTC ISO 8601)", "datatype": "str",
                 "ucd": "time.end"},
    "fmin": {"info": "Lowest frequency of the contour", "datatype": "float",
             "ucd": "em.freq;stat.min", "unit": "MHz"},
    "fmax": {"info": "Highest frequency of the contour", "datatype": "float",
             "ucd": "em.freq;stat.max", "unit": "MHz"},
    "lvl_trust": {"info": "RABAT3 level of trust (TYPE_III.LVL_TRUST)", "datatype": "int",
                  "ucd": "meta.code.qual"},
    "observatory": {"info": "Observatory (OBSERVATORY.OBSERVAT)", "datatype": "str",
                    "ucd": "meta.id;instr.obsty"},
    "instrument": {"info": "Instrument (OBSERVATORY.INSTRUME)", "datatype": "str",
                   "ucd": "meta.id;instr"},
}

#: How the frequency step CDELT2 is given (RABAT3 writes kHz), → MHz factor.
FREQ_STEP_UNITS = {"kHz": 1e-3, "MHz": 1.0, "Hz": 1e-6}


def cc_x_utc_to_datetime(values, date_obs) -> pd.Series:
    """CC_X_UTC values as UTC datetimes (see the module docstring for the forms read)."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    day = pd.Series(pd.to_datetime(pd.Series(date_obs))).dt.floor("D").to_numpy()
    out = np.full(len(v), np.datetime64("NaT"), dtype="datetime64[ns]")
    hours = np.isfinite(v) & (v < 48)
    jdm = np.isfinite(v) & (v > 2_000_000) & (v < 3_500_000)
    unix = np.isfinite(v) & (v >= 1e8) & (v < 9.2e9)   # (datetime64[ns] ends in 2262)
    out[hours] = day[hours] + (v[hours] * 3600e9).astype("int64").astype("timedelta64[ns]")
    out[jdm] = jd_to_datetime(v[jdm]).to_numpy(dtype="datetime64[ns]")
    out[unix] = (v[unix] * 1e9).astype("int64").astype("datetime64[ns]")
    return pd.Series(out)


def pixel_scale(date_obs, cdelt1, cdelt2, wavemin_mhz, freq_step_unit: str = "kHz"):
    """Per-record scale: ``(t0 [unix s], dt [s], f0 [MHz], df [MHz])`` arrays."""
    t0 = pd.to_datetime(pd.Series(date_obs)).to_numpy(dtype="datetime64[ns]")
    t0s = t0.astype("int64") / 1e9
    t0s[pd.isna(t0)] = np.nan
    dt = pd.to_numeric(pd.Series(cdelt1), errors="coerce").to_numpy(dtype=float)
    df = pd.to_numeric(pd.Series(cdelt2), errors="coerce").to_numpy(dtype=float) * \
        FREQ_STEP_UNITS[freq_step_unit]
    f0 = pd.to_numeric(pd.Series(wavemin_mhz), errors="coerce").to_numpy(dtype=float)
    return t0s, dt, f0, df


def scale_check(records: pd.DataFrame, freq_step_unit: str = "kHz"
                ) -> tuple[np.ndarray, np.ndarray]:
    """Refusal (rule, reason) of records whose chain start pixel does not map onto their
    stored CC_X_UTC/CC_Y_MHZ within half a pixel (+1 s, +1 kHz); None where it agrees.

    ``records`` holds TYPE_III ⋈ OBSERVATIONS ⋈ OBSERVATORY columns (CC_X_PIX, CC_Y_PIX,
    CC_X_UTC, CC_Y_MHZ, DATE_OBS, CDELT1, CDELT2, WAVEMIN).
    """
    t0, dt, f0, df = pixel_scale(records["DATE_OBS"], records["CDELT1"], records["CDELT2"],
                                 records["WAVEMIN"], freq_step_unit)
    x = pd.to_numeric(records["CC_X_PIX"], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(records["CC_Y_PIX"], errors="coerce").to_numpy(dtype=float)
    t_pix = t0 + x * dt
    f_pix = f0 + y * df
    t_rec = cc_x_utc_to_datetime(records["CC_X_UTC"], records["DATE_OBS"]).to_numpy(
        dtype="datetime64[ns]")
    t_rec_s = t_rec.astype("int64") / 1e9
    t_rec_s[pd.isna(t_rec)] = np.nan
    f_rec = pd.to_numeric(records["CC_Y_MHZ"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        dt_err = np.abs(t_pix - t_rec_s)
        df_err = np.abs(f_pix - f_rec)
        bad_scale = ~(np.isfinite(dt) & (dt > 0) & np.isfinite(df) & (df > 0) &
                      np.isfinite(f0) & np.isfinite(t0))
        bad_t = ~bad_scale & ~(dt_err <= np.abs(dt) / 2 + 1.0)
        bad_f = ~bad_scale & ~(df_err <= np.abs(df) / 2 + 1e-3)
    rule = np.full(len(records), None, dtype=object)
    reason = np.full(len(records), None, dtype=object)
    for i in np.flatnonzero(bad_scale | bad_t | bad_f):
        rule[i] = "tfcat.scale_mismatch"
        if bad_scale[i]:
            reason[i] = (f"no usable time-frequency scale (DATE_OBS={records['DATE_OBS'].iloc[i]!r}, "
                         f"CDELT1={dt[i]!r} s, CDELT2={df[i]!r} MHz, WAVEMIN={f0[i]!r} MHz)")
            continue
        parts = []
        if bad_t[i]:
            parts.append(f"start pixel x={x[i]:g} maps to {_when(t_pix[i])} but "
                         f"CC_X_UTC={records['CC_X_UTC'].iloc[i]!r} is "
                         f"{_when(t_rec_s[i]) if np.isfinite(t_rec_s[i]) else 'unreadable'}"
                         f" ({dt_err[i]:.1f} s off, pixel {dt[i]:g} s)")
        if bad_f[i]:
            parts.append(f"start pixel y={y[i]:g} maps to {f_pix[i]:.4f} MHz but CC_Y_MHZ="
                         f"{f_rec[i]:.4f} ({df_err[i]:.4f} MHz off, channel {df[i]:g} MHz)")
        reason[i] = "; ".join(parts)
    return rule, reason


def _when(seconds: float) -> str:
    """Unix seconds as a time in a reason (as seconds when no timestamp holds them, e.g.
    a time step of 1e300 s)."""
    try:
        return str(pd.Timestamp(seconds, unit="s"))
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return f"{seconds:g} s after 1970"


def contours(records: pd.DataFrame, freq_step_unit: str = "kHz"):
    """[time (unix s), frequency (MHz)] outline of every record's chain code.

    Returns
    -------
    list of numpy.ndarray
        One ``(n, 2)`` closed ring per record (first vertex repeated at the end),
        counter-clockwise in the (time, frequency) plane.
    """
    from ..geometry.chaincode import pixel_outline
    out = pixel_outline(list(records["CC"]), records["CC_X_PIX"].to_numpy(),
                        records["CC_Y_PIX"].to_numpy())
    t0, dt, f0, df = pixel_scale(records["DATE_OBS"], records["CDELT1"], records["CDELT2"],
                                 records["WAVEMIN"], freq_step_unit)
    rings = []
    for i in range(len(out)):
        x, y = out.item(i)
        t = t0[i] + x * dt[i]
        f = f0[i] + y * df[i]
        ring = np.column_stack([t, f])
        ring = np.vstack([ring, ring[:1]])
        rings.append(ring)
    return rings


def polygon(ring: np.ndarray, time_decimals: int = 3, freq_decimals: int = 6) -> dict:
    """A TFCat Polygon geometry from one closed ring (counter-clockwise enforced)."""
    r = np.asarray(ring, dtype=float)
    x, y = r[:, 0] - r[0, 0], r[:, 1]
    if np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]) < 0:
        r = r[::-1]
    coords = np.column_stack([np.round(r[:, 0], time_decimals),
                              np.round(r[:, 1], freq_decimals)]).tolist()
    return {"type": "Polygon", "coordinates": [coords]}


def feature(fid, geometry: Mapping[str, Any], properties: Mapping[str, Any]) -> dict:
    """One TFCat Feature (properties with NaN/None left out)."""
    props = {}
    for k, v in properties.items():
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            continue
        if isinstance(v, (np.integer,)):
            v = int(v)
        elif isinstance(v, (np.floating,)):
            v = float(v)
        props[k] = v
    return {"type": "Feature", "id": fid, "geometry": dict(geometry), "properties": props}


def feature_collection(features: Sequence[Mapping[str, Any]],
                       fields: Mapping[str, Mapping[str, str]] = T3_FIELDS,
                       properties: Mapping[str, Any] | None = None,
                       crs: Mapping[str, Any] = CRS) -> dict:
    """A TFCat FeatureCollection (crs: unix seconds and MHz by default) with its fields
    and a bbox."""
    fc: dict[str, Any] = {"type": "FeatureCollection"}
    if properties:
        fc["properties"] = dict(properties)
    fc["crs"] = dict(crs)
    fc["fields"] = {k: dict(v) for k, v in fields.items()}
    pts = [p for f in features for ring in f["geometry"]["coordinates"] for p in ring]
    if pts:
        a = np.asarray(pts, dtype=float)
        fc["bbox"] = [float(a[:, 0].min()), float(a[:, 1].min()),
                      float(a[:, 0].max()), float(a[:, 1].max())]
    fc["features"] = list(features)
    return fc


def dumps(obj: Mapping[str, Any]) -> bytes:
    """Compact, deterministic JSON bytes of a TFCat object."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode("utf-8")


# -- offline validation (Starlink's validator, shipped with Debian's stilts) ------------

def validator_command() -> list[str] | None:
    """``java -cp ... uk.ac.starlink.tfcat.Validate`` when java and the Starlink TFCat
    jar are installed (Debian package stilts), else None."""
    java = shutil.which("java")
    jars = sorted(Path("/usr/share/java").glob("*.jar"))
    if not java or not any(j.name.startswith("starlink-tfcat") for j in jars):
        return None
    return [java, "-cp", ":".join(map(str, jars)), "uk.ac.starlink.tfcat.Validate"]


def validate_file(path: str | os.PathLike) -> tuple[bool, str]:
    """Run the Starlink TFCat validator on a file: ``(ok, report text)``.

    Raises
    ------
    RuntimeError
        When the validator is not installed.
    """
    cmd = validator_command()
    if cmd is None:
        raise RuntimeError("the Starlink TFCat validator is not installed "
                           "(Debian package stilts, and java)")
    p = subprocess.run(cmd + [str(path)], capture_output=True, text=True, timeout=300)
    text = (p.stdout + p.stderr).strip()
    return p.returncode == 0 and not text, text


# -- reading a catalogue (file collections) -------------------------------------------------

#: TFCat time coordinates by ``time_coords_id``: (unit, origin, scale).
TIME_COORDS = {
    "unix": ("s", "1970-01-01T00:00:00", "UTC"),
    "jd": ("d", "-4712-01-01T12:00:00", "UTC"),
    "mjd": ("d", "1858-11-17T00:00:00", "UTC"),
    "mjd_cnes": ("d", "1950-01-01T00:00:00", "UTC"),
    "mjd_nasa": ("d", "1968-05-24T00:00:00", "UTC"),
    "cdf_tt2000": ("ns", "2000-01-01T11:58:55.816", "UTC"),
}
#: Plausible times of a catalogue's features (outside: the coordinates are not in the
#: CRS the catalogue declares).
PLAUSIBLE = (np.datetime64("1900-01-01"), np.datetime64("2100-01-01"))


def to_utc(values, crs: Mapping[str, Any]) -> np.ndarray:
    """Time coordinates of a TFCat CRS → UTC ``datetime64[ns]`` (a ``time_coords_id`` of
    :data:`TIME_COORDS`, or ``time_coords`` {``unit``, ``time_origin``})."""
    import astropy.units as u
    props = crs.get("properties", crs)
    if "time_coords_id" in props:
        if props["time_coords_id"] not in TIME_COORDS:
            raise ValueError(f"time_coords_id {props['time_coords_id']!r} is not one of "
                             + ", ".join(TIME_COORDS))
        unit, origin, _ = TIME_COORDS[props["time_coords_id"]]
    else:
        tc = props.get("time_coords") or {}
        unit, origin = tc.get("unit"), tc.get("time_origin")
        if not unit or not origin:
            raise ValueError("the CRS declares neither time_coords_id nor time_coords "
                             "{unit, time_origin}")
    v = np.asarray(values, dtype=float)
    if props.get("time_coords_id") == "jd":
        return jd_to_datetime(v).to_numpy(dtype="datetime64[ns]")
    ns = np.round((v * u.Unit(unit)).to_value(u.ns))
    return np.datetime64(origin, "ns") + ns.astype("int64").astype("timedelta64[ns]")


def spectral_unit(crs: Mapping[str, Any]) -> str:
    """The unit of the catalogue's spectral axis (ValueError when it declares none)."""
    props = crs.get("properties", crs)
    sc = props.get("spectral_coords") or {}
    if not sc.get("unit"):
        raise ValueError("the CRS declares no spectral_coords unit")
    return str(sc["unit"])


def _positions(doc: Mapping[str, Any]) -> np.ndarray:
    """Every [time, spectral] position of every feature's geometry, as an (n, 2) array."""
    pts = []

    def walk(c):
        if isinstance(c, (list, tuple)) and len(c) == 2 and all(
                isinstance(x, (int, float)) for x in c):
            pts.append(c)
        elif isinstance(c, (list, tuple)):
            for x in c:
                walk(x)
    for f in doc.get("features") or []:
        walk((f.get("geometry") or {}).get("coordinates"))
    return np.asarray(pts, dtype=float).reshape(-1, 2)


def rings(path: Path) -> tuple[list[np.ndarray], dict]:
    """The outer ring of every polygon feature of a catalogue ((n, 2) arrays of [time,
    spectral] in its own coordinates) and its CRS (QA drawings)."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for f in doc.get("features") or []:
        g = f.get("geometry") or {}
        polys = {"Polygon": [g.get("coordinates")],
                 "MultiPolygon": g.get("coordinates")}.get(g.get("type"), [])
        out += [np.asarray(p[0], dtype=float) for p in polys if p]
    return out, doc.get("crs") or {}


def read_catalogue(path: Path, validate: bool = True) -> dict[str, Any]:
    """A TFCat catalogue as a file collection's record fields: ``N_FEATURES``, the axis
    fields (:mod:`.axes`: the features' time extent in UTC, their spectral extent in the
    CRS's unit), ``TITLE``, ``TFCAT_OUTSIDE`` (why positions fall outside the declared
    CRS, or None), ``TFCAT_VALID`` and ``TFCAT_REPORT`` (the Starlink validator's
    verdict and message; None and "not validated: ..." when it is not installed, which
    the QA report shows)."""
    from .axes import frequency_fields, time_fields
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if doc.get("type") != "FeatureCollection":
        raise ValueError("not a TFCat FeatureCollection")
    crs = doc.get("crs") or {}
    pts = _positions(doc)
    t = to_utc(pts[:, 0], crs) if len(pts) else np.array([], dtype="datetime64[ns]")
    out = {"N_FEATURES": len(doc.get("features") or []),
           "TITLE": (doc.get("properties") or {}).get("title")}
    out.update(time_fields(np.sort(t[~np.isnat(t)])))
    # a catalogue has no sampling step, and its positions are in no time order
    out["TIME_STEP_S"], out["TIME_INCREASING"] = np.nan, True
    out["N_TIMES"] = len(t)          # positions, readable or not (TFCAT_OUTSIDE says)
    if len(pts):
        out.update(frequency_fields(pts[:, 1], spectral_unit(crs)))
    bad = []
    props = crs.get("properties", crs)
    coords = props.get("time_coords_id") or props.get("time_coords")
    if np.isnat(t).any():
        raw = pts[np.isnat(t), 0]
        bad.append(f"{len(raw)} time coordinate(s), {raw.min():g} to {raw.max():g}, are no "
                   f"date in the declared time coordinates ({coords})")
    elif len(t) and ((t < PLAUSIBLE[0]).any() or (t > PLAUSIBLE[1]).any()):
        bad.append(f"times from {t.min()} to {t.max()}, outside {PLAUSIBLE[0]}..."
                   f"{PLAUSIBLE[1]} in the declared time coordinates ({coords})")
    if len(pts) and (pts[:, 1] <= 0).any():
        bad.append("spectral coordinates not positive")
    out["TFCAT_OUTSIDE"] = "; ".join(bad) or None
    if validate and validator_command() is not None:
        ok, report = validate_file(path)
        out["TFCAT_VALID"], out["TFCAT_REPORT"] = ok, report or None
    elif validate:
        out["TFCAT_VALID"], out["TFCAT_REPORT"] = None, ("not validated: the Starlink "
                                                         "TFCat validator (stilts) is "
                                                         "not installed")
    return out


register_reader("tfcat")(read_catalogue)
