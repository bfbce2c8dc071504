"""STC-S polygons as flat arrays, and pgSphere's polygon rules checked on many at once.

``Polygon UNKNOWNFrame lon lat lon lat ...`` strings (the s_region form DaCHS imports and
TAP returns) are parsed into one flat array of vertices plus offsets, so that checks on a
million polygons run as numpy and shapely array operations, not per-row Python.

pgSphere's rules (postgrespro/pgsphere src/polygon.c, FACTS.md): 3 to 1024 vertices after
dropping consecutive duplicates and a repeated closing vertex; no two edges crossing or
overlapping; no edge of exactly 180°; the polygon must fit inside a hemisphere. EPN-TAP's
orientation rule: counter-clockwise, read for a body frame as positive signed area in
the (longitude, latitude) plane after unwrapping longitudes around the polygon.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import shapely

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
    """Parse STC-S polygon strings (None/NaN allowed: zero vertices, parse_error)."""
    texts = list(stcs)
    n = len(texts)
    bodies = []
    err = np.zeros(n, bool)
    counts = np.zeros(n, np.int64)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            err[i] = True
            bodies.append("")
            continue
        m = _PREFIX.match(t)
        if not m:
            err[i] = True
            bodies.append("")
            continue
        body = t[m.end():].strip()
        k = body.count(" ") + 1 if body else 0
        if k % 2:
            err[i] = True
            bodies.append("")
            continue
        bodies.append(body)
        counts[i] = k // 2
    flat = " ".join(b for b in bodies if b)
    try:
        vals = np.array(flat.split(), dtype=float) if flat else np.zeros(0)
    except ValueError:
        # a bad number somewhere: fall back to per polygon to find which
        parts = []
        for i, b in enumerate(bodies):
            try:
                parts.append(np.array(b.split(), dtype=float))
            except ValueError:
                err[i] = True
                counts[i] = 0
                parts.append(np.zeros(0))
        vals = np.concatenate(parts) if parts else np.zeros(0)
    off = np.concatenate([[0], np.cumsum(counts)])
    return Polygons(vals[0::2].copy(), vals[1::2].copy(), off, err)


def unwrap(poly: Polygons) -> np.ndarray:
    """Longitudes unwrapped along each polygon (no jump > 180° between vertices)."""
    lon = poly.lon.copy()
    if len(lon) == 0:
        return lon
    d = np.diff(lon, prepend=lon[:1])
    d = (d + 180.0) % 360.0 - 180.0
    starts = poly.offsets[:-1][poly.counts > 0]
    d[starts] = 0.0
    cum = np.cumsum(d)
    # restart the cumulative sum at each polygon's first vertex
    base = np.repeat(cum[starts] - lon[starts], poly.counts[poly.counts > 0])
    return cum - base


def signed_area(poly: Polygons, ulon: np.ndarray | None = None) -> np.ndarray:
    """Planar signed area (deg²) of each polygon in unwrapped (lon, lat)."""
    ulon = unwrap(poly) if ulon is None else ulon
    n = len(poly)
    out = np.zeros(n)
    if len(ulon) == 0:
        return out
    nxt = np.arange(len(ulon)) + 1
    ends = poly.offsets[1:] - 1
    ok = poly.counts > 0
    nxt[ends[ok]] = poly.offsets[:-1][ok]
    cross = ulon * poly.lat[nxt] - ulon[nxt] * poly.lat
    sums = np.add.reduceat(cross, poly.offsets[:-1][ok]) if ok.any() else np.zeros(0)
    out[ok] = 0.5 * sums
    return out


def _unit(lon, lat):
    lo, la = np.radians(lon), np.radians(lat)
    c = np.cos(la)
    return np.stack([c * np.cos(lo), c * np.sin(lo), np.sin(la)], axis=-1)


def check(stcs) -> list[tuple[str, str] | None]:
    """pgSphere + EPN-TAP polygon rules for each STC-S string.

    Returns, per polygon, None when it passes or ``(rule, reason)`` for the first rule
    it breaks (rules ``stcs.parse``, ``pgsphere.vertices``, ``pgsphere.edge_180``,
    ``pgsphere.hemisphere``, ``pgsphere.self_intersection``, ``epn.orientation``,
    ``epn.coord_range``).
    """
    poly = parse(stcs)
    n = len(poly)
    out: list[tuple[str, str] | None] = [None] * n
    cnt = poly.counts.copy()

    def put(mask, rule, fmt):
        for i in np.flatnonzero(mask):
            if out[i] is None:
                out[i] = (rule, fmt(i))

    put(poly.parse_error, "stcs.parse", lambda i: "s_region is not an STC-S polygon")
    # consecutive duplicates (pgSphere drops them) and coordinate ranges
    lon, lat = poly.lon, poly.lat
    bad_range = (lat < -90) | (lat > 90) | ~np.isfinite(lat) | ~np.isfinite(lon) \
        | (lon < 0) | (lon > 360)
    if len(lon):
        seg_bad = np.zeros(n, bool)
        ok = cnt > 0
        seg_bad[ok] = np.add.reduceat(bad_range.astype(int), poly.offsets[:-1][ok]) > 0
        put(seg_bad, "epn.coord_range",
            lambda i: "s_region has a vertex outside lon 0..360 / lat -90..90 or not finite")
    v = _unit(lon, lat) if len(lon) else np.zeros((0, 3))
    nxt = np.arange(len(lon)) + 1
    ends = poly.offsets[1:] - 1
    nonempty = cnt > 0
    nxt[ends[nonempty]] = poly.offsets[:-1][nonempty]
    dots = np.einsum("ij,ij->i", v, v[nxt]) if len(lon) else np.zeros(0)
    dup = dots > 1 - 1e-15
    distinct = cnt.copy()
    if len(lon):
        distinct[nonempty] -= np.add.reduceat(dup.astype(int), poly.offsets[:-1][nonempty])
    put((distinct < 3) & ~poly.parse_error, "pgsphere.vertices",
        lambda i: f"s_region has {distinct[i]} distinct vertices (pgSphere needs 3 or more)")
    put(distinct > MAX_VERTICES, "pgsphere.vertices",
        lambda i: f"s_region has {distinct[i]} vertices (pgSphere accepts at most "
                  f"{MAX_VERTICES})")
    if len(lon):
        anti = np.zeros(n, bool)
        anti[nonempty] = np.add.reduceat((dots < -1 + 1e-12).astype(int),
                                         poly.offsets[:-1][nonempty]) > 0
        put(anti, "pgsphere.edge_180", lambda i: "s_region has an edge of 180°")
        # hemisphere: all vertices within 90° of the mean direction (sufficient test)
        seg = np.repeat(np.arange(n), cnt)
        mean = np.zeros((n, 3))
        np.add.at(mean, seg, v)
        norm = np.linalg.norm(mean, axis=1)
        norm[norm == 0] = 1
        mean /= norm[:, None]
        d = np.einsum("ij,ij->i", v, mean[seg])
        min_d = np.full(n, np.inf)
        np.minimum.at(min_d, seg, d)
        put(nonempty & (min_d <= 1e-9), "pgsphere.hemisphere",
            lambda i: "s_region does not fit inside a hemisphere (pgSphere: polygon too "
                      f"large; farthest vertex {np.degrees(np.arccos(np.clip(min_d[i], -1, 1))):.1f}° "
                      "from its centre)")
    # planar checks in unwrapped lon/lat: simple ring and orientation
    ulon = unwrap(poly)
    area = signed_area(poly, ulon)
    # a ring around a pole does not close in the unwrapped plane: its planar tests do
    # not apply (pgSphere judges it on the sphere; the hemisphere test above holds)
    polar = np.zeros(n, bool)
    if len(lon):
        first = poly.offsets[:-1][nonempty]
        last = ends[nonempty]
        closing = (lon[first] - lon[last] + 180.0) % 360.0 - 180.0
        polar[nonempty] = np.abs(ulon[last] + closing - ulon[first]) > 180.0
    area[polar] = 1.0
    todo = np.flatnonzero([o is None and not p for o, p in zip(out, polar)])
    if len(todo):
        seg = np.repeat(np.arange(n), cnt)
        keep = np.isin(seg, todo)
        rings = shapely.linearrings(np.stack([ulon[keep], lat[keep]], axis=1),
                                    indices=np.searchsorted(todo, seg[keep]))
        simple = shapely.is_simple(rings)
        for i, s in zip(todo, simple):
            if not s:
                out[i] = ("pgsphere.self_intersection",
                          "s_region has crossing or overlapping edges")
    put(area <= 0, "epn.orientation",
        lambda i: f"s_region is clockwise (signed area {area[i]:.3g} deg² in unwrapped "
                  "lon/lat); EPN-TAP wants counter-clockwise")
    return out
