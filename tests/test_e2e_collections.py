"""nda, expres and the collections declared in YAML (wind_waves, juno_waves, tfcat_akr)
through the real DaCHS: the stages export the embedded samples into
DaCHS's inputs folder, ``dachs imp`` and ``dachs val`` take them, TAP answers queries by
time and by spectral range, and DaCHS's datalink service resolves each granule's links
(file, progenitor, quicklooks, run configuration, HAPI 3 and das2 access)."""
from __future__ import annotations

import io
import urllib.parse
import urllib.request

import pandas as pd
import pytest
from astropy.io.votable import parse_single_table

from vespa_curation import datalinks, export, harvest
from vespa_curation.config import load_config
from vespa_curation.services import get_service

pytestmark = [pytest.mark.dachs, pytest.mark.slow]

HAPI, DAS2 = "https://hapi.example.org/hapi", "https://das2.example.org/das2/server"


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    out = tmp_path_factory.mktemp("collections")
    for name in ("nda", "expres", "wind_waves", "juno_waves", "tfcat_akr"):
        get_service(name).sample(out, 2005)
    return out


def publish(name, samples, dachs, tmp_path):
    cfg = load_config(name, overrides={
        "source": f"files:{samples / name}", "dachs_inputs": str(dachs.inputs),
        "outputs": str(tmp_path / "runs"), "server_url": dachs.url, "workers": 1,
        **({"hapi_server": HAPI, "das2_server": DAS2} if name == "nda" else {})})
    run_dir = tmp_path / "runs" / "e2e" / name
    harvest.run(cfg, run_dir)
    rep = export.run(cfg, run_dir)
    dachs.run("drop", f"{name}/q", check=False)
    dachs.run("imp", f"{name}/q")
    dachs.expire(f"{name}/q")
    val = dachs.run("val", f"{name}/q", check=False)
    assert val.returncode == 0 and "ERROR" not in val.stdout.upper(), val.stdout + val.stderr
    return cfg, rep


def dlmeta(dachs, name, uid) -> pd.DataFrame:
    url = datalinks.datalink_urls(dachs.url, name, [uid])[0]
    with urllib.request.urlopen(url, timeout=60) as r:
        t = parse_single_table(io.BytesIO(r.read())).to_table().to_pandas()
    return t[t["ID"].astype(str) == uid]


def test_nda_round_trip(samples, dachs, tmp_path):
    cfg, rep = publish("nda", samples, dachs, tmp_path)
    assert rep["exported"] == 4
    tap = dachs.tap()
    n = tap.search("SELECT COUNT(*) AS n FROM nda.epn_core").to_table()["n"][0]
    assert int(n) == 4
    jan2 = pd.Timestamp("2018-01-02T12:00").to_julian_date()
    by_time = tap.search(f"SELECT granule_uid FROM nda.epn_core WHERE time_min <= {jan2} "
                         f"AND time_max >= {jan2}").to_table()
    assert [str(u) for u in by_time["granule_uid"]] == [
        "srn_nda_routine_sun_edr_201801020800_201801021600"]
    by_freq = tap.search("SELECT granule_uid FROM nda.epn_core WHERE "
                         "spectral_range_max > 50e6").to_table()
    assert [str(u) for u in by_freq["granule_uid"]] == [
        "srn_nda_routine_sun_edr_201801020800_201801021600"]
    uid = "srn_nda_routine_jup_edr_201801010000_201801010800"
    links = dlmeta(dachs, "nda", uid)
    sem = dict(zip(links["access_url"].astype(str), links["semantics"].astype(str)))
    assert set(sem.values()) >= {"#this", "#progenitor", "#preview", "#coderived",
                                 "#documentation"}
    assert any(u.endswith("/rt1/J180101.RT1") for u in sem)
    assert any(u.endswith(".pdf") for u in sem) and any(u.endswith(".png") for u in sem)
    hapi = [u for u in sem if u.startswith(HAPI)]
    das2 = [u for u in sem if u.startswith(DAS2)]
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(hapi[0]).query)
    assert hapi[0].startswith(HAPI + "/data?") and q == {
        "dataset": ["srn_nda_routine_jup_edr"], "start": ["2018-01-01T00:00:00Z"],
        "stop": ["2018-01-01T08:00:01Z"]}
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(das2[0]).query)
    assert q == {"server": ["dataset"], "dataset": ["srn_nda_routine_jup_edr"],
                 "start_time": ["2018-01-01T00:00:00Z"],
                 "end_time": ["2018-01-01T08:00:01Z"]}


def test_expres_round_trip(samples, dachs, tmp_path):
    cfg, rep = publish("expres", samples, dachs, tmp_path)
    tap = dachs.tap()
    t = tap.search("SELECT granule_uid, target_name, target_class, processing_level "
                   "FROM expres.epn_core WHERE spectral_range_min < 1e5 AND "
                   "spectral_range_max > 40e6 ORDER BY granule_uid").to_table()
    assert [str(x) for x in t["target_name"]] == ["Jupiter#Europa", "Jupiter#Io"]
    assert set(t["target_class"].astype(str)) == {"planet#satellite"}
    assert set(int(x) for x in t["processing_level"]) == {5}
    uid = "expres_juno_jupiter_io_jrm09_lossc-wid1deg_3kev_20180913"
    links = dlmeta(dachs, "expres", uid)
    aux = links[links["semantics"].astype(str) == "#auxiliary"]
    assert str(aux["access_url"].iloc[0]).endswith("_v01.json")
    assert "Name=Io" in str(aux["description"].iloc[0])


