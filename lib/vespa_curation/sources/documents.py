"""Document sources: the common interface, and NDJSON dumps of an Elasticsearch index.

A *document source* gives search hits the way Elasticsearch does — dicts
``{"_index", "_id", "_source"}`` — through one small interface shared by the live
Elasticsearch client (:mod:`vespa_curation.sources.elastic`) and a dump file:

``hits(index=None, query=None) -> Iterator[dict]``
    Every hit of ``query`` (an Elasticsearch query body, ``{"query": {...}}``) in
    ``index``; both default to the source's own (from its parameters file).
``frames(chunksize, index=None, query=None) -> Iterator[DataFrame]``
    The same hits as DataFrames of at most ``chunksize`` rows: the ``_source`` fields
    flattened (nested objects joined with ``.``) and upper-cased, like the column names
    of SQL sources, plus ``_ID`` and ``_INDEX``. Lists stay Python lists in one cell.
``require(needs)``
    Check that the fields a service reads exist (in the first hit), before any work.

A dump is one hit per line (``{"_index", "_id", "_source"}``, the form
``elasticdump``/``_search`` output gives), optionally gzip-compressed (``.gz``). The dump
answers the subset of the query DSL the services use — ``match_all``, ``term``,
``terms``, ``range`` (``gte gt lte lt`` on numbers or ISO date text), ``exists`` and
``bool`` (``must filter should must_not``) — and refuses anything else by name, so a
query never silently matches more than it says. A line that holds no hit (truncated,
not JSON, a document without ``_id``) is given as a stand-in hit
(:func:`unreadable_hit`) that the harvest quarantines (``source.bad_record``) under the
line's name: one bad line never stops a harvest.
"""
from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import pandas as pd

from .base import Harvester, Mark, Source, limited
from .errors import SourceError
from .schemes import scheme
from .values import UNREADABLE, check_kinds, show


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"A.B": 1}`` (names upper-cased; lists kept as is)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}".upper()
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


#: Key of a stand-in hit (:func:`unreadable_hit`) holding why the record is unreadable.
BAD_HIT = "_unreadable"


def unreadable_hit(where: str, why: str) -> dict:
    """A stand-in for a hit that cannot be read (a truncated line, a document without
    ``_id``): ``where`` (e.g. ``nrh.ndjson:17``) becomes its ``_id``, so that it is
    quarantined under that name (``source.bad_record``) while the harvest goes on."""
    return {"_id": where, "_index": None, "_source": {}, BAD_HIT: f"{where}: {why}"}


