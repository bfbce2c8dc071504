"""Planar outlines → one simple spherical polygon per region → STC-S, vectorized.

Every function works on many polygons at once, as ragged arrays
(:class:`~vespa_curation.geometry.chaincode.Ragged`: flat ``x, y`` plus
``offsets``); rings are stored without a repeated closing vertex.

Functions
---------
clip_to_disk
    Clip helioprojective outlines to a circle just inside the limb *before*
    transforming (no NaN vertices afterwards).
simplify_over
    Douglas–Peucker within a tolerance for rings with too many vertices.
douglas_peucker
    Which vertices Douglas–Peucker keeps, for many closed rings at once (numpy).
densify
    Split long edges (so that great-circle edges follow the projected outline).
unwrap_lon, signed_area, reverse_clockwise
    Longitudes unwrapped around each polygon; counter-clockwise orientation.
check_polygons / check_polygon
    pgSphere's rules (3–1024 vertices, no crossing edges, no 180° edge, inside a
    hemisphere), tested on the sphere: crossings are looked for in the gnomonic
    projection about the polygon's centre, where great-circle edges are straight
    lines — so the planar test is exact, also at high latitude.
to_stcs
    ``Polygon UNKNOWNFrame lon lat ...`` strings.
"""
from __future__ import annotations

import numpy as np
import shapely

from . import kernels
from .chaincode import Ragged, _member, _refuse, ragged_ids
from .sphere import unit_vectors

__all__ = [
    "MAX_VERTICES",
    "clip_to_disk",
    "simplify_over",
    "douglas_peucker",
    "densify",
    "unwrap_lon",
    "signed_area",
    "reverse_rings",
    "check_polygons",
    "check_polygon",
    "gnomonic",
    "spherical_area",
    "to_stcs",
    "lon_range",
    "follow_limb",
    "cut_staircases",
    "disk_edge_length",
]

#: pgSphere's limit on polygon vertices (``spherepoly_in: too much points``).
MAX_VERTICES = 1024


def _next_index(offsets: np.ndarray) -> np.ndarray:
    """Index of the next vertex of the same ring (cyclic) for every flat vertex."""
    n_tot = offsets[-1]
    nxt = np.arange(1, n_tot + 1)
    counts = np.diff(offsets)
    ne = counts > 0
    nxt[offsets[1:][ne] - 1] = offsets[:-1][ne]
    return nxt


