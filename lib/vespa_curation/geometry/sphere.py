"""Points of the unit sphere, shared by the s_region geometry (:mod:`.sregion`) and the
coverage MOCs (:mod:`.moc`); imports numpy only, so the export's kernel, which needs
``moc`` alone, does not load numba's kernels with it."""
from __future__ import annotations

import numpy as np


def unit_vectors(lon, lat) -> np.ndarray:
    """Unit vectors (…, 3) of longitudes and latitudes in degrees."""
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
