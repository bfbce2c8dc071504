"""Reading one NDA product: a Routine CDF or a NewRoutine/Mefisto FITS file.

Only what the row needs is read: the CDF's global attributes, its ``Epoch`` and
``Frequency`` variables (never ``LL``/``RR``); the FITS primary header, the frequency
column of HDU 1 and a few rows of HDU 2's ``jd`` column (memory-mapped: the ``DATA``
column beside it is never touched). Both give the record fields of
:mod:`vespa_curation.services.collections` plus what the nda service maps.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ...formats import cdf as C
from ...formats.fits import column_rows, header_fields
from ...times import jd_to_datetime
from ...formats.axes import frequency_fields, time_fields
from ...formats.cdf import cdf_axes

#: ``srn_nda_routine_jup_edr_201801010000_201801010800_V12`` and FITS names.
NAME = re.compile(r"^(?P<lab>srn|orn)_nda_(?P<kind>routine|newroutine|mefisto)_"
                  r"(?P<target>jup|sun)_edr_(?P<start>\d{12})_(?P<stop>\d{12})")
#: Target names of the files' short forms.
TARGETS = {"jup": "Jupiter", "sun": "Sun"}
#: Rows of HDU 2 whose time is read to check that times increase (evenly spaced).
FITS_TIME_SAMPLE = 64


def read_nda(path: Path) -> dict[str, Any]:
    """The record fields of one NDA product (see the module docstring)."""
    ext = path.suffix.lower()
    if ext == ".cdf":
        return _routine_cdf(path)
    if ext in (".fits", ".fts"):
        return _newroutine_fits(path)
    raise ValueError(f"{path.name} is neither a CDF nor a FITS file")


def _routine_cdf(path: Path) -> dict[str, Any]:
    cdf = C.open_cdf(path)
    g = C.global_attributes(cdf)
    logical = str(g.get("Logical_source") or "")
    m = re.match(r"^srn_nda_(\w+?)_(jup|sun)_edr$", logical)
    out = {"FORMAT": "cdf", "LOGICAL_SOURCE": logical or None,
           "CONTENT_KIND": m.group(1) if m else None,
           "OBJECT": g.get("PDS_Observation_target"),
           "PARENT": g.get("Parents") or g.get("Parent"),
           "ATTR_START": g.get("PDS_Observation_start_time"),
           "ATTR_STOP": g.get("PDS_Observation_stop_time")}
    out.update(cdf_axes(cdf))
    out.update({k.upper(): v for k, v in g.items() if k.startswith("VESPA_")})
    return out


def _newroutine_fits(path: Path) -> dict[str, Any]:
    from astropy.io import fits
    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        head = header_fields(hdul[0].header)
        try:
            freq_hdu, time_hdu = hdul[1], hdul[2]
        except IndexError:
            raise ValueError("no frequency table (HDU 1) and time/data table (HDU 2)") \
                from None
        if "frq" not in freq_hdu.columns.names or "jd" not in time_hdu.columns.names:
            raise ValueError("HDU 1 has no 'frq' column or HDU 2 no 'jd' column")
        freq = np.asarray(freq_hdu.data.field("frq"), dtype=float).ravel()
        unit = freq_hdu.columns["frq"].unit
        n = int(time_hdu.header["NAXIS2"])
        idx = np.unique(np.linspace(0, n - 1, min(n, FITS_TIME_SAMPLE)).astype(int))
        jd = column_rows(path, time_hdu, "jd", idx).astype(float) if n else np.zeros(0)
    kind = str(head.get("INSTRUME", "")).strip().lower()
    target = str(head.get("OBJECT", "")).strip()
    short = {"Jupiter": "jup", "Sun": "sun"}.get(target, target.lower()[:3])
    t = jd_to_datetime(jd).to_numpy(dtype="datetime64[ns]")
    out = {"FORMAT": "fits", "CONTENT_KIND": kind or None, "OBJECT": target or None,
           "LOGICAL_SOURCE": f"orn_nda_{kind}_{short}_edr" if kind else None,
           "TELESCOP": head.get("TELESCOP")}
    out.update(time_fields(t))
    if n > 1:   # the sampled rows give the order; the span over all rows gives the step
        out["N_TIMES"] = n
        out["TIME_STEP_S"] = float((t[-1] - t[0]).astype("int64") / 1e9 / (n - 1))
    out.update(frequency_fields(freq, unit or None))
    return out


def spectrum(path: Path, n: int = 200):
    """A sampled dynamic spectrum of one product (QA): (times, Hz, values[time, freq]) —
    ``n`` sweeps evenly spread, the LL polarisation (or the first of DATA's)."""
    from ..collections import to_hz
    if path.suffix.lower() == ".cdf":
        cdf = C.open_cdf(path)
        idx, values = C.sampled_records(cdf, "LL", n)
        freq, unit = C.axis(cdf, "Frequency")
        return C.time_axis(cdf)[idx], to_hz(freq, [unit] * len(freq)), values
    from astropy.io import fits
    with fits.open(path, memmap=True) as hdul:
        freq = np.asarray(hdul[1].data.field("frq"), dtype=float)
        unit = hdul[1].columns["frq"].unit
        rows = int(hdul[2].header["NAXIS2"])
        idx = np.unique(np.linspace(0, rows - 1, min(n, rows)).astype(int))
        jd = column_rows(path, hdul[2], "jd", idx).astype(float)
        data = column_rows(path, hdul[2], "DATA", idx).astype(float)
    values = data.reshape(len(idx), len(freq), -1)[..., 0]
    return jd_to_datetime(jd).to_numpy(), to_hz(freq, [unit] * len(freq)), values
