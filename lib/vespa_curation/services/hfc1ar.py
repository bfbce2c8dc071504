"""hfc1ar — solar active regions of the Heliophysics Feature Catalogue (HFC).

One granule per detected region (``dataproduct_type = ci``: the rows are the catalogue).
The region's chain-code contour, in the pixels of its image, becomes the ``s_region``
polygon in Carrington longitude/latitude (``vespa_curation.geometry``).

Source: HFC tables ACTIVEREGIONS ⋈ OBSERVATIONS ⋈ OBSERVATORY ⋈ FRC_INFO (column
names of FACTS.md, any letter case).
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd

from .base import CARRINGTON, SOLAR, Mark, Service, jd_end, jd_of, \
    messenger_from_wavelength, number, sql_time, to_datetime, wavelength_to_hz

#: What the harvest reads, table by table (checked before any work starts).
NEEDS = {
    "ACTIVEREGIONS": ["ID_AR", "FRC_INFO_ID", "OBSERVATIONS_ID", "FEAT_X_PIX", "FEAT_Y_PIX",
                      "FEAT_CARR_LONG_DEG", "FEAT_CARR_LAT_DEG", "FEAT_AREA_PIX",
                      "FEAT_AREA_DEG2", "CC_X_PIX", "CC_Y_PIX", "CC_X_ARCSEC", "CC_Y_ARCSEC",
                      "CC", "CC_LENGTH", "HELIO_AR_NUMBER", "RUN_DATE"],
    "OBSERVATIONS": ["ID_OBSERVATIONS", "OBSERVATORY_ID", "DATE_OBS", "DATE_END",
                     "EXP_TIME", "R_SUN", "CENTER_X", "CENTER_Y", "CDELT1", "CDELT2",
                     "NAXIS1", "NAXIS2", "FILENAME", "URL", "QCLK_URL"],
    "OBSERVATORY": ["ID_OBSERVATORY", "OBSERVAT", "INSTRUME", "TELESCOP", "WAVEMIN",
                    "WAVEMAX", "WAVEUNIT", "OBS_TYPE"],
    "FRC_INFO": ["ID_FRC_INFO", "CODE", "VERSION", "INSTITUT"],
}
_PREFIX = {"ACTIVEREGIONS": "A", "OBSERVATIONS": "O", "OBSERVATORY": "Y", "FRC_INFO": "F"}


def harvest_sql(source, mark: Mapping[str, Any] | None) -> tuple[str, tuple]:
    """The harvest query and its bound parameters (qmark style).

    With a mark, only regions of images at or after ``mark['time']`` (DATE_OBS), or
    re-processed after ``mark['run_date']`` (RUN_DATE), or with ID_AR above
    ``mark['id']``, or quarantined earlier (ID_AR in ``mark['retry']``) are read; rows at
    the boundary come again and are deduplicated by granule_uid downstream.

    Each condition is its own index-friendly ``SELECT ID_AR`` (DATE_OBS and ID_AR are
    indexed in HFC), united in a derived table joined on ID_AR — an ``OR`` of the
    conditions would scan all 1.15 M regions. The RUN_DATE branch is the one scan left
    (RUN_DATE has no index in HFC), kept on purpose: it is what catches regions
    re-processed in place (same ID_AR, new RUN_DATE), and it costs one scan a night —
    measured on the 1.15 M-region benchmark database (SQLite, file in the page cache):
    the nightly query takes 0.6–1.0 s with it, 0.01–0.015 s without (of a night's
    3.6–5.2 s of library work; ``benchmarks/bench_nightly.py`` prints both). Should it grow costly on
    the real database, the remedy is an index on ACTIVEREGIONS.RUN_DATE in HFC, or a
    :class:`~.base.Mark` without ``source_time`` (then never sent; docs/services.md).
    """
    cols = ", ".join(f"{_PREFIX[t]}.{c}" for t, cs in NEEDS.items() for c in cs)
    t = {name: source.table_name(name) for name in NEEDS}
    ar = t["ACTIVEREGIONS"]
    joins = (f"LEFT JOIN {t['OBSERVATIONS']} O ON A.OBSERVATIONS_ID = O.ID_OBSERVATIONS "
             f"LEFT JOIN {t['OBSERVATORY']} Y ON O.OBSERVATORY_ID = Y.ID_OBSERVATORY "
             f"LEFT JOIN {t['FRC_INFO']} F ON A.FRC_INFO_ID = F.ID_FRC_INFO")
    sql = f"SELECT {cols} FROM {ar} A {joins}"
    params: tuple = ()
    if mark:
        subs = []
        if mark.get("time") is not None:
            subs.append(f"SELECT A2.ID_AR FROM {t['OBSERVATIONS']} O2 JOIN {ar} A2 "
                        "ON A2.OBSERVATIONS_ID = O2.ID_OBSERVATIONS WHERE O2.DATE_OBS >= ?")
            params += (sql_time(source, mark["time"]),)
        if mark.get("run_date") is not None:
            subs.append(f"SELECT ID_AR FROM {ar} WHERE RUN_DATE > ?")
            params += (sql_time(source, mark["run_date"]),)
        if mark.get("id") is not None:
            subs.append(f"SELECT ID_AR FROM {ar} WHERE ID_AR > ?")
            params += (int(mark["id"]),)
        retry = [int(i) for i in (mark.get("retry") or [])]
        if retry:   # records quarantined earlier, read again by id
            subs.append(f"SELECT ID_AR FROM {ar} WHERE ID_AR IN ("
                        + ", ".join("?" * len(retry)) + ")")
            params += tuple(retry)
        if subs:
            sql = (f"SELECT {cols} FROM ({' UNION '.join(subs)}) M "
                   f"JOIN {ar} A ON A.ID_AR = M.ID_AR {joins}")
    # grouped by image (an image's regions must share a chunk for the uid collision
    # rule); no time order needed, so the database streams rows through its index on
    # ACTIVEREGIONS.OBSERVATIONS_ID instead of sorting the whole join first
    sql += " ORDER BY A.OBSERVATIONS_ID, A.ID_AR"
    return sql, params


def harvest(source, params: Mapping[str, Any], mark: Mapping[str, Any] | None
            ) -> Iterator[pd.DataFrame]:
    """Chunks of joined region records; an image's regions never straddle two chunks
    (granule_uid collisions are resolved within an image)."""
    sql, args = harvest_sql(source, mark)
    if params.get("limit"):
        sql += f" LIMIT {int(params['limit'])}"
    carry = None
    for chunk in source.query(sql, args, chunksize=params["chunk_size"]):
        if carry is not None:
            chunk = pd.concat([carry, chunk], ignore_index=True)
        obs = chunk["OBSERVATIONS_ID"].to_numpy()
        last = obs[-1]
        tail = obs == last
        if tail.all():
            carry = chunk
            continue
        cut = int(np.argmax(tail))  # rows are ordered by image: the tail is contiguous
        carry = chunk.iloc[cut:].reset_index(drop=True)
        yield chunk.iloc[:cut].reset_index(drop=True)
    if carry is not None and len(carry):
        yield carry


def granule_uid(records: pd.DataFrame) -> pd.Series:
    """``ar_<YYYYMMDD_HHMMSS of DATE_OBS>_<FEAT_X_PIX>_<FEAT_Y_PIX>``, the live service's
    form; when two regions of one image collide, the later (higher ID_AR) gets
    ``_<ID_AR>`` appended."""
    t = to_datetime(records["DATE_OBS"])
    stamp = t.dt.strftime("%Y%m%d_%H%M%S").fillna("nodate")
    x = pd.to_numeric(records["FEAT_X_PIX"], errors="coerce").round().astype("Int64")
    y = pd.to_numeric(records["FEAT_Y_PIX"], errors="coerce").round().astype("Int64")
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


def prepare(records: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Refuse records without an observation or a readable date, then compute the
    geometry (s_region, c1/c2 ranges, flags) of the others."""
    from ..geometry import hfc_ar_polygons

    records = records.copy()
    records["rule"] = None
    records["reason"] = None
    no_obs = records["ID_OBSERVATIONS"].isna()
    records.loc[no_obs, "rule"] = "source.missing_observation"
    records.loc[no_obs, "reason"] = [
        f"ACTIVEREGIONS.ID_AR={i}: OBSERVATIONS_ID={o} names no row of OBSERVATIONS"
        for i, o in zip(records.loc[no_obs, "ID_AR"], records.loc[no_obs, "OBSERVATIONS_ID"])]
    t = to_datetime(records["DATE_OBS"])
    now = pd.Timestamp.now("UTC").tz_localize(None)
    bad_t = (t.isna() | (t > now + pd.Timedelta(days=1))) & ~no_obs
    records.loc[bad_t, "rule"] = "source.bad_date"
    records.loc[bad_t, "reason"] = [
        f"ACTIVEREGIONS.ID_AR={i}: DATE_OBS {d!r} of its observation is not a date of an "
        "observation (unreadable, outside 1677-2262, or in the future)"
        for i, d in zip(records.loc[bad_t, "ID_AR"], records.loc[bad_t, "DATE_OBS"])]
    # two records under one ID_AR: which one the id names is unknown — refuse both
    # (within the chunk; the harvest keeps an image's regions in one chunk)
    dup = records["ID_AR"].duplicated(keep=False).to_numpy() & records["rule"].isna().to_numpy()
    records.loc[dup, "rule"] = "source.duplicate_id"
    records.loc[dup, "reason"] = [
        f"ACTIVEREGIONS.ID_AR={i} names {n} records of this harvest (ID_AR must be unique)"
        for i, n in zip(records.loc[dup, "ID_AR"],
                        records.loc[dup, "ID_AR"].map(records["ID_AR"].value_counts()))]
    ok = records["rule"].isna().to_numpy()
    geom_cols = ["s_region", "c1min", "c1max", "c2min", "c2max", "geom_flag",
                 "area_ratio", "n_vertices", "simplify_change"]
    for c in geom_cols:
        records[c] = None
    if ok.any():
        sub = records[ok].copy()
        sub["DATE_OBS"] = t[ok]
        g = hfc_ar_polygons(sub)
        for c in geom_cols:
            records.loc[ok, c] = g[c].to_numpy()
        refused = g["rule"].notna().to_numpy()
        idx = records.index[ok][refused]
        records.loc[idx, "rule"] = g["rule"].to_numpy()[refused]
        records.loc[idx, "reason"] = [
            f"ACTIVEREGIONS.ID_AR={i}: {r}"
            for i, r in zip(records.loc[idx, "ID_AR"], g["reason"].to_numpy()[refused])]
    return records


