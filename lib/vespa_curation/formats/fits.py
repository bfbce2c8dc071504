"""FITS files: headers and small axis columns, never a whole data array.

Files are opened memory-mapped and lazily (astropy reads an HDU's data only when asked),
so reading a header costs the header's bytes, whatever the file's size.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .registry import register_reader

#: Header keywords that are commentary, not values.
_SKIP = frozenset({"COMMENT", "HISTORY", ""})


def header_fields(header, prefix: str = "") -> dict[str, Any]:
    """A FITS header as record fields: ``{prefix + KEYWORD: value}`` (commentary cards
    left out; the first of a repeated keyword kept)."""
    out: dict[str, Any] = {}
    for card in header.cards:
        key = card.keyword
        if key in _SKIP or (prefix + key) in out:
            continue
        out[prefix + key] = card.value
    return out


def column_rows(path: Path, hdu, name: str, rows) -> np.ndarray:
    """Values of a binary-table column at ``rows``, read from the file by offset (one
    ``pread`` per row): the table's other columns — a spectrum per row — are never read.
    astropy's own column access converts the whole column, which touches every row's
    pages. ``TSCAL``/``TZERO`` are applied."""
    rows = np.asarray(rows, dtype=np.int64)
    dtype, offset = hdu.columns.dtype.fields[name][:2]
    row_bytes = int(hdu.header["NAXIS1"])
    start = int(hdu.fileinfo()["datLoc"])
    with open(path, "rb") as fh:
        fd = fh.fileno()
        raw = b"".join(os.pread(fd, dtype.itemsize, start + int(r) * row_bytes + offset)
                       for r in rows)
    stored = dtype.newbyteorder(">")            # FITS tables are big-endian on disk
    values = np.frombuffer(raw, dtype=stored).astype(stored.newbyteorder("="))
    col = hdu.columns[name]
    scale = col.bscale if col.bscale not in (None, "") else 1
    zero = col.bzero if col.bzero not in (None, "") else 0
    return values * scale + zero if (scale != 1 or zero != 0) else values


def column_range(hdu, name: str) -> tuple[float, float, float | None, str | None]:
    """(min, max, median step, unit) of a small axis column (e.g. frequencies)."""
    values = np.asarray(hdu.data.field(name), dtype=float).ravel()
    unit = hdu.columns[name].unit if name in hdu.columns.names else None
    step = float(np.median(np.diff(np.sort(values)))) if values.size > 1 else None
    return float(values.min()), float(values.max()), step, unit


@register_reader("fits")
def read_fits_header(path: Path) -> dict[str, Any]:
    """The primary header's keywords (``OBJECT``, ``DATE-OBS``, ``TELESCOP``, ...)."""
    from astropy.io import fits
    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        return header_fields(hdul[0].header)
