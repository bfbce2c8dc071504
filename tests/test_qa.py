"""QA figures and report on real SMART records plus synthetic limb and 0/360 regions.

The run folder is made the way the harvest makes it (records.parquet, rows.parquet with
the geometry stage's s_region and qa_* columns, quarantine.csv, harvest.json), with the
real geometry (:func:`vespa_curation.geometry.hfc_ar_polygons`).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vespa_curation import synth
from vespa_curation.geometry import hfc_ar_polygons, hpc_to_hgc
from vespa_curation.qa import figures as F
from vespa_curation.qa.report import build_report, gallery_order

from smart import load_smart_records

ROOT = Path(__file__).resolve().parents[1]
IMG = dict(naxis1=1024, naxis2=1024, center_x=512.74, center_y=512.47, cdelt1=1.98581)
R_SUN = 488.78
SEAM_DATE = "2005-04-21T12:00:00"     # L0 ≈ 357.7°: 0/360 faces the observer


def smart_records() -> pd.DataFrame:
    """The 76 real SMART records as HFC columns (tests/data, README of the folder)."""
    return load_smart_records()


def synthetic_record(id_ar, lon, lat) -> dict:
    """A region rendered with sunpy on an MDI-like image at SEAM_DATE, chain-coded."""
    g = synth.ImageGeometry.from_rsun(SEAM_DATE, R_SUN, **IMG)
    obs = g.observer
    x0, y0, cc = synth.encode_chaincode(synth.render_region(lon, lat, g, observer=obs))
    return dict(ID_AR=id_ar, CC=cc, CC_LENGTH=len(cc), CC_X_PIX=x0, CC_Y_PIX=y0,
                DATE_OBS=SEAM_DATE, R_SUN=R_SUN, CENTER_X=IMG["center_x"],
                CENTER_Y=IMG["center_y"], CDELT1=IMG["cdelt1"], CDELT2=IMG["cdelt1"],
                NAXIS1=1024, NAXIS2=1024, CODE="SYNTH", OBSERVATIONS_ID=900,
                FEAT_CARR_LONG_DEG=float(np.mod(np.mean(lon), 360)),
                FEAT_CARR_LAT_DEG=float(np.mean(lat)))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    rec = smart_records().head(20)
    l0 = 357.69
    limb = synthetic_record(9001, np.array([80, 96, 96, 80]) + l0, np.array([5, 5, 15, 15]))
    seam = synthetic_record(9002, np.array([-5, 4, 4, -5]), np.array([-12, -12, -4, -4]))
    rec = pd.concat([rec, pd.DataFrame([limb, seam])], ignore_index=True)
    geo = hfc_ar_polygons(rec)
    assert geo["rule"].isna().all(), geo.loc[geo["rule"].notna(), "reason"].tolist()
    rows = pd.DataFrame({
        "granule_uid": [f"ar_{i}" for i in rec["ID_AR"]],
        "s_region": geo["s_region"], "c1min": geo["c1min"], "c1max": geo["c1max"],
        "c2min": geo["c2min"], "c2max": geo["c2max"],
        "qa_geom_flag": geo["geom_flag"], "qa_area_ratio": geo["area_ratio"].astype(float),
        "qa_feat_carr_long_deg": rec["FEAT_CARR_LONG_DEG"],
        "qa_feat_carr_lat_deg": rec["FEAT_CARR_LAT_DEG"],
        "qa_centroid_lon": geo["centroid_lon"], "qa_centroid_lat": geo["centroid_lat"],
        "qa_source_id": rec["ID_AR"].astype(float)})        # as the harvest normalizes
    d = tmp_path_factory.mktemp("runs") / "20260101T000000Z" / "hfc1ar"
    d.mkdir(parents=True)
    rows.to_parquet(d / "rows.parquet")
    rec.astype({"CC": str}).to_parquet(d / "records.parquet")
    pd.DataFrame({"granule_uid": ["ar_a", "ar_b", "ar_c"], "source_id": ["1", "2", "3"],
                  "stage": ["map", "map", "validate"],
                  "rule": ["chaincode.bad_digit", "chaincode.bad_digit", "epn.required"],
                  "reason": ["digit 9", "digit 8", "no <time_min> & co"]}
                 ).to_csv(d / "quarantine.csv", index=False)
    (d / "harvest.json").write_text(json.dumps({"counts": {"source_records": 25,
                                                           "accepted": 22}}))
    report = build_report({"service": "hfc1ar", "qa_gallery": 6}, d)
    return d, report, rows, rec


def test_the_gallery_drawn_by_two_workers_is_the_one_drawn_by_one(run_dir, tmp_path):
    import shutil
    d = run_dir[0]
    other = tmp_path / "20260101T000000Z" / "hfc1ar"
    shutil.copytree(d, other, ignore=shutil.ignore_patterns("figures", "report.*"))
    two = build_report({"service": "hfc1ar", "qa_gallery": 6, "workers": 2}, other)
    assert two["gallery"] == run_dir[1]["gallery"]
    for g in two["gallery"]:
        assert (other / g["png"]).read_bytes() == (d / g["png"]).read_bytes()


def test_geometry_flags_of_the_fixture(run_dir):
    _, _, rows, _ = run_dir
    flags = dict(zip(rows["granule_uid"], rows["qa_geom_flag"]))
    assert "limb_clipped" in flags["ar_9001"]
    assert "seam" in flags["ar_9002"]


def test_report_json_counts(run_dir):
    d, report, rows, _ = run_dir
    on_disk = json.loads((d / "report.json").read_text())
    assert on_disk["counts"]["rows"] == len(rows) == 22
    assert on_disk["counts"]["quarantined"] == 3
    assert on_disk["counts"]["quarantined_per_stage"] == {"map": 2, "validate": 1}
    assert on_disk["rules"] == {"map": {"chaincode.bad_digit": 2},
                                "validate": {"epn.required": 1}}
    assert on_disk["counts"]["harvest"] == {"source_records": 25, "accepted": 22}
    assert on_disk["geom_flags"]["ok"] == 20


def test_gallery_limb_and_repaired_first(run_dir):
    d, report, rows, _ = run_dir
    gal = report["gallery"]
    assert len(gal) == 6
    assert gal[0]["granule_uid"] == "ar_9001" and "limb_clipped" in gal[0]["flag"]
    assert gal[1]["granule_uid"] == "ar_9002"
    assert all(g["flag"] == "ok" for g in gal[2:])
    order = gallery_order(pd.DataFrame({"qa_geom_flag": ["ok", "seam", "repaired",
                                                         "limb_clipped+seam", None]}))
    assert list(order) == [3, 2, 1, 0, 4]


def test_pngs_written(run_dir):
    d, report, _, _ = run_dir
    names = report["figures"] + [g["png"] for g in report["gallery"]]
    assert {"figures/flags.png", "figures/area_ratio.png", "figures/residuals.png",
            "figures/quarantine.png"} <= set(names)
    from PIL import Image
    for n in names:
        with Image.open(d / n) as im:
            assert im.format == "PNG"
            if "region_" in n:
                assert im.size == (1250, 660)


def test_report_html_is_offline(run_dir):
    d, report, _, _ = run_dir
    text = (d / "report.html").read_text()
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    n_img = len(re.findall(r'<img src="data:image/png;base64,', text))
    assert n_img == len(report["figures"]) + len(report["gallery"])
    assert "chaincode.bad_digit" in text and "no &lt;time_min&gt; &amp; co" in text


def test_centroid_residuals_real_smart(run_dir):
    d, report, rows, _ = run_dir
    res = F.centroid_residuals(rows)
    smart = res[~res["granule_uid"].isin(["ar_9001", "ar_9002"])]
    # SMART computed its centroids for an Earth observer from its own pixel masks
    assert smart["dlon"].abs().median() < 0.5
    assert smart["dlat"].abs().median() < 0.2
    seam = res.set_index("granule_uid").loc["ar_9002"]
    assert abs(seam["dlon"]) < 1.0, "a 0/360 region must not show a 360° residual"
    assert report["residuals"]["n"] == 22


def test_centroids_from_the_harvest_columns_equal_those_of_the_published_text(run_dir):
    """The QA reads the centroids the harvest wrote (no STC-S parsing at 1.15 M rows):
    they are those of the s_region text as published, to 1e-9 deg."""
    d, report, rows, _ = run_dir
    from_columns = F.centroid_residuals(rows)
    from_text = F.centroid_residuals(rows.drop(columns=["qa_centroid_lon",
                                                        "qa_centroid_lat"]))
    assert rows["qa_centroid_lon"].notna().sum() == len(rows) > 20
    np.testing.assert_allclose(from_columns["dlon"], from_text["dlon"], atol=1e-9)
    np.testing.assert_allclose(from_columns["dlat"], from_text["dlat"], atol=1e-9)


def test_pixel_projection_round_trip():
    rng = np.random.default_rng(1)
    b0, l0, dist = -6.48, 254.2, 1.4784e11
    x = rng.uniform(100, 900, 500)
    y = rng.uniform(100, 900, 500)
    on = np.hypot(x - 512.74, y - 512.47) < 480
    tx, ty = 1.98581 * (x - 512.74), 1.98581 * (y - 512.47)
    lon, lat = hpc_to_hgc(tx, ty, b0, l0, dist)
    px, py = F.hgc_to_pixel(lon, lat, b0, l0, dist, 1.98581, 1.98581, 512.74, 512.47)
    assert np.nanmax(np.hypot(px - x, py - y)[on]) < 1e-6


def test_limb_vertices_marked_only_at_the_limb(run_dir):
    _, _, rows, rec = run_dir
    idx = {u: i for i, u in enumerate(rows["granule_uid"])}
    tr = F.trace(rec)
    pub_limb = F._published(rec.iloc[idx["ar_9001"]].to_dict(),
                            rows.iloc[idx["ar_9001"]].to_dict(), tr, idx["ar_9001"])
    pub_centre = F._published(rec.iloc[idx["ar_1"]].to_dict(),
                              rows.iloc[idx["ar_1"]].to_dict(), tr, idx["ar_1"])
    # the published limb arc keeps the vertices the vertex budget needs (there: its two
    # ends, the arc being within half a pixel of a great circle)
    assert pub_limb.clipped.sum() >= 2
    assert not pub_centre.clipped.any()
    # the published polygon lies on its chain code when drawn back on the pixel grid
    ox, oy = tr.outline.item(idx["ar_1"])
    from shapely import Polygon, points
    d = Polygon(np.column_stack([ox, oy])).exterior.distance(
        points(np.column_stack([pub_centre.px, pub_centre.py])))
    assert np.max(d) < 1.0


def test_curator_browser_records_decision(run_dir, tmp_path):
    d, _, _, _ = run_dir
    from vespa_curation import decisions as D
    from vespa_curation.qa.widgets import CuratorBrowser
    dec = tmp_path / "hfc1ar.csv"
    b = CuratorBrowser({"service": "hfc1ar", "decisions": str(dec)}, d, curator="tester")
    assert b.uids == ["ar_9001", "ar_9002"]             # only flagged, limb first
    ui = b.widget()
    buttons = {w.description: w for box in ui.children
               for w in getattr(box, "children", [box]) if hasattr(w, "on_click")}
    toggles = [w for box in ui.children for w in getattr(box, "children", [])
               if w.__class__.__name__ == "ToggleButtons"][0]
    toggles.value = "reject"
    buttons["record decision"].click()
    cur = D.latest(D.load_decisions(dec))
    assert cur.loc["ar_9001", "decision"] == "reject"
    assert cur.loc["ar_9001", "curator"] == "tester"
    assert b.index == 1                                   # moved on to the next region
    assert len(b.figure_png("ar_9002")) > 10_000


def test_region_drawn_over_its_own_image(run_dir, tmp_path):
    """With the observation's own image at hand (by FILENAME), the left panel shows it
    under the contour and says so; without it, the panel says no image is shown."""
    from astropy.io import fits
    _, _, rows, rec = run_dir
    i = int(np.flatnonzero(rows["granule_uid"] == "ar_9001")[0])
    g = synth.ImageGeometry.from_rsun(SEAM_DATE, R_SUN, **IMG)
    l0 = 357.69
    mask = synth.render_region(np.array([80, 96, 96, 80]) + l0, np.array([5, 5, 15, 15]), g)
    record = rec.iloc[i].to_dict()
    record["FILENAME"] = "synth_0001.fits"
    fits.PrimaryHDU(mask.astype("float32")).writeto(tmp_path / "synth_0001.fits")
    tr = F.trace(rec)
    fig = F.region_figure(record, rows.iloc[i].to_dict(), tr, i, images_dir=tmp_path)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "observation image: synth_0001.fits" in texts
    assert len(fig.axes[0].images) == 1
    F.save(fig, tmp_path / "own.png")
    bare = F.region_figure(record, rows.iloc[i].to_dict(), tr, i, images_dir=None)
    assert "observation image not available: pixel grid only" in \
        [t.get_text() for t in bare.axes[0].texts]
    assert not bare.axes[0].images


def test_regions_drawn_on_one_canvas_are_the_figures_drawn_alone(run_dir, tmp_path):
    """A gallery worker draws its regions one after the other on one figure
    (RegionCanvas): each PNG must be byte for byte the one region_figure draws on a
    figure of its own, whatever the region before left (its own image, a seam, a limb
    region, no s_region at all)."""
    from astropy.io import fits
    _, _, rows, rec = run_dir
    tr = F.trace(rec)
    i_limb = int(np.flatnonzero(rows["granule_uid"] == "ar_9001")[0])
    i_seam = int(np.flatnonzero(rows["granule_uid"] == "ar_9002")[0])
    fits.PrimaryHDU(np.eye(1024, dtype="float32")).writeto(tmp_path / "own.fits")
    drawn = []      # (record, row, i, images_dir)
    for i in (i_limb, 0, i_seam, 1, 2):
        drawn.append((rec.iloc[i].to_dict(), rows.iloc[i].to_dict(), i, None))
    with_image = dict(rec.iloc[3].to_dict(), FILENAME="own.fits")
    drawn.insert(2, (with_image, rows.iloc[3].to_dict(), 3, tmp_path))
    no_region = dict(rows.iloc[4].to_dict(), s_region=None)
    drawn.insert(4, (rec.iloc[4].to_dict(), no_region, 4, None))
    drawn.append((rec.iloc[5].to_dict(), dict(rows.iloc[5].to_dict(), s_region=None), 5,
                  None))
    drawn.append((rec.iloc[i_seam].to_dict(), rows.iloc[i_seam].to_dict(), i_seam, None))
    canvas = F.RegionCanvas()
    for k, (record, row, i, images) in enumerate(drawn):
        alone = F.save(F.region_figure(record, row, tr, i, images_dir=images),
                       tmp_path / f"alone_{k}.png")
        shared = F.save(canvas.draw(record, row, tr, i, images_dir=images),
                        tmp_path / f"shared_{k}.png")
        assert alone.read_bytes() == shared.read_bytes(), \
            f"figure {k} (region {row['granule_uid']}) differs on a shared canvas"


def test_saved_figures_have_the_pixels_savefig_writes(run_dir, tmp_path):
    """F.save writes the Agg canvas's pixels itself (rows unfiltered): the same pixels
    and metadata as matplotlib's savefig through Pillow, for gallery figures (an image,
    the limb, a seam, no s_region) and summary-like figures; a figure with a layout
    engine goes through savefig."""
    from PIL import Image
    _, _, rows, rec = run_dir
    tr = F.trace(rec)
    figs = [F.region_figure(rec.iloc[i].to_dict(), rows.iloc[i].to_dict(), tr, i)
            for i in range(3)]
    figs.append(F.region_figure(rec.iloc[3].to_dict(),
                                dict(rows.iloc[3].to_dict(), s_region=None), tr, 3))
    fig = F.new_figure(6, 3.5)
    ax = fig.add_subplot()
    ax.imshow(np.random.default_rng(1).random((40, 60)), alpha=0.7)
    ax.bar([1, 2], [3, 1], color=["C0", "C3"], label="bars")
    ax.legend()
    fig.tight_layout()
    figs.append(fig)
    laid = F.new_figure(4, 3)
    laid.set_layout_engine("constrained")
    laid.add_subplot().plot([0, 1], [1, 0])
    figs.append(laid)
    for k, fig in enumerate(figs):
        mine = F.save(fig, tmp_path / f"mine_{k}.png")
        fig.savefig(tmp_path / f"theirs_{k}.png", dpi=100, format="png",
                    pil_kwargs={"compress_level": F.PNG_COMPRESS_LEVEL})
        a, b = Image.open(mine), Image.open(tmp_path / f"theirs_{k}.png")
        assert a.info == b.info and a.mode == b.mode == "RGBA", k
        assert np.array_equal(np.asarray(a), np.asarray(b)), f"figure {k}: pixels differ"


def test_merged_intervals_known_answer():
    from vespa_curation.qa.spectra import merged_intervals
    t = lambda *s: np.array(s, dtype="datetime64[ns]")   # noqa: E731
    a, b = merged_intervals(t("2005-01-01T00:00", "2005-01-01T00:30", "2005-01-02",
                              "2005-01-01T00:10", "NaT"),
                             t("2005-01-01T01:00", "2005-01-01T02:00", "2005-01-02T01:00",
                               "2005-01-01T00:20", "2005-01-05"))
    assert list(a) == list(t("2005-01-01T00:00", "2005-01-02"))
    assert list(b) == list(t("2005-01-01T02:00", "2005-01-02T01:00"))


def test_rows_read_by_position_across_row_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from vespa_curation import runfolder as RF
    frame = pd.DataFrame({"granule_uid": [f"g{k}" for k in range(25)],
                          "v": np.arange(25.0)})
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / RF.ROWS, row_group_size=7)
    got = RF.read_rows_at(tmp_path, [24, 3, 7, 3, 13])
    assert list(got["granule_uid"]) == ["g24", "g3", "g7", "g3", "g13"]
    assert list(RF.read_row_columns(tmp_path, {"v", "nope"}).columns) == ["v"]


def test_qa_warm_up_loads_what_the_gallery_traces(tmp_path):
    """The QA's kernel warms (during the harvest) what its gallery's workers, forked
    from it, trace: the chain-code and projection kernels for hfc1ar, none of the map's
    own (the Douglas–Peucker budget, the simplicity proof); nothing compiled for a
    service whose records carry no chain code. Each in a fresh process."""
    import subprocess
    import sys
    code = ("import sys, json; from vespa_curation.qa.report import warm_up; "
            "warm_up(sys.argv[1]); from vespa_curation.geometry import kernels; "
            "print(json.dumps(sorted(n for n, f in vars(kernels).items() "
            "if getattr(f, 'signatures', None))))")

    def compiled(service):
        p = subprocess.run([sys.executable, "-c", code, service], capture_output=True,
                           text=True, cwd=tmp_path, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        return set(json.loads(p.stdout.strip().splitlines()[-1]))

    hfc = compiled("hfc1ar")
    assert {"outline_rings", "line_of_sight", "carrington_degrees"} <= hfc, hfc
    assert not {"dp_keep", "rings_simple"} & hfc, hfc
    assert compiled("nrh") == set()
