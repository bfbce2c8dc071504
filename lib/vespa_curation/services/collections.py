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
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from .. import datalinks, epncore
from ..parameter import Param
from ..formats.axes import AXIS_FIELDS, AXIS_KINDS  # noqa: F401 — collections' API
from ..sources.files import READ_ERROR
from ..times import jd, to_datetime
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


def attribute_value(records: pd.DataFrame, name: str) -> np.ndarray:
    """The attribute ``VESPA_<name>`` as a number in its EPN-TAP column's unit: converted
    with astropy units from ``VESPA_<name>_unit`` when the file gives one (``kHz`` →
    Hz, ``min`` → s); NaN where absent or not a number. ``name`` is an epn_core column,
    or the stem of a ``_min``/``_max`` pair (``time_sampling_step``)."""
    import astropy.units as u
    key = f"VESPA_{name.upper()}"
    if key not in records:
        return np.full(len(records), np.nan)
    v = pd.to_numeric(records[key], errors="coerce").to_numpy(dtype=float)
    unit_key = f"{key}_UNIT"
    if unit_key not in records:
        return v
    col = epncore.COLUMNS.get(name) or epncore.COLUMNS[f"{name}_min"]
    out = v.copy()
    units = records[unit_key].astype(object).to_numpy()
    for un in pd.unique(units[pd.notna(units)]):
        m = units == un
        try:
            out[m] = (v[m] * u.Unit(str(un).strip())).to_value(u.Unit(col.unit))
        except (ValueError, u.UnitConversionError):
            out[m] = np.nan     # a unit that is no unit of the column: no comparison
    return out


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


    def instant(self, name: str, attr, data, step_s) -> None:
        """An attribute time further from the data's than one sampling step (at least
        one second)."""
        a, t = to_datetime(attr), to_datetime(data)
        tol = pd.to_timedelta(np.fmax(np.nan_to_num(np.asarray(step_s, dtype=float)), 1.0),
                              unit="s")
        off = (a.notna() & t.notna() & ((a - t).abs() > tol)).to_numpy()
        self._add(off, lambda i: f"{name}: attribute {a.iat[i]}, data {t.iat[i]}")


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


def check_file(records: pd.DataFrame, read_fields=(), start_attribute: str = "ATTR_START"
               ) -> tuple[Refusals, pd.DataFrame]:
    """What every file collection's ``prepare`` starts with: the records wrapped for
    refusals (named by their path), every axis and reader field present, the axes checked
    (:func:`check_axes`), the frequencies in Hz (``FMIN_HZ``, ``FMAX_HZ``, ``FSTEP_HZ``),
    and ``ATTR_MISMATCH``: the VESPA spectral range, time step, time_min and time_max
    and the attribute start time (field ``start_attribute``) compared with the data."""
    r = Refusals(records, lambda f: [f"file {p}" for p in f["PATH"]])
    f = ensure_fields(r.records, (*AXIS_FIELDS, *read_fields, start_attribute))
    check_axes(r)
    for col, src in (("FMIN_HZ", "FREQ_MIN"), ("FMAX_HZ", "FREQ_MAX"),
                     ("FSTEP_HZ", "FREQ_STEP")):
        f[col] = to_hz(f[src], f["FREQ_UNIT"])
    d = Disagreements(len(f))
    for col, name in (("FMIN_HZ", "spectral_range_min"), ("FMAX_HZ", "spectral_range_max")):
        d.numbers(name, attribute_value(f, name), f[col], "Hz")
    d.numbers("time_sampling_step", attribute_value(f, "time_sampling_step"),
              f["TIME_STEP_S"], "s")
    d.time("start time", f[start_attribute], f["TIME_FIRST"], f["TIME_LAST"])
    for name, data in (("time_min", "TIME_FIRST"), ("time_max", "TIME_LAST")):
        if f"VESPA_{name.upper()}" in f:
            d.instant(name, f[f"VESPA_{name.upper()}"], f[data], f["TIME_STEP_S"])
    f["ATTR_MISMATCH"] = d.texts
    return r, f


def vespa(name: str, default=None, short: bool = False, lower: bool = False):
    """Computed column: the attribute ``VESPA_<name>`` (its short form of ``SHORT>Long``
    with ``short``; lower case with ``lower``), ``default`` where the file has none."""
    from ..formats.cdf import short_form
    key = f"VESPA_{name.upper()}"

    def f(r, p):
        v = r[key] if key in r else pd.Series([None] * len(r), index=r.index)
        v = v.map(short_form) if short else v
        v = v.astype("string").str.lower().astype(object) if lower else v
        return v.astype(object).where(v.notna(), default).to_numpy()
    f.__name__ = f"vespa_{name}"
    return f


def _field(name: str):
    f = lambda r, p: pd.to_numeric(r[name], errors="coerce").to_numpy(dtype=float)  # noqa
    f.__name__ = f"field_{name.lower()}"
    return f


#: The epn_core columns every time–frequency file gives from its axes.
AXIS_COLUMNS = {
    "time_min": lambda r, p: jd(r["TIME_FIRST"]),
    "time_max": lambda r, p: jd(r["TIME_LAST"]),
    "time_sampling_step_min": _field("TIME_STEP_S"),
    "time_sampling_step_max": _field("TIME_STEP_S"),
    "spectral_range_min": _field("FMIN_HZ"),
    "spectral_range_max": _field("FMAX_HZ"),
    "spectral_sampling_step_min": _field("FSTEP_HZ"),
    "spectral_sampling_step_max": _field("FSTEP_HZ"),
}

#: The access columns of a published file (``archive_url`` + its path).
FILE_COLUMNS = {
    "access_url": lambda r, p: file_url(p["archive_url"], r["PATH"]),
    "access_format": lambda r, p: mime_of(r["PATH"]),
    "access_estsize": lambda r, p: pd.array(np.ceil(pd.to_numeric(r["SIZE"]).to_numpy(
        dtype=float) / 1024.0), dtype="Float64").astype("Int64"),
}
