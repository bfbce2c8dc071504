"""`publish`: refuses clearly without DaCHS or without a consistent export; on the real
DaCHS it imports, validates, serves the manifest's row count and applies retractions."""
from __future__ import annotations


import pandas as pd
import pytest

from vespa_curation.publish import PublishError, publish

from conftest import make_hfc1ar_rows, write_area, remove_area

SCHEMA = "hfc1ar"


def test_publish_without_dachs_says_how_to_install(tmp_path, monkeypatch, hfc1ar_service,
                                                  hfc1ar_rows):
    write_area(hfc1ar_service, hfc1ar_rows, dachs_inputs=tmp_path, run_id="r1")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(PublishError, match="DaCHS is not installed.*gavodachs2-server"):
        publish(SCHEMA, {"dachs_inputs": str(tmp_path), "server_url": "http://x"})


def test_publish_without_export(tmp_path):
    with pytest.raises(PublishError, match="no export of hfc1ar.*vespa-curate run"):
        publish(SCHEMA, {"dachs_inputs": str(tmp_path)})


def test_publish_refuses_an_area_that_disagrees_with_its_manifest(tmp_path, hfc1ar_service,
                                                                  hfc1ar_rows):
    area = write_area(hfc1ar_service, hfc1ar_rows, dachs_inputs=tmp_path,
                             run_id="r1")
    data = area / "data" / "r1.vot"
    text = data.read_bytes()
    data.unlink()                      # the file is hard-linked: replace, do not edit
    data.write_bytes(text[:-40] + b"x" * 40)
    (area / "data" / "stray.vot").write_bytes(text)
    with pytest.raises(PublishError, match="disagrees with its manifest.*r1.vot"):
        publish(SCHEMA, {"dachs_inputs": str(tmp_path)})


@pytest.mark.dachs
def test_publish_outside_dachs_inputs_is_refused(dachs, tmp_path, monkeypatch,
                                                 hfc1ar_service, hfc1ar_rows):
    monkeypatch.setenv("GAVOSETTINGS", dachs.env["GAVOSETTINGS"])
    write_area(hfc1ar_service, hfc1ar_rows, dachs_inputs=tmp_path, run_id="r1")
    with pytest.raises(PublishError, match=f"DaCHS reads RDs from {dachs.inputs}"):
        publish(SCHEMA, {"dachs_inputs": str(tmp_path), "server_url": dachs.url})


@pytest.mark.dachs
@pytest.mark.slow
def test_publish_round_trip_with_retraction(dachs, monkeypatch, hfc1ar_service):
    monkeypatch.setenv("GAVOSETTINGS", dachs.env["GAVOSETTINGS"])
    remove_area(dachs.inputs, SCHEMA)
    params = {"dachs_inputs": str(dachs.inputs), "server_url": dachs.url}
    rows = make_hfc1ar_rows(3)
    write_area(hfc1ar_service, rows, dachs_inputs=dachs.inputs, run_id="r1",
                      server_url=dachs.url)
    dachs.run("drop", f"{SCHEMA}/q", check=False)
    out = publish(SCHEMA, params)
    assert out["rows_served"] == out["rows_expected"] == 30
    assert out["validate"].endswith("OK")
    assert out["spatial_hits"] >= 1
    assert set(out["timings"]) >= {"imp", "limits", "val", "tap_check"}
    # second run: 10 new rows, 3 retracted, 5 re-exported with a new value
    more = make_hfc1ar_rows(4)
    changed = rows.iloc[:5].assign(obs_id="reprocessed")
    gone = list(rows["granule_uid"].iloc[10:13])
    write_area(hfc1ar_service, pd.concat([more.iloc[30:], changed]),
                      dachs_inputs=dachs.inputs, run_id="r2", retract=gone,
                      server_url=dachs.url)
    out = publish(SCHEMA, params)
    assert out["rows_served"] == out["rows_expected"] == 30 + 10 - 3
    tap = dachs.tap()
    uids = ", ".join(f"'{u}'" for u in gone)
    left = tap.run_sync(f"SELECT granule_uid FROM {SCHEMA}.epn_core "
                        f"WHERE granule_uid IN ({uids})").to_table()
    assert len(left) == 0
    re_exported = tap.run_sync(f"SELECT COUNT(*) AS n FROM {SCHEMA}.epn_core "
                               "WHERE obs_id = 'reprocessed'").to_table()
    assert int(re_exported["n"][0]) == 5
