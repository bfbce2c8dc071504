"""Coverage as MOCs (IVOA MOC 2.0, with mocpy): where a service's polygons lie, and when
its granules were observed.

Spatial coverage
    :class:`PolygonUnion` builds the HEALPix MOC of the union of many ``s_region``
    polygons (STC-S), exactly — the cells of order ``order`` that any polygon touches —
    in bounded memory, batch by batch. mocpy's polygon coverage costs ≈ 2.5 ms per
    60-vertex active region at order 9 (``benchmarks/bench_moc.py``), so a polygon is
    first tested against the union so far, and skipped when it lies inside: when its
    bounding cap is farther from every cell of order 6 not wholly inside the union than
    that cell's radius (a look-up in a KD-tree of those cells' centres, no coverage
    computed: 94 % of hfc1ar's polygons once the union has grown), or, closer to the
    union's edge, when the cap's centre is in the union and the cap is as far from
    every fine cell just outside it (its border, a KD-tree too: 184 000 bench regions
    skipped 152 119 → 156 395, the coverage process 7.4 → 6.5 s, the same MOC). Then
    its fine cells are inside the union too. The union of a million overlapping regions
    thus computes the fine coverage of a few percent of them.

    The polygons left are not covered one by one either: mocpy's cost grows with each
    outline's length in cells (≈ 2.5 ms for a 60-vertex region at order 9), and
    overlapping regions share most of their area. They are projected on the gnomonic
    plane of the cube face nearest them, where great-circle edges are straight lines, so
    shapely's planar union of them is their exact union on the sphere; mocpy then covers
    each piece of that union (an outer ring, less the cells wholly inside its holes:
    ``from_polygons(..., complement=True)`` of a hole covers the cells touching its
    outside), cut into parts of at most 150 vertices (:func:`_split`: mocpy's cost grows
    as vertices times outline). A cell touches the union exactly when it touches one of
    the polygons, so the MOC is the same (184 000 hfc1ar regions: identical ranges), at a third of the
    cost. A polygon not wholly within 78° of its face centre, one shapely finds invalid
    or of no area, and any face whose union mocpy or GEOS refuses, are covered one by
    one as before.

    **Body frames.** EPN-TAP's ``body`` frame gives longitude/latitude on the target
    (hfc1ar: Carrington longitude/latitude on the Sun). The MOC of such polygons is a MOC
    *of the sphere whose coordinates are the Carrington ones*: mocpy (and MOC 2.0,
    whose only space frame is ``COORDSYS='C'``) read them as if they were ICRS, so the
    FITS file carries ``BODY``/``BODYFRAM`` keywords saying what they are. It is not a
    sky coverage: it is never published as DaCHS's (ICRS) spatial coverage.

Time coverage
    :func:`time_moc` builds the T-MOC of ``[time_min, time_max]`` intervals (EPN-TAP's
    UTC Julian Dates). MOC 2.0 counts time in TCB microseconds since JD 0; UTC → TCB is
    computed here with ERFA's leap seconds plus the secular TT → TCB rate (the periodic
    TDB − TT term, < 2 ms, is left out), ≈ 100× faster than astropy's TCB conversion,
    which matters at a million intervals (0.3 s instead of 20 s).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from .. import stcs
from .sphere import lonlat, unit_vectors

#: HEALPix order of the spatial MOC by default (≈ 0.11° cells) and of the cap test's
#: cells. (A mocpy coverage of each polygon left at order 6, kept when inside the union,
#: cost more than it saved once the union's pieces are split: 184 000 regions 19.8 →
#: 18.3 s, the same MOC; at order 3 it skipped nothing more than the cap test.)
ORDER = 9
CAP_ORDER = 6
#: A piece of a face's union is covered in parts of at most this many vertices: mocpy's
#: cost grows with the vertex count times the outline's length in cells.
PIECE_VERTICES = 150
#: T-MOC order by default: 2**(61 - 35) µs ≈ 67 s cells.
TIME_ORDER = 35
#: TT → TCB rate (IAU 2006 Resolution B3, L_B) and its epoch (1977-01-01T00:00:32.184 TT).
_L_B = 1.550519768e-8
_T0_JD = 2443144.5003725
_US_PER_DAY = 86400e6


def _mocpy():
    from mocpy import MOC, TimeMOC
    return MOC, TimeMOC


class MocpyRefused(ValueError):
    """mocpy could not cover a polygon: it raised, or its Rust code panicked."""


def from_polygons(arr: np.ndarray, order: int, complement: bool = False) -> list:
    """``MOC.from_polygons`` (one thread) whose every failure is an :class:`Exception`.

    mocpy's Rust code panics on some ordinary polygons (cdshealpix 0.10's
    ``special_points_finder``: "entered unreachable code", for an edge it finds no
    special point on — e.g. one 1°-wide quadrilateral at latitude 42°), and pyo3 raises
    a panic as ``PanicException``, a ``BaseException``: no ``except Exception`` catches
    it, so one such polygon stopped the whole harvest. It becomes a
    :class:`MocpyRefused`, which the callers' fallbacks handle."""
    MOC, _ = _mocpy()
    try:
        return MOC.from_polygons(np.ascontiguousarray(arr, dtype=float), complement=complement,
                                 max_depth=order, n_threads=1)
    except Exception as exc:
        raise MocpyRefused(str(exc)) from exc
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise                       # KeyboardInterrupt, SystemExit, ...
        raise MocpyRefused(f"mocpy panicked: {exc}") from exc


