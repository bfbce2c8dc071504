"""orfees — ORFEES radio spectrograph (Nançay) daily dynamic spectra, 144–1004 MHz.

One granule per document of the Nançay Elasticsearch index ``orfees`` (granule_uid = the
document ``_id``): ``dataproduct_type = ds`` (dynamic spectrum), the observation's time
range and frequency range (Hz), the data file (access_url), the PNG quicklook
(thumbnail_url). Datalinks: the FITS file (#this), the PNG quicklook (#preview), HAPI 3
and das2 links over the granule's window (#coderived) when their servers are configured,
documentation.

The index layout is not public: :data:`LAYOUT` declares it (logical field ← ``_source``
field) — the one place a curator edits to match the real index (docs/services.md) — and
the embedded NDJSON dump follows it.
"""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from ... import datalinks
from ...sources import Documents, Mark
from ..checks import Refusals, time_order
from ..columns import access_format, datalink_url, file_stem, jd_end, jd_of, number, \
    size_kb, text, uid_from
from ..declare import Service
from ..presets import NANCAY_RADIO, SOLAR
from .layout import KINDS, LAYOUT
from .sample import build_sample

SCHEMA = "orfees"
#: ORFEES band (MHz; Hamini et al. 2021, JSWSC 11, 57), used when a document has none.
ORFEES_BAND_MHZ = (144.0, 1004.0)

PARAMS = datalinks.access_params("orfees_spectrum", "orfees")


SOURCE = Documents(layout=LAYOUT, required=("DATE_OBS", "FILE_URL"), kinds=KINDS,
                   mark=Mark(time="DATE_OBS"))


def prepare(records: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Check times and the frequency range (band edges by default)."""
    r = Refusals(records, lambda f: [f"orfees document _id={i}" for i in f["_ID"]])
    time_order(r, "DATE_OBS", "DATE_END")
    records = r.records
    lo = pd.to_numeric(records["FREQ_MIN"], errors="coerce").fillna(ORFEES_BAND_MHZ[0])
    hi = pd.to_numeric(records["FREQ_MAX"], errors="coerce").fillna(ORFEES_BAND_MHZ[1])
    r.refuse((lo > hi).to_numpy(), "source.frequency_order",
             lambda i: f"freq_min {lo.iat[i]} > freq_max {hi.iat[i]}")
    records["FMIN_MHZ"] = lo.to_numpy(dtype=float)
    records["FMAX_MHZ"] = hi.to_numpy(dtype=float)
    return records


def links(rows: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """FITS file (#this), PNG quicklook (#preview), HAPI/das2 (#coderived),
    documentation."""
    uid = rows["granule_uid"].to_numpy(dtype=object)
    parts = [datalinks.file_link(rows, "ORFEES dynamic spectrum file"),
             datalinks.link_rows(uid, rows["thumbnail_url"], "#preview", "image/png",
                                 "Quicklook of the dynamic spectrum (PNG)")]
    parts += datalinks.access_links(rows, params, "ORFEES dynamic spectrum")
    return datalinks.concat_links(parts)


SERVICE = Service(
    name=SCHEMA,
    title="ORFEES radio spectrograph",
    description=(
        "Dynamic spectra of the solar radio emission between 144 and 1004 MHz recorded "
        "by the ORFEES spectrograph (Nancay Radio Observatory). Each row is one "
        "spectrum file, with its PNG quicklook and data access through HAPI and das2 "
        "(datalinks)."),
    creator="Observatoire de Paris, Station de Radioastronomie de Nancay",
    subjects=("Sun", "Solar radio emission", "Radio spectra"),
    spatial_frame_type="none",
    source=SOURCE,
    fields={
        "access_url": "FILE_URL",
        "thumbnail_url": "QUICKLOOK_URL",
    },
    constants={
        **SOLAR, **NANCAY_RADIO,
        "dataproduct_type": "ds",
        "processing_level": 2,
        "target_region": "solar-radio-emission",
        "instrument_name": "ORFEES",
    },
    computed={
        "granule_gid": text("orfees_spectra"),
        "obs_id": file_stem("FILENAME", "_ID"),
        "time_min": jd_of("DATE_OBS"),
        "time_max": jd_end("DATE_END", "DATE_OBS"),
        "time_sampling_step_min": number("TIME_RES"),
        "time_sampling_step_max": number("TIME_RES"),
        "spectral_range_min": number("FMIN_MHZ", "MHz", "Hz"),
        "spectral_range_max": number("FMAX_MHZ", "MHz", "Hz"),
        "access_format": access_format("FILE_FORMAT", "FILE_URL"),
        "access_estsize": size_kb("FILE_SIZE"),
        "datalink_url": datalink_url(SCHEMA),
    },
    uid=uid_from("_ID"),
    prepare=prepare,
    links=links,
    qa_fields=("FMIN_MHZ", "FMAX_MHZ"),
    params=PARAMS,
    defaults={"source": "ndjson:outputs/samples/orfees.ndjson"},
    sample=build_sample,
    meta={"referenceURL": "https://rsdb.obs-nancay.fr/",
          "source": "Nancay Elasticsearch index orfees"},
)
