"""Pixels → helioprojective → Carrington: the closed form against sunpy's SkyCoord, the
per-code pixel conventions measured on the real SMART records, and the residuals of our
polygons' centroids against the catalogue's own Carrington centroids."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from astropy.utils import iers

from test_chaincode import load_smart_records
from vespa_curation.geometry import chaincode as ccm
from vespa_curation.geometry import solar

iers.conf.auto_download = False


@pytest.fixture(scope="module")
def smart():
    return load_smart_records()


def test_closed_form_matches_skycoord_within_1e_6_deg():
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from sunpy.coordinates import frames

    rng = np.random.default_rng(42)
    # dates spread over a year (B0 from -7.25° to +7.25°), observers from 0.98 to 1.02 AU
    dates = ["2005-04-02T01:35:03.426", "2008-03-07T12:00:00", "2010-09-08T06:00:00",
             "2014-06-21T23:59:59", "2019-12-05T03:00:00"]
    rsun = [970.6, 969.0, 946.0, 944.5, 975.0]
    ob = solar.observers(dates, rsun)
    worst = 0.0
    for i in range(len(dates)):
        r = np.sqrt(rng.uniform(0, 0.998**2, 2000)) * ob.rsun_arcsec[i]
        a = rng.uniform(0, 2 * np.pi, 2000)
        tx, ty = r * np.cos(a), r * np.sin(a)
        lon, lat = solar.hpc_to_hgc(tx, ty, ob.b0[i], ob.l0[i], ob.dist[i])
        o = ob.skycoord(i)
        c = SkyCoord(tx * u.arcsec, ty * u.arcsec,
                     frame=frames.Helioprojective(observer=o, obstime=ob.times[i]))
        h = c.transform_to(frames.HeliographicCarrington(observer=o, obstime=ob.times[i]))
        dlon = (lon - h.lon.deg + 180) % 360 - 180
        worst = max(worst, np.abs(dlon).max(), np.abs(lat - h.lat.deg).max())
    print(f"\nclosed form vs SkyCoord, 10 000 random on-disk points, 5 observers: "
          f"max |Δ| = {worst:.2e}°")
    assert worst <= 1e-6


def test_observer_from_apparent_radius():
    import astropy.units as u
    from sunpy.coordinates import get_earth, sun

    t = "2005-04-02T01:35:03.426"
    ob = solar.observers([t], [488.779 * 1.98581])
    assert ob.dist[0] / 1.495978707e11 == pytest.approx(0.9884, abs=2e-4)  # SoHO, not Earth
    assert ob.b0[0] == pytest.approx(get_earth(t).lat.to_value(u.deg), abs=1e-9)
    # an Earth observer gets Earth's distance back
    ob_e = solar.observers([t], [sun.angular_radius(t).to_value(u.arcsec)])
    assert ob_e.dist[0] == pytest.approx(get_earth(t).radius.to_value(u.m), rel=1e-9)
    assert ob_e.l0[0] == pytest.approx(sun.L0(t).to_value(u.deg), abs=1e-6)


def test_off_disk_gives_nan():
    ob = solar.observers(["2005-04-02T00:00:00"], [970.0])
    lon, lat = solar.hpc_to_hgc([0.0, 980.0], [0.0, 0.0], ob.b0, ob.l0, ob.dist)
    assert np.isfinite(lon[0]) and np.isnan(lat[1])


def test_smart_conventions_measured(smart):
    """SMART's stored start arcsec are (pix - 512) × 1.984; the image WCS misses them."""
    chk, geo = solar.convention_for("SMART")
    args = (smart.CDELT1, smart.CDELT2, smart.CENTER_X, smart.CENTER_Y)
    tx, ty = chk.to_arcsec(smart.CC_X_PIX, smart.CC_Y_PIX, *args)
    assert np.abs(tx - smart.CC_X_ARCSEC).max() < 1e-3
    assert np.abs(ty - smart.CC_Y_ARCSEC).max() < 1e-3
    wx, wy = geo.to_arcsec(smart.CC_X_PIX, smart.CC_Y_PIX, *args)
    off = np.hypot(wx - smart.CC_X_ARCSEC, wy - smart.CC_Y_ARCSEC) / smart.CDELT1
    print(f"\nimage WCS vs stored start arcsec: max {off.max():.2f} px")
    assert off.max() > 1.0  # the image WCS would wrongly quarantine SMART records
    assert solar.convention_for("synth") == (solar.IMAGE_WCS, solar.IMAGE_WCS)
    assert solar.convention_for(None) == (solar.IMAGE_WCS, solar.IMAGE_WCS)


