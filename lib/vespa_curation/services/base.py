"""Service definitions, declared the way a DaCHS resource descriptor declares a table.

A :class:`Service` is a table of EPN-TAP column ← source field (``fields``), constant
columns (``constants``), and small named functions for the values that must be computed
(``computed``: column ← ``f(records, params) -> Series``). :func:`map_chunk` turns one chunk
of source records into epn_core rows with the same code for every service; the only
service-specific Python is in those named functions, the harvest query and, where a
service needs one, a ``prepare`` step (hfc1ar's geometry) that adds columns to the records
and flags the records it refuses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import epncore
from ..params import Param

#: Columns of the quarantine table (docs/architecture.md).
QUARANTINE_COLUMNS = ["granule_uid", "source_id", "stage", "rule", "reason"]

Computed = Callable[[pd.DataFrame, Mapping[str, Any]], "pd.Series | Any"]


@dataclass
class Mark:
    """How a service's incremental mark is read from its rows and its source.

    ``time_column`` is the epn_core column whose maximum is the mark (time_min), and
    ``source_time``/``source_id`` the source fields compared with it in the harvest query
    (a RUN_DATE or id catches late or reprocessed source rows).
    """

    time_column: str = "time_min"
    source_time: str | None = None
    source_id: str | None = None


@dataclass
class Service:
    """One EPN-TAP service (one DaCHS schema with one ``epn_core`` table)."""

    name: str
    title: str
    description: str
    creator: str
    subjects: Sequence[str]
    spatial_frame_type: str
    #: source tables → columns the harvest needs (checked before harvesting).
    needs: Mapping[str, Sequence[str]]
    #: EPN-TAP column ← source field (upper-case name in the records frame).
    fields: Mapping[str, str]
    #: EPN-TAP column ← constant value.
    constants: Mapping[str, Any]
    #: EPN-TAP column ← f(records, params).
    computed: Mapping[str, Computed]
    #: granule_uid of each record: f(records) -> Series of str.
    uid: Callable[[pd.DataFrame], pd.Series]
    #: yields chunks of source records: f(source, params, mark) -> Iterator[DataFrame].
    harvest: Callable[..., Iterator[pd.DataFrame]]
    #: the field naming the source record in messages (e.g. ID_AR).
    source_id: str
    #: optional step before mapping: f(records, params) -> records with extra columns
    #: and the columns ``rule``/``reason`` set on the records it refuses.
    prepare: Callable[[pd.DataFrame, Mapping[str, Any]], pd.DataFrame] | None = None
    #: optional datalink rows: f(rows, records, params) -> DataFrame.
    links: Callable[..., pd.DataFrame] | None = None
    #: extra record columns kept on the rows for QA, as ``qa_<lower name>``.
    qa_fields: Sequence[str] = ()
    #: parameters of this service beyond the common ones.
    params: Sequence[Param] = ()
    mark: Mark = field(default_factory=Mark)
    #: embedded sample: (sample name in vespa_curation.sample, parameters source URL).
    sample: str | None = None
    #: extra meta for the RD (keywords → text), e.g. referenceURL, source.
    meta: Mapping[str, str] = field(default_factory=dict)
    #: extra RD fragments (XML text) added inside <resource> by the RD writer.
    rd_extras: Callable[..., str] | None = None
    #: extra files for the import area: f(rows, params) -> {area-relative path: bytes}
    #: (e.g. hfc1t3's TFCat files), passed to export's ``extra_files``.
    files: Callable[..., Mapping[str, bytes]] | None = None

    def __post_init__(self):
        for col in list(self.fields) + list(self.constants) + list(self.computed):
            epncore.column(col)   # KeyError names a column that is not EPN-TAP
        if self.spatial_frame_type not in epncore.VOCABULARIES["spatial_frame_type"]:
            raise ValueError(f"{self.name}: bad spatial_frame_type {self.spatial_frame_type}")

    @property
    def columns(self) -> list[str]:
        """The epn_core columns this service fills, in the standard's order."""
        names = set(self.fields) | set(self.constants) | set(self.computed)
        names |= set(epncore.MANDATORY)
        return epncore.ordered(names)


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame(columns=QUARANTINE_COLUMNS)


