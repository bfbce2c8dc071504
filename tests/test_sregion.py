"""Spherical polygons: pgSphere rules on the sphere, unwrapping, ranges, clipping,
densifying, STC-S text — and agreement with the validator's own polygon checks."""
from __future__ import annotations

import numpy as np
import pytest
import shapely

from vespa_curation import stcs
from vespa_curation.geometry import sregion
from vespa_curation.geometry.chaincode import Ragged


def _square(lon0, lat0, h=1.0):
    return (np.array([lon0 - h, lon0 + h, lon0 + h, lon0 - h]),
            np.array([lat0 - h, lat0 - h, lat0 + h, lat0 + h]))


def test_check_polygon_rules():
    lon, lat = _square(100, 10)
    assert sregion.check_polygon(lon, lat) is None
    assert sregion.check_polygon(lon[::-1], lat[::-1])[0] == "epn.orientation"
    assert sregion.check_polygon(lon[::-1], lat[::-1], require_ccw=False) is None
    # bow tie
    assert sregion.check_polygon([0, 2, 0, 2], [0, 2, 2, 0])[0] == "pgsphere.self_intersection"
    assert sregion.check_polygon([0, 1], [0, 1])[0] == "pgsphere.vertices"
    assert sregion.check_polygon([0, 1, 1, 1], [0, 0, 0, 0])[0] == "pgsphere.vertices"
    t = np.linspace(0, 2 * np.pi, 1100, endpoint=False)
    r = sregion.check_polygon(10 + np.cos(t), np.sin(t))
    assert r[0] == "pgsphere.vertices" and "1100" in r[1]
    # the whole visible disk is a hemisphere: refused
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    ring_lon = 90 + 90 * np.cos(t)
    ring_lat = 89.999 * np.sin(t)
    assert sregion.check_polygon(ring_lon, ring_lat)[0] == "pgsphere.too_large"
    assert sregion.check_polygon([0, np.nan, 1], [0, 0, 1])[0] == "pgsphere.bad_value"
    # repeated closing vertex is dropped, as pgSphere does
    assert sregion.check_polygon(np.r_[lon, lon[0]], np.r_[lat, lat[0]]) is None


def test_polar_cap_and_seam_pass():
    # a cap around the north pole: simple on the sphere although its lon/lat ring is open
    lon = np.arange(0, 360, 30.0)
    assert sregion.check_polygon(lon, np.full(lon.size, 80.0)) is None
    lon, lat = _square(0.0, -5)  # crosses 0/360
    assert sregion.check_polygon(np.mod(lon, 360), lat) is None


def test_high_latitude_crossing_found_on_the_sphere():
    # planar-in-lon/lat simple, but the great-circle edges near the pole cross
    lon = np.array([0.0, 170.0, 179.0, 1.0])
    lat = np.array([80.0, 80.0, 70.0, 70.0])
    assert shapely.LinearRing(np.c_[lon, lat]).is_simple
    lon2 = np.array([0.0, 90.0, 180.0, 270.0])
    lat2 = np.array([85.0, 85.0, 85.0, 85.0])
    assert sregion.check_polygon(lon2, lat2) is None
    r = sregion.check_polygon(lon, lat, require_ccw=False)
    # edges 0-1 and 2-3 run over the pole: on the sphere 2-3 passes closer to the
    # pole than 0-1, so they cross
    assert r is not None and r[0] == "pgsphere.self_intersection"


def test_unwrap_and_longitude_range_across_the_seam():
    lon = np.array([358.0, 2.0, 2.0, 358.0, 100.0, 110.0, 110.0])
    lat = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    off = np.array([0, 4, 7])
    u = sregion.unwrap_lon(lon, off)
    np.testing.assert_allclose(u, [358, 362, 362, 358, 100, 110, 110])
    c1min, c1max = sregion.lon_range(u, off)
    np.testing.assert_allclose(c1min, [358, 100])
    np.testing.assert_allclose(c1max, [2, 110])
    assert c1min[0] > c1max[0]
    assert sregion.signed_area(u, lat, off)[0] == pytest.approx(4.0)


