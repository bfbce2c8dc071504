"""What the services of file collections share (nda, expres, ...): the checks of a
file's time and frequency axes, attribute-against-data comparisons, file URLs, MIME
types and the quicklook links found by name.

A file collection's reader returns, for each file, record fields named by the
convention below, so that these checks and columns serve every such service:

``TIME_FIRST``, ``TIME_LAST``, ``N_TIMES``, ``TIME_STEP_S``, ``TIME_INCREASING``
    the time axis as the data give it (UTC datetimes, seconds);
``FREQ_MIN``, ``FREQ_MAX``, ``FREQ_STEP``, ``FREQ_UNIT``
    the frequency axis in its own unit (converted to Hz here, with astropy units);
``READ_ERROR``
    set by the harvester when the reader failed (the file is refused with it).
"""
from __future__ import annotations

import posixpath
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from .. import datalinks
from ..parameter import Param
from ..sources.files import READ_ERROR
from ..times import to_datetime
from .checks import Refusals

#: MIME types of the files a collection publishes, by extension.
MIME = {".cdf": "application/x-cdf", ".fits": "application/fits",
        ".fts": "application/fits", ".json": "application/json", ".png": "image/png",
        ".pdf": "application/pdf", ".jpg": "image/jpeg"}


def archive_param(default: str) -> Param:
    """The ``archive_url`` parameter: the public URL of the collection's folder (a
    file's access_url is this URL + its path relative to the ``files:`` folder)."""
    return Param("archive_url", str, default, "public URL of the collection's folder: a "
                 "file's URL is this + its path under the files: source folder")


def file_url(base: str, paths) -> np.ndarray:
    """``<base>/<relative path>`` of each path (None stays None)."""
    base = base.rstrip("/")
    return np.array([None if p is None or (isinstance(p, float) and np.isnan(p))
                     else f"{base}/{p}" for p in paths], dtype=object)


def mime_of(paths) -> np.ndarray:
    """MIME type of each file by its extension (``application/octet-stream`` otherwise)."""
    return np.array([MIME.get(posixpath.splitext(str(p))[1].lower(),
                              "application/octet-stream") for p in paths], dtype=object)


def time_fields(t: np.ndarray) -> dict[str, Any]:
    """N_TIMES, TIME_FIRST, TIME_LAST, TIME_STEP_S (median step), TIME_INCREASING."""
    t = np.asarray(t, dtype="datetime64[ns]")
    if not len(t):
        return {"N_TIMES": 0}
    d = np.diff(t).astype("int64") / 1e9
    return {"N_TIMES": len(t), "TIME_FIRST": t[0], "TIME_LAST": t[-1],
            "TIME_STEP_S": float(np.median(d)) if len(d) else np.nan,
            "TIME_INCREASING": bool((d > 0).all())}


def frequency_fields(f: np.ndarray, unit: str | None) -> dict[str, Any]:
    """FREQ_MIN, FREQ_MAX, FREQ_STEP (median step), N_FREQ in the axis' own unit."""
    f = np.sort(np.asarray(f, dtype=float))
    return {"FREQ_MIN": float(f[0]), "FREQ_MAX": float(f[-1]), "N_FREQ": len(f),
            "FREQ_STEP": float(np.median(np.diff(f))) if len(f) > 1 else np.nan,
            "FREQ_UNIT": unit}


def cdf_axes(cdf, frequency: str = "Frequency") -> dict[str, Any]:
    """The time and frequency fields of a CDF (its ``Epoch`` and ``frequency``
    variable with its ``UNITS``)."""
    from ..formats import cdf as C
    return {**time_fields(C.time_axis(cdf)), **frequency_fields(*C.axis(cdf, frequency))}


#: The fields of the convention above (present, maybe NULL, after :func:`ensure_fields`).
AXIS_FIELDS = ("TIME_FIRST", "TIME_LAST", "N_TIMES", "TIME_STEP_S", "TIME_INCREASING",
               "FREQ_MIN", "FREQ_MAX", "FREQ_STEP", "FREQ_UNIT")
#: What the fields of the convention may hold (a collection's ``Files(kinds=...)``).
AXIS_KINDS = {"TIME_FIRST": "date", "TIME_LAST": "date", "N_TIMES": "int",
              "TIME_STEP_S": "float", "TIME_INCREASING": "bool", "FREQ_MIN": "float",
              "FREQ_MAX": "float", "FREQ_STEP": "float", "N_FREQ": "int",
              "FREQ_UNIT": "text"}


def ensure_fields(records: pd.DataFrame, names) -> pd.DataFrame:
    """``records`` with every field of ``names`` (None where a reader gave none: a chunk
    of unreadable files has none of them)."""
    for n in names:
        if n not in records:
            records[n] = None
    return records


