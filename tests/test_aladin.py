"""Fast checks of the offline Aladin pieces: vendored bundle, widget module, STC-S
conversion, Carrington map and HiPS (the browser test checks the rendered view)."""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.utils import iers

from vespa_curation.qa import aladin, hips

iers.conf.auto_download = False


# --------------------------------------------------------------------------- bundle


def test_bundle_is_the_documented_npm_file_with_its_licence():
    readme = (aladin.BUNDLE.parent / "README.md").read_text()
    sha = re.search(r"sha256 of `aladin.js`: `([0-9a-f]{64})`", readme).group(1)
    assert hashlib.sha256(aladin.BUNDLE.read_bytes()).hexdigest() == sha
    assert f"aladin-lite {aladin.BUNDLE_VERSION}" in readme
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in (aladin.BUNDLE.parent / "LICENSE").read_text()
    assert "GNU GENERAL PUBLIC LICENSE" in (aladin.BUNDLE.parent / "COPYING").read_text()


def test_bundle_version_is_the_one_ipyaladin_asks_for():
    widget = aladin.ipyaladin_widget_js().read_text()
    assert f'esm.sh/aladin-lite@{aladin.BUNDLE_VERSION}"' in widget


def test_offline_module_fetches_nothing():
    esm = aladin.offline_esm()
    assert "esm.sh" not in esm
    # no static or dynamic import of anything: the module is self-contained
    assert not re.search(r"""\bimport\s*[\w${}\s,*]*\bfrom\s*["']""", esm)
    assert not re.search(r"""\bimport\s*\(""", esm)
    assert esm.count("export default") == 1
    assert "globalThis.vespaAladin" in esm


@pytest.mark.skipif(shutil.which("node") is None, reason="node absent: syntax check skipped")
def test_offline_module_parses(tmp_path):
    path = tmp_path / "widget.mjs"
    path.write_text(aladin.offline_esm())
    subprocess.run(["node", "--check", str(path)], check=True, capture_output=True)


def test_each_widget_has_its_own_call_queue():
    a, b = aladin.OfflineAladin(), aladin.OfflineAladin()
    a.add_graphic_overlay_from_stcs(["Polygon 1 1 2 1 2 2"])
    assert len(a._call_store.calls) == 1
    assert b._call_store.calls == []
    assert a._esm == aladin.offline_esm()


# --------------------------------------------------------------------------- STC-S


def test_stcs_to_aladin_drops_the_frame_and_wraps_longitudes():
    text, xy = aladin.stcs_to_aladin("Polygon UNKNOWNFrame 355 -10 365 -10 5 0 -5 0", "g1")
    assert text == "Polygon 355 -10 5 -10 5 0 355 0"
    np.testing.assert_allclose(xy, [[355, -10], [5, -10], [5, 0], [355, 0]])


@pytest.mark.parametrize("bad, words", [
    ("", "empty"),
    ("Circle UNKNOWNFrame 10 10 2", "only Polygon"),
    ("Polygon UNKNOWNFrame 1 2 3 4 5", "odd number"),
    ("Polygon UNKNOWNFrame 1 2 3 4", "2 vertices"),
    ("Polygon UNKNOWNFrame 1 2 3 x 5 6", "non-numeric"),
    ("Polygon UNKNOWNFrame 1 2 3 95 5 6", "latitude"),
    ("Polygon UNKNOWNFrame 1 2 3 nan 5 6", "non-numeric"),
])
def test_bad_s_region_is_refused_with_the_granule_and_reason(bad, words):
    with pytest.raises(aladin.RegionError, match=f"g7: .*{words}"):
        aladin.stcs_to_aladin(bad, "g7")


def test_regions_for_view_quarantines_bad_rows_and_colours_by_flag():
    rows = pd.DataFrame({
        "granule_uid": ["a", "b", "c"],
        "s_region": ["Polygon UNKNOWNFrame 1 1 2 1 2 2", "Polygon UNKNOWNFrame 1 1",
                     "Polygon UNKNOWNFrame 359 1 1 1 1 2"],
        "geom_flag": ["ok", "ok", "limb_clipped+seam"],
    })
    regions, refused = aladin.regions_for_view(rows)
    assert regions["granule_uid"].tolist() == ["a", "c"]
    assert regions["group"].tolist() == ["ok", "seam"]
    assert refused.columns.tolist() == ["granule_uid", "stage", "rule", "reason"]
    assert refused.iloc[0]["granule_uid"] == "b"
    assert refused.iloc[0]["rule"] == "aladin.bad_s_region"