def test_to_stcs_text_and_validator_agreement():
    lon = np.array([358.0, 362.0, 362.0, 358.0, 10.5, 11.0, 11.0])
    lat = np.array([-1.0, -1.0, 1.0, 1.0, -0.25, 0.0, 0.125])
    s = sregion.to_stcs(lon, lat, np.array([0, 4, 7]))
    assert s[0] == ("Polygon UNKNOWNFrame 358.000000 -1.000000 2.000000 -1.000000 "
                    "2.000000 1.000000 358.000000 1.000000")
    assert s[1] == "Polygon UNKNOWNFrame 10.500000 -0.250000 11.000000 0.000000 11.000000 0.125000"
    assert stcs.check(s) == [None, None]
    v = np.random.default_rng(0).uniform(-90, 360, 20000)
    buf, ends = sregion.format_numbers(v)
    assert buf.tobytes().decode() == "".join(" %.6f" % x for x in v).replace("-0.000000", "0.000000")


@pytest.mark.parametrize("digits", [0, 3, 6, 9])
def test_format_numbers_is_the_rounded_number_written_out(digits):
    """Every number is ``rint(v * 10**digits)`` written as sign, integer part, point and
    ``digits`` decimals: large and tiny values, halves, negative zero."""
    rng = np.random.default_rng(digits)
    big = 1e12 if digits < 6 else 1e6
    v = np.r_[rng.uniform(-90, 360, 5000), rng.uniform(-big, big, 500),
              [-1e-9, -0.0, 0.0, 0.5, -0.5, 1.5, 2.5, 999.9999995, 1e-7, 10.0, -100.0]]
    buf, ends = sregion.format_numbers(v, digits)
    q = np.rint(v * 10**digits).astype(np.int64)
    want = [" " + ("-" if k < 0 else "") + f"{abs(k) // 10**digits}."
            + (f"{abs(k) % 10**digits:0{digits}d}" if digits else "") for k in q]
    assert buf.tobytes().decode() == "".join(want)
    assert ends.tolist() == np.cumsum([len(w) for w in want]).tolist()


def test_densify_splits_long_edges():
    r = Ragged(np.array([0.0, 10.0, 10.0, 0.0]), np.array([0.0, 0.0, 1.0, 1.0]), np.array([0, 4]))
    d = sregion.densify(r, 2.0)
    assert len(d.x) == 5 + 1 + 5 + 1
    xs, ys = d.x, d.y
    seg = np.hypot(np.diff(np.r_[xs, xs[0]]), np.diff(np.r_[ys, ys[0]]))
    assert seg.max() <= 2.0 + 1e-12
    assert shapely.Polygon(np.c_[xs, ys]).area == pytest.approx(10.0)
    assert sregion.densify(r, 2.0, limit=8) is r or len(sregion.densify(r, 2.0, limit=8).x) == 4


def test_clip_to_disk():
    # one ring inside, one straddling, one outside a unit-10 circle
    x = np.array([0, 1, 1, 0, 8, 12, 12, 8, 20, 21, 21, 20], float)
    y = np.array([0, 0, 1, 1, -1, -1, 1, 1, 0, 0, 1, 1], float)
    r = Ragged(x, y, np.array([0, 4, 8, 12]))
    out, touched, multi, empty, kept = sregion.clip_to_disk(r, np.array([10.0, 10.0, 10.0]))
    assert list(touched) == [False, True, True]
    assert list(empty) == [False, False, True]
    np.testing.assert_array_equal(out.item(0)[0], [0, 1, 1, 0])
    cx, cy = out.item(1)
    assert np.hypot(cx, cy).max() <= 10.0 + 1e-9
    assert 0.4 < kept[1] < 0.5
    assert out.counts[2] == 0


def test_spherical_area():
    lon, lat = _square(50, 0, 0.5)
    a = sregion.spherical_area(lon, lat, np.array([0, 4]))
    assert a[0] == pytest.approx(1.0, rel=1e-3)
    lon = np.arange(0, 360, 1.0)
    cap = sregion.spherical_area(lon, np.full(lon.size, 60.0), np.array([0, lon.size]))
    # cap above 60° with great-circle edges: close to 2π(1 − sin 60°) sr
    assert cap[0] == pytest.approx(2 * np.pi * (1 - np.sin(np.pi / 3)) * (180 / np.pi) ** 2, rel=2e-3)