def _centroids(smart, conv, radii):
    out = ccm.pixel_outline(smart.CC, smart.CC_X_PIX, smart.CC_Y_PIX)
    polys = shapely.polygons(shapely.linearrings(np.c_[out.x, out.y],
                                                 indices=ccm.ragged_ids(out.offsets)))
    c = shapely.get_coordinates(shapely.centroid(polys))
    tx, ty = conv.to_arcsec(c[:, 0], c[:, 1], smart.CDELT1, smart.CDELT2,
                            smart.CENTER_X, smart.CENTER_Y)
    ob = solar.observers(smart.DATE_OBS, radii)
    return solar.hpc_to_hgc(tx, ty, ob.b0, ob.l0, ob.dist)


def test_residuals_against_catalogue_carrington_centroids(smart):
    """Our region centroids vs the catalogue's ARC_CAR_LON/LAT (printed; sane bounds).

    SMART computed its centroids for an *Earth* observer (README of the data: the
    catalogue arcsec centroids reproduce them within 0.22°); the published geometry uses
    the observer seen in the image (R_SUN × CDELT = 970.6″: SoHO at 0.988 AU), which
    shifts longitudes by up to ~1° for these regions (up to 0.8 R☉ from disk centre).
    The centroid definitions also differ (ours: area centroid of the outline;
    SMART's: its own, up to 5″ away).
    """
    from sunpy.coordinates import sun
    import astropy.units as u

    rsun_img = smart.R_SUN * smart.CDELT1
    rsun_earth = sun.angular_radius(smart.DATE_OBS.tolist()).to_value(u.arcsec)
    lines = []
    res = {}
    for name, conv in (("image WCS", solar.IMAGE_WCS), ("SMART nominal", solar.SMART_NOMINAL)):
        for oname, radii in (("image observer", rsun_img), ("Earth observer", rsun_earth)):
            lon, lat = _centroids(smart, conv, radii)
            dlon = (lon - smart.FEAT_CARR_LONG_DEG + 180) % 360 - 180
            dlat = lat - smart.FEAT_CARR_LAT_DEG
            res[name, oname] = (np.abs(dlon).max(), np.abs(dlat).max())
            lines.append(f"  {name:14s} {oname:15s} Δlon max {np.abs(dlon).max():.3f}° "
                         f"mean {dlon.mean():+.3f}°   Δlat max {np.abs(dlat).max():.3f}° "
                         f"mean {dlat.mean():+.3f}°")
    print("\nresiduals vs ARC_CAR_LON/LAT, 76 real SMART regions:\n" + "\n".join(lines))
    lon_max, lat_max = res["image WCS", "image observer"]   # what is published
    assert lon_max < 1.5 and lat_max < 0.6
    lon_e, lat_e = res["image WCS", "Earth observer"]
    assert lon_e < 0.5 and lat_e < 0.35


def test_interpolated_ephemeris_equals_sunpy():
    from astropy.time import Time
    import astropy.units as u

    t = Time("2005-04-02T01:35:03.426") + np.sort(np.random.default_rng(3).uniform(0, 9, 300)) * u.day
    direct = solar.earth_ephemeris(t, interpolate=False)
    spline = solar.earth_ephemeris(t, interpolate=True)
    dl = (spline[1] - direct[1] + 180) % 360 - 180
    print(f"\nspline vs sunpy: |ΔB0| {np.abs(spline[0] - direct[0]).max():.1e}°, "
          f"|ΔL0| {np.abs(dl).max():.1e}°, |Δd| {np.abs(spline[2] - direct[2]).max():.1e} m")
    assert np.abs(spline[0] - direct[0]).max() < 2e-9
    assert np.abs(dl).max() < 2e-9
    assert np.abs(spline[2] - direct[2]).max() < 5.0  # m; enters only the light-time term
    # the automatic choice: many images over few days → spline
    ob = solar.observers(t, np.full(t.size, 970.0))
    assert np.abs((ob.l0 - solar.observers(t, np.full(t.size, 970.0), interpolate=False).l0
                   + 180) % 360 - 180).max() < 2e-9


