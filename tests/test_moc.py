"""Coverage MOCs: the union of polygons (exact, with the coarse skipping tests), the
T-MOC of time intervals, and the coverage every export keeps in the import area."""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from astropy.time import Time

from conftest import make_hfc1ar_rows, manifest, region_polygon, stcs, verify, write_area
from vespa_curation import area as A
from vespa_curation.geometry import moc as M
from vespa_curation.geometry.sphere import unit_vectors


def plain_union(s_region, order=M.ORDER):
    """One mocpy MOC per polygon, then their union: the reference."""
    from vespa_curation import stcs as S
    poly = S.parse(list(s_region))
    mocs = M.polygon_mocs(poly, np.arange(len(poly)), order)
    assert mocs.pop("refused") == []
    ms = list(mocs.values())
    return ms[0].union(*ms[1:])


def overlapping_regions(n=400, seed=3):
    """Many regions piling up in two belts (most lie inside the others' union), a few
    across Carrington 0/360."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        lon = rng.choice([rng.uniform(20, 40), rng.uniform(-6, 6) % 360])
        lat = rng.choice([-1, 1]) * rng.uniform(10, 18)
        lons, lats = region_polygon(lon, lat, rng.uniform(2, 6), rng.uniform(1.5, 4), n=24)
        out.append(stcs(lons, lats))
    return out


def test_polygon_union_is_the_union_of_every_polygon_and_skips_most():
    regions = overlapping_regions()
    union = M.PolygonUnion(9)
    for k in range(0, len(regions), 50):        # batch by batch, as the export feeds it
        union.add(regions[k:k + 50])
    assert union.moc == plain_union(regions)
    assert union.added + union.skipped == len(regions) and union.refused == 0
    # the cap test did skip polygons (those far enough inside the belts, 8° tall for
    # regions up to 6° wide: about one in ten)
    assert union.skipped > len(regions) / 10


def hard_regions(seed=5):
    """Regions whose union is hard: a ring of regions around an empty middle (the union
    has a hole), regions across Carrington 0/360 and about both poles (the ±z faces),
    one not within 78° of any face centre (covered alone), one self-intersecting (a bow
    tie: shapely finds it invalid, mocpy covers it) and a ring of 3 vertices."""
    rng = np.random.default_rng(seed)
    out = []
    for a in np.linspace(0, 2 * np.pi, 10, endpoint=False):    # a ring, hole in the middle
        lons, lats = region_polygon(100 + 6 * np.cos(a), 20 + 6 * np.sin(a), 2.5, 2.5, n=20)
        out.append(stcs(lons, lats))
    for lon in rng.uniform(-8, 8, 12) % 360:                      # across 0/360
        out.append(stcs(*region_polygon(lon, rng.uniform(-30, 30), 4, 3, n=30)))
    for lat in (84, -86):                                         # about the poles
        out.append(stcs(np.arange(0, 360, 30), np.full(12, lat)))
    out.append(stcs([0, 80, 80, 0], [-40, -40, 40, 40]))          # 80° wide: alone
    out.append(stcs([200, 204, 200, 204], [0, 0, 4, 4]))          # a bow tie
    out.append(stcs([250, 254, 252], [10, 10, 13]))
    return out


def test_union_cover_is_the_union_of_every_polygon_holes_seam_and_poles_included():
    from vespa_curation import stcs as S
    regions = hard_regions()
    poly = S.parse(regions)
    mocs, refused = M.union_cover(poly, np.arange(len(poly)), 9)
    assert refused == []
    got = mocs[0].union(*mocs[1:])
    assert got == plain_union(regions)
    # the ring's hole is left out: its middle is in no polygon, nor in the union
    import astropy.units as u
    assert not got.contains_lonlat([100] * u.deg, [20] * u.deg)[0]
    assert got.contains_lonlat([106] * u.deg, [20] * u.deg)[0]
    # and the whole union, batch by batch, with every test of PolygonUnion
    union = M.PolygonUnion(9)
    for k in range(0, len(regions), 7):
        union.add(regions[k:k + 7])
    assert union.moc == plain_union(regions)


def test_a_polygon_with_a_vertex_off_the_sphere_is_refused_and_the_others_covered():
    """mocpy aborts (a Rust panic, not an Exception) on a latitude beyond ±90° or NaN:
    such a polygon is counted as refused and left out, the batch goes on."""
    good = [stcs(*region_polygon(30, 10, 3, 2, n=16)), stcs(*region_polygon(60, -5, 2, 2, n=16))]
    bad = ["Polygon UNKNOWNFrame 10 10 12 10 nan 12", "Polygon UNKNOWNFrame 10 88 12 88 11 95"]
    union = M.PolygonUnion(9)
    union.add([good[0], bad[0], good[1], bad[1]])
    assert union.refused == 2 and union.added == 2
    assert union.moc == plain_union(good)


#: A 1°-wide quadrilateral at latitude 42° (a piece of a union) on which mocpy 0.21's
#: Rust code panics ("entered unreachable code" in cdshealpix's special_points_finder),
#: because of its edge 1 → 2.
PANICKING_LON = [284.6415288078704, 285.94539590092285, 285.25511870305775, 284.4869774868785]
PANICKING_LAT = [42.659128103375, 42.48149203799945, 41.25264127303666, 41.35378039318026]


def test_a_polygon_mocpy_panics_on_is_covered_with_its_edges_bisected():
    """A Rust panic is a BaseException that ``except Exception`` lets through: it stopped
    the harvest. It is a MocpyRefused now; the polygon is covered again with a vertex
    at the middle of each edge (the same polygon), alone or inside a union."""
    from vespa_curation import stcs as S
    # an error of mocpy is a MocpyRefused too (a latitude beyond 90°: OSError in 0.21)
    with pytest.raises(M.MocpyRefused):
        M.from_polygons(np.array([[10.0, 12, 11], [10.0, 10, 95]]), 9)
    arr = np.vstack([PANICKING_LON, PANICKING_LAT])
    try:
        raw = M.from_polygons(arr, 9)[0]
    except M.MocpyRefused:
        raw = None              # mocpy 0.21 panics on it
    def exact(lons, lats):      # every digit: rounded to 4 decimals, mocpy does not panic
        return "Polygon UNKNOWNFrame " + " ".join(f"{float(x)!r} {float(y)!r}"
                                                  for x, y in zip(lons, lats))
    quad = exact(PANICKING_LON, PANICKING_LAT)
    mocs = M.polygon_mocs(S.parse([quad]), np.array([0]), 9)
    assert mocs.pop("refused") == []
    whole = mocs[0]
    assert whole == M.from_polygons(M._bisected(arr[0], arr[1]), 9)[0]
    assert raw is None or raw == whole
    # it holds the triangles mocpy covers as given, and lies in the polygon's cap
    # widened by a cell
    for tri in ([0, 2, 3], [0, 1, 3]):
        part = M.from_polygons(arr[:, tri], 9)[0]
        assert part.difference(whole).empty()
    import astropy.units as u
    from mocpy import MOC
    centre, radius = M._caps(S.parse([quad]), np.array([0]))
    lon, lat = np.rad2deg(np.arctan2(centre[0, 1], centre[0, 0])), np.rad2deg(np.arcsin(centre[0, 2]))
    cap = MOC.from_cone(lon * u.deg, lat * u.deg,
                        radius=(radius[0] + M.cell_radius(9)) * u.deg, max_depth=9)
    assert whole.difference(cap).empty()
    # the two halves: the union piece (the quadrilateral again) and the half with the
    # edge 1 → 2 panic, and are covered again; a PolygonUnion goes on to the end
    halves = [exact(arr[0, t], arr[1, t]) for t in ([0, 1, 2], [0, 2, 3])]
    got, refused = M.union_cover(S.parse(halves), np.arange(2), 9)
    assert refused == [] and functools.reduce(lambda a, b: a.union(b), got) == whole
    union = M.PolygonUnion(9)
    union.add(halves + [stcs(*region_polygon(30, 10, 3, 2, n=16))])
    assert union.refused == 0 and union.added == 3
    assert whole.difference(union.moc).empty()


def test_bisected_edges_give_the_same_cells():
    rng = np.random.default_rng(1)
    for _ in range(60):
        lon, lat = region_polygon(rng.uniform(0, 360), rng.uniform(-60, 60),
                                  rng.uniform(1, 8), rng.uniform(1, 5),
                                  n=int(rng.integers(5, 40)))
        lon, lat = np.asarray(lon) % 360, np.asarray(lat)
        assert M.from_polygons(np.vstack([lon, lat]), 9)[0] == \
            M.from_polygons(M._bisected(lon, lat), 9)[0]


def test_cell_radius_bounds_every_cell_not_only_those_measured():
    """cell_radius measures base cells 0 and 4 only; every cell of orders 3 and 4 lies
    within it of its centre, and the finer bounds are not below the measured cells'."""
    from astropy_healpix import HEALPix
    for order in (3, 4):
        hp = HEALPix(nside=2 ** order, order="nested")
        cells = np.arange(12 * 4 ** order)
        lon, lat = hp.healpix_to_lonlat(cells)
        blon, blat = hp.boundaries_lonlat(cells, step=32)
        c = unit_vectors(lon.deg, lat.deg)
        e = unit_vectors(blon.deg, blat.deg)
        worst = np.rad2deg(np.arccos(np.einsum("ijk,ik->ij", e, c).min()))
        assert worst <= M.cell_radius(order) < 1.05 * worst
    hp = HEALPix(nside=2 ** 8, order="nested")
    some = np.random.default_rng(1).integers(0, 12 * 4 ** 8, 4000)
    lon, lat = hp.healpix_to_lonlat(some)
    blon, blat = hp.boundaries_lonlat(some, step=8)
    e = unit_vectors(blon.deg, blat.deg)
    worst = np.rad2deg(np.arccos(np.einsum("ijk,ik->ij", e, unit_vectors(lon.deg, lat.deg)).min()))
    assert worst <= M.cell_radius(8)


