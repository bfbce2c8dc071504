"""Collections declared in YAML alone (parameters/collections/*.yaml): the two MASER
collections and the TFCat catalogues mapped from their embedded samples, bad files and
bad attribute values quarantined with their reasons, declarations refused by name before
anything runs, and `vespa-curate collection new` from a fresh folder of files to a
validated import area."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vespa_curation import cli, export, harvest, runfolder
from vespa_curation.config import load_config
from vespa_curation.formats import cdf as C
from vespa_curation.formats import tfcat
from vespa_curation.services import get_service
from vespa_curation.services.from_yaml import DeclarationError, load_collection
from vespa_curation.scaffold import pattern_of

from conftest import need

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).parent / "vespa-curate"
COLLECTIONS = ("wind_waves", "juno_waves", "tfcat_akr")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("yaml")
    for name in COLLECTIONS:
        get_service(name).sample(out, 2005)
    return out


def config(name: str, folder: Path, tmp: Path, **over):
    return load_config(name, overrides={"source": f"files:{folder}", "workers": 1,
                                        "dachs_inputs": str(tmp / "dachs"),
                                        "outputs": str(tmp / "runs"), **over})


def run(cfg, tmp: Path, run_id: str = "r1"):
    folder = tmp / "runs" / run_id / cfg.service
    h = harvest.run(cfg, folder)
    rows = runfolder.read_rows(folder).set_index("granule_uid", drop=False)
    return h, folder, rows, runfolder.read_quarantine(folder)


def jd(iso: str) -> float:
    return pd.Timestamp(iso).to_julian_date()


def test_wind_waves_from_its_declaration(built, tmp_path):
    h, folder, rows, q = run(config("wind_waves", built / "wind_waves", tmp_path), tmp_path)
    assert sorted(rows.index) == ["wi_wa_rad1_l3-akr_20000101", "wi_wa_rad1_l3-akr_20000102"]
    r = rows.loc["wi_wa_rad1_l3-akr_20000101"]
    # VESPA_<column> attributes: short forms where EPN-TAP wants a name, # lists kept,
    # long forms where the column describes
    assert (r["target_name"], r["target_class"], r["target_region"]) == \
        ("Earth", "planet", "magnetosphere")
    assert r["dataproduct_type"] == "ds" and r["instrument_host_name"] == "Wind"
    assert r["instrument_name"] == "Waves#RAD1"
    assert r["feature_name"] == "Auroral Kilometric Radiation"
    assert r["processing_level"] == 3 and r["measurement_type"] == "phys.flux.density;em.radio"
    assert (r["publisher"], r["messenger"], r["time_scale"]) == ("PADC", "Radio", "UTC")
    assert r["bib_reference"] == "10.1029/2021JA029425"
    # kHz attributes converted to Hz; the data's own axes give the published ranges
    assert (r["spectral_range_min"], r["spectral_range_max"]) == (20e3, 1040e3)
    assert r["time_min"] == jd("2000-01-01T00:00") and r["time_max"] == jd("2000-01-01T23:59")
    assert r["time_sampling_step_min"] == pytest.approx(1439 * 60 / 47)
    assert r["access_url"] == ("https://maser.obspm.fr/repository/wind/waves/rad1_l3_akr/"
                               "2000/wi_wa_rad1_l3-akr_20000101_v01.cdf")
    # an attribute no column takes is reported on the row, not dropped
    assert r["qa_unknown_attributes"] == "VESPA_RECEIVER_NAME"
    # min → s: VESPA_time_sampling_step 30.617 min agrees with the data's step (no finding)
    assert pd.isna(r["qa_attr_mismatch"])
    # the file whose unit astropy cannot read is refused, naming the attribute and value
    assert list(q["rule"]) == ["source.bad_unit"]
    assert "20000103" in q["source_id"].iloc[0]
    assert "vespa_spectral_range_min_unit 'kilohertzz' is not a unit" in q["reason"].iloc[0]


def test_wind_waves_links_by_naming_and_dois(built, tmp_path):
    cfg = config("wind_waves", built / "wind_waves", tmp_path)
    _, _, rows, _ = run(cfg, tmp_path)
    links = get_service("wind_waves").links(rows.reset_index(drop=True), cfg)
    one = links[links["granule_uid"] == "wi_wa_rad1_l3-akr_20000101"]
    two = links[links["granule_uid"] == "wi_wa_rad1_l3-akr_20000102"]
    base = "https://maser.obspm.fr/repository/wind/waves/rad1_l3_akr/"
    assert set(one["access_url"]) == {
        base + "2000/wi_wa_rad1_l3-akr_20000101_v01.cdf",
        base + "2000/wi_wa_rad1_l3-akr_20000101_v01.png",      # the quicklook beside it
        base + "README.txt", "https://doi.org/10.1029/2021JA029425",
        "https://doi.org/10.25935/wxv0-vr90"}
    assert one.set_index("access_url").loc[base + "2000/wi_wa_rad1_l3-akr_20000101_v01.png",
                                           "semantics"] == "#preview"
    assert base + "2000/wi_wa_rad1_l3-akr_20000102_v01.png" not in set(two["access_url"])
    assert len(two) == 4                              # no quicklook: no dangling link


def test_juno_waves_from_its_declaration(built, tmp_path):
    h, folder, rows, q = run(config("juno_waves", built / "juno_waves", tmp_path), tmp_path)
    assert sorted(rows.index) == ["jno_wav_cdr_lesia_20170101", "jno_wav_cdr_lesia_20170102"]
    r = rows.loc["jno_wav_cdr_lesia_20170101"]
    assert (r["target_name"], r["instrument_host_name"], r["instrument_name"]) == \
        ("Jupiter", "Juno", "Waves")
    assert (r["spectral_range_min"], r["spectral_range_max"]) == (50e3, 41e6)   # MHz → Hz
    assert r["access_url"].endswith("l3a_v02/2017/01/jno_wav_cdr_lesia_20170101_v02.cdf")
    # VESPA_time_min after VESPA_time_max: refused with both values
    assert list(q["rule"]) == ["source.time_order"]
    assert "VESPA_time_min 2017-01-03 12:00:00 is after VESPA_time_max 2017-01-03 06:00:00" \
        in q["reason"].iloc[0]


def test_a_frequency_range_in_reverse_is_refused(built, tmp_path):
    folder = tmp_path / "wind"
    shutil.copytree(built / "wind_waves", folder)
    p = folder / "2000" / "wi_wa_rad1_l3-akr_20000102_v01.cdf"
    c = C.open_cdf(p)
    attrs = {**C.global_attributes(c), "VESPA_spectral_range_min": 2.0,
             "VESPA_spectral_range_min_unit": "MHz"}
    freq, unit = C.axis(c, "FREQ")
    C.write_cdf(p, attrs, [("Epoch", C.time_axis(c), "CDF_TIME_TT2000", {}, True),
                           ("FREQ", freq.astype(np.float32), "CDF_FLOAT", {"UNITS": unit},
                            False)])
    _, _, rows, q = run(config("wind_waves", folder, tmp_path), tmp_path)
    assert list(rows.index) == ["wi_wa_rad1_l3-akr_20000101"]
    refused = q.set_index("rule")
    assert "20000102" in refused.loc["source.frequency_order", "source_id"]
    assert refused.loc["source.frequency_order", "reason"].endswith(
        "VESPA_spectral_range_min 2e+06 Hz is above VESPA_spectral_range_max 1.04e+06 Hz")


def test_attribute_times_disagreeing_with_the_epoch_variable(built, tmp_path):
    folder = tmp_path / "wind"
    shutil.copytree(built / "wind_waves", folder)
    p = folder / "2000" / "wi_wa_rad1_l3-akr_20000102_v01.cdf"
    c = C.open_cdf(p)
    attrs = {**C.global_attributes(c), "VESPA_time_min": "2000-01-02T02:00:00Z"}
    freq, unit = C.axis(c, "FREQ")
    C.write_cdf(p, attrs, [("Epoch", C.time_axis(c), "CDF_TIME_TT2000", {}, True),
                           ("FREQ", freq.astype(np.float32), "CDF_FLOAT", {"UNITS": unit},
                            False)])
    _, _, rows, _ = run(config("wind_waves", folder, tmp_path), tmp_path)
    r = rows.loc["wi_wa_rad1_l3-akr_20000102"]
    assert r["time_min"] == jd("2000-01-02T00:00")                    # the data win
    assert r["qa_attr_mismatch"] == \
        "time_min: attribute 2000-01-02 02:00:00, data 2000-01-02 00:00:00"
    assert pd.isna(rows.loc["wi_wa_rad1_l3-akr_20000101", "qa_attr_mismatch"])


def test_tfcat_catalogues_as_granules(built, tmp_path):
    need(tfcat.validator_command() is not None,
         "the Starlink TFCat validator (Debian stilts + java) is not installed")
    _, _, rows, q = run(config("tfcat_akr", built / "tfcat_akr", tmp_path), tmp_path)
    assert sorted(rows.index) == ["akr_bursts_2000-01", "akr_bursts_2000-02"]
    jan, feb = rows.loc["akr_bursts_2000-01"], rows.loc["akr_bursts_2000-02"]
    assert jan["dataproduct_type"] == "ca" and jan["feature_count"] == 3
    # coverage: the features' extent in each catalogue's own CRS (unix s, kHz; MJD, MHz)
    assert jan["time_min"] == pytest.approx(jd("2000-01-01T01:00"), abs=1e-8)
    assert jan["time_max"] == pytest.approx(jd("2000-01-03T21:00"), abs=1e-8)
    assert (jan["spectral_range_min"], jan["spectral_range_max"]) == (80e3, 650e3)
    assert feb["feature_count"] == 1
    assert feb["time_min"] == pytest.approx(jd("2000-02-05T00:30"), abs=1e-8)
    assert feb["spectral_range_min"] == pytest.approx(0.1e6)
    assert feb["spectral_range_max"] == pytest.approx(0.6e6)
    assert feb["access_format"] == "application/json"
    # an invalid catalogue is quarantined with the validator's message; one whose
    # coordinates fall outside its declared CRS with what is wrong
    reasons = dict(zip(q["source_id"], q["reason"]))
    assert set(q["rule"]) == {"tfcat.invalid"} and len(q) == 2
    assert "too few positions for linear ring" in reasons["akr_bursts_unclosed.tfcat.json"]
    assert "the TFCat validator says" in reasons["akr_bursts_unclosed.tfcat.json"]
    assert "5 time coordinate(s), 9.46685e+08 to 9.4669e+08, are no date in the " \
        "declared time coordinates (jd)" in reasons["akr_bursts_bad.tfcat.json"]


@pytest.mark.parametrize("text, words", [
    ("colour: blue\n", "unknown key 'colour'"),
    ("files: {patterns: ['*.cdf'], reader: vespa-cdf, recursive: yes}\n",
     "files: unknown key 'recursive'"),
    ("files: {patterns: ['*.cdf'], reader: netcdf}\n", "reader 'netcdf' is not one of"),
    ("files: {patterns: [], reader: vespa-cdf}\n", "at least one file-name pattern"),
    ("constants: {target_class: planet}\n",
     "the required column 'dataproduct_type' has no value"),
    ("constants: {dataproduct_type: ds, target_class: planet, colour: blue}\n",
     "'colour' is not an EPN-TAP 2.0 column"),
    ("constants: {dataproduct_type: ds, target_class: planet}\n"
     "links: [{file: '{stem}.png'}]\n", "links[0]: a link has semantics"),
    ("constants: {dataproduct_type: ds, target_class: planet}\n"
     "links: [{semantics: '#nice', url: 'https://x'}]\n", "'#nice' is not a datalink term"),
])
def test_declarations_are_refused_by_name(tmp_path, text, words):
    base = {"title": "T", "description": "D", "creator": "C", "subjects": ["S"],
            "files": {"patterns": ["*.cdf"], "reader": "vespa-cdf"}}
    import yaml
    decl = {**base, **yaml.safe_load(text)}
    path = tmp_path / "my_collection.yaml"
    path.write_text(yaml.safe_dump(decl))
    with pytest.raises(DeclarationError) as e:
        load_collection(path)
    assert words in str(e.value) and "my_collection.yaml" in str(e.value)


def test_the_shipped_declarations_load():
    for name in COLLECTIONS:
        svc = get_service(name)
        assert svc.name == name and svc.source.patterns and svc.sample is not None


def test_a_pattern_matching_nothing_is_refused_before_anything_runs(tmp_path):
    empty = tmp_path / "empty"
    (empty / "2000").mkdir(parents=True)
    (empty / "2000" / "notes.txt").write_text("no CDF here")
    out = tmp_path / "runs"
    p = curate("run", "wind_waves", "-p", f"source=files:{empty}", "-p", f"outputs={out}")
    assert p.returncode == cli.USAGE, p.stderr
    assert "wind_waves: files:" in p.stderr
    assert "no file matches the pattern(s) wi_wa_rad1_l3-akr_*_v*.cdf" in p.stderr
    assert not out.exists() and "papermill" not in p.stderr


def test_file_name_patterns():
    assert pattern_of("wi_wa_rad1_l3-akr_20000101_v01.cdf") == "wi_wa_rad1_l3-akr_*_v*.cdf"
    assert pattern_of("jno_wav_cdr_lesia_20170101_v02.cdf") == "jno_wav_cdr_lesia_*_v*.cdf"
    assert pattern_of("akr_bursts_2000-01.tfcat.json") == "akr_bursts_*-01.tfcat.json"


def curate(*args, env=None, cwd=ROOT) -> subprocess.CompletedProcess:
    cmd = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "vespa_curation.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, **(env or {})), timeout=600,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def fresh_project(tmp_path):
    """A project folder with the site parameters and notebooks, no collection declared
    (VESPA_CURATION_ROOT points vespa-curate at it)."""
    root = tmp_path / "project"
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    (root / "parameters").mkdir(parents=True)
    for p in (ROOT / "parameters").glob("*.yaml"):
        shutil.copy(p, root / "parameters" / p.name)
    return root


def supplementary_folder(built, tmp_path, attributes=None) -> Path:
    """A publication's supplementary material: daily CDFs, a quicklook, a README."""
    folder = tmp_path / "supplement"
    shutil.copytree(built / "wind_waves", folder)
    for p in sorted(folder.rglob("*.cdf")):
        p.rename(p.with_name(p.name.replace("wi_wa_rad1_l3-akr", "akr_rad1_flux")))
    for p in sorted(folder.rglob("*.png")):
        p.rename(p.with_name(p.name.replace("wi_wa_rad1_l3-akr", "akr_rad1_flux")))
    if attributes:
        for p in sorted(folder.rglob("*.cdf")):
            c = C.open_cdf(p)
            attrs = {k: v for k, v in C.global_attributes(c).items()
                     if k not in attributes or attributes[k] is not None}
            attrs.update({k: v for k, v in attributes.items() if v is not None})
            freq, unit = C.axis(c, "FREQ")
            C.write_cdf(p, attrs, [("Epoch", C.time_axis(c), "CDF_TIME_TT2000", {}, True),
                                   ("FREQ", freq.astype(np.float32), "CDF_FLOAT",
                                    {"UNITS": unit}, False)])
    return folder


