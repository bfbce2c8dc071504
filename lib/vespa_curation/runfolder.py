"""The files of a run folder: each stage's output is a file the next stage reads.

``<outputs>/<UTC stamp>/<service>/``:

=====================  ==================================  =============================
file                   written by                          read by
=====================  ==================================  =============================
``rows.parquet``       harvest (accepted epn_core rows     qa, export (row group by row
                       + ``qa_*`` columns)                 group)
``records.parquet``    harvest (the source records QA      qa
                       draws)
``quarantine.csv``     harvest; export adds curator        qa, export, the curator
                       rejections
``harvest.json``       harvest (counts, the new mark)      qa, export
``smoc.fits``          harvest (MOC of the accepted rows'  qa, export (the coverage)
                       s_region at ``moc_order``, each
                       chunk's by its worker)
``export_rows-NNNN``    export (each part's rows staged     export (removed after)
``.parquet``           while a large run is written in
                       parts)
``export.json``        export                              publish, the curator
``figures/``,          qa                                  the curator
``report.*``
=====================  ==================================  =============================

A stage killed midway leaves scratch files (:data:`SCRATCH`); the next run, holding the
run lock, removes them (:func:`remove_scratch`).
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .quarantine import QUARANTINE_COLUMNS
from .sources.values import text_of

ROWS = "rows.parquet"
RECORDS = "records.parquet"
QUARANTINE = "quarantine.csv"
HARVEST = "harvest.json"
EXPORT = "export.json"
EXPORT_ROWS = "export_rows-*.parquet"     # the staged parts (export_rows_part)
SMOC = "smoc.fits"


def export_rows_part(k: int) -> str:
    """The file staging the rows of part ``k`` (from 1) of a run's export."""
    return f"export_rows-{k:04d}.parquet"


def read_rows(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The accepted rows of a run folder."""
    return pd.read_parquet(Path(run_dir) / ROWS)


def row_columns(run_dir: str | os.PathLike) -> list[str]:
    """The columns of a run folder's rows (read from the Parquet footer; [] when the
    run folder has no rows)."""
    p = Path(run_dir) / ROWS
    return pq.read_schema(p).names if p.is_file() else []


def row_count(run_dir: str | os.PathLike) -> int:
    """How many accepted rows a run folder holds (from the Parquet footer)."""
    p = Path(run_dir) / ROWS
    return pq.ParquetFile(p).metadata.num_rows if p.is_file() else 0


def read_row_columns(run_dir: str | os.PathLike, columns) -> pd.DataFrame:
    """Only ``columns`` (those present) of the accepted rows: a summary over 1.15 M rows
    reads a few numbers per row, not the s_region texts."""
    have = row_columns(run_dir)
    if not have:
        return pd.DataFrame()
    return pd.read_parquet(Path(run_dir) / ROWS, columns=[c for c in have if c in columns])


def read_rows_at(run_dir: str | os.PathLike, positions) -> pd.DataFrame:
    """The accepted rows at ``positions`` (row numbers of the file, in that order), read
    from the row groups holding them only."""
    positions = np.asarray(positions, dtype=np.int64)
    pf = pq.ParquetFile(Path(run_dir) / ROWS)
    sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    groups = np.searchsorted(starts, positions, side="right") - 1
    need = sorted(set(groups.tolist()))
    if not need:
        return pf.schema_arrow.empty_table().to_pandas()
    table = pa.concat_tables([pf.read_row_group(g) for g in need])
    base = {g: k for g, k in zip(need, np.cumsum([0] + [sizes[g] for g in need])[:-1])}
    local = [int(base[g] + p - starts[g]) for g, p in zip(groups, positions)]
    return table.take(pa.array(local, type=pa.int64())).to_pandas()


def read_quarantine(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The quarantine lines of a run folder (an empty table when there are none)."""
    p = Path(run_dir) / QUARANTINE
    if not p.is_file() or p.stat().st_size == 0:
        return pd.DataFrame(columns=QUARANTINE_COLUMNS)
    q = pd.read_csv(p, dtype=str, keep_default_na=False)
    for c in QUARANTINE_COLUMNS:
        if c not in q:
            q[c] = ""
    return q


def read_json(run_dir: str | os.PathLike, name: str) -> dict:
    """A stage's JSON summary (``harvest.json``, ``export.json``); {} when absent."""
    p = Path(run_dir) / name
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def jsonable(obj):
    """``obj`` as plain JSON values (timestamps as text)."""
    if obj is None:
        return None
    return json.loads(json.dumps(obj, default=str))


