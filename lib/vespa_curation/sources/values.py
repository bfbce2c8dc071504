"""What a record field may hold: the kinds a harvester declares, and the values that
break them.

A harvester declares the kind of the record fields it reads (``Harvester.kinds``,
field → kind), the way a database declares its column types:

``int``
    a whole number (an id, a pixel, a count, a size in bytes) of magnitude at most
    2**53 — the whole numbers a double holds exactly, far beyond any field of these
    catalogues, so that a granule id or a mark built from it never overflows;
``float``
    a finite number;
``text``
    text;
``date``
    a date-time (ISO text or a datetime object);
``bool``
    true or false (a flag a file reader computes).

Text that reads as a number (``"12.5"``) is a number, and blank text in a number or
date field is a missing value, as NULL is. Whatever the declaration, no field may hold
bytes (an undecoded BLOB) or an infinite number; a field without a declared kind may
hold anything else (lists, for instance).

:func:`faults` finds the first value of each record its field cannot hold: the
rowmaker refuses those records (``source.bad_value``) before anything reads them, so
granule ids, marks, QA copies and the service's own steps only see values of their
kind. :func:`date_faults` runs after the service's own checks (whose reasons are more
precise): a declared date that does not read as one, and a date of the incremental mark
after the run's own time, which would move the mark past every later record.
"""
from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..times import to_datetime

#: The kinds a record field may declare.
KINDS = ("int", "float", "text", "date", "bool")
#: The largest magnitude of an ``int`` field: 2**53, the whole numbers a double holds.
MAX_INT = 2.0 ** 53
#: A date of the incremental mark may lie this far after the run's time (clocks of a
#: source and of the harvest differ; a source may write local time) before the record
#: is refused.
FUTURE_SLACK = pd.Timedelta(days=1)
#: Record field a harvester sets on a record it could not read at all: the reason,
#: naming the record (a truncated line, a document without ``_id``). The rowmaker
#: refuses such a record (``source.bad_record``) before anything else reads it.
UNREADABLE = "_UNREADABLE"

_NUMBER = (int, float, np.integer, np.floating)
_DATE = (str, _dt.date, np.datetime64)
_WANTED = {"int": "a whole number", "float": "a number", "text": "text",
           "date": "a date", "bool": "true or false"}


def check_kinds(kinds: Mapping[str, str], fields: Sequence[str], who: str) -> None:
    """Refuse a declaration naming an unknown kind or a field the harvester does not
    read (ValueError naming it)."""
    for name, kind in kinds.items():
        if kind not in KINDS:
            raise ValueError(f"{who}: field {name} has kind {kind!r}; kinds: "
                             + ", ".join(KINDS))
        if name not in fields:
            raise ValueError(f"{who}: kind declared for {name!r}, which is not a field "
                             "it reads")


def show(value: Any, width: int = 60) -> str:
    """A value as a reason quotes it (``repr`` of the plain Python value, shortened to
    ``width`` characters)."""
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= width else text[:width - 5] + "…" + text[-4:]


def text_of(v) -> str:
    """A value as plain text naming a record (a source id): bytes decoded, never raising
    (pandas' ``astype(str)`` raises on bytes that are not UTF-8)."""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", errors="replace")
    return str(v)


def _a(v) -> str:
    """``a float``, ``an int``: the type of ``v`` in a reason."""
    name = type(v).__name__
    return ("an " if name[:1] in "aeiou" else "a ") + name


def missing(values) -> np.ndarray:
    """Which of ``values`` (a Series or array) are missing: None, NaN, NaT, NA or blank
    text (:func:`_missing` of each, without a Python call per value: a text is blank
    when it is empty or all white space, which ``isspace`` tells at its first
    non-blank character). A column of Arrow strings is not turned into Python
    strings: only its texts that are empty or do not start with a printable ASCII
    character (``!`` … ``~``: never white space) are looked at one by one."""
    arrow = arrow_strings(values) if isinstance(values, pd.Series) else None
    if arrow is not None:
        return _missing_arrow(arrow)
    vals = values.to_numpy(dtype=object) if isinstance(values, pd.Series) \
        else np.asarray(values, dtype=object)
    out = np.asarray(pd.isna(vals), dtype=bool).copy()
    out |= np.fromiter((isinstance(v, str) and (not v or v.isspace()) for v in vals),
                       dtype=bool, count=len(vals))
    return out


def arrow_strings(s: pd.Series):
    """The Arrow array of a Series of Arrow-backed strings (pandas' ``str`` dtype on
    pyarrow, or ``ArrowDtype(string)``), else None."""
    import pyarrow as pa
    arr = getattr(s.array, "_pa_array", None)
    if arr is None or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return None
    return arr


def _missing_arrow(arr) -> np.ndarray:
    """:func:`missing` of an Arrow string array."""
    import pyarrow.compute as pc
    out = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool).copy()
    plain = pc.match_substring_regex(arr, r"^[\x21-\x7e]").to_numpy(zero_copy_only=False)
    look = np.flatnonzero(~out & ~np.asarray(plain, dtype=bool))
    if len(look):
        texts = arr.take(look).to_pylist()
        out[look] = [not v or v.isspace() for v in texts]
    return out


def _missing(v) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, (float, np.floating)):
        return bool(np.isnan(v))
    return isinstance(v, str) and not v.strip()


