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
6. longitudes unwrapped, ring made counter-clockwise, pgSphere's rules checked
   on the sphere (:func:`.sregion.check_polygons`), STC-S written.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import chaincode as cc_mod
from . import solar, sregion
from .chaincode import Ragged, _member, ragged_ids

__all__ = ["hfc_ar_polygons", "hfc_ar_geometry", "GeometryParts", "COLUMNS"]

#: Output columns of :func:`hfc_ar_polygons` (``geom_note`` is extra: a short
#: sentence on clipping / simplification for QA, None when nothing happened).
COLUMNS = ["s_region", "c1min", "c1max", "c2min", "c2max", "geom_flag", "area_ratio",
           "n_vertices", "simplify_change", "rule", "reason", "geom_note"]

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
    s = pd.Series(np.asarray(values, dtype=object))
    if pd.api.types.is_datetime64_any_dtype(values):
        t = pd.to_datetime(values)
    else:
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
        budget, see ``vertex_tol_px``), ``rule`` and ``reason`` (None when accepted),
        ``geom_note``.

    Raises
    ------
    KeyError
        When a required column is missing (names the columns).
    """
    return hfc_ar_geometry(records, _parts=False, **options)[0]


def hfc_ar_geometry(records: pd.DataFrame, *, max_edge_px: float = 4.0,
                    max_edge_centre_px: float = 32.0, edge_tol_px: float = 0.05,
                    staircase_px: float = 0.5,
                    limb_margin_px: float = 0.02, limb_snap_px: float = 0.8,
                    simplify_tol_px: float = 0.5, vertex_tol_px: float = 0.45,
                    digits: int = 6, max_pixel_mismatch: float = 1.0,
                    _parts: bool = True):
    """:func:`hfc_ar_polygons` plus the intermediate pieces a QA figure needs.

    Parameters
    ----------
    records : pandas.DataFrame
        As for :func:`hfc_ar_polygons`.
    max_edge_px : float
        Densify: longest edge, in image pixels, before the transform, near the
        limb (and along the limb arc).
    max_edge_centre_px, edge_tol_px : float
        Densify: edges may be longer than ``max_edge_px`` (up to
        ``max_edge_centre_px``) where the great circle between their ends stays
        within ``edge_tol_px`` of the straight edge in the image
        (:func:`.sregion.disk_edge_length`).
    staircase_px : float
        Corners of pixel staircases are cut this far along their edges
        (:func:`.sregion.cut_staircases`: every point within ``staircase_px/√2``
        of the pixel outline, a 45° staircase becomes one edge); 0 keeps every
        pixel corner.
    limb_margin_px : float
        Clip circle radius = apparent solar radius − this many pixels (keeps the
        transform away from the tangent line of sight).
    limb_snap_px : float
        Where the outline runs within this many pixels of the limb it follows the
        limb (:func:`.sregion.follow_limb`): the staircase of pixel corners there
        becomes an arc on the clip circle, so a region whose pixels reach the limb
        reaches it without the zig-zag of degrees in longitude the staircase makes
        at the limb.  0 disables (outline clipped corner by corner).
    simplify_tol_px : float
        Douglas–Peucker tolerance (pixels) for outlines over 1024 vertices.
    vertex_tol_px : float
        Vertex budget: the published polygon keeps only the vertices Douglas–Peucker
        needs, in the gnomonic plane about the polygon (where pgSphere's edges are
        straight), to stay within this many image pixels of the full outline
        (0: keep every vertex).  With ``edge_tol_px`` (0.05) the published edges stay
        within half a pixel of the outline.  pgSphere's input and GiST key cost grow with the
        square of the vertex count.  The relative area change is in
        ``simplify_change``.
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
    missing = [c for c in _REQUIRED if c not in records.columns]
    if missing:
        raise KeyError(f"hfc_ar_polygons: records lack column(s) {', '.join(missing)}")
    n = len(records)
    cc = records["CC"].to_numpy(dtype=object)
    x0 = _col(records, "CC_X_PIX")
    y0 = _col(records, "CC_Y_PIX")
    rsun_px = _col(records, "R_SUN")
    cdelt1 = _col(records, "CDELT1")
    cdelt2 = _col(records, "CDELT2") if "CDELT2" in records.columns else cdelt1.copy()
    cdelt2 = np.where(np.isfinite(cdelt2), cdelt2, cdelt1)
    center_x = _col(records, "CENTER_X")
    center_y = _col(records, "CENTER_Y")
    dates = _dates(records["DATE_OBS"])
    codes = (records["CODE"].astype("string").fillna("").str.strip().str.upper().to_numpy(dtype=object)
             if "CODE" in records.columns else np.full(n, "", dtype=object))

    digits_all = cc_mod.chain_digits(cc)
    rule, reason = cc_mod.check_chains(cc, _col(records, "CC_LENGTH"), x0, y0,
                                       _col(records, "NAXIS1"), _col(records, "NAXIS2"),
                                       digits=digits_all)

    def put(mask, code, fmt):
        for i in np.flatnonzero(mask & (rule == None)):  # noqa: E711
            rule[i] = code
            reason[i] = fmt(i)

    bad_img = ~(np.isfinite(rsun_px) & (rsun_px > 0) & np.isfinite(cdelt1) & (cdelt1 > 0)
                & (cdelt2 > 0) & np.isfinite(center_x) & np.isfinite(center_y))
    put(bad_img, "geometry.bad_image",
        lambda i: f"image geometry unusable: R_SUN={rsun_px[i]:g}, CDELT1={cdelt1[i]:g}, "
                  f"CDELT2={cdelt2[i]:g}, CENTER=({center_x[i]:g}, {center_y[i]:g})")
    put(np.isnat(dates), "geometry.bad_date",
        lambda i: f"DATE_OBS {records['DATE_OBS'].iloc[i]!r} is not a date")

    # --- conventions per detection code -------------------------------------------
    csx, csy, ccx, ccy = (np.empty(n) for _ in range(4))
    gsx, gsy, gcx, gcy = (np.empty(n) for _ in range(4))
    check_name = np.empty(n, dtype=object)
    for code in pd.unique(codes):
        m = codes == code
        chk, geo = solar.convention_for(code)
        a = (cdelt1[m], cdelt2[m], center_x[m], center_y[m])
        csx[m], csy[m], ccx[m], ccy[m] = chk.params(*a)
        gsx[m], gsy[m], gcx[m], gcy[m] = geo.params(*a)
        check_name[m] = chk.name

    # --- chain start against the stored arcsec ------------------------------------
    sx_arc = _col(records, "CC_X_ARCSEC")
    sy_arc = _col(records, "CC_Y_ARCSEC")
    tx0 = csx * (x0 - ccx)
    ty0 = csy * (y0 - ccy)
    with np.errstate(invalid="ignore"):
        off_px = np.hypot((tx0 - sx_arc) / csx, (ty0 - sy_arc) / csy)
    put(np.isfinite(off_px) & (off_px > max_pixel_mismatch), "geometry.arcsec_mismatch",
        lambda i: f"chain start pixel ({x0[i]:.0f}, {y0[i]:.0f}) gives "
                  f"({tx0[i]:.2f}″, {ty0[i]:.2f}″) by the {check_name[i]} convention of code "
                  f"{codes[i] or '(none)'}, but the record stores CC_X/Y_ARCSEC "
                  f"({sx_arc[i]:.2f}″, {sy_arc[i]:.2f}″): {off_px[i]:.2f} px "
                  f"({np.hypot(tx0[i] - sx_arc[i], ty0[i] - sy_arc[i]):.2f}″) apart")

    # --- geometry for the records still in -------------------------------------
    live = np.flatnonzero(rule == None)  # noqa: E711
    m = len(live)
    dg = _subset_digits(digits_all, live)
    lx0, ly0 = x0[live].astype(np.int64), y0[live].astype(np.int64)
    chain = cc_mod.decode_chains(None, lx0, ly0, digits=dg)
    outline = cc_mod.pixel_outline(None, lx0, ly0, digits=dg, chain=chain)
    oid = ragged_ids(outline.offsets)
    L = live[oid]
    bridge = np.abs(np.mod(outline.x, 1.0) - 0.5) > 1e-9
    bridge |= np.abs(np.mod(outline.y, 1.0) - 0.5) > 1e-9
    rsun_arc = rsun_px * gsx
    r_clip = rsun_arc - limb_margin_px * gsx
    if _parts:   # (for QA figures only)
        beyond = (gsx[L] * (outline.x - gcx[L])) ** 2 \
            + (gsy[L] * (outline.y - gcy[L])) ** 2 > (r_clip[L]) ** 2
    # staircase corners cut within half a pixel (a third of the vertices, exact area)
    cut = sregion.cut_staircases(outline, fixed=bridge, cut=staircase_px) \
        if staircase_px > 0 else outline
    cid = ragged_ids(cut.offsets)
    hx = gsx[live][cid] * (cut.x - gcx[live][cid])
    hy = gsy[live][cid] * (cut.y - gcy[live][cid])
    hpc = Ragged(hx, hy, cut.offsets)
    smoothed = np.zeros(m, dtype=bool)
    unsmoothed = np.zeros(m, dtype=bool)
    area_px0 = None
    if limb_snap_px > 0:
        # where the outline runs along the limb it follows the limb: the runs of
        # vertices within limb_snap_px of it (the staircase of pixel corners, which
        # clipped as it is zig-zags degrees in longitude) become an arc just inside
        # the clip circle; rings it would make cross themselves (and slivers along
        # the limb) are clipped as they are, with a note
        hpc, smoothed, unsmoothed, _ = sregion.follow_limb(
            hpc, rsun_arc[live], limb_snap_px * gsx[live], r_clip[live] * (1 - 1e-12),
            max_edge_px * gsx[live])
        if _parts:
            ox_ = gsx[L] * (outline.x - gcx[L])
            oy_ = gsy[L] * (outline.y - gcy[L])
            near = np.hypot(ox_, oy_) > (rsun_arc - limb_snap_px * gsx)[L]
            beyond = beyond | (near & smoothed[oid])
        # the pixel outline's area, for the notes of the rings that follow the limb
        area_px0 = np.full(m, np.nan)
        sm = np.flatnonzero(smoothed)
        if len(sm):
            ox, oy, oo = sregion._take(outline, sm)
            area_px0[sm] = sregion.signed_area(ox, oy, oo)

    hpc, clipped, multi, empty, kept = sregion.clip_to_disk(hpc, r_clip[live])
    clipped = clipped | smoothed
    hpc, simplified, area_change = sregion.simplify_over(hpc, sregion.MAX_VERTICES,
                                                         simplify_tol_px * gsx[live])
    hid = ragged_ids(hpc.offsets)
    area_px = sregion.signed_area(hpc.x / gsx[live][hid], hpc.y / gsy[live][hid], hpc.offsets)
    # densify: edges at most max_edge_px near the limb, longer towards the disk centre
    # where the great circle between the ends stays within edge_tol_px of the edge
    hid = ragged_ids(hpc.offsets)
    Lmax = sregion.disk_edge_length(hpc.x, hpc.y, rsun_arc[live][hid],
                                    edge_tol_px * gsx[live][hid], max_edge_px * gsx[live][hid],
                                    max_edge_centre_px * gsx[live][hid])
    Lmax = np.minimum(Lmax, Lmax[sregion._next_index(hpc.offsets)])
    hpc = sregion.densify(hpc, None, edge_max_len=Lmax)
    hid = ragged_ids(hpc.offsets)

    # one observer per distinct image (time, apparent radius)
    key = pd.MultiIndex.from_arrays([dates[live].astype("int64"), np.round(rsun_arc[live], 6)])
    img, uniq = pd.factorize(key)
    if m:
        t_u = np.asarray(uniq.get_level_values(0), dtype="int64").astype("datetime64[ns]")
        obs = solar.observers(t_u, np.asarray(uniq.get_level_values(1), dtype=float))
        vi = img[hid]
        # per-image values first, then gathered per vertex (cheap trigonometry)
        lon, lat, xyz = solar.hpc_to_hgc(hpc.x, hpc.y, obs.b0, obs.l0, obs.dist,
                                         return_xyz=True, index=vi)
    else:
        lon = lat = np.empty(0)
        xyz = np.empty((0, 3))

    ulon = sregion.unwrap_lon(lon, hpc.offsets)
    sa = sregion.signed_area(ulon, lat, hpc.offsets)
    cw = sa < 0
    if cw.any():
        rev = sregion.reverse_rings(Ragged(ulon, lat, hpc.offsets), cw)
        ulon, lat = rev.x, rev.y
        hpc = sregion.reverse_rings(hpc, cw)
        ridx = sregion.reverse_rings(Ragged(np.arange(len(xyz)), np.arange(len(xyz)),
                                            hpc.offsets), cw).x
        xyz = xyz[ridx]

    # --- vertex budget: Douglas–Peucker in the gnomonic plane about each polygon, where
    # pgSphere's great-circle edges are straight lines, within vertex_tol_px of the
    # full outline as the image shows it (pgSphere's parsing and GiST key cost grow
    # with the square of the vertex count); a ring the simplification would make
    # cross itself keeps every vertex
    change = np.zeros(m)
    if vertex_tol_px > 0 and m:
        gx, gy, gcv = sregion.gnomonic(None, None, hpc.offsets, v=xyz)
        # an image pixel at the disk centre spans (1 - sin ρ)/sin ρ pixels' angle seen
        # from the Sun's centre (ρ: apparent radius) and less anywhere else on the disk;
        # gnomonic distances are never shorter than angles: so the tolerance is kept
        sin_r = np.sin(np.deg2rad(rsun_arc[live] / 3600.0))
        pix = np.deg2rad(np.minimum(gsx, gsy)[live] / 3600.0)
        vkeep = sregion.douglas_peucker(gx, gy, hpc.offsets,
                                       vertex_tol_px * pix * (1 - sin_r) / sin_r)
        a_full = sregion.signed_area(gx, gy, hpc.offsets)
        full = (hpc, ulon, lat, xyz)
        hpc, ulon, lat, xyz = _keep_vertices(vkeep, hpc, ulon, lat, xyz)
        a_kept = sregion.signed_area(gx[vkeep], gy[vkeep], hpc.offsets)
        change = np.where(a_full != 0, a_kept / np.where(a_full != 0, a_full, 1) - 1, 0.0)
        plane = (gx[vkeep], gy[vkeep], gcv[vkeep])   # still a gnomonic view of each ring
    else:
        full = plane = None

    # --- refusals from geometry -----------------------------------------------
    lrule = np.full(m, None, dtype=object)
    lreason = np.full(m, None, dtype=object)
    for k in np.flatnonzero(empty):
        i = live[k]
        lrule[k] = "geometry.off_disk"
        lreason[k] = (f"the region lies entirely beyond the limb (the visible disk has radius "
                      f"{rsun_arc[i]:.1f}″ = R_SUN {rsun_px[i]:g} px)")
    # (orientation already made counter-clockwise above: not checked again)
    prule, preason = sregion.check_polygons(ulon, lat, hpc.offsets, require_ccw=False, xyz=xyz,
                                            plane=plane)
    if full is not None:
        undo = np.flatnonzero(prule == "pgsphere.self_intersection")
        if len(undo):   # keep the full outline of these rings, and check it again
            vkeep |= _member(ragged_ids(full[0].offsets), undo, m)
            hpc, ulon, lat, xyz = _keep_vertices(vkeep, *full)
            back = _member(ragged_ids(hpc.offsets), undo, m)
            change[undo] = 0.0
            prule[undo], preason[undo] = sregion.check_polygons(
                ulon[back], lat[back], _sub_offsets(hpc.counts[undo]), require_ccw=False,
                xyz=xyz[back])
    hid = ragged_ids(hpc.offsets)
    for k in np.flatnonzero((prule != None) & (lrule == None)):  # noqa: E711
        lrule[k] = prule[k]
        lreason[k] = preason[k]
        if prule[k] == "pgsphere.vertices" and simplified[k]:
            lreason[k] += f" even after simplification within {simplify_tol_px} px"
    rule[live] = lrule
    reason[live] = lreason

    # --- outputs -------------------------------------------------------------
    acc = lrule == None  # noqa: E711
    c1min, c1max = sregion.lon_range(ulon, hpc.offsets)
    counts = hpc.counts
    ne = counts > 0
    c2min = np.full(m, np.nan)
    c2max = np.full(m, np.nan)
    c2min[ne] = np.minimum.reduceat(lat, hpc.offsets[:-1][ne])
    c2max[ne] = np.maximum.reduceat(lat, hpc.offsets[:-1][ne])
    lo_u = np.full(m, np.nan)
    hi_u = np.full(m, np.nan)
    lo_u[ne] = np.minimum.reduceat(ulon, hpc.offsets[:-1][ne])
    hi_u[ne] = np.maximum.reduceat(ulon, hpc.offsets[:-1][ne])
    seam = (lo_u < 0) | (hi_u >= 360)

    feat_pix = _col(records, "FEAT_AREA_PIX")[live]
    feat_deg2 = _col(records, "FEAT_AREA_DEG2")[live]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(feat_pix > 0, np.abs(area_px) / feat_pix, np.nan)
        need = np.flatnonzero(~(feat_pix > 0) & (feat_deg2 > 0) & ne)
        if len(need):  # spherical area only where no pixel count is given
            keep = _member(hid, need, m)
            sub = np.zeros(len(need) + 1, dtype=np.int64)
            np.cumsum(counts[need], out=sub[1:])
            ratio[need] = sregion.spherical_area(ulon[keep], lat[keep], sub) / feat_deg2[need]

    # flags: one of 16 combinations, looked up (no per-row Python)
    names = ("limb_clipped", "repaired", "seam", "simplified")
    table = np.array(["+".join(nm for j, nm in enumerate(names) if c >> j & 1) or "ok"
                      for c in range(16)], dtype=object)
    code = (clipped.astype(int) | multi.astype(int) << 1 | seam.astype(int) << 2
            | simplified.astype(int) << 3)
    flags = np.where(acc, table[code], None)
    notes = np.full(m, None, dtype=object)
    for k in np.flatnonzero(acc & (clipped | multi | simplified | unsmoothed)):
        note = []
        if smoothed[k]:
            note.append(f"clipped at the limb: follows the limb where the outline came within "
                        f"{limb_snap_px:g} px of it (area {100 * (abs(area_px[k] / area_px0[k]) - 1):+.1f} % "
                        "against the pixel outline)")
        elif clipped[k]:
            note.append(f"clipped at the limb: {100 * (1 - kept[k]):.1f} % of the outline's "
                        "area lay beyond")
        if unsmoothed[k]:
            note.append("not smoothed along the limb (the outline runs within "
                        f"{limb_snap_px:g} px of the limb all round, or following the limb "
                        "would make it cross itself): clipped pixel corner by corner")
        if multi[k]:
            note.append("the limb cut the region in parts: the largest part is kept")
        if simplified[k]:
            note.append(f"simplified within {simplify_tol_px} px to stay within "
                        f"{sregion.MAX_VERTICES} vertices: area change {100 * area_change[k]:+.2f} %")
        notes[k] = "; ".join(note)

    stcs = np.full(m, None, dtype=object)
    if acc.any():
        sel = np.flatnonzero(acc)
        keep = _member(hid, sel, m)
        sub = np.zeros(len(sel) + 1, dtype=np.int64)
        np.cumsum(counts[sel], out=sub[1:])
        stcs[sel] = sregion.to_stcs(ulon[keep], lat[keep], sub, digits=digits)

    idx = records.index

    def col(vals, fill, dtype=object):
        res = np.full(n, fill, dtype=dtype)
        if len(live):
            res[live] = np.where(acc, np.asarray(vals), fill)
        return pd.Series(res, index=idx, dtype=dtype)

    out = pd.DataFrame({
        "s_region": col(stcs, None),
        "c1min": col(c1min, np.nan, float),
        "c1max": col(c1max, np.nan, float),
        "c2min": col(c2min, np.nan, float),
        "c2max": col(c2max, np.nan, float),
        "geom_flag": col(flags, None),
        "area_ratio": col(ratio, np.nan, float),
        "n_vertices": col(counts, 0, np.int64),
        "simplify_change": col(change, np.nan, float),
        "rule": pd.Series(rule, index=idx, dtype=object),
        "reason": pd.Series(reason, index=idx, dtype=object),
        "geom_note": col(notes, None),
    }, index=idx)
    if not _parts:
        return out, None
    parts = GeometryParts(rows=live, chain=chain, outline=outline, outline_beyond_limb=beyond,
                          outline_bridge=bridge, hpc=hpc, lon=ulon, lat=lat)
    return out, parts


def _sub_offsets(counts: np.ndarray) -> np.ndarray:
    off = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    return off


def _keep_vertices(keep, hpc: Ragged, lon, lat, xyz):
    """The rings with only their ``keep`` vertices."""
    counts = np.bincount(ragged_ids(hpc.offsets), weights=keep,
                         minlength=len(hpc)).astype(np.int64)
    return Ragged(hpc.x[keep], hpc.y[keep], _sub_offsets(counts)), lon[keep], lat[keep], \
        xyz[keep]


def _subset_digits(digits, rows):
    """``chain_digits`` output restricted to chains ``rows`` (ascending)."""
    d, off, bad = digits
    counts = np.diff(off)[rows]
    sub = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=sub[1:])
    keep = np.repeat(rows, counts)
    pos = np.arange(sub[-1]) - np.repeat(sub[:-1], counts) + off[keep]
    return d[pos], sub, bad[rows]
