"""Synthetic solar regions with known answers: render on an image, encode as HFC chain codes.

This module is the *truth side* of the known-answer tests and of the embedded sample: it
draws a region on the sphere, renders it into the pixel grid of an image seen by a given
observer with sunpy's ``SkyCoord`` (never with the geometry code under test) and encodes
the rendered mask as an HFC chain code, the way SMART does.

Conventions (shared by the sample database, detection code ``SYNTH``)
--------------------------------------------------------------------
Pixels
    0-based integer indices; a pixel *is* its centre point ``(x, y)``; ``x`` grows to the
    right (solar west for an unrotated image), ``y`` grows upward (solar north). A mask is
    a boolean array indexed ``mask[y, x]`` of shape ``(NAXIS2, NAXIS1)`` (row 0 = bottom).
Pixel → helioprojective
    ``Tx = CDELT1 * (x - CENTER_X)``, ``Ty = CDELT2 * (y - CENTER_Y)`` in arcsec, where
    CENTER_X/CENTER_Y are the disk centre in the same 0-based pixel coordinates (the
    OBSERVATIONS columns). This is HFC's ``arcsec = CDELT × (pix − CENTER)``; for the
    ``SYNTH`` code CENTER is the observation's own CENTER_X/CENTER_Y (unlike SMART).
Observer
    Distance from the apparent solar radius, ``d = R☉ / sin(R_SUN × CDELT)`` with
    R☉ = ``sunpy.sun.constants.radius`` (695 700 km); direction = Earth's at the
    observation time (heliographic Stonyhurst longitude and latitude of
    ``sunpy.coordinates.get_earth``). :func:`observer_at` builds it.
Regions
    A region is a polygon of Carrington longitudes/latitudes (deg) on the solar surface
    (radius R☉), observer = the image's observer (sunpy's ``HeliographicCarrington`` with
    that observer, i.e. with its light-travel-time convention). Its edges are straight
    lines in the (longitude, latitude) plane after unwrapping longitudes around the first
    vertex (so a region may straddle 0/360; vertices may be given as 358, 2 or -2, 2).
    Optional holes use the same rules.
Rendering
    A pixel is set when the line of sight through its centre meets the visible solar
    surface (front hemisphere as seen by the observer) at a point inside the region.
    :func:`render_region` computes this with ``SkyCoord`` Helioprojective →
    HeliographicCarrington on the pixel centres (off-disk centres give NaN and stay
    unset); it uses HeliographicCarrington → Helioprojective only to find the pixel box
    worth testing.
Chain codes
    :func:`encode_chaincode` traces the outer boundary of the largest 8-connected
    component: a closed chain of boundary pixel centres, counter-clockwise (x right, y up,
    interior on the left), starting on the lowest row's leftmost pixel, one-pixel-wide
    spurs traversed out and back — as SMART's chains in the real HFC records. Digits
    follow the HFC direction table ``0→(−1,0) 1→(−1,−1) 2→(0,−1) 3→(1,−1) 4→(1,0)
    5→(1,1) 6→(0,1) 7→(−1,1)``. Holes do not appear in the chain (outer boundary only).
"""
from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np
import shapely
import shapely.affinity
from astropy.coordinates import SkyCoord
from astropy.time import Time

__all__ = [
    "DIRECTIONS",
    "ImageGeometry",
    "observer_at",
    "render_region",
    "render_regions",
    "region_polygon",
    "mask_from_pixels",
    "largest_component",
    "component_pixels",
    "boundary_pixels",
    "encode_chaincode",
    "decode_chaincode",
    "visible_area_and_centroid",
    "visible_overlap",
]

#: HFC chain-code direction table: digit → (dx, dy), x right, y up.
DIRECTIONS = np.array(
    [(-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1), (0, 1), (-1, 1)], dtype=np.int64
)
_DX = DIRECTIONS[:, 0].tolist()
_DY = DIRECTIONS[:, 1].tolist()

#: Nominal solar radius used for the observer distance and for areas (IAU 2015 B3).
RSUN = 695_700.0 * u.km


