"""The incremental mark: where the next harvest starts.

The mark is the highest time (and RUN_DATE / id, per service) of what was exported.
It is read from the last successful export's manifest (the import area's
``manifest.json``); a failed run never updates it, so the next run starts from the last
good export.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from . import paths


def manifest_path(service, params: Mapping[str, Any]):
    return paths.resolve(params["dachs_inputs"]) / service.name / "manifest.json"


def read_mark(service, params: Mapping[str, Any]) -> dict | None:
    """The mark of the last successful export of ``service``, or None (full harvest)."""
    p = manifest_path(service, params)
    if not p.is_file():
        return None
    manifest = json.loads(p.read_text(encoding="utf-8"))
    mark = manifest.get("mark")
    if mark is None:
        runs = manifest.get("runs") or []
        mark = runs[-1].get("mark") if runs else None
    return to_source_mark(mark)


def to_source_mark(mark: Mapping[str, Any] | None) -> dict | None:
    """A stored mark (``time_jd``, ``run_date``, ``id``) as the harvest query's
    parameters (``time`` as a UTC timestamp, ``run_date``, ``id``)."""
    if not mark:
        return None
    import pandas as pd
    out: dict[str, Any] = {}
    if mark.get("time_jd") is not None:
        out["time"] = pd.Timestamp((float(mark["time_jd"]) - 2440587.5) * 86400e9)
    if mark.get("run_date") is not None:
        out["run_date"] = mark["run_date"]
    if mark.get("id") is not None:
        out["id"] = mark["id"]
    return out or None
