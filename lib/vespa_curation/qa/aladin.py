"""The s_region polygons over a solar map in Aladin Lite, inside the notebook, offline.

ipyaladin (0.8) loads Aladin Lite from a CDN when the widget is displayed, and resolves
survey names on the CDS registry. Here

- the widget's ES module is ipyaladin's own front-end code with its CDN import replaced
  by the Aladin Lite bundle vendored in ``vespa_curation/data/aladin`` (:func:`offline_esm`);
- the background is a solar HiPS built locally in Carrington longitude/latitude and served
  from ``127.0.0.1`` (:mod:`vespa_curation.qa.hips`), labelled as context only;
- the rows' ``s_region`` (STC-S ``Polygon UNKNOWNFrame lon lat ...``, Carrington lon/lat)
  are sent as frameless STC-S, which Aladin reads as ICRS: the HiPS's pseudo-equatorial
  longitude/latitude are the Carrington ones, so the polygons land where they belong
  (:func:`stcs_to_aladin`).

Each widget keeps its own queue of calls made before it is displayed (ipyaladin's queue
is shared by every widget, so two views in one notebook would get each other's overlays).
"""
from __future__ import annotations

import functools
import html
import re
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from vespa_curation.qa import hips as _hips

__all__ = [
    "BUNDLE",
    "BUNDLE_VERSION",
    "RegionError",
    "RegionView",
    "OfflineAladin",
    "offline_esm",
    "stcs_to_aladin",
    "regions_for_view",
    "region_view",
    "rows_from_stcs",
    "load_rows",
    "DEMO_S_REGIONS",
    "rows_at",
    "row_html",
    "moc_of",
]

_DATA = Path(__file__).resolve().parent.parent / "data" / "aladin"
#: The vendored Aladin Lite ES module (npm package aladin-lite, LGPL-3.0-or-later).
BUNDLE = _DATA / "aladin.js"
#: Its version (README.md beside it).
BUNDLE_VERSION = "3.9.2-beta"

_CDN_IMPORT = re.compile(r'import\s*([\w$]+)\s*from\s*"https://esm\.sh/aladin-lite@([^"]+)"\s*;?')
_BUNDLE_EXPORT = re.compile(r"export\s*\{\s*([\w$]+)\s+as\s+default\s*\}\s*;?\s*$")

#: Outline colours by geometry flag (first matching word of ``geom_flag`` wins).
FLAG_COLORS = {
    "seam": "#ff4fd8",
    "limb_clipped": "#ffa500",
    "repaired": "#00e5ff",
    "simplified": "#ffff66",
    "ok": "#7CFC00",
}
_OTHER_COLOR = "#ffffff"
#: Outline colour of rows without a geometry flag.
_PLAIN_COLOR = "#39ff14"


#: Demonstration regions (Carrington lon/lat, deg) on the disk seen in the default context
#: image (SDO/AIA 2011-02-15, disk centre at Carrington 22.7°, −6.8°): a plain one, one
#: across the 0/360 seam and one near the west limb. Used when no run folder is given.
DEMO_S_REGIONS = (
    "Polygon UNKNOWNFrame 20 10 30 10 30 20 20 20",
    "Polygon UNKNOWNFrame 355 -20 8 -20 8 -12 355 -12",
    "Polygon UNKNOWNFrame 85 -5 95 -5 95 5 85 5",
    "Polygon UNKNOWNFrame 40 -35 52 -35 46 -27",
)


class RegionError(ValueError):
    """An s_region the view cannot draw (names the granule and the reason)."""


# --------------------------------------------------------------------------- front end


def ipyaladin_widget_js() -> Path:
    """Path of ipyaladin's own front-end module (``static/widget.js``)."""
    import ipyaladin

    return Path(ipyaladin.__file__).resolve().parent / "static" / "widget.js"