def _bisected(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The same polygon with a vertex added at the middle of each great-circle edge (a
    ``2 × 2n`` array as ``from_polygons`` takes it): the same cells, another path
    through mocpy's edge computations — which is what its panics depend on."""
    v = unit_vectors(lon, lat)
    both = np.empty((2 * len(v), 3))
    both[0::2], both[1::2] = v, v + np.roll(v, -1, axis=0)   # the edge's middle
    return np.vstack(lonlat(both))


# -- spatial ----------------------------------------------------------------------------

def _vertex_groups(poly: "stcs.Polygons", sel: np.ndarray):
    """Polygons ``sel`` grouped by vertex count, as mocpy's ``from_polygons`` takes them
    (a ``2k × n`` array: lon row then lat row of each of ``k`` polygons)."""
    counts = poly.counts[sel]
    starts = poly.offsets[:-1][sel]
    for n in np.unique(counts):
        j = np.flatnonzero(counts == n)
        pos = starts[j][:, None] + np.arange(n)[None, :]
        arr = np.empty((2 * len(j), n))
        arr[0::2] = np.mod(poly.lon[pos], 360.0)
        arr[1::2] = poly.lat[pos]
        yield sel[j], arr


def polygon_mocs(poly: "stcs.Polygons", sel: np.ndarray, order: int) -> dict:
    """The MOC of each polygon ``sel`` of ``poly`` at ``order`` (index → MOC).

    A group mocpy refuses is retried polygon by polygon; a polygon it still refuses is
    left out (and named in the returned dict's ``"refused"`` list)."""
    out: dict = {"refused": []}
    for ids, arr in _vertex_groups(poly, sel):
        try:
            mocs = from_polygons(arr, order)
        except MocpyRefused:    # find the polygon mocpy refuses
            mocs = [_one_polygon(arr[2 * k:2 * k + 2], order) for k in range(len(ids))]
        for i, m in zip(ids, mocs):
            if m is None:
                out["refused"].append(int(i))
            else:
                out[int(i)] = m
    return out


def _one_polygon(arr: np.ndarray, order: int):
    """The MOC of one polygon (``2 × n``), its edges bisected when mocpy fails on it as
    given; None when it fails on both."""
    for attempt in (arr, None):
        try:
            return from_polygons(attempt if attempt is not None
                                 else _bisected(arr[0], arr[1]), order)[0]
        except MocpyRefused:
            continue
    return None


#: Cube-face centres: the projection planes of :func:`union_cover`.
_FACES = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
#: A polygon joins its face's union when every vertex is within 78° of the face centre
#: (cos 78° ≈ 0.2): the union then stays well inside the hemisphere, where mocpy's
#: "smallest side" is the inside and the projection is well conditioned.
_FACE_MIN_COS = 0.2


def _vertices(poly: "stcs.Polygons", sel: np.ndarray, xyz=None):
    """Unit vectors of the vertices of polygons ``sel``, which of them each belongs to
    (0 … len(sel) - 1) and where each polygon starts (``xyz``: the unit vectors of all
    of ``poly``'s vertices, when known)."""
    counts = poly.counts[sel]
    starts = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)
    idx = np.repeat(poly.offsets[:-1][sel] - starts, counts) + np.arange(counts.sum())
    v = xyz[idx] if xyz is not None else unit_vectors(poly.lon[idx], poly.lat[idx])
    return v, np.repeat(np.arange(len(sel)), counts), starts


