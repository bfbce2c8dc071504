"""Export to the DaCHS import area: typed VOTable, RD, manifest, atomic writes.

These run without DaCHS; tests/test_e2e_dachs.py imports the same files into a real one.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io.votable import parse_single_table

from vespa_curation import epncore
from vespa_curation import area as area_mod
from vespa_curation.area import AreaError, ImportArea
from vespa_curation.export import ExportError, render_rd, write_epn_votable
from vespa_curation.export import writer as writer_mod

from conftest import ROOT, make_hfc1ar_rows, manifest, verify, write_area


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (following the area symlink) → sha256."""
    folder = Path(os.path.realpath(folder))
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- VOTable ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["binary2", "tabledata"])
def test_votable_types_units_ucds_come_from_epncore(tmp_path, hfc1ar_rows, fmt):
    rows = hfc1ar_rows
    path = write_epn_votable(rows, tmp_path / "t.vot", "body", fmt=fmt)
    t = parse_single_table(str(path))
    fields = {f.name: f for f in t.fields}
    assert "qa_geom_flag" not in fields
    assert list(fields) == epncore.ordered(c for c in rows if not c.startswith("qa_"))
    for name, f in fields.items():
        col = epncore.COLUMNS[name]
        assert f.datatype == col.votable_datatype, name
        assert (str(f.unit) if f.unit else "") == col.unit_for("body"), name
        assert (f.ucd or "") == col.ucd_for("body"), name
    assert fields["s_region"].xtype == "adql:REGION"
    assert fields["s_region"].datatype == "char"
    for name in ("creation_date", "modification_date", "release_date"):
        assert fields[name].xtype == "timestamp"
    assert fields["processing_level"].datatype == "int"
    assert str(fields["c1min"].unit) == "deg"
    assert fields["c1min"].ucd == "pos.bodyrc.lon;stat.min"
    assert str(fields["time_min"].unit) == "d"
    # values as written (NULL text is checked through DaCHS in test_e2e_dachs.py:
    # astropy's reader drops BINARY2 null flags of char fields, DaCHS and STILTS read them)
    arr = t.array
    assert arr["feature_name"][0] == "HFC AR 10740"
    assert arr["creation_date"][0] == "2026-01-01T00:00:00.000"
    assert arr["s_region"][0].startswith("Polygon UNKNOWNFrame ")
    assert int(arr["processing_level"][0]) == 5
    np.testing.assert_allclose(np.asarray(arr["time_min"]), rows["time_min"].to_numpy())


def test_votable_refuses_unknown_columns_and_bad_values(tmp_path, hfc1ar_rows):
    with pytest.raises(ExportError, match="colour"):
        write_epn_votable(hfc1ar_rows.assign(colour="red"), tmp_path / "a.vot", "body")
    bad = hfc1ar_rows.copy()
    bad["processing_level"] = bad["processing_level"].astype(object)
    bad.loc[3, "processing_level"] = 2.5
    with pytest.raises(ExportError, match=r"processing_level.*2\.5.*row 3"):
        write_epn_votable(bad, tmp_path / "b.vot", "body")
    bad = hfc1ar_rows.copy()
    bad["creation_date"] = bad["creation_date"].astype(object)
    bad.loc[2, "creation_date"] = "yesterday"
    with pytest.raises(ExportError, match="creation_date.*yesterday"):
        write_epn_votable(bad, tmp_path / "c.vot", "body")