def observer_at(obstime, distance: u.Quantity | None = None) -> SkyCoord:
    """Observer in the direction of Earth at ``obstime``, at ``distance`` from the Sun.

    Parameters
    ----------
    obstime : str or `~astropy.time.Time`
        Observation time (UTC).
    distance : `~astropy.units.Quantity`, optional
        Sun–observer distance; Earth's distance when omitted.

    Returns
    -------
    `~astropy.coordinates.SkyCoord`
        In ``HeliographicStonyhurst`` with ``obstime`` set.
    """
    from sunpy.coordinates import HeliographicStonyhurst, get_earth

    t = Time(obstime)
    earth = get_earth(t)
    radius = earth.radius if distance is None else distance.to(u.km)
    return SkyCoord(
        HeliographicStonyhurst(lon=earth.lon, lat=earth.lat, radius=radius, obstime=t)
    )


@dataclass(frozen=True)
class ImageGeometry:
    """Pixel grid of a full-disk image and the observer who took it.

    Attributes
    ----------
    obstime : `~astropy.time.Time`
        Observation time (DATE_OBS, UTC).
    naxis1, naxis2 : int
        Image width (x) and height (y) in pixels.
    center_x, center_y : float
        Disk centre, 0-based pixel coordinates (CENTER_X, CENTER_Y).
    cdelt1, cdelt2 : float
        Plate scale in arcsec per pixel (CDELT1, CDELT2).
    distance : `~astropy.units.Quantity`
        Sun–observer distance; the observer lies in Earth's direction (module docstring).
    """

    obstime: Time
    naxis1: int
    naxis2: int
    center_x: float
    center_y: float
    cdelt1: float
    cdelt2: float
    distance: u.Quantity

    @classmethod
    def from_rsun(cls, obstime, rsun_pix, *, naxis1, naxis2, center_x, center_y,
                  cdelt1, cdelt2=None) -> "ImageGeometry":
        """Geometry whose observer distance follows from the apparent radius R_SUN (pixels)."""
        cdelt2 = cdelt1 if cdelt2 is None else cdelt2
        theta = (rsun_pix * cdelt1 * u.arcsec).to(u.rad)
        distance = (RSUN / np.sin(theta)).to(u.km)
        return cls(Time(obstime), int(naxis1), int(naxis2), float(center_x),
                   float(center_y), float(cdelt1), float(cdelt2), distance)

    @property
    def observer(self) -> SkyCoord:
        """The observer (HeliographicStonyhurst), Earth's direction at ``obstime``."""
        return observer_at(self.obstime, self.distance)

    @property
    def rsun_arcsec(self) -> float:
        """Apparent solar radius in arcsec."""
        return float(np.arcsin((RSUN / self.distance).decompose().value) * 180 / np.pi * 3600)

    @property
    def rsun_pix(self) -> float:
        """Apparent solar radius in pixels (R_SUN), along x."""
        return self.rsun_arcsec / self.cdelt1

    def pix_to_arcsec(self, x, y):
        """Helioprojective (Tx, Ty) in arcsec of 0-based pixel coordinates."""
        return (self.cdelt1 * (np.asarray(x, float) - self.center_x),
                self.cdelt2 * (np.asarray(y, float) - self.center_y))

    def arcsec_to_pix(self, tx, ty):
        """0-based (fractional) pixel coordinates of helioprojective arcsec."""
        return (np.asarray(tx, float) / self.cdelt1 + self.center_x,
                np.asarray(ty, float) / self.cdelt2 + self.center_y)

    # -- frames -----------------------------------------------------------------------
    def frames(self, observer: SkyCoord | None = None):
        """(Helioprojective, HeliographicCarrington) frames of this image's observer."""
        from sunpy.coordinates import HeliographicCarrington, Helioprojective

        obs = self.observer if observer is None else observer
        return (Helioprojective(observer=obs, obstime=self.obstime),
                HeliographicCarrington(observer=obs, obstime=self.obstime))

    def observer_carrington(self, observer: SkyCoord | None = None):
        """Observer's Carrington (lon, lat) in rad and distance in solar radii."""
        obs = self.observer if observer is None else observer
        o = obs.transform_to(self.frames(obs)[1])
        return (float(o.lon.to_value(u.rad)), float(o.lat.to_value(u.rad)),
                float((o.radius / RSUN).decompose().value))

    def pix_to_carrington(self, x, y, observer: SkyCoord | None = None):
        """Carrington (lon, lat) in deg of pixel centres, through SkyCoord; NaN off disk."""
        hpc, hgc = self.frames(observer)
        tx, ty = self.pix_to_arcsec(x, y)
        c = SkyCoord(tx * u.arcsec, ty * u.arcsec, frame=hpc).transform_to(hgc)
        return c.lon.to_value(u.deg), c.lat.to_value(u.deg)

    def carrington_to_pix(self, lon, lat, observer: SkyCoord | None = None):
        """Pixel coordinates and visibility of surface points (Carrington lon/lat, deg).

        Returns
        -------
        x, y : ndarray
            Fractional 0-based pixel coordinates (also for occulted points).
        visible : ndarray of bool
            True where the point is on the hemisphere facing the observer.
        """
        hpc, hgc = self.frames(observer)
        c = SkyCoord(np.asarray(lon, float) * u.deg, np.asarray(lat, float) * u.deg,
                     RSUN, frame=hgc).transform_to(hpc)
        x, y = self.arcsec_to_pix(c.Tx.to_value(u.arcsec), c.Ty.to_value(u.arcsec))
        return x, y, np.asarray(c.frame.is_visible())