def _caps(poly: "stcs.Polygons", sel: np.ndarray, xyz=None):
    """A cap holding each polygon ``sel``: its vertices' mean direction and the largest
    angle (degrees) from it to a vertex (infinite from 90°: a cap that large is not
    convex, its great-circle edges may leave it)."""
    from .kernels import polygon_caps     # numba: only the harvest's MOC process
    sel = np.asarray(sel, dtype=np.int64)
    if xyz is None:
        v, _owner, starts = _vertices(poly, sel)
    else:
        v, starts = xyz, poly.offsets[:-1][sel]
    centre, cosr = np.empty((len(sel), 3)), np.empty(len(sel))
    polygon_caps(np.ascontiguousarray(v, dtype=float), np.ascontiguousarray(starts, np.int64),
                 np.ascontiguousarray(poly.counts[sel], np.int64), centre, cosr)
    radius = np.rad2deg(np.arccos(np.clip(cosr, -1.0, 1.0)))
    return centre, np.where(cosr > 1e-6, radius, np.inf)


_CELL_RADIUS: dict = {}
_CELL_CENTRES: dict = {}


def cell_centres(order: int) -> np.ndarray:
    """Unit vectors of the centres of every HEALPix cell of ``order`` (nested)."""
    if order not in _CELL_CENTRES:
        from astropy_healpix import HEALPix
        lon, lat = HEALPix(nside=2 ** order, order="nested").healpix_to_lonlat(
            np.arange(12 * 4 ** order))
        _CELL_CENTRES[order] = unit_vectors(lon.deg, lat.deg)
    return _CELL_CENTRES[order]


def cell_radius(order: int) -> float:
    """An upper bound of the angle (degrees) from a HEALPix cell's centre to any point of
    the cell at ``order``.

    Up to order 6 it is measured on the cells of one polar and one equatorial base cell
    (the ten others are their rotations and mirror images), along edges sampled 16
    times, plus 1 % for the edges between samples (order 3: 7.55°, order 6: 0.96°).
    Finer cells are bounded by the order-6 figure halved per order and enlarged by 25 %
    (the measured product radius × 2**order grows by 2 % from order 3 to 6)."""
    if order not in _CELL_RADIUS:
        k = min(int(order), 6)
        from astropy_healpix import HEALPix
        hp = HEALPix(nside=2 ** k, order="nested")
        n = 4 ** k
        cells = np.r_[np.arange(n), np.arange(4 * n, 5 * n)]
        lon, lat = hp.healpix_to_lonlat(cells)
        centre = unit_vectors(lon.deg, lat.deg)
        blon, blat = hp.boundaries_lonlat(cells, step=16)
        edge = unit_vectors(blon.deg, blat.deg)
        cosr = np.einsum("ijk,ik->ij", edge, centre).min()
        r = 1.01 * float(np.rad2deg(np.arccos(np.clip(cosr, -1, 1))))
        _CELL_RADIUS[order] = r if k == order else 1.25 * r / 2 ** (order - k)
    return _CELL_RADIUS[order]


