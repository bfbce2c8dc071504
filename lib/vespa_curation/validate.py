"""EPN-TAP 2.0 and pgSphere rules: each row is accepted or quarantined with its reasons.

Every rule is vectorized over the whole frame (a boolean mask of failing rows and a
reason); column facts (required values, vocabularies, min/max pairs) come from
:mod:`vespa_curation.epncore`, polygon rules from :mod:`vespa_curation.stcs`.
Quarantine has one line per (row, broken rule): ``granule_uid, source_id, stage, rule,
reason``.
"""
from __future__ import annotations

import re
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from . import epncore, limits, stcs
from . import rules
from .quarantine import QUARANTINE_COLUMNS
from .sources.values import missing

Failure = tuple[str, np.ndarray, "Callable[[int], str] | str"]


def _is_null(s: pd.Series) -> np.ndarray:
    """NULL, NaN/NaT or blank text."""
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        return missing(s)
    return pd.isna(s).to_numpy().copy()


def _num(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)


#: A control character (below U+0020), a lone surrogate (text decoded with
#: ``surrogateescape``) or U+FFFD (text decoded with ``replace``): one search of the
#: text instead of a Python test per character.
_BAD_CHARACTER = re.compile("[\x00-\x1f\ud800-\udfff\ufffd]")


def _text_problem(name: str, v) -> str | None:
    """Why text value ``v`` of column ``name`` breaks EPN-TAP string hygiene, or None."""
    if not isinstance(v, str):
        return f"{name} is not text ({type(v).__name__})"
    if v != v.strip():
        return f"{name} {v!r} has leading or trailing blanks"
    if _BAD_CHARACTER.search(v):
        return f"{name} holds control or undecodable characters"
    if "#" in v and (any(p != p.strip() or p == "" for p in v.split("#"))
                     or '"' in v or "'" in v):
        return f"{name} {v!r} is a malformed #-list"
    return None


def _rules(rows: pd.DataFrame, service_name: str, frame: str,
           facts=None) -> Iterator[Failure]:
    """Every rule's failures: (rule code, mask of failing rows, reason)."""
    cols = set(rows.columns)
    yield from _lengths(rows, epncore.COLUMNS if facts is None else facts)
    yield from _required(rows, cols)
    yield from _identity(rows, cols, service_name)
    yield from _vocabularies(rows, cols)
    yield from _times(rows, cols)
    yield from _min_max(rows, cols, frame)
    yield from _access(rows, cols)
    yield from _timestamps(rows, cols)
    yield from _strings(rows)
    yield from _polygons(rows, cols)


def _lengths(rows, facts) -> Iterator[Failure]:
    """Text no longer than its column's limit (:mod:`vespa_curation.limits`): a
    granule_uid or URL beyond what DaCHS's B-tree indexes hold would fail ``dachs imp``
    for the whole file."""
    for name in rows.columns:
        if name not in facts or facts[name].type != "Text":
            continue
        limit = limits.epn_limit(name)
        bad, n = limits.too_long(rows[name], limit)
        if bad.any():
            vals = rows[name].to_numpy(dtype=object)
            yield ("epn.too_long", bad,
                   lambda i, name=name, n=n, limit=limit, vals=vals:
                   limits.describe(name, int(n[i]), limit, vals[i]))


def _required(rows, cols) -> Iterator[Failure]:
    for name in epncore.VALUE_REQUIRED:
        if name not in cols:
            yield ("epn.required", np.ones(len(rows), bool),
                   f"column {name} is missing (a value is required in every row)")
            continue
        yield ("epn.required", _is_null(rows[name]), f"{name} has no value (required)")


def _identity(rows, cols, service_name: str) -> Iterator[Failure]:
    """service_title = the schema; granule_uid unique and without '#'."""
    if "service_title" in cols:
        yield ("epn.service_title", (rows["service_title"] != service_name).to_numpy(),
               f"service_title differs from the schema name {service_name!r}")
    if "granule_uid" in cols:
        uid = rows["granule_uid"].astype("string")
        yield ("epn.granule_uid", uid.str.contains("#", regex=False).fillna(False).to_numpy(),
               "granule_uid contains '#'")
        yield ("epn.granule_uid", uid.duplicated(keep=False).fillna(False).to_numpy()
               & uid.notna().to_numpy(), "granule_uid is not unique in this export")


def _vocabularies(rows, cols) -> Iterator[Failure]:
    """Vocabulary columns (hash lists checked element by element), processing_level."""
    for name, vocab in epncore.VOCABULARIES.items():
        if name not in cols:
            continue
        vals, text, other = _texts(rows[name])
        hashed = name in epncore.HASH_LIST_VOCABULARIES
        wrong = [v for v in pd.unique(rows[name][text])
                 if any(it not in vocab for it in (str(v).split("#") if hashed else [str(v)]))]
        bad = other | (text & rows[name].isin(wrong).to_numpy())
        yield ("epn.vocabulary", bad,
               lambda i, name=name, vals=vals, vocab=vocab:
               f"{name} {vals[i]!r} is not in the EPN-TAP vocabulary "
               f"({' '.join(sorted(vocab))})")
    if "processing_level" in cols:
        pl = _num(rows["processing_level"])
        bad = ~np.isnan(pl) & ~np.isin(pl, list(epncore.PROCESSING_LEVELS))
        yield ("epn.processing_level", bad,
               lambda i: f"processing_level {pl[i]:g} is not a CODMAC level 1,2,3,5,6")