# ---------------------------------------------------------------------------------------
# Regions on the sphere
# ---------------------------------------------------------------------------------------
def _unwrap(lon, ref):
    """Longitudes (deg) shifted by multiples of 360 to lie within ±180 of ``ref``."""
    return ref + (np.asarray(lon, float) - ref + 180.0) % 360.0 - 180.0


def region_polygon(lon, lat, holes=()) -> shapely.Polygon:
    """The region as a planar polygon in (unwrapped Carrington lon, lat), deg.

    Consecutive vertices are unwrapped step by step (no edge spans more than 180° of
    longitude), starting from the first vertex's longitude as given.
    """
    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    if lon.shape != lat.shape or lon.ndim != 1 or lon.size < 3:
        raise ValueError("a region needs ≥ 3 (lon, lat) vertices in two 1-D arrays")
    lon = np.rad2deg(np.unwrap(np.deg2rad(lon)))
    if np.ptp(lon) >= 180.0:
        raise ValueError("a region must span less than 180° of longitude (regions holding "
                         "a pole cannot be drawn in the lon/lat plane)")
    ref = lon[0]
    inner = []
    for hlon, hlat in holes:
        h = np.rad2deg(np.unwrap(np.deg2rad(np.asarray(hlon, float))))
        h = h + (_unwrap(h[0], ref) - h[0])
        inner.append(np.column_stack([h, hlat]))
    poly = shapely.Polygon(np.column_stack([lon, lat]), inner)
    if not poly.is_valid:
        raise ValueError(f"region polygon is not simple: {shapely.is_valid_reason(poly)}")
    return poly


def _samples_inside(poly: shapely.Polygon, step: float):
    """Grid points (step deg) inside ``poly`` plus its boundary densified to ``step``."""
    x0, y0, x1, y1 = poly.bounds
    gx = np.arange(x0, x1 + step, step)
    gy = np.arange(y0, y1 + step, step)
    X, Y = np.meshgrid(gx, gy)
    X, Y = X.ravel(), Y.ravel()
    inside = shapely.contains_xy(poly, X, Y)
    ring = shapely.segmentize(poly.exterior, step)
    bx, by = np.asarray(ring.coords).T
    return np.concatenate([X[inside], bx]), np.concatenate([Y[inside], by])


def render_region(lon, lat, geometry: ImageGeometry, *, holes=(),
                  observer: SkyCoord | None = None) -> np.ndarray:
    """Render a Carrington lon/lat region into the image's pixel grid (module conventions).

    Parameters
    ----------
    lon, lat : array_like
        Polygon vertices, Carrington longitude and latitude in deg (≥ 3; edges straight
        in the unwrapped lon/lat plane; the closing vertex may be omitted).
    geometry : ImageGeometry
        The image grid and its observer.
    holes : sequence of (lon, lat) pairs, optional
        Holes inside the region, same conventions.
    observer : `~astropy.coordinates.SkyCoord`, optional
        Precomputed ``geometry.observer`` (saves a call when rendering many regions).

    Returns
    -------
    ndarray of bool, shape (naxis2, naxis1)
        ``mask[y, x]`` set where the pixel centre's line of sight meets the visible
        surface inside the region.
    """
    return render_regions([(lon, lat, holes)], geometry, observer=observer)[0]