# -- computed columns -------------------------------------------------------------------

def _spectral_min(r, p):   # longest wavelength → lowest frequency
    return wavelength_to_hz(r["WAVEMAX"], r["WAVEUNIT"].fillna("nm"))


def _spectral_max(r, p):
    return wavelength_to_hz(r["WAVEMIN"], r["WAVEUNIT"].fillna("nm"))


def _messenger(r, p):
    hz = wavelength_to_hz(r["WAVEMIN"], r["WAVEUNIT"].fillna("nm"))
    return messenger_from_wavelength(2.99792458e17 / hz)


def _pixel_deg(r, p):
    """Heliographic size of one pixel at disk centre (deg): CDELT over the apparent
    radius R_SUN × CDELT, as an angle on the sphere."""
    rsun = pd.to_numeric(r["R_SUN"], errors="coerce").astype(float).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.degrees(np.arcsin(np.clip(1.0 / rsun, -1, 1)))


def _obs_id(r, p):
    name = r["FILENAME"].astype("string")
    stem = name.str.replace(r"\.(fits|fts|fit)(\.gz)?$", "", regex=True)
    return stem.fillna("obs_" + r["OBSERVATIONS_ID"].astype(str)).astype(object).to_numpy()


def _feature_name(r, p):
    n = pd.to_numeric(r["HELIO_AR_NUMBER"], errors="coerce").astype("Int64")
    return ("HFC AR " + n.astype("string")).astype(object).where(n.notna(), None).to_numpy()


def _granule_gid(r, p):
    return ("hfc_ar_" + r["CODE"].astype("string").str.lower().fillna("unknown")
            ).astype(object).to_numpy()


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
    needs=NEEDS,
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
    harvest=harvest,
    source_id="ID_AR",
    prepare=prepare,
    qa_fields=("ID_AR", "OBSERVATIONS_ID", "geom_flag", "area_ratio", "n_vertices",
               "simplify_change", "FEAT_CARR_LONG_DEG", "FEAT_CARR_LAT_DEG", "RUN_DATE"),
    mark=Mark(time_column="time_min", source_time="RUN_DATE", source_id="ID_AR"),
    sample="hfc",
    meta={"referenceURL": "http://hfc.helio-vo.eu",
          "source": "Heliophysics Feature Catalogue, hfc1 database"},
)