def test_a_polygon_far_inside_the_union_is_skipped_without_a_coverage_and_one_at_its_edge_is_not():
    from vespa_curation import stcs as S
    union = M.PolygonUnion(9)
    union.add([stcs([0, 60, 60, 0], [-20, -20, 20, 20])])        # a 60° x 40° block
    poly = S.parse([stcs(*region_polygon(30, 0, 3, 3, n=24)),     # its middle
                    stcs(*region_polygon(58, 0, 3, 3, n=24)),     # across its edge
                    stcs(*region_polygon(58.5, 0, 1, 1, n=24)),   # inside, near the edge
                    stcs(*region_polygon(59.4, 0, 0.5, 0.5, n=24)),   # inside, too near
                    stcs(*region_polygon(120, 0, 1, 1, n=24))])   # far outside
    clear = union._clear(poly, np.arange(5))
    # the middle by the coarse cells' test; the one near the edge by the border's
    assert list(clear) == [True, False, True, False, False]
    coarse = M.PolygonUnion(9, start=union.moc)           # the coarse test alone
    coarse._clear_of_border = lambda centre, margin: np.zeros(len(centre), bool)
    assert list(coarse._clear(poly, np.arange(5))) == [True, False, False, False, False]
    # what it skips lies inside the union: its own MOC adds nothing
    mocs = M.polygon_mocs(poly, np.arange(5), 9)
    for k in (0, 2, 3):
        assert mocs[k].difference(union.moc).empty()
    for k in (1, 4):
        assert not mocs[k].difference(union.moc).empty()      # outside, or across: it adds


