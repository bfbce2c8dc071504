"""The QA report's coverage: where and when the service covers once this run is
published, drawn from MOCs (:mod:`vespa_curation.geometry.moc`).

The import area keeps the coverage of what it publishes (``coverage/smoc.fits``,
``coverage/tmoc.fits``, written by every export). The QA stage runs before the export,
so the report draws that coverage and what this run's rows add to it:

``coverage_map.png``
    the spatial MOC on the longitude/latitude plane of the service's frame (hfc1ar:
    Carrington longitude/latitude — a MOC of the sphere of the Sun's coordinates, not
    of the sky): cells already covered in grey, cells this run adds in orange;
``coverage_time.png``
    the T-MOC on a time axis (already covered, added by the run) with the largest gaps
    shaded and labelled, so missing days stand out.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from .. import area as A, runfolder as RF
from ..geometry import moc as M
from ..times import jd_to_datetime
from .figures import new_figure

log = logging.getLogger("vespa_curation.qa")

#: Gaps of the time coverage shaded and listed; ranges drawn at most.
GAPS, DRAWN_RANGES = 5, 2000
#: Sampling step of the map (degrees): about one sample per pixel of its axes (≈ 700 ×
#: 380 pixels for 360° × 180°); 0.2° drew 4 times the samples for matplotlib to thin
#: out again (0.5 s of the QA's own process at 184 000 regions).
MAP_STEP = 0.4


def _read(path: Path):
    return M.read_moc(path) if path.is_file() else None


def coverage_section(params: Mapping, rows: pd.DataFrame,
                     run_dir: Path | None = None) -> tuple[dict, dict]:
    """(the report's ``coverage`` entry, {figure name: figure}) of a run's rows over
    its service's import area. ``rows`` needs the times. The run's polygons: the MOC
    the harvest made (``smoc.fits``), else — when the run keeps coverage — computed
    from ``rows``' s_region or ``run_dir``'s rows.parquet read a row group at a time
    (the QA reads summary columns only); with ``coverage`` off, the time coverage
    only."""
    from ..config import as_config
    cfg = as_config(params)
    area = cfg.area
    out: dict = {"import_area": str(area.path)}
    figs: dict = {}
    old_s, old_t = _read(area.path / A.SMOC), _read(area.path / A.TMOC)
    total = None
    run_s = M.read_moc_at(Path(run_dir) / RF.SMOC, int(cfg["moc_order"])) \
        if run_dir is not None else None
    if run_s is not None:
        total = old_s.union(run_s) if old_s is not None else run_s
    elif cfg["coverage"]:
        # no MOC from the harvest (an older run folder, duplicates refused): computed
        union = None
        for polygons in _polygon_batches(rows, run_dir):
            if union is None:
                union = M.PolygonUnion(int(cfg["moc_order"]), start=old_s)
            union.add(polygons)
        total = union.moc if union is not None else None
    if total is not None:
        added = total.difference(old_s) if old_s is not None else total
        svc = cfg.definition
        consts = dict(svc.constants or {})
        frame = (f"{consts.get('spatial_coordinate_description', 'body')} longitude/"
                 f"latitude on {consts.get('spatial_origin', 'the body')}"
                 if svc.spatial_frame_type == "body" else svc.spatial_frame_type)
        out["spatial"] = {**M.spatial_summary(total), "frame": frame,
                          "added_fraction": float(added.sky_fraction)}
        figs["coverage_map"] = map_figure(total, added, frame)
    if {"time_min", "time_max"} <= set(rows.columns) or old_t is not None:
        run_t = M.time_moc(rows["time_min"], rows["time_max"],
                           order=int(cfg["tmoc_order"])) \
            if {"time_min", "time_max"} <= set(rows.columns) else None
        parts = [t for t in (old_t, run_t) if t is not None]
        total = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
        out["time"] = M.time_summary(total, exact=False)
        out["time"]["gaps"] = largest_gaps(total)
        figs["coverage_time"] = time_figure(old_t, run_t, total, out["time"])
    return out, figs


def _polygon_batches(rows: pd.DataFrame, run_dir: Path | None, batch: int = 5000):
    """The run's s_region values, ``batch`` at a time (nothing when it has none)."""
    if "s_region" in rows:
        s = rows["s_region"].dropna().tolist()
        yield from (s[k:k + batch] for k in range(0, len(s), batch))
        return
    if run_dir is None or "s_region" not in RF.row_columns(run_dir):
        return
    for part in RF.row_batches(Path(run_dir) / RF.ROWS, batch, columns=["s_region"]):
        s = part["s_region"].dropna().tolist()
        if s:
            yield s


def map_figure(total, added, frame: str):
    """The spatial MOC on the lon/lat plane: covered before (grey), added (orange)."""
    import astropy.units as u
    from matplotlib.colors import ListedColormap
    lon = np.arange(MAP_STEP / 2, 360, MAP_STEP)
    lat = np.arange(-90 + MAP_STEP / 2, 90, MAP_STEP)
    glon, glat = np.meshgrid(lon, lat)
    img = total.contains_lonlat(glon.ravel() * u.deg, glat.ravel() * u.deg).astype(int)
    if not added.empty():
        img[added.contains_lonlat(glon.ravel() * u.deg, glat.ravel() * u.deg)] = 2
    fig = new_figure(9, 4.8)
    ax = fig.subplots()
    ax.imshow(img.reshape(glon.shape), origin="lower", extent=[0, 360, -90, 90],
              cmap=ListedColormap(["white", "0.6", "tab:orange"]), vmin=0, vmax=2,
              interpolation="nearest", aspect="auto")
    ax.set_xlabel(f"{frame.split(' on ')[0].split('/')[0]} (deg)", fontsize=8)
    ax.set_ylabel("latitude (deg)", fontsize=8)
    ax.set_xticks(range(0, 361, 30))
    ax.grid(lw=0.3, color="0.8")
    ax.set_title(f"spatial coverage, MOC order {total.max_order}: "
                 f"{100 * total.sky_fraction:.2f} % of the sphere ({frame}; not the sky)"
                 f"; this run adds {100 * added.sky_fraction:.3f} % (orange)", fontsize=8)
    ax.tick_params(labelsize=7)
    return fig


def largest_gaps(tmoc, n: int = GAPS) -> list[dict]:
    """The ``n`` longest gaps between the T-MOC's ranges (ISO start, end, days)."""
    r = M.time_ranges_jd(tmoc)
    if len(r) < 2:
        return []
    gaps = r[1:, 0] - r[:-1, 1]
    order = np.argsort(gaps)[::-1][:n]
    t0 = jd_to_datetime(r[:-1, 1][order])
    t1 = jd_to_datetime(r[1:, 0][order])
    return [{"from": a.isoformat(timespec="seconds"), "to": b.isoformat(timespec="seconds"),
             "days": round(float(g), 4)} for a, b, g in zip(t0, t1, gaps[order])]


def _drawn(tmoc) -> np.ndarray:
    """The T-MOC's ranges for drawing: degraded until at most DRAWN_RANGES remain."""
    m = tmoc
    while m.max_order > 0 and M.n_ranges(m) > DRAWN_RANGES:
        m = m.degrade_to_order(m.max_order - 1)
    return M.time_ranges_jd(m)


def time_figure(before, run, total, summary: Mapping | None = None):
    """The T-MOC on a time axis: covered before (grey), by the run (orange), the
    largest gaps shaded red (``summary``: ``total``'s :func:`..geometry.moc.time_summary`
    when the caller has it)."""
    import matplotlib.dates as mdates
    fig = new_figure(9, 2.8)
    ax = fig.subplots()
    whole = M.time_ranges_jd(total)
    # a range narrower than a pixel (an instant's 67 s cell over years) is drawn one
    # pixel wide, so every covered time shows
    least = max((whole[-1, 1] - whole[0, 0]) / 900.0, 0) if len(whole) else 0
    for y, (m, color) in enumerate([(before, "0.5"), (run, "tab:orange")]):
        if m is None or m.empty():
            continue
        r = _drawn(m)
        start = mdates.date2num(jd_to_datetime(r[:, 0]))
        width = np.maximum(r[:, 1] - r[:, 0], least)
        ax.broken_barh(list(zip(start, width)), (y - 0.3, 0.6), color=color)
    ax.xaxis_date()
    for g in largest_gaps(total):
        a, b = pd.Timestamp(g["from"]), pd.Timestamp(g["to"])
        ax.axvspan(a, b, color="tab:red", alpha=0.25)
        ax.annotate(f"{g['days']:.2f} d", (a + (b - a) / 2, 1.45), ha="center",
                    fontsize=6, color="tab:red")
    ax.set_ylim(-0.6, 1.7)
    ax.set_yticks([0, 1], ["import area", "this run"], fontsize=7)
    s = summary if summary is not None else M.time_summary(total, exact=False)
    ax.set_title(f"time coverage, T-MOC order {total.max_order}: {s.get('first', '')[:10]}"
                 f" … {s.get('last', '')[:10]}, {s['ranges']} ranges; the {GAPS} largest "
                 "gaps shaded", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    fig.autofmt_xdate()
    fig.subplots_adjust(left=0.12, right=0.98)
    return fig
