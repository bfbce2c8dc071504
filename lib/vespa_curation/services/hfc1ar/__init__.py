"""hfc1ar — solar active regions of the Heliophysics Feature Catalogue (HFC).

One granule per detected region (``dataproduct_type = ci``: the rows are the catalogue).
The region's chain-code contour, in the pixels of its image, becomes the ``s_region``
polygon in Carrington longitude/latitude (:mod:`vespa_curation.geometry`).

Source: HFC tables ACTIVEREGIONS ⋈ OBSERVATIONS ⋈ OBSERVATORY ⋈ FRC_INFO (any letter
case). The incremental mark reads regions of images at or after the last exported
observation time (DATE_OBS, indexed in HFC), re-processed after the last RUN_DATE (a
scan: RUN_DATE has no index in HFC; it is what catches regions re-processed in place,
and an index on ACTIVEREGIONS.RUN_DATE in HFC would make it cheap), or with ID_AR above
the last one; boundary rows come again and are deduplicated by their content hash.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...hfc import oddities, sample as hfc_sample
from ...hfc.schema import columns, kinds, observation_joins
from ...sources import Mark, SqlTable
from ...times import to_datetime
from ..checks import Refusals
from ..columns import jd_end, jd_of, length_unit, messenger_from_wavelength, number, \
    wavelength_to_hz, whole
from ..declare import Service
from ..presets import CARRINGTON, SOLAR

_COLUMNS = columns(
    A=["ID_AR", "FRC_INFO_ID", "OBSERVATIONS_ID", "FEAT_X_PIX", "FEAT_Y_PIX",
       "FEAT_CARR_LONG_DEG", "FEAT_CARR_LAT_DEG", "FEAT_AREA_PIX", "FEAT_AREA_DEG2",
       "CC_X_PIX", "CC_Y_PIX", "CC_X_ARCSEC", "CC_Y_ARCSEC", "CC", "CC_LENGTH",
       "HELIO_AR_NUMBER", "RUN_DATE"],
    O=["ID_OBSERVATIONS", "OBSERVATORY_ID", "DATE_OBS", "DATE_END", "EXP_TIME", "R_SUN",
       "CENTER_X", "CENTER_Y", "CDELT1", "CDELT2", "NAXIS1", "NAXIS2", "FILENAME", "URL",
       "QCLK_URL"],
    Y=["ID_OBSERVATORY", "OBSERVAT", "INSTRUME", "TELESCOP", "WAVEMIN", "WAVEMAX",
       "WAVEUNIT", "OBS_TYPE"],
    F=["ID_FRC_INFO", "CODE", "VERSION", "INSTITUT"])

SOURCE = SqlTable(
    table="ACTIVEREGIONS", alias="A", key="ID_AR", columns=_COLUMNS,
    kinds=kinds(_COLUMNS, "ACTIVEREGIONS", "A"),
    joins=observation_joins("A"),
    # grouped by image (an image's regions share a chunk for the uid collision rule); no
    # time order needed, so the database streams rows through its index on
    # ACTIVEREGIONS.OBSERVATIONS_ID instead of sorting the whole join first
    order_by=("OBSERVATIONS_ID", "ID_AR"), keep_together="OBSERVATIONS_ID",
    mark=Mark(time="DATE_OBS", changed="RUN_DATE", id="ID_AR"))

#: Columns the geometry adds to the records (hfc_ar_polygons).
GEOMETRY = ["s_region", "c1min", "c1max", "c2min", "c2max", "geom_flag", "area_ratio",
            "n_vertices", "simplify_change", "centroid_lon", "centroid_lat"]
GEOMETRY_TEXT = ("s_region", "geom_flag")


def granule_uid(records: pd.DataFrame) -> pd.Series:
    """``ar_<YYYYMMDD_HHMMSS of DATE_OBS>_<FEAT_X_PIX>_<FEAT_Y_PIX>``, the live service's
    form; when two regions of one image collide, the later (higher ID_AR) gets
    ``_<ID_AR>`` appended."""
    t = to_datetime(records["DATE_OBS"])
    stamp = t.dt.strftime("%Y%m%d_%H%M%S").fillna("nodate")
    x = whole(records["FEAT_X_PIX"], rounded=True)
    y = whole(records["FEAT_Y_PIX"], rounded=True)
    base = "ar_" + stamp + "_" + x.astype("string").fillna("na") + "_" + \
        y.astype("string").fillna("na")
    base = base.astype(object)
    order = pd.to_numeric(records["ID_AR"], errors="coerce")
    tmp = pd.DataFrame({"b": base, "o": order})
    first = tmp.sort_values("o", kind="stable").duplicated("b", keep="first")
    out = base.copy()
    later = first.reindex(tmp.index).to_numpy()
    out[later] = out[later] + "_" + records.loc[later, "ID_AR"].astype(str)
    return out


def prepare(records: pd.DataFrame, params) -> pd.DataFrame:
    """Refuse records without an observation, a readable date or a unique id, then
    compute the geometry (s_region, c1/c2 ranges, flags) of the others, and flag the
    quietly odd ones (:mod:`vespa_curation.hfc.oddities`: published, for a curator to
    look at)."""
    from ...geometry import hfc_ar_polygons

    r = Refusals(records, lambda f: [f"ACTIVEREGIONS.ID_AR={i}" for i in f["ID_AR"]])
    f = r.records
    r.refuse(f["ID_OBSERVATIONS"].isna().to_numpy(), "source.missing_observation",
             lambda i: f"OBSERVATIONS_ID={f['OBSERVATIONS_ID'].iat[i]} names no row of "
                       "OBSERVATIONS")
    units = {u: length_unit(u) is not None for u in pd.unique(f["WAVEUNIT"].dropna())}
    r.refuse(f["WAVEUNIT"].map(units).eq(False).to_numpy(), "source.bad_value",
             lambda i: f"WAVEUNIT {f['WAVEUNIT'].iat[i]!r} of its observatory is not a "
                       "unit of wavelength")
    t = to_datetime(f["DATE_OBS"])
    now = pd.Timestamp.now("UTC").tz_localize(None)
    r.refuse((t.isna() | (t > now + pd.Timedelta(days=1))).to_numpy(), "source.bad_date",
             lambda i: f"DATE_OBS {f['DATE_OBS'].iat[i]!r} of its observation is not a date "
                       "of an observation (unreadable, outside 1677-2262, or in the future)")
    # two records under one ID_AR: which one the id names is unknown — refuse both
    # (within the chunk; the harvest keeps an image's regions in one chunk)
    counts = f["ID_AR"].map(f["ID_AR"].value_counts())
    r.refuse(f["ID_AR"].duplicated(keep=False).to_numpy(), "source.duplicate_id",
             lambda i: f"names {counts.iat[i]} records of this harvest (ID_AR must be "
                       "unique)")
    ok = r.ok
    g = None
    if ok.any():
        sub = f[ok].copy()
        sub["DATE_OBS"] = t[ok]
        g = hfc_ar_polygons(sub)
    for c in GEOMETRY:
        # numbers as float64 (NaN for a refused record), not Python objects: the
        # validator's and the caster's passes over them cost 10× less
        text = c in GEOMETRY_TEXT
        col = np.full(len(f), None if text else np.nan, dtype=object if text else float)
        if g is not None:
            col[ok] = g[c].to_numpy()
        f[c] = col
    if g is not None:
        refused = np.zeros(len(f), dtype=bool)
        refused[np.flatnonzero(ok)] = g["rule"].notna().to_numpy()
        rules = np.full(len(f), None, dtype=object)
        reasons = np.full(len(f), None, dtype=object)
        rules[ok], reasons[ok] = g["rule"].to_numpy(), g["reason"].to_numpy()
        r.refuse(refused, rules, reasons)
    f["flags"], f["flag_notes"] = oddities.flags(f, t)
    return f


# -- computed columns -------------------------------------------------------------------

def _spectral_min(r, p):   # longest wavelength → lowest frequency
    return wavelength_to_hz(r["WAVEMAX"], r["WAVEUNIT"].fillna("nm"))


def _spectral_max(r, p):
    return wavelength_to_hz(r["WAVEMIN"], r["WAVEUNIT"].fillna("nm"))


def _messenger(r, p):
    hz = wavelength_to_hz(r["WAVEMIN"], r["WAVEUNIT"].fillna("nm"))
    return messenger_from_wavelength(2.99792458e17 / hz)


def _pixel_deg(r, p):
    """Heliographic size of one pixel at disk centre (deg): one pixel over the apparent
    radius R_SUN (pixels), as an angle on the sphere."""
    rsun = pd.to_numeric(r["R_SUN"], errors="coerce").astype(float).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.degrees(np.arcsin(np.clip(1.0 / rsun, -1, 1)))


def _obs_id(r, p):
    name = r["FILENAME"].astype("string")
    stem = name.str.replace(r"\.(fits|fts|fit)(\.gz)?$", "", regex=True)
    return stem.fillna("obs_" + r["OBSERVATIONS_ID"].astype(str)).astype(object).to_numpy()


def _feature_name(r, p):
    n = whole(r["HELIO_AR_NUMBER"])
    return ("HFC AR " + n.astype("string")).astype(object).where(n.notna(), None).to_numpy()


def _granule_gid(r, p):
    return ("hfc_ar_" + r["CODE"].astype("string").str.lower().fillna("unknown")
            ).astype(object).to_numpy()


def _warm_up() -> None:
    from ...geometry.hfc_ar import warm_up
    warm_up()


SERVICE = Service(
    name="hfc1ar",
    title="HFC active regions",
    description=(
        "Solar active regions detected on full-disk images and catalogued by the "
        "Heliophysics Feature Catalogue (HFC, Observatoire de Paris). Each row is one "
        "region on one image; s_region is the region's contour (the catalogue's chain "
        "code) as a polygon in Carrington longitude and latitude, clipped to the visible "
        "disk."),
    creator="Observatoire de Paris (PADC); HFC detection codes' authors",
    subjects=("Solar active regions", "Sun", "Solar magnetic fields"),
    spatial_frame_type="body",
    source=SOURCE,
    fields={
        "instrument_host_name": "OBSERVAT",
        "instrument_name": "INSTRUME",
        "s_region": "s_region",
        "c1min": "c1min", "c1max": "c1max", "c2min": "c2min", "c2max": "c2max",
    },
    constants={
        **SOLAR, **CARRINGTON,
        "dataproduct_type": "ci",
        "processing_level": 5,
        "target_region": "solar-active-regions",
    },
    computed={
        "granule_gid": _granule_gid,
        "obs_id": _obs_id,
        "time_min": jd_of("DATE_OBS"),
        "time_max": jd_end("DATE_END", "DATE_OBS"),
        "time_exp_min": number("EXP_TIME"),
        "time_exp_max": number("EXP_TIME"),
        "spectral_range_min": _spectral_min,
        "spectral_range_max": _spectral_max,
        "c1_resol_min": _pixel_deg, "c1_resol_max": _pixel_deg,
        "c2_resol_min": _pixel_deg, "c2_resol_max": _pixel_deg,
        "messenger": _messenger,
        "feature_name": _feature_name,
    },
    uid=granule_uid,
    prepare=prepare,
    qa_fields=("ID_AR", "OBSERVATIONS_ID", "geom_flag", "area_ratio", "n_vertices",
               "simplify_change", "centroid_lon", "centroid_lat", "FEAT_CARR_LONG_DEG",
               "FEAT_CARR_LAT_DEG", "RUN_DATE", "flags", "flag_notes"),
    # a worker converting a chunk of regions peaks at about 70 MB per 1000 regions
    # (outline vertices and their temporaries): 10 000 keeps two workers and the driver
    # near 2 GB at the speed of larger chunks (benchmarks/bench_hfc1ar.py)
    defaults={"source": "sqlite:///outputs/samples/hfc.sqlite", "chunk_size": 10000},
    sample=hfc_sample.build,
    warm_up=_warm_up,
    meta={"referenceURL": "http://hfc.helio-vo.eu",
          "source": "Heliophysics Feature Catalogue, hfc1 database"},
)