def value_fault(v, kind: str | None) -> str | None:
    """Why ``v`` cannot be a value of a field of ``kind`` (None: it can)."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "bytes, not text or a number (an undecoded binary value)"
    if _missing(v):
        return None
    if kind is None:
        number = isinstance(v, (float, np.floating)) and not isinstance(v, bool)
        return "an infinite number" if number and math.isinf(v) else None
    if kind == "text":
        return None if isinstance(v, str) else f"{_a(v)}, not text"
    if kind == "date":
        ok = isinstance(v, _DATE) and not isinstance(v, bool)
        return None if ok else f"{_a(v)}, not a date"
    if kind == "bool":
        ok = isinstance(v, (bool, np.bool_)) or (isinstance(v, _NUMBER) and v in (0, 1))
        return None if ok else f"{_a(v)}, not true or false"
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, _NUMBER + (str,)):
        return f"{_a(v)}, not {_WANTED[kind]}"
    try:
        x = float(v.strip()) if isinstance(v, str) else float(v)
    except (ValueError, OverflowError):
        return "text, not a number"
    if math.isnan(x):
        return "text, not a number"
    if math.isinf(x):
        return "an infinite number"
    if kind == "int" and (abs(x) > MAX_INT or not x.is_integer()):
        return ("not a whole number" if abs(x) <= MAX_INT else
                "beyond ±2**53, the whole numbers an integer field holds")
    return None


def column_faults(s: pd.Series, kind: str | None) -> np.ndarray:
    """Why each value of one record field breaks ``kind`` (None where it does not):
    whole numeric columns are checked at once, object columns value by value."""
    n = len(s)
    out = np.full(n, None, dtype=object)
    if s.dtype.kind in "fiu":
        v = s.to_numpy(dtype=float)
        bad = np.isinf(v)
        if kind == "int":
            bad |= np.isfinite(v) & ((np.abs(v) > MAX_INT) | (np.floor(v) != v))
        elif kind == "bool":
            bad |= np.isfinite(v) & (v != 0) & (v != 1)
        elif kind in ("text", "date"):
            bad |= np.isfinite(v)
        for i in np.flatnonzero(bad):
            out[i] = value_fault(float(v[i]), kind)
        return out
    if s.dtype.kind in "bM" or isinstance(s.dtype, pd.DatetimeTZDtype):
        wrong = {"b": ("int", "float", "text", "date"),
                 "M": ("int", "float", "text", "bool")}
        if kind in wrong.get(s.dtype.kind, ("int", "float", "text")):
            for i in np.flatnonzero(s.notna().to_numpy()):
                out[i] = f"a {s.dtype}, not {_WANTED[kind]}"
        return out
    values = s.to_numpy(dtype=object)
    plain = _plain_types(kind)
    for i, v in enumerate(values):
        if type(v) not in plain:
            out[i] = value_fault(v, kind)
    return out


def _plain_types(kind: str | None) -> frozenset:
    """Value types that need no closer look for ``kind`` (checked at C speed)."""
    return {None: frozenset({str, int, type(None), list, dict, tuple, bool}),
            "text": frozenset({str, type(None)}),
            "date": frozenset({str, type(None), _dt.datetime, pd.Timestamp}),
            "bool": frozenset({bool, type(None)}),
            "int": frozenset({type(None)}), "float": frozenset({type(None)})}[kind]


def faults(records: pd.DataFrame, kinds: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """The first value of each record its field cannot hold.

    Returns
    -------
    field, reason : object arrays
        The field's name and ``"<FIELD> holds <value>, <why>"``; None for a record
        whose every value holds.
    """
    n = len(records)
    field = np.full(n, None, dtype=object)
    reason = np.full(n, None, dtype=object)
    for name in records.columns:
        if name == UNREADABLE:
            continue
        why = column_faults(records[name], kinds.get(name))
        new = np.not_equal(why, None) & np.equal(field, None)
        for i in np.flatnonzero(new):
            field[i] = name
            reason[i] = f"{name} holds {show(records[name].iat[i])}, {why[i]}"
    return field, reason


def date_faults(records: pd.DataFrame, kinds: Mapping[str, str], mark,
                now: pd.Timestamp) -> np.ndarray:
    """Why each record's dates cannot be used (None where they can): a field declared
    ``date`` (or a date of the mark) that does not read as a date, and a date of the
    incremental mark (``mark.time``, ``mark.changed``) more than :data:`FUTURE_SLACK`
    after ``now``, the run's time."""
    n = len(records)
    out = np.full(n, None, dtype=object)
    marked = [f for f in (mark.time, mark.changed) if f]
    for name in [f for f, k in kinds.items() if k == "date"] + marked:
        if name not in records or not n:
            continue
        raw = records[name]
        t = to_datetime(raw)
        given = ~missing(raw)
        unread = given & t.isna().to_numpy()
        future = (t > now + FUTURE_SLACK).to_numpy() if name in marked else \
            np.zeros(n, dtype=bool)
        for i in np.flatnonzero((unread | future) & np.equal(out, None)):
            out[i] = (f"{name} {show(raw.iat[i])} is not a date (unreadable, or "
                      "outside the years 1677-2262)" if unread[i] else
                      f"{name} {show(raw.iat[i])} is after this run's time "
                      f"({now.isoformat()}Z): a record from the future would move the "
                      "incremental mark past every later record")
    return out


__all__ = ["KINDS", "MAX_INT", "FUTURE_SLACK", "UNREADABLE", "check_kinds", "faults",
           "date_faults", "column_faults", "value_fault", "show", "text_of"]
