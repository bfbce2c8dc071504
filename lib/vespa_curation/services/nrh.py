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

from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd

from .. import datalinks
from ..params import Param
from ..sources.dump import apply_layout, with_time_filter
from ..sources.errors import SourceError
from .base import SOLAR, Mark, Service, access_format, file_stem, jd_end, jd_of, \
    number, read_records, size_kb, to_datetime

SCHEMA = "nrh"
#: Source layout: logical field ← ``_source`` field of the index's documents.
LAYOUT = {
    "DATE_OBS": "date_obs",              # session start, UTC ISO 8601
    "DATE_END": "date_end",              # session end, UTC ISO 8601
    "FILENAME": "file_name",             # e.g. nrh2_0000_h80_20120111_080500c06_b.fts
    "FILE_URL": "file_url",              # public URL of the data file
    "FILE_SIZE": "file_size",            # bytes
    "FILE_FORMAT": "file_format",        # MIME type (default application/fits)
    "FREQUENCIES": "frequencies",        # list of observed frequencies, MHz
    "INTEGRATION": "integration_time",   # s
    "OBS_MODE": "obs_mode",              # e.g. "2D images"
}
#: NRH observing frequencies (MHz; FACTS.md, Hamini et al. 2021).
NRH_FREQUENCIES_MHZ = (150.9, 173.2, 228.0, 270.6, 327.0, 408.0, 432.0, 445.0)


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


def access_params(hapi_dataset: str, das2_dataset: str) -> tuple[Param, ...]:
    """Parameters of the data-access links (HAPI 3, das2) and documentation."""
    return (
        Param("hapi_server", str, None, "HAPI 3 server base URL (…/hapi); none = no HAPI "
              "links"),
        Param("hapi_dataset", str, hapi_dataset, "HAPI dataset id of the time series"),
        Param("das2_server", str, None, "das2 server URL (the das2 server script); "
              "none = no das2 links"),
        Param("das2_dataset", str, das2_dataset, "das2 dataset id"),
        Param("documentation_url", str, "https://rsdb.obs-nancay.fr/",
              "documentation page linked from every granule (#documentation)"),
    )


PARAMS = (
    Param("noisy_frequencies", str, "", "NRH frequencies (MHz, comma-separated) whose "
          "quicklooks are left out of the datalinks and the thumbnail", check=_check_freqs),
    Param("quicklook_base", str, "https://rsdb.obs-nancay.fr/QL/Nrh/gif",
          "base URL of the GIF quicklooks nrh<DDMMYYYY>_<MHz×10>.gif"),
) + access_params("nrh_flux", "nrh_flux")


def needs() -> dict[str, list[str]]:
    return {"*": [LAYOUT[k] for k in ("DATE_OBS", "FILE_URL", "FREQUENCIES")]}


def harvest_documents(source, params, mark, layout) -> Iterator[pd.DataFrame]:
    """Chunks of documents of a document source renamed by ``layout``; with a mark, only
    documents whose DATE_OBS is at or after ``mark['time']`` (the boundary comes again
    and is deduplicated by granule_uid downstream) or whose ``_id`` was quarantined
    earlier (``mark['retry']``)."""
    if not hasattr(source, "hits"):
        raise SourceError(f"source {source.label} is not an Elasticsearch index or an "
                          "NDJSON dump (es:FILE or ndjson:FILE)")
    since = (mark or {}).get("time")
    retry = (mark or {}).get("retry") or () if since is not None else ()
    query = with_time_filter(source.query, layout["DATE_OBS"], since, ids=retry)
    limit = params.get("limit")
    n = 0
    for frame in read_records(source, params["chunk_size"], query=query):
        if limit:
            frame = frame.iloc[:max(0, int(limit) - n)]
        if not len(frame):
            break
        n += len(frame)
        yield apply_layout(frame, layout).reset_index(drop=True)
        if limit and n >= int(limit):
            break


def harvest(source, params: Mapping[str, Any], mark: Mapping[str, Any] | None
            ) -> Iterator[pd.DataFrame]:
    yield from harvest_documents(source, params, mark, LAYOUT)


def granule_uid(records: pd.DataFrame) -> pd.Series:
    """The Elasticsearch document ``_id``."""
    return records["_ID"].astype(object)


def prepare_times(records: pd.DataFrame, what: str) -> pd.DataFrame:
    """Refuse documents whose DATE_OBS is not a date, or DATE_END before DATE_OBS."""
    records = records.copy()
    records["rule"] = None
    records["reason"] = None
    t0 = to_datetime(records["DATE_OBS"])
    t1 = to_datetime(records["DATE_END"])
    bad = t0.isna().to_numpy()
    records.loc[bad, "rule"] = "source.bad_date"
    records.loc[bad, "reason"] = [f"{what} document _id={i}: date_obs {d!r} is not a date"
                                  for i, d in zip(records.loc[bad, "_ID"],
                                                  records.loc[bad, "DATE_OBS"])]
    rev = (~bad) & (t1 < t0).to_numpy()
    records.loc[rev, "rule"] = "source.time_order"
    records.loc[rev, "reason"] = [f"{what} document _id={i}: date_end {e!r} is before "
                                  f"date_obs {d!r}" for i, d, e in
                                  zip(records.loc[rev, "_ID"], records.loc[rev, "DATE_OBS"],
                                      records.loc[rev, "DATE_END"])]
    return records


