"""TFCat: chain code in time–frequency pixels → [time, frequency] polygons (RABAT3
scale), the scale check against CC_X_UTC/CC_Y_MHZ, and offline validation of the written
files with the Starlink TFCat validator Debian's stilts ships."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from vespa_curation import synth
from vespa_curation.formats import tfcat

from conftest import need


def _records(mask, day="2005-04-19", cdelt=(60.0, 50.0), wavemin=1.075):
    x0, y0, cc = synth.encode_chaincode(mask)
    return pd.DataFrame({
        "CC": [cc], "CC_X_PIX": [x0], "CC_Y_PIX": [y0], "DATE_OBS": [day + "T00:00:00.000"],
        "CDELT1": [cdelt[0]], "CDELT2": [cdelt[1]], "WAVEMIN": [wavemin],
        "CC_X_UTC": [x0 * cdelt[0] / 3600.0], "CC_Y_MHZ": [wavemin + y0 * cdelt[1] / 1000]})


def test_rectangle_contour_known_answer():
    """A burst filling time samples 100..104 and channels 10..29 of a RABAT3 spectrum:
    its polygon spans the pixel edges, 99.5..104.5 × 60 s and 9.5..29.5 × 50 kHz."""
    mask = np.zeros((256, 1440), bool)
    mask[10:30, 100:105] = True
    rec = _records(mask)
    ring = tfcat.contours(rec)[0]
    t0 = pd.Timestamp("2005-04-19").timestamp()
    assert ring[0].tolist() == ring[-1].tolist()                 # closed
    assert ring[:, 0].min() == pytest.approx(t0 + 99.5 * 60)
    assert ring[:, 0].max() == pytest.approx(t0 + 104.5 * 60)
    assert ring[:, 1].min() == pytest.approx(1.075 + 9.5 * 0.05)
    assert ring[:, 1].max() == pytest.approx(1.075 + 29.5 * 0.05)
    x, y = ring[:, 0] - t0, ring[:, 1]
    area = 0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1])
    assert area == pytest.approx(5 * 60 * 20 * 0.05)             # counter-clockwise, exact


def test_scale_check():
    mask = np.zeros((256, 1440), bool)
    mask[40:90, 700:706] = True
    rec = _records(mask)
    rule, reason = tfcat.scale_check(rec)
    assert rule[0] is None
    jdrec = rec.assign(CC_X_UTC=2440587.5 + (pd.Timestamp("2005-04-19").timestamp()
                                             + 700 * 60) / 86400)
    assert tfcat.scale_check(jdrec)[0][0] is None                # a JD is read as a JD
    off = rec.assign(CC_X_UTC=rec["CC_X_UTC"] + 2 / 60)          # two minutes late
    rule, reason = tfcat.scale_check(off)
    assert rule[0] == "tfcat.scale_mismatch" and "120.0 s off" in reason[0]
    rule, reason = tfcat.scale_check(rec, freq_step_unit="MHz")  # wrong unit: refused
    assert rule[0] == "tfcat.scale_mismatch" and "CC_Y_MHZ" in reason[0]
    rule, reason = tfcat.scale_check(rec.assign(CDELT1=None))
    assert rule[0] == "tfcat.scale_mismatch" and "no usable" in reason[0]


def test_cc_x_utc_forms():
    t = tfcat.cc_x_utc_to_datetime([1.5, 2453479.5 + 0.25, 1113868800.0 + 60],
                                   ["2005-04-19T00:00:00"] * 3)
    assert list(t) == [pd.Timestamp("2005-04-19T01:30"), pd.Timestamp("2005-04-19T06:00"),
                       pd.Timestamp("2005-04-19T00:01")]


def test_polygon_orientation_is_enforced():
    cw = np.array([[0, 1], [0, 2], [10, 2], [10, 1], [0, 1]], float)
    coords = tfcat.polygon(cw)["coordinates"][0]
    x, y = np.array(coords).T
    assert np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]) > 0


@pytest.fixture(scope="module")
def t3_features(tmp_path_factory):
    """TFCat features of the embedded sample's bursts (via the hfc1t3 service)."""
    from vespa_curation.config import load_config
    from vespa_curation.samples import build_samples
    from vespa_curation.services import get_service, map_chunk
    from vespa_curation.sources import open_source
    out = build_samples(tmp_path_factory.mktemp("s"))
    svc = get_service("hfc1t3")
    p = load_config("hfc1t3", overrides={"source": f"sqlite:///{out['hfc']}"})
    rows = pd.concat([map_chunk(svc, r, p)[0] for r in svc.source.records(open_source(p["source"]),
                                                                    p, None)])
    with sqlite3.connect(out["hfc"]) as con:
        t3 = pd.read_sql("SELECT * FROM TYPE_III", con)
    return svc, p, rows, t3


def test_sample_contours_match_the_bounding_rectangles(t3_features):
    """Each contour's time/frequency extent is the burst's BR_* rectangle (pixel edges
    added): the chain code, the scale and the stored UTC/MHz corners agree."""
    svc, p, rows, t3 = t3_features
    for _, r in rows.iterrows():
        f = json.loads(r["qa_tfcat_feature"])
        a = np.array(f["geometry"]["coordinates"][0])
        b = t3[t3["ID_TYPE_III"] == int(r["qa_id_type_iii"])].iloc[0]
        day = pd.Timestamp(r["granule_uid"][3:11]).timestamp()
        assert a[:, 0].min() == pytest.approx(day + b["BR_X0_UTC"] * 3600 - 30, abs=1e-3)
        assert a[:, 0].max() == pytest.approx(day + b["BR_X3_UTC"] * 3600 + 30, abs=1e-3)
        assert a[:, 1].min() == pytest.approx(b["BR_Y0_MHZ"] - 0.025, abs=1e-6)
        assert a[:, 1].max() == pytest.approx(b["BR_Y3_MHZ"] + 0.025, abs=1e-6)


def test_written_files_validate_with_stilts(t3_features, tmp_path):
    need(tfcat.validator_command() is not None,
         "the Starlink TFCat validator (Debian stilts + java) is not installed")
    svc, p, rows, t3 = t3_features
    files = svc.files(rows, p)
    one = tmp_path / "one.json"
    one.write_bytes(next(iter(files.values())))
    ok, report = tfcat.validate_file(one)
    assert ok, report
    cat = tmp_path / "catalogue.json"
    cat.write_bytes(tfcat.dumps(__import__("vespa_curation.services.hfc1t3",
                                           fromlist=["catalogue"]).catalogue(rows)))
    ok, report = tfcat.validate_file(cat)
    assert ok, report
    assert len(json.loads(cat.read_text())["features"]) == len(rows)
    # the validator does catch a broken file: a clockwise ring
    bad = json.loads(one.read_text())
    ring = bad["features"][0]["geometry"]["coordinates"][0]
    bad["features"][0]["geometry"]["coordinates"][0] = ring[::-1]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    ok, report = tfcat.validate_file(tmp_path / "bad.json")
    assert not ok and "anticlockwise" in report
