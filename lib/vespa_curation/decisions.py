"""Curator decisions: one CSV per service, keyed by granule_uid, honoured by every export.

The file (default ``parameters/decisions/<service>.csv``) has the columns
``granule_uid,decision,curator,time,reason,override``. It is append-only: the curator
widget (:mod:`vespa_curation.qa.widgets`) appends one line per decision and the latest line
of a granule wins, so the history stays readable and a decision survives every later run.

Decisions:

``accept``
    keep the row as the pipeline made it (a flagged region was looked at and is fine);
``reject``
    remove the granule from the export; when it was published before, list it for
    retraction (``retract/<run-id>.txt`` of the import area);
``override``
    keep the granule with another outline, named in ``override``: ``convex_hull`` (the
    convex hull of the published polygon) or ``repaired`` (keep the repaired outline the
    geometry stage made, marked as curator-approved).

An export never waits for a person: it reads the file as it is.
"""
from __future__ import annotations

import csv
import fcntl
import os
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from . import quarantine as Q, stcs
from .area import ImportArea

#: Columns of the decisions file, in order.
COLUMNS = ["granule_uid", "decision", "curator", "time", "reason", "override"]
#: Accepted decisions.
DECISIONS = ("accept", "reject", "override")
#: Accepted outline overrides.
OVERRIDES = ("convex_hull", "repaired")
#: Rule code of a curator rejection in the quarantine table.
REJECT_RULE = "curator.reject"


class DecisionError(ValueError):
    """A decision line is malformed; the message names the line and the reason."""


def _check(uid, decision, override, where: str) -> None:
    if not isinstance(uid, str) or not uid.strip():
        raise DecisionError(f"{where}: granule_uid is empty")
    if decision not in DECISIONS:
        raise DecisionError(f"{where}: decision {decision!r} for {uid!r} is not one of "
                            + ", ".join(DECISIONS))
    if decision == "override" and override not in OVERRIDES:
        raise DecisionError(f"{where}: override {override!r} for {uid!r} is not one of "
                            + ", ".join(OVERRIDES))


def load_decisions(path: str | os.PathLike) -> pd.DataFrame:
    """All lines of a decisions file, checked (an absent file is an empty table).

    Raises
    ------
    DecisionError
        Naming the line and the reason when a line is malformed.
    """
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS[:5] if c not in df.columns]
    if missing:
        raise DecisionError(f"{path}: missing column(s) {', '.join(missing)}; expected "
                            + ",".join(COLUMNS))
    if "override" not in df.columns:
        df["override"] = ""
    df = df[COLUMNS]
    for i, (uid, dec, ov) in enumerate(zip(df["granule_uid"], df["decision"],
                                           df["override"]), start=2):
        _check(uid, dec, ov or None, f"{path} line {i}")
    return df


def latest(decisions: pd.DataFrame) -> pd.DataFrame:
    """The decision in force per granule: the last line of each granule_uid wins."""
    return decisions.drop_duplicates("granule_uid", keep="last").set_index("granule_uid")


def append_decision(path: str | os.PathLike, granule_uid: str, decision: str,
                    curator: str, reason: str = "", override: str | None = None,
                    time: pd.Timestamp | str | None = None) -> dict:
    """Append one decision line (creating the file with its header when needed).

    The write holds an exclusive lock on the file, so two curators (or two widgets)
    never interleave lines.

    Returns
    -------
    dict
        The line written.
    """
    _check(granule_uid, decision, override, str(path))
    if decision != "override":
        override = None
    if time is None:
        time = pd.Timestamp.now("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    line = {"granule_uid": granule_uid, "decision": decision, "curator": curator or "",
            "time": str(time), "reason": (reason or "").replace("\n", " "),
            "override": override or ""}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.seek(0, os.SEEK_END)
            w = csv.DictWriter(fh, fieldnames=COLUMNS)
            if fh.tell() == 0:
                w.writeheader()
            w.writerow(line)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    return line


# -- export -----------------------------------------------------------------------------

