"""HFC active regions → one s_region polygon (or a refusal with a reason) per record.

:func:`hfc_ar_polygons` is a pure function of one chunk of records (no I/O, no
global state), so the pipeline can map it over worker processes or a Dask
cluster.  The steps, each one call over the whole chunk (numpy arrays; the walks
along each ring — outline, staircase cut, Douglas–Peucker — compiled with numba in
:mod:`.kernels`):

1. chain codes checked and decoded (:mod:`.chaincode`);
2. the chain start checked against the stored ``CC_X_ARCSEC/CC_Y_ARCSEC`` with
   the detection code's *check* convention (:data:`.solar.CONVENTIONS`);
3. the pixel-edge outline of the region (:func:`.chaincode.pixel_outline`),
   its staircase corners cut within half a pixel (:func:`.sregion.cut_staircases`,
   ~40 % fewer vertices, area kept), converted to helioprojective arcsec with
   the code's *geometry* convention;
4. runs of outline vertices within ``limb_snap_px`` of the limb replaced by an
   arc of the circle ``limb_margin_px`` inside the limb (the outline follows the
   limb there, no staircase teeth); what still lies beyond is clipped to that
   circle in the helioprojective plane (so no vertex transforms to NaN); simplified within
   half a pixel when over 1024 vertices; long edges densified (shorter near the
   limb, where great circles bend away from straight image edges);
5. helioprojective → Carrington in closed form with one observer per distinct
   image (:func:`.solar.observers`, :func:`.solar.hpc_to_hgc`);
6. longitudes unwrapped, ring made counter-clockwise, vertex budget (Douglas–Peucker
   in the gnomonic plane about each polygon), pgSphere's rules checked on the sphere
   (:func:`.sregion.check_polygons`), STC-S written.

:func:`hfc_ar_geometry` calls one private function per step: ``_check_records``
(1–2), ``_outlines`` (3), ``_follow_limb``, ``_clip_and_simplify`` and ``_densify``
(4), ``_to_carrington`` (5, and the orientation of 6), ``_vertex_budget`` and
``_check_on_sphere`` (6), then ``_output_frame``.  Per-record image geometry travels
between them as a ``_Disk``, the rings as a ``_Polygons``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import chaincode as cc_mod
from . import kernels, solar, sregion
from .chaincode import Ragged, _member, _refuse, ragged_ids

__all__ = ["hfc_ar_polygons", "hfc_ar_geometry", "GeometryParts", "COLUMNS"]

#: Output columns of :func:`hfc_ar_polygons` (``geom_note`` is extra: a short
#: sentence on clipping / simplification for QA, None when nothing happened).
COLUMNS = ["s_region", "c1min", "c1max", "c2min", "c2max", "geom_flag", "area_ratio",
           "n_vertices", "simplify_change", "centroid_lon", "centroid_lat", "rule",
           "reason", "geom_note"]

_REQUIRED = ["CC", "CC_X_PIX", "CC_Y_PIX", "DATE_OBS", "R_SUN", "CENTER_X", "CENTER_Y", "CDELT1"]


@dataclass
class GeometryParts:
    """Intermediate geometry of the records that passed the chain-code checks (for QA).

    Attributes
    ----------
    rows : numpy.ndarray
        Positions (0-based, into the ``records`` frame) of the items below.
    chain : Ragged
        Decoded pixel-centre vertices of each chain (start … end).
    outline : Ragged
        Pixel-edge outline (pixels), counter-clockwise.
    outline_beyond_limb : numpy.ndarray of bool
        Per outline vertex: lies beyond the clip circle (clipped away).
    outline_bridge : numpy.ndarray of bool
        Per outline vertex: a diagonal-bridge point (moved by
        ``chaincode.BRIDGE_EPS`` off the shared pixel corner).
    hpc : Ragged
        Helioprojective outline (arcsec) after clipping, simplification and
        densification: the vertices published (``vertex_tol_px``).
    lon, lat : numpy.ndarray
        Carrington vertices (deg, longitudes unwrapped), same offsets as ``hpc``.
    """

    rows: np.ndarray
    chain: Ragged
    outline: Ragged
    outline_beyond_limb: np.ndarray
    outline_bridge: np.ndarray
    hpc: Ragged
    lon: np.ndarray
    lat: np.ndarray


def _col(records: pd.DataFrame, name: str, default=np.nan) -> np.ndarray:
    if name in records.columns:
        return pd.to_numeric(records[name], errors="coerce").to_numpy(dtype=float)
    return np.full(len(records), default, dtype=float)


def _dates(values) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values):
        t = pd.to_datetime(values)
    else:
        s = pd.Series(np.asarray(values, dtype=object))
        t = pd.to_datetime(s.astype("string").str.strip().str.rstrip("Z"), errors="coerce",
                           format="mixed")
    t = pd.DatetimeIndex(t)
    if t.tz is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.to_numpy(dtype="datetime64[ns]")


def hfc_ar_polygons(records: pd.DataFrame, **options) -> pd.DataFrame:
    """s_region polygons of HFC active-region records (one chunk; pure function).

    Parameters
    ----------
    records : pandas.DataFrame
        HFC columns of ACTIVEREGIONS joined with OBSERVATIONS and FRC_INFO
        (upper case): ``CC, CC_X_PIX, CC_Y_PIX, DATE_OBS, R_SUN, CENTER_X,
        CENTER_Y, CDELT1`` required; ``CC_LENGTH, CC_X_ARCSEC, CC_Y_ARCSEC,
        CDELT2, NAXIS1, NAXIS2, FEAT_AREA_PIX, FEAT_AREA_DEG2, CODE`` used when
        present.
    **options
        See :func:`hfc_ar_geometry`.

    Returns
    -------
    pandas.DataFrame
        Same index as ``records``; columns :data:`COLUMNS`: ``s_region`` (STC-S
        ``Polygon UNKNOWNFrame lon lat ...``, None when refused), ``c1min
        c1max c2min c2max`` (deg; ``c1min > c1max`` across 0/360),
        ``geom_flag`` (``ok`` or ``limb_clipped``, ``repaired``, ``seam``,
        ``simplified`` joined by ``+``), ``area_ratio`` (outline area after
        clipping / FEAT_AREA_PIX, else spherical area / FEAT_AREA_DEG2),
        ``n_vertices``, ``simplify_change`` (relative area change of the vertex
        budget, see ``vertex_tol_px``), ``centroid_lon``/``centroid_lat`` (the
        published polygon's area centroid, deg, for the QA's residuals against the
        catalogue), ``rule`` and ``reason`` (None when accepted), ``geom_note``.

    Raises
    ------
    KeyError
        When a required column is missing (names the columns).
    """
    return hfc_ar_geometry(records, _parts=False, **options)[0]


def warm_up_records() -> pd.DataFrame:
    """Two small square regions of one image, one on the disk and one across the
    limb: what a warm-up runs through the geometry (or the QA's trace)."""
    side, r, c = 12, 480.0, 511.5
    square = "0" * side + "2" * side + "4" * side + "6" * side
    n = 2
    return pd.DataFrame({
        "CC": [square] * n, "CC_X_PIX": [c, c + r + 2], "CC_Y_PIX": [c, c],
        "DATE_OBS": ["2005-04-02T00:00:00"] * n, "R_SUN": [r] * n,
        "CENTER_X": [c] * n, "CENTER_Y": [c] * n, "CDELT1": [1.98] * n,
        "CDELT2": [1.98] * n, "NAXIS1": [1024] * n, "NAXIS2": [1024] * n})


def warm_up() -> None:
    """Run the geometry once on two small square regions, one on the disk and one
    across the limb, and the interpolated ephemeris once: a process's first chunk
    otherwise pays ≈ 1.5 s loading the compiled kernels (numba's cache), the ephemeris
    and scipy.interpolate. A stage's kernel does it before it forks its workers
    (:data:`vespa_curation.runs.WARM_UP`), which then start warm."""
    hfc_ar_polygons(warm_up_records())
    # a chunk's many images take the interpolated ephemeris (scipy.interpolate: 0.7 s
    # to import), two images do not
    from astropy.time import Time
    from .solar import earth_ephemeris
    earth_ephemeris(Time(["2005-04-02T00:00:00", "2005-04-03T00:00:00"], scale="utc"),
                    interpolate=True)


def hfc_ar_geometry(records: pd.DataFrame, *, max_edge_px: float = 4.0,
                    max_edge_centre_px: float = 32.0, edge_tol_px: float = 0.05,
                    staircase_px: float = 0.5, limb_margin_px: float = 0.02,
                    limb_snap_px: float = 0.8, simplify_tol_px: float = 0.5,
                    vertex_tol_px: float = 0.45, digits: int = 6,
                    max_pixel_mismatch: float = 1.0, _parts: bool = True):
    """:func:`hfc_ar_polygons` plus the intermediate pieces a QA figure needs.

    Parameters
    ----------
    records : pandas.DataFrame
        As for :func:`hfc_ar_polygons`.
    max_edge_px : float
        Densify: longest edge, in image pixels, before the transform, near the
        limb (and along the limb arc).
    max_edge_centre_px, edge_tol_px : float
        Densify: edges may be longer than ``max_edge_px`` (up to ``max_edge_centre_px``)
        where the great circle between their ends stays within ``edge_tol_px`` of the
        straight edge in the image (:func:`.sregion.disk_edge_length`).
    staircase_px : float
        Corners of pixel staircases are cut this far along their edges (every point
        within ``staircase_px/√2`` of the pixel outline, a 45° staircase becomes one
        edge: :func:`.sregion.cut_staircases`); 0 keeps every pixel corner.
    limb_margin_px : float
        Clip circle radius = apparent solar radius − this many pixels (keeps the
        transform away from the tangent line of sight).
    limb_snap_px : float
        Where the outline runs within this many pixels of the limb it follows the
        limb (:func:`.sregion.follow_limb`): the staircase of pixel corners there,
        which would zig-zag by degrees in longitude, becomes an arc on the clip
        circle.  0 disables (outline clipped corner by corner).
    simplify_tol_px : float
        Douglas–Peucker tolerance (pixels) for outlines over 1024 vertices.
    vertex_tol_px : float
        Vertex budget (pgSphere's input and GiST key cost grow with the square of
        the vertex count): the published polygon keeps only the vertices
        Douglas–Peucker needs, in the gnomonic plane about the polygon (where
        pgSphere's edges are straight), to stay within this many image pixels of
        the full outline (0: keep every vertex); with ``edge_tol_px`` the published
        edges stay within half a pixel of the outline.  The relative area change
        is in ``simplify_change``.
    digits : int
        Decimals of the STC-S coordinates (6 → 1e-6°, ≈ 12 m on the Sun).
    max_pixel_mismatch : float
        Largest accepted distance (pixels) between the chain start converted
        with the code's check convention and the stored CC_X/Y_ARCSEC.

    Returns
    -------
    frame : pandas.DataFrame
    parts : GeometryParts
    """
    rec = _read_records(records)
    # steps 1–2: refusals before any geometry
    check, geometry, check_name = _conventions(rec)
    chain_digits, rule, reason = _check_records(records, rec, check, check_name,
                                                max_pixel_mismatch)
    live = np.flatnonzero(rule == None)  # noqa: E711
    disk = _Disk.of(rec, geometry, live, limb_margin_px)
    # step 3: pixel outline, staircases cut, helioprojective arcsec
    chain, outline, bridge, hpc = _outlines(rec, live, chain_digits, disk, staircase_px)
    # step 4: limb, clip, simplify, densify
    hpc, changes = _follow_limb(hpc, outline, disk, limb_snap_px, max_edge_px)
    hpc = _clip_and_simplify(hpc, disk, changes, simplify_tol_px)
    hpc = _densify(hpc, disk, max_edge_px, max_edge_centre_px, edge_tol_px)
    # steps 5–6: Carrington, counter-clockwise, vertex budget, pgSphere's rules
    polygons = _to_carrington(hpc, disk)
    polygons, budget = _vertex_budget(polygons, disk, vertex_tol_px)
    polygons, rule[live], reason[live] = _check_on_sphere(polygons, budget, disk, changes,
                                                          simplify_tol_px)
    out = _output_frame(records, live, rule, reason, polygons, budget, changes,
                        limb_snap_px=limb_snap_px, simplify_tol_px=simplify_tol_px,
                        digits=digits)
    if not _parts:
        return out, None
    beyond = _outline_beyond_limb(outline, disk, limb_snap_px, changes.smoothed)
    return out, GeometryParts(rows=live, chain=chain, outline=outline,
                              outline_beyond_limb=beyond, outline_bridge=bridge,
                              hpc=polygons.hpc, lon=polygons.lon, lat=polygons.lat)


# --------------------------------------------------------------------------
# Inputs and the refusals of steps 1–2
# --------------------------------------------------------------------------

@dataclass
class _Records:
    """The columns of one chunk the geometry reads, one value per record.

    Numbers are float arrays (NaN where missing or unreadable), ``dates``
    datetime64[ns] (NaT where unreadable), ``codes`` the detection code in upper
    case (``""`` when missing).  ``cdelt2`` falls back to ``cdelt1``.
    """

    chains: np.ndarray
    start_x: np.ndarray
    start_y: np.ndarray
    rsun_px: np.ndarray
    cdelt1: np.ndarray
    cdelt2: np.ndarray
    center_x: np.ndarray
    center_y: np.ndarray
    dates: np.ndarray
    codes: np.ndarray

    def __len__(self) -> int:
        return len(self.chains)


def _read_records(records: pd.DataFrame) -> _Records:
    missing = [c for c in _REQUIRED if c not in records.columns]
    if missing:
        raise KeyError(f"hfc_ar_polygons: records lack column(s) {', '.join(missing)}")
    n = len(records)
    cdelt1 = _col(records, "CDELT1")
    cdelt2 = _col(records, "CDELT2") if "CDELT2" in records.columns else cdelt1.copy()
    if "CODE" in records.columns:
        codes = records["CODE"].astype("string").fillna("").str.strip().str.upper() \
            .to_numpy(dtype=object)
    else:
        codes = np.full(n, "", dtype=object)
    return _Records(chains=records["CC"].to_numpy(dtype=object),
                    start_x=_col(records, "CC_X_PIX"), start_y=_col(records, "CC_Y_PIX"),
                    rsun_px=_col(records, "R_SUN"), cdelt1=cdelt1,
                    cdelt2=np.where(np.isfinite(cdelt2), cdelt2, cdelt1),
                    center_x=_col(records, "CENTER_X"), center_y=_col(records, "CENTER_Y"),
                    dates=_dates(records["DATE_OBS"]), codes=codes)


@dataclass
class _PixelScale:
    """``arcsec = scale × (pix − centre)`` on each axis, one value per record."""

    scale_x: np.ndarray
    scale_y: np.ndarray
    centre_x: np.ndarray
    centre_y: np.ndarray

    @classmethod
    def empty(cls, n: int) -> "_PixelScale":
        return cls(*(np.empty(n) for _ in range(4)))


def _conventions(rec: _Records) -> tuple[_PixelScale, _PixelScale, np.ndarray]:
    """Per record: the *check* and *geometry* pixel conventions of its detection code
    (:func:`.solar.convention_for`), and the check convention's name (for reasons)."""
    n = len(rec)
    check, geometry = _PixelScale.empty(n), _PixelScale.empty(n)
    check_name = np.empty(n, dtype=object)
    for code in pd.unique(rec.codes):
        here = rec.codes == code
        check_conv, geometry_conv = solar.convention_for(code)
        image = (rec.cdelt1[here], rec.cdelt2[here], rec.center_x[here], rec.center_y[here])
        (check.scale_x[here], check.scale_y[here], check.centre_x[here],
         check.centre_y[here]) = check_conv.params(*image)
        (geometry.scale_x[here], geometry.scale_y[here], geometry.centre_x[here],
         geometry.centre_y[here]) = geometry_conv.params(*image)
        check_name[here] = check_conv.name
    return check, geometry, check_name


def _check_records(records: pd.DataFrame, rec: _Records, check: _PixelScale,
                   check_name: np.ndarray, max_pixel_mismatch: float):
    """Steps 1–2: ``(chain_digits, rule, reason)``, the rule None for records to outline.

    Chain codes (:func:`.chaincode.check_chains`), then the image geometry, the
    date, and the chain start against the stored ``CC_X/Y_ARCSEC``.
    """
    chain_digits = cc_mod.chain_digits(rec.chains)
    rule, reason = cc_mod.check_chains(rec.chains, _col(records, "CC_LENGTH"), rec.start_x,
                                       rec.start_y, _col(records, "NAXIS1"),
                                       _col(records, "NAXIS2"), digits=chain_digits)
    rsun_px, cdelt1, cdelt2 = rec.rsun_px, rec.cdelt1, rec.cdelt2
    center_x, center_y = rec.center_x, rec.center_y
    bad_image = ~(np.isfinite(rsun_px) & (rsun_px > 0) & np.isfinite(cdelt1) & (cdelt1 > 0)
                  & (cdelt2 > 0) & np.isfinite(center_x) & np.isfinite(center_y))
    _refuse(rule, reason, bad_image, "geometry.bad_image",
            lambda i: f"image geometry unusable: R_SUN={rsun_px[i]:g}, CDELT1={cdelt1[i]:g}, "
                      f"CDELT2={cdelt2[i]:g}, CENTER=({center_x[i]:g}, {center_y[i]:g})")
    _refuse(rule, reason, np.isnat(rec.dates), "geometry.bad_date",
            lambda i: f"DATE_OBS {records['DATE_OBS'].iloc[i]!r} is not a date")
    _check_chain_start(records, rec, check, check_name, max_pixel_mismatch, rule, reason)
    return chain_digits, rule, reason


def _check_chain_start(records, rec: _Records, check: _PixelScale, check_name: np.ndarray,
                       max_pixel_mismatch: float, rule: np.ndarray, reason: np.ndarray):
    """Step 2: refuse a record whose chain start, converted with its code's check
    convention, lies more than ``max_pixel_mismatch`` pixels from the stored arcsec."""
    stored_x = _col(records, "CC_X_ARCSEC")
    stored_y = _col(records, "CC_Y_ARCSEC")
    start_x, start_y, codes = rec.start_x, rec.start_y, rec.codes
    arcsec_x = check.scale_x * (start_x - check.centre_x)
    arcsec_y = check.scale_y * (start_y - check.centre_y)
    with np.errstate(invalid="ignore"):
        off_px = np.hypot((arcsec_x - stored_x) / check.scale_x,
                          (arcsec_y - stored_y) / check.scale_y)
    _refuse(rule, reason, np.isfinite(off_px) & (off_px > max_pixel_mismatch),
            "geometry.arcsec_mismatch",
            lambda i: f"chain start pixel ({start_x[i]:.0f}, {start_y[i]:.0f}) gives "
                      f"({arcsec_x[i]:.2f}″, {arcsec_y[i]:.2f}″) by the {check_name[i]} "
                      f"convention of code {codes[i] or '(none)'}, but the record stores "
                      f"CC_X/Y_ARCSEC ({stored_x[i]:.2f}″, {stored_y[i]:.2f}″): "
                      f"{off_px[i]:.2f} px "
                      f"({np.hypot(arcsec_x[i] - stored_x[i], arcsec_y[i] - stored_y[i]):.2f}″)"
                      " apart")


# --------------------------------------------------------------------------
# Steps 3–4: outline in the image, then in helioprojective arcsec
# --------------------------------------------------------------------------

@dataclass
class _Disk:
    """The solar disk in the image of each record being outlined (the records
    ``rows``, in order), by the code's *geometry* convention.

    ``clip_radius`` is the apparent radius less ``limb_margin_px`` pixels (arcsec).
    """

    rows: np.ndarray
    rsun_px: np.ndarray
    scale: _PixelScale
    rsun_arcsec: np.ndarray
    clip_radius: np.ndarray
    dates: np.ndarray

    @classmethod
    def of(cls, rec: _Records, geometry: _PixelScale, rows: np.ndarray,
           limb_margin_px: float) -> "_Disk":
        rsun_arcsec = rec.rsun_px * geometry.scale_x
        clip_radius = rsun_arcsec - limb_margin_px * geometry.scale_x
        return cls(rows=rows, rsun_px=rec.rsun_px[rows],
                   scale=_PixelScale(*(a[rows] for a in (
                       geometry.scale_x, geometry.scale_y, geometry.centre_x,
                       geometry.centre_y))),
                   rsun_arcsec=rsun_arcsec[rows], clip_radius=clip_radius[rows],
                   dates=rec.dates[rows])

    def __len__(self) -> int:
        return len(self.rows)

    def to_arcsec(self, pixels: Ragged) -> Ragged:
        """Rings in image pixels (one per record) → helioprojective arcsec."""
        ring = ragged_ids(pixels.offsets)
        s = self.scale
        return Ragged(s.scale_x[ring] * (pixels.x - s.centre_x[ring]),
                      s.scale_y[ring] * (pixels.y - s.centre_y[ring]), pixels.offsets)


def _outlines(rec: _Records, live: np.ndarray, chain_digits, disk: _Disk,
              staircase_px: float):
    """Step 3: ``(chain, outline, bridge, hpc)`` of the records ``live``.

    The decoded chain and its pixel-edge outline (pixels), which outline vertices
    are diagonal-bridge points (off the pixel-corner grid), and the outline with its
    staircase corners cut, in helioprojective arcsec.
    """
    digits = _subset_digits(chain_digits, live)
    start_x, start_y = rec.start_x[live].astype(np.int64), rec.start_y[live].astype(np.int64)
    chain = cc_mod.decode_chains(None, start_x, start_y, digits=digits)
    outline = cc_mod.pixel_outline(None, start_x, start_y, digits=digits, chain=chain)
    bridge = np.empty(len(outline.x), dtype=bool)
    kernels.off_corner_grid(np.ascontiguousarray(outline.x, dtype=float),
                            np.ascontiguousarray(outline.y, dtype=float), bridge)
    # staircase corners cut within half a pixel (fewer vertices, same area)
    cut = sregion.cut_staircases(outline, fixed=bridge, cut=staircase_px) \
        if staircase_px > 0 else outline
    return chain, outline, bridge, disk.to_arcsec(cut)


@dataclass
class _Changes:
    """What step 4 did to each ring (for the flags, notes and refusals).

    smoothed, unsmoothed : follows the limb now; has vertices near the limb but
        was clipped corner by corner (a sliver, or following would cross itself).
    pixel_area : area of the pixel outline (px²) of the smoothed rings, else NaN
        (None when the limb is not followed).
    clipped, multi, empty, kept_fraction : :func:`.sregion.clip_to_disk`
        (``clipped`` includes ``smoothed``).
    simplified, simplify_change : :func:`.sregion.simplify_over`.
    area_px : signed area (px²) after clipping and simplification.
    """

    smoothed: np.ndarray
    unsmoothed: np.ndarray
    pixel_area: np.ndarray | None
    clipped: np.ndarray | None = None
    multi: np.ndarray | None = None
    empty: np.ndarray | None = None
    kept_fraction: np.ndarray | None = None
    simplified: np.ndarray | None = None
    simplify_change: np.ndarray | None = None
    area_px: np.ndarray | None = None


def _follow_limb(hpc: Ragged, outline: Ragged, disk: _Disk, limb_snap_px: float,
                 max_edge_px: float) -> tuple[Ragged, _Changes]:
    """Step 4a: where the outline runs along the limb it follows the limb.

    The runs of vertices within ``limb_snap_px`` of it (the staircase of pixel
    corners, which clipped as it is zig-zags degrees in longitude) become an arc just
    inside the clip circle; rings it would make cross themselves (and slivers along
    the limb) are left to be clipped as they are, with a note.
    """
    m = len(disk)
    changes = _Changes(smoothed=np.zeros(m, dtype=bool), unsmoothed=np.zeros(m, dtype=bool),
                       pixel_area=None)
    if not limb_snap_px > 0:
        return hpc, changes
    scale_x = disk.scale.scale_x
    hpc, changes.smoothed, changes.unsmoothed, _ = sregion.follow_limb(
        hpc, disk.rsun_arcsec, limb_snap_px * scale_x, disk.clip_radius * (1 - 1e-12),
        max_edge_px * scale_x)
    # the pixel outline's area, for the notes of the rings that follow the limb
    changes.pixel_area = np.full(m, np.nan)
    smoothed = np.flatnonzero(changes.smoothed)
    if len(smoothed):
        x, y, offsets = sregion._take(outline, smoothed)
        changes.pixel_area[smoothed] = sregion.signed_area(x, y, offsets)
    return hpc, changes


def _outline_beyond_limb(outline: Ragged, disk: _Disk, limb_snap_px: float,
                         smoothed: np.ndarray) -> np.ndarray:
    """Per outline vertex: beyond the clip circle, or replaced by the limb arc (QA)."""
    ring = ragged_ids(outline.offsets)
    s = disk.scale
    x = s.scale_x[ring] * (outline.x - s.centre_x[ring])
    y = s.scale_y[ring] * (outline.y - s.centre_y[ring])
    beyond = x ** 2 + y ** 2 > (disk.clip_radius[ring]) ** 2
    if limb_snap_px > 0:
        near = np.hypot(x, y) > (disk.rsun_arcsec - limb_snap_px * s.scale_x)[ring]
        beyond = beyond | (near & smoothed[ring])
    return beyond


def _clip_and_simplify(hpc: Ragged, disk: _Disk, changes: _Changes,
                       simplify_tol_px: float) -> Ragged:
    """Step 4b: what still lies beyond the clip circle clipped to it (so no vertex
    transforms to NaN); outlines over :data:`.sregion.MAX_VERTICES` vertices simplified
    within ``simplify_tol_px``.  Records what was done in ``changes``."""
    hpc, clipped, changes.multi, changes.empty, changes.kept_fraction = \
        sregion.clip_to_disk(hpc, disk.clip_radius)
    changes.clipped = clipped | changes.smoothed
    hpc, changes.simplified, changes.simplify_change = sregion.simplify_over(
        hpc, sregion.MAX_VERTICES, simplify_tol_px * disk.scale.scale_x)
    ring = ragged_ids(hpc.offsets)
    changes.area_px = sregion.signed_area(hpc.x / disk.scale.scale_x[ring],
                                          hpc.y / disk.scale.scale_y[ring], hpc.offsets)
    return hpc


def _densify(hpc: Ragged, disk: _Disk, max_edge_px: float, max_edge_centre_px: float,
             edge_tol_px: float) -> Ragged:
    """Step 4c: edges at most ``max_edge_px`` near the limb, longer towards the disk
    centre where the great circle between the ends stays within ``edge_tol_px`` of the
    straight edge (:func:`.sregion.disk_edge_length`)."""
    ring = ragged_ids(hpc.offsets)
    scale_x = disk.scale.scale_x[ring]
    edge_max = sregion.disk_edge_length(hpc.x, hpc.y, disk.rsun_arcsec[ring],
                                        edge_tol_px * scale_x, max_edge_px * scale_x,
                                        max_edge_centre_px * scale_x)
    # an edge takes the shorter limit of its two ends
    edge_max = np.minimum(edge_max, edge_max[sregion._next_index(hpc.offsets)])
    return sregion.densify(hpc, None, edge_max_len=edge_max)


# --------------------------------------------------------------------------
# Steps 5–6: on the sphere
# --------------------------------------------------------------------------

@dataclass
class _Polygons:
    """One ring per record, the same vertices three ways: helioprojective arcsec
    (``hpc``), Carrington degrees (``lon`` unwrapped along each ring, ``lat``) and
    Carrington unit vectors (``xyz``, shape (N, 3))."""

    hpc: Ragged
    lon: np.ndarray
    lat: np.ndarray
    xyz: np.ndarray

    @property
    def offsets(self) -> np.ndarray:
        return self.hpc.offsets


def _to_carrington(hpc: Ragged, disk: _Disk) -> _Polygons:
    """Step 5 and the orientation of step 6: helioprojective → Carrington with one
    observer per distinct image (time, apparent radius), longitudes unwrapped, every
    ring made counter-clockwise."""
    ns, rsun = disk.dates.astype("int64"), np.round(disk.rsun_arcsec, 6)
    image, first = solar.distinct_images(ns, rsun)
    if len(disk):
        obs = solar.observers(ns[first].astype("datetime64[ns]"), rsun[first])
        # per-image values first, then gathered per vertex (cheap trigonometry)
        lon, lat, xyz = solar.hpc_to_hgc(hpc.x, hpc.y, obs.b0, obs.l0, obs.dist,
                                         return_xyz=True, index=image[ragged_ids(hpc.offsets)])
    else:
        lon = lat = np.empty(0)
        xyz = np.empty((0, 3))
    lon = sregion.unwrap_lon(lon, hpc.offsets)
    clockwise = sregion.signed_area(lon, lat, hpc.offsets) < 0
    if clockwise.any():
        reversed_ = sregion.reverse_rings(Ragged(lon, lat, hpc.offsets), clockwise)
        lon, lat = reversed_.x, reversed_.y
        hpc = sregion.reverse_rings(hpc, clockwise)
        index = np.arange(len(xyz))
        xyz = xyz[sregion.reverse_rings(Ragged(index, index, hpc.offsets), clockwise).x]
    return _Polygons(hpc, lon, lat, xyz)


@dataclass
class _Budget:
    """The vertex budget's result: ``full`` (the polygons before it, None when no
    budget), ``kept`` (per vertex of ``full``), ``plane`` (gnomonic ``(x, y, cosd)``
    of the kept vertices) and ``change`` (relative area change per ring)."""

    full: _Polygons | None
    kept: np.ndarray | None
    plane: tuple | None
    change: np.ndarray


def _vertex_budget(polygons: _Polygons, disk: _Disk, vertex_tol_px: float):
    """Step 6a: Douglas–Peucker in the gnomonic plane about each polygon.

    pgSphere's great-circle edges are straight lines in that plane; each ring keeps the
    vertices it needs to stay within ``vertex_tol_px`` of the full outline as the image
    shows it (pgSphere's parsing and GiST key cost grow with the square of the vertex
    count).  Returns ``(polygons, budget)``.
    """
    m = len(disk)
    if not (vertex_tol_px > 0 and m):
        return polygons, _Budget(None, None, None, np.zeros(m))
    gx, gy, cosd = sregion.gnomonic(None, None, polygons.offsets, v=polygons.xyz)
    # an image pixel at the disk centre spans (1 - sin ρ)/sin ρ pixels' angle seen
    # from the Sun's centre (ρ: apparent radius) and less anywhere else on the disk;
    # gnomonic distances are never shorter than angles: so the tolerance is kept
    sin_r = np.sin(np.deg2rad(disk.rsun_arcsec / 3600.0))
    pixel = np.deg2rad(np.minimum(disk.scale.scale_x, disk.scale.scale_y) / 3600.0)
    kept = sregion.douglas_peucker(gx, gy, polygons.offsets,
                                   vertex_tol_px * pixel * (1 - sin_r) / sin_r)
    area_full = sregion.signed_area(gx, gy, polygons.offsets)
    reduced = _keep_vertices(kept, polygons)
    area_kept = sregion.signed_area(gx[kept], gy[kept], reduced.offsets)
    change = np.where(area_full != 0,
                      area_kept / np.where(area_full != 0, area_full, 1) - 1, 0.0)
    # still a gnomonic view of each ring
    return reduced, _Budget(polygons, kept, (gx[kept], gy[kept], cosd[kept]), change)


def _check_on_sphere(polygons: _Polygons, budget: _Budget, disk: _Disk,
                     changes: _Changes, simplify_tol_px: float):
    """Step 6b: refusals from the geometry, ``(polygons, rule, reason)`` per ring.

    Rings clipped away entirely are off the disk; the others are checked with
    pgSphere's rules (:func:`.sregion.check_polygons`; orientation already made
    counter-clockwise).  A ring the vertex budget made cross itself gets every
    vertex back and is checked again.
    """
    m = len(disk)
    rule = np.full(m, None, dtype=object)
    reason = np.full(m, None, dtype=object)
    for k in np.flatnonzero(changes.empty):
        rule[k] = "geometry.off_disk"
        reason[k] = (f"the region lies entirely beyond the limb (the visible disk has radius "
                     f"{disk.rsun_arcsec[k]:.1f}″ = R_SUN {disk.rsun_px[k]:g} px)")
    sphere_rule, sphere_reason = sregion.check_polygons(
        polygons.lon, polygons.lat, polygons.offsets, require_ccw=False, xyz=polygons.xyz,
        plane=budget.plane)
    if budget.full is not None:
        undo = np.flatnonzero(sphere_rule == "pgsphere.self_intersection")
        if len(undo):   # keep the full outline of these rings, and check it again
            budget.kept |= _member(ragged_ids(budget.full.offsets), undo, m)
            polygons = _keep_vertices(budget.kept, budget.full)
            back = _member(ragged_ids(polygons.offsets), undo, m)
            budget.change[undo] = 0.0
            sphere_rule[undo], sphere_reason[undo] = sregion.check_polygons(
                polygons.lon[back], polygons.lat[back],
                _sub_offsets(polygons.hpc.counts[undo]), require_ccw=False,
                xyz=polygons.xyz[back])
    for k in np.flatnonzero((sphere_rule != None) & (rule == None)):  # noqa: E711
        rule[k] = sphere_rule[k]
        reason[k] = sphere_reason[k]
        if sphere_rule[k] == "pgsphere.vertices" and changes.simplified[k]:
            reason[k] += f" even after simplification within {simplify_tol_px} px"
    return polygons, rule, reason


# --------------------------------------------------------------------------
# Output columns
# --------------------------------------------------------------------------

def _output_frame(records: pd.DataFrame, live: np.ndarray, rule: np.ndarray,
                  reason: np.ndarray, polygons: _Polygons, budget: _Budget,
                  changes: _Changes, *, limb_snap_px: float, simplify_tol_px: float,
                  digits: int) -> pd.DataFrame:
    """The frame of :func:`hfc_ar_polygons`: the geometry columns of the accepted
    records of ``live``, None/NaN/0 for the others."""
    accepted = rule[live] == None  # noqa: E711
    offsets = polygons.offsets
    c1min, c1max = sregion.lon_range(polygons.lon, offsets)
    c2min, c2max = _ring_min_max(polygons.lat, offsets)
    lon_lo, lon_hi = _ring_min_max(polygons.lon, offsets)
    clon, clat = sregion.ring_centroids(polygons.lon, polygons.lat, offsets, digits)
    seam = (lon_lo < 0) | (lon_hi >= 360)
    index = records.index
    n = len(records)

    def column(values, fill, dtype=object):
        res = np.full(n, fill, dtype=dtype)
        if len(live):
            res[live] = np.where(accepted, np.asarray(values), fill)
        return pd.Series(res, index=index, dtype=dtype)

    return pd.DataFrame({
        "s_region": column(_stcs(polygons, accepted, digits), None),
        "c1min": column(c1min, np.nan, float),
        "c1max": column(c1max, np.nan, float),
        "c2min": column(c2min, np.nan, float),
        "c2max": column(c2max, np.nan, float),
        "geom_flag": column(_flags(accepted, changes, seam), None),
        "area_ratio": column(_area_ratio(records, live, polygons, changes.area_px), np.nan,
                             float),
        "n_vertices": column(polygons.hpc.counts, 0, np.int64),
        "simplify_change": column(budget.change, np.nan, float),
        "centroid_lon": column(clon, np.nan, float),
        "centroid_lat": column(clat, np.nan, float),
        "rule": pd.Series(rule, index=index, dtype=object),
        "reason": pd.Series(reason, index=index, dtype=object),
        "geom_note": column(_notes(accepted, changes, limb_snap_px, simplify_tol_px), None),
    }, index=index)


def _ring_min_max(values: np.ndarray, offsets: np.ndarray):
    """Smallest and largest value of each ring (NaN for an empty ring)."""
    m = len(offsets) - 1
    nonempty = np.diff(offsets) > 0
    lo = np.full(m, np.nan)
    hi = np.full(m, np.nan)
    lo[nonempty] = np.minimum.reduceat(values, offsets[:-1][nonempty])
    hi[nonempty] = np.maximum.reduceat(values, offsets[:-1][nonempty])
    return lo, hi


def _area_ratio(records: pd.DataFrame, live: np.ndarray, polygons: _Polygons,
                area_px: np.ndarray) -> np.ndarray:
    """Outline area after clipping / FEAT_AREA_PIX; where no pixel count is given,
    spherical area / FEAT_AREA_DEG2."""
    m = len(live)
    counts = polygons.hpc.counts
    feat_pix = _col(records, "FEAT_AREA_PIX")[live]
    feat_deg2 = _col(records, "FEAT_AREA_DEG2")[live]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(feat_pix > 0, np.abs(area_px) / feat_pix, np.nan)
        need = np.flatnonzero(~(feat_pix > 0) & (feat_deg2 > 0) & (counts > 0))
        if len(need):
            keep = _member(ragged_ids(polygons.offsets), need, m)
            ratio[need] = sregion.spherical_area(polygons.lon[keep], polygons.lat[keep],
                                                 _sub_offsets(counts[need])) / feat_deg2[need]
    return ratio


#: ``geom_flag`` of each combination of (limb_clipped, repaired, seam, simplified),
#: indexed by the bits 1, 2, 4, 8.
_FLAG_NAMES = ("limb_clipped", "repaired", "seam", "simplified")
_FLAGS = np.array(["+".join(nm for j, nm in enumerate(_FLAG_NAMES) if c >> j & 1) or "ok"
                   for c in range(16)], dtype=object)


def _flags(accepted: np.ndarray, changes: _Changes, seam: np.ndarray) -> np.ndarray:
    """``geom_flag`` per ring, looked up (no per-row Python); None where refused."""
    code = (changes.clipped.astype(int) | changes.multi.astype(int) << 1
            | seam.astype(int) << 2 | changes.simplified.astype(int) << 3)
    return np.where(accepted, _FLAGS[code], None)


def _notes(accepted: np.ndarray, changes: _Changes, limb_snap_px: float,
           simplify_tol_px: float) -> np.ndarray:
    """``geom_note`` per ring: a sentence per step that changed the outline."""
    notes = np.full(len(accepted), None, dtype=object)
    c = changes
    for k in np.flatnonzero(accepted & (c.clipped | c.multi | c.simplified | c.unsmoothed)):
        note = []
        if c.smoothed[k]:
            change = 100 * (abs(c.area_px[k] / c.pixel_area[k]) - 1)
            note.append(f"clipped at the limb: follows the limb where the outline came within "
                        f"{limb_snap_px:g} px of it (area {change:+.1f} % "
                        "against the pixel outline)")
        elif c.clipped[k]:
            note.append(f"clipped at the limb: {100 * (1 - c.kept_fraction[k]):.1f} % of the "
                        "outline's area lay beyond")
        if c.unsmoothed[k]:
            note.append("not smoothed along the limb (the outline runs within "
                        f"{limb_snap_px:g} px of the limb all round, or following the limb "
                        "would make it cross itself): clipped pixel corner by corner")
        if c.multi[k]:
            note.append("the limb cut the region in parts: the largest part is kept")
        if c.simplified[k]:
            note.append(f"simplified within {simplify_tol_px} px to stay within "
                        f"{sregion.MAX_VERTICES} vertices: area change "
                        f"{100 * c.simplify_change[k]:+.2f} %")
        notes[k] = "; ".join(note)
    return notes


def _stcs(polygons: _Polygons, accepted: np.ndarray, digits: int) -> np.ndarray:
    """STC-S text of the accepted rings, None for the others."""
    stcs = np.full(len(accepted), None, dtype=object)
    if accepted.any():
        rows = np.flatnonzero(accepted)
        keep = _member(ragged_ids(polygons.offsets), rows, len(accepted))
        stcs[rows] = sregion.to_stcs(polygons.lon[keep], polygons.lat[keep],
                                     _sub_offsets(polygons.hpc.counts[rows]), digits=digits)
    return stcs


def _sub_offsets(counts: np.ndarray) -> np.ndarray:
    off = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    return off


def _keep_vertices(keep: np.ndarray, polygons: _Polygons) -> _Polygons:
    """The polygons with only their ``keep`` vertices (one compiled pass:
    :func:`.kernels.kept_vertices`)."""
    hpc = polygons.hpc
    m = int(np.count_nonzero(keep))
    x, y, lon, lat = (np.empty(m) for _ in range(4))
    xyz = np.empty((m, 3))
    offsets = np.empty(len(hpc.offsets), dtype=np.int64)
    kernels.kept_vertices(np.ascontiguousarray(keep, dtype=np.bool_),
                          np.ascontiguousarray(hpc.offsets, dtype=np.int64),
                          *(np.ascontiguousarray(a, dtype=float) for a in
                            (hpc.x, hpc.y, polygons.lon, polygons.lat, polygons.xyz)),
                          x, y, lon, lat, xyz, offsets)
    return _Polygons(Ragged(x, y, offsets), lon, lat, xyz)


def _subset_digits(digits, rows):
    """``chain_digits`` output restricted to chains ``rows`` (ascending)."""
    d, off, bad = digits
    counts = np.diff(off)[rows]
    sub = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=sub[1:])
    keep = np.repeat(rows, counts)
    pos = np.arange(sub[-1]) - np.repeat(sub[:-1], counts) + off[keep]
    return d[pos], sub, bad[rows]