def render_regions(regions, geometry: ImageGeometry, *,
                   observer: SkyCoord | None = None) -> list[np.ndarray]:
    """Render several regions into one image (two SkyCoord transforms in all).

    Parameters
    ----------
    regions : sequence of (lon, lat) or (lon, lat, holes)
        As for :func:`render_region`.
    geometry : ImageGeometry
    observer : `~astropy.coordinates.SkyCoord`, optional

    Returns
    -------
    list of ndarray of bool
        One ``mask[y, x]`` per region (see :func:`render_region`).
    """
    obs = geometry.observer if observer is None else observer
    polys = [region_polygon(r[0], r[1], r[2] if len(r) > 2 else ()) for r in regions]
    shape = (geometry.naxis2, geometry.naxis1)
    masks = [np.zeros(shape, dtype=bool) for _ in polys]
    if not polys:
        return masks
    # 1. the pixel box worth testing: visible samples of each region, projected.
    samples = [_samples_inside(p, 0.25) for p in polys]
    sizes = [s[0].size for s in samples]
    px, py, vis = geometry.carrington_to_pix(np.concatenate([s[0] for s in samples]),
                                             np.concatenate([s[1] for s in samples]), obs)
    margin = 3
    boxes, grids = [], []
    for k, sl in enumerate(np.split(np.arange(px.size), np.cumsum(sizes)[:-1])):
        v = sl[vis[sl]]
        if v.size == 0:
            boxes.append(None)
            continue
        xa = max(int(np.floor(px[v].min())) - margin, 0)
        xb = min(int(np.ceil(px[v].max())) + margin, geometry.naxis1 - 1)
        ya = max(int(np.floor(py[v].min())) - margin, 0)
        yb = min(int(np.ceil(py[v].max())) + margin, geometry.naxis2 - 1)
        if xa > xb or ya > yb:
            boxes.append(None)
            continue
        boxes.append((xa, xb, ya, yb))
        X, Y = np.meshgrid(np.arange(xa, xb + 1), np.arange(ya, yb + 1))
        grids.append((X.ravel(), Y.ravel()))
    if not grids:
        return masks
    # 2. pixel centres → Carrington through SkyCoord, then point in polygon.
    clon, clat = geometry.pix_to_carrington(np.concatenate([g[0] for g in grids]),
                                            np.concatenate([g[1] for g in grids]), obs)
    at = 0
    for poly, box, mask in zip(polys, boxes, masks):
        if box is None:
            continue
        xa, xb, ya, yb = box
        n = (xb - xa + 1) * (yb - ya + 1)
        lo, la = clon[at:at + n], clat[at:at + n]
        at += n
        ok = np.isfinite(lo) & np.isfinite(la)
        ref = poly.exterior.coords[0][0]
        inside = np.zeros(n, bool)
        inside[ok] = shapely.contains_xy(poly, _unwrap(lo[ok], ref), la[ok])
        mask[ya:yb + 1, xa:xb + 1] = inside.reshape(yb - ya + 1, xb - xa + 1)
    return masks


def visible_area_and_centroid(lon, lat, geometry: ImageGeometry, *, holes=(),
                              observer: SkyCoord | None = None, step: float = 0.02,
                              observer_carrington=None):
    """Area on the sphere and centroid of the part of a region facing the observer.

    Integrates on a ``step``-degree lon/lat grid (area element cos(lat) dlon dlat); a
    point counts when it lies on the hemisphere facing the observer (as seen from the
    observer's finite distance).

    ``observer_carrington`` may pass :meth:`ImageGeometry.observer_carrington` computed
    once per image.

    Returns
    -------
    area_deg2 : float
        Visible area in square heliographic degrees (1 deg² = (π/180)² R☉² ≈ 147.4 Mm²).
    lon_c, lat_c : float
        Carrington centroid of the visible part (deg; normalised mean surface vector),
        NaN when nothing is visible.
    """
    if observer_carrington is None:
        observer_carrington = geometry.observer_carrington(observer)
    olon, olat, od = observer_carrington
    poly = region_polygon(lon, lat, holes)
    x0, y0, x1, y1 = poly.bounds
    gx = np.arange(x0 + step / 2, x1, step)
    gy = np.arange(y0 + step / 2, y1, step)
    X, Y = np.meshgrid(gx, gy)
    X, Y = X.ravel(), Y.ravel()
    keep = shapely.contains_xy(poly, X, Y)
    X, Y = np.deg2rad(X[keep]), np.deg2rad(Y[keep])
    p = np.stack([np.cos(Y) * np.cos(X), np.cos(Y) * np.sin(X), np.sin(Y)])
    ov = od * np.array([np.cos(olat) * np.cos(olon), np.cos(olat) * np.sin(olon), np.sin(olat)])
    vis = (ov @ p) > 1.0          # (O − P)·P > 0 with |P| = 1
    w = np.cos(Y[vis]) * np.deg2rad(step) ** 2
    area = float(w.sum() * (180 / np.pi) ** 2)
    if not vis.any():
        return area, float("nan"), float("nan")
    m = (p[:, vis] * w).sum(axis=1)
    lon_c = float(np.rad2deg(np.arctan2(m[1], m[0])) % 360.0)
    lat_c = float(np.rad2deg(np.arctan2(m[2], np.hypot(m[0], m[1]))))
    return area, lon_c, lat_c


