"""QA figures of time–frequency services: a file's dynamic spectrum beside the row's
published time and frequency box, and the collection's coverage in time.

The spectrum is the source's own data, sampled (:attr:`Service.spectrum` reads a few
hundred records of the file, never all of it); the box is what the row publishes
(``time_min..time_max`` × ``spectral_range_min..max``). A box that does not frame the
data shows a mapping error at a glance, as hfc1ar's chain-code contour beside its
s_region does.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from ..times import jd_to_datetime
from .figures import new_figure


def spectrum_figure(times: np.ndarray, freqs_hz: np.ndarray, values, row: Mapping
                    ) -> "object":
    """Left: the sampled dynamic spectrum (time × MHz) — or, when ``values`` is a list
    of rings ``(times, Hz)``, a catalogue's features outlined; right: the published box
    over the data's extent."""
    fig = new_figure(9, 3.2)
    ax_s, ax_b = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    t = pd.to_datetime(np.asarray(times))
    f = np.asarray(freqs_hz, dtype=float) / 1e6
    what = "the file's data (sampled)"
    if isinstance(values, list):
        for k, (rt, rf) in enumerate(values):
            ax_s.fill(pd.to_datetime(np.asarray(rt)), np.asarray(rf, dtype=float) / 1e6,
                      facecolor=f"C{k % 10}", alpha=0.35, edgecolor=f"C{k % 10}")
        what = f"the catalogue's {len(values)} feature(s)"
    else:
        v = np.asarray(values, dtype=float)
        if v.ndim == 2 and len(t) and len(f):
            lo, hi = np.nanpercentile(v, [2, 98]) if np.isfinite(v).any() else (0, 1)
            ax_s.pcolormesh(t, f, v.T, shading="nearest", vmin=lo, vmax=hi, cmap="viridis")
    ax_s.set_ylabel("frequency (MHz)")
    ax_s.set_title(f"{row.get('granule_uid')}: {what}", fontsize=8)
    ax_s.tick_params(labelsize=7)
    fig.autofmt_xdate()
    t0, t1 = jd_to_datetime([row.get("time_min"), row.get("time_max")])
    f0 = float(row.get("spectral_range_min") or np.nan) / 1e6
    f1 = float(row.get("spectral_range_max") or np.nan) / 1e6
    if len(t) and len(f):
        ax_b.fill_between([t.min(), t.max()], f.min(), f.max(), color="0.85",
                          label="data extent")
    ax_b.plot([t0, t1, t1, t0, t0], [f0, f0, f1, f1, f0], color="C3", lw=1.5,
              label="published box")
    mismatch = row.get("qa_attr_mismatch")
    ax_b.set_title("published time × frequency" + (" — attribute ≠ data" if
                                                   isinstance(mismatch, str) else ""),
                   fontsize=8, color="C3" if isinstance(mismatch, str) else "k")
    ax_b.legend(fontsize=7, loc="upper right")
    ax_b.tick_params(labelsize=7)
    return fig


#: Above this many granules the coverage plot draws each group's merged intervals
#: (the union of its granules' time ranges) instead of one bar per granule.
MERGE_ABOVE = 2000


def merged_intervals(t0: np.ndarray, t1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of the intervals ``[t0, t1]`` (datetime64) as sorted disjoint
    intervals, vectorised (sort, running maximum of the ends)."""
    a = np.asarray(t0, "datetime64[ns]").astype("int64")
    b = np.asarray(t1, "datetime64[ns]").astype("int64")
    ok = (a != np.iinfo("int64").min) & (b != np.iinfo("int64").min)
    a, b = a[ok], np.maximum(a[ok], b[ok])
    if not len(a):
        return np.array([], "datetime64[ns]"), np.array([], "datetime64[ns]")
    order = np.argsort(a, kind="stable")
    a, ends = a[order], np.maximum.accumulate(b[order])
    new = np.ones(len(a), bool)
    new[1:] = a[1:] > ends[:-1]
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, len(a) - 1)
    return a[first].astype("datetime64[ns]"), ends[last].astype("datetime64[ns]")


def coverage_figure(rows: pd.DataFrame) -> "object":
    """The granules' time ranges on one time axis, one line per granule group: gaps in
    the collection stand out. Above :data:`MERGE_ABOVE` granules each group's merged
    intervals are drawn (the title says so): the same coverage, drawn at a cost that
    grows with the gaps, not with the table."""
    fig = new_figure(9, 2.6)
    ax = fig.subplots()
    t0 = np.asarray(jd_to_datetime(rows["time_min"]), "datetime64[ns]")
    t1 = np.asarray(jd_to_datetime(rows["time_max"]), "datetime64[ns]")
    if "granule_gid" in rows:   # the groups in text order, as codes (no Python string per row)
        groups, names = pd.factorize(rows["granule_gid"].astype(str), sort=True)
        names = [str(g) for g in names]
    else:
        groups, names = np.zeros(len(rows), int), ["granules"]
    merge = len(rows) > MERGE_ABOVE
    n_bars = 0
    for k, g in enumerate(names):
        m = groups == k
        a, b = merged_intervals(t0[m], t1[m]) if merge else (t0[m], t1[m])
        n_bars += len(a)
        # one path broken by NaT (hlines would make a path per interval: 0.7 s for
        # the 9 000 intervals of 184 000 regions); butt caps, as hlines draws them
        xs = np.full(3 * len(a), np.datetime64("NaT"), "datetime64[ns]")
        xs[0::3], xs[1::3] = a, b
        ax.plot(xs, np.full(len(xs), float(k)), lw=6, color=f"C{k % 10}",
                solid_capstyle="butt")
        ax.plot(a, np.full(len(a), k), "|", color="k", ms=8)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_title(f"time coverage: {len(rows)} granules" + (
        f" (drawn as {n_bars} merged intervals)" if merge else ""), fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    fig.autofmt_xdate()
    fig.subplots_adjust(left=0.28, right=0.98)
    return fig
