"""Points of the unit sphere, shared by the s_region geometry (:mod:`.sregion`) and the
coverage MOCs (:mod:`.moc`); numba's kernels are loaded on the first call only."""
from __future__ import annotations

import numpy as np


def unit_vectors(lon, lat) -> np.ndarray:
    """Unit vectors (…, 3) of longitudes and latitudes in degrees: ``cos(lat) cos(lon),
    cos(lat) sin(lon), sin(lat)`` (of ``np.deg2rad``'s radians), computed in one
    compiled pass (:func:`.kernels.unit_vectors`, numpy's bits)."""
    from .kernels import unit_vectors as kernel
    lo, la = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    out = np.empty(lo.shape + (3,))
    kernel(np.ascontiguousarray(lo).reshape(-1), np.ascontiguousarray(la).reshape(-1),
           out.reshape(-1, 3))
    return out


def unit_vectors_numpy(lon, lat) -> np.ndarray:
    """:func:`unit_vectors` by numpy's array formula (the reference it is tested
    against)."""
    lo, la = np.deg2rad(lon), np.deg2rad(lat)
    out = np.empty(np.shape(lo) + (3,))
    cl = np.cos(la)
    out[..., 0] = cl * np.cos(lo)
    out[..., 1] = cl * np.sin(lo)
    out[..., 2] = np.sin(la)
    return out


def lonlat(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes in [0, 360) and latitudes (degrees) of vectors (…, 3), not necessarily
    of unit length (a point of a gnomonic plane, a sum of unit vectors)."""
    lon = np.rad2deg(np.arctan2(v[..., 1], v[..., 0])) % 360.0
    lat = np.rad2deg(np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1])))
    return lon, lat
