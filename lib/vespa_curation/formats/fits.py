"""FITS files: headers and small axis columns, never a whole data array.

Files are opened memory-mapped and lazily (astropy reads an HDU's data only when asked),
so reading a header costs the header's bytes, whatever the file's size.
"""
from __future__ import annotations

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


def column_ends(hdu, name: str) -> tuple[Any, Any, int]:
    """(first, last, count) of a table column, reading only what it needs from a
    memory-mapped table (two rows for a column of scalars)."""
    data = hdu.data
    n = len(data)
    if not n:
        return None, None, 0
    col = data.field(name)
    return col[0], col[n - 1], n


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