def _outline(mask):
    """Pixel-edge outline of the largest region of a mask (the chain-code way)."""
    from vespa_curation import synth
    from vespa_curation.geometry import chaincode as cc
    x0, y0, code = synth.encode_chaincode(mask)
    return cc.pixel_outline([code], np.array([x0]), np.array([y0]))


def test_cut_staircases_within_half_a_pixel_and_simple():
    yy, xx = np.mgrid[0:60, 0:60]
    masks = {
        "disk": (xx - 30) ** 2 + (yy - 28) ** 2 < 20 ** 2,
        "diamond": np.abs(xx - 30) + np.abs(yy - 30) < 15,  # 45° staircases
        "pixel": (xx == 10) & (yy == 12),
        "rectangle": (xx >= 5) & (xx < 25) & (yy >= 5) & (yy < 9),
        "pinch": ((xx >= 10) & (xx < 15) & (yy >= 10) & (yy < 15))
        | ((xx >= 15) & (xx < 20) & (yy >= 15) & (yy < 20)),
    }
    for name, mask in masks.items():
        o = _outline(mask)
        fixed = (np.abs(np.mod(o.x, 1) - 0.5) > 1e-9) | (np.abs(np.mod(o.y, 1) - 0.5) > 1e-9)
        c = sregion.cut_staircases(o, fixed=fixed)
        p0 = shapely.Polygon(np.c_[o.x, o.y])
        p1 = shapely.Polygon(np.c_[c.x, c.y])
        assert p1.is_valid, name
        assert shapely.hausdorff_distance(p0, p1) <= 0.5 / np.sqrt(2) + 1e-9, name
        assert abs(p1.area - p0.area) <= 1.0, name  # staircases keep their area
        if name in ("pixel", "rectangle"):  # no staircase: unchanged
            assert len(c.x) == len(o.x) == 4 and p1.area == p0.area, name
    # a 45° staircase becomes straight edges: the diamond has a handful of vertices
    c = sregion.cut_staircases(_outline(masks["diamond"]))
    assert len(c.x) <= 12
    d = _outline(masks["disk"])
    assert len(sregion.cut_staircases(d).x) < 0.75 * len(d.x)


def test_follow_limb_replaces_the_staircase_by_an_arc():
    # a disk of radius 100 px; a region cut by it: pixels whose centre is inside
    yy, xx = np.mgrid[-120:121, -120:121]
    mask = (np.hypot(xx, yy) < 100) & (xx > 70) & (np.abs(yy) < 40)
    from vespa_curation import synth
    from vespa_curation.geometry import chaincode as cc
    x0, y0, code = synth.encode_chaincode(mask)
    o = cc.pixel_outline([code], np.array([x0]), np.array([y0]))
    r = Ragged(o.x - 120, o.y - 120, o.offsets)
    out, smoothed, fallback, near = sregion.follow_limb(r, 100.0, 0.8, 99.98, 4.0)
    assert smoothed[0] and not fallback[0] and near.sum() > 10
    rv = np.hypot(out.x, out.y)
    on = rv > 99.97
    assert on.sum() >= 15 and (rv <= 99.98 + 1e-9).all()
    # no vertex between two limb vertices dips inside: the arc is one run
    assert not (~on & np.roll(on, 1) & np.roll(on, -1)).any()
    assert shapely.Polygon(np.c_[out.x, out.y]).is_valid
    # a sliver all along the limb is left as it was
    sl = Ragged(np.array([99.5, 99.5, 99.0, 99.0]) * np.cos([0, .1, .1, 0]),
                np.array([99.5, 99.5, 99.0, 99.0]) * np.sin([0, .1, .1, 0]), np.array([0, 4]))
    out, smoothed, fallback, _ = sregion.follow_limb(sl, 100.0, 1.2, 99.98, 4.0)
    assert fallback[0] and not smoothed[0] and np.array_equal(out.x, sl.x)


