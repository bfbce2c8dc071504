"""The rowmaker: one chunk of source records → epn_core rows, for any declared service.

The same code maps every service (:class:`~.declare.Service` holds all that differs):
records the source could not read or holding values their declared kinds cannot hold
are refused (:mod:`vespa_curation.sources.values`), then granule ids, the service's
``prepare`` step (which may refuse records by rule), the dates, then each epn_core
column from a field, a constant or a computed function, and the ``qa_*`` columns QA
and the next incremental mark read.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from .. import quarantine as Q
from ..sources import values as V
from ..sources.values import UNREADABLE
from ..times import utc_now
from .declare import Service

#: Columns the ``prepare`` step sets on the records it refuses.
RULE, REASON = "rule", "reason"
#: Column of the records frame holding each record's granule_uid while it is mapped.
UID = "_UID"


def map_chunk(service: Service, records: pd.DataFrame, params: Mapping[str, Any],
              now: pd.Timestamp | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """epn_core rows of one chunk of source records, and the records refused on the way.

    Records the source could not read, or holding a value their field's declared kind
    cannot hold (:mod:`vespa_curation.sources.values`), are refused first, so that no
    later step — granule ids included — sees such a value; then granule ids, the
    service's ``prepare``, the dates (a declared date that does not read as one, a date
    of the incremental mark after ``now``, the run's time), and the columns.

    Returns
    -------
    rows : DataFrame
        One row per accepted record: the service's epn_core columns, then ``qa_*``
        columns (:attr:`Service.kept_fields` and ``qa_source_id``).
    quarantine : DataFrame
        ``granule_uid, source_id, stage, rule, reason`` of the refused records.
    """
    now = now if now is not None else utc_now()
    records, q_values = refuse_unreadable(service, records.reset_index(drop=True))
    records = records.assign(**{UID: service.uid(records).astype(object).values})
    q_prepare = Q.empty()
    if service.prepare is not None:
        records = service.prepare(records, params)
        records, q_prepare = split_refused(service, records)
    records, q_dates = refuse_dates(service, records, now)
    parts = [q for q in (q_values, q_prepare, q_dates) if len(q)]
    refused = pd.concat(parts, ignore_index=True) if parts else Q.empty()
    return _rows(service, records, params, now), refused


def _rows(service: Service, records: pd.DataFrame, params: Mapping[str, Any],
          now: pd.Timestamp) -> pd.DataFrame:
    """The epn_core and ``qa_*`` columns of the accepted ``records``.

    Gathered as one mapping (a value per column: an array, a Series, or a scalar
    every row takes) and made into a frame at once, without pandas' insertion of
    each column (≈ 4 % of a chunk's map)."""
    cols: dict = {}
    for col in service.columns:
        if col in service.fields:
            cols[col] = records[service.fields[col]].to_numpy()
        elif col in service.constants:
            cols[col] = service.constants[col]
        elif col in service.computed:
            cols[col] = service.computed[col](records, params)
        else:   # a column the service leaves empty: NULL of its type (NaN: float64)
            facts = service.column_facts.get(col)
            cols[col] = np.nan if facts is not None and facts.pandas_dtype == "float64" \
                else None
    cols["granule_uid"] = records[UID].to_numpy()
    cols["service_title"] = service.name
    cols["spatial_frame_type"] = service.spatial_frame_type
    for col in ("creation_date", "modification_date", "release_date"):
        if col not in service.fields and col not in service.computed:
            cols[col] = now
    for name in service.kept_fields:
        if name in records:
            cols["qa_" + name.lower()] = records[name].to_numpy()
    cols["qa_source_id"] = records[service.source_id].astype(str).to_numpy()
    # one frame at once: pandas broadcasts scalars and aligns Series as setting each
    # column did (same order, same types)
    return pd.DataFrame(cols, index=records.index)


def refuse_unreadable(service: Service, records: pd.DataFrame
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the records every step can read, quarantine lines of the others): records the
    harvester could not read (``source.bad_record``, stage ``harvest``) and records
    holding a value their field cannot hold (``source.bad_value``: bytes, an infinite
    number, text in a number, a number beyond the integers, ...)."""
    harvester = service.source
    unread = records[UNREADABLE].notna().to_numpy() if UNREADABLE in records \
        else np.zeros(len(records), dtype=bool)
    field, why = V.faults(records, harvester.field_kinds())
    bad = np.not_equal(field, None) & ~unread
    if not (unread | bad).any():
        return records.drop(columns=[UNREADABLE], errors="ignore"), Q.empty()
    sid = np.array([V.text_of(v) for v in records[service.source_id]], dtype=object)
    lines = []
    if unread.any():
        lines.append(Q.quarantine_frame(
            _uids(service, records[unread]), sid[unread], "harvest",
            ["source.bad_record"] * int(unread.sum()), records.loc[unread, UNREADABLE]))
    if bad.any():
        lines.append(Q.quarantine_frame(
            _uids(service, records[bad]), sid[bad], "map",
            ["source.bad_value"] * int(bad.sum()),
            [f"{service.source_id}={s}: {w}" for s, w in zip(sid[bad], why[bad])]))
    keep = records[~(unread | bad)].drop(columns=[UNREADABLE], errors="ignore")
    return keep.reset_index(drop=True), pd.concat(lines, ignore_index=True)


def _uids(service: Service, records: pd.DataFrame) -> list:
    """Granule ids of refused records for their quarantine lines ("" when a record's
    values cannot even make one)."""
    try:
        return [str(u) if u is not None else "" for u in service.uid(records)]
    except Exception:  # noqa: BLE001 — the values refused may be what the id is made of
        return [""] * len(records)


def refuse_dates(service: Service, records: pd.DataFrame, now: pd.Timestamp
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(records whose dates hold, quarantine lines of the others: ``source.bad_date``,
    a declared date that does not read as one or a date of the mark after ``now``)."""
    why = V.date_faults(records, service.source.field_kinds(), service.source.mark, now)
    bad = np.not_equal(why, None)
    if not bad.any():
        return records, Q.empty()
    b = records[bad]
    sid = b[service.source_id].astype(str).to_numpy()
    q = Q.quarantine_frame(b[UID], sid, "map", ["source.bad_date"] * len(b),
                           [f"{service.source_id}={s}: {w}" for s, w in zip(sid, why[bad])])
    return records[~bad].reset_index(drop=True), q


def split_refused(service: Service, records: pd.DataFrame
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(records still in, quarantine lines of those ``prepare`` refused)."""
    if RULE not in records:
        return records, Q.empty()
    bad = records[RULE].notna().to_numpy()
    if not bad.any():
        return records, Q.empty()
    b = records[bad]
    q = Q.quarantine_frame(b[UID], b[service.source_id], "map", b[RULE], b[REASON])
    return records[~bad].reset_index(drop=True), q
