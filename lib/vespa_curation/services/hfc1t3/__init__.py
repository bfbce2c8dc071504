"""hfc1t3 — solar type III radio bursts of the Heliophysics Feature Catalogue (HFC).

One granule per burst detected by RABAT3 on a dynamic spectrum (``dataproduct_type =
ci``: the rows are the catalogue): its time range, its frequency range (Hz) from the
burst's contour, the instrument from OBSERVATORY; no spatial coordinates
(``spatial_frame_type = none``). The contour (TYPE_III's chain code in time–frequency
pixels) becomes a TFCat feature (:mod:`vespa_curation.tfcat`): one TFCat file per
granule, ``tfcat/<granule_uid>.json`` in the import area, served by the service's
datalink service (static renderer) at ``<server_url>/hfc1t3/q/dl/static/<uid>.json`` —
the granule's ``access_url`` and one of its datalinks. A record whose chain start pixel
does not map onto its stored CC_X_UTC/CC_Y_MHZ is refused (``tfcat.scale_mismatch``).

Source: HFC tables TYPE_III ⋈ OBSERVATIONS ⋈ OBSERVATORY ⋈ FRC_INFO (column names of
HFC's schema, any letter case).
"""
from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ... import datalinks
from ...formats import tfcat
from ...hfc import sample as hfc_sample
from ...hfc.schema import columns, kinds, observation_joins
from ...parameter import Param
from ...sources import Mark, SqlTable
from ...times import iso_ms, to_datetime
from ..checks import Refusals
from ..columns import datalink_url, jd_end, jd_of, number, whole
from ..declare import Service
from ..presets import SOLAR
from ..rowmaker import UID

SCHEMA = "hfc1t3"
#: Folder of the TFCat files in the import area (served by the dl service).
TFCAT_DIR = "tfcat"

PARAMS = (
    Param("t3_freq_step_unit", str, "kHz",
          "unit of OBSERVATIONS.CDELT2 (frequency step) for type III spectra; RABAT3 "
          "writes kHz", choices=tuple(tfcat.FREQ_STEP_UNITS)),
)


_COLUMNS = columns(
    T=["ID_TYPE_III", "FRC_INFO_ID", "OBSERVATIONS_ID", "CC_X_PIX", "CC_Y_PIX",
       "CC_X_UTC", "CC_Y_MHZ", "CC", "CC_LENGTH", "TIME_START", "TIME_END",
       "FEAT_MAX_INT", "DRIFT_START", "DRIFT_END", "LVL_TRUST", "HELIO_T3_NUMBER",
       "RUN_DATE"],
    O=["ID_OBSERVATIONS", "OBSERVATORY_ID", "DATE_OBS", "DATE_END", "NAXIS1", "NAXIS2",
       "CDELT1", "CDELT2", "FILENAME", "URL", "QCLK_URL"],
    Y=["ID_OBSERVATORY", "OBSERVAT", "INSTRUME", "TELESCOP", "WAVEMIN", "WAVEMAX",
       "WAVEUNIT"],
    F=["ID_FRC_INFO", "CODE", "VERSION", "INSTITUT", "REFERENCE"])

SOURCE = SqlTable(
    table="TYPE_III", alias="T", key="ID_TYPE_III", columns=_COLUMNS,
    kinds=kinds(_COLUMNS, "TYPE_III", "T"),
    joins=observation_joins("T"),
    order_by=("TIME_START", "ID_TYPE_III"),
    mark=Mark(time="TIME_START", changed="RUN_DATE", id="ID_TYPE_III"))


def granule_uid(records: pd.DataFrame) -> pd.Series:
    """``t3_<YYYYMMDD_HHMMSS of TIME_START>_<ID_TYPE_III>``."""
    stamp = to_datetime(records["TIME_START"]).dt.strftime("%Y%m%d_%H%M%S").fillna("nodate")
    ids = whole(records["ID_TYPE_III"])
    return ("t3_" + stamp + "_" + ids.astype("string").fillna("na")).astype(object)


def tfcat_url(server_url: str, uid: str) -> str:
    return datalinks.static_url(server_url, SCHEMA, f"{uid}.json")