def _times(rows, cols) -> Iterator[Failure]:
    """time_min/time_max are plausible Julian Dates."""
    lo, hi = epncore.JD_PLAUSIBLE
    for name in ("time_min", "time_max"):
        if name in cols:
            t = _num(rows[name])
            bad = ~np.isnan(t) & ((t < lo) | (t > hi))
            yield ("epn.time_range", bad,
                   lambda i, t=t, name=name: f"{name} {t[i]:.6f} is not a plausible Julian "
                                             f"Date ({lo:.0f}–{hi:.0f})")


def _min_max(rows, cols, frame: str) -> Iterator[Failure]:
    """Min/max pairs both set or both NULL, in order (but c1 across 0/360 in body and
    celestial frames); body-frame coordinates within their ranges."""
    for a, b in epncore.MINMAX_PAIRS:
        if a not in cols and b not in cols:
            continue
        if (a in cols) != (b in cols):
            yield ("epn.minmax_pair", np.ones(len(rows), bool),
                   f"{a} and {b} must both be columns")
            continue
        va, vb = _num(rows[a]), _num(rows[b])
        yield ("epn.minmax_pair", np.isnan(va) != np.isnan(vb),
               f"{a} and {b} must be both set or both NULL")
        if a == "c1min" and frame in ("body", "celestial"):
            continue   # c1min > c1max is legal across 0/360 (c1min is the western edge)
        bad = ~np.isnan(va) & ~np.isnan(vb) & (va > vb)
        yield ("epn.minmax_order", bad,
               lambda i, a=a, b=b, va=va, vb=vb: f"{a} {va[i]:.10g} > {b} {vb[i]:.10g}")
    if frame == "body":
        for name, (lo_, hi_) in (("c1min", (0, 360)), ("c1max", (0, 360)),
                                 ("c2min", (-90, 90)), ("c2max", (-90, 90))):
            if name in cols:
                v = _num(rows[name])
                yield ("epn.coord_range", ~np.isnan(v) & ((v < lo_) | (v > hi_)),
                       lambda i, v=v, name=name, lo_=lo_, hi_=hi_:
                       f"{name} {v[i]:g} outside {lo_}..{hi_} deg")


def _access(rows, cols) -> Iterator[Failure]:
    """access_* go together; the format a lower-case MIME type; the size whole kB."""
    present = [c for c in epncore.ACCESS_GROUP if c in cols]
    if present:
        setm = np.stack([~_is_null(rows[c]) for c in present])
        some = setm.any(axis=0)
        allp = setm.all(axis=0) & (len(present) == len(epncore.ACCESS_GROUP))
        yield ("epn.access", some & ~allp,
               "access_url, access_format and access_estsize must be given together")
    if "access_format" in cols:
        f = rows["access_format"].astype("string")
        bad = f.notna() & ((f != f.str.lower()) | ~f.str.contains("/", regex=False))
        yield ("epn.access", bad.fillna(False).to_numpy(),
               lambda i, f=f: f"access_format {f.iloc[i]!r} is not a lower-case MIME type")
    if "access_estsize" in cols:
        s = _num(rows["access_estsize"])
        bad = ~np.isnan(s) & ((s < 0) | (s != np.round(s)))
        yield ("epn.access", bad, "access_estsize is not a non-negative integer (kB)")


def _timestamps(rows, cols) -> Iterator[Failure]:
    for name in ("creation_date", "modification_date", "release_date"):
        if name in cols:
            t = pd.to_datetime(rows[name], errors="coerce")
            yield ("epn.timestamp", t.isna().to_numpy() & ~_is_null(rows[name]),
                   f"{name} is not a timestamp")
    if "creation_date" in cols and "modification_date" in cols:
        c = pd.to_datetime(rows["creation_date"], errors="coerce")
        m = pd.to_datetime(rows["modification_date"], errors="coerce")
        yield ("epn.timestamp", (c > m).fillna(False).to_numpy(),
               "creation_date is after modification_date")


def _strings(rows) -> Iterator[Failure]:
    """String hygiene of text columns: no leading/trailing blanks, no quotes or empty
    items in hash lists, no control characters, valid text (each distinct value once)."""
    for name in rows.columns:
        if name in ("s_region", "granule_uid") or name not in epncore.COLUMNS:
            continue
        if epncore.COLUMNS[name].type != "Text":
            continue
        col = rows[name]
        vals, text, other = _texts(col)
        problems = {}
        for v in pd.unique(col[text]):
            why = _text_problem(name, v)
            if why:
                problems[v] = why
        if not problems and not other.any():
            continue
        bad = other | (text & col.isin(list(problems)).to_numpy())
        yield ("epn.string", bad, lambda i, vals=vals, problems=problems, name=name:
               problems[vals[i]] if isinstance(vals[i], str) else _text_problem(name, vals[i]))


