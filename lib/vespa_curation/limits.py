"""How long a text value of a published table may be, in bytes (UTF-8), and why.

EPN-TAP sets no length on its text columns, and DaCHS's tables hold any length — but an
index does not: a PostgreSQL B-tree index entry must fit in a third of an 8 kB page
(2704 bytes for btree version 4, PostgreSQL 12 and later; measured on PostgreSQL 15:
``index row size 2712 exceeds btree version 4 maximum 2704``, and ``index row requires
12072 bytes, maximum size is 8191`` for a 1 MB value that compresses). One such value
fails ``dachs imp`` for its whole file, so the validator refuses it first
(``epn.too_long``, ``link.too_long``) and the export refuses to write one.

The B-tree indexes of the tables an import area fills (:mod:`vespa_curation.export.rd`,
:data:`BTREE_INDEXES`): epn_core's primary key ``granule_uid`` (and ``time_min``, a
number); the links table's primary key ``(granule_uid, access_url, semantics)``, its
``granule_uid`` and ``source_file`` (a path of the import area). So:

- ``granule_uid`` at most :data:`GRANULE_UID_BYTES` (512 — also Elasticsearch's own
  limit on a document ``_id``, the granule_uid of nrh and orfees);
- a URL at most :data:`URL_BYTES` (2048): ``access_url`` is keyed in the links table
  with the granule_uid, and every ``*_url`` column may become a link (thumbnail_url is
  nrh's #thumbnail, orfees's #preview);
- a link's semantics at most :data:`SEMANTICS_BYTES`, its content type
  :data:`CONTENT_TYPE_BYTES` (RFC 6838: 127 + "/" + 127);
- any other text at most :data:`TEXT_BYTES` (64 kB): no index limits it, but no
  EPN-TAP value is a document — a longer one is a source error (a file's content read
  as a name) that a TAP client would have to read whole.

With these, the largest entry of every index is below the B-tree limit
(:func:`entry_bytes`; ``tests/test_limits.py`` checks it, and imports a link at the
limits into the real DaCHS).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

#: PostgreSQL's largest B-tree index entry, bytes (btree version 4, 8 kB pages).
BTREE_MAX_ENTRY = 2704
GRANULE_UID_BYTES = 512
URL_BYTES = 2048
SEMANTICS_BYTES = 64
CONTENT_TYPE_BYTES = 255
TEXT_BYTES = 65536
#: Longest path of a file of the import area (links' ``source_file`` index, the
#: ``imported_sources`` key): ``<schema>/links/<run-id>.vot``, run ids are short.
SOURCE_FILE_BYTES = 256

#: The B-tree indexes (primary keys included) of the tables of an import area, by table:
#: each a tuple of key columns (what :mod:`vespa_curation.export.rd` declares).
BTREE_INDEXES: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "epn_core": (("granule_uid",), ("time_min",)),
    "links": (("granule_uid", "access_url", "semantics"), ("granule_uid",),
              ("source_file",)),
    "imported_sources": (("source",),),
}

#: Limits of the links table's text columns.
LINK_LIMITS: Mapping[str, int] = {
    "granule_uid": GRANULE_UID_BYTES, "access_url": URL_BYTES,
    "semantics": SEMANTICS_BYTES, "content_type": CONTENT_TYPE_BYTES,
    "description": TEXT_BYTES, "source_file": SOURCE_FILE_BYTES,
}
#: Limits of the import bookkeeping table's key.
SOURCE_LIMITS: Mapping[str, int] = {"source": SOURCE_FILE_BYTES}

#: Why each limit, for the reasons of refused values.
WHY = {
    GRANULE_UID_BYTES: "the primary key of epn_core and of the links table, PostgreSQL "
                       "B-tree indexes",
    URL_BYTES: "a URL may become a datalink, keyed with its granule in a PostgreSQL "
               "B-tree index",
    SEMANTICS_BYTES: "keyed with the URL in a PostgreSQL B-tree index",
    CONTENT_TYPE_BYTES: "a MIME type is at most 255 bytes (RFC 6838)",
    TEXT_BYTES: "no EPN-TAP text is that long: a longer value is a source error",
}


def epn_limit(name: str) -> int:
    """The byte limit of epn_core text column ``name``."""
    if name == "granule_uid":
        return GRANULE_UID_BYTES
    if name.endswith("_url"):
        return URL_BYTES
    return TEXT_BYTES


def entry_bytes(key_limits) -> int:
    """The largest B-tree index entry of a key of text columns no longer than
    ``key_limits`` (bytes each; a number column counts 8): the entry header (8 bytes),
    each value with its 4-byte length header aligned to 4 bytes, the whole aligned to
    8 (PostgreSQL's ``index_form_tuple``; a value over 126 bytes has a 4-byte header)."""
    size = 8
    for n in key_limits:
        size += 8 if n is None else -(-(4 + n) // 4) * 4
    return -(-size // 8) * 8


def byte_lengths(values, limit: int | None = None) -> np.ndarray:
    """UTF-8 length of each text value (0 for NULL and anything that is not text).
    With ``limit``, values too short to reach it in any encoding (4 bytes per
    character at most) are counted by character, without encoding them."""
    s = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    if not (s.dtype == object or pd.api.types.is_string_dtype(s)):
        return np.zeros(len(s), dtype=np.int64)
    n = s.str.len().to_numpy(dtype=float, na_value=np.nan)
    out = np.where(np.isnan(n), 0, n).astype(np.int64)
    exact = np.flatnonzero(~np.isnan(n) & (n * 4 > (limit if limit is not None else -1)))
    if len(exact):
        vals = s.to_numpy(dtype=object)
        out[exact] = [len(vals[i].encode("utf-8", "surrogatepass")) for i in exact]
    return out


def too_long(values, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask of values longer than ``limit`` bytes, every value's length)."""
    n = byte_lengths(values, limit)
    return n > limit, n


def describe(name: str, nbytes: int, limit: int, value=None) -> str:
    """The reason of a refused value: its length, the limit and why (the value's start,
    never the whole value)."""
    start = ""
    if isinstance(value, str):
        start = f" ({value[:48]!r}…)"
    return (f"{name} is {nbytes} bytes long{start}; at most {limit} bytes "
            f"({WHY.get(limit, 'the limit of its column')})")


def first_too_long(frame: pd.DataFrame, limits: Mapping[str, int]
                   ) -> tuple[int, str, int, int] | None:
    """The first (row position, column, bytes, limit) of ``frame`` beyond ``limits``,
    None when every value fits."""
    for name, limit in limits.items():
        if name not in frame:
            continue
        bad, n = too_long(frame[name], limit)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            return i, name, int(n[i]), limit
    return None
