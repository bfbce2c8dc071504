"""Text length limits (issue 16, item 6): every B-tree index of the published tables
holds its largest entry, the RD declares no index the limits do not know, the validator
refuses values beyond them by name, links included, and the export never writes one."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from vespa_curation import limits, validate
from vespa_curation.export import ExportError
from vespa_curation.export.rd import render_rd
from vespa_curation.services import get_service

from conftest import write_area


def _key_limits(table: str, key: tuple[str, ...]) -> list:
    by_table = {"links": limits.LINK_LIMITS, "imported_sources": limits.SOURCE_LIMITS}
    out = []
    for c in key:
        if table == "epn_core":
            out.append(None if c == "time_min" else limits.epn_limit(c))
        else:
            out.append(by_table[table][c])
    return out


def test_the_largest_entry_of_every_btree_index_fits():
    for table, keys in limits.BTREE_INDEXES.items():
        for key in keys:
            size = limits.entry_bytes(_key_limits(table, key))
            assert size <= limits.BTREE_MAX_ENTRY, (table, key, size)
    # the formula gives PostgreSQL's own count (measured: a 2699-byte text key
    # "index row size 2712 exceeds btree version 4 maximum 2704")
    assert limits.entry_bytes([2699]) == 2712
    assert limits.entry_bytes([2692]) == 2704


def _btree_indexes_of_rd(text: str) -> dict[str, set[tuple[str, ...]]]:
    out: dict[str, set] = {}
    for m in re.finditer(r'<table id="(\w+)"(.*?)</table>', text, re.S):
        name, body = m.group(1), m.group(2)
        keys = set()
        p = re.search(r'primary="([^"]+)"', body)
        if p:
            keys.add(tuple(p.group(1).split(",")))
        for ix in re.finditer(r'<index columns="([^"]+)"([^/]*)/>', body):
            if "GIST" not in ix.group(2).upper():
                keys.add(tuple(ix.group(1).split(",")))
        out[name] = keys
    return out


@pytest.mark.parametrize("name", ["hfc1ar", "orfees", "nda"])
def test_the_rd_declares_only_indexes_the_limits_know(name):
    svc = get_service(name)
    rd = render_rd(svc, svc.columns, creation_date="2026-01-01T00:00:00")
    declared = _btree_indexes_of_rd(rd)
    for table, keys in declared.items():
        assert keys == set(limits.BTREE_INDEXES[table]), (table, keys)


def test_byte_lengths_count_utf8_bytes_not_characters():
    s = pd.Series(["abc", None, "é" * 40, 5, "😀" * 20, "x" * 3000], dtype=object)
    bad, n = limits.too_long(s, 64)
    assert list(bad) == [False, False, True, False, True, True]
    assert n[2] == 80 and n[4] == 80 and n[5] == 3000


def test_validator_refuses_text_beyond_its_column_limit(hfc1ar_rows, hfc1ar_service):
    rows = hfc1ar_rows.copy()
    rows["access_url"] = "https://example.org/f.fits"
    rows["access_format"] = "application/fits"
    rows["access_estsize"] = 10
    rows.loc[1, "access_url"] = "https://example.org/" + "a" * 1_000_000
    rows.loc[2, "granule_uid"] = "ar_" + "é" * 300            # 603 bytes, 303 characters
    rows.loc[3, "feature_name"] = "x" * 70_000
    rows.loc[4, "thumbnail_url"] = "https://example.org/" + "b" * 2029   # 2049 bytes
    acc, q = validate.validate(rows, hfc1ar_service)
    lines = q[q["rule"] == "epn.too_long"]
    assert sorted(lines["granule_uid"].map(lambda u: list(rows["granule_uid"]).index(u))) \
        == [1, 2, 3, 4]
    reasons = " ".join(lines["reason"])
    for words in ("access_url is 1000020 bytes long", "at most 2048 bytes",
                  "granule_uid is 603 bytes long", "at most 512 bytes",
                  "feature_name is 70000 bytes long", "thumbnail_url is 2049 bytes"):
        assert words in reasons, words
    assert len(max(q["reason"], key=len)) < 400          # never the whole value
    assert len(acc) == len(rows) - 4


def test_a_row_whose_link_is_too_long_is_refused_by_name():
    rows = pd.DataFrame({"granule_uid": ["a", "b", "c"], "qa_source_id": ["1", "2", "3"]})
    links = pd.DataFrame({
        "granule_uid": ["a", "a", "b", "c"],
        "access_url": ["https://x/a", "https://x/" + "q" * 2100, "https://x/b",
                       "https://x/c"],
        "semantics": ["#this", "#coderived", "#this", "#" + "s" * 70],
        "content_type": ["text/csv"] * 4, "description": ["d"] * 4,
        "content_length": [None] * 4})
    kept, q = validate.validate_links(rows, links)
    assert list(kept["granule_uid"]) == ["b"]
    assert list(q["rule"]) == ["link.too_long"] * 2 and list(q["source_id"]) == ["1", "3"]
    assert "its #coderived link: access_url is 2110 bytes long" in q["reason"].iloc[0]
    assert "semantics is 71 bytes long" in q["reason"].iloc[1]


def test_the_export_never_writes_a_value_the_index_cannot_hold(tmp_path, hfc1ar_rows,
                                                               hfc1ar_service):
    rows = hfc1ar_rows.copy()
    rows.loc[0, "granule_uid"] = "ar_" + "x" * 600
    with pytest.raises(ExportError, match="granule_uid is 603 bytes long"):
        write_area(hfc1ar_service, rows, dachs_inputs=tmp_path, run_id="r1")
    assert not (tmp_path / "hfc1ar").exists()
    links = pd.DataFrame({"granule_uid": ["u"], "access_url": ["https://x/" + "a" * 3000],
                          "semantics": ["#this"], "content_type": ["text/html"],
                          "description": ["d"], "content_length": [np.nan]})
    with pytest.raises(ExportError, match="links row of granule 'u': access_url"):
        write_area(hfc1ar_service, hfc1ar_rows, dachs_inputs=tmp_path, run_id="r1",
                   links=links)
