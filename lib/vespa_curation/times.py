"""Time conversions, in one place: source date-times → naive UTC datetimes ↔ Julian Dates
↔ ISO text.

EPN-TAP's ``time_min``/``time_max`` are Julian Dates (UTC, days); sources give ISO text,
``datetime`` objects or zone-aware values; datalinks and the VOTable writer need ISO text;
the incremental mark is kept as a Julian Date. Every conversion between these forms is
here, vectorised over whole columns, and every module uses it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: Julian Date of the Unix epoch, 1970-01-01T00:00:00 UTC.
JD_UNIX_EPOCH = 2440587.5
_NS_PER_DAY = 86400e9


def to_datetime(values) -> pd.Series:
    """Source date-times (ISO text with or without ``Z``, datetime objects, zone-aware
    values) → naive UTC ``datetime64[ns]``; NaT where unreadable or outside the years
    1677–2262 that nanosecond datetimes hold.

    Text is parsed once per distinct value when values repeat (a catalogue's dates:
    an image's regions share its DATE_OBS, a run's RUN_DATE): each value's text is
    read on its own, so its date is the same whichever values surround it."""
    s = pd.Series(values)
    if not pd.api.types.is_datetime64_any_dtype(s) and len(s) > 64:
        text = s.astype("string")
        codes, distinct = pd.factorize(text)          # <NA>: -1
        if 2 * len(distinct) <= len(text):
            once = _to_datetime(pd.Series(distinct, dtype="string")).to_numpy()
            out = np.full(len(text), np.datetime64("NaT", "ns"))
            known = codes >= 0
            out[known] = once[codes[known]]
            return pd.Series(out, index=s.index, name=s.name)
    return _to_datetime(s)


def _to_datetime(s: pd.Series) -> pd.Series:
    """:func:`to_datetime` of each value of ``s``."""
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s
    else:
        out = pd.to_datetime(s.astype("string").str.strip().str.rstrip("Z"),
                             errors="coerce", format="ISO8601")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    if out.dtype != "datetime64[ns]":   # e.g. year 800: outside 1677–2262 → NaT
        out = out.where((out >= pd.Timestamp.min) & (out <= pd.Timestamp.max))
    return out.astype("datetime64[ns]")


def jd(values) -> np.ndarray:
    """Julian Dates (UTC, days) of date-times; NaN where unreadable."""
    t = to_datetime(values)
    ns = t.to_numpy(dtype="datetime64[ns]").astype("int64").astype(float)
    out = ns / _NS_PER_DAY + JD_UNIX_EPOCH
    out[t.isna().to_numpy()] = np.nan
    return out


def jd_to_datetime(values) -> pd.Series:
    """Julian Dates (UTC) → naive UTC datetimes, rounded to the millisecond (a double
    Julian Date holds about 40 µs); NaT for NaN."""
    v = np.asarray(values, dtype=float)
    ms = np.round((v - JD_UNIX_EPOCH) * 86400e3)
    return pd.Series(pd.to_datetime(ms, unit="ms", errors="coerce"))


def jd_to_timestamp(value: float) -> pd.Timestamp:
    """One Julian Date (UTC) → a naive UTC Timestamp, to the nanosecond (no rounding:
    the incremental mark floors it to the second itself)."""
    return pd.Timestamp((float(value) - JD_UNIX_EPOCH) * _NS_PER_DAY)


def iso_ms(values) -> np.ndarray:
    """ISO-8601 text ``YYYY-MM-DDTHH:MM:SS.sss`` (UTC, no zone suffix, milliseconds
    truncated) of date-times; None where unreadable (an object array)."""
    t = to_datetime(values)
    ms = t.to_numpy().astype("datetime64[ms]")
    text = np.datetime_as_string(ms, unit="ms").astype(object)
    text[np.isnat(ms)] = None
    return text


def iso_seconds(values) -> pd.Series:
    """``YYYY-MM-DDTHH:MM:SSZ`` of date-times (HAPI and das2 query times)."""
    return to_datetime(values).dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now() -> pd.Timestamp:
    """The current time as a naive UTC Timestamp, floored to the second (a run's time:
    creation/modification dates of its rows)."""
    return pd.Timestamp.now("UTC").tz_localize(None).floor("s")


def run_time_bound(now) -> pd.Timestamp:
    """The latest time a record may carry to be "before" a run of time ``now``: a run's
    time is floored to the second (:func:`utc_now`), so a file written during that
    second, before the harvest started, is not from the future."""
    return pd.Timestamp(str(now).rstrip("Z")) + pd.Timedelta(seconds=1)


__all__ = ["run_time_bound", "JD_UNIX_EPOCH", "to_datetime", "jd", "jd_to_datetime", "jd_to_timestamp",
           "iso_ms", "iso_seconds", "utc_now"]