def test_a_union_piece_of_many_vertices_is_covered_in_parts_with_the_same_cells():
    """mocpy's cost grows as vertices times outline: a piece of a face's union is cut
    in parts of at most PIECE_VERTICES vertices; their cells are the piece's."""
    import shapely
    from vespa_curation import stcs as S
    rng = np.random.default_rng(11)
    regions = [stcs(*region_polygon(rng.uniform(20, 60), rng.uniform(-25, 25),
                                    rng.uniform(2, 5), rng.uniform(1.5, 4), n=40))
               for _ in range(120)]
    poly = S.parse(regions)
    got, refused = M.union_cover(poly, np.arange(len(poly)), 9)
    assert refused == []
    assert functools.reduce(lambda a, b: a.union(b), got) == plain_union(regions)
    # the union did have pieces of more vertices than that, cut in several parts
    v, owner, starts = M._vertices(poly, np.arange(len(poly)))
    frame = M._face_frame(0)
    d = v @ frame[0]
    xy = np.column_stack([v @ frame[1] / d, v @ frame[2] / d])
    merged = shapely.union_all(shapely.polygons(shapely.linearrings(xy, indices=owner)))
    big = [g for g in shapely.get_parts(merged)
           if shapely.get_num_coordinates(g) > M.PIECE_VERTICES]
    assert big and all(len(M._split(g)) > 1 for g in big)
    for g in big:
        parts = M._split(g)
        assert all(shapely.get_num_coordinates(p) <= M.PIECE_VERTICES for p in parts)
        assert abs(sum(p.area for p in parts) - g.area) < 1e-12


