"""nda — dynamic spectra of Jupiter and the Sun from the Nançay Decameter Array.

One granule per product file of the archive (``dataproduct_type = ds``): the Routine
CDFs (``srn_nda_routine_{jup,sun}_edr_<start>_<stop>_V<nn>.cdf``) and the NewRoutine
and Mefisto FITS files (``orn_nda_{newroutine,mefisto}_{jup,sun}_edr_..._v<n.n>.fits``),
found under the ``files:`` folder at any depth. granule_uid is the file name without its
version suffix: the highest version of a product is published, the others are reported
(harvest.json ``superseded``).

Everything comes from the file, read little (:mod:`.reader`): the target (the CDF's
``PDS_Observation_target``, the FITS ``OBJECT``; a name whose target or product kind
disagrees with the content is refused), the time range and sampling step from the time
axis, the frequency range and step from the frequency axis and its unit. Where a
``VESPA_*`` attribute disagrees with the data, the data win and the row carries the
disagreement (``qa_attr_mismatch``). Datalinks: the file (#this), the raw RT1 file it
was made from (#progenitor, the CDF's ``Parents``/``Parent``), the PNG and PDF
quicklooks when the archive has them (#preview, found by name: ``T_<product>.png``,
``<product>.pdf``), documentation, and HAPI 3 / das2 access to the file's time window.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from ... import datalinks
from ...parameter import Param
from ...sources import Files
from ...sources.values import missing
from ..checks import Refusals
from ..collections import AXIS_COLUMNS, AXIS_KINDS, FILE_COLUMNS, archive_param, \
    check_file, file_url, quicklook_links, vespa
from ..columns import datalink_url
from ..declare import Service
from ..presets import NANCAY_RADIO
from .reader import NAME, TARGETS, read_nda, spectrum
from .sample import build_sample

SCHEMA = "nda"
#: Receiver short names of the product kinds (when the file names none).
RECEIVERS = {"routine": "Routine", "newroutine": "NewRoutine", "mefisto": "Mefisto"}
#: Fields the reader gives besides the axes (:mod:`.reader`).
READ_FIELDS = ("FORMAT", "LOGICAL_SOURCE", "CONTENT_KIND", "OBJECT", "PARENT", "ATTR_STOP",
               "QL_PNG", "QL_PDF")
#: What a file with no such attribute publishes (the FITS products have none).
DEFAULTS = {"instrument_name": "NDA", "bib_reference": "2000GMS...119..321L",
            "measurement_type": "phys.flux.density;em.radio"}

SOURCE = Files(
    patterns=("srn_nda_routine_*_edr_*.cdf", "orn_nda_newroutine_*_edr_*.fits",
              "orn_nda_mefisto_*_edr_*.fits"),
    reader=read_nda, kinds=AXIS_KINDS,
    companions={"QL_PNG": "T_{product}.png", "QL_PDF": "{product}.pdf"})

PARAMS = (
    archive_param("https://maser.obspm.fr/repository/nda"),
    Param("progenitor_url", str, "https://maser.obspm.fr/repository/nda/rt1",
          "URL of the folder of the raw RT1 files (the CDF's Parents attribute names "
          "the file)"),
) + datalinks.access_params("{logical_source}", "{logical_source}",
                            documentation="https://www.obs-nancay.fr/")


def prepare(records: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Refuse unreadable files and broken axes, and files whose content is another
    product than their name says; compare the VESPA attributes with the data."""
    r, f = check_file(records, READ_FIELDS)
    _refuse_other_products(r)
    f["TARGET"] = f["OBJECT"].map(lambda v: {"jup": "Jupiter", "jupiter": "Jupiter",
                                             "sun": "Sun"}.get(str(v).strip().lower()))
    return f


def _refuse_other_products(r: Refusals) -> None:
    """``source.wrong_product``: the name's product kind or target is not the one the
    file's content declares."""
    f = r.records
    names = [NAME.match(str(n)) for n in f["NAME"]]
    kind = np.array([m.group("kind") if m else None for m in names], dtype=object)
    target = np.array([TARGETS.get(m.group("target")) if m else None for m in names],
                      dtype=object)
    content_kind = f["CONTENT_KIND"].astype(object).to_numpy() if "CONTENT_KIND" in f \
        else np.full(len(f), None)
    content_target = f["OBJECT"].astype("string").str.strip().str.capitalize() \
        .astype(object).to_numpy() if "OBJECT" in f else np.full(len(f), None)
    # what a file did not say (an unreadable one: NaN, pd.NA) is not a disagreement
    content_kind = np.where(missing(content_kind), None, content_kind)
    content_target = np.where(missing(content_target), None, content_target)
    bad = np.array([k is None or (ck is not None and ck != k) or
                    (ct is not None and t is not None and ct != t)
                    for k, t, ck, ct in zip(kind, target, content_kind, content_target)],
                   dtype=bool)
    r.refuse(bad, "source.wrong_product",
             lambda i: f"the name says {kind[i] or '?'} {target[i] or '?'}, the file holds "
                       f"{content_kind[i] or '?'} {content_target[i] or '?'}")


