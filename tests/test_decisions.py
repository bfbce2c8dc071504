"""Curator decisions: file round trip, export filtering, retraction of published granules."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io.votable.tree import Field, Resource, TableElement, VOTableFile

from vespa_curation import decisions as D
from vespa_curation.area import ImportArea
from vespa_curation.services import get_service

HFC1AR = get_service("hfc1ar")
from vespa_curation import stcs


def _rows(uids, regions=None):
    regions = regions or ["Polygon UNKNOWNFrame 10 0 12 0 12 2 11 1 10 2"] * len(uids)
    return pd.DataFrame({"granule_uid": uids, "s_region": regions,
                         "c1min": 10.0, "c1max": 12.0, "c2min": 0.0, "c2max": 2.0,
                         "qa_id_ar": range(1, len(uids) + 1)})


def _write_uids_vot(path, uids):
    vt = VOTableFile()
    res = Resource()
    vt.resources.append(res)
    t = TableElement(vt)
    res.tables.append(t)
    t.fields.append(Field(vt, name="granule_uid", datatype="char", arraysize="*"))
    t.create_arrays(len(uids))
    t.array["granule_uid"] = uids
    path.parent.mkdir(parents=True, exist_ok=True)
    vt.to_xml(str(path))


def test_append_and_load_round_trip(tmp_path):
    f = tmp_path / "decisions" / "hfc1ar.csv"
    D.append_decision(f, "ar_1", "reject", "alice", "spurious, edge of a flare")
    D.append_decision(f, "ar_2", "override", "bob", "hull is closer", override="convex_hull")
    D.append_decision(f, "ar_1", "accept", "carol", "second look: real region")
    df = D.load_decisions(f)
    assert list(df.columns) == D.COLUMNS
    assert len(df) == 3                                   # history kept
    cur = D.latest(df)
    assert cur.loc["ar_1", "decision"] == "accept"        # last line wins
    assert cur.loc["ar_2", "override"] == "convex_hull"
    assert f.read_text().splitlines()[0] == ",".join(D.COLUMNS)


@pytest.mark.parametrize("dec, ov, msg", [("maybe", None, "decision 'maybe'"),
                                          ("override", "blob", "override 'blob'"),
                                          ("override", None, "override None")])
def test_bad_decision_refused(tmp_path, dec, ov, msg):
    with pytest.raises(D.DecisionError, match=msg):
        D.append_decision(tmp_path / "d.csv", "ar_1", dec, "x", override=ov)
    assert not (tmp_path / "d.csv").exists()


def test_malformed_file_names_line(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("granule_uid,decision,curator,time,reason\nar_1,reject,a,t,r\n"
                 "ar_2,drop,a,t,r\n")
    with pytest.raises(D.DecisionError, match=r"line 3: decision 'drop' for 'ar_2'"):
        D.load_decisions(f)


def test_apply_removes_rejected_and_retracts_only_published(tmp_path):
    f = tmp_path / "d.csv"
    D.append_decision(f, "ar_1", "reject", "alice", "not a region")
    D.append_decision(f, "ar_old", "reject", "alice", "published last month, wrong")
    D.append_decision(f, "ar_never", "reject", "alice", "never exported")
    area = tmp_path / "dachs" / "hfc1ar"
    _write_uids_vot(area / "data" / "20260101T000000Z.vot", ["ar_old", "ar_1", "ar_9"])
    rows, rejected, retract, overrides = D.apply_decisions(
        _rows(["ar_1", "ar_2", "ar_3"]), f, HFC1AR, import_area=ImportArea.at(area))
    assert list(rows["granule_uid"]) == ["ar_2", "ar_3"]
    assert list(rejected["granule_uid"]) == ["ar_1"]
    assert rejected.loc[0, "rule"] == D.REJECT_RULE and rejected.loc[0, "stage"] == "curate"
    assert "alice" in rejected.loc[0, "reason"] and "not a region" in rejected.loc[0, "reason"]
    assert rejected.loc[0, "source_id"] == "1"            # qa_id_ar of hfc1ar
    assert retract == ["ar_1", "ar_old"]                  # not ar_never: never published
    assert overrides == {}
    # once retracted, a later export does not list them again
    (area / "retract").mkdir()
    (area / "retract" / "20260102T000000Z.txt").write_text("ar_1\nar_old\n")
    _, _, retract2, _ = D.apply_decisions(_rows(["ar_2"]), f, HFC1AR,
                                          import_area=ImportArea.at(area))
    assert retract2 == []


def test_accept_after_reject_keeps_granule(tmp_path):
    f = tmp_path / "d.csv"
    D.append_decision(f, "ar_1", "reject", "a")
    D.append_decision(f, "ar_1", "accept", "b")
    rows, rejected, retract, _ = D.apply_decisions(_rows(["ar_1"]), f, HFC1AR,
                                                   published={"ar_1"})
    assert list(rows["granule_uid"]) == ["ar_1"] and rejected.empty and retract == []
    assert rows.loc[0, "qa_curator"] == "accept"


def test_no_file_changes_nothing(tmp_path):
    rows = _rows(["ar_1"])
    out, rejected, retract, ov = D.apply_decisions(rows, tmp_path / "none.csv", HFC1AR)
    pd.testing.assert_frame_equal(out, rows)
    assert rejected.empty and retract == [] and ov == {}


def test_convex_hull_override_across_seam(tmp_path):
    # a concave region straddling 0/360: the hull must stay small and counter-clockwise
    concave = "Polygon UNKNOWNFrame 358 0 2 0 2 4 0 1 358 4"
    f = tmp_path / "d.csv"
    D.append_decision(f, "ar_1", "override", "a", "notch is a tracing artefact",
                      override="convex_hull")
    rows, _, _, ov = D.apply_decisions(_rows(["ar_1", "ar_2"], [concave, concave]), f,
                                       HFC1AR)
    assert ov == {"ar_1": "convex_hull"}
    hull = stcs.parse([rows.loc[0, "s_region"]])
    assert len(hull.lon) == 4                             # the notch vertex is gone
    lon, lat = stcs.unwrap(hull), hull.lat
    area = 0.5 * np.sum(lon * np.roll(lat, -1) - np.roll(lon, -1) * lat)
    assert area == pytest.approx(16.0)                    # 4° × 4°, positive = CCW
    assert rows.loc[0, "c1min"] == pytest.approx(358.0)   # c1min > c1max across 0/360
    assert rows.loc[0, "c1max"] == pytest.approx(2.0)
    assert rows.loc[0, "qa_override"] == "convex_hull"
    assert rows.loc[1, "s_region"] == concave             # the other granule untouched


def test_published_read_from_granule_state(tmp_path):
    # the export writer's state/granules.parquet lists what the area holds (retracted
    # granules already removed): it wins over scanning data/*.vot
    area = tmp_path / "hfc1ar"
    (area / "state").mkdir(parents=True)
    pd.DataFrame({"granule_uid": ["ar_1", "ar_5"], "run_id": "r1"}).to_parquet(
        area / "state" / "granules.parquet")
    _write_uids_vot(area / "data" / "r1.vot", ["ar_1", "ar_5", "ar_gone"])
    assert ImportArea.at(area).published_uids() == {"ar_1", "ar_5"}
    f = tmp_path / "d.csv"
    D.append_decision(f, "ar_5", "reject", "a")
    D.append_decision(f, "ar_gone", "reject", "a")
    _, rejected, retract, _ = D.apply_decisions(_rows(["ar_1"]), f, HFC1AR,
                                                import_area=ImportArea.at(area))
    assert rejected.empty and retract == ["ar_5"]