def test_clip_to_disk_area_fraction_belongs_to_its_ring():
    """The kept-area fraction of a clipped ring is its own (regression: the arc
    parameter array once overwrote the per-ring fractions, giving wrong area ratios
    and an IndexError on chunks with many rings)."""
    import shapely as _sh
    from vespa_curation.geometry.chaincode import Ragged
    from vespa_curation.geometry.sregion import clip_to_disk
    squares = [(-50, -50), (10, 10), (30, -60)] * 40 + [(95, -5)]   # last crosses r=100
    xs, ys, off = [], [], [0]
    for x0, y0 in squares:
        xs += [x0, x0 + 10, x0 + 10, x0]
        ys += [y0, y0, y0 + 10, y0 + 10]
        off.append(off[-1] + 4)
    r = Ragged(np.array(xs, float), np.array(ys, float), np.array(off))
    out, touched, multi, empty, frac = clip_to_disk(r, np.full(len(squares), 100.0))
    assert touched.sum() == 1 and touched[-1]
    expect = _sh.box(95, -5, 105, 5).intersection(_sh.Point(0, 0).buffer(100, 4096)).area / 100
    assert frac[-1] == pytest.approx(expect, rel=2e-3)
    assert np.all(frac[:-1] == 1.0)


def _segment_distance(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    ll = dx * dx + dy * dy
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / np.where(ll > 0, ll, 1), 0, 1)
    return np.hypot(px - ax - t * dx, py - ay - t * dy)


def test_douglas_peucker_keeps_every_vertex_within_tolerance_and_no_more():
    rng = np.random.default_rng(3)
    xs, ys, off = [], [], [0]
    for _ in range(300):
        n = int(rng.integers(3, 150))
        a = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = 1 + 0.05 * rng.standard_normal(n)
        xs.append(r * np.cos(a))
        ys.append(r * np.sin(a))
        off.append(off[-1] + n)
    x, y, off = np.concatenate(xs), np.concatenate(ys), np.array(off)
    tol = rng.uniform(0.01, 0.1, 300)
    keep = sregion.douglas_peucker(x, y, off, tol)
    assert keep.mean() < 0.9   # it does simplify
    for i in range(300):
        s = slice(off[i], off[i + 1])
        rx, ry, k = x[s], y[s], keep[s]
        if len(rx) < 4:
            assert k.all()
            continue
        assert k[0] and k.sum() >= 3
        kx, ky = rx[k], ry[k]
        pos = np.flatnonzero(k)
        # each dropped vertex is within tol of the kept chord that spans it
        for j, (a, b) in enumerate(zip(pos, np.r_[pos[1:], len(rx)])):
            inner = np.arange(a + 1, b)
            if len(inner) == 0:
                continue
            d = _segment_distance(rx[inner], ry[inner], kx[j], ky[j],
                                  kx[(j + 1) % len(kx)], ky[(j + 1) % len(kx)])
            assert d.max() <= tol[i] + 1e-12
    # exact case: a square with a spike of height 0.6 keeps the spike at tol 0.5, drops it at 0.7
    sx = np.array([0, 1, 2, 3, 4, 4, 0], float)
    sy = np.array([0, 0, -0.6, 0, 0, 4, 4], float)
    o = np.array([0, 7])
    assert sregion.douglas_peucker(sx, sy, o, 0.5)[2]
    k = sregion.douglas_peucker(sx, sy, o, 0.7)
    assert not k[2] and not k[1] and not k[3] and k.sum() == 4


def _geos_simple(rings):
    return np.array([shapely.LinearRing(np.c_[x, y]).is_simple for x, y in rings])


def _flat(rings):
    off = np.r_[0, np.cumsum([len(x) for x, _ in rings])]
    return (np.concatenate([x for x, _ in rings]), np.concatenate([y for _, y in rings]),
            off)