def _cdn_import(widget: str, widget_js: Path) -> tuple[str, str]:
    """The name ipyaladin's module binds Aladin Lite to, and the version it fetches.

    Raises
    ------
    RuntimeError
        When the module does not have exactly one ``import X from
        "https://esm.sh/aladin-lite@..."`` (the line :func:`offline_esm` replaces).
    """
    imports = _CDN_IMPORT.findall(widget)
    if len(imports) != 1:
        raise RuntimeError(
            f"{widget_js}: expected one 'import X from \"https://esm.sh/aladin-lite@...\"', "
            f"found {len(imports)}; this ipyaladin version is not supported by vespa_curation.qa.aladin"
        )
    return imports[0]


def _inlined_bundle(name: str) -> str:
    """JavaScript binding ``name`` to the vendored Aladin Lite, in place of the CDN import.

    The bundle is wrapped in a function scope, since its minified top-level names would
    collide with the widget's. Every Aladin instance created through ``name`` is recorded
    in ``globalThis.vespaAladin.views``, so a page (or a browser test) can query it
    (``world2pix``, overlays).
    """
    bundle = BUNDLE.read_text(encoding="utf-8")
    export = _BUNDLE_EXPORT.search(bundle)
    if export is None:
        raise RuntimeError(f"{BUNDLE}: no trailing 'export{{X as default}}'; not an aladin-lite bundle?")
    return (
        "const __vespaAladinLite = (function () {\n"
        + bundle[: export.start()]
        + f"\nreturn {export.group(1)};\n}})();\n"
        "const __vespaRegistry = (globalThis.vespaAladin = globalThis.vespaAladin || { views: [] });\n"
        "__vespaRegistry.A = __vespaAladinLite;\n"
        f"const {name} = Object.assign({{}}, __vespaAladinLite, {{\n"
        "  aladin: function (div, options) {\n"
        "    const view = __vespaAladinLite.aladin(div, options);\n"
        "    // Aladin's pix2world throws (destructures undefined) for a pixel outside the\n"
        "    // projection, e.g. the centre of a view not laid out yet, while its callers\n"
        "    // test for undefined: that throw aborted ipyaladin's render.\n"
        "    const pix2world = view.pix2world;\n"
        "    view.pix2world = function (...args) {\n"
        "      try { return pix2world.apply(this, args); } catch (e) { return undefined; }\n"
        "    };\n"
        "    __vespaRegistry.views.push(view);\n"
        "    return view;\n"
        "  },\n"
        "});\n"
    )


def _deferred_render(widget: str, widget_js: Path) -> str:
    """``widget`` with its default export replaced by one whose ``render`` waits until the
    element is in the page and has a width.

    Aladin Lite measures its div when the view is created and fails (pix2world of a 0x0
    view) when the widget is rendered before it is attached, as inside a VBox.
    """
    exports = list(_BUNDLE_EXPORT.finditer(widget))
    if len(exports) != 1:
        raise RuntimeError(f"{widget_js}: expected one trailing 'export{{X as default}}'")
    deferred = (
        f"const __vespaWidget = {exports[0].group(1)};\n"
        "async function __vespaAttached(el) {\n"
        "  const t0 = Date.now();\n"
        "  while (!(el.isConnected && el.clientWidth > 0) && Date.now() - t0 < 30000) {\n"
        "    await new Promise((resolve) => setTimeout(resolve, 50));\n"
        "  }\n"
        "}\n"
        "export default {\n"
        "  initialize: __vespaWidget.initialize,\n"
        "  async render(ctx) {\n"
        "    await __vespaAttached(ctx.el);\n"
        "    return __vespaWidget.render(ctx);\n"
        "  },\n"
        "};\n"
    )
    return widget[: exports[0].start()] + deferred


