"""Known-answer machinery: rendering regions with SkyCoord and encoding SMART-like chains."""
from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
import shapely
from astropy.coordinates import SkyCoord
from astropy.utils import iers
from scipy import ndimage

from vespa_curation.synth import (
    ImageGeometry,
    boundary_pixels,
    decode_chaincode,
    encode_chaincode,
    mask_from_pixels,
    render_region,
    visible_area_and_centroid,
)

import smart

iers.conf.auto_download = False

ROOT = Path(__file__).resolve().parents[1]


def _sunpy_decode(x0, y0, cc):
    from sunpy.net.helio import Chaincode

    xy = Chaincode([x0, y0], cc, xdelta=1, ydelta=1).coordinates
    return np.rint(np.asarray(xy).T).astype(int)


def _signed_area(p):
    x, y = p[:, 0].astype(float), p[:, 1].astype(float)
    return 0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1])


def _random_blobs(n, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        m = rng.random((40, 50)) < 0.55
        m = ndimage.binary_opening(m, iterations=1) | (rng.random((40, 50)) < 0.03)
        m[:2] = m[-2:] = False
        m[:, :2] = m[:, -2:] = False
        if m.any():
            yield m


@pytest.fixture(scope="module")
def mdi():
    """A SoHO/MDI-like image of 2005-04-02 01:35 (the real SMART records' geometry)."""
    g = ImageGeometry.from_rsun("2005-04-02T01:35:03.426", 488.79, naxis1=1024, naxis2=1024,
                                center_x=512.741, center_y=512.471, cdelt1=1.98581)
    return g, g.observer


def _central_meridian(g, obs):
    hpc, hgc = g.frames(obs)
    c = SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=hpc).transform_to(hgc)
    return c.lon.to_value(u.deg)


# --- chain codes ------------------------------------------------------------------------
def test_reencoding_real_smart_regions_gives_their_exact_chain_codes():
    d = smart.read("20050402_test_ar_results.csv")
    X, Y = np.meshgrid(np.arange(1024), np.arange(1024))
    for r in d.itertuples():
        p = decode_chaincode(r.CC_PIX_X, r.CC_PIX_Y, str(r.CHAIN_CODE))
        ring = shapely.make_valid(shapely.Polygon(p))
        mask = shapely.contains_xy(ring, X.ravel(), Y.ravel()).reshape(X.shape)
        mask[p[:, 1], p[:, 0]] = True
        assert encode_chaincode(mask) == (r.CC_PIX_X, r.CC_PIX_Y, str(r.CHAIN_CODE)), r.ID


def test_chain_decodes_with_sunpy_to_the_boundary_pixels_closes_and_is_ccw():
    for mask in _random_blobs(25):
        x0, y0, cc = encode_chaincode(mask)
        pts = _sunpy_decode(x0, y0, cc)
        assert (pts[0] == pts[-1]).all(), "chain must return to its start"
        comp = ndimage.label(mask, structure=np.ones((3, 3)))[0]
        sizes = np.bincount(comp.ravel())[1:]
        largest = comp == np.argmax(sizes) + 1
        want = {tuple(p) for p in boundary_pixels(largest)}
        assert {tuple(p) for p in pts} == want
        assert all(largest[y, x] for x, y in pts)
        if len(want) > 2:
            assert _signed_area(pts) > 0, "counter-clockwise (x right, y up)"
        # start: leftmost pixel of the lowest row
        ys, xs = np.nonzero(largest)
        assert (y0, x0) == (ys.min(), xs[ys == ys.min()].min())
        assert set(cc) <= set("01234567")


def test_one_pixel_region_and_spur_out_and_back():
    x0, y0, cc = encode_chaincode(mask_from_pixels(10, 10, [4], [6]))
    assert (x0, y0, cc) == (4, 6, "")
    # a 3x3 square with a 3-pixel spur to the right from its middle row
    xs = [2, 3, 4] * 3 + [5, 6, 7]
    ys = [2] * 3 + [3] * 3 + [4] * 3 + [3, 3, 3]
    x0, y0, cc = encode_chaincode(mask_from_pixels(12, 12, xs, ys))
    assert (x0, y0) == (2, 2)
    assert cc == "44" + "5" + "44" + "00" + "7" + "00" + "22"  # out to (7, 3) and back
    pts = decode_chaincode(x0, y0, cc)
    assert (pts[0] == pts[-1]).all()
    tip = np.flatnonzero((pts == [7, 3]).all(axis=1))
    assert tip.size == 1 and (pts == [6, 3]).all(axis=1).sum() == 2


def test_encode_keeps_only_the_largest_component_and_ignores_holes():
    m = np.zeros((30, 30), bool)
    m[5:20, 5:20] = True
    m[10:14, 10:14] = False  # hole
    m[25, 25] = True         # speck
    with_hole = encode_chaincode(m)
    m[10:14, 10:14] = True
    m[25, 25] = False
    assert encode_chaincode(m) == with_hole
    with pytest.raises(ValueError, match="empty"):
        encode_chaincode(np.zeros((4, 4), bool))