# -- computed columns -------------------------------------------------------------------

def _instrument(r, p):
    base = vespa("instrument_name", DEFAULTS["instrument_name"], short=True)(r, p)
    receiver = vespa("receiver_name", None, short=True)(r, p)
    kind = r["CONTENT_KIND"].map(RECEIVERS).astype(object).to_numpy()
    sub = np.where(pd.isna(receiver), kind, receiver)
    return np.array([b if s is None or pd.isna(s) else f"{b}#{s}"
                     for b, s in zip(base, sub)], dtype=object)


def _target_class(r, p):
    return np.where(r["TARGET"] == "Sun", "star", "planet").astype(object)


def _thumbnail(r, p):
    return file_url(p["archive_url"], r["QL_PNG"]) if "QL_PNG" in r else None


def links(rows: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """The file (#this), its RT1 progenitor, PNG/PDF quicklooks (#preview), HAPI 3 and
    das2 over the file's time window, documentation."""
    uid = rows["granule_uid"].to_numpy(dtype=object)
    parents = rows["qa_parent"] if "qa_parent" in rows else pd.Series([None] * len(rows))
    rt1 = [None if v is None or pd.isna(v) else f"{params['progenitor_url'].rstrip('/')}/{v}"
           for v in parents]
    parts = [datalinks.file_link(rows, "NDA dynamic spectrum file"),
             datalinks.link_rows(uid, rt1, "#progenitor", "application/octet-stream",
                                 "Raw NDA receiver file (RT1) this product was made from")]
    parts += quicklook_links(rows, params["archive_url"], {
        "qa_ql_png": ("image/png", "Quicklook of the dynamic spectrum (PNG)"),
        "qa_ql_pdf": ("application/pdf", "Summary plot of the observation (PDF)")})
    parts += datalinks.access_links(rows, params, "NDA dynamic spectrum")
    return datalinks.concat_links(parts)


SERVICE = Service(
    name=SCHEMA,
    title="Nancay Decameter Array dynamic spectra",
    description=(
        "Dynamic spectra of Jupiter's and the Sun's decameter radio emission recorded "
        "by the Nancay Decameter Array (NDA): the Routine receiver's nightly CDF files "
        "and the NewRoutine and Mefisto receivers' FITS files. Each row is one file; "
        "quicklooks, the raw progenitor file and time-series access (HAPI, das2) are "
        "datalinks."),
    creator="Observatoire de Paris, Station de Radioastronomie de Nancay, LESIA",
    subjects=("Jupiter", "Sun", "Radio spectra", "Decameter radio emission"),
    spatial_frame_type="none",
    source=SOURCE,
    fields={"target_name": "TARGET", "granule_gid": "LOGICAL_SOURCE",
            "obs_id": "PRODUCT"},
    constants={
        **NANCAY_RADIO,
        "dataproduct_type": "ds",
        "processing_level": 2,
        "time_scale": "UTC",
        "publisher": "PADC",
    },
    computed={
        "target_class": _target_class,
        **AXIS_COLUMNS, **FILE_COLUMNS,
        "instrument_host_name": vespa("instrument_host_name",
                                      NANCAY_RADIO["instrument_host_name"], short=True),
        "instrument_name": _instrument,
        "bib_reference": vespa("bib_reference", DEFAULTS["bib_reference"]),
        "measurement_type": vespa("measurement_type", DEFAULTS["measurement_type"]),
        "thumbnail_url": _thumbnail,
        "datalink_url": datalink_url(SCHEMA),
    },
    uid=lambda r: r["PRODUCT"].astype(object),
    prepare=prepare,
    links=links,
    qa_fields=("PATH", "FORMAT", "VERSION", "LOGICAL_SOURCE", "PARENT", "QL_PNG", "QL_PDF",
               "ATTR_MISMATCH"),
    params=PARAMS,
    defaults={"source": "files:outputs/samples/nda"},
    sample=build_sample,
    spectrum=spectrum,
    meta={"referenceURL": "https://www.obs-nancay.fr/",
          "source": "Nancay Decameter Array archive (Routine, NewRoutine, Mefisto)"},
)

