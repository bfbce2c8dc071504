"""The rowmaker: one chunk of source records → epn_core rows, for any declared service.

The same code maps every service (:class:`~.declare.Service` holds all that differs):
granule ids first, then the service's ``prepare`` step (which may refuse records by
rule), then each epn_core column from a field, a constant or a computed function, and
the ``qa_*`` columns QA and the next incremental mark read.
"""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from .. import quarantine as Q
from ..times import utc_now
from .declare import Service

#: Columns the ``prepare`` step sets on the records it refuses.
RULE, REASON = "rule", "reason"
#: Column of the records frame holding each record's granule_uid while it is mapped.
UID = "_UID"


def map_chunk(service: Service, records: pd.DataFrame, params: Mapping[str, Any],
              now: pd.Timestamp | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """epn_core rows of one chunk of source records, and the records refused on the way.

    Returns
    -------
    rows : DataFrame
        One row per accepted record: the service's epn_core columns, then ``qa_*``
        columns (:attr:`Service.kept_fields` and ``qa_source_id``).
    quarantine : DataFrame
        ``granule_uid, source_id, stage, rule, reason`` of the refused records.
    """
    now = now if now is not None else utc_now()
    records = records.reset_index(drop=True)
    records = records.assign(**{UID: service.uid(records).astype(object).values})
    refused = Q.empty()
    if service.prepare is not None:
        records = service.prepare(records, params)
        records, refused = split_refused(service, records)
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
    rows["granule_uid"] = records[UID].to_numpy()
    rows["service_title"] = service.name
    rows["spatial_frame_type"] = service.spatial_frame_type
    for col in ("creation_date", "modification_date", "release_date"):
        if col not in service.fields and col not in service.computed:
            rows[col] = now
    for name in service.kept_fields:
        if name in records:
            rows["qa_" + name.lower()] = records[name].to_numpy()
    rows["qa_source_id"] = records[service.source_id].astype(str).to_numpy()
    return rows, refused


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