def test_votable_timestamps_utc_to_the_millisecond(tmp_path, hfc1ar_rows):
    """Timestamps in every form a source gives them: UTC, milliseconds truncated, NULL kept."""
    rows = hfc1ar_rows.iloc[:5].copy()
    given = {
        "creation_date": pd.Series(pd.to_datetime(
            ["2005-04-02T01:35:03.4269", "1969-12-31T23:59:59.9995", "2026-01-01T00:00:00",
             None, "1899-05-01T00:00:00.0019"], format="ISO8601")),
        "modification_date": pd.Series(["2005-04-02T01:35:03.426Z", " 2008-03-07T12:00:00 ",
                                        None, "2010-09-08T06:00:00.5", "2011-01-01"],
                                       dtype=object),
        "release_date": pd.Series(pd.to_datetime(
            ["2005-04-02T03:35:03.426+02:00"] * 5, format="ISO8601")),
    }
    for name, values in given.items():
        rows[name] = values.to_numpy()
    expected = {
        "creation_date": ["2005-04-02T01:35:03.426", "1969-12-31T23:59:59.999",
                          "2026-01-01T00:00:00.000", None, "1899-05-01T00:00:00.001"],
        "modification_date": ["2005-04-02T01:35:03.426", "2008-03-07T12:00:00.000", None,
                              "2010-09-08T06:00:00.500", "2011-01-01T00:00:00.000"],
        "release_date": ["2005-04-02T01:35:03.426"] * 5,
    }
    path = write_epn_votable(rows.reset_index(drop=True), tmp_path / "t.vot", "body",
                             fmt="tabledata")
    ns = {"v": "http://www.ivoa.net/xml/VOTable/v1.3"}
    root = ET.parse(path).getroot()
    names = [f.get("name") for f in root.iter(f"{{{ns['v']}}}FIELD")]
    trs = list(root.iter(f"{{{ns['v']}}}TR"))
    for name, want in expected.items():
        k = names.index(name)
        got = [list(tr)[k].text for tr in trs]
        assert got == want, name


def test_tabledata_numbers_and_texts_as_values(tmp_path, hfc1ar_rows):
    """The TABLEDATA writer formats each distinct number once (most columns hold a few):
    every cell still reads back as its own value, -0.0 apart from 0.0, NULL and
    non-finite values as empty cells, and texts holding & < > escaped."""
    n = 300
    rows = pd.concat([hfc1ar_rows.iloc[:1]] * n, ignore_index=True)
    rng = np.random.default_rng(1)
    few = rng.choice([0.0, -0.0, 1.5, 1e-300, 359.99999999999994], n)
    few[[3, 7]] = np.nan
    few[11] = np.inf
    rows["c1min"] = few
    rows["c2min"] = rng.normal(size=n)                     # all distinct
    rows["target_name"] = ["Sun & <corona>" if k % 7 == 0 else "Sun" for k in range(n)]
    path = write_epn_votable(rows, tmp_path / "t.vot", "body", fmt="tabledata")
    ns = "{http://www.ivoa.net/xml/VOTable/v1.3}"
    root = ET.parse(path).getroot()
    names = [f.get("name") for f in root.iter(ns + "FIELD")]
    cells = [list(tr) for tr in root.iter(ns + "TR")]
    got = [c[names.index("c1min")].text for c in cells]
    want = [None if not np.isfinite(v) else repr(v) for v in few.tolist()]
    assert got == want
    assert got.count("-0.0") == int(np.sum((few == 0) & np.signbit(few))) > 0
    assert [float(c[names.index("c2min")].text) for c in cells] == rows["c2min"].tolist()
    assert [c[names.index("target_name")].text for c in cells] == rows["target_name"].tolist()


def test_tabledata_from_slices_is_the_same_file(tmp_path, hfc1ar_rows):
    """A writer process streams its part in slices: the same bytes as the whole table
    written at once; a bad value names its row in the whole table."""
    from vespa_curation.export.votable import write_epn_votable_slices
    rows = pd.concat([hfc1ar_rows] * 3, ignore_index=True)
    whole = write_epn_votable(rows, tmp_path / "whole.vot", "body", fmt="tabledata")
    slices = (rows.iloc[a:a + 7] for a in range(0, len(rows), 7))
    cut = write_epn_votable_slices(slices, rows.columns, tmp_path / "cut.vot", "body")
    assert cut.read_bytes() == whole.read_bytes() and len(rows) > 14
    bad = rows.copy()
    bad["time_min"] = bad["time_min"].astype(object)
    bad.loc[9, "time_min"] = "yesterday"
    with pytest.raises(ExportError, match=r"'yesterday' \(row 9\)"):
        write_epn_votable_slices((bad.iloc[a:a + 7] for a in range(0, len(bad), 7)),
                                 bad.columns, tmp_path / "bad.vot", "body")


