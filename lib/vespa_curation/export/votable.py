"""Typed VOTables of epn_core rows (and side tables) that DaCHS's ``voTableGrammar`` reads.

Every FIELD's datatype, arraysize, xtype, unit and UCD comes from
:mod:`vespa_curation.epncore`; this module only moves values. Values arrive in DaCHS
typed: NULLs are real nulls (BINARY2 null flags), ``*_date`` columns are ISO
timestamps with ``xtype="timestamp"``, ``s_region`` is STC-S text with
``xtype="adql:REGION"`` (DaCHS turns it into a pgSphere ``spoly``).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from astropy.io.votable.tree import Field, Resource, VOTableFile

try:  # astropy >= 6
    from astropy.io.votable.tree import TableElement
except ImportError:  # pragma: no cover
    from astropy.io.votable.tree import Table as TableElement

from .. import epncore
from ..sources.values import arrow_strings
from ..times import iso_ms

#: Serialisations astropy can write and DaCHS can read.
FORMATS = ("binary2", "tabledata", "binary")


class ExportError(ValueError):
    """Rows cannot be exported; the message names the column or row and the reason."""


def epn_columns(rows: pd.DataFrame, columns=None) -> list[str]:
    """The epn_core columns of ``rows`` in the standard's order (``qa_*`` dropped).

    Raises
    ------
    ExportError
        When ``rows`` holds a column that is neither EPN-TAP 2.0 nor ``qa_*``.
    """
    columns = epncore.COLUMNS if columns is None else columns
    names = [c for c in rows.columns if not str(c).startswith("qa_")]
    unknown = [c for c in names if c not in columns]
    if unknown:
        raise ExportError(f"columns {', '.join(map(str, unknown))} are not EPN-TAP 2.0 "
                          "columns (prefix QA-only columns with qa_)")
    return epncore.ordered(names, columns)


def _iso(values: pd.Series, name: str) -> np.ndarray:
    """ISO-8601 text (UTC, no zone suffix, milliseconds) of date-time values; None for
    NULL; :class:`ExportError` naming the first value that is not a date-time."""
    try:
        t = epncore.TYPES["Timestamp"].cast(values, strict=True, name=name)
    except epncore.CastError as exc:
        raise ExportError(str(exc)) from None
    return iso_ms(t)


def _text(values: pd.Series) -> np.ndarray:
    return epncore.TYPES["Text"].cast(values).to_numpy(dtype=object)


def _field_values(name: str, col: epncore.Column, values: pd.Series):
    """(data array, null mask) of one epn_core column, cast to its type
    (:data:`vespa_curation.epncore.TYPES`; a value it cannot hold is an ExportError)."""
    if col.type == "Timestamp":
        data = _iso(values, name)
        return data, np.array([v is None for v in data], dtype=bool)
    try:
        cast = col.cast(values, strict=True)
    except epncore.CastError as exc:
        raise ExportError(str(exc)) from None
    if col.type == "Text":
        data = cast.to_numpy(dtype=object)
        return data, np.array([v is None for v in data], dtype=bool)
    null = cast.isna().to_numpy()
    if col.type == "Integer":
        return cast.fillna(0).to_numpy(dtype=np.int32), null
    return cast.to_numpy(dtype=float, na_value=np.nan), null


def _generic_field(votable, name: str, values: pd.Series):
    """FIELD and (data, mask) of a non-EPN column (side tables), typed from pandas."""
    if pd.api.types.is_bool_dtype(values):
        data = values.fillna(False).to_numpy(dtype=bool)
        return Field(votable, name=name, datatype="boolean"), data, values.isna().to_numpy()
    if pd.api.types.is_integer_dtype(values):
        null = values.isna().to_numpy()
        data = values.fillna(0).to_numpy(dtype=np.int64)
        return Field(votable, name=name, datatype="long"), data, null
    if pd.api.types.is_float_dtype(values):
        return (Field(votable, name=name, datatype="double"),
                values.to_numpy(dtype=float), values.isna().to_numpy())
    if pd.api.types.is_datetime64_any_dtype(values):
        data = _iso(values, name)
        return (Field(votable, name=name, datatype="char", arraysize="*",
                      xtype="timestamp"), data, np.array([v is None for v in data]))
    data = _text(values)
    return (Field(votable, name=name, datatype="char", arraysize="*"), data,
            np.array([v is None for v in data], dtype=bool))


def _write(votable, table, columns, path: Path, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise ExportError(f"unknown VOTable serialisation {fmt!r}: one of {FORMATS}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "tabledata":
        return _write_tabledata(table, columns, path)
    n = len(columns[0][1]) if columns else 0
    table.create_arrays(n)
    arr = table.array
    for i, (_field, data, mask) in enumerate(columns):
        key = arr.dtype.names[i]
        if n:
            arr.data[key][:] = data
            arr.mask[key][:] = mask
    table.format = fmt
    with open(path, "wb") as fh:
        votable.to_xml(fh, tabledata_format=fmt)
        fh.flush()
        os.fsync(fh.fileno())
    return path


#: Rows serialised per block by the TABLEDATA writer (bounds its memory).
TABLEDATA_BLOCK = 20_000


def _xml_attr(value) -> str:
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _cells(field, data, mask, a: int, b: int):
    """``<TD>..</TD>`` text of rows a..b of one column (``<TD/>`` for NULL), as an
    Arrow string array: numbers by Python's shortest round-trip ``repr``, text
    XML-escaped (only when a cell needs it).

    Text held as Arrow strings (``mask`` None: NULLs are Arrow's) is escaped and
    wrapped by Arrow's string kernels; other values by one list comprehension per
    column over Python objects (faster than pandas' Arrow strings, which spend their
    time converting from objects, or numpy's fixed-width text arrays;
    benchmarks/bench_hfc1ar.py measures the export).
    """
    if mask is None:           # Arrow strings
        return _text_cells(data.slice(a, b - a))
    d = data[a:b]
    m = np.asarray(mask[a:b], dtype=bool)
    if field.datatype == "char":   # str or None (see _text, _iso)
        vals = [None if mk else v for v, mk in zip(np.asarray(d, dtype=object).tolist(),
                                                   m.tolist())]
        if _needs_escape(vals):
            vals = [v if v is None else
                    v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                    for v in vals]
        return pa.array(["<TD/>" if v is None else "<TD>" + v + "</TD>" for v in vals],
                        type=_TEXT)
    if field.datatype == "boolean":
        out = np.where(np.asarray(d, dtype=bool), "<TD>T</TD>", "<TD>F</TD>").astype(object)
    elif field.arraysize:      # numeric arrays (DALI polygons): space-separated values
        out = np.array(["<TD>" + " ".join(map(repr, np.asarray(v, float).tolist()))
                        + "</TD>" for v in d], dtype=object)
    else:
        vals = np.asarray(d)
        if vals.dtype.kind == "f":
            m = m | ~np.isfinite(vals)
        out = _number_cells(vals)
    out[m] = "<TD/>"
    return pa.array(out, type=_TEXT)


def _has_markup(arr) -> bool:
    """Whether a text of ``arr`` (large strings) holds ``&``, ``<`` or ``>``: a byte
    search of its value buffer (UTF-8 never uses these bytes inside a character;
    Arrow's substring kernel took 16 ms per 10 000 s_region texts, this 1)."""
    if not len(arr):
        return False
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)
    data = arr.buffers()[2]
    if data is None:
        return False
    raw = data.to_pybytes()[offsets[arr.offset]:offsets[arr.offset + len(arr)]]
    return b"&" in raw or b"<" in raw or b">" in raw


#: Arrow's type of the cells' text (64-bit offsets: a block of s_region rows may pass
#: 2 GiB in the worst case of 20 000 polygons of 1 024 vertices).
_TEXT = pa.large_string()


def _scalar(value: str):
    return pa.scalar(value, _TEXT)


def _text_cells(arr):
    """:func:`_cells` of Arrow strings: ``&``, ``<``, ``>`` escaped (in that order, as
    :meth:`str.replace` does, when any cell holds one), wrapped in ``<TD>``, NULL as
    ``<TD/>``."""
    import pyarrow.compute as pc
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    arr = arr.cast(_TEXT)
    if _has_markup(arr):
        for ch, ent in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
            arr = pc.replace_substring(arr, ch, ent)
    cells = pc.binary_join_element_wise(_scalar("<TD>"), arr, _scalar("</TD>"), _scalar(""))
    return pc.fill_null(cells, _scalar("<TD/>"))


def _needs_escape(vals: list) -> bool:
    """Whether a text of ``vals`` (str or None) holds ``&``, ``<`` or ``>``: one scan
    of the joined texts (s_region cells are kilobytes long; a regular expression per
    cell cost a fifth of the export's formatting)."""
    joined = "".join(filter(None, vals))
    return "&" in joined or "<" in joined or ">" in joined


def _number_cells(vals: np.ndarray) -> np.ndarray:
    """``<TD>repr</TD>`` of each number. Most epn_core number columns hold few distinct
    values (constants of the service, times shared by an image's regions): each distinct
    bit pattern (so -0.0 stays apart from 0.0) is formatted once."""
    n = len(vals)
    out = np.empty(n, dtype=object)
    if n > 64 and vals.dtype.itemsize == 8:
        bits = vals.view(np.int64)
        uniq, inv = np.unique(bits, return_inverse=True)
        if len(uniq) <= n // 4:
            cells = np.empty(len(uniq), dtype=object)
            cells[:] = [f"<TD>{x!r}</TD>" for x in uniq.view(vals.dtype).tolist()]
            out[:] = cells[inv.ravel()]
            return out
    out[:] = [f"<TD>{x!r}</TD>" for x in vals.tolist()]
    return out


def _write_tabledata(table, columns, path: Path) -> Path:
    """Write a VOTable 1.4 TABLEDATA document block by block.

    astropy's writer formats row by row in Python; this one formats each column of a
    block of rows at once (the README's measured table compares them). DaCHS's
    voTableGrammar reads an empty cell as NULL for every type (VOTable 1.3 §6.1).
    """
    return _write_tabledata_blocks(table, [f for f, _d, _m in columns], [columns], path)


def _write_tabledata_blocks(table, fields, blocks, path: Path) -> Path:
    """TABLEDATA of ``blocks``: each a list of (field, data, mask) over some rows, in
    the order of ``fields``; the bytes do not depend on how the rows are cut."""
    head = ['<?xml version="1.0" encoding="utf-8"?>',
            '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">',
            '<RESOURCE type="results">', f'<TABLE name="{_xml_attr(table.name)}">']
    for field in fields:
        attrs = {"name": field.name, "datatype": field.datatype}
        for key in ("arraysize", "unit", "ucd", "xtype"):
            v = getattr(field, key, None)
            if v not in (None, ""):
                attrs[key] = str(v)
        head.append("<FIELD " + " ".join(f'{k}="{_xml_attr(v)}"' for k, v in attrs.items())
                    + "/>")
    head.append("<DATA><TABLEDATA>")
    with open(path, "wb") as fh:
        fh.write(("\n".join(head) + "\n").encode("utf-8"))
        for columns in blocks:
            n = len(columns[0][1]) if columns else 0
            for a in range(0, n, TABLEDATA_BLOCK):
                b = min(n, a + TABLEDATA_BLOCK)
                cols = [_cells(f, d, m, a, b) for f, d, m in columns]
                fh.write(_joined([_scalar("<TR>"), *cols, _scalar("</TR>\n")]))
        fh.write(b"</TABLEDATA></DATA>\n</TABLE>\n</RESOURCE>\n</VOTABLE>\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path


def _joined(parts: list) -> memoryview:
    """The rows of a block as one UTF-8 text: each row the concatenation of ``parts``
    (Arrow string arrays of the block's cells, or texts every row repeats), joined by
    Arrow; the bytes are its value buffer as they are."""
    import pyarrow.compute as pc
    rows = pc.binary_join_element_wise(*parts, _scalar(""))
    if not len(rows):
        return memoryview(b"")
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)
    first, last = offsets[rows.offset], offsets[rows.offset + len(rows)]
    return memoryview(rows.buffers()[2])[first:last]


#: How s_region travels in the VOTable: STC-S text (``char``, ``xtype="adql:REGION"``,
#: the EPN-TAP form) or a DALI polygon (``double[*]``, ``xtype="polygon"``: lon lat ...).
REGION_ENCODINGS = ("stcs", "dali")


def _dali_polygons(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """STC-S ``Polygon <frame> lon lat ...`` text → DALI double arrays (None for NULL)."""
    out = np.empty(len(values), dtype=object)
    null = np.zeros(len(values), dtype=bool)
    for i, s in enumerate(values.to_numpy(dtype=object)):
        if s is None or (isinstance(s, float) and np.isnan(s)) or not str(s).strip():
            null[i] = True
            out[i] = np.ma.array(np.zeros(0), mask=np.zeros(0, dtype=bool))
            continue
        words = str(s).split()
        if words[0].lower() != "polygon":
            raise ExportError(f"s_region {str(s)[:40]!r} (row {i}) is not an STC-S polygon")
        start = 1 if _is_number(words[1]) else 2
        v = np.asarray(words[start:], dtype=float)
        out[i] = np.ma.array(v, mask=np.zeros(v.shape, dtype=bool))  # astropy wants masks
    return out, null


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _new_table(name: str):
    """A VOTable 1.4 document holding one empty TABLE ``name``: (document, table)."""
    votable = VOTableFile(version="1.4")
    resource = Resource()
    votable.resources.append(resource)
    table = TableElement(votable, name=name)
    resource.tables.append(table)
    return votable, table


def write_epn_votable(rows: pd.DataFrame, path: str | os.PathLike, frame: str, *,
                      name: str = "epn_core", fmt: str = "binary2",
                      region: str = "stcs", columns=None) -> Path:
    """Write ``rows`` (epn_core columns; ``qa_*`` ignored) as a typed VOTable.

    Parameters
    ----------
    rows : DataFrame
        One row per granule, column names from :data:`vespa_curation.epncore.COLUMNS`.
    path : path-like
        File to write (parents created).
    frame : str
        The service's spatial_frame_type (chooses the units and UCDs of c1..c3).
    name : str
        TABLE name.
    fmt : {"binary2", "tabledata", "binary"}
        Serialisation; BINARY2 carries NULL flags for every type.
    region : {"stcs", "dali"}
        s_region as STC-S text (default, EPN-TAP's form) or as a DALI polygon array
        (DaCHS builds the spoly without parsing text; see benchmarks/bench_dachs_imp.py).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    facts = epncore.COLUMNS if columns is None else columns
    names = epn_columns(rows, facts)
    votable, table = _new_table(name)
    fields = _epn_fields(votable, table, names, facts, frame, region)
    columns = [(field, *_epn_values(rows[n], n, facts[n], region))
               for field, n in zip(fields, names)]
    return _write(votable, table, columns, Path(path), fmt)


def write_epn_votable_slices(slices, names, path: str | os.PathLike, frame: str, *,
                             name: str = "epn_core", region: str = "stcs",
                             columns=None) -> Path:
    """Write TABLEDATA from ``slices``, DataFrames of consecutive rows holding the
    columns ``names``: the bytes :func:`write_epn_votable` writes for their
    concatenation, with the memory of one slice (a writer process streams its part of
    the run's rows). A slice whose index is the rows' position in the whole table
    (``RangeIndex(a, b)``) gets errors that name the table's row."""
    facts = epncore.COLUMNS if columns is None else columns
    names = epn_columns(pd.DataFrame(columns=list(names)), facts)
    votable, table = _new_table(name)
    fields = _epn_fields(votable, table, names, facts, frame, region)
    blocks = ([(field, *_epn_cell_values(rows[n], n, facts[n], region))
               for field, n in zip(fields, names)] for rows in slices)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_tabledata_blocks(table, fields, blocks, path)


def _epn_fields(votable, table, names, facts, frame: str, region: str) -> list:
    """The FIELDs of epn_core columns ``names`` (appended to ``table``)."""
    if region not in REGION_ENCODINGS:
        raise ExportError(f"unknown s_region encoding {region!r}: one of "
                          f"{REGION_ENCODINGS}")
    fields = []
    for n in names:
        col = facts[n]
        extra = dict(col.votable_extra)
        datatype = col.votable_datatype
        if n == "s_region" and region == "dali":
            datatype, extra = "double", {"arraysize": "*", "xtype": "polygon"}
        field = Field(votable, name=n, datatype=datatype,
                      unit=col.unit_for(frame) or None, ucd=col.ucd_for(frame) or None,
                      **extra)
        table.fields.append(field)
        fields.append(field)
    return fields


def _epn_values(values: pd.Series, name: str, col, region: str):
    """(data, mask) of one epn_core column as its FIELD declares it."""
    if name == "s_region" and region == "dali":
        return _dali_polygons(values)
    return _field_values(name, col, values)


def _epn_cell_values(values: pd.Series, name: str, col, region: str):
    """:func:`_epn_values` for the TABLEDATA writer: a text column held as Arrow
    strings (what the export reads from Parquet) stays one, NULLs as Arrow's nulls
    (mask None) — the text cast of such values changes none of them — so that its
    cells are made by Arrow (:func:`_cells`), without a Python string per value."""
    if col.type == "Text" and not (name == "s_region" and region == "dali"):
        arr = arrow_strings(values)
        if arr is not None:
            return arr, None
    return _epn_values(values, name, col, region)


def write_table_votable(frame: pd.DataFrame, path: str | os.PathLike, *, name: str,
                        fmt: str = "binary2") -> Path:
    """Write a side table (e.g. datalink rows) as a VOTable typed from pandas dtypes."""
    votable, table = _new_table(name)
    columns = []
    for n in frame.columns:
        field, data, mask = _generic_field(votable, str(n), frame[n])
        table.fields.append(field)
        columns.append((field, data, mask))
    return _write(votable, table, columns, Path(path), fmt)


def read_votable(path: str | os.PathLike) -> pd.DataFrame:
    """Read a VOTable written here back into a DataFrame (NULLs as None/NaN)."""
    from astropy.io.votable import parse_single_table
    t = parse_single_table(str(path)).to_table()
    return t.to_pandas()
