"""QA figures: each region side by side, and the summary plots of a run.

Every figure is a :class:`matplotlib.figure.Figure` drawn on the Agg canvas (no pyplot,
no display: cron runs need none).

Side-by-side figure of one region (:func:`region_figure`):

left
    the chain-code contour on the image's pixel grid — pixel centres of the chain, the
    outline of the pixel edges (what the geometry stage projects), the solar disk and its
    limb from the observation's ``CENTER_X/CENTER_Y/R_SUN`` — over the observation's own
    image when a file of it is at hand; otherwise over no image (a note says so), or
    over a *context* image only when one is passed explicitly, labelled as such;
right
    the published ``s_region`` in Carrington longitude/latitude with a graticule, the
    0°/360° seam when the region is near it, the traced outline projected the same way
    for comparison, vertices on the limb (clipped) and vertices away from the traced
    outline (repaired) marked, the catalogue's own centroid (``FEAT_CARR_LONG_DEG/LAT``)
    and the polygon's.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle

from .. import stcs
from ..geometry.sregion import ring_centroids

#: Colours used throughout the report (kept in one place).
COLOURS = {"disk": "#fff4cc", "limb": "#e08a00", "chain": "#1f5fbf", "outline": "black",
           "sregion": "#c0392b", "traced": "#555555", "clipped": "#d62728",
           "repaired": "#ff7f0e", "catalogue": "#2ca02c", "seam": "#7b2cbf"}
#: Vertices farther than this (deg) from the traced outline count as repaired/moved.
REPAIR_TOL_DEG = 0.05
#: Vertices within this many pixels of the limb (R_SUN) count as clipped (the geometry
#: stage clips to a circle 0.1 px inside the limb).
LIMB_TOL_PIX = 0.2


def new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas (headless)."""
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


#: Where a gallery panel's title sits (axes fraction): given, matplotlib skips placing it
#: above whatever overlaps the axes' top (the tight boxes of every child axes, ≈ 45 ms a
#: figure); nothing does there (the disk thumbnail has no ticks), so the pixels are the same.
TITLE_Y = 1.0

#: zlib level of the PNGs: 1 writes the same pixels as zlib's default (6) in 30 ms
#: less for a gallery figure (of ~0.3 s then), in files ~6 % larger.
PNG_COMPRESS_LEVEL = 1


