"""nrh — Nançay Radioheliograph observing sessions (2-D radio images of the Sun).

One granule per document of the Nançay Elasticsearch index ``nrh`` (granule_uid = the
document ``_id``, as the live service): ``dataproduct_type = im``, the session's time
range, the observed frequencies' range (Hz), the data file (access_url). Datalinks: the
FITS file (#this), one GIF quicklook per observed frequency (#preview) except the
frequencies configured as noisy, the quicklook at the highest remaining frequency as the
thumbnail (#thumbnail, and ``thumbnail_url``), HAPI 3 and das2 time-series links over the
session's window (#coderived) when their servers are configured, documentation.

The index layout is not public: :data:`LAYOUT` declares it (logical field ← ``_source``
field, dotted for nested objects) — the one place a curator edits to match the real
index (docs/services.md) — and the embedded NDJSON dump follows it.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from ... import datalinks
from ...parameter import Param
from ...sources import Documents, Mark
from ...sources.values import show
from ...times import jd_to_datetime, to_datetime
from ..checks import Refusals, time_order
from ..columns import access_format, datalink_url, file_stem, jd_end, jd_of, number, \
    size_kb, text, uid_from
from ..declare import Service
from ..presets import NANCAY_RADIO, SOLAR
from .layout import KINDS, LAYOUT, NRH_FREQUENCIES_MHZ  # noqa: F401 — part of the service's API
from .sample import build_sample

SCHEMA = "nrh"


def _check_freqs(value: str) -> str | None:
    try:
        parse_frequencies(value)
    except ValueError as exc:
        return str(exc)
    return None


def parse_frequencies(value) -> tuple[float, ...]:
    """``"150.9, 173.2"`` (MHz, comma- or #-separated) → (150.9, 173.2)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ()
    if isinstance(value, (int, float)):
        return (float(value),)
    parts = [p for p in str(value).replace("#", ",").split(",") if p.strip()]
    try:
        return tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"{value!r} is not a comma-separated list of MHz values") from None


PARAMS = (
    Param("noisy_frequencies", str, "150.9", "NRH frequencies (MHz, comma-separated) whose "
          "quicklooks are left out of the datalinks and the thumbnail", check=_check_freqs),
    Param("quicklook_base", str, "https://rsdb.obs-nancay.fr/QL/Nrh/gif",
          "base URL of the GIF quicklooks nrh<DDMMYYYY>_<MHz×10>.gif"),
) + datalinks.access_params("nrh_flux", "nrh_flux")


SOURCE = Documents(
    layout=LAYOUT, required=("DATE_OBS", "FILE_URL", "FREQUENCIES"), kinds=KINDS,
    mark=Mark(time="DATE_OBS"))