def test_polygon_moc_covers_the_polygon_at_the_order_asked():
    # a 10 x 10 deg box at the equator: 100 deg² of 41 253, plus a rim of cells
    box = "Polygon UNKNOWNFrame 355 -5 5 -5 5 5 355 5"
    m = M.polygon_moc([box], order=9)
    assert m.max_order == 9
    frac = m.sky_fraction * 4 * np.pi * (180 / np.pi) ** 2
    assert 100 <= frac < 104
    import astropy.units as u
    inside = m.contains_lonlat([0, 358, 3] * u.deg, [0, 4, -4] * u.deg)
    outside = m.contains_lonlat([10, 180, 0] * u.deg, [0, 0, 10] * u.deg)
    assert inside.all() and not outside.any()
    # None, NaN and text that is no polygon are left out
    assert M.polygon_moc([box, None, float("nan"), "Circle 1 2 3"]) == m


def test_tcb_microseconds_agree_with_astropy_within_2_ms():
    jd = np.array([2450000.123, 2453462.06597, 2457754.5, 2460000.9999])  # 2016-12-31 leap
    ref = Time(jd, format="jd", scale="utc").tcb
    us = M.tcb_microseconds(jd).astype(float)
    assert np.abs(us - (ref.jd1 + ref.jd2) * 86400e6).max() < 2000


def test_tcb_microseconds_of_shared_dates_are_each_dates_own():
    """Many rows sharing few dates (converted once each) give what each date gives
    alone, over a leap second."""
    rng = np.random.default_rng(4)
    jd = np.repeat(2457700.0 + rng.random(700) * 120, 9)
    rng.shuffle(jd)
    alone = np.concatenate([M.tcb_microseconds(jd[k:k + 500]) for k in range(0, len(jd), 500)])
    assert M.tcb_microseconds(jd).tolist() == alone.tolist()
    assert M.tcb_microseconds(jd.reshape(9, -1)).tolist() == alone.reshape(9, -1).tolist()


