"""expres — modelled dynamic spectra of Jupiter's radio emissions (ExPRES simulations).

One granule per simulation CDF (``expres_<observer>_<body>_<source>_<model>_<source
properties>_<YYYYMMDD>_v<VV>.cdf``, found at any depth under the ``files:`` folder):
``dataproduct_type = ds`` (from ``VESPA_dataproduct_type``), processing level 5
(modelled), ``target_name``/``target_class`` from the attributes (``Jupiter#Io``,
``planet#satellite``), instrument_host_name the observer, the time range and step from
``Epoch``, the frequency range and step from the ``Frequency`` variable and its
``UNITS`` — not from ``VESPA_spectral_range_*``, which the generator may write ten times
too large: a disagreement is kept as ``qa_attr_mismatch``. Datalinks: the file (#this),
its JSON run configuration (#auxiliary, found beside it by name; the simulation's source
parameters ``SRP_Source_*`` are in that link's description), documentation.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from ... import datalinks
from ...formats.cdf import short_form
from ...parameter import Param
from ...sources import Files
from ...times import jd
from ..checks import Refusals
from ..collections import AXIS_FIELDS, AXIS_KINDS, Disagreements, archive_param, \
    attribute_value, check_axes, ensure_fields, file_url, mime_of, to_hz
from ..columns import datalink_url, size_kb
from ..declare import Service
from .reader import NAME, read_expres, spectrum
from .sample import build_sample

SCHEMA = "expres"
SOURCE = Files(patterns=("expres_*_v*.cdf",), reader=read_expres, kinds=AXIS_KINDS,
               companions={"CONFIG_JSON": "{stem}.json"})
PARAMS = (
    archive_param("https://maser.obspm.fr/repository/expres"),
    Param("documentation_url", str, "https://maser.obspm.fr/support/expres/",
          "documentation page linked from every granule (#documentation)"),
)
READ_FIELDS = ("LOGICAL_SOURCE", "ATTR_START", "ATTR_STOP", "OBJECT", "SRP", "CONFIG_JSON",
               "VESPA_TARGET_NAME", "VESPA_TARGET_CLASS", "VESPA_INSTRUMENT_HOST_NAME",
               "VESPA_DATAPRODUCT_TYPE", "VESPA_BIB_REFERENCE", "VESPA_PUBLISHER")


def prepare(records: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Refuse unreadable files, broken axes and files whose Logical_source is another
    run than their name; compare the VESPA attributes with the data."""
    r = Refusals(records, lambda f: [f"file {p}" for p in f["PATH"]])
    f = ensure_fields(r.records, (*AXIS_FIELDS, *READ_FIELDS))
    check_axes(r)
    names = [NAME.match(str(n)) for n in f["NAME"]]
    want = np.array([f"expres_{m['observer']}_{m['body']}_{m['source']}" if m else None
                     for m in names], dtype=object)
    got = f["LOGICAL_SOURCE"].astype(object).to_numpy()
    r.refuse(np.array([w is None or (g is not None and g != w) for w, g in zip(want, got)]),
             "source.wrong_product",
             lambda i: f"the name says {want[i] or 'no ExPRES run'}, the file's "
                       f"Logical_source {got[i]!r}")
    f["FMIN_HZ"] = to_hz(f["FREQ_MIN"], f["FREQ_UNIT"])
    f["FMAX_HZ"] = to_hz(f["FREQ_MAX"], f["FREQ_UNIT"])
    f["FSTEP_HZ"] = to_hz(f["FREQ_STEP"], f["FREQ_UNIT"])
    d = Disagreements(len(f))
    for col, name in (("FMIN_HZ", "spectral_range_min"), ("FMAX_HZ", "spectral_range_max")):
        d.numbers(name, attribute_value(f, name), f[col], "Hz")
    d.numbers("time_sampling_step", attribute_value(f, "time_sampling_step"),
              f["TIME_STEP_S"], "s")
    d.time("PDS_start_time", f["ATTR_START"], f["TIME_FIRST"], f["TIME_LAST"])
    f["ATTR_MISMATCH"] = d.texts
    return f