def visible_overlap(lon, lat, other_lon, other_lat, geometry: ImageGeometry, *, holes=(),
                    step: float = 0.02, observer_carrington=None) -> dict:
    """Overlap on the sphere between a true region's visible part and another polygon.

    The known-answer comparison: ``other`` is, e.g., the s_region recovered from the
    region's chain code (Carrington lon/lat, deg, any longitude wrapping; edges taken
    straight in unwrapped lon/lat, which densified polygons make immaterial).

    Returns
    -------
    dict
        ``truth_deg2`` (visible part of the true region), ``other_deg2`` (the other
        polygon, whole), ``inter_deg2``, ``union_deg2`` and ``iou``
        (inter / union), areas in square heliographic degrees.
    """
    if observer_carrington is None:
        observer_carrington = geometry.observer_carrington()
    olon, olat, od = observer_carrington
    truth = region_polygon(lon, lat, holes)
    ref = truth.exterior.coords[0][0]
    other = region_polygon(other_lon, other_lat)
    shift = _unwrap(other.exterior.coords[0][0], ref) - other.exterior.coords[0][0]
    other = shapely.affinity.translate(other, xoff=shift)
    x0, y0, x1, y1 = shapely.union(truth, other).bounds
    X, Y = np.meshgrid(np.arange(x0 + step / 2, x1, step), np.arange(y0 + step / 2, y1, step))
    X, Y = X.ravel(), Y.ravel()
    in_t = shapely.contains_xy(truth, X, Y)
    in_o = shapely.contains_xy(other, X, Y)
    lr, br = np.deg2rad(X), np.deg2rad(Y)
    p = np.stack([np.cos(br) * np.cos(lr), np.cos(br) * np.sin(lr), np.sin(br)])
    ov = od * np.array([np.cos(olat) * np.cos(olon), np.cos(olat) * np.sin(olon), np.sin(olat)])
    in_t &= (ov @ p) > 1.0
    w = np.cos(br) * step ** 2
    t, o, i = (float(w[m].sum()) for m in (in_t, in_o, in_t & in_o))
    u_ = t + o - i
    return dict(truth_deg2=t, other_deg2=o, inter_deg2=i, union_deg2=u_,
                iou=i / u_ if u_ > 0 else float("nan"))


# ---------------------------------------------------------------------------------------
# Masks in pixels
# ---------------------------------------------------------------------------------------
def mask_from_pixels(naxis1: int, naxis2: int, x, y) -> np.ndarray:
    """A ``mask[y, x]`` of shape (naxis2, naxis1) with the listed pixels set."""
    mask = np.zeros((naxis2, naxis1), dtype=bool)
    mask[np.asarray(y, int), np.asarray(x, int)] = True
    return mask


_EIGHT = np.ones((3, 3), dtype=bool)


def _crop(mask: np.ndarray):
    """(sub-array, x offset, y offset) of the bounding box of the set pixels."""
    mask = np.asarray(mask, bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        raise ValueError("empty mask: no region to encode")
    cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
    return (mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], int(cols[0]), int(rows[0]))