def _face_frame(face: int):
    c = _FACES[face]
    a = np.array([0.0, 0, 1]) if abs(c[2]) < 0.5 else np.array([1.0, 0, 0])
    e1 = np.cross(a, c)
    return c, e1, np.cross(c, e1)


def _ring_cells(xy: np.ndarray, frame, order: int, complement: bool = False):
    """mocpy's cells of one ring given in a face's gnomonic plane."""
    c, e1, e2 = frame
    p = c[None, :] + xy[:, :1] * e1[None, :] + xy[:, 1:2] * e2[None, :]
    return from_polygons(np.vstack(lonlat(p)), order, complement)[0]


def _split(piece, most: int = PIECE_VERTICES) -> list:
    """``piece`` (a polygon of a face's planar union) cut into polygons of at most
    ``most`` vertices, halving its bounding box across its longer side again and again.

    mocpy's cost for one polygon grows as its vertex count times its outline's length
    in cells (a smooth 20°-radius circle at order 9: 13 ms with 60 vertices, 530 ms
    with 6 000), and a union of a thousand regions has pieces of thousands of
    vertices; halving adds a straight cut (a great-circle arc on the sphere) but halves
    both factors. The parts' cells are the piece's: a cell touching the piece touches
    one of the closed halves."""
    import shapely
    if shapely.get_num_coordinates(piece) <= most:
        return [piece]
    x0, y0, x1, y1 = piece.bounds
    pad = 1.0 + (x1 - x0) + (y1 - y0)
    if x1 - x0 >= y1 - y0:
        cut = 0.5 * (x0 + x1)
        halves = [shapely.box(x0 - pad, y0 - pad, cut, y1 + pad),
                  shapely.box(cut, y0 - pad, x1 + pad, y1 + pad)]
    else:
        cut = 0.5 * (y0 + y1)
        halves = [shapely.box(x0 - pad, y0 - pad, x1 + pad, cut),
                  shapely.box(x0 - pad, cut, x1 + pad, y1 + pad)]
    out = []
    for half in shapely.intersection(piece, halves):
        for g in shapely.get_parts(half):
            # a cut along an edge can leave a line or a point: no area, nothing to cover
            # that the polygon beside it does not
            if shapely.get_type_id(g) == 3 and g.area > 0:
                out += _split(g, most)
    return out


def _piece_cells(piece, frame, order: int):
    """Cells touching one polygon (with holes) of a face's union, covered in parts of at
    most :data:`PIECE_VERTICES` vertices (:func:`_split`); when mocpy fails on a part,
    the piece whole."""
    parts = _split(piece)
    if len(parts) > 1:
        try:
            mocs = [_holed_cells(g, frame, order) for g in parts]
            return mocs[0].union(*mocs[1:])
        except MocpyRefused:
            pass
    return _holed_cells(piece, frame, order)


def _holed_cells(piece, frame, order: int):
    """Cells touching one polygon with holes given in a face's gnomonic plane."""
    moc = _ring_cells(np.asarray(piece.exterior.coords)[:-1], frame, order)
    for hole in piece.interiors:
        # cells touching the hole's outside: those wholly inside it are left out
        moc = moc.intersection(_ring_cells(np.asarray(hole.coords)[:-1], frame, order,
                                           complement=True))
    return moc


