"""Nightly incremental updates: where the next harvest starts, and what is really new.

The mark
    The highest ``time_min`` (Julian Date) and, per service (:class:`~.services.base.Mark`),
    the highest RUN_DATE and source id of what was exported, plus the source ids of records
    quarantined earlier (``retry``), which the next harvest reads again by id. It is read
    from DaCHS's database when ``dachs_db`` is given (``max(time_min)`` of
    ``<schema>.epn_core``: what is really published) and from the last successful
    export's manifest otherwise; a failed or killed run never writes it, so the next run
    starts from the last good export.

What is new
    Rows at the boundary come again (the harvest query uses ``>=``) and so do rows of
    re-processed source records. :func:`changed_rows` compares each row's content hash
    (every epn_core column except the three dates) with the hash kept, per granule, in
    the import area's granule state: unchanged rows are dropped, so a run on
    an unchanged source exports zero rows; a changed row keeps its ``creation_date`` and
    ``release_date`` and gets the run's ``modification_date``.

Credentials
    ``dachs_db`` is ``file:PATH`` (a file holding a libpq DSN or an ODBC connection
    string), ``env:NAME`` (an environment variable holding one) or a DSN without password
    (libpq then reads ``PGPASSWORD``/``~/.pgpass``). A literal DSN holding a password is
    refused: parameters are written into executed notebooks.
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from . import epncore, paths, quarantine as Q
from .area import ImportArea
from .parameter import looks_like_credential
from .sources.values import arrow_strings
from .times import jd, jd_to_timestamp, run_time_bound, to_datetime

log = logging.getLogger("vespa_curation.incremental")

#: The columns left out of the content hash (they say when, not what).
DATE_COLUMNS = ("creation_date", "modification_date", "release_date")
#: At most this many quarantined records are read again by id in one harvest (the rest
#: wait for the next run; bound parameters, so the query stays small).
RETRY_PER_RUN = 2000

class MarkError(RuntimeError):
    """The mark cannot be read (DaCHS database unreachable, bad ``dachs_db``)."""


# -- reading the mark --------------------------------------------------------------------

def read_mark(cfg) -> dict | None:
    """The mark the next harvest of ``cfg``'s service starts from (harvest-query form,
    see :func:`to_source_mark`), or None for a full harvest.

    With ``dachs_db``, the time is ``max(time_min)`` of the served table (the lower of
    it and the manifest's, so an export not yet published is harvested again and
    deduplicated); RUN_DATE, id and the retry list come from the manifest.
    """
    from .config import as_config
    cfg = as_config(cfg)
    mark = cfg.area.stored_mark() or {}
    if cfg.get("dachs_db"):
        db_time = dachs_max_time(cfg.service, cfg["dachs_db"])
        if db_time is None:
            log.info("%s: DaCHS table empty or absent: harvesting from the start",
                     cfg.service)
            return None
        mark["time_jd"] = min(db_time, float(mark.get("time_jd", np.inf)))
    return to_source_mark(mark, cfg.definition.source.mark)


def to_source_mark(mark: Mapping[str, Any] | None, declared=None) -> dict | None:
    """A stored mark (``time_jd``, ``run_date``, ``id``, ``retry``) as the harvest query's
    parameters: ``time`` (a UTC Timestamp), ``run_date``, ``id`` and ``retry`` (source ids,
    at most :data:`RETRY_PER_RUN`); the stored keys are kept too (for
    :func:`merge_marks`). For a harvest whose mark has a time (``declared``, the
    harvester's :class:`~vespa_curation.sources.Mark`; a time by default), a mark
    without one means a full harvest (None): the other conditions only add records to
    the time condition; for one without (a file collection's modification times), the
    mark's ``run_date`` is enough."""
    if not mark:
        return None
    needs_time = declared is None or declared.time is not None
    if needs_time and mark.get("time_jd") is None:
        return None
    if not needs_time and mark.get("run_date") is None:
        return None
    out: dict[str, Any] = {}
    if mark.get("time_jd") is not None:
        out["time_jd"] = float(mark["time_jd"])
        # one second early: a Julian Date holds ~10 µs, and boundary rows are
        # deduplicated anyway (changed_rows)
        out["time"] = jd_to_timestamp(mark["time_jd"]).floor("s") - pd.Timedelta(seconds=1)
    if mark.get("run_date") is not None:
        out["run_date"] = mark["run_date"]
    if mark.get("id") is not None:
        out["id"] = _as_id(mark["id"])
    if mark.get("retry"):
        out["retry"] = [_as_id(i) for i in list(mark["retry"])[:RETRY_PER_RUN]]
        out["retry_all"] = [_as_id(i) for i in mark["retry"]]
    return out or None


def _as_id(v):
    """Source ids as the source compares them: integers when they are, else text."""
    try:
        f = float(v)
        if f.is_integer():
            return int(f)
    except (TypeError, ValueError):
        pass
    return str(v)


def merge_marks(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None,
                now=None) -> dict:
    """The element-wise highest of two stored marks (a run that read only old records,
    e.g. quarantined ones retried, never moves the mark back).

    A time after ``now`` (the run's time; a mark written before records from the future
    were refused) and a ``run_date`` that is no date are dropped with a warning: kept,
    they would hide every later record from the next harvests or stop them."""
    limit = None if now is None else run_time_bound(now)
    out: dict[str, Any] = {}
    for m in (old or {}, new or {}):
        if m.get("time_jd") is not None:
            v = float(m["time_jd"])
            if limit is not None and v > jd(pd.Series([limit]))[0]:
                log.warning("mark time_jd %s is after the run's time: dropped", v)
            else:
                out["time_jd"] = max(out.get("time_jd", -np.inf), v)
        if m.get("run_date") is not None:
            t = to_datetime(pd.Series([m["run_date"]])).iloc[0]
            if pd.isna(t) or (limit is not None and t > limit):
                log.warning("mark run_date %r is no date or after the run's time: "
                            "dropped", m["run_date"])
            else:
                v = t.isoformat(timespec="milliseconds")
                out["run_date"] = max(out.get("run_date", v), v)
        if m.get("id") is not None:
            v = _as_id(m["id"])
            cur = out.get("id", v)
            out["id"] = max(cur, v) if type(cur) is type(v) else v
    return out


# -- the DaCHS database ------------------------------------------------------------------

def dsn_text(spec: str) -> tuple[str, str]:
    """(DSN text, label for messages) of a ``dachs_db`` parameter; the label never holds
    credentials.

    Raises
    ------
    MarkError
        Missing file or variable, or a literal DSN holding a password.
    """
    spec = str(spec).strip()
    if spec.startswith("file:"):
        p = paths.resolve(spec[5:], Path.cwd())
        if not p.is_file():
            raise MarkError(f"dachs_db file {p} does not exist")
        return p.read_text(encoding="utf-8").strip(), f"dachs_db file {p}"
    if spec.startswith("env:"):
        var = spec[4:]
        text = os.environ.get(var, "").strip()
        if not text:
            raise MarkError(f"environment variable {var} (dachs_db DSN) is not set")
        return text, f"dachs_db from ${var}"
    if looks_like_credential(spec):
        raise MarkError("dachs_db holds a password: parameters are written into executed "
                        "notebooks, so put the DSN in a file (dachs_db=file:PATH) or an "
                        "environment variable (dachs_db=env:NAME)")
    return spec, "dachs_db"


def connect_dachs_db(spec: str):
    """A DB-API connection to DaCHS's PostgreSQL: pyodbc when the DSN names an ODBC
    ``DRIVER=``, psycopg2 (libpq DSN or URI) otherwise."""
    text, label = dsn_text(spec)
    from .sources.sql import _scrub
    try:
        if re.search(r"(?i)\bdriver\s*=", text):
            import pyodbc
            return pyodbc.connect(text, autocommit=True), "qmark"
        import psycopg2
        conn = psycopg2.connect(text)
        conn.autocommit = True
        return conn, "pyformat"
    except ImportError as exc:
        raise MarkError(f"cannot read the mark from {label}: {exc} (install psycopg2, or "
                        "give an ODBC connection string with DRIVER=)") from None
    except Exception as exc:   # driver errors differ
        raise MarkError(f"cannot connect to DaCHS's database ({label}): "
                        f"{_scrub(_scrub_dsn(str(exc), text))}") from None


def _scrub_dsn(message: str, dsn: str) -> str:
    for m in re.finditer(r"(?i)(?:password|pwd)\s*=\s*([^;\s]+)", dsn):
        message = message.replace(m.group(1), "***")
    return message


def dachs_max_time(service, spec: str) -> float | None:
    """``max(time_min)`` of ``<schema>.epn_core`` in DaCHS's database (None when the
    table is absent or empty)."""
    name = service if isinstance(service, str) else service.name
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise MarkError(f"not a schema name: {name!r}")
    conn, style = connect_dachs_db(spec)
    try:
        cur = conn.cursor()
        arg = "?" if style == "qmark" else "%s"
        cur.execute("SELECT count(*) FROM information_schema.tables "
                    f"WHERE table_schema = {arg} AND table_name = 'epn_core'", (name,))
        if not cur.fetchone()[0]:
            return None
        # the schema name is checked above; identifiers cannot be bound parameters
        cur.execute(f"SELECT max(time_min) FROM {name}.epn_core")
        v = cur.fetchone()[0]
        cur.close()
        return None if v is None else float(v)
    finally:
        conn.close()


# -- content hashes ----------------------------------------------------------------------

def _quantize(x: np.ndarray) -> np.ndarray:
    """Floats rounded to 32 mantissa bits (≈ 2e-10 relative): a last-bit difference
    between two runs of the same computation is not a change."""
    m, e = np.frexp(x)
    return np.ldexp(np.round(m * 4294967296.0) / 4294967296.0, e)


#: The column of the rows :func:`changed_rows` returns holding the 64-bit hash of
#: their s_region (0 for NULL), which the export's coverage keeps.
REGION_HASH = "qa_s_region_hash"


def column_hashes(rows: pd.DataFrame, columns: Iterable[str], facts=None
                  ) -> dict[str, np.ndarray]:
    """The 64-bit hash of each value of ``columns`` except the dates (``qa_*`` left
    out), column by column in name order: what :func:`content_hash` combines.

    Values are first cast to their epncore type, so a column stored as object in one
    run and as float in another hashes the same; missing columns count as NULL, and
    a NULL text as "" (what ``where(notna, "\\x00")`` gave: numpy drops a string's
    trailing NULs; the hashes import areas hold stay valid).
    """
    cols = sorted(c for c in set(columns) if c not in DATE_COLUMNS and not c.startswith("qa_"))
    facts = epncore.COLUMNS if facts is None else facts
    n = len(rows)
    out = {}
    for c in cols:
        s = rows[c] if c in rows else pd.Series([None] * n, index=rows.index)
        fact = facts.get(c)
        if fact is None or fact.type == "Text":   # text stays as it is when cast
            h = _text_hashes(s)
            if h is not None:
                out[c] = h
                continue
        v = facts[c].cast(s) if c in facts else epncore.TYPES["Text"].cast(s)
        if v.dtype.kind == "M":
            vals = v.astype("int64").where(v.notna(), -1).to_numpy()
        elif v.dtype.kind in "fiu" or str(v.dtype) == "Int64":
            vals = _quantize(v.to_numpy(dtype=float, na_value=np.nan))
        else:   # text (str or None after the cast): hashed as Python objects
            vals = v.to_numpy(dtype=object).copy()
            vals[pd.isna(vals)] = ""
        out[c] = pd.util.hash_array(vals)
    return out


def _text_hashes(s: pd.Series) -> np.ndarray | None:
    """``pd.util.hash_array`` of a text column's values (NULL as ""), as
    :func:`column_hashes` hashes them, read from the column's Arrow strings when it
    holds some (None otherwise), without pandas' cast and factorize of Python strings.

    A column of repeated texts (most of its first 1 000 values alike) is dictionary
    encoded by Arrow and each distinct text hashed once, taken by index — what
    ``hash_array``'s factorize does; a column of distinct texts (uids, s_region) is
    hashed value by value, which is what factorizing it would come to. Either way
    the same hashes (tests/test_incremental.py)."""
    import pyarrow.compute as pc
    arr = arrow_strings(s)
    if arr is None:
        return None
    arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    head = arr.slice(0, 1000)
    if 2 * pc.count_distinct(head).as_py() > len(head):
        return pd.util.hash_array(arr.to_numpy(zero_copy_only=False), categorize=False)
    enc = pc.dictionary_encode(arr)
    distinct = enc.dictionary.to_numpy(zero_copy_only=False)
    return pd.util.hash_array(distinct, categorize=False).take(enc.indices.to_numpy())


def _combine(hashes: list[np.ndarray], n: int) -> np.ndarray:
    """The row hash pandas' ``hash_pandas_object(frame, index=False)`` makes of its
    columns' hashes (``pandas.core.util.hashing.combine_hash_arrays``, whose constants
    every content hash in an import area depends on: tests/test_incremental.py
    checks that both agree)."""
    out = np.full(n, 0x345678, dtype=np.uint64)
    mult = np.uint64(1000003)
    for i, h in enumerate(hashes):
        inverse = len(hashes) - i
        out ^= h
        out *= mult
        mult += np.uint64(82520 + inverse + inverse)
    return out + np.uint64(97531)


def content_hash(rows: pd.DataFrame, columns: Iterable[str], facts=None,
                 hashes: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """One 64-bit hash (as 16 hex digits) per row over ``columns`` except the dates
    (:func:`column_hashes`, or ``hashes`` when computed already)."""
    hashes = column_hashes(rows, columns, facts) if hashes is None else hashes
    n = len(rows)
    h = _combine(list(hashes.values()), n) if hashes else \
        np.zeros(n, dtype=np.uint64)
    return np.char.zfill(np.char.mod("%x", h), 16) if n else np.array([], dtype="<U16")


def changed_rows(service, rows: pd.DataFrame, area: ImportArea,
                 now: pd.Timestamp | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The rows whose content differs from what the import area holds.

    Parameters
    ----------
    service : Service
    rows : DataFrame
        The run's rows after curator decisions (``qa_*`` columns allowed).
    area : ImportArea
        The service's import area (may not exist yet).
    now : Timestamp, optional
        The run's time (modification_date of changed rows); default the rows' own.

    Returns
    -------
    rows : DataFrame
        New and changed rows only; changed ones carry the stored creation/release dates.
    state : DataFrame
        ``granule_uid`` + :data:`~vespa_curation.area.STATE_COLUMNS` of those rows.
    counts : dict
        ``harvested, new, changed, unchanged``.
    """
    rows = rows.reset_index(drop=True)
    hashes = column_hashes(rows, service.columns, service.column_facts)
    h = content_hash(rows, service.columns, hashes=hashes)
    uid = rows["granule_uid"].astype(str)
    old = area.state(uids=uid).drop_duplicates("granule_uid", keep="last") \
        .set_index("granule_uid")
    known = uid.isin(old.index).to_numpy()
    old_hash = old["content_hash"].reindex(uid).to_numpy(dtype=object)
    same = known & (old_hash == h)
    out = rows[~same].copy()
    if "s_region" in hashes:   # the coverage's s_region hash, not computed again
        out[REGION_HASH] = np.where(rows["s_region"].notna().to_numpy(),
                                    hashes["s_region"], np.uint64(0))[~same]
    h_out = h[~same]
    kn = known[~same]
    if now is not None:
        now = pd.Timestamp(now).tz_localize(None) if pd.Timestamp(now).tzinfo else pd.Timestamp(now)
        for c in DATE_COLUMNS:
            if c in out:
                out[c] = now
    # a changed granule keeps the dates of its first publication
    u = out["granule_uid"].astype(str)
    for c in ("creation_date", "release_date"):
        if c in out:
            prev = pd.to_datetime(old[c].reindex(u), errors="coerce").to_numpy()
            cur = pd.to_datetime(out[c]).to_numpy()
            keep = kn & ~pd.isna(prev)
            out[c] = np.where(keep, prev, cur).astype("datetime64[ns]")
    state = pd.DataFrame({
        "granule_uid": u.to_numpy(dtype=object), "content_hash": h_out.astype(object),
        "creation_date": _iso(out.get("creation_date")),
        "release_date": _iso(out.get("release_date")),
        "modification_date": _iso(out.get("modification_date"))})
    counts = {"harvested": int(len(rows)), "new": int((~known).sum()),
              "changed": int((known & ~same).sum()), "unchanged": int(same.sum())}
    return out.reset_index(drop=True), state, counts


def _iso(s) -> np.ndarray | None:
    if s is None:
        return None
    t = pd.to_datetime(pd.Series(s), errors="coerce")
    if t.dt.tz is not None:          # the wall time, as strftime would print it
        t = t.dt.tz_localize(None)
    # ``%Y-%m-%dT%H:%M:%S.%f`` without strftime's per-value formatting
    us = t.to_numpy().astype("datetime64[us]")
    text = np.datetime_as_string(us, unit="us").astype(object)
    text[np.isnat(us)] = None
    return text


# -- the mark written by an export -------------------------------------------------------

def retry_candidates(harvest_report: Mapping[str, Any]) -> set[str]:
    """Source ids the mark this run started from asked to read again."""
    mark_in = harvest_report.get("mark_in") or {}
    return {str(i) for i in (mark_in.get("retry_all") or mark_in.get("retry") or [])}


def next_mark(harvest_report: Mapping[str, Any], seen: Iterable[str],
              quarantine: pd.DataFrame) -> dict:
    """The stored mark after this run: the harvest's mark (never below the one it
    started from) and ``retry``, the source ids to read again next time — those
    quarantined now, plus earlier ones (:func:`retry_candidates`) this run did not read.
    ``seen``: source ids of this run's rows (only the retry candidates among them
    matter)."""
    mark_in = harvest_report.get("mark_in") or {}
    mark = merge_marks(mark_in, harvest_report.get("mark") or {}, harvest_report.get("time"))
    seen = {str(i) for i in seen}
    q = quarantine
    if len(q):
        q = q[q["stage"].astype(str) != "curate"]   # curator rejections are decisions
        seen |= set(quarantine["source_id"].astype(str))
    retry = set(q["source_id"].astype(str)) if len(q) else set()
    retry |= retry_candidates(harvest_report) - seen
    retry.discard("")
    retry.discard("nan")
    if retry:
        mark["retry"] = sorted((_as_id(i) for i in retry),
                               key=lambda v: (isinstance(v, str), v))
    return mark


def same_mark(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two stored marks are equal (JSON-wise)."""
    norm = lambda m: json.dumps({k: v for k, v in (m or {}).items()  # noqa: E731
                                 if k in ("time_jd", "run_date", "id", "retry")},
                                sort_keys=True, default=str)
    return norm(a) == norm(b)



# -- uniqueness over the whole harvest (chunks are mapped and validated one by one) -------

def refuse_duplicates(service, rows_path: str | os.PathLike,
                      quarantine: pd.DataFrame | None = None) -> pd.DataFrame:
    """Refuse the accepted rows of a harvest that are unique within their chunk but not
    within the harvest, and return their quarantine lines (one per removed row).

    Chunks are checked one by one (``hfc1ar.prepare``'s ``source.duplicate_id``,
    ``validate``'s ``epn.granule_uid``), so two records under one source id in two
    chunks (two images) both pass. This pass over the harvest's ``rows.parquet`` (two
    columns read, rewritten only when something is refused) refuses:

    - every row whose source id (``qa_source_id``) names several accepted rows, or a
      record a chunk already refused as ``source.duplicate_id`` (the third of three);
      rule ``source.duplicate_id``, stage ``map``, as within a chunk;
    - every row whose granule_uid is not unique in the harvest: rule
      ``epn.granule_uid``, stage ``validate``, as within a chunk.

    Both records are refused, none kept at random (which one the id names is unknown);
    refused records are read again by the next harvest (the mark's retry list).

    Parameters
    ----------
    service : Service
        Gives the source id's field name for the reasons.
    rows_path : path
        The harvest's accepted rows (``rows.parquet``), rewritten without the refused
        rows (atomic replace).
    quarantine : DataFrame, optional
        The harvest's quarantine lines so far.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from .runfolder import write_options

    rows_path = Path(rows_path)
    empty = Q.quarantine_frame([], [], "map", [], [])
    names = pq.read_schema(rows_path).names
    if "granule_uid" not in names or "qa_source_id" not in names:
        return empty
    t = pq.read_table(rows_path, columns=["granule_uid", "qa_source_id"]).to_pandas()
    if not len(t):
        return empty
    sid = t["qa_source_id"].astype(str)
    uid = t["granule_uid"].astype(str)
    n_sid = sid.map(sid.value_counts())
    already = set()
    if quarantine is not None and len(quarantine):
        q = quarantine[quarantine["rule"] == "source.duplicate_id"]
        already = set(q["source_id"].astype(str))
    dup_id = (n_sid > 1) | sid.isin(already)
    dup_uid = uid.duplicated(keep=False) & ~dup_id
    bad = (dup_id | dup_uid).to_numpy()
    if not bad.any():
        return empty
    field = service.source_id
    parts = []
    if dup_id.any():
        refused_before = {s: int((quarantine["source_id"].astype(str) == s).sum())
                          for s in already} if already else {}
        parts.append(Q.quarantine_frame(
            uid[dup_id], sid[dup_id], "map", ["source.duplicate_id"] * int(dup_id.sum()),
            [f"{field}={s} names {n + refused_before.get(s, 0)} records of this harvest, "
             f"in different chunks ({field} must be unique)"
             for s, n in zip(sid[dup_id], n_sid[dup_id])]))
    if dup_uid.any():
        n_uid = uid.map(uid.value_counts())
        parts.append(Q.quarantine_frame(
            uid[dup_uid], sid[dup_uid], "validate",
            ["epn.granule_uid"] * int(dup_uid.sum()),
            [f"{field}={s}: granule_uid {u} is not unique in this export ({n} rows, in "
             "different chunks)" for s, u, n in zip(sid[dup_uid], uid[dup_uid],
                                                    n_uid[dup_uid])]))
    table = pq.read_table(rows_path)   # same row order as the two columns above
    tmp = rows_path.with_name(rows_path.name + ".tmp")
    kept = table.filter(pa.array(~bad))
    pq.write_table(kept, tmp, **write_options(kept))
    os.replace(tmp, rows_path)
    out = pd.concat(parts, ignore_index=True)
    log.warning("%d rows refused as not unique across chunks: %s", len(out),
                "; ".join(out["reason"].head(5)))
    return out

