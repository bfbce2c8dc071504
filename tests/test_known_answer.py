"""Known answers: regions drawn on the sphere, rendered into an observer's image with
sunpy's SkyCoord (:mod:`vespa_curation.synth`, never the code under test), chain-coded,
converted back by :func:`hfc_ar_polygons` and compared with the truth by overlap on the
sphere — across the limb, across 0/360, at high latitude, one-pixel regions, spurs,
holes.  The polygons also go through the real pgSphere when PostgreSQL is installed.

Overlap is measured by sampling the sphere on a 0.03° grid (area weight cos lat): the
truth's *visible* part (points facing the observer) against our polygon, whose
great-circle edges are straight lines in a gnomonic projection about its centre.
"""
from __future__ import annotations

import os
import subprocess

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
import shapely
from astropy.time import Time
from astropy.utils import iers

from vespa_curation import stcs, synth
from vespa_curation.geometry import hfc_ar_geometry, sregion
from vespa_curation.geometry.sphere import unit_vectors

iers.conf.auto_download = False

RSUN_PIX = 488.8
CDELT = 1.98581
CENTER = (511.6, 512.3)


def _geometry(obstime):
    return synth.ImageGeometry.from_rsun(obstime, RSUN_PIX, naxis1=1024, naxis2=1024,
                                         center_x=CENTER[0], center_y=CENTER[1], cdelt1=CDELT)


def _l0_b0(geom):
    from sunpy.coordinates import HeliographicCarrington
    obs = geom.observer
    c = obs.transform_to(HeliographicCarrington(observer=obs, obstime=geom.obstime))
    return c.lon.to_value(u.deg), obs.lat.to_value(u.deg)


def _date_with_l0(target, base="2011-09-07T00:00:00"):
    """A time near ``base`` when the disk-centre Carrington longitude is ``target``."""
    from sunpy.coordinates import sun
    t = Time(base)
    for _ in range(3):
        l0 = sun.L0(t).to_value(u.deg)
        t = t + (((l0 - target + 180) % 360 - 180) / 13.2) * u.day
    return t


def _box(l1, l2, b1, b2, n=6):
    """Rectangle in lon/lat with edges sampled (so the truth is not just 4 points)."""
    s = np.linspace(0, 1, n, endpoint=False)
    lon = np.r_[l1 + (l2 - l1) * s, np.full(n, l2), l2 - (l2 - l1) * s, np.full(n, l1)]
    lat = np.r_[np.full(n, b1), b1 + (b2 - b1) * s, np.full(n, b2), b2 - (b2 - b1) * s]
    return lon, lat


