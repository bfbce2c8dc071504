"""epncore holds every EPN-TAP 2.0 column with the reference's facts."""
import csv
from pathlib import Path

import pytest

from vespa_curation import epncore

#: The column table as the package ships it (a copy of the EPN-TAP 2.0 REC's columns).
REF = Path(epncore.__file__).with_name("data") / "epntap2_columns.tsv"


def test_all_174_columns_and_required_ones():
    assert len(epncore.COLUMNS) == 174
    assert set(epncore.VALUE_REQUIRED) == {
        "granule_uid", "granule_gid", "obs_id", "dataproduct_type", "target_class",
        "spatial_frame_type", "service_title", "creation_date", "modification_date",
        "release_date"}


def test_every_line_of_the_column_table_is_read():
    rows = list(csv.DictReader(REF.open(encoding="utf-8"), delimiter="\t"))
    for r in rows:
        c = epncore.COLUMNS[r["name"]]
        assert (c.type, c.unit, c.ucd) == (r["type"], r["unit"], r["ucd"]), r["name"]


def test_frame_dependent_units_and_types():
    c1 = epncore.column("c1min")
    assert c1.unit_for("body") == "deg" and epncore.column("c3max").unit_for("body") == "km"
    assert c1.ucd_for("body") == "pos.bodyrc.lon;stat.min"
    assert epncore.column("time_min").unit_for("body") == "d"
    assert epncore.column("s_region").votable_extra["xtype"] == "adql:REGION"
    assert epncore.column("creation_date").votable_extra["xtype"] == "timestamp"
    assert epncore.column("processing_level").votable_datatype == "int"
    with pytest.raises(KeyError, match="not an EPN-TAP"):
        epncore.column("no_such_column")


def test_minmax_pairs_and_vocabularies():
    assert ("c1min", "c1max") in epncore.MINMAX_PAIRS
    assert ("time_min", "time_max") in epncore.MINMAX_PAIRS
    assert "ci" in epncore.VOCABULARIES["dataproduct_type"]
    assert "star" in epncore.VOCABULARIES["target_class"]
    assert 4 not in epncore.PROCESSING_LEVELS