def save(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` as PNG and return the path.

    A figure on the Agg canvas at ``dpi``, without a layout engine (what this
    package's figures are) is drawn once and its pixels written by :func:`write_png`:
    the pixels ``savefig`` writes (tested), without Pillow's choice of a filter for
    every row (20 → 7 ms for a gallery figure's 1250 × 660 pixels). Others go through
    ``savefig``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(fig.canvas, FigureCanvasAgg) and fig.dpi == dpi and \
            fig.get_layout_engine() is None:
        fig.canvas.draw()
        write_png(path, np.asarray(fig.canvas.buffer_rgba()), dpi)
    else:
        fig.savefig(path, dpi=dpi, format="png",
                    pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
    return path


def write_png(path: Path, rgba: np.ndarray, dpi: float) -> None:
    """An 8-bit RGBA PNG of ``rgba`` (rows × columns × 4): each row unfiltered, zlib at
    :data:`PNG_COMPRESS_LEVEL`, the resolution and the ``Software`` text matplotlib
    writes. (A figure's flat colours compress as well unfiltered: a gallery figure
    122 KB, Pillow's choice of filters 126 KB.)"""
    import struct
    import zlib

    import matplotlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + \
            struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    h, w = rgba.shape[:2]
    rows = np.empty((h, 1 + 4 * w), dtype=np.uint8)
    rows[:, 0] = 0                                  # filter type None, every row
    rows[:, 1:] = np.ascontiguousarray(rgba, dtype=np.uint8).reshape(h, 4 * w)
    per_metre = round(dpi / 0.0254)
    software = f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/"
    Path(path).write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
        + chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1))
        + chunk(b"tEXt", b"Software\x00" + software.encode("latin-1"))
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), PNG_COMPRESS_LEVEL))
        + chunk(b"IEND", b""))


# -- geometry shown in the figures ------------------------------------------------------

@dataclass
class Traced:
    """Chain-code contours of many regions, in pixels and projected to Carrington."""

    chain: object            # Ragged: pixel centres of the chain
    outline: object          # Ragged: pixel-edge outline (pixels)
    lon: np.ndarray          # outline vertices, Carrington lon (deg), NaN off disk
    lat: np.ndarray
    b0: np.ndarray           # per region: observer latitude, Carrington lon, distance
    l0: np.ndarray
    dist: np.ndarray
    ok: np.ndarray           # per region: chain decoded


def _col(records: pd.DataFrame, name: str, default=np.nan) -> np.ndarray:
    """Column ``name`` of ``records`` as floats (unparsable values NaN), or ``default``
    throughout when the column is absent, so a record lacking a column still draws."""
    if name in records:
        return pd.to_numeric(records[name], errors="coerce").to_numpy(float)
    return np.full(len(records), default, float)


def trace(records: pd.DataFrame) -> Traced:
    """Decode and project the chain codes of ``records`` (vectorized).

    ``records`` carries the HFC columns ``CC, CC_X_PIX, CC_Y_PIX, CENTER_X, CENTER_Y,
    R_SUN, CDELT1, CDELT2, DATE_OBS``. The projection uses the image's own disk centre
    and scale (the convention the geometry stage publishes) and one observer per image.
    Chains that cannot be decoded are left empty (``ok`` False).
    """
    from ..geometry import chaincode, solar

    n = len(records)
    cc = ["" if not isinstance(c, str) else c.strip() for c in records["CC"]]
    x0, y0 = _col(records, "CC_X_PIX"), _col(records, "CC_Y_PIX")
    ok = np.array([set(c) <= set("01234567") for c in cc]) & \
        np.isfinite(x0) & np.isfinite(y0)            # "" = a one-pixel region
    cc_ok = [c if o else "" for c, o in zip(cc, ok)]
    xs, ys = np.where(ok, x0, 0).astype(np.int64), np.where(ok, y0, 0).astype(np.int64)
    chain = chaincode.decode_chains(cc_ok, xs, ys)
    try:
        outline = chaincode.pixel_outline(cc_ok, xs, ys)
    except ValueError:
        outline = chain
    cdelt1, cdelt2 = _col(records, "CDELT1"), _col(records, "CDELT2")
    cx, cy = _col(records, "CENTER_X"), _col(records, "CENTER_Y")
    rsun = _col(records, "R_SUN")
    # one observer per distinct image
    t_all = pd.Series(records["DATE_OBS"]).astype(str).to_numpy()
    r_all = np.round(rsun * cdelt1, 4)
    codes, first = solar.distinct_images(t_all, r_all)   # first record of each image
    b0 = np.full(n, np.nan)
    l0 = np.full(n, np.nan)
    dist = np.full(n, np.nan)
    good_img = np.isfinite(r_all[first])
    if good_img.any():
        obs = solar.observers(t_all[first][good_img], r_all[first][good_img])
        idx = np.full(len(first), -1)
        idx[good_img] = np.arange(good_img.sum())
        j = idx[codes]
        has = j >= 0
        b0[has], l0[has], dist[has] = obs.b0[j[has]], obs.l0[j[has]], obs.dist[j[has]]
    rep = np.diff(outline.offsets)
    owner = np.repeat(np.arange(n), rep)
    tx = cdelt1[owner] * (outline.x - cx[owner])
    ty = cdelt2[owner] * (outline.y - cy[owner])
    lon, lat = solar.hpc_to_hgc(tx, ty, b0[owner], l0[owner], dist[owner])
    return Traced(chain, outline, lon, lat, b0, l0, dist, ok)


def warm_up() -> None:
    """Trace two small regions (:func:`.geometry.hfc_ar.warm_up_records`): what a
    gallery's worker would otherwise load on its first figure (≈ 0.5 s of CPU: the
    chain-code and projection kernels, sunpy's ephemeris)."""
    from ..geometry.hfc_ar import warm_up_records
    trace(warm_up_records())


def angular_distance(lon1, lat1, lon2, lat2):
    """Great-circle distance (deg) between points given in degrees."""
    l1, b1, l2, b2 = map(np.deg2rad, (lon1, lat1, lon2, lat2))
    c = np.sin(b1) * np.sin(b2) + np.cos(b1) * np.cos(b2) * np.cos(l1 - l2)
    return np.rad2deg(np.arccos(np.clip(c, -1.0, 1.0)))


def limb_angle(dist_m) -> np.ndarray:
    """Angle (deg) from the sub-observer point to the limb seen from ``dist_m``."""
    from ..geometry.solar import R_SUN_M
    return np.rad2deg(np.arccos(R_SUN_M / np.asarray(dist_m, float)))


def hgc_to_pixel(lon, lat, b0, l0, dist, cdelt1, cdelt2, center_x, center_y):
    """Carrington lon/lat (deg) on the solar surface → 0-based image pixels.

    The inverse of the projection the geometry stage uses (observer at ``dist`` m with
    heliographic latitude ``b0`` and Carrington longitude ``l0``; pixel =
    ``arcsec / CDELT + CENTER``). Used to draw the published polygon back on the pixel
    grid and to find its vertices on the limb.
    """
    from ..geometry.solar import R_SUN_M
    lam, phi = np.deg2rad(np.asarray(lon, float) - l0), np.deg2rad(np.asarray(lat, float))
    b = np.deg2rad(b0)
    x = R_SUN_M * np.cos(phi) * np.sin(lam)
    y = R_SUN_M * (np.sin(phi) * np.cos(b) - np.cos(phi) * np.cos(lam) * np.sin(b))
    z = R_SUN_M * (np.sin(phi) * np.sin(b) + np.cos(phi) * np.cos(lam) * np.cos(b))
    zz = dist - z
    tx = np.rad2deg(np.arctan2(x, zz)) * 3600.0
    ty = np.rad2deg(np.arcsin(y / np.sqrt(x * x + y * y + zz * zz))) * 3600.0
    return tx / cdelt1 + center_x, ty / cdelt2 + center_y


# -- the side-by-side figure ------------------------------------------------------------

def _own_image(record: Mapping, images_dir: Path | None):
    """The observation's own image as a 2-D array, when a file of it is at hand."""
    if images_dir is None:
        return None
    for key in ("FILENAME", "LOC_FILENAME"):
        name = record.get(key)
        if not isinstance(name, str) or not name.strip():
            continue
        p = Path(images_dir) / Path(name.strip()).name
        if p.is_file():
            from astropy.io import fits
            with fits.open(p) as hdul:
                for h in hdul:
                    if h.data is not None and np.ndim(h.data) == 2:
                        return np.asarray(h.data, float), p.name
    return None


def region_figure(record: Mapping, row: Mapping, traced: Traced, i: int,
                  images_dir: Path | None = None, context: tuple | None = None) -> Figure:
    """The side-by-side figure of region ``i`` of ``traced``.

    Parameters
    ----------
    record : mapping
        The region's source record (HFC columns).
    row : mapping
        Its epn_core row (``granule_uid``, ``s_region``, ``qa_*``).
    traced : Traced
        :func:`trace` of the records; ``i`` is this region's position in it.
    images_dir : path, optional
        A folder holding the observations' own image files (by ``FILENAME``).
    context : (array, label), optional
        An image drawn, labelled as context, when the observation's own is absent.
    """
    return RegionCanvas().draw(record, row, traced, i, images_dir, context)


#: Where the two panels of a region's figure sit (figure fractions).
_LEFT_BOX, _RIGHT_BOX = (0.06, 0.27, 0.40, 0.64), (0.56, 0.27, 0.40, 0.64)


class RegionCanvas:
    """One figure on which regions are drawn one after the other (a gallery's), each
    as :func:`region_figure` draws it on a figure of its own — the same pixels.

    Each :meth:`draw` takes away what the region before added (its lines, patches,
    collections, images, texts, legends and disk thumbnail) and keeps the figure, its
    two panels and their ticks: matplotlib builds those again for every new figure
    (≈ a fifth of a gallery figure's cost: 110 → 86 ms)."""

    def __init__(self):
        self.fig: Figure | None = None

    def draw(self, record: Mapping, row: Mapping, traced: Traced, i: int,
             images_dir: Path | None = None, context: tuple | None = None) -> Figure:
        """Region ``i`` of ``traced`` (arguments as :func:`region_figure`'s); the
        canvas's figure, valid until the next call."""
        if self.fig is None:
            self.fig = new_figure(12.5, 6.6)
            self.fig.add_axes(_LEFT_BOX)
            self.fig.add_axes(_RIGHT_BOX)
        fig = self.fig
        axl, axr = fig.axes[:2]
        pub = _published(record, row, traced, i)
        _strip(axl)
        if pub is None:     # the panel draws no window of its own: a new one (cla()
            axr.remove()    # keeps the aspect, and the box it shrank)
            axr = fig.add_axes(_RIGHT_BOX)
        else:
            _strip(axr)
        flag = str(row.get("qa_geom_flag") or "ok")
        odd = row.get("qa_flags")
        if isinstance(odd, str) and odd:
            flag += f"   odd: {odd}"
        fig.suptitle(f"{row.get('granule_uid')}   geom_flag: {flag}", fontsize=12,
                     fontweight="bold", x=0.5, y=0.985)
        _left_panel(axl, record, traced, i, images_dir, context, pub)
        _right_panel(axr, record, row, traced, i, pub)
        return fig


def _strip(ax) -> None:
    """Take from ``ax`` what a region drew on it; its limits, labels, title, tick
    settings and aspect are set again by every region drawn (an axes' autoscaling
    is off once its limits are set, so the data limits left behind do not count)."""
    for artist in (*ax.lines, *ax.patches, *ax.collections, *ax.images, *ax.texts):
        artist.remove()
    if ax.legend_ is not None:
        ax.legend_.remove()
    for child in list(ax.child_axes):
        child.remove()


@dataclass
class _Published:
    """The published ``s_region`` of one region, also placed on the image's pixel grid."""

    lon: np.ndarray          # s_region vertices (deg, as published)
    lat: np.ndarray
    px: np.ndarray           # the same on the pixel grid (NaN when unknown)
    py: np.ndarray
    clipped: np.ndarray      # bool: vertex on the limb


def _published(record, row, traced, i) -> _Published | None:
    """Parse the row's ``s_region`` and project it back on the pixel grid of the record's
    image (observer of region ``i`` from ``traced``), so both panels can show it; its
    vertices within :data:`LIMB_TOL_PIX` of the limb are marked clipped. None when the
    s_region does not parse or has no vertex; pixel positions stay NaN when the record
    lacks the disk geometry or the observer is unknown."""
    text = row.get("s_region")
    poly = stcs.parse([text if isinstance(text, str) else None])
    if poly.parse_error[0] or len(poly.lon) == 0:
        return None
    lon, lat = poly.lon, poly.lat
    g = {k: float(record.get(k, np.nan) if record.get(k) is not None else np.nan)
         for k in ("CDELT1", "CDELT2", "CENTER_X", "CENTER_Y", "R_SUN")}
    px = py = np.full(len(lon), np.nan)
    clipped = np.zeros(len(lon), bool)
    if np.isfinite(traced.dist[i]) and all(np.isfinite(v) for v in g.values()):
        px, py = hgc_to_pixel(lon, lat, traced.b0[i], traced.l0[i], traced.dist[i],
                              g["CDELT1"], g["CDELT2"], g["CENTER_X"], g["CENTER_Y"])
        rho = np.hypot(px - g["CENTER_X"], py - g["CENTER_Y"])
        clipped = rho >= g["R_SUN"] - LIMB_TOL_PIX
    return _Published(lon, lat, px, py, clipped)


# -- left panel: the chain code on the image's pixel grid -------------------------------

@dataclass
class _Disk:
    """The solar disk on the image's pixel grid, from the record's HFC columns."""

    cx: float                # CENTER_X, CENTER_Y: disk centre (pixels, 0-based)
    cy: float
    r: float                 # R_SUN: disk radius (pixels); NaN when unknown
    nx: int                  # NAXIS1, NAXIS2: image size (0 when unknown)
    ny: int


def _disk(record: Mapping) -> _Disk:
    """The disk centre, radius and image size a record states (NaN / 0 when absent)."""
    return _Disk(cx=float(record.get("CENTER_X", np.nan)),
                 cy=float(record.get("CENTER_Y", np.nan)),
                 r=float(record.get("R_SUN", np.nan)),
                 nx=int(float(record.get("NAXIS1") or 0) or 0),
                 ny=int(float(record.get("NAXIS2") or 0) or 0))


def _pixel_view(disk: _Disk, ox, oy, has: bool) -> tuple[tuple, float]:
    """The square window of the left panel and its half width (pixels).

    The region's outline with a margin (at least 16 pixels across), so that the nearby
    limb shows; the whole disk when the chain code gave no outline.
    """
    if has:
        x0, x1, y0, y1 = ox.min(), ox.max(), oy.min(), oy.max()
    else:
        x0, x1, y0, y1 = disk.cx - disk.r, disk.cx + disk.r, disk.cy - disk.r, disk.cy + disk.r
    span = max(x1 - x0, y1 - y0, 16.0)
    pad = 0.35 * span + 4
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    half = span / 2 + pad
    return (xm - half, xm + half, ym - half, ym + half), half


def _draw_image(ax, record, images_dir, context, disk: _Disk):
    """Draw the observation's own image, else the context image; return (own, note).

    ``own`` is what :func:`_own_image` found (None when no file of the observation is at
    hand); ``note`` says what the background is, so a context image is never mistaken
    for the observation.
    """
    own = _own_image(record, images_dir)
    if own is not None:
        data, name = own
        lo, hi = np.nanpercentile(data, [1, 99])
        if not hi > lo:
            lo, hi = np.nanmin(data), np.nanmax(data)
        ax.imshow(data, origin="lower", cmap="gray", vmin=lo, vmax=hi,
                  interpolation="nearest", extent=(-0.5, data.shape[1] - 0.5,
                                                   -0.5, data.shape[0] - 0.5))
        return own, f"observation image: {name}"
    if context is not None:
        data, label = context
        nx, ny = disk.nx, disk.ny
        ax.imshow(data, origin="lower", cmap="gray", alpha=0.55, interpolation="nearest",
                  extent=(-0.5, nx - 0.5, -0.5, ny - 0.5) if nx and ny else None)
        return own, f"CONTEXT ONLY, not this observation: {label}"
    return own, "observation image not available: pixel grid only"


def _draw_disk(ax, disk: _Disk, fill: bool) -> None:
    """The limb circle (filled as the disk when no image is under it) and the image frame."""
    if np.isfinite(disk.r):
        if fill:
            ax.add_patch(Circle((disk.cx, disk.cy), disk.r, facecolor=COLOURS["disk"],
                                edgecolor="none", zorder=0))
        ax.add_patch(Circle((disk.cx, disk.cy), disk.r, facecolor="none",
                            edgecolor=COLOURS["limb"], lw=2, zorder=3, label="limb (R_SUN)"))
    if disk.nx and disk.ny:
        ax.add_patch(Rectangle((-0.5, -0.5), disk.nx, disk.ny, fill=False, ls=":", lw=1,
                               edgecolor="grey", zorder=1))


def _draw_chain(ax, chx, chy, ox, oy, disk: _Disk) -> None:
    """The chain's pixel centres, its start, the pixel-edge outline (what the geometry
    stage projects) and the outline vertices off the disk (which it must clip)."""
    ax.plot(np.r_[ox, ox[:1]], np.r_[oy, oy[:1]], "-", color=COLOURS["outline"],
            lw=1.4, zorder=4, label="pixel-edge outline")
    ax.plot(chx, chy, ".-", color=COLOURS["chain"], ms=3, lw=0.8, zorder=5,
            label=f"chain code ({len(chx) - 1} steps)")
    ax.plot(chx[:1], chy[:1], "o", mfc="none", mec=COLOURS["chain"], ms=8, zorder=6,
            label="chain start")
    off = np.hypot(ox - disk.cx, oy - disk.cy) > disk.r
    if off.any():
        ax.plot(ox[off], oy[off], "x", color=COLOURS["clipped"], ms=6, mew=1.5,
                zorder=7, label=f"outline off the disk ({off.sum()})")


def _draw_published_pixels(ax, pub: _Published | None) -> None:
    """The published polygon projected back on the pixel grid, its vertices on the limb
    marked, so it can be checked against the chain it came from."""
    if pub is not None and np.isfinite(pub.px).all():
        ax.plot(np.r_[pub.px, pub.px[:1]], np.r_[pub.py, pub.py[:1]], "-",
                color=COLOURS["sregion"], lw=1.3, alpha=0.9, zorder=6,
                label="s_region, projected back")
        if pub.clipped.any():
            ax.plot(pub.px[pub.clipped], pub.py[pub.clipped], "^", ms=6, zorder=8,
                    color=COLOURS["clipped"],
                    label=f"s_region vertices on the limb ({pub.clipped.sum()})")
    else:
        ax.text(0.5, 0.5, "chain code not decodable", transform=ax.transAxes,
                ha="center", color=COLOURS["clipped"])


def _frame_pixels(ax, view: tuple, half: float) -> None:
    """Limit the panel to ``view`` (equal aspect); draw the pixel edges when the window
    is small enough (at most 90 pixels across) for them to be told apart."""
    ax.set_xlim(view[0], view[1])
    ax.set_ylim(view[2], view[3])
    ax.set_aspect("equal")
    if 2 * half <= 90:   # two collections, not one line per pixel edge
        ex = np.arange(np.floor(view[0]) + 0.5, view[1], 1)
        ey = np.arange(np.floor(view[2]) + 0.5, view[3], 1)
        ax.vlines(ex, view[2], view[3], colors="#bbbbbb", lw=0.3, zorder=1)
        ax.hlines(ey, view[0], view[1], colors="#bbbbbb", lw=0.3, zorder=1)


def _label_left(ax, note: str, warn: bool) -> None:
    """Axis labels, title, legend, and the note saying what the background is (dark red
    when it is a context image rather than the observation)."""
    ax.set_xlabel("x (pixel, 0-based)")
    ax.set_ylabel("y (pixel, 0-based)")
    ax.set_title("chain code on the image's pixel grid", fontsize=10, y=TITLE_Y)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2, fontsize=8,
              frameon=False)
    ax.text(0.01, 0.01, note, transform=ax.transAxes, fontsize=8, style="italic",
            va="bottom", ha="left", zorder=9,
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1.5),
            color="#8b0000" if warn else "#333333")


def _disk_thumbnail(ax, disk: _Disk, ox, oy, has: bool, view: tuple) -> None:
    """An inset of the full disk with the region and the panel's window, to place a
    zoomed-in region on the Sun."""
    ins = ax.inset_axes([0.72, 0.72, 0.27, 0.27])
    ins.add_patch(Circle((disk.cx, disk.cy), disk.r, facecolor=COLOURS["disk"],
                         edgecolor=COLOURS["limb"], lw=1))
    if has:
        ins.plot(ox, oy, "-", color=COLOURS["outline"], lw=0.8)
    ins.add_patch(Rectangle((view[0], view[2]), view[1] - view[0], view[3] - view[2],
                            fill=False, edgecolor="blue", lw=0.8))
    m = 1.08 * disk.r
    ins.set_xlim(disk.cx - m, disk.cx + m)
    ins.set_ylim(disk.cy - m, disk.cy + m)
    ins.set_aspect("equal")
    ins.set_xticks([])
    ins.set_yticks([])
    ins.patch.set_alpha(0.85)


def _left_panel(ax, record, traced, i, images_dir, context, pub):
    """The chain code of region ``i`` on the image's pixel grid, over its image if any.

    Shows what the geometry stage started from (chain, pixel-edge outline, disk and limb)
    next to what it published (``s_region`` projected back), at a zoom where single
    pixels show; a thumbnail places the window on the full disk.
    """
    disk = _disk(record)
    chx, chy = traced.chain.item(i)
    ox, oy = traced.outline.item(i)
    has = len(chx) > 0
    view, half = _pixel_view(disk, ox, oy, has)
    own, note = _draw_image(ax, record, images_dir, context, disk)
    _draw_disk(ax, disk, fill=own is None)
    if has:
        _draw_chain(ax, chx, chy, ox, oy, disk)
    _draw_published_pixels(ax, pub)
    _frame_pixels(ax, view, half)
    _label_left(ax, note, warn=context is not None and own is None)
    if np.isfinite(disk.r):
        _disk_thumbnail(ax, disk, ox, oy, has, view)


# -- right panel: the published s_region in Carrington coordinates ---------------------

def _graticule_step(span: float) -> float:
    """Graticule spacing (deg) giving at most 6 lines across ``span`` degrees."""
    for s in (0.5, 1, 2, 5, 10, 15, 30):
        if span / s <= 6:
            return s
    return 30


def _near(x, ref: float):
    """Longitudes ``x`` (deg) moved by whole turns into ``ref`` ± 180°, so that a polygon
    across the 0°/360° seam is drawn in one piece."""
    return ref + ((np.asarray(x, float) - ref + 180.0) % 360.0) - 180.0


def _draw_sregion(ax, lon, lat, tlon, tlat, fin, ref: float) -> None:
    """The published polygon (filled, with its vertices) over the traced outline
    projected the same way (its on-disk part: ``fin``), for comparison."""
    ulon = np.r_[lon, lon[:1]]
    ulat = np.r_[lat, lat[:1]]
    if fin.any():
        tl = _near(tlon, ref)
        tl = np.where(fin, tl, np.nan)
        ax.plot(np.r_[tl, tl[:1]], np.r_[tlat, tlat[:1]], "--", color=COLOURS["traced"],
                lw=1, label="pixel-edge outline, projected (on-disk part)")
    ax.fill(ulon, ulat, color=COLOURS["sregion"], alpha=0.15, lw=0)
    ax.plot(ulon, ulat, "-", color=COLOURS["sregion"], lw=1.6,
            label=f"s_region ({len(lon)} vertices)")
    ax.plot(lon, lat, "o", color=COLOURS["sregion"], ms=2.5)


def _mark_changed_vertices(ax, lon, lat, tlon, tlat, fin, ref: float, clipped) -> None:
    """Mark the vertices the geometry stage made rather than traced: those on the limb
    (clipped) and, among the others, those farther than :data:`REPAIR_TOL_DEG` from the
    traced outline (repaired or moved)."""
    if clipped.any():
        ax.plot(lon[clipped], lat[clipped], "^", color=COLOURS["clipped"], ms=6,
                label=f"on the limb: clipped ({clipped.sum()})")
    if fin.sum() >= 2:
        from shapely import LineString, points
        tl2 = _near(tlon[fin], ref)
        line = LineString(np.column_stack([np.r_[tl2, tl2[:1]],
                                           np.r_[tlat[fin], tlat[fin][:1]]]))
        dd = line.distance(points(np.column_stack([lon, lat])))
        moved = (dd > REPAIR_TOL_DEG) & ~clipped
        if moved.any():
            ax.plot(lon[moved], lat[moved], "s", mfc="none", mec=COLOURS["repaired"],
                    ms=6, mew=1.4, label=f"not on the traced outline: repaired ({moved.sum()})")


def _draw_centroids(ax, record, row, pub: _Published, ref: float) -> tuple[float, float]:
    """The polygon's area centroid and the catalogue's own (``FEAT_CARR_LONG_DEG/LAT``,
    when known); return the catalogue's (NaN when unknown)."""
    clon, clat = (float(c[0]) for c in ring_centroids(pub.lon, pub.lat,
                                                        np.array([0, len(pub.lon)])))
    ax.plot(_near(clon, ref), clat, "+", color=COLOURS["sregion"], ms=12, mew=2,
            label="s_region centroid")
    flon = row.get("qa_feat_carr_long_deg", record.get("FEAT_CARR_LONG_DEG"))
    flat = row.get("qa_feat_carr_lat_deg", record.get("FEAT_CARR_LAT_DEG"))
    try:
        flon, flat = float(flon), float(flat)
    except (TypeError, ValueError):
        flon = flat = np.nan
    if np.isfinite(flon) and np.isfinite(flat):
        ax.plot(_near(flon, ref), flat, "*", color=COLOURS["catalogue"], ms=12,
                label="catalogue centroid (FEAT_CARR_*)")
    return flon, flat


def _carrington_window(ax, lon, lat, tlon, tlat, fin, flon, flat, ref: float):
    """Frame the polygon and the traced outline (and the catalogue centroid when within
    15° of them) with a margin, and draw a graticule labelled in 0–360° longitude.

    Returns the view limits ``(xlim, ylim)`` and the latitude of the window's centre.
    """
    xs = np.r_[lon, _near(tlon[fin], ref)] if fin.any() else lon
    ys = np.r_[lat, tlat[fin]] if fin.any() else lat
    if np.isfinite(flon) and np.isfinite(flat) and \
            abs(_near(flon, ref) - np.mean(lon)) < 15 and abs(flat - np.mean(lat)) < 15:
        xs, ys = np.r_[xs, _near(flon, ref)], np.r_[ys, flat]      # keep the catalogue star
    x0, x1, y0, y1 = np.nanmin(xs), np.nanmax(xs), np.nanmin(ys), np.nanmax(ys)
    span = max(x1 - x0, y1 - y0, 1.0)
    pad = 0.25 * span + 0.3
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    ax.set_xlim(xm - span / 2 - pad, xm + span / 2 + pad)
    ax.set_ylim(max(-90, ym - span / 2 - pad), min(90, ym + span / 2 + pad))
    step = _graticule_step(span + 2 * pad)
    xl, yl = ax.get_xlim(), ax.get_ylim()
    ax.set_xticks(np.arange(np.ceil(xl[0] / step) * step, xl[1], step))
    ax.set_yticks(np.arange(np.ceil(yl[0] / step) * step, yl[1], step))
    ax.xaxis.set_major_formatter(lambda v, pos: f"{v % 360:g}°")
    ax.yaxis.set_major_formatter(lambda v, pos: f"{v:g}°")
    ax.grid(True, color="#999999", lw=0.5, ls="-")
    return xl, yl, ym


def _draw_seam(ax, xl, yl) -> None:
    """The 0°/360° longitude seam, when it lies within the view limits ``xl``."""
    for k in range(int(np.floor(xl[0] / 360)), int(np.floor(xl[1] / 360)) + 1):
        s = 360.0 * k
        if xl[0] < s < xl[1] or (k == 0 and xl[0] <= 0 <= xl[1]):
            ax.axvline(s, color=COLOURS["seam"], lw=2, ls="-.",
                       label="0°/360° seam")
            ax.text(s, yl[0], " 360° | 0° ", color=COLOURS["seam"], ha="center",
                    va="bottom", fontsize=8,
                    bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1))


def _right_panel(ax, record, row, traced, i, pub):
    """The ``s_region`` of region ``i`` as published, in Carrington longitude/latitude.

    Everything is drawn in a longitude window around the polygon (no jump at 0°/360°),
    with the traced outline for comparison, the vertices the geometry stage clipped or
    repaired, both centroids, and the seam when it is in view.
    """
    a, b = traced.outline.offsets[i], traced.outline.offsets[i + 1]
    tlon, tlat = traced.lon[a:b], traced.lat[a:b]
    if pub is None:
        ax.text(0.5, 0.5, "no s_region", transform=ax.transAxes, ha="center")
        return
    lon = stcs.unwrap(stcs.Polygons(pub.lon, pub.lat, np.array([0, len(pub.lon)]),
                                    np.array([False])))
    lat = pub.lat
    ref = np.median(lon)
    lon = _near(lon, ref)
    fin = np.isfinite(tlon)
    _draw_sregion(ax, lon, lat, tlon, tlat, fin, ref)
    _mark_changed_vertices(ax, lon, lat, tlon, tlat, fin, ref, pub.clipped)
    flon, flat = _draw_centroids(ax, record, row, pub, ref)
    xl, yl, ym = _carrington_window(ax, lon, lat, tlon, tlat, fin, flon, flat, ref)
    _draw_seam(ax, xl, yl)
    ax.set_aspect(1.0 / max(np.cos(np.deg2rad(np.clip(ym, -80, 80))), 0.2))
    ax.set_xlabel("Carrington longitude")
    ax.set_ylabel("Carrington latitude")
    ax.set_title("s_region as published (Carrington)", fontsize=10, y=TITLE_Y)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2, fontsize=8,
              frameon=False)


# -- summary plots ----------------------------------------------------------------------

def joined_counts(values: pd.Series) -> pd.Series:
    """Count of each ``+``-joined code of ``values`` (text), most frequent first: the
    same Series as ``values.str.split("+").explode().value_counts()``, from the
    distinct values (a few) rather than one split per row."""
    per_value = values.value_counts(sort=False)
    acc: dict[str, int] = {}
    for v, n in per_value.items():
        for code in str(v).split("+"):
            acc[code] = acc.get(code, 0) + int(n)
    out = pd.Series(acc, dtype="int64", name="count")
    out.index.name = values.name
    return out.sort_values(ascending=False)


def flag_counts_figure(flags: pd.Series) -> Figure:
    """Bar chart of the geometry flags (each ``+``-joined flag counted)."""
    counts = joined_counts(flags.fillna("none").astype(str))
    fig = new_figure(6.5, 3.6)
    ax = fig.add_subplot(111)
    ax.bar(counts.index.astype(str), counts.to_numpy(), color="#4477aa")
    for k, v in enumerate(counts.to_numpy()):
        ax.text(k, v, str(v), ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("regions")
    ax.set_title("geometry flags (a region may carry several)")
    fig.tight_layout()
    return fig


def area_ratio_figure(ratio: pd.Series) -> Figure:
    """Histogram of area ratios (published polygon area / catalogue area)."""
    r = pd.to_numeric(ratio, errors="coerce").dropna()
    fig = new_figure(6.5, 3.6)
    ax = fig.add_subplot(111)
    if len(r):
        lo, hi = min(r.min(), 0.8), max(r.max(), 1.2)
        ax.hist(r, bins=np.linspace(lo, hi, 40), color="#66aa55")
        ax.axvline(1.0, color="k", lw=1, ls="--")
        ax.set_title(f"area ratio, {len(r)} regions (median {r.median():.3f})")
    else:
        ax.set_title("area ratio: none computed")
    ax.set_xlabel("s_region area / area of the traced pixels")
    ax.set_ylabel("regions")
    fig.tight_layout()
    return fig


def centroid_residuals(rows: pd.DataFrame) -> pd.DataFrame:
    """s_region centroid minus catalogue centroid (deg): ``dlon`` (wrapped), ``dlat``.

    The centroids come from the columns the harvest wrote (``qa_centroid_lon/lat``, all
    rows at once); a run folder written before those columns existed has its s_region
    parsed instead (the same centroid, :func:`.sregion.ring_centroids`)."""
    if not {"qa_feat_carr_long_deg", "qa_feat_carr_lat_deg"} <= set(rows.columns):
        return pd.DataFrame(columns=["granule_uid", "dlon", "dlat", "flag"])
    if {"qa_centroid_lon", "qa_centroid_lat"} <= set(rows.columns):
        clon = pd.to_numeric(rows["qa_centroid_lon"], errors="coerce").to_numpy(float)
        clat = pd.to_numeric(rows["qa_centroid_lat"], errors="coerce").to_numpy(float)
    else:
        poly = stcs.parse(rows["s_region"].where(rows["s_region"].notna(), None))
        clon, clat = ring_centroids(poly.lon, poly.lat, poly.offsets)
    flon = pd.to_numeric(rows["qa_feat_carr_long_deg"], errors="coerce").to_numpy(float)
    flat = pd.to_numeric(rows["qa_feat_carr_lat_deg"], errors="coerce").to_numpy(float)
    dlon = (clon - flon + 180.0) % 360.0 - 180.0
    # the texts as they are (Arrow strings from Parquet: no Python string per row)
    return pd.DataFrame({"granule_uid": rows["granule_uid"].array, "dlon": dlon,
                         "dlat": clat - flat,
                         "flag": rows.get("qa_geom_flag", pd.Series("ok", rows.index))
                         .fillna("ok").array})


#: At most this many points of each flag are drawn in the residuals scatter (a
#: seeded random sample, stated in the title); the statistics use every row.
MAX_POINTS_PER_FLAG = 20000


def residuals_figure(res: pd.DataFrame) -> Figure:
    """Scatter of centroid residuals against the catalogue, coloured by flag."""
    fig = new_figure(6.5, 4.2)
    ax = fig.add_subplot(111)
    r = res.dropna(subset=["dlon", "dlat"])
    if len(r):
        drawn = 0
        rng = np.random.default_rng(0)
        for flag, g in r.groupby("flag"):
            n = len(g)
            if n > MAX_POINTS_PER_FLAG:
                g = g.iloc[np.sort(rng.choice(n, MAX_POINTS_PER_FLAG, replace=False))]
            drawn += len(g)
            ax.plot(g["dlon"], g["dlat"], "o", ms=4, alpha=0.7, label=f"{flag} ({n})")
        ax.axhline(0, color="k", lw=0.5)
        ax.axvline(0, color="k", lw=0.5)
        ax.legend(fontsize=7)
        ax.set_title(f"centroid residuals vs catalogue: median |Δlon| "
                     f"{r['dlon'].abs().median():.3f}°, |Δlat| {r['dlat'].abs().median():.3f}°"
                     + (f"\n(drawn: a random {drawn} of {len(r)} regions)"
                        if drawn < len(r) else ""), fontsize=9)
    else:
        ax.set_title("centroid residuals: no catalogue centroid in the rows")
    ax.set_xlabel("Δ Carrington longitude (s_region − catalogue), deg")
    ax.set_ylabel("Δ latitude, deg")
    fig.tight_layout()
    return fig


def quarantine_figure(q: pd.DataFrame) -> Figure:
    """Horizontal bars: quarantined rows per stage and rule."""
    fig = new_figure(6.5, 3.6)
    ax = fig.add_subplot(111)
    if len(q):
        c = q.groupby(["stage", "rule"]).size().sort_values()
        labels = [f"{s}: {r}" for s, r in c.index]
        ax.barh(labels, c.to_numpy(), color="#cc6677")
        for k, v in enumerate(c.to_numpy()):
            ax.text(v, k, f" {v}", va="center", fontsize=8)
        ax.set_xlabel("rows")
        from matplotlib.ticker import MaxNLocator
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.text(0.5, 0.5, "nothing quarantined", ha="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title("quarantine per stage and rule")
    fig.tight_layout()
    return fig
