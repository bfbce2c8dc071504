"""bass2000 — daily full-disk solar images of the BASS2000 archive (Meudon, Pic du Midi).

One granule per image file (``dataproduct_type = im``), granule_uid the file name without
extension. The BASS2000 database layout is not public: :data:`LAYOUT` declares it — the
one place a curator edits to match the real database (docs/services.md) — and the
embedded sample follows it.

Spatial coverage: a full-disk image covers exactly the visible hemisphere, which pgSphere
refuses as a polygon (a polygon must fit *inside* a hemisphere: pgSphere's
src/polygon.c). The service
publishes no ``s_region`` and gives the coverage as Carrington ranges instead:
``c1min/c1max`` = central-meridian longitude L0 ∓ 90° (``c1min > c1max`` when the range
crosses 0°/360°, as EPN-TAP allows), ``c2min/c2max`` = −90°/+90° (docs/services.md says
why this and not a shrunken polygon).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from ... import datalinks
from ...parameter import Param
from ...sources import Mark, SqlTable
from ...times import jd, to_datetime
from ..checks import Refusals
from ..columns import access_format, as_float, constant, datalink_url, jd_of, \
    messenger_from_wavelength, number, size_kb, wavelength_to_hz
from ..declare import Service
from ..presets import CARRINGTON, SOLAR
from ..rowmaker import UID
from .layout import KINDS, LAYOUT, TABLE
from .sample import build_sample

SCHEMA = "bass2000"
#: Processing level of the archive's files (CODMAC; calibrated images).
PROCESSING_LEVEL = 3

PARAMS = (
    Param("documentation_url", str, "https://bass2000.obspm.fr/",
          "documentation page linked from every granule (#documentation)"),
)


SOURCE = SqlTable(
    table=TABLE, alias="I", key="ID",
    columns={name: f"I.{col}" for name, col in LAYOUT.items()}, kinds=KINDS,
    order_by=("DATE_OBS", "ID"),
    mark=Mark(time="DATE_OBS", changed="MODIFIED", id="ID"))


def granule_uid(records: pd.DataFrame) -> pd.Series:
    """The image file name without its extension(s) (``.fits``, ``.fits.gz``, ``.fts``)."""
    name = records["FILENAME"].astype("string").str.strip().str.rsplit("/", n=1).str[-1]
    stem = name.str.replace(r"(\.(fits|fts|fit|jpg|png))?(\.(gz|fz|Z))?$", "", regex=True,
                            case=False)
    return stem.astype(object).where(stem.notna() & (stem != ""), None)


def prepare(records: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Refuse images without a file name or a readable DATE_OBS; compute the visible
    Carrington longitude range."""
    from astropy.time import Time
    from sunpy.coordinates import sun

    r = Refusals(records, lambda f: [f"{TABLE}.{LAYOUT['ID']}={i}" for i in f["ID"]])
    f = r.records
    r.refuse(f[UID].isna().to_numpy(), "source.missing_filename", "no file name")
    t = to_datetime(f["DATE_OBS"])
    r.refuse(t.isna().to_numpy(), "source.bad_date",
             lambda i: f"DATE_OBS {f['DATE_OBS'].iat[i]!r} is not a date")
    ok = r.ok
    f["L0"] = np.nan
    if ok.any():
        tt = Time(t[ok].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").tolist(), scale="utc")
        f.loc[ok, "L0"] = np.asarray(sun.L0(tt).to_value("deg"), dtype=float)
    return f


# -- computed columns -------------------------------------------------------------------

def _time_max(r, p):
    end, start = jd(r["DATE_END"]), jd(r["DATE_OBS"])
    exp = as_float(r, "EXPTIME") / 86400.0
    return np.where(np.isnan(end), start + np.nan_to_num(exp), end)


def _spectral_min(r, p):   # longest wavelength → lowest frequency
    w = as_float(r, "WAVELENGTH_NM") + np.nan_to_num(as_float(r, "BANDWIDTH_NM")) / 2
    return wavelength_to_hz(w, "nm")


def _spectral_max(r, p):
    w = as_float(r, "WAVELENGTH_NM") - np.nan_to_num(as_float(r, "BANDWIDTH_NM")) / 2
    return wavelength_to_hz(w, "nm")


def _messenger(r, p):
    return messenger_from_wavelength(as_float(r, "WAVELENGTH_NM"))


def _c1min(r, p):
    return np.mod(as_float(r, "L0") - 90.0, 360.0)


def _c1max(r, p):
    return np.mod(as_float(r, "L0") + 90.0, 360.0)


def _obs_id(r, p):
    return r[UID].to_numpy(dtype=object)


def _granule_gid(r, p):
    ins = (r["OBSERVATORY"].astype("string").fillna("") + "_" +
           r["INSTRUMENT"].astype("string").fillna("")).str.lower()
    return ("bass2000_" + ins.str.replace(r"[^a-z0-9]+", "_", regex=True).str.strip("_")
            ).astype(object).to_numpy()


def _pixel_deg(r, p):
    """Heliographic size (deg) of one pixel at disk centre, for a solar radius of
    959.6″ (Earth's mean view): asin(CDELT1 / 959.6″)."""
    c = as_float(r, "CDELT1")
    with np.errstate(invalid="ignore"):
        return np.degrees(np.arcsin(np.clip(c / 959.6, -1, 1)))


# -- datalinks ----------------------------------------------------------------------------

def links(rows: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """The FITS file (#this), its thumbnail (#thumbnail) and BASS2000's documentation."""
    uid = rows["granule_uid"].to_numpy(dtype=object)
    parts = [
        datalinks.file_link(rows, "Image file (FITS)"),
        datalinks.link_rows(uid, rows["thumbnail_url"], "#thumbnail", "image/jpeg",
                            "Thumbnail of the image"),
        datalinks.link_rows(uid, params.get("documentation_url"), "#documentation",
                            "text/html", "BASS2000 archive documentation"),
    ]
    return datalinks.concat_links(parts)


SERVICE = Service(
    name=SCHEMA,
    title="BASS2000 solar images",
    description=(
        "Daily full-disk images of the Sun from the BASS2000 solar archive (Meudon "
        "spectroheliograph and other instruments): H-alpha and Ca II images of the "
        "chromosphere. Each row is one image file. The visible hemisphere is given as "
        "Carrington longitude and latitude ranges (c1, c2); no s_region is published "
        "because a full-disk footprint is exactly a hemisphere."),
    creator="Observatoire de Paris (BASS2000, LESIA)",
    subjects=("Sun", "Solar chromosphere", "Solar images"),
    spatial_frame_type="body",
    source=SOURCE,
    fields={
        "instrument_host_name": "OBSERVATORY",
        "instrument_name": "INSTRUMENT",
        "filter": "FILTER",
        "access_url": "FILE_URL",
        "thumbnail_url": "THUMBNAIL_URL",
    },
    constants={
        **SOLAR, **CARRINGTON,
        "dataproduct_type": "im",
        "processing_level": PROCESSING_LEVEL,
        "target_region": "solar-chromosphere",
    },
    computed={
        "granule_gid": _granule_gid,
        "obs_id": _obs_id,
        "time_min": jd_of("DATE_OBS"),
        "time_max": _time_max,
        "time_exp_min": number("EXPTIME"),
        "time_exp_max": number("EXPTIME"),
        "spectral_range_min": _spectral_min,
        "spectral_range_max": _spectral_max,
        "messenger": _messenger,
        "c1min": _c1min, "c1max": _c1max,
        "c2min": constant(-90.0), "c2max": constant(90.0),
        "c1_resol_min": _pixel_deg, "c1_resol_max": _pixel_deg,
        "c2_resol_min": _pixel_deg, "c2_resol_max": _pixel_deg,
        "access_format": access_format("FILE_FORMAT", "FILE_URL"),
        "access_estsize": size_kb("FILE_SIZE"),
        "datalink_url": datalink_url(SCHEMA),
    },
    uid=granule_uid,
    prepare=prepare,
    links=links,
    qa_fields=("ID", "FILTER", "L0", "FILE_SIZE", "MODIFIED"),
    params=PARAMS,
    defaults={"source": "sqlite:///outputs/samples/bass2000.sqlite"},
    sample=build_sample,
    meta={"referenceURL": "https://bass2000.obspm.fr/",
          "source": "BASS2000 solar archive database"},
)