def check_axes(r: Refusals) -> None:
    """Refuse files that could not be read (``source.bad_file``), whose time axis is
    empty (``source.no_time``) or not increasing (``source.time_not_increasing``), or
    whose frequency axis has no unit (``source.no_unit``)."""
    f = r.records
    if READ_ERROR in f:
        r.refuse(f[READ_ERROR].notna().to_numpy(), "source.bad_file",
                 lambda i: f"cannot be read: {f[READ_ERROR].iat[i]}")
    n = pd.to_numeric(f.get("N_TIMES"), errors="coerce").to_numpy(dtype=float) \
        if "N_TIMES" in f else np.zeros(len(f))
    r.refuse(~(n > 0), "source.no_time",
             "the time axis holds no record")
    if "TIME_INCREASING" in f:
        inc = f["TIME_INCREASING"].astype(object).to_numpy()
        r.refuse(np.array([v is False or v == 0 for v in inc]), "source.time_not_increasing",
                 "the times do not increase from record to record")
    if "FREQ_UNIT" in f:
        unit = f["FREQ_UNIT"].astype("string").str.strip()
        r.refuse((unit.isna() | (unit == "")).to_numpy(), "source.no_unit",
                 "the frequency axis has no unit (UNITS)")


def to_hz(values, units) -> np.ndarray:
    """Frequencies in their unit (per value) → Hz, with astropy units; NaN where the
    unit is unknown or not a frequency."""
    import astropy.units as u
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    units = pd.Series(units, dtype=object).to_numpy()
    out = np.full(v.shape, np.nan)
    for un in pd.unique(units):
        if un is None or (isinstance(un, float) and np.isnan(un)):
            continue
        m = units == un
        try:
            out[m] = (v[m] * u.Unit(str(un).strip())).to_value(u.Hz)
        except (ValueError, u.UnitConversionError):
            continue
    return out


def attribute_value(records: pd.DataFrame, name: str, unit_default: str | None = None
                    ) -> np.ndarray:
    """A VESPA attribute as a number in EPN-TAP's unit: ``VESPA_<NAME>`` converted from
    ``VESPA_<NAME>_UNIT`` (or ``unit_default``) when one is given; NaN when absent."""
    key = f"VESPA_{name.upper()}"
    if key not in records:
        return np.full(len(records), np.nan)
    v = pd.to_numeric(records[key], errors="coerce").to_numpy(dtype=float)
    unit_key = f"{key}_UNIT"
    if unit_key in records or unit_default:
        units = records[unit_key] if unit_key in records else \
            pd.Series([unit_default] * len(records), index=records.index)
        units = units.where(units.notna(), unit_default)
        conv = to_hz(v, units) if name.startswith("spectral") else v
        return conv
    return v


class Disagreements:
    """Texts naming, per record, each value whose attribute disagrees with the data.

    The data win: the row publishes the data's value and carries the text
    (``qa_attr_mismatch``) for the QA report. ``texts`` is None where all agree.
    """

    def __init__(self, n: int):
        self.texts = np.full(n, None, dtype=object)

    def _add(self, mask, text: Callable[[int], str]) -> None:
        for i in np.flatnonzero(mask):
            t = text(i)
            self.texts[i] = t if self.texts[i] is None else f"{self.texts[i]}; {t}"

    def numbers(self, name: str, attr, data, unit: str = "", rtol: float = 0.01) -> None:
        """Attribute and data values differing by more than ``rtol`` (relative)."""
        attr = np.asarray(attr, dtype=float)
        data = np.asarray(data, dtype=float)
        off = np.isfinite(attr) & np.isfinite(data) & \
            ~np.isclose(attr, data, rtol=rtol, atol=0)
        self._add(off, lambda i: f"{name}: attribute {attr[i]:.6g} {unit}, data "
                                 f"{data[i]:.6g} {unit}".replace(" ,", ","))

    def time(self, name: str, attr, first, last) -> None:
        """An attribute time outside the data's time range (one second of slack)."""
        a, t0, t1 = to_datetime(attr), to_datetime(first), to_datetime(last)
        slack = pd.Timedelta(seconds=1)
        off = (a.notna() & t0.notna() & ((a < t0 - slack) | (a > t1 + slack))).to_numpy()
        self._add(off, lambda i: f"{name}: attribute {a.iat[i]}, data {t0.iat[i]} to "
                                 f"{t1.iat[i]}")


def quicklook_links(rows: pd.DataFrame, base: str, fields: Mapping[str, tuple[str, str]]
                    ) -> list[pd.DataFrame]:
    """``#preview`` links of the quicklooks found beside each file: ``fields`` maps a
    ``qa_*`` column (a relative path or None) to (MIME type, description)."""
    uid = rows["granule_uid"].to_numpy(dtype=object)
    parts = []
    for col, (mime, text) in fields.items():
        if col in rows:
            parts.append(datalinks.link_rows(uid, file_url(base, rows[col]), "#preview",
                                             mime, text))
    return parts