def prepare(records: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Check times; compute the frequency range and the quicklook frequencies."""
    records = prepare_times(records, "nrh")
    noisy = np.array(parse_frequencies(params.get("noisy_frequencies")), dtype=float)
    fmin, fmax, ql = [], [], []
    for i, fr in enumerate(records["FREQUENCIES"]):
        if isinstance(fr, str):      # "150.9,173.2" in some indices
            try:
                fr = parse_frequencies(fr)
            except ValueError:
                fr = []
        f = np.array(sorted({float(x) for x in (fr if isinstance(fr, (list, tuple, np.ndarray))
                                                   else [])}), dtype=float)
        if not len(f):
            if records.at[i, "rule"] is None:
                records.at[i, "rule"] = "source.no_frequencies"
                records.at[i, "reason"] = (f"nrh document _id={records.at[i, '_ID']}: "
                                           "no observed frequencies")
            fmin.append(np.nan), fmax.append(np.nan), ql.append("")
            continue
        fmin.append(f.min())
        fmax.append(f.max())
        keep = f[~np.isclose(f[:, None], noisy[None, :], atol=0.05).any(axis=1)] \
            if len(noisy) else f
        ql.append(",".join(f"{x:g}" for x in keep))
    records["FMIN_MHZ"] = fmin
    records["FMAX_MHZ"] = fmax
    records["QL_FREQS"] = ql
    return records


# -- computed columns -------------------------------------------------------------------

def _datalink_url(r, p):
    return datalinks.datalink_urls(p["server_url"], SCHEMA, r["_UID"])


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

def access_links(rows: pd.DataFrame, params: Mapping[str, Any], what: str) -> list:
    """HAPI 3 and das2 links over each granule's window, and the documentation link."""
    uid = rows["granule_uid"].to_numpy(dtype=object)
    parts = []
    if params.get("hapi_server"):
        parts.append(datalinks.link_rows(
            uid, datalinks.hapi_urls(params["hapi_server"], params["hapi_dataset"],
                                     rows["time_min"], rows["time_max"]),
            "#coderived", datalinks.HAPI_CSV, f"{what} over the granule's time range "
            "(HAPI 3, CSV)"))
    if params.get("das2_server"):
        parts.append(datalinks.link_rows(
            uid, datalinks.das2_urls(params["das2_server"], params["das2_dataset"],
                                     rows["time_min"], rows["time_max"]),
            "#coderived", datalinks.DAS2_STREAM, f"{what} over the granule's time range "
            "(das2 stream)"))
    parts.append(datalinks.link_rows(uid, params.get("documentation_url"), "#documentation",
                                     "text/html", "Instrument and archive documentation"))
    return parts


def links(rows: pd.DataFrame, records: pd.DataFrame | None, params: Mapping[str, Any]
          ) -> pd.DataFrame:
    """FITS file (#this), GIF quicklook per non-noisy frequency (#preview), thumbnail
    (#thumbnail), HAPI/das2 (#coderived), documentation."""
    uid = rows["granule_uid"].to_numpy(dtype=object)
    size = pd.to_numeric(rows["access_estsize"], errors="coerce") * 1024
    parts = [datalinks.link_rows(uid, rows["access_url"], "#this", rows["access_format"],
                                 "NRH data file of the session", size)]
    t = datalinks.jd_to_datetime(rows["time_min"])
    qu, qd, qi = [], [], []
    for u, d, ql in zip(uid, t, rows["qa_ql_freqs"]):
        for f in [float(x) for x in str(ql).split(",") if x]:
            qi.append(u)
            qu.append(quicklook_url(params["quicklook_base"], d, f))
            qd.append(f"Quicklook image at {f:g} MHz (GIF)")
    parts.append(datalinks.link_rows(qi, qu, "#preview", "image/gif", qd))
    parts.append(datalinks.link_rows(uid, rows["thumbnail_url"], "#thumbnail", "image/gif",
                                     "Quicklook at the highest frequency (GIF)"))
    parts += access_links(rows, params, "NRH flux time series")
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
    needs=needs(),
    fields={
        "access_url": "FILE_URL",
    },
    constants={
        **SOLAR,
        "dataproduct_type": "im",
        "processing_level": 2,
        "target_region": "solar-corona",
        "messenger": "Radio",
        "instrument_host_name": "Nancay Radio Observatory",
        "instrument_name": "NRH",
    },
    computed={
        "granule_gid": lambda r, p: np.full(len(r), "nrh_sessions", dtype=object),
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
        "datalink_url": _datalink_url,
    },
    uid=granule_uid,
    harvest=harvest,
    source_id="_ID",
    prepare=prepare,
    links=links,
    qa_fields=("QL_FREQS", "FMIN_MHZ", "FMAX_MHZ", "OBS_MODE"),
    params=PARAMS,
    mark=Mark(time_column="time_min"),
    sample="nrh",
    meta={"referenceURL": "https://rsdb.obs-nancay.fr/",
          "source": "Nancay Elasticsearch index nrh"},
    rd_extras=datalinks.rd_extras_for(),
)