def test_hpc_to_hgc_unit_vectors_are_the_points():
    """With return_xyz, the (N, 3) Carrington unit vectors of the points it returns
    (one point or many), NaN off the disk."""
    from vespa_curation.geometry.solar import hpc_to_hgc
    from vespa_curation.geometry.sphere import unit_vectors
    tx = np.array([0.0, 300.0, -700.0, 950.0, 2000.0])
    ty = np.array([0.0, -200.0, 400.0, 10.0, 0.0])
    lon, lat, xyz = hpc_to_hgc(tx, ty, 5.0, 120.0, 1.5e11, return_xyz=True)
    assert xyz.shape == (5, 3) and xyz.flags.c_contiguous
    on = np.isfinite(lat)
    assert on.tolist() == [True, True, True, True, False]
    np.testing.assert_allclose(xyz[on], unit_vectors(lon[on], lat[on]), atol=1e-12)
    one = hpc_to_hgc(300.0, -200.0, 5.0, 120.0, 1.5e11, return_xyz=True)[2]
    assert one.shape == (3,) and np.array_equal(one, xyz[1])


def _hpc_to_hgc_numpy(tx, ty, b0, l0, dist, rsun_m=solar.R_SUN_M):
    """hpc_to_hgc as it was written with numpy arrays before the compiled passes (per
    point b0, l0, dist): the reference of test_hpc_to_hgc_is_the_numpy_formula."""
    lam = np.deg2rad(np.asarray(tx, float) / 3600.0)
    phi = np.deg2rad(np.asarray(ty, float) / 3600.0)
    b0r, l0r = np.deg2rad(b0), np.deg2rad(l0)
    cb, sb, cl, sl = np.cos(b0r), np.sin(b0r), np.cos(l0r), np.sin(l0r)
    D = np.asarray(dist, float)
    cphi = np.cos(phi)
    cosa = cphi * np.cos(lam)
    disc = (D * cosa) ** 2 - D**2 + rsun_m**2
    with np.errstate(invalid="ignore"):
        d = D * cosa - np.sqrt(disc)
    x = d * cphi * np.sin(lam)
    y = d * np.sin(phi)
    z = D - d * cosa
    east = z * cb - y * sb
    north = y * cb + z * sb
    lon = np.rad2deg(np.arctan2(x, east)) + l0
    with np.errstate(invalid="ignore"):
        lat = np.rad2deg(np.arcsin(np.clip(north / rsun_m, -1.0, 1.0)))
    lat = np.where(np.isfinite(d), lat, np.nan)
    xyz = np.stack([cl * east - sl * x, sl * east + cl * x, north], axis=-1) / rsun_m
    return np.mod(lon, 360.0), lat, xyz


def test_hpc_to_hgc_is_the_numpy_formula():
    """The compiled passes between numpy's sines and cosines give the numpy formula's
    numbers bit for bit (per-image observers gathered by ``index`` or per point
    broadcast), on the disk, at the limb, beyond it (NaN), at the disk centre, with
    observers at any B0, L0 (longitudes wrapping past 360) and distance."""
    rng = np.random.default_rng(5)
    n_img, n = 300, 200_000
    b0 = rng.uniform(-7.3, 7.3, n_img)
    l0 = np.r_[rng.uniform(0, 360, n_img - 3), 0.0, 359.9999999, 180.0]
    dist = rng.uniform(1.47e11, 1.52e11, n_img)
    image = rng.integers(0, n_img, n)
    r = np.abs(rng.normal(0, 700, n))
    r[:2000] = rng.uniform(955, 990, 2000)          # about the limb, both sides
    t = rng.uniform(0, 2 * np.pi, n)
    tx, ty = r * np.cos(t), r * np.sin(t)
    tx[:3], ty[:3] = 0.0, [0.0, -0.0, 1e-9]
    got = solar.hpc_to_hgc(tx, ty, b0, l0, dist, return_xyz=True, index=image)
    want = _hpc_to_hgc_numpy(tx, ty, b0[image], l0[image], dist[image])
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert np.array_equal(g, w, equal_nan=True)
    off = ~np.isfinite(got[1])
    assert 1000 < off.sum() < n // 2 and np.isnan(got[0][off]).all()
    # per point, broadcasting scalars; without the unit vectors
    lon, lat = solar.hpc_to_hgc(tx[:500], ty[:500], 3.0, 359.5, 1.5e11)
    w = _hpc_to_hgc_numpy(tx[:500], ty[:500], 3.0, 359.5, 1.5e11)
    assert np.array_equal(lon, w[0], equal_nan=True)
    assert np.array_equal(lat, w[1], equal_nan=True)
    one = solar.hpc_to_hgc(300.0, -200.0, 5.0, 120.0, 1.5e11)
    want = _hpc_to_hgc_numpy(300.0, -200.0, 5.0, 120.0, 1.5e11)[:2]
    assert np.ndim(one[0]) == 0 and one == tuple(np.asarray(v)[()] for v in want)