def union_cover(poly: "stcs.Polygons", sel: np.ndarray, order: int, xyz=None):
    """MOCs whose union is the cells of ``order`` touching polygons ``sel`` of ``poly``
    (the union of :func:`polygon_mocs`, computed face by face from the polygons' planar
    union: module docstring), and the polygons mocpy refuses (left out)."""
    import shapely
    sel = np.asarray(sel, dtype=np.int64)
    if len(sel) < 2:
        one = polygon_mocs(poly, sel, order)
        refused = one.pop("refused")
        return list(one.values()), refused
    v, owner, starts = _vertices(poly, sel, xyz)
    face = np.argmax(np.add.reduceat(v, starts, axis=0) @ _FACES.T, axis=1)
    cosd = np.einsum("ij,ij->i", v, _FACES[face[owner]])
    alone = np.minimum.reduceat(cosd, starts) <= _FACE_MIN_COS
    mocs: list = []
    for f in np.unique(face[~alone]):
        members = np.flatnonzero((face == f) & ~alone)
        frame = _face_frame(int(f))
        at = np.isin(owner, members)
        d = cosd[at]
        xy = np.column_stack([v[at] @ frame[1] / d, v[at] @ frame[2] / d])
        geoms = shapely.polygons(shapely.linearrings(
            xy, indices=np.searchsorted(members, owner[at])))
        good = shapely.is_valid(geoms) & (shapely.area(geoms) > 0)
        alone[members[~good]] = True
        try:
            merged = shapely.union_all(geoms[good])
            mocs += [_piece_cells(g, frame, order)
                     for g in shapely.get_parts(merged) if not g.is_empty]
        except Exception:  # noqa: BLE001 — GEOS or mocpy (MocpyRefused) refused: one by one
            alone[members] = True
    one = polygon_mocs(poly, sel[alone], order)
    refused = one.pop("refused")
    return mocs + list(one.values()), refused


def _interior(moc, order: int, full) -> np.ndarray:
    """Sorted cells of ``order`` lying wholly inside ``moc``."""
    outside = moc.complement().degrade_to_order(order)
    return np.sort(full.difference(outside).flatten())