def _blob(lc, bc, a, b, n=40, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 1 + 0.12 * np.sin(3 * t + rng.uniform(0, 6)) + 0.06 * np.cos(5 * t)
    return lc + a * r * np.cos(t), bc + b * r * np.sin(t)


def _cases():
    """name → (obstime, lon, lat, holes, expectations)."""
    g = _geometry("2011-09-07T00:00:00")  # B0 ≈ +7.2°: north pole visible
    l0, _ = _l0_b0(g)
    cases = {
        "disk_centre": (g, *_blob(l0 + 5, 12, 6, 4), (), {"flag": "ok"}),
        "west_limb": (g, *_box(l0 + 78, l0 + 100, -12, 4), (), {"flag": "limb_clipped"}),
        "east_limb": (g, *_blob(l0 - 86, 18, 8, 5, seed=2), (), {"flag": "limb_clipped"}),
        "high_latitude": (g, *_blob(l0 + 10, 72, 25, 6, seed=3), (), {"flag": "ok"}),
        "pole_cap": (g, *_box(l0 - 60, l0 + 60, 80, 86), (), {}),
        "spur": (g, np.array([l0 - 4, l0 + 4, l0 + 4, l0 + 0.08, l0 + 0.08, l0 - 0.08,
                              l0 - 0.08, l0 - 4]),
                 np.array([-14, -14, -8, -8, -1, -1, -8, -8.0]), (), {"flag": "ok"}),
        "hole": (g, *_box(l0 - 25, l0 - 10, -20, -8),
                 [_box(l0 - 21, l0 - 14, -17, -11)], {"flag": "ok"}),
    }
    gs = _geometry(_date_with_l0(20.0))
    cases["seam"] = (gs, *_box(-6, 7, -22, -10), (), {"flag": "seam"})
    cases["seam_limb"] = (_geometry(_date_with_l0(280.0)), *_box(350, 375, 5, 20), (),
                          {"flag": "limb_clipped+seam"})
    # one pixel: a tiny square around the Carrington position of pixel (640, 530)
    lo, la = g.pix_to_carrington(np.array([640]), np.array([530]))
    cases["one_pixel"] = (g, *_box(lo[0] - 0.03, lo[0] + 0.03, la[0] - 0.03, la[0] + 0.03, 2),
                          (), {"flag": "ok", "pixels": 1})
    return cases


def _record(geom, mask, name):
    x0, y0, cc = synth.encode_chaincode(mask)
    comp = synth.largest_component(mask)
    from scipy import ndimage
    tx, ty = geom.pix_to_arcsec(x0, y0)
    return dict(ID_AR=name, CC=cc, CC_LENGTH=len(cc), CC_X_PIX=x0, CC_Y_PIX=y0,
                CC_X_ARCSEC=float(tx), CC_Y_ARCSEC=float(ty),
                DATE_OBS=geom.obstime.isot, R_SUN=geom.rsun_pix, CENTER_X=geom.center_x,
                CENTER_Y=geom.center_y, CDELT1=geom.cdelt1, CDELT2=geom.cdelt2,
                NAXIS1=geom.naxis1, NAXIS2=geom.naxis2,
                FEAT_AREA_PIX=int(ndimage.binary_fill_holes(comp).sum()),
                FEAT_AREA_DEG2=np.nan, CODE="SYNTH")


@pytest.fixture(scope="module")
def known():
    cases = _cases()
    recs = []
    for name, (geom, lon, lat, holes, _) in cases.items():
        mask = synth.render_region(lon, lat, geom, holes=holes)
        assert mask.any(), name
        recs.append(_record(geom, mask, name))
    records = pd.DataFrame(recs).set_index("ID_AR")
    frame, parts = hfc_ar_geometry(records)
    return cases, records, frame, parts


def _overlap(truth_lon, truth_lat, holes, geom, plon, plat):
    """(IoU, truth visible area, our area, area of the difference) on the sphere, deg²."""
    truth = synth.region_polygon(truth_lon, truth_lat, holes)
    ref = truth.exterior.coords[0][0]
    x0, y0, x1, y1 = truth.bounds
    plon_u = synth._unwrap(plon, ref)
    x0, x1 = min(x0, plon_u.min()), max(x1, plon_u.max())
    y0, y1 = min(y0, plat.min()), max(y1, plat.max())
    step = 0.03
    gx = np.arange(x0 - 0.1, x1 + 0.1, step)
    gy = np.arange(max(y0 - 0.1, -90), min(y1 + 0.1, 90), step)
    X, Y = np.meshgrid(gx, gy)
    X, Y = X.ravel(), Y.ravel()
    w = np.cos(np.deg2rad(Y)) * step**2
    # visibility from the observer (finite distance)
    from sunpy.coordinates import HeliographicCarrington
    obs = geom.observer
    o = obs.transform_to(HeliographicCarrington(observer=obs, obstime=geom.obstime))
    d = (o.radius / synth.RSUN).decompose().value
    ol, ob = np.deg2rad(o.lon.to_value(u.deg)), np.deg2rad(o.lat.to_value(u.deg))
    ov = d * np.array([np.cos(ob) * np.cos(ol), np.cos(ob) * np.sin(ol), np.sin(ob)])
    xr, yr = np.deg2rad(X), np.deg2rad(Y)
    p = np.stack([np.cos(yr) * np.cos(xr), np.cos(yr) * np.sin(xr), np.sin(yr)], axis=1)
    vis = p @ ov > 1.0
    in_truth = shapely.contains_xy(truth, X, Y) & vis
    # ours: gnomonic about our polygon's centre (great-circle edges are straight there)
    gx_, gy_, cv = _project_about(plon, plat, X, Y)
    ours_poly = shapely.Polygon(np.c_[gx_[:len(plon)], gy_[:len(plon)]])
    in_ours = shapely.contains_xy(ours_poly, gx_[len(plon):], gy_[len(plon):]) & (cv[len(plon):] > 0)
    inter = (w * (in_truth & in_ours)).sum()
    union = (w * (in_truth | in_ours)).sum()
    return (inter / union, (w * in_truth).sum(), (w * in_ours).sum(),
            (w * (in_truth ^ in_ours)).sum())


def _project_about(plon, plat, X, Y):
    def unit(lo, la):
        lo, la = np.deg2rad(lo), np.deg2rad(la)
        return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=1)
    v = unit(plon, plat)
    c = v.sum(axis=0)
    c /= np.linalg.norm(c)
    e1 = np.cross([0, 0, 1.0], c)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(c, e1)
    allv = np.r_[v, unit(X, Y)]
    cv = allv @ c
    with np.errstate(divide="ignore", invalid="ignore"):
        return allv @ e1 / cv, allv @ e2 / cv, np.r_[np.ones(len(v)), cv[len(v):]]


