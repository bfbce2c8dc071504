"""What every declared harvester shares: the incremental mark it compares, and how
records come out of it.

A *source* (opened from the ``source`` parameter's URL: a SQL database, a document
index or dump, a folder of files) is read by the *harvester* a service declares — the
way a DaCHS grammar reads its sources: :class:`~vespa_curation.sources.sql.SqlTable`,
:class:`~vespa_curation.sources.documents.Documents`,
:class:`~vespa_curation.sources.files.Files`. A harvester owns chunking, the ``limit``
parameter and its incremental mark; it yields DataFrames of *records* whose columns are
the record fields the service maps (upper-case names).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Mapping

import numpy as np
import pandas as pd

from ..times import jd, run_time_bound, to_datetime
from .errors import SourceError


@dataclass(frozen=True)
class Mark:
    """The record fields a harvest compares with the stored incremental mark.

    Attributes
    ----------
    time : str, optional
        The field of the record's time; the harvest reads records at or after the
        stored mark's time (``time_jd``, the highest ``time_min`` exported).
    changed : str, optional
        A field that grows when a record is re-processed in place (HFC's RUN_DATE, a
        MODIFIED column): records changed after the stored ``run_date`` are read too.
    id : str, optional
        An increasing source id: records above the stored ``id`` are read too.

    Records quarantined earlier are read again by their source id (the mark's
    ``retry`` list) whatever the declaration.
    """

    time: str | None = None
    changed: str | None = None
    id: str | None = None

    def fields(self) -> list[str]:
        """Record fields the rows must carry (as ``qa_<field>``) for the next mark."""
        return [f for f in (self.changed, self.id) if f]

    def observe(self, marks: dict, rows: pd.DataFrame,
                now: pd.Timestamp | None = None) -> None:
        """Raise the running mark ``marks`` to the highest values of accepted ``rows``:
        ``time_jd`` from ``time_min``, ``run_date`` and ``id`` from the rows'
        ``qa_<field>`` columns.

        Times after ``now`` (the run's time) are ignored: a record dated in the future
        would move the mark past every record re-processed or observed later, which
        the next harvests would then never read (the rowmaker refuses such records
        beyond a day's slack; :mod:`vespa_curation.sources.values`)."""
        if not len(rows):
            return
        now = None if now is None else run_time_bound(now)
        if "time_min" in rows:
            v = pd.to_numeric(rows["time_min"], errors="coerce")
            if now is not None:
                v = v[v <= jd(pd.Series([now]))[0]]
            if v.notna().any():
                marks["time_jd"] = max(marks.get("time_jd", -np.inf), float(v.max()))
        if self.changed and "qa_" + self.changed.lower() in rows:
            # each distinct value once (an image's regions share its RUN_DATE: 10 000
            # rows of hfc1ar hold ≈ 500 dates, and parsing them was 0.5 s of a
            # 184 000-region harvest's driver)
            t = to_datetime(pd.unique(rows["qa_" + self.changed.lower()].to_numpy(
                dtype=object))).dropna()
            if now is not None:
                t = t[t <= now]
            if len(t):
                v = t.max()
                marks["run_date"] = max(marks.get("run_date", v), v)
        col = "qa_" + self.id.lower() if self.id else None
        if col is not None and col in rows:
            s = rows[col].dropna()
            if len(s):   # ids compare as numbers when they are
                num = pd.to_numeric(s, errors="coerce")
                s = num.dropna().astype("int64") if num.notna().all() else s.astype(str)
                v = s.max()
                v = v.item() if hasattr(v, "item") else v
                marks["id"] = max(marks.get("id", v), v)


class Source:
    """Base of the sources (what a ``source`` URL opens): a ``kind`` (``"sql"``,
    ``"documents"``, ``"files"``: which harvesters can read it), a ``label`` naming it in
    messages (never its credentials), and a context manager closing it."""

    kind: ClassVar[str] = ""
    label: str = ""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Harvester:
    """Base of the declared harvesters (see the module docstring).

    Subclasses set :attr:`reads` (the source kind they accept: ``"sql"``,
    ``"documents"`` or ``"files"``), ``key`` (the record field naming each record in
    messages and retries), ``mark`` and ``kinds`` (record field → ``int``, ``float``,
    ``text`` or ``date``: what each field may hold, :mod:`~.values`), and implement
    :meth:`records` and :meth:`check`.
    """

    reads: ClassVar[str] = ""
    key: str
    mark: Mark
    kinds: Mapping[str, str]

    def field_kinds(self) -> dict[str, str]:
        """The kind of every record field whose kind is known: the declared ``kinds``
        and those of the fields the harvester itself adds (a document's ``_ID``, a
        file's ``SIZE``)."""
        return dict(getattr(self, "kinds", None) or {})

    def accept(self, source, service: str) -> None:
        """Refuse a source of another kind, naming both."""
        if getattr(source, "kind", None) != self.reads:
            raise SourceError(
                f"service {service} reads {KIND_TEXT[self.reads]}; the source "
                f"{source.label} is {KIND_TEXT.get(getattr(source, 'kind', ''), 'unknown')}")

    def check(self, source) -> None:
        """Check, before any work, that the source holds what the harvest reads."""
        raise NotImplementedError

    def count(self, source, params: Mapping[str, Any], mark: Mapping[str, Any] | None
              ) -> int | None:
        """How many records :meth:`records` will give, when the source can say so
        cheaply (progress and time left of a long harvest); None when it cannot."""
        return None

    def records(self, source, params: Mapping[str, Any], mark: Mapping[str, Any] | None,
                *, published=None, report: dict | None = None) -> Iterator[pd.DataFrame]:
        """Chunks of at most ``params['chunk_size']`` records (at most
        ``params['limit']`` in all), from ``mark`` (None: everything).

        ``published``: a function giving the source ids the import area publishes
        (harvesters that compare with them call it); ``report``: a dict the harvester
        fills with what the harvest summary should say (superseded or missing files)."""
        raise NotImplementedError

    def expand(self, records: pd.DataFrame) -> pd.DataFrame:
        """Complete a chunk of records where it is mapped (a worker process): a file
        collection reads its files here, so that they are read in parallel. The records
        as they are by default."""
        return records

    def describe(self) -> str:
        """One line naming what the harvester reads (docs, ``vespa-curate list``)."""
        return type(self).__name__


#: How each kind of source is named in messages.
KIND_TEXT = {
    "sql": "a SQL database (sqlite:///PATH or odbc:FILE)",
    "documents": "documents (an Elasticsearch index es:FILE or an NDJSON dump ndjson:FILE)",
    "files": "a folder of files (files:DIR)",
}


def limited(frames: Iterator[pd.DataFrame], limit: int | None) -> Iterator[pd.DataFrame]:
    """``frames`` cut after ``limit`` records in all (no cut when ``limit`` is None)."""
    n = 0
    for frame in frames:
        if limit:
            frame = frame.iloc[:max(0, int(limit) - n)]
        if not len(frame):
            break
        n += len(frame)
        yield frame.reset_index(drop=True)
        if limit and n >= int(limit):
            break