def _test_rings(rng, n=6000):
    """Simple rings (star-shaped), crossing ones (random), and the degenerate cases a
    floating-point proof gets wrong: rings on a coarse grid (edges touching at a
    vertex, overlapping collinear edges, spikes folding back), and simple rings with a
    vertex moved within rounding of another edge."""
    out = []
    for k in range(n):
        m = int(rng.integers(3, 60))
        t = np.sort(rng.uniform(0, 2 * np.pi, m))
        r = rng.uniform(0.5, 1.0, m)
        kind = k % 5
        if kind == 0:
            x, y = r * np.cos(t), r * np.sin(t)
        elif kind == 1:
            x, y = rng.uniform(size=m), rng.uniform(size=m)
        elif kind == 2:
            x, y = rng.integers(0, 4, m).astype(float), rng.integers(0, 4, m).astype(float)
        elif kind == 3:
            x, y = np.round(4 * r * np.cos(t)) / 4, np.round(4 * r * np.sin(t)) / 4
        else:   # vertex i put on (or a rounding off) the edge j → j+1
            x, y = r * np.cos(t), r * np.sin(t)
            if m >= 5:
                i, j = 0, m // 2
                f = rng.uniform(0.2, 0.8)
                x[i] = x[j] + f * (x[j + 1] - x[j])
                y[i] = y[j] + f * (y[j + 1] - y[j]) + rng.choice([0.0, 1e-17, -1e-16])
        keep = ~((x == np.roll(x, -1)) & (y == np.roll(y, -1)))
        if keep.sum() >= 3:
            out.append((x[keep], y[keep], kind))
    out += [(np.array([0., 2, 1, 1]), np.array([0., 0, 0, 2]), 5),  # spike back on an edge
            (np.array([0., 2, 2, 1, 1, 0]), np.array([0., 0, 2, 0, 1, 1]), 5),  # on an edge
            (np.array([0., 3, 3, 2, 1, 1, 0]), np.array([0., 0, 1, 0, 0, 1, 1]), 5),  # overlap
            (np.array([0., 1, 0]), np.array([0., 0, 1]), 5)]           # a triangle
    out += [(x, y, 6) for x, y in _touching_rings(rng, 20)]
    return [(x, y) for x, y, _ in out], np.array([k for _, _, k in out])


def _touching_rings(rng, n):
    """Rings touching themselves from one side: vertex ``c`` lies exactly on the edge
    ``a → b`` (checked in rationals) while the floating-point orientation of
    ``(a, b, c)`` is not zero, and both edges at ``c`` leave on the side that
    orientation says. A proof trusting the rounded sign calls them simple."""
    from fractions import Fraction as F
    out = []
    while len(out) < n:
        a, b = (rng.uniform(-1, 1, 2) * 2.0 ** rng.integers(-3, 4, 2) for _ in range(2))
        t = F(int(rng.integers(1, 8)), 8)
        c = [F(a[i]) + t * (F(b[i]) - F(a[i])) for i in range(2)]
        if any(F(float(v)) != v for v in c):
            continue
        c = np.array([float(v) for v in c])
        det = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if det == 0:
            continue
        u = b - a
        nrm = np.sign(det) * np.array([-u[1], u[0]])       # towards the rounded side
        p = c + 0.5 * (b - c) + 0.5 * nrm
        q = c + 0.5 * (a - c) + 0.5 * nrm
        ring = np.array([a, b, p, c, q])
        out.append((ring[:, 0], ring[:, 1]))
    return out


def test_rings_simple_is_geos_is_simple():
    """The compiled proof of simplicity never calls a ring simple that GEOS does not,
    the exact answer is GEOS's for every ring, and the proof settles the plain rings
    (else it would only add work before GEOS)."""
    rings, kind = _test_rings(np.random.default_rng(11))
    x, y, off = _flat(rings)
    geos = _geos_simple(rings)
    proven = sregion.rings_simple(x, y, off, exact=False)
    assert not (proven & ~geos).any()
    assert (sregion.rings_simple(x, y, off, exact=True) == geos).all()
    assert 0.3 < geos.mean() < 0.7        # both answers well represented
    assert proven[(kind == 0) & geos].mean() > 0.99
    assert not geos[kind == 6].any()
    fixed = np.flatnonzero(kind == 5)
    assert not geos[fixed[:3]].any() and geos[fixed[3]] and proven[fixed[3]]