# Measured (see the printout; 2026-11-25): interior regions 0.95–0.99, limb regions
# 0.93–0.97 (pixel centres stop short of the limb, which is degrees of longitude there),
# the one-pixel region 0.29 (a 0.06° square inside a 0.12° pixel: only containment is
# checked, in test_one_pixel_and_spur_and_hole).
MIN_IOU = {"disk_centre": 0.97, "west_limb": 0.9, "east_limb": 0.9, "high_latitude": 0.96,
           "pole_cap": 0.92, "spur": 0.95, "hole": 0.97, "seam": 0.97, "seam_limb": 0.93,
           "one_pixel": 0.0}


def test_known_answers(known):
    cases, records, frame, parts = known
    lines = []
    assert frame.rule.isna().all(), frame.loc[frame.rule.notna(), ["rule", "reason"]]
    for k, name in enumerate(records.index):
        geom, lon, lat, holes, exp = cases[name]
        row = frame.loc[name]
        pl, pa = stcs.parse([row.s_region]).polygon(0)
        assert np.isfinite(pl).all() and np.isfinite(pa).all()
        truth_lon, truth_lat, truth_holes = lon, lat, ()  # the chain has no holes
        iou, a_truth, a_ours, a_diff = _overlap(truth_lon, truth_lat, truth_holes, geom, pl, pa)
        lines.append(f"  {name:14s} {row.geom_flag:18s} n={row.n_vertices:4d} IoU {iou:.3f} "
                     f"truth {a_truth:8.3f} deg² ours {a_ours:8.3f} deg² "
                     f"c1 {row.c1min:7.2f}..{row.c1max:7.2f} c2 {row.c2min:6.2f}..{row.c2max:6.2f}")
        if "flag" in exp:
            assert row.geom_flag == exp["flag"], (name, row.geom_flag)
        assert iou >= MIN_IOU[name], (name, iou)
        assert sregion.check_polygon(pl, pa) is None, name
    print("\nknown answers (truth rendered with SkyCoord, 1024² MDI-like image):\n"
          + "\n".join(lines))
    assert stcs.check(frame.s_region) == [None] * len(frame)


def _arc_distance(p, a, b):
    """Angle (rad) from unit vectors p (N, 3) to the great-circle arcs a→b (M, 3): (N, M)."""
    n = np.cross(a, b)
    n /= np.linalg.norm(n, axis=1)[:, None]
    s = p @ n.T                                     # sine of the distance to the circle
    foot = p[:, None, :] - s[:, :, None] * n[None, :, :]
    # the foot lies on the arc when it is between a and b
    on = (np.einsum("nmk,mk->nm", np.cross(a[None, :, :], foot), n) >= 0) & \
        (np.einsum("nmk,mk->nm", np.cross(foot, b[None, :, :]), n) >= 0)
    ends = np.minimum(np.arccos(np.clip(p @ a.T, -1, 1)), np.arccos(np.clip(p @ b.T, -1, 1)))
    return np.where(on, np.abs(np.arcsin(np.clip(s, -1, 1))), ends)