def quarantine_frame(uids, source_ids, stage: str, rules, reasons) -> pd.DataFrame:
    """A quarantine frame (docs/architecture.md) from aligned sequences."""
    n = len(uids)
    return pd.DataFrame({
        "granule_uid": list(uids), "source_id": [str(s) for s in source_ids],
        "stage": [stage] * n, "rule": list(rules), "reason": list(reasons)},
        columns=QUARANTINE_COLUMNS)


def map_chunk(service: Service, records: pd.DataFrame, params: Mapping[str, Any],
              now: pd.Timestamp | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """epn_core rows of one chunk of source records, and the records refused on the way.

    Returns
    -------
    rows : DataFrame
        One row per accepted record: the service's epn_core columns, then
        ``qa_*`` columns (geometry flags, source fields listed in ``qa_fields``).
    quarantine : DataFrame
        ``granule_uid, source_id, stage, rule, reason`` of the refused records.
    """
    now = now if now is not None else pd.Timestamp.now("UTC").tz_localize(None).floor("s")
    records = records.reset_index(drop=True)
    uids = service.uid(records).astype(object)
    records = records.assign(_UID=uids.values)
    quarantined = [_empty_quarantine()]
    if service.prepare is not None:
        records = service.prepare(records, params)
        if "rule" in records:
            bad = records["rule"].notna().to_numpy()
            if bad.any():
                b = records[bad]
                quarantined.append(quarantine_frame(
                    b["_UID"], b[service.source_id], "map", b["rule"], b["reason"]))
                records = records[~bad].reset_index(drop=True)
    rows = pd.DataFrame(index=records.index)
    for col in service.columns:
        if col in service.fields:
            rows[col] = records[service.fields[col]].to_numpy()
        elif col in service.constants:
            rows[col] = service.constants[col]
        elif col in service.computed:
            rows[col] = service.computed[col](records, params)
        else:
            rows[col] = None
    rows["granule_uid"] = records["_UID"].to_numpy()
    rows["service_title"] = service.name
    rows["spatial_frame_type"] = service.spatial_frame_type
    for col in ("creation_date", "modification_date", "release_date"):
        if col not in service.fields and col not in service.computed:
            rows[col] = now
    for name in service.qa_fields:
        if name in records:
            rows["qa_" + name.lower()] = records[name].to_numpy()
    rows["qa_source_id"] = records[service.source_id].astype(str).to_numpy()
    return rows, pd.concat(quarantined, ignore_index=True)


#: The constant columns every service of the Sun shares (``constants={**SOLAR, ...}``).
SOLAR: Mapping[str, Any] = {
    "target_name": "Sun",
    "target_class": "star",
    "time_scale": "UTC",
    "publisher": "PADC",
}

#: The constant columns of a service whose coordinates are Carrington longitude and
#: latitude on the Sun (``spatial_frame_type = body``).
CARRINGTON: Mapping[str, Any] = {
    "spatial_coordinate_description": "Carrington",
    "spatial_origin": "Sun",
}


# -- reading any source the same way -------------------------------------------------

def read_records(source, chunksize: int, *, sql: str | None = None, args: Sequence = (),
                 index: str | None = None, query: Mapping[str, Any] | None = None
                 ) -> Iterator[pd.DataFrame]:
    """Chunks of source records from a SQL source (``sql`` with bound ``args``) or a
    document source (``index``/``query``, Elasticsearch query body), with upper-case
    column names either way; a harvest function gives both and the source picks."""
    if hasattr(source, "hits"):
        yield from source.frames(chunksize, index=index, query=query)
    else:
        if sql is None:
            raise TypeError(f"source {source.label} is a SQL source but no query was given")
        yield from source.query(sql, args, chunksize=chunksize)


def sql_time(source, value) -> Any:
    """A mark time as the source compares it: ISO text for SQLite (whose HFC dates are
    ISO text), a datetime for ODBC drivers. Floored to the second: a mark computed from a
    Julian Date (≈ 40 µs resolution) may otherwise land just after the boundary image's
    DATE_OBS, and whether that image is read again would depend on the driver."""
    ts = pd.Timestamp(value).floor("s")
    if source.label.startswith("sqlite:"):
        return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    return ts.to_pydatetime()


def mark_conditions(source, mark: Mapping[str, Any] | None, *, time: str, run_date: str,
                    id: str) -> tuple[list[str], tuple]:
    """The ``WHERE`` conditions (to be joined by ``OR``) and their bound parameters of a
    mark on one source table: ``time >= mark['time']``, ``run_date > mark['run_date']``,
    ``id > mark['id']`` and, beside at least one of those, ``id IN (mark['retry'])``
    (records quarantined earlier, read again). A mark holding nothing but retries means
    "from the start": no condition, everything is read."""
    conds: list[str] = []
    params: tuple = ()
    if not mark:
        return conds, params
    if mark.get("time") is not None:
        conds.append(f"{time} >= ?")
        params += (sql_time(source, mark["time"]),)
    if mark.get("run_date") is not None:
        conds.append(f"{run_date} > ?")
        params += (sql_time(source, mark["run_date"]),)
    if mark.get("id") is not None:
        conds.append(f"{id} > ?")
        params += (int(mark["id"]),)
    retry = [int(i) for i in (mark.get("retry") or [])] if conds else []
    if retry:
        conds.append(f"{id} IN (" + ", ".join("?" * len(retry)) + ")")
        params += tuple(retry)
    return conds, params


def sql_harvest(harvest_sql: Callable[[Any, Mapping[str, Any] | None], tuple[str, tuple]]
                ) -> Callable[..., Iterator[pd.DataFrame]]:
    """A service's ``harvest`` for a SQL source whose records are independent (plain
    chunks): ``harvest_sql(source, mark) -> (sql, args)`` with bound parameters, the
    ``limit`` parameter (a quick look) appended as ``LIMIT``."""
    def harvest(source, params: Mapping[str, Any], mark: Mapping[str, Any] | None
                ) -> Iterator[pd.DataFrame]:
        sql, args = harvest_sql(source, mark)
        if params.get("limit"):
            sql += f" LIMIT {int(params['limit'])}"
        yield from read_records(source, params["chunk_size"], sql=sql, args=args)
    harvest.__doc__ = f"Chunks of the records of ``{harvest_sql.__module__}.harvest_sql``."
    return harvest


# -- small shared computations (named, reused by several services) --------------------

def to_datetime(values) -> pd.Series:
    """Source date-times (ISO text, datetime objects) → naive UTC datetime64; NaT when
    unreadable (the validator refuses a row whose required time is NaT)."""
    s = pd.Series(values)
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


_JD_UNIX_EPOCH = 2440587.5


def jd(values) -> np.ndarray:
    """Julian Dates (UTC, days) of date-times; NaN where unreadable."""
    t = to_datetime(values)
    ns = t.to_numpy(dtype="datetime64[ns]").astype("int64").astype(float)
    out = ns / 86400e9 + _JD_UNIX_EPOCH
    out[t.isna().to_numpy()] = np.nan
    return out


def number(field: str, unit: str | None = None, to: str | None = None) -> Computed:
    """Computed column: source ``field`` as float, converted from ``unit`` to ``to``
    (astropy unit names, e.g. ``number("FMIN_MHZ", "MHz", "Hz")``); NaN where not a
    number."""
    factor = 1.0
    if unit and to:
        import astropy.units as u
        factor = float(u.Unit(unit).to(u.Unit(to)))

    def f(r, p):
        return pd.to_numeric(r[field], errors="coerce").to_numpy(dtype=float) * factor
    f.__name__ = f"number_{field.lower()}"
    return f


def jd_of(field: str) -> Computed:
    """Computed column: Julian Date (UTC) of the source date-time ``field``."""
    def f(r, p):
        return jd(r[field])
    f.__name__ = f"jd_{field.lower()}"
    return f


def jd_end(end_field: str, start_field: str) -> Computed:
    """Computed column: Julian Date of ``end_field``, the start's where the end is
    missing (a snapshot); an end before the start is left for the validator to
    refuse."""
    def f(r, p):
        end, start = jd(r[end_field]), jd(r[start_field])
        return np.where(np.isnan(end), start, end)
    f.__name__ = f"jd_{end_field.lower()}"
    return f


def access_format(format_field: str, url_field: str,
                  default: str = "application/fits") -> Computed:
    """Computed column: lower-case MIME type of the file at ``url_field`` (``default``
    where the source gives none), NULL where there is no file."""
    def f(r, p):
        fmt = r[format_field].astype("string").str.strip().str.lower()
        fmt = fmt.where(fmt.notna() & (fmt != ""), default)
        return fmt.where(r[url_field].notna(), None).astype(object).to_numpy()
    f.__name__ = f"access_format_{format_field.lower()}"
    return f


def size_kb(bytes_field: str) -> Computed:
    """Computed column: ``access_estsize`` in whole kB (rounded up) of a size in bytes."""
    def f(r, p):
        kb = np.ceil(pd.to_numeric(r[bytes_field], errors="coerce").to_numpy(dtype=float)
                     / 1024.0)
        return pd.array(np.where(np.isfinite(kb), kb, np.nan),
                        dtype="Float64").astype("Int64")
    f.__name__ = f"size_kb_{bytes_field.lower()}"
    return f


def file_stem(name_field: str, fallback_field: str) -> Computed:
    """Computed column: the file name without its FITS extension (``.fits``, ``.fts``,
    optionally ``.gz``), ``fallback_field`` where there is no file name."""
    def f(r, p):
        name = r[name_field].astype("string").str.replace(r"\.(fts|fits)(\.gz)?$", "",
                                                          regex=True)
        return name.fillna(r[fallback_field].astype(str)).astype(object).to_numpy()
    f.__name__ = f"file_stem_{name_field.lower()}"
    return f


def wavelength_to_hz(values, unit: str | Sequence[str] = "nm") -> np.ndarray:
    """Wavelengths in ``unit`` (nm, Angstrom, um, m; per value when a sequence) → Hz."""
    import astropy.units as u
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    if isinstance(unit, str):
        units = np.full(v.shape, unit, dtype=object)
    else:
        units = np.asarray(list(unit), dtype=object)
    out = np.full(v.shape, np.nan)
    for un in pd.unique(units):
        m = units == un
        name = {"angstrom": "Angstrom", "a": "Angstrom", "å": "Angstrom"}.get(
            str(un).strip().lower(), str(un).strip() or "nm")
        out[m] = (v[m] * u.Unit(name)).to_value(u.Hz, equivalencies=u.spectral())
    return out


def messenger_from_wavelength(nm) -> np.ndarray:
    """EPN-TAP ``messenger`` of a wavelength in nm (vectorized)."""
    w = np.asarray(nm, dtype=float)
    edges = [0.01, 10.0, 121.0, 400.0, 750.0, 1e6, 1e7]
    names = np.array(["Gamma-ray", "X-ray", "EUV", "UV", "Optical", "Infrared",
                      "Millimeter", "Radio"], dtype=object)
    idx = np.searchsorted(edges, w, side="right")
    out = names[np.clip(idx, 0, len(names) - 1)]
    out[~np.isfinite(w)] = None
    return out
