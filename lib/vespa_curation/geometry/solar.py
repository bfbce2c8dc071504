"""Pixels → helioprojective → heliographic Carrington, for many images at once.

Three pieces:

``PixelConvention`` / ``CONVENTIONS``
    How a detection code turns image pixels into helioprojective arcsec, for
    the *check* of a record (does the stored ``CC_X_ARCSEC/CC_Y_ARCSEC`` agree
    with the start pixel?) and for the *geometry* actually published.
``observers``
    The observer of each distinct image, from the image itself: distance from
    the apparent solar radius ``R_SUN × CDELT`` (HFC stores no observer
    position), direction from Earth's at ``DATE_OBS``.  One sunpy call for all
    distinct images of a chunk (never one per region).
``hpc_to_hgc``
    Closed-form helioprojective → heliographic Carrington with per-image
    B0, L0 and observer distance (Thompson 2006, A&A 449, 791, eqs. 15–16 and
    the sphere intersection of sunpy's ``Helioprojective.make_3d``): numpy's
    trigonometry, the arithmetic between it compiled (one pass per point instead of
    two dozen temporary arrays; the numpy formula's numbers, bit for bit).  It agrees
    with ``SkyCoord(...).transform_to(HeliographicCarrington(observer=...))``
    to better than 1e-6° (``tests/test_solar.py``).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.time import Time

__all__ = [
    "PixelConvention",
    "IMAGE_WCS",
    "CONVENTIONS",
    "convention_for",
    "Observers",
    "observers",
    "distinct_images",
    "hpc_to_hgc",
    "R_SUN_M",
]

#: Solar radius used by sunpy's frames (IAU 2015 nominal, 695 700 km), metres.
R_SUN_M = 695_700_000.0


@dataclass(frozen=True)
class PixelConvention:
    """``arcsec = scale × (pix − centre)`` on both axes (0-based pixels).

    Parameters
    ----------
    name : str
        Short name shown in reasons and docs.
    scale : float or None
        Arcsec per pixel; None → the image's ``CDELT1``/``CDELT2``.
    centre : float or None
        Pixel of the disk centre (0-based); None → the image's
        ``CENTER_X``/``CENTER_Y``.
    """

    name: str
    scale: float | None = None
    centre: float | None = None

    def params(self, cdelt1, cdelt2, center_x, center_y):
        """Per-record ``(sx, sy, cx, cy)`` arrays."""
        n = np.broadcast(cdelt1, center_x).shape
        sx = np.broadcast_to(np.asarray(cdelt1 if self.scale is None else self.scale, float), n)
        sy = np.broadcast_to(np.asarray(cdelt2 if self.scale is None else self.scale, float), n)
        cx = np.broadcast_to(np.asarray(center_x if self.centre is None else self.centre, float), n)
        cy = np.broadcast_to(np.asarray(center_y if self.centre is None else self.centre, float), n)
        return sx, sy, cx, cy

    def to_arcsec(self, x, y, cdelt1, cdelt2, center_x, center_y):
        """Helioprojective ``(Tx, Ty)`` in arcsec of pixel ``(x, y)``."""
        sx, sy, cx, cy = self.params(cdelt1, cdelt2, center_x, center_y)
        return sx * (np.asarray(x, float) - cx), sy * (np.asarray(y, float) - cy)


#: HFC's documented convention: ``arcsec = CDELT × (pix − CENTER)``, 0-based
#: pixels, with the observation's own CDELT and disk centre.
IMAGE_WCS = PixelConvention("image (CDELT×(pix−CENTER))")

#: SMART (TCD, SoHO/MDI 96-min magnetograms) stores chain-start arcsec on a
#: nominal grid: ``(pix − 512) × 1.984``.
SMART_NOMINAL = PixelConvention("SMART nominal ((pix−512)×1.984)", scale=1.984, centre=512.0)

#: Conventions per detection code (``FRC_INFO.CODE``, upper case):
#: ``(check, geometry)``.  ``check`` reproduces the stored
#: ``CC_X_ARCSEC/CC_Y_ARCSEC`` of the chain start (a record that disagrees by
#: more than a pixel is quarantined); ``geometry`` places the region on the Sun.
#:
#: SMART — measured on the 76 real records of 2005-04-02
#: (``tests/data/hfc-smart-20050402``, 16 MDI images, R_SUN 488.8 px,
#: CENTER 512.74/512.47, CDELT 1.98581″; ``tests/test_solar.py`` prints these):
#:
#: * check: ``(pix − 512) × 1.984`` reproduces every stored chain-start arcsec
#:   exactly (|Δ| < 1e-12″), while ``CDELT1 × (pix − CENTER_X)`` misses by up to
#:   2.1″ = 1.12 px — it would quarantine good SMART records.  The stored values
#:   are SMART's nominal grid, not the image's WCS.
#: * geometry: the image's own disk centre and CDELT are where the Sun is in the
#:   pixels (R_SUN × CDELT1 = 970.6″, MDI's apparent radius at 0.988 AU); the
#:   nominal grid puts the disk centre up to 0.75 px off and scales the disk by
#:   0.09 %.  Region centroids against the catalogue's own ARC_CAR_LON/LAT
#:   (computed by SMART for an Earth observer): image WCS + Earth observer
#:   max |Δlon| 0.41°, |Δlat| 0.29°; nominal grid + Earth observer 0.44°,
#:   0.34° — the image WCS agrees at least as well, so it places the published
#:   polygon.  With the observer seen in the image (SoHO, used for publishing)
#:   the residuals grow to 1.31° / 0.51°: that is the Earth-vs-SoHO observer
#:   difference of SMART's catalogue, not an error of the polygon.
#:
#: Any code not listed (HFC's documented convention, and the embedded synthetic
#: sample ``SYNTH``) uses the image WCS for both.
CONVENTIONS: dict[str, tuple[PixelConvention, PixelConvention]] = {
    "SMART": (SMART_NOMINAL, IMAGE_WCS),
}


def convention_for(code) -> tuple[PixelConvention, PixelConvention]:
    """``(check, geometry)`` conventions of detection code ``code``."""
    key = str(code).strip().upper() if code is not None else ""
    return CONVENTIONS.get(key, (IMAGE_WCS, IMAGE_WCS))


@dataclass
class Observers:
    """Observer geometry of distinct images.

    Attributes
    ----------
    b0 : numpy.ndarray
        Heliographic latitude of the observer (deg).
    l0 : numpy.ndarray
        Carrington longitude of the observer in the frame
        ``HeliographicCarrington(observer=<that observer>)`` (deg).
    dist : numpy.ndarray
        Observer–Sun-centre distance (m).
    rsun_arcsec : numpy.ndarray
        Apparent angular radius of the solar disk (arcsec).
    times : astropy.time.Time
        Observation times.
    """

    b0: np.ndarray
    l0: np.ndarray
    dist: np.ndarray
    rsun_arcsec: np.ndarray
    times: Time

    def skycoord(self, i: int | None = None):
        """The observer(s) as sunpy ``HeliographicStonyhurst`` SkyCoord."""
        from astropy.coordinates import SkyCoord
        from sunpy.coordinates import frames

        s = slice(None) if i is None else i
        return SkyCoord(frames.HeliographicStonyhurst(
            lon=np.zeros_like(self.b0[s]) * u.deg, lat=self.b0[s] * u.deg,
            radius=self.dist[s] * u.m, obstime=self.times[s]))


def _to_time(date_obs) -> Time:
    if isinstance(date_obs, Time):
        return date_obs.utc
    arr = np.asarray(date_obs)
    if arr.dtype.kind == "M":
        return Time(arr.astype("datetime64[ns]"), scale="utc")
    s = pd.to_datetime(pd.Series(np.asarray(date_obs, dtype=object)), utc=False, format="mixed")
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return Time(s.to_numpy(dtype="datetime64[ns]"), scale="utc")


def observers(date_obs, rsun_arcsec, interpolate: bool | None = None) -> Observers:
    """Observer of each image: Earth's direction at DATE_OBS, distance from the disk radius.

    Parameters
    ----------
    date_obs : array_like
        Observation times (datetime64 or ISO text), one per *distinct image*.
    rsun_arcsec : array_like
        Apparent solar radius of each image (``R_SUN × CDELT1``), arcsec.
    interpolate : bool or None
        Ephemeris by spline between sunpy nodes (see :func:`earth_ephemeris`).

    Returns
    -------
    Observers
        ``dist = R☉ / sin(rsun)``, ``b0`` = Earth's heliographic latitude at
        DATE_OBS (the observer is placed on the Sun–Earth line: HFC stores no
        observer position; SoHO at L1 sits within 0.3° of it as seen from the
        Sun), ``l0`` = that observer's Carrington longitude, light travel time
        included as sunpy's ``HeliographicCarrington(observer=...)`` does.
        Ephemeris from sunpy, vectorized over all images (:func:`earth_ephemeris`).
    """
    from astropy.constants import c as speed_of_light
    from sunpy.sun import constants

    times = _to_time(date_obs)
    if times.ndim == 0:
        times = times.reshape(1)
    r = np.atleast_1d(np.asarray(rsun_arcsec, dtype=float))
    dist = R_SUN_M / np.sin(np.deg2rad(r / 3600.0))
    # sunpy's HGS → HGC rotation (sunpy.coordinates._transformations.
    # _rotation_matrix_hgs_to_hgc): L0(t) plus the extra light travel time of an
    # observer at another distance than Earth's, times the sidereal rotation rate.
    # The same numbers as one SkyCoord transform per image (tests/test_solar.py),
    # without the per-element rotation matrices of an array-valued obstime.
    b0, l0_earth, d_earth = earth_ephemeris(times, interpolate=interpolate)
    delta = ((dist - d_earth) * u.m / speed_of_light) * constants.sidereal_rotation_rate
    l0 = l0_earth + delta.to_value(u.deg)
    return Observers(b0=b0, l0=np.mod(l0, 360.0), dist=dist, rsun_arcsec=r, times=times)


def distinct_images(times, rsun) -> tuple[np.ndarray, np.ndarray]:
    """The image of each record — its distinct (time, apparent radius) pair, numbered in
    order of first appearance (a missing time or radius a value of its own) — and the
    first record of each image: what ``pd.factorize`` of the pairs' MultiIndex gives,
    without its Python tuple per record. :func:`observers` then takes one time and
    radius per image."""
    ca, _ = pd.factorize(np.asarray(times), use_na_sentinel=False)
    cb, ub = pd.factorize(np.asarray(rsun), use_na_sentinel=False)
    code, _ = pd.factorize(ca.astype(np.int64) * max(len(ub), 1) + cb)
    return code, np.unique(code, return_index=True)[1]


#: Node spacing (days) of the interpolated ephemeris (see :func:`earth_ephemeris`).
EPHEMERIS_STEP_DAYS = 0.5


def earth_ephemeris(times, interpolate: bool | None = None):
    """Earth's B0 (deg), sunpy's L0 (deg) and Earth's distance (m) at ``times``.

    Computed with sunpy (``get_earth``, ``sun.L0``) once per distinct time — or,
    when the times are many more than the days they span (a chunk of a catalogue:
    dozens of images per day), with sunpy on nodes every
    :data:`EPHEMERIS_STEP_DAYS` and a cubic spline between them.  B0, L0 − its
    linear drift and the distance change on time scales of weeks (the shortest
    sizeable term: Earth's monthly wobble about the Earth–Moon barycentre,
    0.002°), so the spline reproduces sunpy to < 1e-9° with 0.5-day nodes
    (measured: 9e-10° in L0, 1e-10° in B0; 5e-11° with 0.25-day nodes;
    ``tests/test_solar.py``) — three orders below the 1e-6° asked of the transform.

    Parameters
    ----------
    times : astropy.time.Time
    interpolate : bool or None
        Force (True) or forbid (False) the spline; None decides by count.

    Returns
    -------
    b0, l0, d_earth : numpy.ndarray
    """
    from sunpy.coordinates import get_earth, sun

    times = times.reshape(-1) if times.ndim else times.reshape(1)
    jd = (times.jd1 - 2451545.0) + times.jd2
    _, first, inv = np.unique(np.round(jd * 86400e3), return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    h = EPHEMERIS_STEP_DAYS
    k0, k1 = np.floor(jd.min() / h) - 3, np.ceil(jd.max() / h) + 3
    n_nodes = int(k1 - k0) + 1
    if interpolate is None:
        interpolate = n_nodes < len(first) // 2
    if not interpolate:
        tu = times[first]
        with _epv00_once():
            earth = get_earth(tu)
            l0 = sun.L0(tu)
        return (np.atleast_1d(earth.lat.to_value(u.deg))[inv],
                np.atleast_1d(l0.to_value(u.deg))[inv],
                np.atleast_1d(earth.radius.to_value(u.m))[inv])
    from scipy.interpolate import CubicSpline

    nodes_jd = np.arange(k0, k1 + 1) * h
    tn = Time(2451545.0, nodes_jd, format="jd", scale=times.scale)
    with _epv00_once():
        earth = get_earth(tn)
        l0n = np.unwrap(sun.L0(tn).to_value(u.deg), period=360.0)
    vals = np.stack([earth.lat.to_value(u.deg), l0n, earth.radius.to_value(u.m)], axis=1)
    spl = CubicSpline(nodes_jd, vals, axis=0)
    out = spl(jd)
    return out[:, 0], np.mod(out[:, 1], 360.0), out[:, 2]


@contextmanager
def _epv00_once():
    """Within the block, ERFA's ``epv00`` (Earth's position and velocity, the series
    that is most of sunpy's ephemeris cost) computed once per distinct argument: sunpy's
    ``get_earth`` and ``sun.L0`` of the same nodes call it ten times with the same
    dates (astropy's barycentric positions of the Earth and of the Sun, for each
    frame they pass through). The same function of the same dates: the same bits.
    One process, one thread at a time (a map worker, the QA's trace)."""
    import erfa
    real = erfa.epv00
    memo: dict = {}

    def epv00(date1, date2):
        key = (np.asarray(date1).tobytes(), np.asarray(date2).tobytes(),
               np.shape(date1), np.shape(date2))
        if key not in memo:
            memo[key] = real(date1, date2)
        pvh, pvb = memo[key]
        return pvh.copy(), pvb.copy()

    erfa.epv00 = epv00
    try:
        yield
    finally:
        erfa.epv00 = real


def hpc_to_hgc(tx, ty, b0, l0, dist, rsun_m: float = R_SUN_M, return_xyz: bool = False,
               index=None):
    """Helioprojective (arcsec) → heliographic Carrington (deg), closed form.

    All arguments broadcast together (per-vertex values, or per-vertex
    coordinates with per-vertex copies of the image's ``b0, l0, dist``).

    Parameters
    ----------
    tx, ty : array_like
        Helioprojective longitude / latitude, arcsec.
    b0, l0 : array_like
        Observer's heliographic latitude and Carrington longitude, deg.
    dist : array_like
        Observer distance, m.
    rsun_m : float
        Solar radius of the sphere the line of sight hits (sunpy's default).
    return_xyz : bool
        Also return the Carrington unit vectors (N, 3) of the points.
    index : array_like of int, optional
        Image of each point: ``b0, l0, dist`` are then per image (their sines and
        cosines are computed once per image, not per point).

    Returns
    -------
    lon, lat : numpy.ndarray
        Carrington longitude in [0, 360) and latitude, deg; NaN off the disk
        (clip first: :func:`vespa_curation.geometry.sregion.clip_to_disk`).
    xyz : numpy.ndarray
        Only with ``return_xyz``.
    """
    # Thompson (2006)'s symbols: lam, phi the helioprojective angles, D the observer's
    # distance from the Sun's centre, d the distance along the line of sight to the
    # point where it meets the sphere (the nearer root of the quadratic
    # (D cos a)² − D² + R²); numpy computes the sines and cosines, the arithmetic
    # between them is one compiled pass per point (kernels.line_of_sight,
    # kernels.carrington_degrees: numpy's formula in numpy's order, the same bits)
    from . import kernels
    if index is None:
        tx, ty, b0, l0, dist = np.broadcast_arrays(*(np.asarray(a, float) for a in
                                                     (tx, ty, b0, l0, dist)))
        shape = tx.shape
        tx, ty, b0, l0, dist = (a.reshape(-1) for a in (tx, ty, b0, l0, dist))
        index = np.arange(tx.size)
    else:
        shape = np.shape(tx)
        tx, ty = (np.asarray(a, float).reshape(-1) for a in (tx, ty))
        b0, l0, dist = (np.atleast_1d(np.asarray(a, float)) for a in (b0, l0, dist))
        index = np.asarray(index, dtype=np.int64).reshape(-1)
    lam = np.deg2rad(tx / 3600.0)
    phi = np.deg2rad(ty / 3600.0)
    b0r, l0r = np.deg2rad(b0), np.deg2rad(l0)
    cb, sb = np.cos(b0r), np.sin(b0r)
    cl, sl = (np.cos(l0r), np.sin(l0r)) if return_xyz else (l0r, l0r)
    cphi = np.cos(phi)
    n = tx.size
    x, east, q = np.empty(n), np.empty(n), np.empty(n)
    xyz = np.empty((n, 3) if return_xyz else (0, 3))
    kernels.line_of_sight(cphi, np.cos(lam), np.sin(lam), np.sin(phi), index, cb, sb,
                          cl, sl, np.ascontiguousarray(dist), float(rsun_m),
                          float(rsun_m) ** 2, x, east, q, xyz)
    lon, lat = np.empty(n), np.empty(n)
    kernels.carrington_degrees(np.arctan2(x, east), np.arcsin(q), index,
                               np.ascontiguousarray(l0), lon, lat)
    lon, lat = lon.reshape(shape)[()], lat.reshape(shape)[()]
    if not return_xyz:
        return lon, lat
    return lon, lat, xyz.reshape(shape + (3,))
