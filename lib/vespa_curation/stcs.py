"""STC-S polygons as flat arrays, and pgSphere's polygon rules checked on many at once.

``Polygon UNKNOWNFrame lon lat lon lat ...`` strings (the s_region form DaCHS imports and
TAP returns) are parsed into one flat array of vertices plus offsets, so that checks on a
million polygons run as numpy and shapely array operations, not per-row Python.

pgSphere's rules (postgrespro/pgsphere src/polygon.c): 3 to 1024 vertices after
dropping consecutive duplicates and a repeated closing vertex; no two edges crossing or
overlapping; no edge of exactly 180°; the polygon must fit inside a hemisphere. EPN-TAP's
orientation rule: counter-clockwise, read for a body frame as positive signed area in
the (longitude, latitude) plane after unwrapping longitudes around the polygon.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

MAX_VERTICES = 1024
_PREFIX = re.compile(r"^\s*polygon\s+(?:[A-Za-z_0-9]+frame|icrs|fk5|j2000|galactic|"
                     r"unknown)?\s*", re.IGNORECASE)


@dataclass
class Polygons:
    """Many polygons as flat vertex arrays: polygon ``i`` is ``lon[off[i]:off[i+1]]``."""

    lon: np.ndarray
    lat: np.ndarray
    offsets: np.ndarray          # len n + 1
    parse_error: np.ndarray      # bool per polygon

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self):
        return len(self.offsets) - 1

    def polygon(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.lon[a:b], self.lat[a:b]


def format_polygon(lon, lat, frame: str = "UNKNOWNFrame", digits: int = 6) -> str:
    """STC-S text of one polygon (no repeated closing vertex)."""
    lon = np.mod(np.asarray(lon, float), 360.0)
    lat = np.asarray(lat, float)
    body = " ".join(f"{a:.{digits}f} {b:.{digits}f}" for a, b in zip(lon, lat))
    return f"Polygon {frame} {body}"


def parse(stcs) -> Polygons:
    """Parse STC-S polygon strings (None/NaN allowed: zero vertices, parse_error).

    Numbers are separated by any white space. A text that is no STC-S polygon (another
    shape, an odd count of numbers, a word that is no number) has ``parse_error`` and
    no vertices; a polygon with no numbers has no vertices and no error.

    The texts as written here (``Polygon <frame>``, numbers of at most 15 digits
    between single spaces, ASCII) are read by a compiled loop
    (:func:`.geometry.kernels.stcs_polygon_numbers`: each number the double
    ``float()`` reads, by Clinger's fast path); any other text is read by Python
    (:func:`_parse_each`, the reference).
    """
    import pyarrow as pa
    from .geometry import kernels
    texts = [t if isinstance(t, str) else None for t in stcs]   # no text: an error
    n = len(texts)
    arr = pa.array(texts, type=pa.large_string())
    bufs = arr.buffers()
    bounds = np.frombuffer(bufs[1], np.int64, count=n + 1) if n else np.zeros(1, np.int64)
    data = np.frombuffer(bufs[2], np.uint8) if n and bufs[2] is not None \
        else np.zeros(0, np.uint8)
    # a number the loop keeps follows a space: no more of them than spaces
    vals = np.empty(int(np.count_nonzero(data == 32)) + 1)
    counts = np.zeros(n, np.int64)
    plain = np.zeros(n, bool)
    kernels.stcs_polygon_numbers(data, bounds[:-1], bounds[1:], vals, counts, plain)
    if plain.all():
        off = np.concatenate([[0], np.cumsum(counts)])
        return Polygons(vals[0:2 * off[-1]:2].copy(), vals[1:2 * off[-1]:2].copy(), off,
                        np.zeros(n, bool))
    return _merge(texts, vals, counts, plain)


def _merge(texts: list, vals, counts, plain) -> Polygons:
    """:func:`parse`'s polygons when some texts are read by Python: the compiled
    loop's numbers for the plain ones, :func:`_parse_each`'s for the others."""
    n = len(texts)
    rest = np.flatnonzero(~plain)
    other = _parse_each([texts[i] for i in rest])
    cnt = np.zeros(n, np.int64)
    cnt[plain] = counts[plain]
    cnt[rest] = other.counts
    err = np.zeros(n, bool)
    err[rest] = other.parse_error
    off = np.concatenate([[0], np.cumsum(cnt)])
    # where each polygon's vertices are: the loop's (in order), then Python's
    n_loop = int(counts[plain].sum())
    src = np.zeros(n, np.int64)
    src[plain] = np.cumsum(counts[plain]) - counts[plain]
    src[rest] = n_loop + other.offsets[:-1]
    pick = np.repeat(src - off[:-1], cnt) + np.arange(off[-1])
    lon = np.concatenate([vals[0:2 * n_loop:2], other.lon])
    lat = np.concatenate([vals[1:2 * n_loop:2], other.lat])
    return Polygons(lon[pick], lat[pick], off, err)


def _parse_each(texts: list) -> Polygons:
    """:func:`parse` text by text, for any text."""
    n = len(texts)
    err = np.zeros(n, bool)
    counts = np.zeros(n, np.int64)
    parts = []
    for i, t in enumerate(texts):
        m = _PREFIX.match(t) if isinstance(t, str) else None
        words = t[m.end():].split() if m else None
        try:
            v = np.array(words, dtype=float) if words is not None and \
                len(words) % 2 == 0 else None
        except ValueError:
            v = None
        if v is None:
            err[i] = True
            continue
        counts[i] = len(v) // 2
        parts.append(v)
    vals = np.concatenate(parts) if parts else np.zeros(0)
    off = np.concatenate([[0], np.cumsum(counts)])
    return Polygons(vals[0::2].copy(), vals[1::2].copy(), off, err)


def unwrap(poly: Polygons) -> np.ndarray:
    """Longitudes unwrapped along each polygon (no jump > 180° between vertices)."""
    from .geometry.sregion import unwrap_lon
    return unwrap_lon(poly.lon, poly.offsets)


def check(stcs) -> list[tuple[str, str] | None]:
    """pgSphere + EPN-TAP polygon rules for each STC-S string.

    Returns, per polygon, None when it passes or ``(rule, reason)`` for the first rule
    it breaks: ``stcs.parse``, ``epn.coord_range`` (a body-frame longitude outside
    0..360), then the rules of :func:`vespa_curation.geometry.sregion.check_polygons`
    (checked on the sphere: vertices, hemisphere, 180° edges, crossing edges,
    counter-clockwise orientation).
    """
    from .geometry.sregion import check_polygons
    poly = parse(stcs)
    n = len(poly)
    out: list[tuple[str, str] | None] = [None] * n
    for i in np.flatnonzero(poly.parse_error):
        out[i] = ("stcs.parse", "s_region is not an STC-S polygon")
    lon = poly.lon
    off_range = (lon < 0) | (lon > 360)
    if off_range.any():
        ids = np.repeat(np.arange(n), poly.counts)
        for i in np.unique(ids[off_range]):
            out[i] = ("epn.coord_range", "s_region has a longitude outside 0..360")
    rule, reason = check_polygons(poly.lon, poly.lat, poly.offsets)
    for i in np.flatnonzero(rule != None):  # noqa: E711
        if out[i] is None:
            out[i] = (rule[i], reason[i])
    return out
