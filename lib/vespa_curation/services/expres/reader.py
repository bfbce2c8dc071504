"""Reading one ExPRES simulation CDF: its global attributes (``VESPA_*``,
``SRP_Source_*``, ``Logical_source``, ``PDS_*``), its ``Epoch`` and ``Frequency``
variables — never ``Theta``, ``FC``, ``FP`` or ``Polarization``."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...formats import cdf as C
from ...formats.cdf import cdf_axes

#: ``expres_<observer>_<body>_<source>_<model>_<source properties>_<YYYYMMDD>_v<VV>``.
NAME = re.compile(r"^expres_(?P<observer>[a-z0-9-]+)_(?P<body>[a-z]+)_(?P<source>[a-z0-9-]+)_")


def read_expres(path: Path) -> dict[str, Any]:
    """The record fields of one ExPRES run (the collections' axis fields, the
    attributes upper-cased, ``SRP``: the simulation's source parameters as text)."""
    cdf = C.open_cdf(path)
    g = C.global_attributes(cdf)
    out = {"LOGICAL_SOURCE": g.get("Logical_source"), "ATTR_START": g.get("PDS_start_time"),
           "ATTR_STOP": g.get("PDS_stop_time"), "OBJECT": g.get("PDS_Observation_target")}
    out.update(cdf_axes(cdf))
    out.update({k.upper(): v for k, v in g.items() if k.startswith("VESPA_")})
    srp = {k[len("SRP_Source_"):]: v for k, v in g.items() if k.startswith("SRP_Source_")}
    out["SRP"] = "; ".join(f"{k}={v}" for k, v in sorted(srp.items())) or None
    return out


def spectrum(path: Path, n: int = 200):
    """A sampled view of one run (QA): (times, Hz, Theta[time, freq]) — ``n`` steps
    evenly spread (the beaming angle map of the simulated emission)."""
    from ..collections import to_hz
    cdf = C.open_cdf(path)
    idx, values = C.sampled_records(cdf, "Theta", n)
    freq, unit = C.axis(cdf, "Frequency")
    return C.time_axis(cdf)[idx], to_hz(freq, [unit] * len(freq)), values
