"""Coverage as MOCs (IVOA MOC 2.0, with mocpy): where a service's polygons lie, and when
its granules were observed.

Spatial coverage
    :class:`PolygonUnion` builds the HEALPix MOC of the union of many ``s_region``
    polygons (STC-S), exactly — the cells of order ``order`` that any polygon touches —
    in bounded memory, batch by batch. mocpy's polygon coverage costs ≈ 1 ms per
    60-vertex active region at order 9 (``benchmarks/bench_moc.py``), so a polygon is
    first tested at coarse orders (3, then 6): when every coarse cell it touches lies
    wholly inside the union so far, its fine cells are inside too and it is skipped.
    The union of a million overlapping regions thus computes the fine coverage of a few
    percent of them.

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

#: HEALPix order of the spatial MOC by default (≈ 0.11° cells) and of the coarse tests.
ORDER = 9
COARSE_ORDERS = (3, 6)
#: T-MOC order by default: 2**(61 - 35) µs ≈ 67 s cells.
TIME_ORDER = 35
#: TT → TCB rate (IAU 2006 Resolution B3, L_B) and its epoch (1977-01-01T00:00:32.184 TT).
_L_B = 1.550519768e-8
_T0_JD = 2443144.5003725
_US_PER_DAY = 86400e6


def _mocpy():
    from mocpy import MOC, TimeMOC
    return MOC, TimeMOC


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
    MOC, _ = _mocpy()
    out: dict = {"refused": []}
    for ids, arr in _vertex_groups(poly, sel):
        try:
            mocs = MOC.from_polygons(arr, max_depth=order, n_threads=1)
        except Exception:  # noqa: BLE001 — find the polygon mocpy refuses
            mocs = []
            for k in range(len(ids)):
                try:
                    mocs += MOC.from_polygons(arr[2 * k:2 * k + 2], max_depth=order,
                                              n_threads=1)
                except Exception:  # noqa: BLE001
                    mocs.append(None)
        for i, m in zip(ids, mocs):
            if m is None:
                out["refused"].append(int(i))
            else:
                out[int(i)] = m
    return out


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
    coarse : sequence of int
        Orders of the skipping tests (module docstring); those ≥ ``order`` are ignored.
    """

    def __init__(self, order: int = ORDER, start=None, coarse=COARSE_ORDERS):
        MOC, _ = _mocpy()
        self.order = int(order)
        self.coarse = tuple(c for c in coarse if c < self.order)
        self.moc = start if start is not None else MOC.new_empty(self.order)
        self.added = self.skipped = self.refused = 0
        self._full = {c: MOC.from_string(f"{c}/0-{12 * 4 ** c - 1}") for c in self.coarse}
        self._inside = {}

    def add(self, s_region: Iterable) -> None:
        """Add STC-S polygons (None, NaN and what does not parse are ignored)."""
        poly = stcs.parse(list(s_region))
        sel = np.flatnonzero(~poly.parse_error & (poly.counts >= 3))
        if not len(sel):
            return
        for c in self.coarse:
            if not len(sel) or self.moc.empty():
                break
            sel = sel[~self._inside_at(poly, sel, c)]
        fine = polygon_mocs(poly, sel, self.order)
        refused = fine.pop("refused")
        mocs = list(fine.values())
        if mocs:
            self.moc = self.moc.union(*mocs)
            self._inside.clear()
        self.added += len(sel) - len(refused)
        self.refused += len(refused)
        self.skipped += int((~poly.parse_error & (poly.counts >= 3)).sum()) - len(sel)

    def extend(self, moc, n_polygons: int = 0) -> None:
        """Add the MOC of polygons computed elsewhere (``n_polygons`` of them, counted
        as added)."""
        self.moc = self.moc.union(moc)
        self._inside.clear()
        self.added += int(n_polygons)

    def _inside_at(self, poly, sel: np.ndarray, c: int) -> np.ndarray:
        """Whether each polygon ``sel`` lies in cells of order ``c`` inside the union."""
        if c not in self._inside:
            self._inside[c] = _interior(self.moc, c, self._full[c])
        inside = self._inside[c]
        if not len(inside):
            return np.zeros(len(sel), bool)
        mocs = polygon_mocs(poly, sel, c)
        mocs.pop("refused")
        ok = np.zeros(len(sel), bool)
        # every polygon's cells at once: one search, then the misses counted per polygon
        found = [(k, mocs[int(i)].flatten()) for k, i in enumerate(sel) if int(i) in mocs]
        found = [(k, cells) for k, cells in found if len(cells)]
        if not found:
            return ok
        which = np.array([k for k, _ in found])
        counts = np.array([len(cells) for _, cells in found])
        cells = np.concatenate([cells for _, cells in found])
        pos = np.minimum(np.searchsorted(inside, cells), len(inside) - 1)
        miss = (inside[pos] != cells).astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        ok[which] = np.add.reduceat(miss, starts) == 0
        return ok


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
    2 ms of astropy's ``Time(jd, scale="utc").tcb`` (module docstring)."""
    import erfa
    jd = np.asarray(jd_utc, dtype=float)
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


def time_summary(tmoc) -> dict:
    """First and last covered instants (ISO UTC), ranges, covered days, the largest gap
    (by astropy's TCB → UTC: the figures the manifest keeps)."""
    from ..times import iso_ms, jd_to_datetime

    def jd_to_iso(v):
        return str(iso_ms(jd_to_datetime([v]))[0])
    r = time_ranges_jd(tmoc, full=True)
    out = {"order": int(tmoc.max_order), "ranges": int(len(r))}
    if len(r):
        gaps = r[1:, 0] - r[:-1, 1]
        out.update({"first": jd_to_iso(r[0, 0]), "last": jd_to_iso(r[-1, 1]),
                    "covered_days": float((r[:, 1] - r[:, 0]).sum()),
                    "largest_gap_days": float(gaps.max()) if len(gaps) else 0.0})
        if len(gaps):
            k = int(np.argmax(gaps))
            out["largest_gap"] = [jd_to_iso(r[k, 1]), jd_to_iso(r[k + 1, 0])]
    return out


__all__ = ["ORDER", "TIME_ORDER", "PolygonUnion", "polygon_moc", "polygon_mocs",
           "time_moc", "tcb_microseconds", "utc_jd", "n_ranges", "time_ranges_jd", "temporal_intervals",
           "write_moc", "read_moc", "moc_keywords", "body_keywords", "spatial_summary",
           "time_summary"]