class PolygonUnion:
    """The exact MOC of the union of polygons added batch by batch.

    Parameters
    ----------
    order : int
        HEALPix order of the MOC (cells of the union at that order; ≥ 9 asked for
        hfc1ar's ≈ 0.1°-scale outlines).
    start : mocpy.MOC, optional
        A union computed before (e.g. the import area's previous coverage).
    cap_order : int or None
        Order of the cells of the skipping test (module docstring); None, or not below
        ``order``: no skipping.
    """

    def __init__(self, order: int = ORDER, start=None, cap_order: int | None = CAP_ORDER):
        MOC, _ = _mocpy()
        self.order = int(order)
        self.cap_order = cap_order if cap_order is not None and cap_order < self.order \
            else None
        self.moc = start if start is not None else MOC.new_empty(self.order)
        self.added = self.skipped = self.refused = 0
        # the KD-tree of the cap_order cells not wholly inside the union, as (tree,) —
        # (None,) when the union is the whole sphere —, or None until it is built;
        # the same, as (tree,), of the cells of ``order`` just outside the union (its
        # border)
        self._tree = self._border = None

    def add(self, s_region: Iterable) -> None:
        """Add STC-S polygons (None, NaN and what does not parse are ignored; a polygon
        with a vertex that is not a number or a latitude beyond ±90° is refused: mocpy
        would abort the process on it)."""
        poly = stcs.parse(list(s_region))
        usable = ~poly.parse_error & (poly.counts >= 3)
        off = ~(np.isfinite(poly.lon) & np.isfinite(poly.lat) & (np.abs(poly.lat) <= 90))
        if off.any():
            ids = np.repeat(np.arange(len(poly)), poly.counts)
            bad = usable & (np.bincount(ids[off], minlength=len(poly)) > 0)
            self.refused += int(bad.sum())
            usable &= ~bad
        sel = np.flatnonzero(usable)
        if not len(sel):
            return
        xyz = unit_vectors(poly.lon, poly.lat)
        if self.cap_order is not None and not self.moc.empty():
            sel = sel[~self._clear(poly, sel, xyz)]
        mocs, refused = union_cover(poly, sel, self.order, xyz)
        if mocs:
            self.moc = self.moc.union(*mocs)
            self._tree = self._border = None
        self.added += len(sel) - len(refused)
        self.refused += len(refused)
        self.skipped += int(usable.sum()) - len(sel)

    def extend(self, moc, n_polygons: int = 0) -> None:
        """Add the MOC of polygons computed elsewhere (``n_polygons`` of them, counted
        as added)."""
        self.moc = self.moc.union(moc)
        self._tree = self._border = None
        self.added += int(n_polygons)

    def _clear(self, poly, sel: np.ndarray, xyz=None) -> np.ndarray:
        """Whether each polygon ``sel`` is far inside the union, by tests costing no
        mocpy coverage. First: its cap (:func:`_caps`) is farther from every cell of
        ``cap_order`` not wholly inside the union than that cell's radius
        (:func:`cell_radius`), with a margin of a fine cell. Then, for the others:
        the cap's centre lies in the union, and the cap is as far from every cell of
        ``order`` just outside it (its border, which any path from inside to outside
        crosses first). Either way, every fine cell touching the polygon lies in the
        union."""
        c = self.cap_order
        if self._tree is None:
            from scipy.spatial import cKDTree
            MOC, _ = _mocpy()
            out = np.ones(12 * 4 ** c, bool)
            out[_interior(self.moc, c, MOC.from_string(f"{c}/0-{12 * 4 ** c - 1}"))] = False
            self._tree = (cKDTree(cell_centres(c)[out]) if out.any() else None,)
        tree = self._tree[0]
        if not len(sel):
            return np.zeros(0, bool)
        if tree is None:          # the union is the whole sphere
            return np.ones(len(sel), bool)
        centre, radius = _caps(poly, sel, xyz)
        margin = radius + 2 * cell_radius(self.order)
        clear = _gap(tree, centre) - cell_radius(c) > margin
        rest = np.flatnonzero(~clear & np.isfinite(radius))
        if len(rest):
            clear[rest] = self._clear_of_border(centre[rest], margin[rest])
        return clear

    def _clear_of_border(self, centre: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """:meth:`_clear`'s second test, for caps of unit-vector ``centre`` plus
        ``margin`` (deg)."""
        import astropy.units as u
        depth = int(self.moc.max_order)     # the border's cells are of this depth
        if self._border is None:
            from astropy_healpix import HEALPix
            from scipy.spatial import cKDTree
            border = self.moc.extended().difference(self.moc).flatten()
            lon, lat = HEALPix(nside=2 ** depth, order="nested").healpix_to_lonlat(
                np.asarray(border, dtype=np.int64))
            self._border = (cKDTree(unit_vectors(lon.deg, lat.deg))
                            if len(border) else None,)
        if self._border[0] is None:     # no border: the union is empty (or everything)
            return np.zeros(len(centre), bool)
        lon, lat = lonlat(centre)
        inside = np.asarray(self.moc.contains_lonlat(lon * u.deg, lat * u.deg), bool)
        return inside & (_gap(self._border[0], centre) - cell_radius(depth) > margin)


def _gap(tree, centre: np.ndarray) -> np.ndarray:
    """Angle (deg) from each unit vector ``centre`` to the nearest point of ``tree``."""
    chord, _ = tree.query(centre)
    return np.rad2deg(2 * np.arcsin(np.minimum(chord / 2, 1.0)))


def polygon_moc(s_region: Iterable, order: int = ORDER, batch: int = 5000):
    """The MOC of the union of STC-S polygons (see :class:`PolygonUnion`)."""
    union = PolygonUnion(order)
    buf = []
    for s in s_region:
        buf.append(s)
        if len(buf) >= batch:
            union.add(buf)
            buf = []
    if buf:
        union.add(buf)
    return union.moc


# -- time -------------------------------------------------------------------------------

def tcb_microseconds(jd_utc) -> np.ndarray:
    """UTC Julian Dates as TCB microseconds since JD 0 (MOC 2.0's time axis), within
    2 ms of astropy's ``Time(jd, scale="utc").tcb`` (module docstring).

    Each date is converted on its own, so dates many rows share (an image's regions:
    hfc1ar has a few distinct dates per hundred rows) are converted once each."""
    import erfa
    jd = np.asarray(jd_utc, dtype=float)
    if jd.size > 1000:
        distinct, inverse = np.unique(jd, return_inverse=True)
        if 2 * len(distinct) < jd.size:
            return tcb_microseconds(distinct)[inverse.reshape(jd.shape)]
    day = np.floor(jd)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # ERFA's "dubious year" past the last leap second
        a1, a2 = erfa.utctai(day, jd - day)
    tt = (a1 - _T0_JD) + a2 + 32.184 / 86400.0      # days since T0, keeps precision
    tcb = tt + _L_B * tt
    return np.round((tcb + _T0_JD) * _US_PER_DAY).astype(np.uint64)


def time_moc(time_min, time_max=None, order: int = TIME_ORDER):
    """The T-MOC of the intervals ``[time_min, time_max]`` (UTC Julian Dates; a missing
    ``time_max`` is ``time_min``, a missing ``time_min`` drops the interval). An instant
    covers the one cell of ``order`` holding it."""
    _, TimeMOC = _mocpy()
    lo = np.asarray(time_min, dtype=float)
    hi = lo if time_max is None else np.asarray(time_max, dtype=float)
    hi = np.where(np.isnan(hi), lo, hi)
    keep = ~np.isnan(lo)
    lo, hi = np.minimum(lo[keep], hi[keep]), np.maximum(lo[keep], hi[keep])
    if not len(lo):
        return TimeMOC.new_empty(order)
    ranges = np.column_stack([tcb_microseconds(lo), tcb_microseconds(hi) + np.uint64(1)])
    return TimeMOC.from_depth61_ranges(order, ranges)


def utc_jd(tcb_us) -> np.ndarray:
    """TCB microseconds since JD 0 as UTC Julian Dates: the inverse of
    :func:`tcb_microseconds` (ERFA's leap seconds, the secular rate only), without
    astropy's TDB series that costs 0.1 s per call on a T-MOC's ranges."""
    import erfa
    us = np.asarray(tcb_us, dtype=np.uint64)
    t0_us = np.uint64(round(_T0_JD * _US_PER_DAY))
    # days since T0 in TCB, from an exact integer difference (keeps the microseconds)
    tcb = (us.astype(np.int64) - np.int64(t0_us)).astype(float) / _US_PER_DAY
    tt = tcb / (1.0 + _L_B)
    tai = tt - 32.184 / 86400.0
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u1, u2 = erfa.taiutc(np.full(tai.shape, _T0_JD), tai)
    return u1 + u2


def time_ranges_jd(tmoc, full: bool = False) -> np.ndarray:
    """``(n, 2)`` UTC Julian Dates of the T-MOC's ranges (empty when it is); with
    ``full``, by astropy's TCB → UTC (the periodic TDB term included: 0.1 s a call,
    for the few intervals of a registry record)."""
    if tmoc.empty():
        return np.zeros((0, 2))
    if full:
        return np.asarray(tmoc.to_time_ranges().utc.jd, dtype=float).reshape(-1, 2)
    return utc_jd(tmoc.to_depth61_ranges).reshape(-1, 2)


def n_ranges(tmoc) -> int:
    """How many ranges a T-MOC holds."""
    return 0 if tmoc.empty() else len(tmoc.to_depth61_ranges)


def temporal_intervals(tmoc, max_intervals: int = 50) -> list[tuple[float, float]]:
    """At most ``max_intervals`` MJD (UTC) intervals covering the T-MOC: it is degraded
    order by order (each halves the time resolution, merging close intervals) until
    few enough remain — for a registry record, not for analysis."""
    m = tmoc
    while not m.empty() and n_ranges(m) > max_intervals and m.max_order > 0:
        m = m.degrade_to_order(m.max_order - 1)
    return [(float(a) - 2400000.5, float(b) - 2400000.5)
            for a, b in time_ranges_jd(m, full=True)]


# -- files ------------------------------------------------------------------------------

def body_keywords(frame: str, description: str | None, origin: str | None) -> dict:
    """FITS keywords saying what a body-frame MOC's coordinates are."""
    if frame != "body":
        return {}
    return {"BODY": str(origin or "unknown")[:68],
            "BODYFRAM": f"{description or 'body-fixed'} longitude/latitude"[:68],
            "BODYNOTE": "the sphere of the body's coordinates, not the sky (ICRS)"}


def write_moc(moc, path: Path, keywords: Mapping[str, str] | None = None) -> Path:
    """Write a MOC as MOC 2.0 FITS (extra header ``keywords``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    moc.save(str(path), format="fits", overwrite=True,
             fits_keywords=dict(keywords or {}) or None)
    return path


def read_moc(path: Path):
    """A MOC written by :func:`write_moc` (a space MOC or a T-MOC, from ``MOCDIM``)."""
    from astropy.io import fits
    MOC, TimeMOC = _mocpy()
    with fits.open(path) as h:
        dim = str(h[1].header.get("MOCDIM", "SPACE")).upper()
    return (TimeMOC if dim == "TIME" else MOC).from_fits(str(path))


def read_moc_at(path: Path, order: int):
    """The space MOC at ``path`` when it exists and is of ``order``; else None."""
    path = Path(path)
    if not path.is_file():
        return None
    moc = read_moc(path)
    return moc if moc.max_order == int(order) else None


def moc_keywords(path: Path) -> dict:
    """The header keywords of a MOC FITS file."""
    from astropy.io import fits
    with fits.open(path) as h:
        return {k: v for k, v in h[1].header.items() if k not in ("COMMENT", "HISTORY")}


def spatial_summary(moc) -> dict:
    """Order, sky fraction (of the sphere) and cell count of a spatial MOC."""
    return {"order": int(moc.max_order), "sphere_fraction": float(moc.sky_fraction),
            "cells": int(len(moc.flatten())) if not moc.empty() else 0}


def time_summary(tmoc, exact: bool = True) -> dict:
    """First and last covered instants (ISO UTC), ranges, covered days, the largest gap
    (by astropy's TCB → UTC: the figures the manifest keeps).

    ``exact=False`` (what the QA report shows): every range by the secular TCB rate
    (:func:`utc_jd`, within 2 ms of astropy's; astropy's periodic TDB term costs
    ≈ 5 µs per instant, 0.2–0.6 s on a year of hfc1ar's ranges), and the instants
    shown — first, last, the largest gap's ends — by astropy, which converts each
    instant on its own: the same texts as the manifest's; covered and gap days
    within a Julian Date's float resolution (5e-10 day) per range of them."""
    from ..times import iso_ms, jd_to_datetime

    def jd_to_iso(v):
        return str(iso_ms(jd_to_datetime([v]))[0])
    r = time_ranges_jd(tmoc, full=exact)
    out = {"order": int(tmoc.max_order), "ranges": int(len(r))}
    if len(r):
        gaps = r[1:, 0] - r[:-1, 1]
        k = int(np.argmax(gaps)) if len(gaps) else 0
        if not exact:   # the instants shown, the exact way
            from mocpy.tmoc.tmoc import microseconds_to_times
            us = tmoc.to_depth61_ranges
            at = us[[0, k, k + 1, -1] if len(gaps) else [0, 0, 0, -1], [0, 1, 0, 1]]
            r0, gap0, gap1, r1 = np.asarray(microseconds_to_times(at).utc.jd, float)
        else:
            r0, r1 = r[0, 0], r[-1, 1]
            gap0, gap1 = (r[k, 1], r[k + 1, 0]) if len(gaps) else (0.0, 0.0)
        out.update({"first": jd_to_iso(r0), "last": jd_to_iso(r1),
                    "covered_days": float((r[:, 1] - r[:, 0]).sum()),
                    "largest_gap_days": float(gaps.max()) if len(gaps) else 0.0})
        if len(gaps):
            out["largest_gap"] = [jd_to_iso(gap0), jd_to_iso(gap1)]
    return out


__all__ = ["ORDER", "TIME_ORDER", "PolygonUnion", "polygon_moc", "polygon_mocs",
           "union_cover", "time_moc", "tcb_microseconds", "utc_jd", "n_ranges", "time_ranges_jd", "temporal_intervals",
           "write_moc", "read_moc", "moc_keywords", "body_keywords", "spatial_summary",
           "time_summary"]