def test_vertex_budget_stays_within_half_a_pixel(known):
    """The published polygon (vertex budget, 0.45 px) against the full outline, on the
    sphere: every full vertex lies within 0.45 of a disk-centre pixel's angle of the
    published polygon's great-circle edges; fewer vertices; area change reported."""
    cases, records, frame, parts = known
    full, fparts = hfc_ar_geometry(records, vertex_tol_px=0)
    assert (frame.n_vertices <= full.n_vertices).all()
    assert frame.n_vertices.sum() < 0.8 * full.n_vertices.sum()
    assert (full.simplify_change == 0).all()
    assert frame.simplify_change.abs().max() < 0.02
    for k, name in enumerate(records.index):
        rec = records.loc[name]
        rho = np.deg2rad(rec.R_SUN * rec.CDELT1 / 3600)
        tol = 0.45 * np.deg2rad(rec.CDELT1 / 3600) * (1 - np.sin(rho)) / np.sin(rho)
        fl, fa = stcs.parse([full.loc[name, "s_region"]]).polygon(0)
        pl, pa = stcs.parse([frame.loc[name, "s_region"]]).polygon(0)
        P = unit_vectors(fl, fa)
        V = unit_vectors(pl, pa)
        d = _arc_distance(P, V, np.roll(V, -1, axis=0)).min(axis=1)
        # STC-S keeps 6 decimals of a degree (≤ 1e-8 rad of rounding)
        assert d.max() <= tol + 1e-7, (name, d.max(), tol)
        # and simplification did something where the outline had vertices to spare
        if full.loc[name, "n_vertices"] > 12:
            assert frame.loc[name, "n_vertices"] < full.loc[name, "n_vertices"], name


def test_seam_range_and_orientation(known):
    _, _, frame, parts = known
    for name in ("seam", "seam_limb"):
        row = frame.loc[name]
        assert row.c1min > row.c1max, name  # crosses 0/360: western edge first
        assert row.c1min > 300 and row.c1max < 60
    # counter-clockwise: positive signed area in unwrapped lon/lat
    area = sregion.signed_area(parts.lon, parts.lat, parts.hpc.offsets)
    assert (area > 0).all()


def test_limb_regions_have_no_nan_and_stay_on_the_disk(known):
    cases, records, frame, parts = known
    for k, name in enumerate(records.index):
        x, y = parts.hpc.item(k)
        rsun = RSUN_PIX * CDELT
        assert np.hypot(x, y).max() < rsun, name
        if "limb" in name:
            assert "clipped at the limb" in frame.loc[name, "geom_note"]
            a, b = parts.outline.offsets[k], parts.outline.offsets[k + 1]
            assert parts.outline_beyond_limb[a:b].any(), name
    assert np.isfinite(parts.lon).all() and np.isfinite(parts.lat).all()


def test_one_pixel_and_spur_and_hole(known):
    cases, records, frame, parts = known
    assert records.loc["one_pixel", "CC"] == ""
    assert records.loc["one_pixel", "FEAT_AREA_PIX"] == 1
    r1 = frame.loc["one_pixel"]
    assert r1.n_vertices >= 4 and r1.area_ratio == pytest.approx(1.0)
    # the tiny true square lies inside our one-pixel polygon
    geom, lon, lat, _, _ = cases["one_pixel"]
    pl, pa = stcs.parse([r1.s_region]).polygon(0)
    gx, gy, _ = _project_about(pl, pa, lon, lat)
    assert shapely.Polygon(np.c_[gx[:len(pl)], gy[:len(pl)]]).contains(
        shapely.MultiPoint(np.c_[gx[len(pl):], gy[len(pl):]]))
    # the spur's tip is kept (a one- or two-pixel-wide strip reaching lat -1.5)
    geom, lon, lat, _, _ = cases["spur"]
    pl, pa = stcs.parse([frame.loc["spur", "s_region"]]).polygon(0)
    assert pa.max() > -1.6
    # the hole is filled (the chain traces the outer boundary only)
    geom, lon, lat, holes, _ = cases["hole"]
    pl, pa = stcs.parse([frame.loc["hole", "s_region"]]).polygon(0)
    hl, hb = holes[0]
    gx, gy, _ = _project_about(pl, pa, np.array([hl.mean()]), np.array([hb.mean()]))
    assert shapely.Polygon(np.c_[gx[:-1], gy[:-1]]).contains(shapely.Point(gx[-1], gy[-1]))