def test_images_numbered_as_a_multiindex_factorizes_them():
    """The images of a chunk (distinct observation time and apparent radius) get the
    codes, and the order, that pandas' factorize of the pairs' MultiIndex gives them
    (first appearance; a missing time or radius an image of its own)."""
    from vespa_curation.geometry.solar import distinct_images
    rng = np.random.default_rng(2)
    times = rng.integers(0, 10**18, 300)[rng.integers(0, 300, 20_000)]
    times[::501] = np.iinfo(np.int64).min                 # NaT
    rsun = np.round(rng.uniform(940, 990, 7), 6)[rng.integers(0, 7, 20_000)]
    rsun[::333] = np.nan
    code, first = distinct_images(times, rsun)
    want, distinct = pd.factorize(pd.MultiIndex.from_arrays([times, rsun]))
    assert np.array_equal(code, want)
    assert np.array_equal(times[first], np.asarray(distinct.get_level_values(0)))
    assert np.array_equal(rsun[first], np.asarray(distinct.get_level_values(1), float),
                          equal_nan=True)
    texts = np.array(["2005-04-19T01:35:03", "2005-04-19T09:35:03", "nan"])[
        rng.integers(0, 3, 500)]                    # DATE_OBS as text (the QA's trace)
    code, first = distinct_images(texts, rsun[:500])
    want, distinct = pd.factorize(pd.MultiIndex.from_arrays([texts, rsun[:500]]))
    assert np.array_equal(code, want)
    assert list(texts[first]) == list(distinct.get_level_values(0))
    code, first = distinct_images(np.array([], np.int64), np.array([]))
    assert len(code) == 0 and len(first) == 0



def test_ephemeris_with_epv00_computed_once_per_date_is_sunpys_bit_for_bit(monkeypatch):
    """sunpy's get_earth and L0 call ERFA's epv00 ten times on the same nodes; the
    memo answering the repeats gives the same numbers, and ERFA's function is back
    after the call, also when the call fails."""
    import contextlib
    import erfa
    from astropy.time import Time
    rng = np.random.default_rng(2)
    sets = [Time(2450300.5 + np.sort(rng.uniform(0, 33, 500)), format="jd", scale="utc"),
            Time(2455000.5 + np.sort(rng.uniform(0, 400, 3000)), format="jd", scale="utc")]
    calls = []
    real = erfa.epv00
    monkeypatch.setattr(erfa, "epv00", lambda a, b: calls.append(1) or real(a, b))
    memo = [solar.earth_ephemeris(t, interpolate=i) for t in sets for i in (True, False)]
    once = len(calls)
    assert erfa.epv00 is not real and erfa.epv00.__name__ == "<lambda>"   # restored
    with monkeypatch.context() as m:
        m.setattr(solar, "_epv00_once", contextlib.nullcontext)
        plain = [solar.earth_ephemeris(t, interpolate=i) for t in sets for i in (True, False)]
    assert len(calls) - once == 10 * once          # ten calls a node set, one kept
    for a, b in zip(memo, plain):
        for x, y in zip(a, b):
            assert np.array_equal(x.view(np.int64), y.view(np.int64))
    with pytest.raises(RuntimeError):
        with solar._epv00_once():
            raise RuntimeError("planted")
    assert erfa.epv00.__name__ == "<lambda>"