def test_collection_new_from_a_folder_to_an_import_area(built, tmp_path, fresh_project):
    """What a curator does with a publication's supplementary material: one command to
    declare it (and see a row), one to harvest, check and export it."""
    folder = supplementary_folder(built, tmp_path)
    env = {"VESPA_CURATION_ROOT": str(fresh_project)}
    p = curate("collection", "new", "akr_supplement", "--files", str(folder),
               "--doi", "10.25935/abcd-1234", "--bib", "2021JGRA..12629425W",
               "--set", "messenger=Radio", env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    decl_path = fresh_project / "parameters" / "collections" / "akr_supplement.yaml"
    assert f"wrote {decl_path}" in p.stdout
    assert "akr_rad1_flux_*_v*.cdf (vespa-cdf, 3 file(s))" in p.stdout
    assert "receiver_name" in p.stdout                    # an attribute no column takes
    assert "a row will look like (2 row(s)" in p.stdout
    assert "spectral_range_max           1040000.0" in p.stdout
    assert "refused: 2000/akr_rad1_flux_20000103_v01.cdf: source.bad_unit" in p.stdout
    import yaml
    decl = yaml.safe_load(decl_path.read_text())
    assert decl["files"] == {"patterns": ["akr_rad1_flux_*_v*.cdf"], "reader": "vespa-cdf",
                             "frequency": "FREQ", "spectrum_variable": "FLUX_DENSITY"}
    assert "target_class" in decl["columns"] and decl["constants"] == {"messenger": "Radio"}
    assert {k["semantics"] for k in decl["links"]} == {"#preview", "#documentation"}
    assert decl["doi"] == "10.25935/abcd-1234"
    # the declared collection now runs like any service
    r = curate("run", "akr_supplement", "--no-progress", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    area = fresh_project / "outputs" / "dachs" / "akr_supplement"
    from vespa_curation.area import ImportArea
    assert ImportArea.at(area).published_uids() == {"akr_rad1_flux_20000101",
                                                     "akr_rad1_flux_20000102"}
    assert ImportArea.at(area).verify() == []
    rd = (area / "q.rd").read_text()
    assert '<meta name="doi">10.25935/abcd-1234</meta>' in rd
    assert '<meta name="source">2021JGRA..12629425W</meta>' in rd
    # a second `collection new` of the same name is refused without --force
    again = curate("collection", "new", "akr_supplement", "--files", str(folder), env=env,
                   cwd=tmp_path)
    assert again.returncode == cli.USAGE and "--force" in again.stderr


def test_collection_new_names_what_is_missing(built, tmp_path, fresh_project):
    folder = supplementary_folder(built, tmp_path, attributes={
        "VESPA_target_class": None, "VESPA_dataproduct_type": None})
    env = {"VESPA_CURATION_ROOT": str(fresh_project)}
    p = curate("collection", "new", "akr_bare", "--files", str(folder), env=env)
    assert p.returncode == cli.USAGE
    assert "REQUIRED columns nothing fills" in p.stdout
    assert "dataproduct_type, target_class" in p.stderr
    assert not (fresh_project / "parameters" / "collections" / "akr_bare.yaml").exists()
    ok = curate("collection", "new", "akr_bare", "--files", str(folder), "--set",
                "dataproduct_type=ds", "--set", "target_class=planet", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "target_class                 planet" in ok.stdout
    py = curate("collection", "new", "nda", "--files", str(folder), "--force", env=env)
    assert py.returncode == cli.USAGE and "declared in Python" in py.stderr


def test_hfc1t3_tfcat_files_follow_the_catalogue_path(tmp_path):
    """hfc1t3's per-granule TFCat files read as the collections read catalogues: valid,
    one feature each, and their extent is the epn_core row's coverage."""
    need(tfcat.validator_command() is not None,
         "the Starlink TFCat validator (Debian stilts + java) is not installed")
    from vespa_curation.samples import build_samples
    out = build_samples(tmp_path / "s")
    cfg = load_config("hfc1t3", overrides={"source": f"sqlite:///{out['hfc']}",
                                           "dachs_inputs": str(tmp_path / "dachs"),
                                           "outputs": str(tmp_path / "runs"), "workers": 1})
    folder = tmp_path / "runs" / "r" / "hfc1t3"
    harvest.run(cfg, folder)
    export.run(cfg, folder)
    rows = runfolder.read_rows(folder).set_index("granule_uid")
    files = sorted((tmp_path / "dachs" / "hfc1t3" / "tfcat").glob("*.json"))
    assert len(files) == len(rows) > 0
    for path in files:
        cat = tfcat.read_catalogue(path)
        row = rows.loc[path.stem]
        assert cat["TFCAT_VALID"] is True and cat["N_FEATURES"] == 1
        assert cat["TFCAT_OUTSIDE"] is None
        # the contour runs along the pixel edges of the chain code; the row's coverage
        # is the catalogue's TIME_START/TIME_END and BR_* frequencies: the same burst,
        # within one pixel (RABAT3: 60 s, 50 kHz)
        t0, t1 = (pd.Timestamp(cat[k]).to_julian_date() for k in ("TIME_FIRST", "TIME_LAST"))
        assert abs(row["time_min"] - t0) * 86400 <= 60 + 1e-3
        assert abs(t1 - row["time_max"]) * 86400 <= 60 + 1e-3
        assert abs(row["spectral_range_min"] / 1e6 - cat["FREQ_MIN"]) <= 0.05 + 1e-9
        assert abs(cat["FREQ_MAX"] - row["spectral_range_max"] / 1e6) <= 0.05 + 1e-9