def hits_to_frame(hits: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A DataFrame of flattened ``_source`` fields plus ``_ID`` and ``_INDEX`` (and
    :data:`~.values.UNREADABLE` when a hit is a stand-in for an unreadable one)."""
    recs = []
    for h in hits:
        r = flatten(h.get("_source") or {})
        r["_ID"] = h.get("_id")
        r["_INDEX"] = h.get("_index")
        if h.get(BAD_HIT):
            r[UNREADABLE] = h[BAD_HIT]
        recs.append(r)
    return pd.DataFrame.from_records(recs)


class DocumentSource(Source):
    """Base of the sources that give Elasticsearch-style hits.

    Subclasses implement :meth:`hits`; ``label`` names the source in messages (never
    credentials), ``index`` and ``query`` are the defaults from the parameters file.
    """

    kind = "documents"
    label: str = "documents"
    index: str | None = None
    query: Mapping[str, Any] | None = None

    def hits(self, index: str | None = None, query: Mapping[str, Any] | None = None
             ) -> Iterator[dict]:
        raise NotImplementedError

    def frames(self, chunksize: int = 10_000, index: str | None = None,
               query: Mapping[str, Any] | None = None) -> Iterator[pd.DataFrame]:
        """Hits as DataFrames of at most ``chunksize`` rows (see the module docstring)."""
        batch: list[dict] = []
        for h in self.hits(index, query):
            batch.append(h)
            if len(batch) >= chunksize:
                yield hits_to_frame(batch)
                batch = []
        if batch:
            yield hits_to_frame(batch)

    def require(self, needs: Mapping[str, Sequence[str]]) -> None:
        """Check the fields of ``needs`` (``{index or "*": [FIELD, ...]}``) exist in the
        first hit of the index; SourceError naming the missing ones. An empty index
        passes (nothing to harvest)."""
        for idx, fields in needs.items():
            index = None if idx in ("*", None) else idx
            hits = self.hits(index=index, query={"query": {"match_all": {}}})
            first = next((h for h in hits if not h.get(BAD_HIT)), None)
            if first is None:
                continue
            missing = [f for f in fields if f.upper() not in hits_to_frame([first]).columns]
            if missing:
                raise SourceError(f"source {self.label} (index {index or self.index}) "
                                  "lacks field(s) " + ", ".join(missing))


# -- a small query-DSL evaluator (the subset the services use) -------------------------

def _get(src: Mapping[str, Any], dotted: str):
    cur: Any = src
    for part in dotted.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            return None
    return cur


def _cmp_value(v):
    """Numbers compare as numbers, anything else as text (ISO dates order as text once
    the trailing Z is dropped)."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return str(v).rstrip("Z")


def _range_ok(value, spec: Mapping[str, Any]) -> bool:
    if value is None:
        return False
    values = value if isinstance(value, list) else [value]
    for v in values:
        a = _cmp_value(v)
        ok = True
        for op, bound in spec.items():
            if op in ("format", "time_zone", "boost"):
                continue
            b = _cmp_value(bound)
            try:
                if op == "gte":
                    ok &= a >= b
                elif op == "gt":
                    ok &= a > b
                elif op == "lte":
                    ok &= a <= b
                elif op == "lt":
                    ok &= a < b
                else:
                    raise SourceError(f"range operator {op!r} is not supported by dumps")
            except TypeError:
                ok = False
        if ok:
            return True
    return False


def matches(src: Mapping[str, Any], query: Mapping[str, Any] | None, hit_id=None) -> bool:
    """Whether document ``src`` matches ``query`` (a query clause, not a body)."""
    if not query:
        return True
    if len(query) != 1:
        raise SourceError(f"a query clause has one key, not {sorted(query)}")
    (kind, body), = query.items()
    if kind == "match_all":
        return True
    if kind == "match_none":
        return False
    if kind == "ids":
        return hit_id in set(body.get("values", []))
    if kind in ("term", "terms", "range", "exists"):
        if kind == "exists":
            return _get(src, body["field"]) is not None
        (fname, spec), = body.items()
        value = _get(src, fname)
        values = value if isinstance(value, list) else [value]
        if kind == "term":
            want = spec["value"] if isinstance(spec, Mapping) else spec
            return want in values
        if kind == "terms":
            return any(v in values for v in spec)
        return _range_ok(value, spec)
    if kind == "bool":
        def each(key):
            c = body.get(key, [])
            return c if isinstance(c, list) else [c]
        if not all(matches(src, c, hit_id) for c in each("must") + each("filter")):
            return False
        if any(matches(src, c, hit_id) for c in each("must_not")):
            return False
        should = each("should")
        if should:
            need = body.get("minimum_should_match",
                            0 if (each("must") or each("filter")) else 1)
            return sum(matches(src, c, hit_id) for c in should) >= int(need)
        return True
    raise SourceError(f"query clause {kind!r} is not supported by NDJSON dumps "
                      "(supported: match_all, ids, term, terms, range, exists, bool)")


class DumpSource(DocumentSource):
    """An NDJSON dump of one or more Elasticsearch indices (one hit per line).

    Parameters
    ----------
    path : path-like
        The dump (``.ndjson`` or ``.ndjson.gz``).
    index : str, optional
        The default index (hits of other indices are skipped); None = every hit.
    """


    def __init__(self, path: str | os.PathLike, index: str | None = None):
        self.path = Path(path)
        self.label = f"ndjson:{self.path}"
        self.index = index
        self.query = None

    def _lines(self) -> Iterable[str]:
        if self.path.suffix == ".gz":
            return gzip.open(self.path, "rt", encoding="utf-8")
        return open(self.path, encoding="utf-8")

    def hits(self, index: str | None = None, query: Mapping[str, Any] | None = None
             ) -> Iterator[dict]:
        index = index or self.index
        query = query if query is not None else self.query
        clause = (query or {}).get("query") if query else None
        with self._lines() as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                hit = self._hit(line, n)
                if index and hit.get("_index") not in (index, None):
                    continue
                if hit.get(BAD_HIT) or matches(hit["_source"], clause, hit["_id"]):
                    yield hit

    def _hit(self, line: str, n: int) -> dict:
        """The hit of line ``n``, or a stand-in for a line that holds none (one bad
        record never stops a harvest: it is quarantined by its line number)."""
        where = f"{self.path.name}:{n}"
        try:
            hit = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            return unreadable_hit(where, f"not JSON ({getattr(exc, 'msg', exc)})")
        if not isinstance(hit, dict) or not isinstance(hit.get("_source"), dict):
            return unreadable_hit(where, 'not a hit {"_index", "_id", "_source": {...}}')
        hid = hit.get("_id")
        if isinstance(hid, int) and not isinstance(hid, bool):
            return {**hit, "_id": str(hid)}
        if not isinstance(hid, str) or not hid.strip():
            bad = unreadable_hit(where, f"a hit without an _id ({show(hid)})")
            return {**bad, "_index": hit.get("_index")}
        return hit


@scheme("ndjson:", "ndjson:FILE", "an NDJSON dump of an Elasticsearch index, one hit "
        '{"_index", "_id", "_source"} per line (optionally .gz)')
def _open_ndjson(rest: str) -> "DumpSource":
    from ..paths import resolve
    return dump_source(resolve(rest))


def dump_source(path: str | os.PathLike, index: str | None = None) -> DumpSource:
    """The NDJSON dump at ``path`` (SourceError when it does not exist)."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"dump {p} does not exist (run `vespa-curate sample` to build "
                          "the embedded samples)")
    return DumpSource(p, index)


_ID_ALPHABET = list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def random_id(rng) -> str:
    """A random document id like Elasticsearch's (20 characters), from ``rng``
    (numpy Generator): for the embedded samples."""
    return "".join(rng.choice(_ID_ALPHABET, 20))


def write_dump(hits: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write hits as an NDJSON dump (one ``{"_index", "_id", "_source"}`` per line),
    under a temporary name renamed at the end (a reader never sees half a dump)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(tmp, "wt", encoding="utf-8") as fh:
        for h in hits:
            fh.write(json.dumps({"_index": h.get("_index"), "_id": h["_id"],
                                 "_source": h["_source"]}, sort_keys=True) + "\n")
    os.replace(tmp, p)
    return p


# -- the declared harvester of a document source -----------------------------------------

def with_time_filter(query: Mapping[str, Any] | None, field: str, since,
                     ids: Sequence[str] = ()) -> dict:
    """``query`` (a search body; None = match_all) restricted to documents whose ``field``
    is at or after ``since`` (a timestamp) or whose ``_id`` is in ``ids`` (documents
    quarantined earlier, read again); no restriction when both are empty."""
    body = dict(query) if query else {"query": {"match_all": {}}}
    clause = body.get("query") or {"match_all": {}}
    ids = [str(i) for i in ids or ()]
    if since is None and not ids:
        body["query"] = clause
        return body
    should = []
    if since is not None:
        ts = pd.Timestamp(since)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        should.append({"range": {field: {"gte": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]}}})
    if ids:
        should.append({"ids": {"values": ids}})
    body["query"] = {"bool": {"must": [clause], "filter": [
        {"bool": {"should": should, "minimum_should_match": 1}}]}}
    return body


def apply_layout(frame: pd.DataFrame, layout: Mapping[str, str]) -> pd.DataFrame:
    """Rename flattened document fields (``layout``: logical name ← ``_source`` field,
    dotted for nested ones) to the logical names a service reads; a field absent from
    every document of the chunk becomes a column of None. ``_ID``/``_INDEX`` stay."""
    out = pd.DataFrame(index=frame.index)
    for name, src in layout.items():
        key = src.upper()
        out[name] = frame[key] if key in frame else None
    for k in ("_ID", "_INDEX", UNREADABLE):
        if k in frame:
            out[k] = frame[k]
    return out


@dataclass(frozen=True)
class Documents(Harvester):
    """Records of a document source (an Elasticsearch index read with
    ``elasticsearch.helpers.scan``, or an NDJSON dump of one), declared like the
    original ingestion's customGrammar: the index's query comes from the source's
    parameters file, and the layout names the ``_source`` fields a service reads.

    Attributes
    ----------
    layout : mapping
        Record field ← ``_source`` field (dotted for nested objects). The index layout
        is the site's: a curator edits the right-hand side to match the real index.
    required : sequence of str
        Record fields every document must have (checked on the first document before
        any work).
    mark : Mark
        ``time``: the record field compared with the mark's time (a ``range`` filter
        ``gte``); documents quarantined earlier are read again by ``_id``.
    kinds : mapping
        Record field → ``int``, ``float``, ``text`` or ``date``: what each field may
        hold (:mod:`~vespa_curation.sources.values`; JSON holds any value anywhere).
    """

    reads = "documents"
    layout: Mapping[str, str] = field(default_factory=dict)
    required: Sequence[str] = ()
    mark: Mark = field(default_factory=Mark)
    key: str = "_ID"
    kinds: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        check_kinds(self.kinds, list(self.layout), "Documents")
        for name in (*self.required, *(f for f in (self.mark.time,) if f)):
            if name not in self.layout:
                raise ValueError(f"Documents: {name!r} is not a field of the layout")

    def describe(self) -> str:
        return "documents (" + ", ".join(self.layout.values()) + ")"

    def field_kinds(self) -> dict[str, str]:
        return {"_ID": "text", "_INDEX": "text", **self.kinds}

    def check(self, source) -> None:
        source.require({"*": [self.layout[k] for k in self.required]})

    def records(self, source, params, mark=None, *, published=None, report=None
                ) -> Iterator[pd.DataFrame]:
        since = (mark or {}).get("time")
        retry = (mark or {}).get("retry") or () if since is not None else ()
        query = source.query
        if self.mark.time:
            query = with_time_filter(query, self.layout[self.mark.time], since, ids=retry)
        frames = source.frames(params["chunk_size"], query=query)
        for frame in limited(frames, params.get("limit")):
            yield apply_layout(frame, self.layout).reset_index(drop=True)