def _from_geoms(geoms) -> Ragged:
    """Exterior rings of shapely polygons as a Ragged (closing vertex dropped)."""
    geoms = shapely.orient_polygons(np.asarray(geoms, dtype=object), exterior_cw=False)
    rings = shapely.get_exterior_ring(geoms)
    coords, idx = shapely.get_coordinates(rings, return_index=True)
    counts = np.bincount(idx, minlength=len(geoms))
    offsets = np.zeros(len(geoms) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    keep = np.ones(len(coords), dtype=bool)
    ne = counts > 0
    keep[offsets[1:][ne] - 1] = False  # drop closing vertex
    counts2 = counts - ne
    off2 = np.zeros_like(offsets)
    np.cumsum(counts2, out=off2[1:])
    return Ragged(coords[keep, 0].copy(), coords[keep, 1].copy(), off2)


def _to_polygons(r: Ragged, which=None):
    idx = np.arange(len(r)) if which is None else np.asarray(which)
    if len(idx) == 0:
        return np.empty(0, dtype=object)
    counts = r.counts[idx]
    sel = np.concatenate([np.arange(r.offsets[i], r.offsets[i + 1]) for i in idx]) \
        if len(idx) < 64 else np.flatnonzero(_member(ragged_ids(r.offsets), idx, len(r)))
    ids = np.repeat(np.arange(len(idx)), counts)
    return shapely.polygons(shapely.linearrings(np.c_[r.x[sel], r.y[sel]], indices=ids))


def _replace(r: Ragged, which: np.ndarray, new: Ragged) -> Ragged:
    """Ragged ``r`` with items ``which`` replaced by the items of ``new`` (in order)."""
    if len(which) == 0:
        return r
    counts = r.counts.copy()
    counts[which] = new.counts
    off = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    x = np.empty(off[-1])
    y = np.empty(off[-1])
    repl = np.zeros(len(counts), dtype=bool)
    repl[which] = True
    old_keep = ~repl[ragged_ids(r.offsets)]
    new_slot = repl[ragged_ids(off)]
    x[~new_slot] = r.x[old_keep]
    y[~new_slot] = r.y[old_keep]
    # new items go in ascending order of `which`
    order = np.argsort(which, kind="stable")
    if np.any(order != np.arange(len(order))):
        new_items = [new.item(k) for k in order]
        nx = np.concatenate([a for a, _ in new_items]) if new_items else np.empty(0)
        ny = np.concatenate([b for _, b in new_items]) if new_items else np.empty(0)
    else:
        nx, ny = new.x, new.y
    x[new_slot] = nx
    y[new_slot] = ny
    return Ragged(x, y, off)


def clip_to_disk(r: Ragged, radius: np.ndarray, n_circle: int = 2048):
    """Clip rings (centred on the disk centre) to circles of ``radius``.

    Rings entirely inside their circle are returned untouched (checked with
    numpy); only the others go through shapely's intersection with a
    densified circle (``n_circle`` vertices).

    Parameters
    ----------
    r : Ragged
        Rings in a plane centred on the disk centre (helioprojective arcsec).
    radius : array_like
        Clip radius per ring (same unit).
    n_circle : int
        Vertices of the clipping circle.

    Returns
    -------
    clipped : Ragged
        Rings after clipping; the largest part is kept when the clip splits a
        ring (``multi``), an empty ring when nothing is inside (``empty``).
    touched, multi, empty : numpy.ndarray of bool
    kept_fraction : numpy.ndarray
        Area after / before clipping (1 for untouched rings).
    """
    n = len(r)
    radius = np.broadcast_to(np.asarray(radius, float), (n,))
    r2 = r.x**2 + r.y**2
    counts = r.counts
    maxr2 = np.zeros(n)
    ne = counts > 0
    maxr2[ne] = np.maximum.reduceat(r2, r.offsets[:-1][ne])
    touched = maxr2 > radius**2
    multi = np.zeros(n, dtype=bool)
    empty = np.zeros(n, dtype=bool)
    frac = np.ones(n)
    which = np.flatnonzero(touched)
    if len(which) == 0:
        return r, touched, multi, empty, frac
    polys = _to_polygons(r, which)
    polys = shapely.make_valid(polys)
    inter = shapely.intersection(polys, _clip_sectors(r, which, radius[which], n_circle))
    area0 = shapely.area(polys)
    out = []
    for k, (g, i) in enumerate(zip(inter, which)):
        if g.is_empty or g.area == 0:
            empty[i] = True
            out.append(shapely.Polygon())
            continue
        parts = [p for p in getattr(g, "geoms", [g])
                 if isinstance(p, shapely.Polygon) and p.area > 0]
        if len(parts) > 1:
            multi[i] = True
        best = max(parts, key=lambda p: p.area)
        frac[i] = best.area / area0[k] if area0[k] > 0 else 0.0
        out.append(shapely.Polygon(best.exterior))
    return _replace(r, which, _from_geoms(out)), touched, multi, empty, frac


def _clip_sectors(r: Ragged, which: np.ndarray, radius: np.ndarray, n_circle: int):
    """The clip shape of each ring ``which``: the sector of its circle spanning the
    ring's position angles (a few dozen arc vertices instead of the whole circle),
    the whole circle when that is wider than π.  Shapely polygons, built for all the
    rings at once; arc vertices ``2π / n_circle`` apart."""
    step = 2 * np.pi / n_circle
    ring = ragged_ids(r.offsets)
    selected = _member(ring, which, len(r))
    k_of = np.searchsorted(which, ring[selected])   # index into which, per vertex
    ang = np.arctan2(r.y[selected], r.x[selected])
    m = len(which)
    mid = np.arctan2(np.bincount(k_of, np.sin(ang), m), np.bincount(k_of, np.cos(ang), m))
    rel = (ang - mid[k_of] + np.pi) % (2 * np.pi) - np.pi
    vstart = np.searchsorted(k_of, np.arange(m))
    a0 = np.minimum.reduceat(rel, vstart) - 2 * step
    a1 = np.maximum.reduceat(rel, vstart) + 2 * step
    full = (a1 - a0) >= np.pi
    a0 = np.where(full, -np.pi, a0)
    a1 = np.where(full, np.pi - step, a1)
    npts = np.maximum(np.ceil((a1 - a0) / step).astype(np.int64), 2) + 1
    owner = np.repeat(np.arange(m), npts)
    first = np.repeat(np.cumsum(npts) - npts, npts)
    u = (np.arange(owner.size) - first) / (npts[owner] - 1)   # 0..1 along each arc
    t = mid[owner] + a0[owner] + u * (a1 - a0)[owner]
    cx = np.cos(t) * radius[owner]
    cy = np.sin(t) * radius[owner]
    # a sector has the centre as an extra vertex (not for a whole circle)
    centre = ~full
    off = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(npts + centre, out=off[1:])
    X = np.zeros(off[-1])
    Y = np.zeros(off[-1])
    slot = np.ones(off[-1], dtype=bool)
    slot[off[:-1][centre]] = False  # centre first (0, 0)
    X[slot] = cx
    Y[slot] = cy
    return shapely.polygons(shapely.linearrings(np.c_[X, Y], indices=ragged_ids(off)))


def simplify_over(r: Ragged, limit: int, tolerance) -> tuple[Ragged, np.ndarray, np.ndarray]:
    """Simplify (Douglas–Peucker, topology kept) the rings with more than ``limit`` vertices.

    Returns
    -------
    Ragged, simplified (bool per ring), area_change (relative, 0 when untouched)
    """
    n = len(r)
    tol = np.broadcast_to(np.asarray(tolerance, float), (n,))
    which = np.flatnonzero(r.counts > limit)
    change = np.zeros(n)
    done = np.zeros(n, dtype=bool)
    if len(which) == 0:
        return r, done, change
    polys = _to_polygons(r, which)
    simp = shapely.simplify(polys, tol[which], preserve_topology=True)
    a0, a1 = shapely.area(polys), shapely.area(simp)
    change[which] = np.where(a0 > 0, a1 / np.where(a0 > 0, a0, 1) - 1, 0)
    done[which] = True
    return _replace(r, which, _from_geoms(simp)), done, change


def douglas_peucker(x, y, offsets, tolerance) -> np.ndarray:
    """Vertices Douglas–Peucker keeps within ``tolerance`` of closed rings.

    Every ring is split at its first vertex and the vertex farthest from it; then
    each chord whose farthest in-between vertex lies more than the ring's
    tolerance from it (distance to the segment, not to the line) is split there
    (one compiled walk per ring, :func:`.kernels.dp_keep`).  Every dropped vertex
    is within the tolerance of the kept outline.
    Topology is not checked here (the caller checks the result).

    Parameters
    ----------
    x, y : numpy.ndarray
        Flat vertices of the rings (no repeated closing vertex).
    offsets : numpy.ndarray
        Ragged offsets.
    tolerance : float or numpy.ndarray
        One value, or one per ring.

    Returns
    -------
    numpy.ndarray of bool
        Per flat vertex: kept.  Rings of fewer than 4 vertices are kept whole.
    """
    x = np.ascontiguousarray(x, dtype=float)
    y = np.ascontiguousarray(y, dtype=float)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    n = len(offsets) - 1
    tol = np.broadcast_to(np.asarray(tolerance, float), (n,))
    keep = np.zeros(len(x), dtype=bool)
    kernels.dp_keep(x, y, offsets, np.ascontiguousarray(tol * tol), keep)
    return keep


def densify(r: Ragged, max_len, limit: int = MAX_VERTICES, edge_max_len=None) -> Ragged:
    """Split edges longer than ``max_len`` into equal parts (one compiled walk per ring,
    the arithmetic of the numpy formulas it replaced).

    ``edge_max_len`` (one value per vertex, for the edge that starts there)
    overrides ``max_len`` (one value per ring) when given.  A ring is left as is
    when densifying it would exceed ``limit`` vertices.
    """
    n = len(r)
    offsets = np.ascontiguousarray(r.offsets, dtype=np.int64)
    if edge_max_len is None:
        ml = np.broadcast_to(np.asarray(max_len, float), (n,))[ragged_ids(offsets)]
    else:
        ml = np.asarray(edge_max_len, float)
    x = np.ascontiguousarray(r.x, dtype=float)
    y = np.ascontiguousarray(r.y, dtype=float)
    k = np.empty(len(x), dtype=np.int64)
    if not kernels.densify_parts(x, y, offsets, np.ascontiguousarray(ml), limit, k):
        return r
    total = int(k.sum())
    out_x, out_y = np.empty(total), np.empty(total)
    off = np.empty(n + 1, dtype=np.int64)
    kernels.densify_fill(x, y, offsets, k, out_x, out_y, off)
    return Ragged(out_x, out_y, off)


def unwrap_lon(lon: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Longitudes unwrapped along each ring, the first vertex kept in [0, 360)."""
    lon = np.ascontiguousarray(lon, dtype=float)
    out = np.empty(len(lon))
    kernels.unwrap_rings(lon, np.ascontiguousarray(offsets, dtype=np.int64), out)
    return out


def ring_centroids(lon: np.ndarray, lat: np.ndarray, offsets: np.ndarray, digits=None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Area centroid (deg) of every ring in unwrapped longitude/latitude, longitude
    folded to [0, 360): the QA's centroid of a published polygon, for all rings at once
    (the vertex mean where a ring has no area, NaN for fewer than 3 vertices). With
    ``digits``, of the vertices rounded as the STC-S text writes them."""
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    offsets = np.asarray(offsets, dtype=np.int64)
    if digits is not None:
        lon, lat = np.round(np.mod(lon, 360.0), digits), np.round(lat, digits)
    m = len(offsets) - 1
    u = unwrap_lon(lon, offsets)
    cx, cy = np.empty(m), np.empty(m)
    kernels.area_centroids(u, np.ascontiguousarray(lat, dtype=float), offsets, cx, cy)
    return np.mod(cx, 360.0), cy


def signed_area(x: np.ndarray, y: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Planar signed (shoelace) area of every ring (positive = counter-clockwise)."""
    out = np.empty(len(offsets) - 1)
    kernels.signed_areas(np.ascontiguousarray(x, dtype=float),
                         np.ascontiguousarray(y, dtype=float),
                         np.ascontiguousarray(offsets, dtype=np.int64), out)
    return out


def reverse_rings(r: Ragged, which: np.ndarray) -> Ragged:
    """Rings ``which`` (bool per ring) with their vertex order reversed."""
    which = np.asarray(which, bool)
    if not which.any():
        return r
    ids = ragged_ids(r.offsets)
    pos = np.arange(len(r.x))
    src = np.where(which[ids], r.offsets[ids] + r.offsets[ids + 1] - 1 - pos, pos)
    return Ragged(r.x[src], r.y[src], r.offsets)


def gnomonic(lon, lat, offsets, v=None):
    """Gnomonic projection of each ring about its mean direction.

    ``v`` (unit vectors of the vertices, (N, 3)) may be given to save the trigonometry.

    Returns
    -------
    x, y : numpy.ndarray
        Tangent-plane coordinates (great-circle edges are straight lines here).
    cosd : numpy.ndarray
        Cosine of each vertex's angle from its ring's centre (≤ 0: not in the
        centre's hemisphere, projection undefined).
    """
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    v = unit_vectors(lon, lat) if v is None else v
    v = np.ascontiguousarray(v, dtype=float).reshape(-1, 3)
    x, y, cv = (np.empty(len(v)) for _ in range(3))
    kernels.gnomonic_plane(v, offsets, x, y, cv)     # numpy's formulas, per ring
    return x, y, cv


def spherical_area(lon, lat, offsets) -> np.ndarray:
    """Area (square heliographic degrees) of each ring, exact for great-circle edges.

    Computed as the sum of the signed spherical triangles (centre, v_i, v_i+1)
    (Van Oosterom & Strackee), so any ring within a hemisphere is handled.
    """
    ids = ragged_ids(offsets)
    x, y, cv = gnomonic(lon, lat, offsets)
    # rebuild unit vectors in the tangent frame: (x, y, 1)/norm
    p = np.stack([x, y, np.ones_like(x)], axis=-1)
    p /= np.linalg.norm(p, axis=1)[:, None]
    nxt = _next_index(offsets)
    a, b = p, p[nxt]
    cz = np.array([0.0, 0.0, 1.0])
    num = np.einsum("ij,ij->i", np.broadcast_to(cz, a.shape), np.cross(a, b))
    den = 1 + a[:, 2] + b[:, 2] + np.einsum("ij,ij->i", a, b)
    ex = 2 * np.arctan2(num, den)
    area = np.bincount(ids, weights=ex, minlength=len(offsets) - 1)
    return area * (180 / np.pi) ** 2


def check_polygons(lon, lat, offsets, require_ccw: bool = True, xyz=None, plane=None):
    """pgSphere's polygon rules (and EPN-TAP's orientation) for many polygons.

    Rules, in order (first failure reported): ``pgsphere.bad_value`` (non-finite
    or |lat| > 90), ``pgsphere.vertices`` (fewer than 3 distinct or more than
    1024 vertices), ``pgsphere.too_large`` (not inside the hemisphere about the
    polygon's mean direction — a sufficient test), ``pgsphere.edge_180``,
    ``pgsphere.self_intersection`` (crossing or overlapping edges, found in the
    gnomonic projection where edges are straight, so exact on the sphere),
    ``epn.orientation`` (clockwise; only when ``require_ccw``; computed on the
    sphere, as seen from outside).

    Parameters
    ----------
    lon, lat : array_like
        Flat vertices, deg (no repeated closing vertex needed; it is dropped).
    offsets : array_like
        Ragged offsets.
    require_ccw : bool
        Also refuse clockwise polygons (``epn.orientation``).
    xyz : numpy.ndarray, optional
        Unit vectors of the vertices (N, 3), when already known.
    plane : tuple of numpy.ndarray, optional
        ``(x, y, cosd)`` of the vertices in a gnomonic projection about a centre of
        each ring (as :func:`gnomonic` gives), when already known.

    Returns
    -------
    rule, reason : numpy.ndarray of object (None where the polygon passes)
    """
    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    offsets = np.asarray(offsets, dtype=np.int64)
    n = len(offsets) - 1
    rule = np.full(n, None, dtype=object)
    reason = np.full(n, None, dtype=object)
    counts = np.diff(offsets)
    ring = ragged_ids(offsets)
    bad_value = ~np.isfinite(lon) | ~np.isfinite(lat) | (np.abs(lat) > 90)
    n_bad = np.bincount(ring, weights=bad_value, minlength=n)
    _refuse(rule, reason, n_bad > 0, "pgsphere.bad_value",
            lambda i: f"{int(n_bad[i])} vertex coordinate(s) not finite or beyond ±90° latitude")
    if xyz is None or bad_value.any():
        lon = np.where(bad_value, 0.0, lon)
        lat = np.where(bad_value, 0.0, lat)
        v = unit_vectors(lon, lat)
    else:
        v = np.asarray(xyz, dtype=float)
    # cosine of each edge's angle
    dots = np.empty(len(v))
    kernels.next_dots(np.ascontiguousarray(v).reshape(-1, 3), offsets, dots)
    dup = dots > 1 - 1e-15  # pgSphere drops consecutive duplicates
    distinct = counts - np.bincount(ring, weights=dup, minlength=n).astype(np.int64)
    _refuse(rule, reason, distinct < 3, "pgsphere.vertices",
            lambda i: f"polygon has {distinct[i]} distinct vertices (pgSphere needs at least 3)")
    _refuse(rule, reason, distinct > MAX_VERTICES, "pgsphere.vertices",
            lambda i: f"polygon has {distinct[i]} vertices (pgSphere accepts at most "
                      f"{MAX_VERTICES})")
    if plane is None or bad_value.any():
        x, y, cosd = gnomonic(lon, lat, offsets, v=v)
    else:
        x, y, cosd = plane
    _check_hemisphere(cosd, dots, offsets, rule, reason)
    todo = np.flatnonzero(rule == None)  # noqa: E711
    if len(todo):
        _check_crossings(x, y, offsets, todo, ~dup, require_ccw, rule, reason)
    return rule, reason


def _check_hemisphere(cosd, dots, offsets, rule, reason) -> None:
    """``pgsphere.too_large`` (a vertex 90° or more from the ring's centre) and
    ``pgsphere.edge_180`` (an edge between antipodes) of :func:`check_polygons`."""
    n = len(offsets) - 1
    min_cosd = np.full(n, np.inf)
    nonempty = np.diff(offsets) > 0
    if nonempty.any():
        min_cosd[nonempty] = np.minimum.reduceat(cosd, offsets[:-1][nonempty])
    _refuse(rule, reason, min_cosd <= 1e-9, "pgsphere.too_large",
            lambda i: "polygon does not fit inside a hemisphere (a vertex lies "
                      f"{np.degrees(np.arccos(np.clip(min_cosd[i], -1, 1))):.1f}° from its "
                      "centre)")
    antipodal = np.bincount(ragged_ids(offsets), weights=dots < -1 + 1e-12, minlength=n)
    _refuse(rule, reason, antipodal > 0, "pgsphere.edge_180",
            lambda i: "polygon has an edge of 180°")


def _check_crossings(x, y, offsets, todo, not_duplicate, require_ccw, rule, reason) -> None:
    """``pgsphere.self_intersection`` and ``epn.orientation`` of :func:`check_polygons`
    for the rings ``todo``, in the gnomonic plane ``x, y`` (where the edges are
    straight), consecutive duplicates left out (``not_duplicate``: per vertex)."""
    n = len(offsets) - 1
    ring = ragged_ids(offsets)
    keep = _member(ring, todo, n) & not_duplicate
    rank = np.zeros(n, dtype=np.int64)
    rank[todo] = np.arange(len(todo))
    sub_ids = rank[ring[keep]]
    sub = np.zeros(len(todo) + 1, dtype=np.int64)
    np.cumsum(np.bincount(sub_ids, minlength=len(todo)), out=sub[1:])
    xk, yk = x[keep], y[keep]
    crossing = np.zeros(n, dtype=bool)
    crossing[todo] = ~rings_simple(xk, yk, sub, exact=True)
    _refuse(rule, reason, crossing, "pgsphere.self_intersection",
            lambda i: "polygon edges cross or overlap (" +
            shapely.is_valid_reason(shapely.Polygon(np.c_[x[offsets[i]:offsets[i + 1]],
                                                          y[offsets[i]:offsets[i + 1]]])) + ")")
    if require_ccw:
        # counter-clockwise seen from outside the sphere = positive area in the
        # gnomonic plane (its x axis is east-ward, y north-ward)
        area = np.zeros(n)
        area[todo] = signed_area(xk, yk, sub)
        _refuse(rule, reason, area <= 0, "epn.orientation",
                lambda i: "polygon is clockwise; EPN-TAP wants counter-clockwise")


def rings_simple(x, y, offsets, exact: bool = True) -> np.ndarray:
    """Whether each closed ring (first vertex not repeated at the end, no vertex
    repeated next to itself) of the plane is simple: no two edges meet but consecutive
    ones at their shared vertex.

    A compiled proof (:func:`.kernels.rings_simple`: orientations with a band wider
    than their rounding error) settles almost every ring; with ``exact`` the rings it
    leaves undecided (edges within rounding of touching, of folding back, of sharing a
    vertex) go to GEOS's exact test, so the answer is GEOS's ``is_simple`` for every
    ring. Without ``exact``, False means "not proven simple".
    """
    x = np.ascontiguousarray(x, dtype=float)
    y = np.ascontiguousarray(y, dtype=float)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    simple = np.zeros(len(offsets) - 1, dtype=bool)
    kernels.rings_simple(x, y, offsets, simple)
    if exact:
        left = np.flatnonzero(~simple)
        if len(left):
            counts = np.diff(offsets)[left]
            pick = np.repeat(offsets[:-1][left] - np.cumsum(np.r_[0, counts[:-1]]), counts) \
                + np.arange(int(counts.sum()))
            rings = shapely.linearrings(np.c_[x[pick], y[pick]],
                                        indices=np.repeat(np.arange(len(left)), counts))
            simple[left] = shapely.is_simple(rings)
    return simple


def check_polygon(lon, lat, require_ccw: bool = True):
    """pgSphere rules for one polygon: ``None`` when it passes, else ``(rule, reason)``.

    See :func:`check_polygons` for the rules.
    """
    lon = np.asarray(lon, float).ravel()
    lat = np.asarray(lat, float).ravel()
    if lon.size > 1 and lon[0] == lon[-1] and lat[0] == lat[-1]:
        lon, lat = lon[:-1], lat[:-1]
    rule, reason = check_polygons(lon, lat, np.array([0, lon.size]), require_ccw)
    return None if rule[0] is None else (rule[0], reason[0])


def lon_range(ulon: np.ndarray, offsets: np.ndarray):
    """``c1min, c1max`` (deg, in [0, 360)) of rings with unwrapped longitudes.

    ``c1min > c1max`` when the ring crosses 0/360 (c1min is the western edge).
    """
    n = len(offsets) - 1
    ne = np.diff(offsets) > 0
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    if ne.any():
        lo[ne] = np.minimum.reduceat(ulon, offsets[:-1][ne])
        hi[ne] = np.maximum.reduceat(ulon, offsets[:-1][ne])
    span = hi - lo
    c1min = np.mod(lo, 360.0)
    c1max = np.mod(hi, 360.0)
    full = span >= 360.0
    c1min[full], c1max[full] = 0.0, 360.0
    # exact 360 for a range ending on the seam from below
    c1max = np.where((c1max < c1min) & (np.mod(hi, 360.0) == 0) & (span > 0), 360.0, c1max)
    return c1min, c1max


def format_numbers(values, digits: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point decimal text of many numbers at once (compiled, no per-number Python).

    Each number becomes ``" "`` + optional ``-`` + integer part + ``.`` + ``digits``
    decimals, e.g. ``" -7.913679"`` — the text of ``" %.6f" % v`` (``-0.000000`` is
    written ``0.000000``): the number times ``10**digits`` rounded half to even
    (``numpy.rint``), written digit by digit (:func:`.kernels.fixed_point_text`).

    Returns
    -------
    buf : numpy.ndarray of uint8
        All texts concatenated (ASCII).
    ends : numpy.ndarray of int64
        Cumulative byte count after each number.
    """
    v = np.asarray(values, dtype=float).ravel()
    q = np.rint(v * 10**digits).astype(np.int64)
    most = int(np.abs(q).max(initial=0)) // 10**digits
    width = 3 + len(str(most)) + digits          # " ", "-", integer part, ".", decimals
    buf = np.empty(v.size * width, dtype=np.uint8)
    ends = np.empty(v.size, dtype=np.int64)
    n = kernels.fixed_point_text(q, np.int64(digits), buf, ends)
    return buf[:n], ends


def to_stcs(lon, lat, offsets, frame: str = "UNKNOWNFrame", digits: int = 6) -> list:
    """STC-S polygon strings, longitudes normalised to [0, 360) (None for empty rings)."""
    lon = np.mod(np.asarray(lon, float), 360.0)
    lon = np.where(np.rint(lon * 10**digits) >= 360 * 10**digits, 0.0, lon)
    lat = np.asarray(lat, float)
    inter = np.empty(2 * lon.size)
    inter[0::2] = lon
    inter[1::2] = lat
    buf, ends = format_numbers(inter, digits)
    text = buf.tobytes().decode("ascii")
    starts_b = np.concatenate([[0], ends])
    prefix = f"Polygon {frame}"
    off = np.asarray(offsets, dtype=np.int64)
    bstart = starts_b[2 * off[:-1]].tolist()
    bend = starts_b[2 * off[1:]].tolist()
    return [prefix + text[a:b] if b > a else None for a, b in zip(bstart, bend)]


def follow_limb(r: Ragged, rsun, tol, radius, step):
    """Replace the runs of outline vertices near the limb by an arc on the limb.

    A pixel outline meets the limb as a staircase: its corners alternate between
    the limb and up to a pixel inside it.  Clipped as it is, that staircase
    becomes teeth degrees wide in longitude (the limb is foreshortened there).
    Here every maximal run of consecutive vertices closer than ``tol`` to the
    limb (``rsun - tol < r``, also those beyond it) is replaced by an arc of the
    circle ``radius`` from the position angle of the run's first vertex to that
    of its last one (sweeping as the run does), with vertices at most ``step``
    apart; the rest of the outline keeps its pixel corners.  The run's own
    vertices lie within ``tol`` of the arc — the chain's pixel precision.

    A ring whose vertices are all near the limb (a sliver along it), or that the
    replacement would make cross itself, is returned unchanged (``fallback``):
    the caller clips it as before.

    Parameters
    ----------
    r : Ragged
        Rings in a plane centred on the disk centre (helioprojective arcsec).
    rsun, tol, radius, step : array_like
        Per ring: limb radius, nearness tolerance, arc radius (≤ the clip
        radius, so the arc needs no clipping) and largest arc-vertex spacing.

    Returns
    -------
    out : Ragged
    smoothed : numpy.ndarray of bool
        Rings that now follow the limb.
    fallback : numpy.ndarray of bool
        Rings with near-limb vertices left unchanged (sliver or crossing).
    near : numpy.ndarray of bool
        Per input vertex: within ``tol`` of the limb.
    """
    n = len(r)
    rsun, tol, radius, step = (np.broadcast_to(np.asarray(a, float), (n,))
                               for a in (rsun, tol, radius, step))
    ring = ragged_ids(r.offsets)
    near = _near_limb(r, ring, rsun, tol)
    smoothed = np.zeros(n, dtype=bool)
    fallback = np.zeros(n, dtype=bool)
    counts = r.counts
    n_near = np.bincount(ring, weights=near, minlength=n)
    fallback[(n_near > 0) & (n_near >= counts)] = True  # sliver: all near
    todo = np.flatnonzero((n_near > 0) & (n_near < counts))
    if len(todo) == 0:
        return r, smoothed, fallback, near
    rotated, rotated_near = _start_away_from_limb(r, ring, near, todo)
    new = _arcs_for_runs(rotated, rotated_near, radius[todo], step[todo])
    # keep only the rings that stay simple and keep an area
    rings = shapely.linearrings(np.c_[new.x, new.y], indices=ragged_ids(new.offsets))
    ok = shapely.is_simple(rings) & (new.counts >= 3)
    # same orientation as before, with an area (not folded onto the arc)
    old_area = signed_area(rotated.x, rotated.y, rotated.offsets)
    ok &= signed_area(new.x, new.y, new.offsets) * np.sign(old_area) > 0
    smoothed[todo[ok]] = True
    fallback[todo[~ok]] = True
    if not ok.any():
        return r, smoothed, fallback, near
    kept = Ragged(*_take(new, np.flatnonzero(ok)))
    return _replace(r, todo[ok], kept), smoothed, fallback, near


def _near_limb(r: Ragged, ring: np.ndarray, rsun: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """Per vertex: closer than ``tol`` to the limb ``rsun`` of its ring (or beyond it).

    A staircase's inner corners can sit a little deeper than ``tol``: one or two
    vertices within ``2 tol`` of the limb between near ones belong to the run too.
    """
    dist = np.hypot(r.x, r.y)
    near = dist > (rsun - tol)[ring]
    if near.any():
        nxt = _next_index(r.offsets)
        prv = np.empty_like(nxt)
        prv[nxt] = np.arange(len(nxt))
        close = ~near & (dist > (rsun - 2 * tol)[ring])
        gap1 = close & near[prv] & near[nxt]
        gap2 = close & close[nxt] & near[prv] & near[nxt[nxt]]
        near = near | gap1 | gap2
        near[nxt[gap2]] = True
    return near


def _start_away_from_limb(r: Ragged, ring: np.ndarray, near: np.ndarray,
                          todo: np.ndarray) -> tuple[Ragged, np.ndarray]:
    """Rings ``todo`` of ``r``, each rotated to start at its first vertex not near the
    limb (so that every run of near vertices is contiguous), and ``near`` for them."""
    counts = r.counts
    sel = np.flatnonzero(_member(ring, todo, len(r)))
    sid = np.searchsorted(todo, ring[sel])  # 0..len(todo)-1
    m = len(todo)
    offsets = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(counts[todo], out=offsets[1:])
    far = ~near[sel]
    first_far = np.full(m, np.iinfo(np.int64).max)
    np.minimum.at(first_far, sid[far], np.flatnonzero(far) - offsets[sid[far]])
    pos = np.arange(len(sel)) - offsets[sid]
    src = r.offsets[todo][sid] + (pos + first_far[sid]) % counts[todo][sid]
    return Ragged(r.x[src], r.y[src], offsets), near[src]


def _arcs_for_runs(r: Ragged, near: np.ndarray, radius: np.ndarray,
                   step: np.ndarray) -> Ragged:
    """Rings ``r`` (each starting away from the limb) with every run of ``near``
    vertices replaced by an arc of the circle ``radius`` (per ring), from the position
    angle of the run's first vertex to that of its last (sweeping as the run does),
    arc vertices at most ``step`` apart."""
    x, y, offsets = r
    m = len(r)
    ring = ragged_ids(offsets)
    prev_near = np.r_[False, near[:-1]]
    prev_near[offsets[:-1]] = False
    start = near & ~prev_near
    run = np.cumsum(start) - 1  # run label of each near vertex
    th = np.arctan2(y, x)
    dth = np.r_[0.0, np.diff(th)]
    dth = (dth + np.pi) % (2 * np.pi) - np.pi
    dth[start | ~near] = 0.0
    sweep = np.bincount(run[near], weights=dth[near], minlength=int(start.sum()))
    th0 = th[start]
    rad = radius[ring[start]]   # per run
    k = np.maximum(np.ceil(np.abs(sweep) * rad / step[ring[start]]).astype(np.int64), 1)
    # output count per vertex: far → 1, run start → k + 1 arc vertices, rest of run → 0
    emit = np.where(near, 0, 1)
    emit[start] = k + 1
    owner = np.repeat(np.arange(len(x)), emit)
    ox = x[owner]
    oy = y[owner]
    is_arc = near[owner]
    if is_arc.any():
        arc_run = run[owner[is_arc]]
        first = np.repeat(np.cumsum(k + 1) - (k + 1), k + 1)
        j = np.arange(len(arc_run)) - first
        t = th0[arc_run] + sweep[arc_run] * j / k[arc_run]
        ox[is_arc] = rad[arc_run] * np.cos(t)
        oy[is_arc] = rad[arc_run] * np.sin(t)
    new_offsets = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(ring, weights=emit, minlength=m).astype(np.int64),
              out=new_offsets[1:])
    return Ragged(ox, oy, new_offsets)


def _take(r: Ragged, items: np.ndarray):
    """(x, y, offsets) of items ``items`` (ascending) of ``r``."""
    counts = r.counts[items]
    off = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    sel = np.flatnonzero(_member(ragged_ids(r.offsets), items, len(r)))
    return r.x[sel], r.y[sel], off


def cut_staircases(r: Ragged, fixed=None, cut: float = 0.5):
    """Cut the corners of pixel staircases (within ``cut``/√2 px), then merge collinear runs.

    A pixel-edge outline has a vertex at every corner of its staircases.  Every
    corner whose turn differs from a neighbour's (a staircase corner, not the
    corner of a rectangle, so a one-pixel square stays a square) is replaced by
    the two points ``min(cut, edge/2)`` along its edges; where consecutive cut
    points coincide (unit steps) one is kept, and points on a straight line
    through their neighbours are dropped — a 45° staircase becomes one straight
    edge through the middles of its steps.  Every point of the new outline is
    within ``cut/√2`` (0.35 px) of the pixel outline; a convex corner loses
    ``cut²/2`` px², a concave one gains as much, so staircases keep their area.

    The cut triangles lie inside the quarter pixels at their corners, which no
    other edge of a pixel outline enters, so the ring stays simple; corners in
    ``fixed`` (the bridge points at pinches, not on the pixel grid) are kept.

    Parameters
    ----------
    r : Ragged
        Pixel-edge outlines (pixel units).
    fixed : numpy.ndarray of bool, optional
        Per vertex: keep as is.
    cut : float
        Distance (px) along each edge of a cut corner.

    Returns
    -------
    Ragged
    """
    if len(r.x) == 0:
        return r
    fix = np.zeros(len(r.x), dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    X, Y, off = kernels.staircase_cut(np.ascontiguousarray(r.x, dtype=float),
                                      np.ascontiguousarray(r.y, dtype=float),
                                      np.ascontiguousarray(r.offsets, dtype=np.int64),
                                      np.ascontiguousarray(fix), float(cut))
    return Ragged(X, Y, off)


def disk_edge_length(x, y, rsun, tol, floor, ceil):
    """Longest straight edge in the helioprojective plane whose great circle stays within ``tol``.

    A straight edge of length ``L`` at distance ``ρ`` from the disk centre and
    the great circle through its ends differ (projected back onto the image) by
    about ``L² ρ / (8 R² (1 − ρ²/R²))``; twice that, which bounds the worst
    direction measured numerically (orthographic view), is kept within ``tol``.

    Parameters
    ----------
    x, y : numpy.ndarray
        Vertex positions relative to the disk centre (same unit as ``rsun``).
    rsun, tol, floor, ceil : array_like
        Per vertex: disk radius, tolerance, and bounds of the result.

    Returns
    -------
    numpy.ndarray
        Edge length allowed for the edge starting at each vertex (the farther of
        its two ends from the centre is used by the caller).
    """
    rho = np.minimum(np.hypot(x, y) / rsun, 0.999999)
    c = 2 * rho / (8 * rsun * (1 - rho**2))
    with np.errstate(divide="ignore"):
        length = np.sqrt(tol / c)
    return np.clip(length, floor, ceil)