class RowGroups:
    """Whole row groups of a Parquet file: a part of a run's rows, read where it is
    used (a writer process reads its own part instead of receiving it pickled)."""

    def __init__(self, path: Path, groups: list[int], rows: int):
        self.path, self.groups, self.rows = Path(path), list(groups), rows

    def __len__(self) -> int:
        return self.rows

    @property
    def columns(self) -> list[str]:
        return list(pq.ParquetFile(self.path).schema_arrow.names)

    def read(self, columns=None) -> pd.DataFrame:
        return pq.ParquetFile(self.path).read_row_groups(self.groups,
                                                         columns=columns).to_pandas()

    def slices(self, size: int, columns=None) -> Iterator[pd.DataFrame]:
        """The part in DataFrames of at most ``size`` rows, each indexed by its rows'
        positions in the part (``RangeIndex(a, b)``)."""
        pf = pq.ParquetFile(self.path)
        a = 0
        for g in self.groups:   # group by group (``iter_batches`` holds far more)
            table = pf.read_row_group(g, columns=columns)
            for off in range(0, table.num_rows, size):
                df = table.slice(off, size).to_pandas()
                df.index = pd.RangeIndex(a, a + len(df))
                a += len(df)
                yield df
            del table
            pa.default_memory_pool().release_unused()


def row_group_parts(path: Path, batch: int) -> list[RowGroups]:
    """The parts of about ``batch`` rows of a Parquet file, in whole row groups (more
    rows when one row group is larger)."""
    pf = pq.ParquetFile(path)
    parts, groups, n = [], [], 0
    for g in range(pf.num_row_groups):
        k = pf.metadata.row_group(g).num_rows
        if groups and n + k > batch:
            parts.append(RowGroups(path, groups, n))
            groups, n = [], 0
        groups.append(g)
        n += k
    if groups:
        parts.append(RowGroups(path, groups, n))
    return parts


def row_batches(path: Path, batch: int, columns=None) -> Iterator[pd.DataFrame]:
    """DataFrames of :func:`row_group_parts`, of ``columns`` only when given. Read part
    by part: pyarrow's ``iter_batches`` keeps what it has read (memory grows with the
    file)."""
    for part in row_group_parts(path, batch):
        yield part.read(columns)
        pa.default_memory_pool().release_unused()   # the previous part's buffers


#: Compression of the run folder's Parquet files (``rows.parquet``, ``records.parquet``):
#: LZ4 reads ≈ 4× and writes ≈ 1.5× faster than Parquet's default Snappy on the
#: rows of hfc1ar, for files 8 % larger. Scratch files (the export's staged parts,
#: read once) are written uncompressed.
COMPRESSION = "lz4"