@functools.lru_cache(maxsize=1)
def offline_esm() -> str:
    """ipyaladin's front-end module with Aladin Lite inlined instead of fetched from a CDN.

    ipyaladin's ``static/widget.js`` imports Aladin Lite from ``esm.sh``; that import is
    replaced by the vendored bundle (:func:`_inlined_bundle`, which also records every
    Aladin instance in ``globalThis.vespaAladin.views``), and the widget's render is
    deferred until its element is laid out (:func:`_deferred_render`).

    Returns
    -------
    str
        A self-contained ES module: the browser fetches nothing to run it.

    Raises
    ------
    RuntimeError
        When ipyaladin's module no longer has the single CDN import this relies on.
    """
    widget_js = ipyaladin_widget_js()
    widget = widget_js.read_text(encoding="utf-8")
    name, cdn_version = _cdn_import(widget, widget_js)
    if cdn_version != BUNDLE_VERSION:
        warnings.warn(
            f"ipyaladin asks for aladin-lite {cdn_version}, the vendored bundle is "
            f"{BUNDLE_VERSION} (see {_DATA / 'README.md'} to replace it)",
            stacklevel=2,
        )
    inlined = _inlined_bundle(name)
    widget = widget.replace(_CDN_IMPORT.search(widget).group(0), inlined, 1)
    return _deferred_render(widget, widget_js)


def _ipyaladin():
    """ipyaladin's widget class and call store, imported on demand: ipyaladin brings in
    ipywidgets and its front end, which a pipeline run outside a notebook never uses."""
    from ipyaladin import Aladin
    from ipyaladin.utils.call_store import CallStore

    return Aladin, CallStore


def _offline_class():
    """Define :class:`OfflineAladin`: a subclass of ipyaladin's widget, so it can only be
    defined once ipyaladin is imported."""
    Aladin, CallStore = _ipyaladin()

    class OfflineAladin(Aladin):
        """ipyaladin's widget drawing with the vendored Aladin Lite (no CDN), with a call
        queue of its own (ipyaladin's is shared by every widget)."""

        _esm = property(lambda self: offline_esm())

        def __init__(self, **init_options: object) -> None:
            self._call_store = CallStore()
            super().__init__(**init_options)

    OfflineAladin.__module__ = __name__
    return OfflineAladin


def __getattr__(name: str):  # lazy: ipyaladin and its widget stack load on first use
    """Module attribute ``OfflineAladin``, defined on first access (PEP 562) and kept."""
    if name == "OfflineAladin":
        cls = _offline_class()
        globals()["OfflineAladin"] = cls
        return cls
    raise AttributeError(name)


# --------------------------------------------------------------------------- regions


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def stcs_to_aladin(s_region: str, granule_uid: str = "?") -> tuple[str, np.ndarray]:
    """Convert an EPN-TAP body-frame STC-S polygon into the form Aladin Lite draws.

    Parameters
    ----------
    s_region : str
        ``Polygon [frame] lon lat lon lat ...`` in degrees (Carrington lon/lat; the frame
        word, e.g. ``UNKNOWNFrame``, is dropped).
    granule_uid : str
        Named in the error message.

    Returns
    -------
    stcs : str
        Frameless ``Polygon lon lat ...`` (Aladin reads it as ICRS; the solar HiPS's
        pseudo-ICRS longitude/latitude are Carrington longitude/latitude).
    vertices : numpy.ndarray
        ``(n, 2)`` array of (lon in 0–360, lat) in degrees.

    Raises
    ------
    RegionError
        Not a polygon, fewer than 3 vertices, an odd number of values, a non-finite
        value or a latitude outside −90…90.
    """
    if not isinstance(s_region, str) or not s_region.strip():
        raise RegionError(f"{granule_uid}: empty s_region")
    tokens = s_region.split()
    if tokens[0].lower() != "polygon":
        raise RegionError(f"{granule_uid}: s_region is a {tokens[0]!r}, only Polygon is drawn")
    words = tokens[1:]
    start = next((i for i, w in enumerate(words) if _NUMBER.match(w)), len(words))
    values = words[start:]
    if any(not _NUMBER.match(w) for w in values):
        bad = next(w for w in values if not _NUMBER.match(w))
        raise RegionError(f"{granule_uid}: s_region has a non-numeric value {bad!r}")
    if len(values) % 2:
        raise RegionError(f"{granule_uid}: s_region has an odd number of values ({len(values)})")
    xy = np.asarray(values, dtype=float).reshape(-1, 2)
    if len(xy) < 3:
        raise RegionError(f"{granule_uid}: s_region has {len(xy)} vertices, a polygon needs 3")
    if not np.isfinite(xy).all():
        raise RegionError(f"{granule_uid}: s_region has a non-finite value")
    if (np.abs(xy[:, 1]) > 90).any():
        raise RegionError(f"{granule_uid}: s_region latitude outside -90..90")
    xy[:, 0] = np.mod(xy[:, 0], 360.0)
    text = "Polygon " + " ".join(f"{v:.6g}" for v in xy.ravel())
    return text, xy