# --- rendering ----------------------------------------------------------------------------
def test_region_at_disk_centre_lands_where_skycoord_projects_it(mdi):
    g, obs = mdi
    l0 = _central_meridian(g, obs)
    lon = l0 + 10 + np.array([-3.0, 3.0, 3.0, -3.0])
    lat = np.array([12.0, 12.0, 18.0, 18.0])
    mask = render_region(lon, lat, g, observer=obs)
    # the projected polygon (SkyCoord, densified edges) in pixels
    ring = shapely.segmentize(shapely.LinearRing(np.column_stack([lon, lat])), 0.05)
    rl, rb = np.asarray(ring.coords).T
    px, py, vis = g.carrington_to_pix(rl, rb, obs)
    assert vis.all()
    proj = shapely.Polygon(np.column_stack([px, py]))
    xa, ya, xb, yb = (int(v) for v in np.array(proj.bounds) + [-5, -5, 5, 5])
    Y, X = np.mgrid[ya:yb, xa:xb]
    inside = shapely.contains_xy(proj, X.ravel(), Y.ravel()).reshape(X.shape)
    dist = shapely.distance(proj.exterior, shapely.points(X.ravel(), Y.ravel())).reshape(X.shape)
    clear = dist > 0.05
    assert mask.sum() > 500 and mask.sum() == mask[ya:yb, xa:xb].sum()
    assert (mask[ya:yb, xa:xb][clear] == inside[clear]).all()


def test_limb_region_is_clipped_to_the_visible_disk(mdi):
    g, obs = mdi
    l0 = _central_meridian(g, obs)
    lon = l0 + np.array([80.0, 100.0, 100.0, 80.0])   # across the west limb
    lat = np.array([-20.0, -20.0, -5.0, -5.0])
    mask = render_region(lon, lat, g, observer=obs)
    ys, xs = np.nonzero(mask)
    r = np.hypot(xs - g.center_x, ys - g.center_y)
    assert mask.sum() > 100
    assert r.max() <= g.rsun_pix + 0.5 and r.max() > g.rsun_pix - 1.5
    assert xs.min() > g.center_x  # west side
    area, clon, _ = visible_area_and_centroid(lon, lat, g, observer=obs)
    full, _, _ = visible_area_and_centroid(lon, lat, g, observer=obs, step=0.05)
    assert 0 < area < 20 * 15 and abs(area - full) / area < 0.01
    assert l0 + 80 < clon + (360 if clon < l0 else 0) < l0 + 92


def test_region_straddling_carrington_zero_renders_the_same_either_way():
    # a date whose central meridian is near Carrington 0 (chosen with sunpy's L0)
    from sunpy.coordinates.sun import L0

    t0 = "2005-04-10T00:00:00"
    shift = (L0(t0).to_value(u.deg) + 180) % 360 - 180  # days to reach L0 ≈ 0
    t = (pd.Timestamp(t0) + pd.Timedelta(days=shift / 13.2)).isoformat()
    g = ImageGeometry.from_rsun(t, 488.8, naxis1=1024, naxis2=1024, center_x=511.5,
                                center_y=511.5, cdelt1=1.986)
    obs = g.observer
    a = render_region([356.0, 4.0, 4.0, 356.0], [-10, -10, -2, -2], g, observer=obs)
    b = render_region([-4.0, 4.0, 4.0, -4.0], [-10, -10, -2, -2], g, observer=obs)
    assert a.sum() > 1000 and (a == b).all()
    clon = g.pix_to_carrington(*np.nonzero(a)[::-1], obs)[0]
    assert (clon > 350).any() and (clon < 10).any()


def test_holes_stay_unset(mdi):
    g, obs = mdi
    l0 = _central_meridian(g, obs)
    lon = l0 + np.array([-8.0, 8.0, 8.0, -8.0])
    lat = np.array([-8.0, -8.0, 8.0, 8.0])
    hole = (l0 + np.array([-3.0, 3.0, 3.0, -3.0]), np.array([-3.0, -3.0, 3.0, 3.0]))
    m = render_region(lon, lat, g, observer=obs, holes=[hole])
    full = render_region(lon, lat, g, observer=obs)
    cx, cy = g.carrington_to_pix([l0], [0.0], obs)[:2]
    assert full[int(round(cy[0])), int(round(cx[0]))]
    assert not m[int(round(cy[0])), int(round(cx[0]))]
    assert encode_chaincode(m) == encode_chaincode(full)


def test_visible_overlap_of_the_truth_with_itself_and_with_a_shifted_copy(mdi):
    from vespa_curation.synth import visible_overlap

    g, obs = mdi
    l0 = _central_meridian(g, obs)
    oc = g.observer_carrington(obs)
    lon = l0 + np.array([84.0, 96.0, 96.0, 84.0])     # across the west limb
    lat = np.array([0.0, 0.0, 6.0, 6.0])
    vis, _, _ = visible_area_and_centroid(lon, lat, g, observer_carrington=oc, step=0.02)
    same = visible_overlap(lon, lat, lon, lat, g, observer_carrington=oc)
    assert same["truth_deg2"] == pytest.approx(vis, rel=1e-3)
    assert same["other_deg2"] == pytest.approx(12 * 6 * np.cos(np.radians(3)), rel=1e-2)
    # the other polygon given with longitudes wrapped differently is the same polygon
    wrapped = visible_overlap(lon, lat, (lon % 360) - 360, lat, g, observer_carrington=oc)
    assert wrapped["inter_deg2"] == pytest.approx(same["inter_deg2"])
    shifted = visible_overlap(lon, lat, lon + 1.0, lat, g, observer_carrington=oc)
    assert shifted["inter_deg2"] < same["inter_deg2"] and shifted["iou"] < same["iou"]


def test_a_region_around_a_pole_is_refused():
    from vespa_curation.synth import region_polygon

    with pytest.raises(ValueError, match="180"):
        region_polygon([0, 90, 180, 270], [80, 80, 80, 80])