def _gnomonic_numpy(v, offsets):
    """The gnomonic plane as sregion.gnomonic computed it with numpy arrays (before
    the compiled walk): the reference of test_gnomonic_plane_is_the_numpy_formula."""
    from vespa_curation.geometry.chaincode import ragged_ids
    n = len(offsets) - 1
    ids = ragged_ids(offsets)
    c = np.stack([np.bincount(ids, weights=v[:, k], minlength=n) for k in range(3)],
                 axis=1).astype(float).reshape(n, 3)
    norm = np.linalg.norm(c, axis=1)
    norm[norm == 0] = 1.0
    c /= norm[:, None]
    e1 = np.cross(np.array([0.0, 0.0, 1.0]), c)
    e1[np.linalg.norm(e1, axis=1) < 1e-9] = np.array([0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1, axis=1)[:, None]
    e2 = np.cross(c, e1)
    cv = np.einsum("ij,ij->i", v, c[ids])
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.einsum("ij,ij->i", v, e1[ids]) / cv,
                np.einsum("ij,ij->i", v, e2[ids]) / cv, cv)


def test_gnomonic_plane_is_the_numpy_formula():
    """The compiled gnomonic plane gives the numpy formula's numbers (within 2 units in
    the last place: the same operations, summed as einsum sums here), on small and
    large rings, rings about a pole, across the seam, reaching past a hemisphere,
    empty or of one point; and the edge cosines check_polygons uses."""
    from vespa_curation.geometry.chaincode import ragged_ids
    from vespa_curation.geometry.sphere import unit_vectors
    rng = np.random.default_rng(11)
    lon, lat, counts = [], [], []
    for k in range(3000):
        m = int(rng.integers(3, 80))
        clon, clat = rng.uniform(0, 360), rng.uniform(-90, 90)
        r = rng.choice([1e-7, 0.01, 1.0, 20.0, 95.0])
        t = np.sort(rng.uniform(0, 2 * np.pi, m))
        lon.append(np.mod(clon + r * np.cos(t) / max(np.cos(np.radians(clat)), 0.05), 360))
        lat.append(np.clip(clat + r * np.sin(t), -90, 90))
        counts.append(m)
    lon += [np.array([]), np.array([10.0]), np.array([0.0, 0.0, 0.0]), np.array([0.0, 90.0])]
    lat += [np.array([]), np.array([90.0]), np.array([90.0, 90.0, 90.0]), np.array([0.0, 0.0])]
    counts += [0, 1, 3, 2]
    lon, lat = np.concatenate(lon), np.concatenate(lat)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    v = unit_vectors(lon, lat)
    got = sregion.gnomonic(lon, lat, offsets, v=v)
    want = _gnomonic_numpy(v, offsets)
    for g, w in zip(got, want):
        assert np.array_equal(np.isfinite(g), np.isfinite(w))
        fin = np.isfinite(w)
        np.testing.assert_array_max_ulp(g[fin], w[fin], maxulp=2)
    assert (got[2] <= 1e-9).any()                       # rings past a hemisphere
    nxt = np.arange(len(lon)) + 1
    last = offsets[1:][np.diff(offsets) > 0] - 1
    nxt[last] = offsets[:-1][np.diff(offsets) > 0]
    dots = np.empty(len(lon))
    sregion.kernels.next_dots(v, offsets, dots)
    np.testing.assert_array_max_ulp(dots, np.einsum("ij,ij->i", v, v[nxt]), maxulp=2)
    assert len(ragged_ids(offsets)) == len(lon)