def _attr(key: str, default=None, short: bool = False, lower: bool = False):
    def f(r, p):
        v = r[key].map(short_form) if short else r[key]
        v = v.astype("string").str.lower() if lower else v
        return v.astype(object).where(v.notna(), default).to_numpy()
    f.__name__ = f"attr_{key.lower()}"
    return f


def links(rows: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """The file (#this), its JSON run configuration (#auxiliary, with the source
    parameters in the description), documentation."""
    uid = rows["granule_uid"].to_numpy(dtype=object)
    srp = rows["qa_srp"] if "qa_srp" in rows else pd.Series([None] * len(rows))
    text = ["ExPRES run configuration (JSON)" + (f"; source parameters: {s}"
                                                 if isinstance(s, str) and s else "")
            for s in srp]
    return datalinks.concat_links([
        datalinks.file_link(rows, "ExPRES simulated dynamic spectrum (CDF)"),
        datalinks.link_rows(uid, file_url(params["archive_url"], rows["qa_config_json"]),
                            "#auxiliary", "application/json", text),
        datalinks.link_rows(uid, params.get("documentation_url"), "#documentation",
                            "text/html", "ExPRES documentation")])


def _column(name: str):
    return lambda r, p: r[name].to_numpy(dtype=float)


SERVICE = Service(
    name=SCHEMA,
    title="ExPRES simulated radio dynamic spectra",
    description=(
        "Dynamic spectra of Jupiter's auroral and satellite-induced radio emissions "
        "simulated by ExPRES (Exoplanetary and Planetary Radio Emission Simulator) for "
        "a given observer. Each row is one simulation run's CDF file; its JSON run "
        "configuration is a datalink."),
    creator="Observatoire de Paris, LESIA (MASER)",
    subjects=("Jupiter", "Radio emission", "Simulations", "Dynamic spectra"),
    spatial_frame_type="none",
    source=SOURCE,
    fields={"obs_id": "PRODUCT", "granule_gid": "LOGICAL_SOURCE"},
    constants={"processing_level": 5, "instrument_name": "ExPRES", "messenger": "Radio",
               "time_scale": "UTC", "target_region": "magnetosphere"},
    computed={
        "dataproduct_type": _attr("VESPA_DATAPRODUCT_TYPE", "ds", short=True, lower=True),
        "target_name": _attr("VESPA_TARGET_NAME", "Jupiter"),
        "target_class": _attr("VESPA_TARGET_CLASS", "planet"),
        "instrument_host_name": _attr("VESPA_INSTRUMENT_HOST_NAME", short=True),
        "bib_reference": _attr("VESPA_BIB_REFERENCE"),
        "publisher": _attr("VESPA_PUBLISHER", "PADC"),
        "time_min": lambda r, p: jd(r["TIME_FIRST"]),
        "time_max": lambda r, p: jd(r["TIME_LAST"]),
        "time_sampling_step_min": _column("TIME_STEP_S"),
        "time_sampling_step_max": _column("TIME_STEP_S"),
        "spectral_range_min": _column("FMIN_HZ"),
        "spectral_range_max": _column("FMAX_HZ"),
        "spectral_sampling_step_min": _column("FSTEP_HZ"),
        "spectral_sampling_step_max": _column("FSTEP_HZ"),
        "access_url": lambda r, p: file_url(p["archive_url"], r["PATH"]),
        "access_format": lambda r, p: mime_of(r["PATH"]),
        "access_estsize": size_kb("SIZE"),
        "datalink_url": datalink_url(SCHEMA),
    },
    uid=lambda r: r["PRODUCT"].astype(object),
    prepare=prepare,
    links=links,
    qa_fields=("PATH", "VERSION", "LOGICAL_SOURCE", "CONFIG_JSON", "SRP", "ATTR_MISMATCH"),
    params=PARAMS,
    defaults={"source": "files:outputs/samples/expres"},
    sample=build_sample,
    spectrum=spectrum,
    meta={"referenceURL": "https://maser.obspm.fr/support/expres/",
          "source": "ExPRES simulation runs (MASER, PADC)"},
)
