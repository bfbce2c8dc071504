"""CDF files (NASA's Common Data Format), read with cdflib: global attributes, the time
axis and small axis variables — never a whole data variable.

cdflib reads a CDF through seeks and reads of a file handle: opening it reads the
descriptor records, :func:`global_attributes` the attribute entries, and
:func:`time_axis` / :func:`axis` the records of one variable. A spectrogram variable
(NDA's LL/RR, ExPRES's Theta) is never touched.

MASER/PADC files prepared for VESPA carry their EPN-TAP metadata as global attributes
``VESPA_<epn_core column>`` (optionally ``VESPA_<column>_unit``); values of the form
``SHORT>Long name`` carry a short and a long form (:func:`short_form`).
"""
from __future__ import annotations

from pathlib import Path
from struct import error as struct_error
from typing import Any

import numpy as np

from .axes import frequency_fields, time_fields
from .registry import register_reader

#: Names of the time variable in the files of the collections (ISTP).
TIME_VARIABLES = ("Epoch", "EPOCH", "epoch", "Time", "TIME")


class CdfError(ValueError):
    """A CDF cannot be read as the reader expects; the message says what is missing."""


def open_cdf(path: Path):
    """The file opened with cdflib; CdfError naming the file when it is not a CDF."""
    import cdflib
    try:
        return cdflib.CDF(str(path))
    except OSError:
        raise          # missing, unreadable: the file system's own message
    except (ValueError, IndexError, KeyError, struct_error) as exc:
        raise CdfError(f"not a readable CDF ({type(exc).__name__}: {exc})") from None


def global_attributes(cdf) -> dict[str, Any]:
    """Global attributes: name → value (one entry unwrapped, several as a list)."""
    out = {}
    for name, entries in (cdf.globalattsget() or {}).items():
        vals = [e.item() if isinstance(e, np.generic) else e for e in
                (entries if isinstance(entries, (list, tuple)) else [entries])]
        vals = [v.tolist() if isinstance(v, np.ndarray) else v for v in vals]
        out[name] = vals[0] if len(vals) == 1 else vals
    return out


def _records(cdf, name: str) -> int:
    info = cdf.varinq(name)
    return int(info.Last_Rec) + 1 if info.Last_Rec is not None else 0


def variables(cdf) -> list[str]:
    """The names of the file's variables (z and r)."""
    info = cdf.cdf_info()
    return list(info.zVariables) + list(info.rVariables)


def time_axis(cdf, name: str | None = None) -> np.ndarray:
    """The whole time variable (``Epoch``: CDF_TIME_TT2000, CDF_EPOCH or CDF_EPOCH16) as
    UTC ``datetime64[ns]``. A time axis is small beside the data it stamps (8 bytes a
    record against a spectrum per record), so it is read whole: the checks need every
    step. CdfError when there is no time variable."""
    names = variables(cdf)
    name = name or next((n for n in TIME_VARIABLES if n in names), None)
    if name is None or name not in names:
        raise CdfError(f"no time variable (one of {', '.join(TIME_VARIABLES)})")
    if _records(cdf, name) == 0:
        return np.array([], dtype="datetime64[ns]")
    kind = cdf.varinq(name).Data_Type_Description
    return to_utc(np.asarray(cdf.varget(name)).ravel(), kind)


#: CDF_EPOCH's 0000-01-01 in Unix milliseconds (CDF_EPOCH counts ms from year 0).
_EPOCH0_MS = -62167219200000