def _densify_numpy(r, max_len, limit=sregion.MAX_VERTICES, edge_max_len=None):
    """sregion.densify as it was written with numpy arrays (before the compiled walk):
    the reference of test_densify_and_areas_are_the_numpy_formulas."""
    from vespa_curation.geometry.chaincode import ragged_ids
    n = len(r)
    ids = ragged_ids(r.offsets)
    ml = np.broadcast_to(np.asarray(max_len, float), (n,))[ids] if edge_max_len is None \
        else np.asarray(edge_max_len, float)
    nxt = sregion._next_index(r.offsets)
    with np.errstate(invalid="ignore", divide="ignore"):
        seg = np.hypot(r.x[nxt] - r.x, r.y[nxt] - r.y)
        k = np.maximum(np.ceil(seg / ml).astype(np.int64), 1)
    per = np.bincount(ids, weights=k, minlength=n).astype(np.int64)
    k[(per > limit)[ids]] = 1
    if np.all(k == 1):
        return r
    owner = np.repeat(np.arange(len(k)), k)
    first = np.repeat(np.cumsum(k) - k, k)
    f = (np.arange(owner.size) - first) / k[owner]
    x = r.x[owner] + f * (r.x[nxt][owner] - r.x[owner])
    y = r.y[owner] + f * (r.y[nxt][owner] - r.y[owner])
    off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(ids, weights=k, minlength=n).astype(np.int64), out=off[1:])
    return Ragged(x, y, off)


def test_densify_and_areas_are_the_numpy_formulas():
    """densify and signed_area, compiled, give the numbers of the numpy formulas they
    replaced: cut edges (per ring and per edge lengths), rings over the vertex limit
    left whole, empty rings and a NaN vertex (its edges whole), nothing to cut."""
    from vespa_curation.geometry.chaincode import ragged_ids
    rng = np.random.default_rng(12)
    counts = rng.integers(0, 40, 2000)
    counts[:3] = [0, 3, 900]
    off = np.r_[0, np.cumsum(counts)].astype(np.int64)
    x = rng.normal(0, 30, off[-1])
    y = rng.normal(0, 30, off[-1])
    x[5] = np.nan
    r = Ragged(x, y, off)
    ids = ragged_ids(off)
    edge = rng.uniform(0.5, 20, off[-1])
    edge[7] = 0.0                                        # an infinite ratio: left whole
    for kw in ({"max_len": rng.uniform(0.5, 20, len(counts))},
               {"max_len": None, "edge_max_len": edge},
               {"max_len": 5.0, "limit": 60}):
        got, want = sregion.densify(r, **kw), _densify_numpy(r, **kw)
        assert np.array_equal(got.offsets, want.offsets)
        assert len(got.x) > len(x)
        for g, w in ((got.x, want.x), (got.y, want.y)):
            assert np.array_equal(np.isnan(g), np.isnan(w))
            np.testing.assert_array_max_ulp(g[~np.isnan(w)], w[~np.isnan(w)], maxulp=1)
        area = sregion.signed_area(got.x, got.y, got.offsets)
        nxt = sregion._next_index(got.offsets)
        ref = 0.5 * np.bincount(ragged_ids(got.offsets),
                                weights=got.x * got.y[nxt] - got.x[nxt] * got.y,
                                minlength=len(counts))
        assert np.array_equal(area, ref, equal_nan=True)
    # the 900-vertex ring stays whole under a 60-vertex limit
    small = sregion.densify(r, 5.0, limit=60)
    assert np.diff(small.offsets)[2] == 900
    assert sregion.densify(r, 1e9) is r                  # no edge to cut: the same rings
    assert len(ids) == len(x)


def _unwrap_numpy(lon, offsets):
    """sregion.unwrap_lon as written with numpy (one running sum over every vertex)."""
    from vespa_curation.geometry.chaincode import ragged_ids
    if lon.size == 0:
        return lon.copy()
    n = len(offsets) - 1
    ne = np.diff(offsets) > 0
    starts = offsets[:-1][ne]
    d = np.diff(lon, prepend=lon[:1])
    d = (d + 180.0) % 360.0 - 180.0
    d[starts] = 0.0
    c = np.cumsum(d)
    shift = np.zeros(n)
    shift[ne] = np.mod(lon[starts], 360.0) - c[starts]
    return c + shift[ragged_ids(offsets)]