def _texts(col: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, which are text, which are neither text nor NULL): a value that is no
    text (a list a file's attribute held) is refused as it is, and texts are checked
    once per distinct value."""
    vals = col.to_numpy(dtype=object)
    null = pd.isna(vals)
    if pd.api.types.infer_dtype(vals, skipna=True) in ("string", "empty"):
        return vals, ~null, np.zeros(len(vals), dtype=bool)    # text or NULL, all
    text = np.array([isinstance(v, str) for v in vals], dtype=bool)
    return vals, text, ~text & ~null


def _polygons(rows, cols) -> Iterator[Failure]:
    """pgSphere's polygon rules and EPN-TAP's orientation (:func:`stcs.check`)."""
    if "s_region" not in cols:
        return
    has = ~_is_null(rows["s_region"])
    res = [None] * len(rows)
    idx = np.flatnonzero(has)
    if len(idx):
        for k, r in zip(idx, stcs.check(rows["s_region"].to_numpy(dtype=object)[idx])):
            res[k] = r
    for rule in sorted({r[0] for r in res if r}):
        mask = np.array([r is not None and r[0] == rule for r in res])
        yield (rule, mask, lambda i, res=res: res[i][1])


def validate_links(rows: pd.DataFrame, links: pd.DataFrame | None,
                   stage: str = "validate") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Refuse the rows whose datalinks the links table cannot hold (``link.too_long``:
    a URL, semantics or description beyond :data:`vespa_curation.limits.LINK_LIMITS`;
    a link is keyed by a B-tree index, and one too long fails the import of its whole
    file). A link is built from the row and the service's parameters (a HAPI URL holds
    the granule's dataset and times), so it can break a limit its row keeps.

    Returns the rows kept (index reset) and the quarantine lines of the others.
    """
    if links is None or not len(links) or not len(rows):
        return rows, pd.DataFrame(columns=QUARANTINE_COLUMNS)
    why: dict = {}
    uid = links["granule_uid"].to_numpy(dtype=object)
    sem = links["semantics"].to_numpy(dtype=object) if "semantics" in links else uid
    for name, limit in limits.LINK_LIMITS.items():
        if name not in links:
            continue
        bad, n = limits.too_long(links[name], limit)
        vals = links[name].to_numpy(dtype=object)
        for i in np.flatnonzero(bad):
            why.setdefault(uid[i], f"its {sem[i]} link: "
                           + limits.describe(name, int(n[i]), limit, vals[i]))
    refused = rows["granule_uid"].isin(list(why)).to_numpy()
    if not refused.any():
        return rows, pd.DataFrame(columns=QUARANTINE_COLUMNS)
    ruid = rows["granule_uid"].to_numpy(dtype=object)
    src = rows["qa_source_id"].to_numpy(dtype=object) if "qa_source_id" in rows else ruid
    q = pd.DataFrame([(ruid[i], src[i], stage, "link.too_long", why[ruid[i]])
                      for i in np.flatnonzero(refused)], columns=QUARANTINE_COLUMNS)
    rules.check(q["rule"])
    return rows[~refused].reset_index(drop=True), q


def validate(rows: pd.DataFrame, service, stage: str = "validate"
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``rows`` into accepted rows and quarantine lines.

    Parameters
    ----------
    rows : DataFrame
        epn_core rows (``qa_*`` columns are carried along, never checked).
    service : Service
        The service (its name is the schema; its spatial_frame_type the frame).

    Returns
    -------
    accepted : DataFrame
        The rows that break no rule (index reset).
    quarantine : DataFrame
        ``granule_uid, source_id, stage, rule, reason``; one line per broken rule.
    """
    rows = rows.reset_index(drop=True)
    frame = service.spatial_frame_type
    bad_any = np.zeros(len(rows), bool)
    lines = []
    uid = rows["granule_uid"].to_numpy(dtype=object) if "granule_uid" in rows else \
        np.array([None] * len(rows))
    src = rows["qa_source_id"].to_numpy(dtype=object) if "qa_source_id" in rows else uid
    for rule, mask, reason in _rules(rows, service.name, frame,
                                     getattr(service, "column_facts", None)):
        mask = np.asarray(mask, bool)
        if not mask.any():
            continue
        bad_any |= mask
        for i in np.flatnonzero(mask):
            lines.append((uid[i], src[i], stage, rule,
                          reason(i) if callable(reason) else reason))
    q = pd.DataFrame(lines, columns=QUARANTINE_COLUMNS)
    rules.check(q["rule"])
    return rows[~bad_any].reset_index(drop=True), q