def test_view_frame_spans_the_seam():
    (lon, lat), fov = aladin._view_frame(
        [np.array([[350.0, -5], [355, -5], [355, 5]]), np.array([[10.0, 0], [15, 0], [15, 5]])],
        (0.0, 0.0))
    assert lon == pytest.approx(2.5) and lat == pytest.approx(0.0)
    assert 25 < fov < 60


# --------------------------------------------------------------------------- solar map


@pytest.fixture(scope="module")
def car_map():
    return hips.carrington_map()


def test_carrington_map_matches_sunpy_transform(car_map):
    """The map's value at a Carrington point is the image's value where sunpy puts that
    point on the helioprojective image; shifting the longitude by 5 deg breaks it."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.wcs import WCS
    from scipy.ndimage import map_coordinates
    from sunpy.coordinates import HeliographicCarrington, HeliographicStonyhurst

    car, _ = car_map
    image = hips.default_context_image()
    data, header = hips._read_image(image)
    obstime = header["DATE-OBS"]
    observer = SkyCoord(header["HGLN_OBS"] * u.deg, header["HGLT_OBS"] * u.deg,
                        header["DSUN_OBS"] * u.m, frame=HeliographicStonyhurst, obstime=obstime)
    rng = np.random.default_rng(1)
    lon0, lat0 = hips._sub_observer(header)
    lon = lon0 + rng.uniform(-55, 55, 60)
    lat = lat0 + rng.uniform(-45, 45, 60)
    points = SkyCoord(lon * u.deg, lat * u.deg,
                      frame=HeliographicCarrington(observer=observer, obstime=obstime))
    x, y = WCS(header).world_to_pixel(points)
    direct = map_coordinates(np.log10(np.clip(data, 1, None)), [y, x], order=1)
    ours = hips._sample_car(car, lon, lat)
    shifted = hips._sample_car(car, lon + 5, lat)
    assert np.median(np.abs(ours - direct)) < 0.02
    assert np.max(np.abs(ours - direct)) < 0.1
    assert np.median(np.abs(shifted - direct)) > 3 * np.median(np.abs(ours - direct))


def test_carrington_map_covers_exactly_the_visible_hemisphere(car_map):
    car, header = car_map
    lon0, lat0 = hips._sub_observer(header)
    ny, nx = car.shape
    lon, lat = np.meshgrid((np.arange(nx) + 0.5) * 360 / nx, (np.arange(ny) + 0.5) * 180 / ny - 90)
    lo, la, lo0, la0 = map(np.deg2rad, (lon, lat, lon0, lat0))
    dist = np.rad2deg(np.arccos(np.clip(
        np.sin(la) * np.sin(la0) + np.cos(la) * np.cos(la0) * np.cos(lo - lo0), -1, 1)))
    assert np.isfinite(car[dist < 85]).all()
    assert not np.isfinite(car[dist > 91]).any()


def test_sub_observer_point_is_the_headers_carrington_position(car_map):
    _, header = car_map
    lon0, lat0 = hips._sub_observer(header)
    assert lon0 == pytest.approx(22.8145, abs=0.1)   # CRLN_OBS of aia_171_level1.fits
    assert lat0 == pytest.approx(-6.8205, abs=1e-3)  # CRLT_OBS


# --------------------------------------------------------------------------- HiPS


@pytest.fixture(scope="module")
def solar_hips(tmp_path_factory):
    return hips.build_solar_hips(cache_dir=tmp_path_factory.mktemp("hips"))


def test_hips_properties_label_context_and_body(solar_hips):
    props = hips.read_properties(solar_hips.path)
    assert props["hips_body"] == "sun"
    assert props["hips_frame"] == "equatorial"
    assert props["hips_tile_format"] == "png"
    assert props["hips_order"] == "3"
    assert props["obs_title"].startswith("CONTEXT ONLY")
    assert "not the observation" in props["obs_description"]
    assert solar_hips.date_obs.startswith("2011-02-15")


def test_hips_tiles_cover_the_visible_hemisphere(solar_hips):
    from PIL import Image

    props = hips.read_properties(solar_hips.path)
    tiles = sorted(solar_hips.path.glob("Norder3/Dir0/Npix*.png"))
    assert len(tiles) == int(props["vespa_tiles"])
    # a hemisphere is half of the 768 order-3 tiles, plus the ones the edge crosses
    assert 384 <= len(tiles) < 500
    allsky = Image.open(solar_hips.path / "Norder3" / "Allsky.png")
    assert allsky.size == (27 * 64, 29 * 64)
    # the tile holding the sub-observer point is full of data; the antipode's is absent
    from astropy_healpix import HEALPix
    import astropy.units as u
    hp = HEALPix(nside=8, order="nested")
    lon0, lat0 = solar_hips.center
    near = int(hp.lonlat_to_healpix(lon0 * u.deg, lat0 * u.deg))
    far = int(hp.lonlat_to_healpix((lon0 + 180) * u.deg, -lat0 * u.deg))
    alpha = np.asarray(Image.open(solar_hips.path / f"Norder3/Dir0/Npix{near}.png"))[..., 3]
    assert (alpha == 255).all()
    assert not (solar_hips.path / f"Norder3/Dir0/Npix{far}.png").exists()


def test_hips_is_cached(solar_hips):
    again = hips.build_solar_hips(cache_dir=solar_hips.path.parent)
    assert again.path == solar_hips.path


def test_server_serves_the_hips_on_loopback_with_cors(solar_hips):
    import urllib.request

    server = hips.serve(solar_hips.path.parent)
    url = server.url_for(solar_hips.path)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/")
    with urllib.request.urlopen(url + "properties", timeout=5) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert b"hips_body" in response.read()
    assert hips.serve(solar_hips.path.parent) is server
    server.stop()


def test_region_view_builds_the_widget(solar_hips):
    rows = aladin.rows_from_stcs()
    view = aladin.region_view(rows, hips=solar_hips, moc="rows")
    try:
        assert len(view.regions) == len(aladin.DEMO_S_REGIONS)
        assert view.refused.empty
        assert view.hips_url.startswith("http://127.0.0.1:")
        assert view.aladin.survey == view.hips_url
        assert "context only" in view.children[0].value
        # the MOC layer: the union of the polygons shown
        from vespa_curation.geometry.moc import polygon_moc
        assert view.moc == polygon_moc(aladin.DEMO_S_REGIONS)
        # a click (Aladin's click event, as the browser sends it) shows the row
        view.row_panel.show_row_at(25.0, 15.0)
        assert "demo_0" in view.row_panel.value and "ok" in view.row_panel.value
        assert "2011-02-15T12:00:00" in view.row_panel.value
        view.row_panel.show_row_at(200.0, -60.0)
        assert "no polygon here" in view.row_panel.value
    finally:
        hips.serve(solar_hips.path.parent).stop()


def test_rows_at_finds_the_polygons_under_a_point_across_the_seam():
    rows = aladin.rows_from_stcs()
    regions, _ = aladin.regions_for_view(rows)
    assert aladin.rows_at(regions, 25, 15) == [0]
    assert aladin.rows_at(regions, 359.5, -15) == [1]      # the polygon across 0/360
    assert aladin.rows_at(regions, 2.0, -15) == [1]
    assert aladin.rows_at(regions, 180, 0) == []
    html_text = aladin.row_html(rows, [1], 359.5, -15)
    assert "demo_1" in html_text and "seam" in html_text and "time_max" in html_text


# --------------------------------------------------------------------------- notebook


def _run_notebook(tmp_path, **parameters):
    import papermill as pm

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "05_aladin.out.ipynb"
    pm.execute_notebook(str(root / "notebooks" / "05_aladin.ipynb"), str(out),
                        parameters=parameters, kernel_name="python3", progress_bar=False,
                        cwd=str(tmp_path))
    return out


@pytest.mark.slow
def test_notebook_shows_a_run_folders_rows(tmp_path):
    import nbformat
    from conftest import make_hfc1ar_rows

    run = tmp_path / "run"
    run.mkdir()
    rows = make_hfc1ar_rows(n_images=2)
    rows.to_parquet(run / "rows.parquet")
    nb = nbformat.read(_run_notebook(tmp_path, run_dir=str(run)), as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert f"{len(rows)} rows" in text
    widgets = [o for c in nb.cells for o in c.get("outputs", [])
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "the Aladin view was not displayed"


@pytest.mark.slow
def test_notebook_refuses_a_run_dir_without_rows(tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError, match="run_dir: .* has no rows.parquet"):
        _run_notebook(tmp_path, run_dir=str(tmp_path))