def test_time_moc_of_intervals_and_instants():
    from mocpy import TimeMOC
    lo = np.array([2453462.0, 2453463.0, 2453470.5, np.nan])
    hi = np.array([2453462.5, np.nan, 2453471.0, 2453480.0])
    t = M.time_moc(lo, hi, order=35)
    ref = TimeMOC.from_time_ranges(Time(lo[:3], format="jd"),
                                   Time(np.where(np.isnan(hi[:3]), lo[:3], hi[:3]),
                                        format="jd"), order=35)
    assert t == ref
    r = M.time_ranges_jd(t)
    assert len(r) == 3                               # the row without time_min is left out
    assert abs(r[0, 0] - 2453462.0) < 2e-3 and abs(r[0, 1] - 2453462.5) < 2e-3
    s = M.time_summary(t)
    # JD 2453462.0 = 2005-04-01T12:00 UTC; cells of order 35 are 67 s long
    assert s["first"][:16] in ("2005-04-01T11:58", "2005-04-01T11:59", "2005-04-01T12:00")
    gap = [pd.Timestamp(x) for x in s["largest_gap"]]       # 2453463.0 → 2453470.5
    assert abs(gap[0] - pd.Timestamp("2005-04-02T12:00")) < pd.Timedelta("70s")
    assert abs(gap[1] - pd.Timestamp("2005-04-10T00:00")) < pd.Timedelta("70s")
    few = M.temporal_intervals(t, max_intervals=2)
    assert len(few) <= 2
    assert few[0][0] <= 53461.5 + 1e-3 and few[-1][1] >= 53470.5   # MJD, still covering


def test_quick_time_summary_shows_the_exact_instants():
    """The QA's time summary (exact=False) shows the instants the manifest's shows —
    first, last, the largest gap's ends, each converted by astropy — and days within a
    Julian Date's float resolution (5e-10 day) per range of them, on ranges over a leap
    second; and one range alone."""
    rng = np.random.default_rng(2)
    lo = np.sort(2457700.0 + rng.random(400) * 120)           # 2016-12-31's leap second
    lo[200] = lo[199] + 9.0                                    # a gap larger than the others
    lo = np.sort(lo)
    t = M.time_moc(lo, lo + rng.random(400) * 0.05, order=35)
    exact, quick = M.time_summary(t), M.time_summary(t, exact=False)
    for k in ("order", "ranges", "first", "last", "largest_gap"):
        assert quick[k] == exact[k], k
    for k in ("covered_days", "largest_gap_days"):
        assert abs(quick[k] - exact[k]) < 1e-9 * exact["ranges"], k
    one = M.time_moc([2453462.0], [2453462.5], order=35)
    assert M.time_summary(one, exact=False) == M.time_summary(one)


def _area_moc(area):
    return M.read_moc(area / A.SMOC)


def test_every_export_keeps_the_area_coverage_exact(tmp_path, hfc1ar_service):
    svc = hfc1ar_service
    rows = make_hfc1ar_rows()
    area = write_area(svc, rows.iloc[:20], dachs_inputs=tmp_path, run_id="r1")
    cov = manifest(area)["coverage"]
    assert A.ImportArea.at(area).coverage() == cov
    assert cov["spatial"]["order"] == M.ORDER and not cov["spatial"]["rebuilt"]
    assert "Carrington" in cov["spatial"]["frame"] and "not ICRS" in cov["spatial"]["frame"]
    kw = M.moc_keywords(area / A.SMOC)
    assert kw["BODY"] == "Sun" and kw["BODYFRAM"].startswith("Carrington")
    assert verify(area) == []                         # the coverage files are checksummed
    assert {A.SMOC, A.TMOC, A.COVERAGE_GRANULES} <= set(manifest(area)["files"])

    # a night adds rows: the union grows, nothing read again
    area = write_area(svc, rows.iloc[20:], dachs_inputs=tmp_path, run_id="r2")
    cov = manifest(area)["coverage"]
    assert not cov["spatial"]["rebuilt"]
    assert _area_moc(area) == plain_union(rows["s_region"])
    assert cov["time"]["first"][:16] == "2005-04-02T01:35" and cov["time"]["ranges"] == 4

    # a granule exported again with only another column changed: no rebuild
    same = rows.iloc[[0]].assign(feature_name="renamed")
    area = write_area(svc, same, dachs_inputs=tmp_path, run_id="r3")
    assert not manifest(area)["coverage"]["spatial"]["rebuilt"]

    # a polygon moved and one retracted: rebuilt from the data files, exactly
    moved = rows.iloc[[1]].assign(s_region="Polygon UNKNOWNFrame 100 10 110 10 110 20 100 20")
    gone = rows["granule_uid"].iloc[2]
    area = write_area(svc, moved, dachs_inputs=tmp_path, run_id="r4", retract=[gone])
    cov = manifest(area)["coverage"]
    assert cov["spatial"]["rebuilt"]
    current = pd.concat([moved, rows.drop(index=[1, 2])])
    assert _area_moc(area) == plain_union(current["s_region"])
    t = M.read_moc(area / A.TMOC)
    assert t == M.time_moc(current["time_min"], current["time_max"])
    assert verify(area) == []