def _flag_group(flag) -> str:
    """The overlay group of a ``geom_flag``: the first key of :data:`FLAG_COLORS` (in its
    order) that is one of the flag's ``+``-joined words, so a region has one colour;
    else the flag's first word; ``"s_region"`` when the row has no flag."""
    words = str(flag).split("+") if isinstance(flag, str) and flag else []
    for key in FLAG_COLORS:
        if key in words:
            return key
    return words[0] if words else "s_region"


def _color(group: str) -> str:
    """Outline colour of an overlay group (white for a flag :data:`FLAG_COLORS` lacks)."""
    return _PLAIN_COLOR if group == "s_region" else FLAG_COLORS.get(group, _OTHER_COLOR)


def regions_for_view(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into drawable regions and refused ones.

    Parameters
    ----------
    rows : pandas.DataFrame
        epn_core rows with ``s_region`` (and ``granule_uid``; ``geom_flag`` or
        ``qa_geom_flag`` when present choose the outline colour).

    Returns
    -------
    regions : pandas.DataFrame
        ``granule_uid, stcs, group, lon, lat, vertices, row`` (``lon``/``lat`` the first
        vertex, ``vertices`` an ``(n, 2)`` array, deg; ``row`` the row's position).
    refused : pandas.DataFrame
        ``granule_uid, stage, rule, reason`` (quarantine columns) for rows not drawn.
    """
    if "s_region" not in rows.columns:
        raise KeyError("rows have no s_region column")
    uids = rows["granule_uid"] if "granule_uid" in rows.columns else pd.Series(
        [f"row {i}" for i in range(len(rows))], index=rows.index)
    flag_col = next((c for c in ("geom_flag", "qa_geom_flag") if c in rows.columns), None)
    flags = rows[flag_col] if flag_col else pd.Series([None] * len(rows), index=rows.index)
    good, bad = [], []
    for k, (uid, s_region, flag) in enumerate(zip(uids, rows["s_region"], flags)):
        try:
            text, xy = stcs_to_aladin(s_region, str(uid))
        except RegionError as exc:
            bad.append((uid, "qa", "aladin.bad_s_region", str(exc)))
            continue
        good.append((uid, text, _flag_group(flag), xy[0, 0], xy[0, 1], xy, k))
    regions = pd.DataFrame(good, columns=["granule_uid", "stcs", "group", "lon", "lat",
                                          "vertices", "row"])
    refused = pd.DataFrame(bad, columns=["granule_uid", "stage", "rule", "reason"])
    return regions, refused


#: Flags and observation times of the demonstration regions (the context image's date).
DEMO_FLAGS = ("ok", "seam", "limb_clipped", "repaired")
DEMO_TIME_JD = 2455608.0


def rows_from_stcs(polygons: Iterable[str] = DEMO_S_REGIONS, prefix: str = "demo") -> pd.DataFrame:
    """Rows (``granule_uid``, ``s_region``, ``qa_geom_flag``, ``time_min``, ``time_max``)
    from STC-S strings, for a view without a run folder (default
    :data:`DEMO_S_REGIONS`, flagged as :data:`DEMO_FLAGS`, an hour apart)."""
    polygons = list(polygons)
    n = len(polygons)
    t = DEMO_TIME_JD + np.arange(n) / 24.0
    return pd.DataFrame({
        "granule_uid": [f"{prefix}_{i}" for i in range(n)],
        "s_region": polygons,
        "qa_geom_flag": [DEMO_FLAGS[i % len(DEMO_FLAGS)] for i in range(n)],
        "time_min": t, "time_max": t + 1 / 1440.0,
    })


def load_rows(run_dir: str | Path | None = None) -> pd.DataFrame:
    """The rows to show: ``<run_dir>/rows.parquet``, or :data:`DEMO_S_REGIONS` when
    ``run_dir`` is empty.

    Raises
    ------
    ValueError
        ``run_dir`` names no folder, or one without ``rows.parquet``, or rows without an
        ``s_region`` column.
    """
    if run_dir is None or str(run_dir).strip() == "":
        return rows_from_stcs()
    folder = Path(run_dir).expanduser()
    if not folder.is_dir():
        raise ValueError(f"run_dir: {folder} is not a folder (expected a run folder "
                         "<outputs>/<UTC stamp>/<service>/, or empty for the demonstration regions)")
    path = folder / "rows.parquet"
    if not path.is_file():
        raise ValueError(f"run_dir: {folder} has no rows.parquet (run the harvest stage first)")
    rows = pd.read_parquet(path)
    if "s_region" not in rows.columns:
        raise ValueError(f"run_dir: {path} has no s_region column")
    return rows


def _view_frame(vertices: list[np.ndarray], default: tuple[float, float],
                aspect: float = 2.2) -> tuple[tuple[float, float], float]:
    """Centre (lon, lat) and horizontal field of view (deg) framing all vertices."""
    if not vertices:
        return default, 180.0
    xy = np.concatenate(vertices)
    lon = np.deg2rad(xy[:, 0])
    mean = np.rad2deg(np.arctan2(np.sin(lon).mean(), np.cos(lon).mean()))
    unwrapped = mean + (xy[:, 0] - mean + 180.0) % 360.0 - 180.0
    lo, hi = unwrapped.min(), unwrapped.max()
    blo, bhi = xy[:, 1].min(), xy[:, 1].max()
    center = (float(((lo + hi) / 2) % 360.0), float((blo + bhi) / 2))
    fov = 1.2 * max(hi - lo, (bhi - blo) * aspect, 5.0)
    return center, float(min(fov, 180.0))


# --------------------------------------------------------------------------- click and MOC


def rows_at(regions: pd.DataFrame, lon: float, lat: float) -> list[int]:
    """Positions in ``regions`` of the polygons holding (``lon``, ``lat``) (deg; the
    test is planar in longitude/latitude unwrapped around the point, as the polygons
    are drawn)."""
    from matplotlib.path import Path as _Path
    out = []
    for k, xy in enumerate(regions["vertices"]):
        x = lon + (xy[:, 0] - lon + 180.0) % 360.0 - 180.0
        if x.min() <= lon <= x.max() and xy[:, 1].min() <= lat <= xy[:, 1].max() and \
                _Path(np.column_stack([x, xy[:, 1]])).contains_point((lon, lat)):
            out.append(k)
    return out


def _iso(jd) -> str:
    from vespa_curation.times import iso_ms, jd_to_datetime
    if jd is None or (isinstance(jd, float) and np.isnan(jd)):
        return "—"
    return str(iso_ms(jd_to_datetime([jd]))[0])


def row_html(rows: pd.DataFrame, positions, lon: float, lat: float) -> str:
    """The rows clicked: granule_uid, geometry flag, time_min → time_max."""
    head = f"<b>({lon:.2f}°, {lat:.2f}°)</b>: "
    if not len(positions):
        return head + "no polygon here."
    flag_col = next((c for c in ("qa_geom_flag", "geom_flag") if c in rows.columns), None)
    cells = []
    for k in positions:
        r = rows.iloc[int(k)]
        flag = r[flag_col] if flag_col else None
        cells.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            r.get("granule_uid", f"row {k}"), flag if isinstance(flag, str) else "—",
            _iso(r.get("time_min")), _iso(r.get("time_max")))) + "</tr>")
    return (head + f"{len(positions)} polygon(s)<table class='vespa-row'><tr>"
            "<th>granule_uid</th><th>flag</th><th>time_min</th><th>time_max</th></tr>"
            + "".join(cells) + "</table>")


#: Order the MOC layer is drawn at (at most): finer cells are merged for the browser.
MOC_DISPLAY_ORDER = 8


def moc_of(moc, regions: pd.DataFrame, order: int = 9):
    """The MOC to draw: ``"rows"`` → the union of the regions' polygons at ``order``;
    a path → the MOC FITS file (e.g. an import area's ``coverage/smoc.fits``); a
    mocpy MOC as it is."""
    from vespa_curation.geometry import moc as M
    if isinstance(moc, str) and moc == "rows":
        return M.polygon_moc(regions["stcs"].tolist(), order=order)
    if isinstance(moc, (str, Path)):
        return M.read_moc(Path(moc).expanduser())
    return moc


def _add_moc(aladin, moc) -> None:
    shown = moc.degrade_to_order(min(moc.max_order, MOC_DISPLAY_ORDER))
    aladin.add_moc(shown, name=f"coverage MOC (order {moc.max_order}, "
                   f"{100 * moc.sky_fraction:.2f} % of the sphere)",
                   color="#4aa3ff", opacity=0.35, fill=True, perimeter=True)


# --------------------------------------------------------------------------- the view


def _region_view_class():
    """Define :class:`RegionView`, an ipywidgets VBox (so only once ipywidgets is needed)."""
    import ipywidgets

    class RegionView(ipywidgets.VBox):
        """A caption (what the background is) above the Aladin widget.

        Attributes
        ----------
        aladin : OfflineAladin
        regions, refused : pandas.DataFrame
            What is drawn and what was refused (see :func:`regions_for_view`).
        hips : vespa_curation.qa.hips.SolarHips
        hips_url : str
        """

    RegionView.__module__ = __name__
    return RegionView


def _new_aladin(survey: str, center: tuple[float, float], fov: float, height: int):
    """An :class:`OfflineAladin` on ``survey`` centred on Carrington ``center`` (deg).

    SIN projection, coordinates shown as decimal degrees (the HiPS's pseudo-ICRS
    longitude/latitude are Carrington's), coordinate grid on; the controls that would
    query the CDS (SIMBAD pointer, catalogues, sharing) are hidden.
    """
    return __getattr__("OfflineAladin")(
        survey=survey,
        target=f"{center[0]} {center[1]}",
        fov=fov,
        height=height,
        projection="SIN",
        coo_frame="ICRSd",
        show_simbad_pointer_control=False,
        show_coo_grid_control=True,
        show_settings_control=True,
        show_context_menu=False,
        show_share_control=False,
        show_catalog=False,
        show_frame=False,
        show_coo_grid=True,
    )


def _add_overlays(aladin, regions: pd.DataFrame, line_width: float) -> None:
    """One graphic overlay per flag group, in the group's colour, so a curator can
    toggle e.g. the seam-crossing regions in Aladin's layer list."""
    for group, part in regions.groupby("group", sort=False):
        aladin.add_graphic_overlay_from_stcs(
            part["stcs"].tolist(),
            name=f"s_region {group} ({len(part)})",
            color=_color(group),
            line_width=line_width,
        )


def _row_panel(aladin, rows: pd.DataFrame, regions: pd.DataFrame):
    """The panel under the view: a click on the map shows the rows of the polygons
    under the pointer (Aladin's click event gives its longitude/latitude)."""
    import ipywidgets

    panel = ipywidgets.HTML("<i>Click a polygon to see its row (granule_uid, flag, "
                            "times).</i>")
    panel.add_class("vespa-aladin-row")

    def on_click(content):
        try:
            lon, lat = float(content["ra"]), float(content["dec"])
        except (KeyError, TypeError, ValueError):
            return
        hits = rows_at(regions, lon, lat)
        panel.value = row_html(rows, [int(regions["row"].iloc[k]) for k in hits], lon, lat)
    aladin.set_listener("click", on_click)
    panel.show_row_at = lambda lon, lat: on_click({"ra": lon, "dec": lat})
    return panel


def _caption(regions: pd.DataFrame, refused: pd.DataFrame, hips: "_hips.SolarHips"):
    """The caption above the view: the colour legend, how many rows were not drawn, and
    that the background is a context image, not the regions' own observation."""
    import ipywidgets

    legend = " ".join(
        f'<span style="color:{_color(g)};background:#222;padding:0 4px">'
        f"&#9633; {html.escape(str(g))} ({n})</span>"
        for g, n in regions["group"].value_counts(sort=False).items()
    )
    refused_note = (
        f' <b style="color:#c00">{len(refused)} row(s) not drawn</b> (see <code>view.refused</code>).'
        if len(refused) else ""
    )
    return ipywidgets.HTML(
        f"<div class='vespa-aladin-caption'><b>{len(regions)} s_region polygon(s)</b> in "
        f"Carrington longitude/latitude. {legend}{refused_note}<br>"
        f"<b>Background: context only</b> &mdash; {html.escape(hips.source)}, reprojected to "
        f"Carrington coordinates for its own date; not the observation these regions come "
        f"from.</div>"
    )


def region_view(
    rows: pd.DataFrame,
    *,
    image=None,
    hips: "_hips.SolarHips | None" = None,
    cache_dir=None,
    height: int = 600,
    fov: float | None = None,
    target: tuple[float, float] | None = None,
    line_width: float = 2.0,
    moc=None,
    moc_order: int = 9,
):
    """An Aladin Lite view of the rows' s_region polygons over a local solar HiPS.

    Parameters
    ----------
    rows : pandas.DataFrame
        epn_core rows with ``s_region`` (Carrington lon/lat STC-S) and ``granule_uid``.
    image : path-like, optional
        Context image for the background (default: sunpy's AIA 171 Å test image).
    hips : SolarHips, optional
        A HiPS already built by :func:`vespa_curation.qa.hips.build_solar_hips`.
    cache_dir : path-like, optional
        Where the HiPS is built and served from (default ``outputs/cache/hips``).
    height : int
        Widget height in pixels.
    fov : float, optional
        Requested horizontal field of view in degrees; default: framing every region.
        Aladin Lite 3.9 in ipyaladin builds the view on a detached element and rescales
        the field when the element and the planetary HiPS arrive, so the first display
        may show more (up to the hemisphere); zoom from there.
    target : (float, float), optional
        Carrington (lon, lat) of the view centre; default the centre of the regions.
    line_width : float
        Outline width in pixels.
    moc : "rows", path or mocpy.MOC, optional
        A coverage MOC drawn under the polygons (:func:`moc_of`): ``"rows"`` the union
        of the rows' polygons (order ``moc_order``), or an import area's
        ``coverage/smoc.fits`` (Carrington lon/lat read as the HiPS's pseudo-ICRS).

    Returns
    -------
    RegionView
        An ipywidgets box: caption, the Aladin widget (``.aladin``) and the row panel
        (``.row_panel``): clicking a polygon shows its row (granule_uid, flag, times).
    """
    if not isinstance(height, (int, np.integer)) or not 150 <= height <= 3000:
        raise ValueError(f"height: {height!r} is not a widget height in pixels (150-3000)")
    regions, refused = regions_for_view(rows)
    if hips is None:
        hips = _hips.build_solar_hips(image, cache_dir=cache_dir)
    hips_url = _hips.serve(hips.path.parent).url_for(hips.path)
    auto_center, auto_fov = _view_frame(list(regions["vertices"]), hips.center)
    center = target if target is not None else auto_center
    fov = fov if fov is not None else auto_fov

    aladin = _new_aladin(hips_url, center, fov, height)
    view_moc = moc_of(moc, regions, moc_order) if moc is not None else None
    if view_moc is not None:
        _add_moc(aladin, view_moc)
    _add_overlays(aladin, regions, line_width)
    panel = _row_panel(aladin, rows, regions)
    view = _region_view_class()([_caption(regions, refused, hips), aladin, panel])
    view.aladin = aladin
    view.row_panel = panel
    view.moc = view_moc
    view.regions = regions
    view.refused = refused
    view.hips = hips
    view.hips_url = hips_url
    return view