def _centroids_numpy(u, lat, offsets):
    """sregion.ring_centroids' sums as written with numpy (longitude not folded)."""
    from vespa_curation.geometry.chaincode import ragged_ids
    m, ids, counts = len(offsets) - 1, ragged_ids(offsets), np.diff(offsets)
    nxt = sregion._next_index(offsets)
    cross = u * lat[nxt] - u[nxt] * lat
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.bincount(ids, cross, minlength=m) / 2
        cx = np.bincount(ids, (u + u[nxt]) * cross, minlength=m) / (6 * a)
        cy = np.bincount(ids, (lat + lat[nxt]) * cross, minlength=m) / (6 * a)
        flat = np.abs(a) < 1e-12
        cx[flat] = (np.bincount(ids, u, minlength=m) / counts)[flat]
        cy[flat] = (np.bincount(ids, lat, minlength=m) / counts)[flat]
    cx[counts < 3], cy[counts < 3] = np.nan, np.nan
    return cx, cy


def test_unwrap_and_centroids_are_the_numpy_formulas():
    """unwrap_lon and ring_centroids, compiled, give the numpy formulas' bits: rings
    across the 0/360 seam, negative and large longitudes, empty rings, rings of 1-2
    vertices, rings of no area (a line), a NaN vertex; and no vertex at all."""
    rng = np.random.default_rng(13)
    counts = rng.integers(0, 30, 1500)
    counts[:4] = [0, 1, 2, 3]
    off = np.r_[0, np.cumsum(counts)].astype(np.int64)
    centre = np.repeat(rng.uniform(-400, 800, len(counts)), counts)
    lon = centre + rng.normal(0, 3, off[-1])
    lat = np.clip(rng.normal(0, 40, off[-1]), -90, 90)
    lon[off[10]:off[11]] = 359.5 + np.arange(counts[10]) * 0.2       # across the seam
    lat[off[12]:off[13]] = np.linspace(-5, 5, counts[12])           # a line: no area
    lon[off[12]:off[13]] = 20.0 + np.linspace(-5, 5, counts[12])
    lon[off[20] + 1] = np.nan
    got = sregion.unwrap_lon(lon, off)
    want = _unwrap_numpy(lon, off)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.ptp(got[off[10]:off[11]]) < 10                          # no jump at the seam
    cx, cy = sregion.ring_centroids(lon, lat, off)
    wx, wy = _centroids_numpy(want, lat, off)
    assert np.array_equal(cx, np.mod(wx, 360.0), equal_nan=True)
    assert np.array_equal(cy, wy, equal_nan=True)
    assert np.isnan(cx[:3]).all() and np.isfinite(cx[3]) and np.isfinite(cx[12])
    assert len(sregion.unwrap_lon(np.zeros(0), np.zeros(1, np.int64))) == 0


def test_unit_vectors_are_the_numpy_formula_bit_for_bit():
    """The compiled unit vectors are numpy's (the C library's sines and cosines on both
    sides), for any longitude and latitude, shapes kept; NaN where numpy gives NaN."""
    from vespa_curation.geometry.sphere import unit_vectors, unit_vectors_numpy
    rng = np.random.default_rng(4)
    lon = np.r_[rng.uniform(0, 360, 100_000), rng.uniform(-1e4, 1e4, 10_000),
                np.round(rng.uniform(0, 360, 10_000), 6),
                [0, 90, -90, 180, 360, 720, -0.0, 5e-324, 1e300, np.nan, np.inf]]
    lat = np.r_[rng.uniform(-90, 90, 120_000),
                [0, 90, -90, 45, -45, 89.999999, -0.0, 1e-300, 1, 2, np.nan]]
    got = unit_vectors(lon, lat)
    with np.errstate(invalid="ignore"):
        want = unit_vectors_numpy(lon, lat)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    fin = ~np.isnan(want)
    assert np.array_equal(got[fin].view(np.int64), want[fin].view(np.int64))
    assert unit_vectors(lon[:120_000].reshape(60, -1), lat[:120_000].reshape(60, -1)).shape \
        == (60, 2000, 3)
    assert np.array_equal(unit_vectors(30.0, 10.0), unit_vectors_numpy(30.0, 10.0))