def test_an_area_exported_without_coverage_gets_it_from_its_data_files(tmp_path,
                                                                        hfc1ar_service):
    rows = make_hfc1ar_rows()
    area = write_area(hfc1ar_service, rows.iloc[:25], dachs_inputs=tmp_path, run_id="old",
                      coverage=None)
    assert not (area / A.COVERAGE).exists() and "coverage" not in manifest(area)
    area = write_area(hfc1ar_service, rows.iloc[25:], dachs_inputs=tmp_path, run_id="new")
    assert manifest(area)["coverage"]["spatial"]["rebuilt"]
    assert _area_moc(area) == plain_union(rows["s_region"])


def test_a_service_without_s_region_has_a_time_coverage_only(tmp_path):
    from vespa_curation.services import get_service
    svc = get_service("bass2000")
    rows = make_hfc1ar_rows().drop(columns=["s_region"])
    rows["service_title"] = "bass2000"
    area = write_area(svc, rows, dachs_inputs=tmp_path, run_id="r1")
    cov = manifest(area)["coverage"]
    assert cov["spatial"] is None and not (area / A.SMOC).exists()
    assert (area / A.TMOC).is_file() and cov["rd_temporal"]


def test_coverage_parameters_are_checked():
    from vespa_curation.config import load_config
    from vespa_curation.parameter import ParameterError
    assert load_config("hfc1ar")["moc_order"] == 9
    with pytest.raises(ParameterError, match="moc_order"):
        load_config("hfc1ar", overrides={"moc_order": 30})


def test_the_rd_declares_the_time_coverage_and_no_sky_coverage(tmp_path, hfc1ar_service):
    import re
    rows = make_hfc1ar_rows()
    area = write_area(hfc1ar_service, rows, dachs_inputs=tmp_path, run_id="r1")
    rd = (area / A.RD).read_text(encoding="utf-8")
    block = re.search(r"<coverage>(.*?)</coverage>", rd, re.S).group(1)
    assert "<spatial>" not in block and "<updater" not in block
    mjd = [tuple(map(float, t.split())) for t in re.findall(r"<temporal>(.*?)</temporal>",
                                                            block)]
    assert mjd == [tuple(x) for x in manifest(area)["coverage"]["rd_temporal"]]
    t = rows["time_min"].to_numpy() - 2400000.5
    # every granule's time lies in an interval (within the 67 s cells)
    assert all(any(a - 1e-3 <= x <= b + 1e-3 for a, b in mjd) for x in t)


