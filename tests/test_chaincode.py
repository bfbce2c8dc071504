"""Chain codes: vectorized decoding (= sunpy's Chaincode on the 76 real SMART records),
refusals with reasons, and the pixel-edge outline (area = pixel count, simple rings).

``load_smart_records()`` (also imported by the other geometry tests) reads the real
SMART/HFC test load of 2005-04-02 from ``tests/data/hfc-smart-20050402/`` and renames
SMART's columns to HFC's (README of that folder).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import shapely

from vespa_curation import synth
from vespa_curation.geometry import chaincode as ccm
from vespa_curation.geometry import hfc_ar_polygons

from smart import load_smart_records

ROOT = Path(__file__).resolve().parents[1]
@pytest.fixture(scope="module")
def smart():
    return load_smart_records()


def test_decode_matches_sunpy_chaincode_on_all_real_records(smart):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sunpy.net.helio import Chaincode
    v = ccm.decode_chains(smart["CC"], smart["CC_X_PIX"], smart["CC_Y_PIX"])
    assert len(v) == 76
    for i, row in smart.iterrows():
        ref = Chaincode([row.CC_X_PIX, row.CC_Y_PIX], row.CC).coordinates
        x, y = v.item(i)
        np.testing.assert_array_equal(x, ref[0], err_msg=f"ID_AR {row.ID_AR}")
        np.testing.assert_array_equal(y, ref[1], err_msg=f"ID_AR {row.ID_AR}")


def test_real_records_pass_the_checks_and_are_counter_clockwise(smart):
    rule, reason = ccm.check_chains(smart.CC, smart.CC_LENGTH, smart.CC_X_PIX, smart.CC_Y_PIX,
                                    smart.NAXIS1, smart.NAXIS2)
    assert all(r is None for r in rule), reason
    _, orient = ccm.pixel_outline(smart.CC, smart.CC_X_PIX, smart.CC_Y_PIX,
                                  return_orientation=True)
    assert (orient == 1).all()


@pytest.mark.parametrize("cc, length, x0, y0, rule, words", [
    ("4462a00", 7, 10, 10, "chaincode.bad_digit", ["'a'", "position 4"]),
    ("44662800", 8, 10, 10, "chaincode.bad_digit", ["'8'"]),
    ("44660022", 7, 10, 10, "chaincode.length_mismatch", ["CC_LENGTH is 7", "8 digits"]),
    ("4466", 4, 10, 10, "chaincode.not_closed", ["(+2, +2)"]),
    ("4460", 4, 10, 10, "chaincode.not_closed", ["(+1, +1)"]),
    ("44660022", 8, 100, 10, "chaincode.start_off_image", ["(100, 10)", "64×64"]),
    ("44660022", 8, -1, 10, "chaincode.start_off_image", ["(-1, 10)"]),
    ("44660022", 8, 10, 10, None, []),
    ("", 0, 10, 10, None, []),
])
def test_check_chains_refuses_with_reason(cc, length, x0, y0, rule, words):
    r, why = ccm.check_chains([cc], [length], [x0], [y0], [64], [64])
    assert r[0] == rule
    for w in words:
        assert w in why[0]


def test_decode_many_chains_with_ragged_offsets():
    v = ccm.decode_chains(["4466", "", "0246"], [0, 5, 1], [0, 5, 1])
    assert list(v.offsets) == [0, 5, 6, 11]
    np.testing.assert_array_equal(v.item(0)[0], [0, 1, 2, 2, 2])
    np.testing.assert_array_equal(v.item(0)[1], [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(v.item(1)[0], [5])
    np.testing.assert_array_equal(v.item(2)[0], [1, 0, 0, 1, 1])
    np.testing.assert_array_equal(v.item(2)[1], [1, 1, 0, 0, 1])
    # a character outside 0-7 is no move (check_chains refuses such chains)
    w = ccm.decode_chains(["4a9 6"], [3], [4])
    np.testing.assert_array_equal(w.item(0)[0], [3, 4, 4, 4, 4, 4])
    np.testing.assert_array_equal(w.item(0)[1], [4, 4, 4, 4, 4, 5])


def _mask(rows):
    """Mask from text rows, top row first ('#' = set)."""
    rows = rows[::-1]
    m = np.zeros((len(rows) + 4, max(map(len, rows)) + 4), dtype=bool)
    for y, r in enumerate(rows):
        for x, c in enumerate(r):
            m[y + 2, x + 2] = c == "#"
    return m


SHAPES = {
    "one_pixel": ["#"],
    "line": ["#####"],
    "column": ["#", "#", "#"],
    "square": ["###", "###", "###"],
    "spur": ["   #", "   #", "#######", "#######"],
    "diagonal_bridge": ["##  ", "##  ", "  ##", "  ##"],
    "bridge_chain": ["#   ", " #  ", "  # ", "   #"],
    "notch": ["# #", "###"],
    "v_shape": ["#   #", " # # ", "  #  "],
    "ring_with_hole": ["#####", "#   #", "#   #", "#####"],
    "comb": ["# # #", "#####", "# # #"],
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_outline_is_the_pixel_union(name):
    mask = _mask(SHAPES[name])
    x0, y0, cc = synth.encode_chaincode(mask)
    out = ccm.pixel_outline([cc], [x0], [y0])
    ring = np.c_[out.item(0)]
    poly = shapely.Polygon(ring)
    assert poly.is_valid, shapely.is_valid_reason(poly)
    assert shapely.LinearRing(ring).is_simple
    comp = synth.largest_component(mask)
    # the region bounded by the chain: the component with its holes filled
    from scipy import ndimage
    filled = ndimage.binary_fill_holes(comp)
    ys, xs = np.nonzero(filled)
    squares = shapely.union_all([shapely.box(x - .5, y - .5, x + .5, y + .5)
                                 for x, y in zip(xs, ys)])
    n_diag = sum(int(c) % 2 for c in cc)
    # exact pixel union, up to the thin bridges added at pinches (diagonal steps)
    extra = n_diag * 3 * ccm.BRIDGE_EPS + 1e-9
    assert abs(poly.area - filled.sum()) <= extra
    assert poly.symmetric_difference(squares).area <= extra
    assert shapely.contains_xy(poly, xs, ys).all()
    assert shapely.Polygon(ring).exterior.is_ccw


@pytest.mark.parametrize("name", ["spur", "diagonal_bridge", "square", "v_shape"])
def test_clockwise_chain_gives_the_same_outline(name):
    mask = _mask(SHAPES[name])
    x0, y0, cc = synth.encode_chaincode(mask)
    # the same boundary walked the other way (HFC's own tracers are clockwise)
    v = ccm.decode_chains([cc], [x0], [y0])
    rev = "".join(str((int(d) + 4) % 8) for d in cc[::-1])
    out_ccw = shapely.Polygon(np.c_[ccm.pixel_outline([cc], [x0], [y0]).item(0)])
    out_cw, orient = ccm.pixel_outline([rev], [x0], [y0], return_orientation=True)
    assert orient[0] in (-1, 0)
    p = shapely.Polygon(np.c_[out_cw.item(0)])
    assert p.is_valid and p.exterior.is_ccw
    assert p.symmetric_difference(out_ccw).area < 1e-9
    assert len(v) == 1


def test_many_random_regions_outlined_in_one_call():
    """Ragged batches: 300 random blobs (pinches, spurs, holes; either orientation), one call."""
    from scipy import ndimage
    rng = np.random.default_rng(11)
    ccs, xs, ys, npix, ndiag = [], [], [], [], []
    for k in range(300):
        mask = rng.random((int(rng.integers(1, 14)), int(rng.integers(1, 14)))) \
            < rng.uniform(0.3, 0.8)
        if not mask.any():
            continue
        comp = synth.largest_component(mask)
        x0, y0, cc = synth.encode_chaincode(comp)
        if k % 2:   # walked clockwise, as HFC's own tracers do
            cc = "".join(str((int(d) + 4) % 8) for d in cc[::-1])
        ccs.append(cc)
        xs.append(x0 + 40 * k)
        ys.append(y0)
        npix.append(int(ndimage.binary_fill_holes(comp).sum()))
        ndiag.append(sum(int(c) % 2 for c in cc))
    out = ccm.pixel_outline(ccs, xs, ys)
    assert len(out) == len(ccs)
    polys = shapely.polygons(shapely.linearrings(np.c_[out.x, out.y],
                                                 indices=ccm.ragged_ids(out.offsets)))
    assert shapely.is_valid(polys).all()
    extra = np.array(ndiag) * 3 * ccm.BRIDGE_EPS + 1e-9
    assert np.all(np.abs(shapely.area(polys) - np.array(npix)) <= extra)
    assert sum(n == 0 for n in map(len, ccs)) > 0          # one-pixel regions among them
    # each ring sits on its own chain's pixels
    cx = np.array([out.item(i)[0].mean() for i in range(len(out))])
    assert np.all(np.abs(cx - np.array(xs)) < 14)


def test_real_outline_area_is_the_pixel_count(smart):
    out = ccm.pixel_outline(smart.CC, smart.CC_X_PIX, smart.CC_Y_PIX)
    rings = shapely.linearrings(np.c_[out.x, out.y], indices=ccm.ragged_ids(out.offsets))
    polys = shapely.polygons(rings)
    assert shapely.is_valid(polys).all()
    ratio = shapely.area(polys) / smart.FEAT_AREA_PIX.to_numpy()
    print(f"\noutline area / AR_NPIX on 76 real records: min {ratio.min():.4f} "
          f"max {ratio.max():.4f}")
    assert np.all((ratio >= 1.0) & (ratio < 1.003))
    assert np.median(ratio) == 1.0  # exact pixel union unless the region has a pinch


def test_hfc_ar_polygons_quarantines_bad_chains(smart):
    rec = smart.head(6).copy()
    rec.loc[0, "CC"] = rec.loc[0, "CC"][:10] + "x" + rec.loc[0, "CC"][11:]
    rec.loc[1, "CC_LENGTH"] = rec.loc[1, "CC_LENGTH"] + 3
    rec.loc[2, "CC"] = rec.loc[2, "CC"][:-1]
    rec.loc[2, "CC_LENGTH"] = len(rec.loc[2, "CC"])
    rec.loc[3, "CC_X_PIX"] = 2000
    rec.loc[4, "CC_X_ARCSEC"] = rec.loc[4, "CC_X_ARCSEC"] + 3 * 1.984
    out = hfc_ar_polygons(rec)
    assert list(out.index) == list(rec.index)
    assert list(out.rule) == ["chaincode.bad_digit", "chaincode.length_mismatch",
                              "chaincode.not_closed", "chaincode.start_off_image",
                              "geometry.arcsec_mismatch", None]
    assert "3.00 px" in out.reason[4] and "SMART" in out.reason[4]
    assert out.s_region[:5].isna().all() and out.s_region[5].startswith("Polygon UNKNOWNFrame ")
    assert out.geom_flag[5] == "ok"


def test_kept_vertices_are_the_boolean_selections():
    """The polygons with only their kept vertices: what boolean indexing of each array
    and a count per ring give (rings left empty, whole, or of one vertex)."""
    from vespa_curation.geometry.chaincode import Ragged
    from vespa_curation.geometry.hfc_ar import _Polygons, _keep_vertices
    rng = np.random.default_rng(6)
    counts = np.r_[rng.integers(0, 90, 3000), 0, 5, 1]
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    n = int(offsets[-1])
    x, y, lon, lat = (rng.normal(size=n) for _ in range(4))
    xyz = rng.normal(size=(n, 3))
    keep = rng.random(n) < 0.4
    keep[offsets[-3]:offsets[-2]] = True            # a ring kept whole
    got = _keep_vertices(keep, _Polygons(Ragged(x, y, offsets), lon, lat, xyz))
    ids = np.repeat(np.arange(len(counts)), counts)
    want_counts = np.bincount(ids, weights=keep, minlength=len(counts)).astype(np.int64)
    assert np.array_equal(got.hpc.offsets, np.r_[0, np.cumsum(want_counts)])
    for g, w in ((got.hpc.x, x[keep]), (got.hpc.y, y[keep]), (got.lon, lon[keep]),
                 (got.lat, lat[keep]), (got.xyz, xyz[keep])):
        assert np.array_equal(g, w)


def test_off_corner_grid_is_the_numpy_formula():
    """Outline points off the pixel-corner grid (diagonal bridges): the numpy formula's
    answer on corners, near-corners within and beyond 1e-9, negatives, NaN."""
    from vespa_curation.geometry import kernels
    rng = np.random.default_rng(9)
    k = rng.integers(-3000, 3000, 50_000) + 0.5
    x = np.r_[k, k + rng.choice([1e-10, -1e-10, 2e-9, -2e-9, 0.25, 0.5], 50_000),
              [np.nan, -0.5, 0.5, -1e-300]]
    y = np.r_[k[::-1], k, [0.5, np.nan, 1.5, 0.5]]
    got = np.empty(len(x), dtype=bool)
    kernels.off_corner_grid(x, y, got)
    want = np.abs(np.mod(x, 1.0) - 0.5) > 1e-9
    want |= np.abs(np.mod(y, 1.0) - 0.5) > 1e-9
    assert np.array_equal(got, want) and 0 < want.sum() < len(want)