def _largest(sub: np.ndarray) -> np.ndarray:
    from scipy import ndimage   # (0.8 s to import: not in every kernel that maps HFC)
    lab, n = ndimage.label(sub, structure=_EIGHT)
    if n <= 1:
        return lab == 1
    sizes = np.bincount(lab.ravel())[1:]
    # labels are numbered in raster order (row 0 = y 0 first), so argmax picks the
    # lowest-then-leftmost among equals.
    return lab == (int(np.argmax(sizes)) + 1)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of ``mask`` (ties: the lowest, then leftmost)."""
    sub, xo, yo = _crop(mask)
    out = np.zeros(np.shape(mask), dtype=bool)
    out[yo:yo + sub.shape[0], xo:xo + sub.shape[1]] = _largest(sub)
    return out


def component_pixels(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) pixel coordinates of the largest 8-connected component of ``mask``."""
    sub, xo, yo = _crop(mask)
    ys, xs = np.nonzero(_largest(sub))
    return xs + xo, ys + yo


def boundary_pixels(component: np.ndarray) -> np.ndarray:
    """Pixels of a component 4-adjacent to its outer background, as an (N, 2) array of (x, y).

    These are exactly the pixels an outer-boundary chain visits.
    """
    from scipy import ndimage
    comp = np.pad(np.asarray(component, bool), 1)
    outside = ndimage.label(~comp)[0]           # 4-connected background components
    outer = outside == outside[0, 0]
    near = np.zeros_like(comp)
    near[1:, :] |= outer[:-1, :]
    near[:-1, :] |= outer[1:, :]
    near[:, 1:] |= outer[:, :-1]
    near[:, :-1] |= outer[:, 1:]
    y, x = np.nonzero(comp & near)
    return np.column_stack([x - 1, y - 1])


def encode_chaincode(mask: np.ndarray) -> tuple[int, int, str]:
    """HFC chain code of the outer boundary of the largest 8-connected component.

    Parameters
    ----------
    mask : ndarray of bool, shape (ny, nx)
        ``mask[y, x]``; pixel (x, y) 0-based, y upward.

    Returns
    -------
    x0, y0 : int
        Start pixel: the leftmost pixel of the component's lowest row (as SMART).
    cc : str
        Digits 0–7 (module docstring), counter-clockwise, returning to (x0, y0);
        ``""`` for a one-pixel region.

    Notes
    -----
    Moore-neighbour tracing: at each boundary pixel the neighbours are searched
    counter-clockwise starting just after the last background neighbour seen, so the
    interior stays on the left and one-pixel spurs are walked out and back. The trace
    stops when it is about to repeat its first move from the start pixel.
    """
    sub, xo, yo = _crop(mask)
    comp = _largest(sub)
    y0 = int(np.flatnonzero(comp.any(axis=1))[0])
    x0 = int(np.flatnonzero(comp[y0])[0])
    m = np.pad(comp, 1)          # padded: index [y + 1, x + 1] of the crop
    ny, nx = m.shape
    flat = m.ravel().tolist()
    off = [dy * nx + dx for dx, dy in zip(_DX, _DY)]
    start = (y0 + 1) * nx + (x0 + 1)

    def step(p, s):
        for i in range(8):
            k = (s + i) & 7
            if flat[p + off[k]]:
                return k
        return -1

    k0 = step(start, 3)          # below and left of the start are background
    x0, y0 = x0 + xo, y0 + yo
    if k0 < 0:
        return x0, y0, ""
    digits = [k0]
    p = start + off[k0]
    k = k0
    limit = 4 * int(comp.sum()) + 8
    while True:
        k = step(p, (k + 7) & 7 if k % 2 == 0 else (k + 6) & 7)
        if p == start and k == k0:
            break
        digits.append(k)
        p += off[k]
        if len(digits) > limit:  # pragma: no cover - defensive, tracing always closes
            raise RuntimeError("chain-code trace did not close")
    return x0, y0, "".join(map(str, digits))


def decode_chaincode(x0: int, y0: int, cc: str) -> np.ndarray:
    """Pixel coordinates (N + 1, 2) visited by a chain, start included (reference decoder)."""
    d = np.frombuffer(cc.encode("ascii"), dtype=np.uint8) - ord("0")
    if d.size and (d.max() > 7):
        raise ValueError("chain code holds a character outside 0-7")
    steps = DIRECTIONS[d.astype(np.int64)] if d.size else np.zeros((0, 2), np.int64)
    return np.vstack([[x0, y0], np.array([x0, y0]) + np.cumsum(steps, axis=0)])