def test_the_qa_report_draws_the_coverage_and_what_the_run_adds(tmp_path, hfc1ar_service):
    from vespa_curation.config import load_config
    from vespa_curation.qa.report import build_report
    rows = make_hfc1ar_rows()
    run = tmp_path / "runs" / "20260101T000000Z" / "hfc1ar"
    run.mkdir(parents=True)
    rows.to_parquet(run / "rows.parquet")
    cfg = load_config("hfc1ar", overrides={"dachs_inputs": str(tmp_path / "dachs"),
                                           "qa_gallery": 0})
    rep = build_report(cfg, run)
    sp, t = rep["coverage"]["spatial"], rep["coverage"]["time"]
    assert sp["sphere_fraction"] > 0
    assert sp["added_fraction"] == pytest.approx(sp["sphere_fraction"])
    assert "Carrington" in sp["frame"] and t["ranges"] == 4 and len(t["gaps"]) == 3
    assert {"figures/coverage_map.png", "figures/coverage_time.png"} <= set(rep["figures"])
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "Coverage once this run is published" in html and "not of the sky" in html
    # once exported, the same rows add nothing
    write_area(hfc1ar_service, rows, dachs_inputs=tmp_path / "dachs", run_id="r1")
    rep = build_report(cfg, run)
    assert rep["coverage"]["spatial"]["added_fraction"] == 0
    assert rep["coverage"]["spatial"]["sphere_fraction"] == pytest.approx(sp["sphere_fraction"])


def _sample_params(tmp_path, db, **kw):
    from vespa_curation.config import load_config
    over = {"source": f"sqlite:///{db}", "full": True, "chunk_size": 25, "workers": 2,
            "dachs_inputs": str(tmp_path / "dachs"), "qa_gallery": 0,
            "decisions": str(tmp_path / "decisions.csv")}
    over.update(kw)
    return load_config("hfc1ar", overrides=over)


def test_the_harvest_computes_the_runs_moc_once_and_qa_and_export_read_it(tmp_path):
    """One union, extended chunk after chunk beside the map workers (in a process of
    its own; in the driver for a run on one process): smoc.fits equals the union of
    every accepted polygon; the export's area MOC and the QA's coverage are the same
    with it as computed from the rows (the file removed)."""
    from vespa_curation import export, harvest, runfolder as RF
    from vespa_curation.hfc.sample import build_hfc_sample
    from vespa_curation.qa.report import build_report
    db = build_hfc_sample(tmp_path / "hfc.sqlite")
    p = _sample_params(tmp_path, db)
    run = tmp_path / "runs" / "A" / "hfc1ar"
    harvest.run(p, run)
    rows = pd.read_parquet(run / RF.ROWS)
    assert len(rows) > 50                                  # several chunks of 25
    smoc = M.read_moc(run / RF.SMOC)
    assert smoc == plain_union(rows["s_region"])
    assert M.moc_keywords(run / RF.SMOC)["BODY"] == "Sun"
    one = tmp_path / "runs" / "one" / "hfc1ar"
    harvest.run(_sample_params(tmp_path, db, workers=1), one)
    assert M.read_moc(one / RF.SMOC) == smoc
    with_file = build_report(p, run)["coverage"]["spatial"]
    export.run(p, run)
    area = tmp_path / "dachs" / "hfc1ar"
    assert _area_moc(area) == smoc
    assert manifest(area)["coverage"]["spatial"]["polygons_computed"] == len(rows)

    # the same run without the harvest's MOC: computed from the rows, the same MOCs
    (run / RF.SMOC).unlink()
    p2 = _sample_params(tmp_path, db, dachs_inputs=str(tmp_path / "dachs2"))
    without = build_report(p2, run)["coverage"]["spatial"]
    assert without == with_file
    export.run(p2, run)
    assert _area_moc(tmp_path / "dachs2" / "hfc1ar") == smoc