def to_utc(raw: np.ndarray, kind: str) -> np.ndarray:
    """CDF time values → UTC ``datetime64[ns]``, vectorised. CDF_TIME_TT2000 counts TT
    nanoseconds, leap seconds included: cdflib converts the first and last values
    exactly, and the others follow by their offsets when no leap second falls between
    them (else cdflib converts every value)."""
    import cdflib
    if kind == "CDF_EPOCH":
        return ((raw.astype(float) + _EPOCH0_MS) * 1e6).astype("int64").astype(
            "datetime64[ns]")
    if kind == "CDF_EPOCH16":
        sec = raw.real.astype("int64") + _EPOCH0_MS // 1000
        return (sec * 1_000_000_000 + (raw.imag // 1000).astype("int64")).astype(
            "datetime64[ns]")
    ends = np.asarray(cdflib.cdfepoch.to_datetime(raw[[0, -1]]), dtype="datetime64[ns]")
    tt = raw.astype("int64")
    if (ends[1] - ends[0]).astype("int64") == tt[-1] - tt[0]:
        return ends[0] + (tt - tt[0]).astype("timedelta64[ns]")
    return np.asarray(cdflib.cdfepoch.to_datetime(raw), dtype="datetime64[ns]").ravel()


def axis(cdf, name: str) -> tuple[np.ndarray, str | None]:
    """A small axis variable (e.g. ``Frequency``) as floats (single-precision values
    as their shortest decimal), and its ``UNITS`` attribute (None when absent). CdfError when the variable is missing."""
    if name not in variables(cdf):
        raise CdfError(f"no variable {name!r}")
    raw = np.asarray(cdf.varget(name))
    # single precision: the shortest decimal that round-trips (0.05 MHz, not
    # 0.0500000007), which is what the file's writer meant
    values = raw.astype(str).astype(float) if raw.dtype == np.float32 else \
        raw.astype(float)
    if values.ndim > 1:       # a record-varying axis: its first record
        values = values[0]
    attrs = cdf.varattsget(name) or {}
    unit = attrs.get("UNITS") or attrs.get("units")
    unit = str(unit).strip() if unit is not None else None
    return values.ravel(), (unit or None)


_TIME_TYPES = ("CDF_TIME_TT2000", "CDF_EPOCH", "CDF_EPOCH16")


def guess_layout(cdf) -> dict[str, str | None]:
    """The variables a dynamic-spectrum CDF's reader needs, guessed (``collection
    new``): ``time`` (the first variable of a CDF time type), ``frequency`` (the data
    variable's ``DEPEND_1``, else the first variable whose ``UNITS`` is a frequency),
    ``data`` (the record-varying variable of most values per record). None where
    nothing fits."""
    import astropy.units as u
    names = variables(cdf)
    info = {n: cdf.varinq(n) for n in names}
    attrs = {n: cdf.varattsget(n) or {} for n in names}
    time = next((n for n in names if info[n].Data_Type_Description in _TIME_TYPES), None)

    def per_record(n):
        return int(np.prod(info[n].Dim_Sizes or [1]))
    varying = [n for n in names if n != time and str(info[n].Rec_Vary).lower() in (
        "true", "1", "t", "y") and info[n].Data_Type_Description not in _TIME_TYPES]
    data = max(varying, key=per_record, default=None)

    def is_frequency(n):
        try:
            return u.Unit(str(attrs[n].get("UNITS", "")).strip()).physical_type == \
                "frequency"
        except ValueError:
            return False
    dep = attrs.get(data, {}).get("DEPEND_1") if data else None
    frequency = dep if dep in names else next(
        (n for n in names if n not in (time, data) and is_frequency(n)), None)
    return {"time": time, "frequency": frequency, "data": data}


def sampled_records(cdf, name: str, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(record indices, values) of ``n`` records of variable ``name`` evenly spread over
    the file, read record by record (a quicklook of a spectrogram without reading it
    all)."""
    total = _records(cdf, name)
    idx = np.unique(np.linspace(0, max(total - 1, 0), min(n, total)).astype(int))
    rows = [np.asarray(cdf.varget(name, startrec=int(i), endrec=int(i))) for i in idx]
    return idx, (np.stack([r.reshape(r.shape[-1:]) if r.ndim > 1 else r for r in rows])
                 if rows else np.zeros((0, 0)))


def short_form(value) -> str | None:
    """``"NDA>Nancay Decameter Array"`` → ``"NDA"`` (each ``#`` item); the value itself
    when it has no ``>``."""
    if _missing(value):
        return None
    return "#".join(item.split(">", 1)[0].strip() for item in str(value).split("#"))


def long_form(value) -> str | None:
    """``"NDA>Nancay Decameter Array"`` → ``"Nancay Decameter Array"`` (each ``#`` item)."""
    if _missing(value):
        return None
    return "#".join(item.split(">", 1)[-1].strip() for item in str(value).split("#"))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def write_cdf(path: Path, attributes: dict[str, Any],
              variables: list[tuple[str, np.ndarray, str, dict, bool]]) -> Path:
    """Write a CDF (uncompressed) with cdflib: global ``attributes`` (a float value is
    written as CDF_DOUBLE, text as CDF_CHAR) and ``variables`` as (name, data, CDF type
    name such as ``"CDF_FLOAT"`` / ``"CDF_TIME_TT2000"``, variable attributes, record
    varying). Times (``datetime64``) are converted to the type's epoch."""
    from cdflib import cdfepoch, cdfwrite
    c = cdfwrite.CDF(str(path), cdf_spec={"Compressed": 0}, delete=True)
    try:
        c.write_globalattrs({k: {0: [v, "CDF_DOUBLE"] if isinstance(v, float) else v}
                             for k, v in attributes.items()})
        for name, data, ctype, attrs, rec_vary in variables:
            data = np.asarray(data)
            if data.dtype.kind == "M":
                data = np.asarray(cdfepoch.timestamp_to_tt2000(
                    data.astype("datetime64[ns]").astype("int64") / 1e9))
            dims = list(data.shape[1:]) if rec_vary else list(data.shape)
            c.write_var({"Variable": name, "Data_Type": getattr(cdfwrite.CDF, ctype),
                         "Num_Elements": 1, "Rec_Vary": rec_vary, "Dim_Sizes": dims,
                         "Compress": 0}, attrs, data)
    finally:
        c.close()
    return path


def cdf_axes(cdf, frequency: str = "Frequency", time: str | None = None) -> dict[str, Any]:
    """The axis fields (:mod:`.axes`) of a CDF: its time variable (``Epoch`` by default)
    and the ``frequency`` variable with its ``UNITS``."""
    return {**time_fields(time_axis(cdf, time)), **frequency_fields(*axis(cdf, frequency))}


@register_reader("vespa-cdf")
def read_vespa_cdf(path: Path, frequency: str = "Frequency", time: str | None = None
                   ) -> dict[str, Any]:
    """A CDF prepared for VESPA: every global attribute as a field (upper case:
    ``VESPA_SPECTRAL_RANGE_MIN``, ``VESPA_SPECTRAL_RANGE_MIN_UNIT``, ``LOGICAL_SOURCE``,
    ``DOI``; several entries joined by ``#``, EPN-TAP's list form), and the axis fields
    of :mod:`.axes` from the time variable and the ``frequency`` variable."""
    cdf = open_cdf(path)
    out = {}
    for k, v in global_attributes(cdf).items():
        out[k.upper()] = "#".join(map(str, v)) if isinstance(v, list) else v
    out.update(cdf_axes(cdf, frequency, time))
    return out
