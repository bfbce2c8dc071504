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
from ...parameter import Param
from ...sources import Files
from ..collections import AXIS_COLUMNS, AXIS_KINDS, FILE_COLUMNS, archive_param, \
    check_file, file_url, vespa
from ..columns import datalink_url
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
READ_FIELDS = ("LOGICAL_SOURCE", "ATTR_STOP", "OBJECT", "SRP", "CONFIG_JSON",
               "VESPA_TARGET_NAME", "VESPA_TARGET_CLASS", "VESPA_INSTRUMENT_HOST_NAME",
               "VESPA_DATAPRODUCT_TYPE", "VESPA_BIB_REFERENCE", "VESPA_PUBLISHER")


def prepare(records: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Refuse unreadable files, broken axes and files whose Logical_source is another
    run than their name; compare the VESPA attributes with the data."""
    r, f = check_file(records, READ_FIELDS)
    names = [NAME.match(str(n)) for n in f["NAME"]]
    want = np.array([f"expres_{m['observer']}_{m['body']}_{m['source']}" if m else None
                     for m in names], dtype=object)
    got = f["LOGICAL_SOURCE"].astype(object).to_numpy()
    r.refuse(np.array([w is None or (g is not None and g != w) for w, g in zip(want, got)]),
             "source.wrong_product",
             lambda i: f"the name says {want[i] or 'no ExPRES run'}, the file's "
                       f"Logical_source {got[i]!r}")
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
        **AXIS_COLUMNS, **FILE_COLUMNS,
        "dataproduct_type": vespa("dataproduct_type", "ds", short=True, lower=True),
        "target_name": vespa("target_name", "Jupiter"),
        "target_class": vespa("target_class", "planet"),
        "instrument_host_name": vespa("instrument_host_name", short=True),
        "bib_reference": vespa("bib_reference"),
        "publisher": vespa("publisher", "PADC"),
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