def test_a_rejected_polygon_stays_out_of_the_area_coverage(tmp_path):
    """A curator's rejection: the export leaves the harvest's MOC (it holds the rejected
    polygon) and computes the union of what it writes."""
    from vespa_curation import export, harvest, runfolder as RF
    from vespa_curation.decisions import append_decision
    from vespa_curation.hfc.sample import build_hfc_sample
    db = build_hfc_sample(tmp_path / "hfc.sqlite")
    p = _sample_params(tmp_path, db)
    run = tmp_path / "runs" / "A" / "hfc1ar"
    harvest.run(p, run)
    rows = pd.read_parquet(run / RF.ROWS)
    # the region whose polygon adds the most cells of its own
    others = [plain_union(rows["s_region"].drop(index=i)) for i in rows.index[:10]]
    i = int(np.argmin([o.sky_fraction for o in others]))
    append_decision(tmp_path / "decisions.csv", rows["granule_uid"].iloc[i], "reject",
                    "tester", "a test")
    export.run(p, run)
    area_moc = _area_moc(tmp_path / "dachs" / "hfc1ar")
    assert area_moc == others[i] != M.read_moc(run / RF.SMOC)


def test_utc_jd_inverts_tcb_microseconds_and_agrees_with_astropy():
    rng = np.random.default_rng(1)
    jd = np.sort(rng.uniform(2443000, 2462000, 5000))        # 1976 to 2028
    assert np.abs(M.utc_jd(M.tcb_microseconds(jd)) - jd).max() * 86400 < 1e-4
    tm = M.time_moc(jd[:-1:2], jd[1::2])
    ref = np.asarray(tm.to_time_ranges().utc.jd).reshape(-1, 2)
    assert np.abs(M.time_ranges_jd(tm) - ref).max() * 86400 < 2e-3
    assert M.n_ranges(tm) == len(ref)


def test_without_coverage_the_qa_draws_the_time_coverage_only(tmp_path):
    from vespa_curation import harvest, runfolder as RF
    from vespa_curation.hfc.sample import build_hfc_sample
    from vespa_curation.qa.report import build_report
    db = build_hfc_sample(tmp_path / "hfc.sqlite")
    p = _sample_params(tmp_path, db, coverage=False)
    run = tmp_path / "runs" / "A" / "hfc1ar"
    harvest.run(p, run)
    assert not (run / RF.SMOC).exists()
    rep = build_report(p, run)
    assert "spatial" not in rep["coverage"] and rep["coverage"]["time"]["ranges"] > 0
    assert "figures/coverage_map.png" not in rep["figures"]


def test_polygon_caps_hold_their_polygons():
    """Each polygon's cap (the union's skipping test) is its vertices' mean direction
    and the angle to its farthest vertex — the numpy formula's within 1e-12 — for a
    selection of polygons, with and without the vertices' unit vectors given; from
    90° on, infinite."""
    from vespa_curation import stcs
    from vespa_curation.geometry.sphere import unit_vectors
    rng = np.random.default_rng(6)
    texts = []
    for k in range(400):
        lon0, lat0, r = rng.uniform(0, 360), rng.uniform(-80, 80), rng.choice([0.1, 3, 40])
        t = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 40))))
        lon = np.mod(lon0 + r * np.cos(t) / np.cos(np.radians(lat0)), 360)
        lat = np.clip(lat0 + r * np.sin(t), -89, 89)
        texts.append("Polygon " + " ".join(f"{a:.6f} {b:.6f}" for a, b in zip(lon, lat)))
    texts.append("Polygon 0 0 120 0 240 0")                   # a great circle: > 90°
    poly = stcs.parse(texts)
    sel = np.r_[np.arange(0, 400, 3), 400]
    xyz = unit_vectors(poly.lon, poly.lat)
    for given in (xyz, None):
        centre, radius = M._caps(poly, sel, given)
        for j, i in enumerate(sel):
            v = xyz[poly.offsets[i]:poly.offsets[i + 1]]
            c = v.sum(axis=0) / np.linalg.norm(v.sum(axis=0))
            far = np.degrees(np.arccos(np.clip((v @ c).min(), -1, 1)))
            assert np.allclose(centre[j], c, atol=1e-12)
            if i == 400:
                assert radius[j] == np.inf
            else:
                assert abs(radius[j] - far) < 1e-9 and radius[j] < 90
