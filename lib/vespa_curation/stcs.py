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


def _numbers(flat: str) -> np.ndarray | None:
    """The numbers of a text of numbers separated by single spaces (Arrow's C++ cast,
    ~5× numpy's fromstring, the same doubles); None when a word is no number."""
    if not flat:
        return np.zeros(0)
    import pyarrow as pa
    import pyarrow.compute as pc
    try:
        return pc.cast(pc.split_pattern(pa.array([flat]), " ").flatten(),
                       pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def parse(stcs) -> Polygons:
    """Parse STC-S polygon strings (None/NaN allowed: zero vertices, parse_error).

    Numbers are separated by any white space. A text that is no STC-S polygon (another
    shape, an odd count of numbers, a word that is no number) has ``parse_error`` and
    no vertices; a polygon with no numbers has no vertices and no error.

    The texts as written here (numbers between single spaces) are read in one cast
    of all their numbers; when any text is another (other white space, an odd count,
    a word that is no number), every text is read again one by one
    (:func:`_parse_each`).
    """
    texts = list(stcs)
    n = len(texts)
    bodies = []
    err = np.zeros(n, bool)
    counts = np.zeros(n, np.int64)
    for i, t in enumerate(texts):
        m = _PREFIX.match(t) if isinstance(t, str) else None
        if not m:
            err[i] = True
            continue
        body = t[m.end():].strip()
        k = body.count(" ") + 1 if body else 0
        if k % 2:
            return _parse_each(texts)
        if body:
            bodies.append(body)
        counts[i] = k // 2
    vals = _numbers(" ".join(bodies))
    # a word that is no number, or white space other than single spaces (a word
    # holding a tab, an empty word between two spaces)
    if vals is None or vals.size != 2 * counts.sum():
        return _parse_each(texts)
    off = np.concatenate([[0], np.cumsum(counts)])
    return Polygons(vals[0::2].copy(), vals[1::2].copy(), off, err)


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