def write_options(table: pa.Table, compression: str = COMPRESSION) -> dict:
    """``ParquetWriter`` options for files like ``table`` (a first chunk): dictionary
    encoding only for the columns with few distinct values. Arrow otherwise builds a
    dictionary of every column — for s_region texts of kilobytes, each distinct, a
    dictionary it then drops, which made writing and reading such a column 2× slower
    (measured on 100 000 rows of the ``rows.parquet`` of ``benchmarks/bench_run.py``,
    row groups of 20 000: Snappy with every dictionary write 0.67 s, read 0.77 s; LZ4
    with these 0.40 s, 0.16 s). The values, and what pandas reads, are the same."""
    n = table.num_rows
    repeated = [f.name for f, col in zip(table.schema, table.columns)
                if not n or _distinct(col) <= n // 2]
    return {"compression": compression, "use_dictionary": repeated}


def _distinct(col) -> int:
    """Distinct values of an Arrow column (0 for a type Arrow cannot count: such a
    column keeps Arrow's default encoding)."""
    try:
        return pc.count_distinct(col, mode="all").as_py()
    except _ARROW_ERRORS:
        return 0


class ParquetStream:
    """Append DataFrames to one Parquet file, written under a temporary name and
    renamed on :meth:`close`; later chunks are cast to the first's schema (a column that
    is all NULL in one chunk takes the type it has elsewhere).

    A column Arrow cannot hold as one type (a source field holding numbers and text,
    bytes, lists beside scalars: the values of refused records QA keeps) is written as
    text in the first chunk; in later chunks a value the column's type cannot hold is
    written as text in a text column and as NULL otherwise, so one record never stops
    the writer. While open, the temporary file is locked (``flock``), so that a run
    clearing what killed runs left (:func:`remove_scratch`) never takes it."""

    def __init__(self, path: Path, row_group_size: int | None = None,
                 compression: str = COMPRESSION):
        self.path = path
        self.row_group_size = row_group_size    # None: one row group per write
        self.compression = compression
        self.tmp = path.with_suffix(".parquet.part")
        self.writer = None
        self.schema = None
        self.rows = 0
        self._lock = None

    def write(self, df: pd.DataFrame) -> None:
        if df is None or not len(df.columns):
            return
        if self.schema is None:
            table = _first_table(df)
            table = table.cast(pa.schema([
                pa.field(f.name, pa.string() if pa.types.is_null(f.type) else f.type)
                for f in table.schema]))
            self.schema = table.schema
            self._lock = _locked(self.tmp)
            self.writer = pq.ParquetWriter(self.tmp, self.schema,
                                           **write_options(table, self.compression))
        else:
            table = self._conform(df)
        self.writer.write_table(table, row_group_size=self.row_group_size)
        self.rows += len(df)

    def _conform(self, df: pd.DataFrame) -> pa.Table:
        df = df.reindex(columns=self.schema.names)
        arrays = [_fit(df[f.name], f.type) for f in self.schema]
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def close(self, empty_columns: list[str]) -> None:
        if self.writer is None:
            pd.DataFrame(columns=empty_columns).to_parquet(self.tmp, index=False)
        else:
            self.writer.close()
            self.writer = None
        os.replace(self.tmp, self.path)
        self._unlock()

    def discard(self) -> None:
        """Close and remove what was written (a failed stage leaves no half file)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.tmp.unlink(missing_ok=True)
        self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _missing(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def as_text(col: pd.Series) -> pd.Series:
    """Every value of ``col`` as text (bytes decoded, NULL kept): how a column of mixed
    values is written."""
    return col.astype(object).map(lambda v: None if _missing(v) else text_of(v))


#: What Arrow raises on values it cannot convert to a column's type.
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError,
                 OverflowError, ValueError, TypeError)


def _first_table(df: pd.DataFrame) -> pa.Table:
    """The first chunk as an Arrow table; columns Arrow cannot hold as one type as
    text."""
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except _ARROW_ERRORS:
        pass
    fixed = df.copy()
    for name in df.columns:
        if df[name].dtype == object:
            try:
                pa.array(df[name], from_pandas=True)
            except _ARROW_ERRORS:
                fixed[name] = as_text(df[name])
    return pa.Table.from_pandas(fixed, preserve_index=False)


def _fit(col: pd.Series, type_: pa.DataType) -> pa.Array:
    """``col`` as an Arrow array of ``type_``: text for a text column, numbers (NULL
    where not one) for a numeric one, and value by value (NULL where a value does not
    fit) as a last resort."""
    try:
        return pa.array(col, type=type_, from_pandas=True)
    except _ARROW_ERRORS:
        pass
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return pa.array(as_text(col), type=type_, from_pandas=True)
    try:
        return pa.array(pd.to_numeric(col, errors="coerce"), type=type_, from_pandas=True)
    except _ARROW_ERRORS:
        pass
    out = []
    for v in col.astype(object):
        try:
            pa.array([v], type=type_, from_pandas=True)
            out.append(v)
        except _ARROW_ERRORS:
            out.append(None)
    return pa.array(out, type=type_, from_pandas=True)


def _locked(path: Path):
    """An open handle holding an exclusive ``flock`` on ``path`` (created empty)."""
    fh = open(path, "ab")
    fcntl.flock(fh, fcntl.LOCK_EX)
    return fh


#: Files a stage writes for a while and then renames or removes: all a killed run leaves
#: behind in its run folder (the staged export rows, Parquet files being written).
SCRATCH = (EXPORT_ROWS, "*.parquet.part", "*.parquet.tmp", "*.json.tmp")


def remove_scratch(outputs: str | os.PathLike) -> list[Path]:
    """Remove the scratch files (:data:`SCRATCH`) of the run folders under ``outputs``
    (``<stamp>/<service>/``): a run holding the run lock calls it, so they are what
    killed runs left. A file a live writer still holds locked is kept. Returns the
    files removed."""
    removed = []
    root = Path(outputs)
    if not root.is_dir():
        return removed
    for folder in root.glob("*/*/"):
        for pattern in SCRATCH:
            for p in folder.glob(pattern):
                if p.is_file() and not _in_use(p):
                    p.unlink(missing_ok=True)
                    removed.append(p)
    return removed


def _in_use(path: Path) -> bool:
    """Whether a live writer holds ``path`` locked (:class:`ParquetStream`)."""
    try:
        with open(path, "rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fh, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False