def prepare(records: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Check times and the observed frequencies; compute the frequency range and the
    quicklook frequencies."""
    r = Refusals(records, lambda f: [f"nrh document _id={i}" for i in f["_ID"]])
    time_order(r, "DATE_OBS", "DATE_END")
    records = r.records
    noisy = np.array(parse_frequencies(params.get("noisy_frequencies")), dtype=float)
    fmin, fmax, ql = [], [], []
    none = np.zeros(len(records), dtype=bool)
    bad = np.full(len(records), None, dtype=object)
    for i, fr in enumerate(records["FREQUENCIES"]):
        f, bad[i] = frequencies_of(fr)
        if not len(f):
            none[i] = bad[i] is None
            fmin.append(np.nan), fmax.append(np.nan), ql.append("")
            continue
        fmin.append(f.min())
        fmax.append(f.max())
        keep = f[~np.isclose(f[:, None], noisy[None, :], atol=0.05).any(axis=1)] \
            if len(noisy) else f
        ql.append(",".join(f"{x:g}" for x in keep))
    r.refuse(np.not_equal(bad, None), "source.bad_value", lambda i: bad[i])
    r.refuse(none, "source.no_frequencies", "no observed frequencies")
    records["FMIN_MHZ"] = fmin
    records["FMAX_MHZ"] = fmax
    records["QL_FREQS"] = ql
    return records


def frequencies_of(value) -> tuple[np.ndarray, str | None]:
    """(sorted distinct MHz, None) of a document's frequencies — a list of numbers or
    ``"150.9,173.2"`` text, as indices hold them — or (empty, why) when one of them is
    not a finite number."""
    if isinstance(value, str):      # "150.9,173.2" in some indices
        try:
            value = parse_frequencies(value)
        except ValueError as exc:
            return np.array([]), f"frequencies {exc}"
    if not isinstance(value, (list, tuple, np.ndarray)):
        return np.array([]), None
    out = []
    for x in value:
        try:
            if isinstance(x, (bool, np.bool_)):
                raise ValueError(x)
            v = float(x.strip() if isinstance(x, str) else x)
        except (TypeError, ValueError):
            v = np.nan
        if not np.isfinite(v):
            return np.array([]), (f"frequencies {show(list(value))} hold {show(x)}, not a "
                                  "finite number of MHz")
        out.append(v)
    return np.array(sorted(set(out)), dtype=float), None


# -- computed columns -------------------------------------------------------------------

def quicklook_url(base: str, date_obs, freq_mhz: float) -> str:
    """``<base>/nrh<DDMMYYYY>_<MHz×10, 4 digits>.gif`` (e.g. nrh11012012_2280.gif)."""
    t = pd.Timestamp(date_obs)
    return f"{base.rstrip('/')}/nrh{t:%d%m%Y}_{int(round(freq_mhz * 10)):04d}.gif"


def _thumbnail(r, p):
    t = to_datetime(r["DATE_OBS"])
    out = []
    for d, ql in zip(t, r["QL_FREQS"]):
        fs = [float(x) for x in str(ql).split(",") if x]
        out.append(quicklook_url(p["quicklook_base"], d, max(fs)) if fs and pd.notna(d)
                   else None)
    return np.array(out, dtype=object)


# -- datalinks ----------------------------------------------------------------------------

def links(rows: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """FITS file (#this), GIF quicklook per non-noisy frequency (#preview), thumbnail
    (#thumbnail), HAPI/das2 (#coderived), documentation."""
    uid = rows["granule_uid"].to_numpy(dtype=object)
    parts = [datalinks.file_link(rows, "NRH data file of the session")]
    t = jd_to_datetime(rows["time_min"])
    qu, qd, qi = [], [], []
    for u, d, ql in zip(uid, t, rows["qa_ql_freqs"]):
        for f in [float(x) for x in str(ql).split(",") if x]:
            qi.append(u)
            qu.append(quicklook_url(params["quicklook_base"], d, f))
            qd.append(f"Quicklook image at {f:g} MHz (GIF)")
    parts.append(datalinks.link_rows(qi, qu, "#preview", "image/gif", qd))
    parts.append(datalinks.link_rows(uid, rows["thumbnail_url"], "#thumbnail", "image/gif",
                                     "Quicklook at the highest frequency (GIF)"))
    parts += datalinks.access_links(rows, params, "NRH flux time series")
    return datalinks.concat_links(parts)


SERVICE = Service(
    name=SCHEMA,
    title="Nancay Radioheliograph",
    description=(
        "Observing sessions of the Nancay Radioheliograph (NRH): two-dimensional radio "
        "images of the solar corona at up to eight frequencies between 150 and 445 MHz. "
        "Each row is one session's data file, with quicklook images per frequency and "
        "time-series access (HAPI, das2) through datalinks."),
    creator="Observatoire de Paris, Station de Radioastronomie de Nancay",
    subjects=("Sun", "Solar radio emission", "Solar corona"),
    spatial_frame_type="none",
    source=SOURCE,
    fields={
        "access_url": "FILE_URL",
    },
    constants={
        **SOLAR, **NANCAY_RADIO,
        "dataproduct_type": "im",
        "processing_level": 2,
        "target_region": "solar-corona",
        "instrument_name": "NRH",
    },
    computed={
        "granule_gid": text("nrh_sessions"),
        "obs_id": file_stem("FILENAME", "_ID"),
        "time_min": jd_of("DATE_OBS"),
        "time_max": jd_end("DATE_END", "DATE_OBS"),
        "time_exp_min": number("INTEGRATION"),
        "time_exp_max": number("INTEGRATION"),
        "spectral_range_min": number("FMIN_MHZ", "MHz", "Hz"),
        "spectral_range_max": number("FMAX_MHZ", "MHz", "Hz"),
        "access_format": access_format("FILE_FORMAT", "FILE_URL"),
        "access_estsize": size_kb("FILE_SIZE"),
        "thumbnail_url": _thumbnail,
        "datalink_url": datalink_url(SCHEMA),
    },
    uid=uid_from("_ID"),
    prepare=prepare,
    links=links,
    qa_fields=("QL_FREQS", "FMIN_MHZ", "FMAX_MHZ", "OBS_MODE"),
    params=PARAMS,
    defaults={"source": "ndjson:outputs/samples/nrh.ndjson"},
    sample=build_sample,
    meta={"referenceURL": "https://rsdb.obs-nancay.fr/",
          "source": "Nancay Elasticsearch index nrh"},
)