def apply_decisions(rows: pd.DataFrame, decisions_path: str | os.PathLike, service,
                    import_area: ImportArea | None = None,
                    published: Iterable[str] | None = None):
    """Honour the curator decisions in an export.

    Parameters
    ----------
    rows : DataFrame
        epn_core rows about to be exported (``granule_uid`` column, optionally ``qa_*``).
    decisions_path : path
        The decisions file (absent = no decisions).
    service : str or Service
        Service name (for messages).
    import_area : ImportArea, optional
        The service's import area: the granules exported there before (and not
        retracted since) are the published ones.
    published : iterable of str, optional
        The published granule_uids, when known otherwise (wins over ``import_area``).

    Returns
    -------
    rows : DataFrame
        ``rows`` without the rejected granules, with the ``override`` outlines applied
        (``s_region`` and the c1/c2 ranges; ``qa_curator`` holds the decision in force).
    rejected : DataFrame
        The rejected granules present in ``rows``, as quarantine lines
        (``granule_uid, source_id, stage='curate', rule='curator.reject', reason``).
    retract_uids : list of str
        Rejected granules that were published before (in this run's rows or not) and
        not retracted yet: the export lists them in ``retract/<run-id>.txt``.
    overrides : dict
        granule_uid → override applied (only granules present in ``rows``).
    """
    name = getattr(service, "name", service)
    dec = load_decisions(decisions_path)
    rows = rows.copy()
    empty_q = Q.empty()
    if dec.empty:
        return rows, empty_q, [], {}
    cur = latest(dec)
    uids = rows["granule_uid"].astype(str)
    in_force = cur.reindex(uids.to_numpy())
    decision = in_force["decision"].to_numpy()
    if "qa_curator" not in rows:
        rows["qa_curator"] = None
    has = pd.notna(decision)
    rows.loc[has, "qa_curator"] = decision[has]

    rej_mask = decision == "reject"
    r = in_force[rej_mask]
    src_col = _source_column(service, rows)
    src = (rows.loc[rej_mask, src_col].astype(str).to_numpy() if src_col
           else [""] * int(rej_mask.sum()))
    rejected = pd.DataFrame({
        "granule_uid": r.index.to_numpy(), "source_id": src, "stage": "curate",
        "rule": REJECT_RULE,
        "reason": [f"{name}: rejected by {c or 'a curator'} on {t}"
                   + (f": {why}" if why else "")
                   for c, t, why in zip(r["curator"], r["time"], r["reason"])]},
        columns=empty_q.columns)
    rows = rows[~rej_mask]

    all_rejected = set(cur.index[cur["decision"] == "reject"])
    if all_rejected:
        pub = set(published) if published is not None else \
            (import_area.published_uids() if import_area is not None else set())
        retract = sorted(all_rejected & pub)
    else:
        retract = []

    ov = cur[cur["decision"] == "override"]
    ov = ov[ov.index.isin(rows["granule_uid"])]
    overrides = dict(zip(ov.index, ov["override"]))
    if overrides:
        rows = apply_overrides(rows, overrides)
    return rows.reset_index(drop=True), rejected.reset_index(drop=True), retract, overrides


def _source_column(service, rows: pd.DataFrame) -> str | None:
    """The rows' column naming the source record (``qa_<source_id>``), when kept."""
    name = getattr(service, "source_id", None)
    for col in ([f"qa_{name.lower()}"] if name else []) + ["qa_source_id", "source_id"]:
        if col in rows:
            return col
    return None


# -- outline overrides ------------------------------------------------------------------

def convex_hull_stcs(text: str, frame: str = "UNKNOWNFrame") -> tuple[str, tuple]:
    """The convex hull of an STC-S polygon, counter-clockwise, as STC-S.

    Longitudes are unwrapped before the hull (a 0/360-crossing polygon stays small)
    and folded back into [0, 360) after.

    Returns
    -------
    text : str
    ranges : tuple
        ``(c1min, c1max, c2min, c2max)`` (c1min > c1max across 0/360).
    """
    from shapely.geometry import MultiPoint
    poly = stcs.parse([text])
    if poly.parse_error[0] or len(poly.lon) < 3:
        raise ValueError(f"not an STC-S polygon: {str(text)[:60]!r}")
    lon = stcs.unwrap(poly)
    hull = MultiPoint(np.column_stack([lon, poly.lat])).convex_hull
    xy = np.asarray(hull.exterior.coords)[:-1]     # shapely hull exterior is CCW
    area = 0.5 * np.sum(xy[:, 0] * np.roll(xy[:, 1], -1) - np.roll(xy[:, 0], -1) * xy[:, 1])
    if area < 0:
        xy = xy[::-1]
    text = stcs.format_polygon(xy[:, 0], xy[:, 1], frame)
    c1min, c1max = np.mod(xy[:, 0].min(), 360.0), np.mod(xy[:, 0].max(), 360.0)
    return text, (float(c1min), float(c1max), float(xy[:, 1].min()), float(xy[:, 1].max()))


def apply_overrides(rows: pd.DataFrame, overrides: Mapping[str, str]) -> pd.DataFrame:
    """``rows`` with the outline overrides applied (``qa_override`` records which)."""
    rows = rows.copy()
    if "qa_override" not in rows:
        rows["qa_override"] = None
    idx = pd.Index(rows["granule_uid"].astype(str))
    for uid, choice in overrides.items():
        where = np.flatnonzero(idx == uid)
        for i in where:
            rows.iloc[i, rows.columns.get_loc("qa_override")] = choice
            if choice == "convex_hull" and isinstance(rows["s_region"].iloc[i], str):
                text, (c1a, c1b, c2a, c2b) = convex_hull_stcs(rows["s_region"].iloc[i])
                rows.iloc[i, rows.columns.get_loc("s_region")] = text
                for col, val in (("c1min", c1a), ("c1max", c1b),
                                 ("c2min", c2a), ("c2max", c2b)):
                    if col in rows:
                        rows.iloc[i, rows.columns.get_loc(col)] = val
    return rows