def test_tabledata_of_arrow_texts_is_the_same_file(tmp_path, hfc1ar_rows):
    """Text columns read from Parquet (Arrow strings, in chunks) give the bytes the
    same texts as Python strings give: escapes (in a cell of a later slice too),
    NULLs, non-ASCII, empty texts."""
    import pyarrow as pa
    from vespa_curation.export.votable import write_epn_votable_slices
    rows = pd.concat([hfc1ar_rows] * 4, ignore_index=True)
    rows["feature_name"] = [None, "", "Sün ☉", "AR 12"] * (len(rows) // 4)
    # one markup character alone in its slice, past the slice's first row
    rows.loc[7, "feature_name"] = "x > y"
    rows.loc[12, "feature_name"] = "AR <12>"
    rows.loc[17, "obs_id"] = "p<q"                     # the last row of its slice
    rows.loc[len(rows) - 2, "obs_id"] = "a&b"
    rows.loc[1, "obs_id"] = None
    whole = write_epn_votable(rows, tmp_path / "whole.vot", "body", fmt="tabledata")
    arrow = rows.copy()
    texts = [c for c in rows.columns if epncore.COLUMNS.get(c) is not None
             and epncore.COLUMNS[c].type == "Text"]
    for c in texts:
        values = [None if pd.isna(v) else str(v) for v in rows[c]]
        a = pa.array(values, pa.large_string() if c in ("s_region", "obs_id") else pa.string())
        arrow[c] = pd.Series(pd.arrays.ArrowStringArray(
            pa.chunked_array([a.slice(0, 5), a.slice(5)])))
    assert {"feature_name", "obs_id", "s_region", "granule_uid"} <= set(texts)
    slices = (arrow.iloc[a:a + 9] for a in range(0, len(arrow), 9))
    cut = write_epn_votable_slices(slices, arrow.columns, tmp_path / "cut.vot", "body")
    assert cut.read_bytes() == whole.read_bytes()
    text = whole.read_text(encoding="utf-8")
    assert "<TD>AR &lt;12&gt;</TD>" in text and "<TD>a&amp;b</TD>" in text
    assert "<TD>x &gt; y</TD>" in text and "<TD>p&lt;q</TD>" in text
    assert "<TD>Sün ☉</TD>" in text


def test_votable_empty_rows(tmp_path, hfc1ar_rows):
    path = write_epn_votable(hfc1ar_rows.iloc[:0], tmp_path / "e.vot", "body")
    assert len(parse_single_table(str(path)).array) == 0


# -- RD -----------------------------------------------------------------------------------

def test_rd_declares_epn_core_as_designed(hfc1ar_service, hfc1ar_rows):
    cols = epncore.ordered(c for c in hfc1ar_rows if not c.startswith("qa_"))
    text = render_rd(hfc1ar_service, cols, creation_date="2026-01-01T00:00:00Z")
    root = ET.fromstring(text.encode())
    assert root.get("schema") == "hfc1ar"
    meta = {}
    for m in root.findall("meta"):
        meta.setdefault(m.get("name"), []).append(m.text)
    for key in ("title", "description", "creationDate", "subject", "creator.name"):
        assert meta.get(key), key
    assert meta["subject"] == list(hfc1ar_service.subjects)
    table = root.find("table")
    assert table.get("id") == "epn_core"
    assert table.get("primary") == "granule_uid"
    assert table.get("dupePolicy") == "dropOld"
    mixin = table.find("mixin")
    assert mixin.text == "//epntap2#table-2_0"
    assert mixin.get("spatial_frame_type") == "body"
    assert mixin.get("optional_columns").split() == epncore.optional_columns(cols)
    idx = {i.get("columns"): i.get("method") for i in table.findall("index")}
    assert idx == {"s_region": "GIST", "time_min": None}
    data = root.find("data[@id='import']")
    assert data.get("updating") == "True"
    assert data.find("sources").get("pattern") == "data/*.vot"
    assert data.find("voTableGrammar") is not None
    assert data.find("make").get("table") == "epn_core"
    assert data.find("make/rowmaker").get("idmaps") == "*"
    assert root.find("data[@id='retract']/sources").get("pattern") == "retract/*.txt"


def test_declared_links_bring_the_datalink_service_and_fragments_extend_the_rd(
        hfc1ar_service):
    import dataclasses
    with_links = dataclasses.replace(hfc1ar_service, links=lambda rows, params: rows,
                                     served_files="tfcat")
    text = render_rd(with_links, ["granule_uid", "s_region"], creation_date="2026-01-01",
                     fragments={"meta": '<meta name="howtoCite">Cite x</meta>'})
    root = ET.fromstring(text.encode())
    assert root.find("table[@id='epn_core']/meta").get("name") == \
        "_associatedDatalinkService"
    assert root.find("service[@id='dl']").get("allowed") == "dlget,dlmeta,static"
    assert root.find("service[@id='dl']/property[@name='staticData']").text == "tfcat"
    assert root.find("table[@id='links']") is not None
    assert root.find("data[@id='import_links']/sources").get("pattern") == "links/*.vot"
    assert root.find("meta[@name='howtoCite']").text == "Cite x"
    plain = ET.fromstring(render_rd(hfc1ar_service, ["granule_uid"],
                                    creation_date="x").encode())
    assert plain.find("service[@id='dl']") is None and plain.find("table[@id='links']") \
        is None
    with pytest.raises(ValueError, match="slot"):
        render_rd(hfc1ar_service, ["granule_uid"], creation_date="x",
                  fragments={"nowhere": "<x/>"})


# -- import area --------------------------------------------------------------------------

def test_area_layout_manifest_and_second_run(tmp_path, hfc1ar_service):
    rows = make_hfc1ar_rows(3)
    area = write_area(hfc1ar_service, rows, dachs_inputs=tmp_path, run_id="r1",
                             server_url="http://localhost:8080", mark={"time": 2453462.5},
                             links=pd.DataFrame({"granule_uid": rows["granule_uid"],
                                                 "url": "http://x/" + rows["obs_id"]}))
    assert area == tmp_path / "hfc1ar"
    for rel in ("q.rd", "data/r1.vot", "links/r1.vot", "manifest.json"):
        assert (area / rel).is_file(), rel
    man = manifest(area)
    assert man["total_rows"] == len(rows) == man["runs"][0]["rows"]
    assert man["mark"] == {"time": 2453462.5}
    assert man["runs"][0]["links_rows"] == len(rows)
    assert verify(area) == []
    first = snapshot(area)
    assert man["files"]["data/r1.vot"]["sha256"] == first["data/r1.vot"]
    # second run: 10 rows again (replaced), 10 new, 2 retracted
    again = make_hfc1ar_rows(4).iloc[20:40]
    retract = list(rows["granule_uid"].iloc[:2])
    write_area(hfc1ar_service, again, dachs_inputs=tmp_path, run_id="r2",
                      retract=retract, mark={"time": 2453463.0})
    man2 = manifest(area)
    run2 = man2["runs"][1]
    assert (run2["rows"], run2["new_rows"], run2["replaced_rows"], run2["retracted"]) == \
        (20, 10, 10, 2)
    assert man2["total_rows"] == 30 + 10 - 2
    assert man2["creation_date"] == man["creation_date"]
    assert (area / "retract/r2.txt").read_text().split() == sorted(retract)
    second = snapshot(area)
    assert second["data/r1.vot"] == first["data/r1.vot"]   # never rewritten
    assert verify(area) == []
    with pytest.raises(AreaError, match="already"):
        write_area(hfc1ar_service, again, dachs_inputs=tmp_path, run_id="r2")
    # only the current and the previous version folder are kept
    versions = [p.name for p in (tmp_path / ".hfc1ar.versions").iterdir() if p.is_dir()]
    assert sorted(versions) == ["000001-r1", "000002-r2"]


def test_bad_rows_write_nothing(tmp_path, hfc1ar_service, hfc1ar_rows):
    dup = pd.concat([hfc1ar_rows, hfc1ar_rows.iloc[:1]])
    with pytest.raises(ExportError, match="more than once"):
        write_area(hfc1ar_service, dup, dachs_inputs=tmp_path, run_id="r1")
    with pytest.raises(ExportError, match="both exported and retracted"):
        write_area(hfc1ar_service, hfc1ar_rows, dachs_inputs=tmp_path, run_id="r1",
                          retract=[hfc1ar_rows["granule_uid"].iloc[0]])
    with pytest.raises(AreaError, match="plain file name"):
        write_area(hfc1ar_service, hfc1ar_rows, dachs_inputs=tmp_path,
                          run_id="../x")
    assert not (tmp_path / "hfc1ar").exists()


@pytest.mark.parametrize("where", ["links", "rd", "manifest", "swap"])
def test_failure_mid_write_leaves_previous_area(tmp_path, hfc1ar_service, monkeypatch,
                                                where):
    rows = make_hfc1ar_rows(2)
    area = write_area(hfc1ar_service, rows, dachs_inputs=tmp_path, run_id="r1")
    before = snapshot(area)
    target = os.readlink(area)

    def boom(*a, **k):
        raise OSError("disk full (injected)")
    if where == "links":
        monkeypatch.setattr(writer_mod, "write_table_votable", boom)
    elif where == "rd":
        monkeypatch.setattr(writer_mod, "render_rd", boom)
    elif where == "manifest":
        real = area_mod.write_durable

        def fail_manifest(path, text):
            if Path(path).name == "manifest.json":
                raise OSError("disk full (injected)")
            return real(path, text)
        monkeypatch.setattr(area_mod, "write_durable", fail_manifest)
    else:
        monkeypatch.setattr(ImportArea, "_swap", boom)
    with pytest.raises(OSError, match="injected"):
        write_area(hfc1ar_service, make_hfc1ar_rows(4).iloc[20:],
                          dachs_inputs=tmp_path, run_id="r2",
                          links=pd.DataFrame({"granule_uid": ["a"]}))
    assert os.readlink(area) == target
    assert snapshot(area) == before
    assert verify(area) == []
    assert not list((tmp_path / ".hfc1ar.versions").glob(".tmp-*"))
    monkeypatch.undo()
    # the next export completes on top of the untouched one
    write_area(hfc1ar_service, make_hfc1ar_rows(4).iloc[20:], dachs_inputs=tmp_path,
                      run_id="r2")
    assert manifest(area)["total_rows"] == 40


def test_killed_export_leaves_previous_area(tmp_path, hfc1ar_service):
    """A process killed (SIGKILL) after writing the new data file, before the swap."""
    rows = make_hfc1ar_rows(2)
    area = write_area(hfc1ar_service, rows, dachs_inputs=tmp_path, run_id="r1")
    before = snapshot(area)
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        from conftest import make_hfc1ar_rows, write_area
        from vespa_curation.services import get_service
        from vespa_curation.export import writer
        def die(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        writer.render_rd = die
        write_area(get_service("hfc1ar"), make_hfc1ar_rows(4),
                   dachs_inputs={str(tmp_path)!r}, run_id="r2")
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert p.returncode == -9, p.stderr
    leftovers = list((tmp_path / ".hfc1ar.versions").glob(".tmp-*"))
    assert leftovers and (leftovers[0] / "data/r2.vot").is_file()   # it was mid-write
    assert snapshot(area) == before
    assert not (area / "data/r2.vot").exists()
    write_area(hfc1ar_service, make_hfc1ar_rows(4), dachs_inputs=tmp_path,
                      run_id="r2")
    assert manifest(area)["total_rows"] == 40
    assert not list((tmp_path / ".hfc1ar.versions").glob(".tmp-*"))


def test_plain_folder_is_migrated(tmp_path, hfc1ar_service, hfc1ar_rows):
    (tmp_path / "hfc1ar").mkdir()
    (tmp_path / "hfc1ar" / "README").write_text("made by hand")
    area = write_area(hfc1ar_service, hfc1ar_rows, dachs_inputs=tmp_path,
                             run_id="r1")
    assert area.is_symlink() and (area / "q.rd").is_file()
    assert json.loads((area / "manifest.json").read_text())["total_rows"] == 40


def test_dali_region_encoding(tmp_path, hfc1ar_rows):
    """The alternative s_region encoding: DALI polygon arrays DaCHS reads without STC-S."""
    rows = hfc1ar_rows.copy()
    path = write_epn_votable(rows, tmp_path / "d.vot", "body", region="dali")
    t = parse_single_table(str(path))
    f = {x.name: x for x in t.fields}["s_region"]
    assert (f.datatype, f.arraysize, f.xtype) == ("double", "*", "polygon")
    want = [float(w) for w in rows["s_region"].iloc[0].split()[2:]]
    np.testing.assert_allclose(np.asarray(t.array["s_region"][0]), want)
    with pytest.raises(ExportError, match="encoding"):
        write_epn_votable(rows, tmp_path / "x.vot", "body", region="wkt")


def _granules_bytes(tmp_path, uids, values: dict, name: str) -> bytes:
    """granules.parquet as _write_state writes it, with ``values`` as state columns."""
    added = pd.DataFrame({"granule_uid": pd.Series(uids, dtype=object).to_numpy(),
                          "run_id": "R"})
    for c, v in values.items():
        added[c] = v
    empty = pd.DataFrame({"granule_uid": pd.Series([], dtype=object),
                          "run_id": pd.Series([], dtype=object)})
    path = tmp_path / name
    pd.concat([empty, added], ignore_index=True).to_parquet(path, index=False)
    return path.read_bytes()


def test_granule_state_taken_as_it_is_when_it_follows_the_rows(tmp_path):
    """The state of the exported granules: when the decisions' state lists them once
    and in the data files' order, its columns are taken as they are, and the state file
    holds the bytes that looking each granule up (its last state row) gives; in another
    order, or listing a granule twice, each is looked up."""
    import pyarrow as pa
    rng = np.random.default_rng(4)
    n = 5000
    uids = [f"g{i:06d}" for i in rng.permutation(n)]
    dates = pa.array([None if i % 7 == 0 else "2026-12-05T03:00:00.000" for i in range(n)])
    state = pa.table({"granule_uid": uids, "content_hash": [f"{i:016x}" for i in range(n)],
                      "release_date": dates, "creation_date": pa.nulls(n)}).to_pandas()
    new_uids = pd.Series(uids, dtype=object)

    def looked_up(st, u):
        st = st.drop_duplicates("granule_uid", keep="last").set_index("granule_uid") \
            .reindex(u)
        return {c: st[c].to_numpy(dtype=object) for c in st.columns}
    want = _granules_bytes(tmp_path, uids, looked_up(state, new_uids), "want.parquet")
    got = writer_mod._state_columns(state, new_uids)
    assert _granules_bytes(tmp_path, uids, got, "got.parquet") == want
    assert isinstance(got["content_hash"], pd.api.extensions.ExtensionArray)  # as it is
    # another order, a granule twice (its last row counts): looked up
    shuffled = state.iloc[rng.permutation(n)].reset_index(drop=True)
    twice = pd.concat([state.iloc[:10].assign(content_hash="old"), state], ignore_index=True)
    for other in (shuffled, twice):
        assert _granules_bytes(tmp_path, uids, writer_mod._state_columns(other, new_uids),
                               "other.parquet") == want