def _psql_super(db, sql):
    cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120)


def _sphere_db(pg) -> str | None:
    """A database where pg_sphere answers: the throw-away one, else DaCHS's own (read only).

    (PostgreSQL 15.20 refuses ``CREATE EXTENSION pg_sphere`` 1.2.0 in a new database —
    "commutator operator @> is already the commutator of operator <@" — while DaCHS's
    database keeps the extension it got at install time.)
    """
    if _psql_super(pg.dbname, "CREATE EXTENSION IF NOT EXISTS pg_sphere").returncode == 0:
        return pg.dbname
    r = _psql_super("gavo", "SELECT area(spoly '{(0d,0d),(1d,0d),(1d,1d)}')")
    return "gavo" if r.returncode == 0 else None


@pytest.mark.dachs
def test_polygons_are_accepted_by_pgsphere(known, pg):
    """Every polygon (plus the 76 real SMART ones) parses as a pgSphere spoly."""
    from test_chaincode import load_smart_records
    from vespa_curation.geometry import hfc_ar_polygons

    db = _sphere_db(pg)
    if db is None:
        msg = "no database with a working pg_sphere"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    _, _, frame, _ = known
    polys = list(frame.s_region) + list(hfc_ar_polygons(load_smart_records()).s_region)
    lines = []
    for k, s in enumerate(polys):
        body = s.split("UNKNOWNFrame", 1)[1].split()
        pts = ",".join(f"({body[i]}d,{body[i + 1]}d)" for i in range(0, len(body), 2))
        lines.append(f"SELECT {k}, area(spoly '{{{pts}}}') > 0;")
    cmd = ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=0", "-d", db]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    r = subprocess.run(cmd, input="\n".join(lines), capture_output=True, text=True, timeout=300)
    assert "ERROR" not in r.stderr, r.stderr[:2000]
    answers = [ln for ln in r.stdout.splitlines() if "|" in ln]
    assert len(answers) == len(polys) and all(a.endswith("|t") for a in answers)


def _limb_teeth(parts, k, rsun_arcsec, pix_arcsec):
    """Vertices of ring ``k`` a pixel-ish inside the limb between two vertices on it.

    That is the sawtooth a pixel staircase makes when it is clipped corner by corner:
    the published polygon alternates between the limb and ~1 px inside, teeth degrees
    wide in longitude.
    """
    x, y = parts.hpc.item(k)
    d = (rsun_arcsec - np.hypot(x, y)) / pix_arcsec  # px inside the limb
    on = d < 0.1
    inner = (d > 0.3) & (d < 2.5)
    return int((inner & np.roll(on, 1) & np.roll(on, -1)).sum())


def test_limb_outline_follows_the_limb_without_teeth(known):
    """Along the limb the outline is an arc on it, not a staircase clipped into teeth."""
    cases, records, frame, parts = known
    rsun = RSUN_PIX * CDELT
    names = [nm for nm in records.index if "limb" in nm]
    # the full outline (before the vertex budget, which keeps of the arc only the
    # vertices needed within half a pixel) runs along the limb, densified
    _, dense = hfc_ar_geometry(records, vertex_tol_px=0)
    for name in names:
        k = list(records.index).index(name)
        assert _limb_teeth(parts, k, rsun, CDELT) == 0, name
        assert _limb_teeth(dense, k, rsun, CDELT) == 0, name
        x, y = dense.hpc.item(k)
        d = (rsun - np.hypot(x, y)) / CDELT
        assert (d < 0.1).sum() >= 10, name  # a run of vertices on the limb
        # consecutive vertices on the limb are close: the arc is densified
        on = np.flatnonzero(d < 0.1)
        step = np.hypot(np.diff(x[on]), np.diff(y[on])) / CDELT
        assert np.median(step) <= 4.01, name
    # the check does see the teeth of the staircase clipped as it is
    _, raw = hfc_ar_geometry(records.loc[names], limb_snap_px=0)
    assert sum(_limb_teeth(raw, k, rsun, CDELT) for k in range(len(names))) > 3