def prepare(records: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Refuse records without an observation, a readable TIME_START, a valid chain code
    or a time–frequency scale agreeing with CC_X_UTC/CC_Y_MHZ; build the TFCat feature
    and the frequency range of the others."""
    from ...geometry.chaincode import check_chains

    unit = params.get("t3_freq_step_unit", "kHz")
    r = Refusals(records, lambda f: [f"TYPE_III.ID_TYPE_III={i}" for i in f["ID_TYPE_III"]])
    f = r.records
    r.refuse(f["ID_OBSERVATIONS"].isna(), "source.missing_observation",
             lambda i: f"OBSERVATIONS_ID={f['OBSERVATIONS_ID'].iat[i]} names no row of "
                       "OBSERVATIONS")
    r.refuse(to_datetime(f["TIME_START"]).isna(), "source.bad_date",
             lambda i: f"TIME_START {f['TIME_START'].iat[i]!r} is not a date")
    r.refuse(to_datetime(f["DATE_OBS"]).isna(), "source.bad_date",
             lambda i: f"DATE_OBS {f['DATE_OBS'].iat[i]!r} of its observation is not a date")
    rule, reason = check_chains(list(f["CC"]), _num(f["CC_LENGTH"]), _num(f["CC_X_PIX"]),
                                _num(f["CC_Y_PIX"]), _num(f["NAXIS1"]), _num(f["NAXIS2"]))
    r.refuse(pd.notna(rule), rule, reason)
    ok = r.ok
    if ok.any():
        full_r = np.full(len(f), None, object)
        full_w = np.full(len(f), None, object)
        full_r[ok], full_w[ok] = tfcat.scale_check(f[ok].reset_index(drop=True), unit)
        r.refuse(pd.notna(full_r), full_r, full_w)
    ok = r.ok
    for c in ("FMIN_MHZ", "FMAX_MHZ", "TFCAT_FEATURE"):
        f[c] = None
    if ok.any():
        feats, fmin, fmax = _features(f[ok].reset_index(drop=True), unit)
        f.loc[ok, "FMIN_MHZ"] = fmin
        f.loc[ok, "FMAX_MHZ"] = fmax
        f.loc[ok, "TFCAT_FEATURE"] = feats
    return f


def _features(sub: pd.DataFrame, unit: str) -> tuple[list, list, list]:
    """(TFCat feature JSON, lowest MHz, highest MHz) of each burst's contour."""
    rings = tfcat.contours(sub, unit)
    feats, fmin, fmax = [], [], []
    t_start = iso_ms(sub["TIME_START"])
    t_end = iso_ms(sub["TIME_END"])
    trust = pd.to_numeric(sub["LVL_TRUST"], errors="coerce").to_numpy(dtype=float)
    ids = pd.to_numeric(sub["ID_TYPE_III"], errors="coerce").to_numpy(dtype=float)
    for i, ring in enumerate(rings):
        lo, hi = float(ring[:, 1].min()), float(ring[:, 1].max())
        fmin.append(lo)
        fmax.append(hi)
        uid = sub[UID].iat[i]
        feats.append(json.dumps(tfcat.feature(uid, tfcat.polygon(ring), {
            "granule_uid": uid, "id_type_iii": int(ids[i]),
            "time_start": t_start[i], "time_end": t_end[i],
            "fmin": round(lo, 6), "fmax": round(hi, 6),
            "lvl_trust": None if np.isnan(trust[i]) else int(trust[i]),
            "observatory": sub["OBSERVAT"].iat[i], "instrument": sub["INSTRUME"].iat[i]}),
            separators=(",", ":")))
    return feats, fmin, fmax


def _num(s) -> np.ndarray:
    return pd.to_numeric(pd.Series(s), errors="coerce").to_numpy(dtype=float)


# -- computed columns -------------------------------------------------------------------

def _spectral_step(r, p):
    f = tfcat.FREQ_STEP_UNITS[p.get("t3_freq_step_unit", "kHz")]
    return _num(r["CDELT2"]) * f * 1e6


def _obs_id(r, p):
    name = r["FILENAME"].astype("string").str.replace(r"\.(Z|gz)$", "", regex=True)
    return name.fillna("obs_" + r["OBSERVATIONS_ID"].astype(str)).astype(object).to_numpy()


def _granule_gid(r, p):
    return ("hfc_t3_" + r["CODE"].astype("string").str.lower().fillna("unknown")
            ).astype(object).to_numpy()


def _instrument(r, p):
    ins = r["INSTRUME"].astype("string")
    tel = r["TELESCOP"].astype("string")
    both = (ins + "#" + tel).where(tel.notna() & (tel != ins), ins)
    return both.astype(object).where(both.notna(), None).to_numpy()


def _access_url(r, p):
    return np.array([tfcat_url(p["server_url"], u) for u in r[UID]], dtype=object)


def _access_estsize(r, p):
    size = r["TFCAT_FEATURE"].astype(str).str.len() + 700   # + the collection's header
    return np.ceil(size.to_numpy(dtype=float) / 1024).astype(int)


def _bib(r, p):
    ref = r["REFERENCE"].astype("string").str.strip().str.replace(r"^doi:", "", regex=True)
    return ref.astype(object).where(ref.notna() & (ref != ""), None).to_numpy()


def _thumbnail(r, p):
    q = r["QCLK_URL"].astype("string").str.strip()
    return q.astype(object).where(q.notna() & (q != ""), None).to_numpy()


# -- datalinks and TFCat files ------------------------------------------------------------

def links(rows: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """TFCat feature (#this), the dynamic spectrum the burst was found on (#progenitor),
    its quicklook (#preview) and RABAT3's reference (#documentation)."""
    uid = rows["granule_uid"].to_numpy(dtype=object)
    parts = [datalinks.link_rows(uid, [tfcat_url(params["server_url"], u) for u in uid],
                                 "#this", "application/json",
                                 "TFCat contour of the burst (time, frequency)",
                                 _tfcat_bytes(rows))]
    if "qa_url" in rows:
        parts.append(datalinks.link_rows(uid, rows["qa_url"], "#progenitor",
                                         "application/octet-stream",
                                         "Dynamic spectrum the burst was detected on"))
    if "thumbnail_url" in rows:
        parts.append(datalinks.link_rows(uid, rows["thumbnail_url"], "#preview",
                                         "image/jpeg", "Quicklook of the dynamic spectrum"))
    if "bib_reference" in rows:
        doc = rows["bib_reference"].astype("string")
        url = ("https://doi.org/" + doc).where(doc.str.match(r"^10\.\d+/"), None)
        parts.append(datalinks.link_rows(uid, url, "#documentation", "text/html",
                                         "RABAT3 detection code (publication)"))
    return datalinks.concat_links(parts)


def _collection(uid: str, feature_json: str) -> dict:
    f = json.loads(feature_json)
    return tfcat.feature_collection([f], properties={
        "title": f"HFC type III burst {uid}", "service": SCHEMA,
        "instrument": f["properties"].get("instrument", ""),
        "observatory": f["properties"].get("observatory", "")})


def _tfcat_bytes(rows: pd.DataFrame) -> np.ndarray:
    if "qa_tfcat_feature" not in rows:
        return np.full(len(rows), None, object)
    return np.array([len(tfcat.dumps(_collection(u, f))) if isinstance(f, str) else None
                     for u, f in zip(rows["granule_uid"], rows["qa_tfcat_feature"])],
                    dtype=object)


def files(rows: pd.DataFrame, params: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """The import area's TFCat files: ``tfcat/<granule_uid>.json``, one TFCat
    FeatureCollection of one feature per granule."""
    out = {}
    for uid, feat in zip(rows["granule_uid"], rows.get("qa_tfcat_feature", [])):
        if isinstance(feat, str) and feat:
            out[f"{TFCAT_DIR}/{uid}.json"] = tfcat.dumps(_collection(uid, feat))
    return out


def catalogue(rows: pd.DataFrame) -> dict:
    """One TFCat FeatureCollection of every burst of ``rows`` (for QA and downloads)."""
    feats = [json.loads(f) for f in rows["qa_tfcat_feature"] if isinstance(f, str) and f]
    return tfcat.feature_collection(feats, properties={
        "title": "HFC type III bursts (RABAT3)", "service": SCHEMA})


SERVICE = Service(
    name=SCHEMA,
    title="HFC type III radio bursts",
    description=(
        "Solar type III radio bursts detected by the RABAT3 code on dynamic spectra "
        "(Wind/Waves, STEREO/Waves, Nancay Decameter Array) and catalogued by the "
        "Heliophysics Feature Catalogue (HFC, Observatoire de Paris). Each row is one "
        "burst: its time and frequency ranges; its time-frequency contour is served as "
        "a TFCat feature (access_url and datalinks)."),
    creator="Observatoire de Paris (PADC, LESIA); RABAT3 authors",
    subjects=("Solar radio emission", "Type III radio bursts", "Sun"),
    spatial_frame_type="none",
    source=SOURCE,
    fields={
        "instrument_host_name": "OBSERVAT",
    },
    constants={
        **SOLAR,
        "dataproduct_type": "ci",
        "processing_level": 5,
        "target_region": "radio-bursts",
        "feature_name": "type III radio burst",
        "messenger": "Radio",
        "access_format": "application/json",
    },
    computed={
        "granule_gid": _granule_gid,
        "obs_id": _obs_id,
        "time_min": jd_of("TIME_START"),
        "time_max": jd_end("TIME_END", "TIME_START"),
        "time_sampling_step_min": number("CDELT1"),
        "time_sampling_step_max": number("CDELT1"),
        "spectral_range_min": number("FMIN_MHZ", "MHz", "Hz"),
        "spectral_range_max": number("FMAX_MHZ", "MHz", "Hz"),
        "spectral_sampling_step_min": _spectral_step,
        "spectral_sampling_step_max": _spectral_step,
        "instrument_name": _instrument,
        "access_url": _access_url,
        "access_estsize": _access_estsize,
        "datalink_url": datalink_url(SCHEMA),
        "thumbnail_url": _thumbnail,
        "bib_reference": _bib,
    },
    uid=granule_uid,
    prepare=prepare,
    links=links,
    qa_fields=("ID_TYPE_III", "OBSERVATIONS_ID", "LVL_TRUST", "CC_X_UTC", "CC_Y_MHZ",
               "FMIN_MHZ", "FMAX_MHZ", "URL", "TFCAT_FEATURE", "RUN_DATE"),
    params=PARAMS,
    defaults={"source": "sqlite:///outputs/samples/hfc.sqlite"},
    sample=hfc_sample.build,
    meta={"referenceURL": "http://hfc.helio-vo.eu",
          "source": "Heliophysics Feature Catalogue, hfc1 database (TYPE_III)"},
    served_files=TFCAT_DIR,
    files=files,
)