def test_wind_waves_round_trip(samples, dachs, tmp_path):
    cfg, rep = publish("wind_waves", samples, dachs, tmp_path)
    assert rep["exported"] == 2
    tap = dachs.tap()
    day2 = pd.Timestamp("2000-01-02T12:00").to_julian_date()
    t = tap.search(f"SELECT granule_uid, instrument_name, feature_name, bib_reference "
                   f"FROM wind_waves.epn_core WHERE time_min <= {day2} AND "
                   f"time_max >= {day2}").to_table()
    assert [str(u) for u in t["granule_uid"]] == ["wi_wa_rad1_l3-akr_20000102"]
    assert str(t["instrument_name"][0]) == "Waves#RAD1"
    assert str(t["feature_name"][0]) == "Auroral Kilometric Radiation"
    assert str(t["bib_reference"][0]) == "10.1029/2021JA029425"
    band = tap.search("SELECT COUNT(*) AS n FROM wind_waves.epn_core WHERE "
                      "spectral_range_min <= 100e3 AND spectral_range_max >= 1e6"
                      ).to_table()
    assert int(band["n"][0]) == 2
    none = tap.search("SELECT COUNT(*) AS n FROM wind_waves.epn_core WHERE "
                      "spectral_range_min > 2e6").to_table()
    assert int(none["n"][0]) == 0
    links = dlmeta(dachs, "wind_waves", "wi_wa_rad1_l3-akr_20000101")
    sem = dict(zip(links["access_url"].astype(str), links["semantics"].astype(str)))
    base = "https://maser.obspm.fr/repository/wind/waves/rad1_l3_akr/"
    assert sem[base + "2000/wi_wa_rad1_l3-akr_20000101_v01.cdf"] == "#this"
    assert sem[base + "2000/wi_wa_rad1_l3-akr_20000101_v01.png"] == "#preview"
    assert sem[base + "README.txt"] == "#documentation"
    assert sem["https://doi.org/10.25935/wxv0-vr90"] == "#documentation"      # dataset
    assert sem["https://doi.org/10.1029/2021JA029425"] == "#documentation"    # article
    rd = (dachs.inputs / "wind_waves" / "q.rd").read_text()
    assert '<meta name="doi">10.25935/wxv0-vr90</meta>' in rd


def test_juno_waves_round_trip(samples, dachs, tmp_path):
    cfg, rep = publish("juno_waves", samples, dachs, tmp_path)
    assert rep["exported"] == 2
    tap = dachs.tap()
    t = tap.search("SELECT granule_uid, spectral_range_min, spectral_range_max, "
                   "target_name FROM juno_waves.epn_core WHERE spectral_range_max >= 40e6 "
                   "ORDER BY time_min").to_table()
    assert [str(u) for u in t["granule_uid"]] == ["jno_wav_cdr_lesia_20170101",
                                                  "jno_wav_cdr_lesia_20170102"]
    assert float(t["spectral_range_min"][0]) == 50e3
    jan2 = pd.Timestamp("2017-01-02T06:00").to_julian_date()
    one = tap.search(f"SELECT granule_uid FROM juno_waves.epn_core WHERE time_min <= {jan2}"
                     f" AND time_max >= {jan2}").to_table()
    assert [str(u) for u in one["granule_uid"]] == ["jno_wav_cdr_lesia_20170102"]
    links = dlmeta(dachs, "juno_waves", "jno_wav_cdr_lesia_20170101")
    assert set(links["semantics"].astype(str)) == {"#this", "#documentation"}


def test_tfcat_catalogues_round_trip(samples, dachs, tmp_path):
    cfg, rep = publish("tfcat_akr", samples, dachs, tmp_path)
    assert rep["exported"] == 2
    tap = dachs.tap()
    jan2 = pd.Timestamp("2000-01-02T03:20").to_julian_date()
    t = tap.search(f"SELECT granule_uid, feature_count, dataproduct_type FROM "
                   f"tfcat_akr.epn_core WHERE time_min <= {jan2} AND time_max >= {jan2}"
                   ).to_table()
    assert [str(u) for u in t["granule_uid"]] == ["akr_bursts_2000-01"]
    assert int(t["feature_count"][0]) == 3 and str(t["dataproduct_type"][0]) == "ca"
    hi = tap.search("SELECT granule_uid FROM tfcat_akr.epn_core WHERE "
                    "spectral_range_max >= 600e3 ORDER BY granule_uid").to_table()
    assert [str(u) for u in hi["granule_uid"]] == ["akr_bursts_2000-01",
                                                   "akr_bursts_2000-02"]
    cols = tap.search("SELECT column_name, ucd, description FROM tap_schema.columns WHERE "
                      "table_name = 'tfcat_akr.epn_core' AND column_name = "
                      "'feature_count'").to_table()
    assert str(cols["ucd"][0]) == "meta.number"
    links = dlmeta(dachs, "tfcat_akr", "akr_bursts_2000-02")
    this = links[links["semantics"].astype(str) == "#this"]
    assert str(this["access_url"].iloc[0]).endswith("/akr_bursts_2000-02.tfcat.json")
    assert str(this["content_type"].iloc[0]) == "application/json"
